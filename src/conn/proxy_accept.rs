//! A listener's PROXY protocol (`proxy_protocol = true`, HAProxy's `accept-proxy`): run on
//! each accepted connection before its TLS or HTTP handshake (vendored patch 32), within
//! `timeouts.client_handshake`. A peer outside `client_address.trusted_proxies` is refused
//! before a byte is read; from a trusted one, the header is read, parsed (`proxy_header`) and
//! its source address made the connection's peer address in pingora's socket digest, so
//! everything after (limits, access rules, hashing, the access log, X-Forwarded-For) sees the
//! client. Bytes read past the header are put back for TLS or HTTP. A missing or malformed
//! header, or a refused peer, closes the connection and is counted
//! (`gatehouse_client_misbehaviour_total`), never logged one line per connection.

use super::proxy_header::{self, Parsed};
use super::ConnPolicy;
use crate::telemetry::Misbehaviour;
use pingora::protocols::l4::socket::SocketAddr as PeerAddr;
use pingora::protocols::l4::stream::Stream as L4Stream;
use pingora::protocols::{GetSocketDigest, SocketDigest};
use pingora::{Error, ErrorType, Result};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use tokio::io::AsyncReadExt;

use crate::telemetry::PROXY_REFUSED as REFUSED;

const CLOSED_AT_ONCE: &str = "connection closed before sending anything";

/// The PROXY protocol step of a `proxy_protocol` listener's connection (`super::admission`).
pub(super) async fn accept(policy: &dyn ConnPolicy, stream: &mut L4Stream) -> Result<()> {
    let peer = stream
        .get_socket_digest()
        .and_then(|d| super::inet(d.peer_addr()));
    if !peer.is_some_and(|p| policy.trusted_proxy(p.ip())) {
        // gatehouse's own readiness probe (from wherever it is) is not a client.
        if !peer.is_some_and(crate::telemetry::own_probe) {
            crate::telemetry::client_misbehaved(Misbehaviour::ProxyUntrusted);
        }
        return refuse("connection from a source outside trusted_proxies");
    }
    let source = match read_header(stream).await {
        Ok(source) => source,
        Err(why) => {
            // A connection closed before its first byte (a proxy's TCP health check,
            // gatehouse's own readiness probe) did nothing wrong.
            if why != CLOSED_AT_ONCE {
                crate::telemetry::client_misbehaved(Misbehaviour::ProxyHeader);
            }
            tracing::debug!(peer = ?peer, "{REFUSED}: {why}");
            return refuse(why);
        }
    };
    if let Some(source) = source {
        set_peer(stream, source);
    }
    Ok(())
}

fn refuse(why: &str) -> Result<()> {
    Error::e_explain(ErrorType::HandshakeError, format!("{REFUSED}: {why}"))
}

/// Reads the header; what was read past it is put back. The source it names, if any.
async fn read_header(stream: &mut L4Stream) -> std::result::Result<Option<SocketAddr>, &str> {
    let mut buf = [0u8; proxy_header::MAX_HEADER];
    let mut filled = 0;
    loop {
        // Whatever arrived, up to the largest header: the bytes past it are put back.
        let n = stream
            .read(&mut buf[filled..])
            .await
            .map_err(|_| "read error")?;
        if n == 0 && filled == 0 {
            return Err(CLOSED_AT_ONCE);
        }
        if n == 0 {
            return Err("connection closed before a complete header");
        }
        filled += n;
        match proxy_header::parse(&buf[..filled])? {
            Parsed::Incomplete if filled < buf.len() => continue,
            Parsed::Incomplete => return Err("header too long"),
            Parsed::Done { len, source } => {
                stream.rewind(&buf[len..filled]);
                return Ok(source);
            }
        }
    }
}

/// Makes `source` the connection's peer address: a new socket digest over the same socket,
/// its peer address set (the digest caches it once read, so the old one cannot be changed).
fn set_peer(stream: &mut L4Stream, source: SocketAddr) {
    let digest = SocketDigest::from_raw_fd(stream.as_raw_fd());
    let _ = digest.peer_addr.set(Some(PeerAddr::Inet(source)));
    stream.set_socket_digest(digest);
}
