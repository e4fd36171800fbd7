//! The rustls `ServerConfig` of a TLS listener, assembled from `[listeners.tls]`: versions,
//! cipher suites and key exchange groups (a ring crypto provider cut down to them), the SNI
//! resolver, ALPN, the session cache and session tickets. pingora takes it whole (vendored
//! pingora-core, patch 2: `TlsSettings::set_server_config`).

use super::settings::{TicketKeys, TlsProtocol};
use super::tickets::{KeySource, Tickets};
use super::SniResolver;
use rustls::crypto::CryptoProvider;
use rustls::server::{NoServerSessionStorage, ServerSessionMemoryCache};
use rustls::ServerConfig;
use std::sync::Arc;

/// The ring provider restricted to `p`'s suites and groups, in `p`'s order.
fn provider(p: &TlsProtocol) -> CryptoProvider {
    let ring = rustls::crypto::ring::default_provider();
    let cipher_suites = p
        .cipher_suites
        .iter()
        .filter_map(|name| {
            ring.cipher_suites
                .iter()
                .find(|s| s.suite().as_str() == Some(name))
                .copied()
        })
        .collect();
    let kx_groups = p
        .groups
        .iter()
        .filter_map(|name| {
            ring.kx_groups
                .iter()
                .find(|g| format!("{:?}", g.name()) == *name)
                .copied()
        })
        .collect();
    CryptoProvider {
        cipher_suites,
        kx_groups,
        ..ring
    }
}

/// The ticket keys of a listener: from its key file, or random and rotating.
pub fn tickets(p: &TlsProtocol, keys: Option<&TicketKeys>) -> Option<Arc<Tickets>> {
    if !p.session_tickets {
        return None;
    }
    let source = match keys {
        Some(k) => KeySource::Shared(k.0.clone()),
        None => KeySource::Rotating(p.ticket_rotation),
    };
    // A ticket outlives its sealing key by one period (the previous key still opens it).
    Tickets::new(&source, p.ticket_rotation * 2).map(Arc::new)
}

pub fn build(
    p: &TlsProtocol,
    resolver: Arc<SniResolver>,
    tickets: Option<Arc<Tickets>>,
    (h2, acme_tls_alpn): (bool, bool),
) -> Result<ServerConfig, rustls::Error> {
    let versions: &[&rustls::SupportedProtocolVersion] = if p.tls12 {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13]
    };
    let mut config = ServerConfig::builder_with_provider(Arc::new(provider(p)))
        .with_protocol_versions(versions)?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = if h2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    if acme_tls_alpn {
        // Negotiated only with a validator offering nothing else (see `SniResolver`).
        config.alpn_protocols.push(super::ACME_TLS_ALPN.to_vec());
    }
    config.session_storage = if p.session_cache > 0 {
        ServerSessionMemoryCache::new(p.session_cache)
    } else {
        Arc::new(NoServerSessionStorage {})
    };
    match tickets {
        Some(t) => config.ticketer = t,
        // No tickets and no cache: TLS 1.3 resumption has nothing to offer.
        None if p.session_cache == 0 => config.send_tls13_tickets = 0,
        None => {}
    }
    Ok(config)
}
