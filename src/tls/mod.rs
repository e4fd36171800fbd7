//! TLS termination: loading and checking certificates (never a panic on a bad file), choosing
//! one by SNI, and swapping the set on reload without a restart.
//!
//! Certificates are loaded during config validation, so `gatehouse check` reports a missing file,
//! a key that does not match, an expired certificate or one without names, with its key path.
//! Each TLS listener owns an `SniResolver` whose `CertSet` sits behind an `ArcSwap`: new
//! handshakes see a swapped set at once, open connections keep the certificate they got.

use arc_swap::ArcSwap;
use pingora::tls::sign::CertifiedKey;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

mod ocsp;
mod server_config;
pub mod settings;
pub mod tickets;

/// One certificate chain with its key, checked.
pub struct LoadedCert {
    pub cert_path: String,
    pub key_path: String,
    /// DNS names from the leaf's SAN, lower-cased; `*.example.com` kept as written.
    pub names: Vec<String>,
    /// Expiry of the leaf, seconds since the Unix epoch.
    pub not_after: i64,
    /// The stapled OCSP response's file and `nextUpdate` (Unix seconds), when one is set.
    pub ocsp: Option<(String, Option<i64>)>,
    pub key: Arc<CertifiedKey>,
}

impl fmt::Debug for LoadedCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedCert")
            .field("cert_path", &self.cert_path)
            .field("names", &self.names)
            .field("not_after", &self.not_after)
            .field("ocsp", &self.ocsp)
            .finish()
    }
}

/// Problems with one certificate/key pair: `errors` refuse it, `warnings` do not.
#[derive(Debug, Default)]
pub struct CertProblems {
    pub errors: Vec<(&'static str, String)>,
    pub warnings: Vec<(&'static str, String)>,
}

/// Loads `cert_path` (full chain, leaf first) and `key_path` and checks them: parsable, key
/// matches the leaf, not expired, has DNS names. Warns when it expires within `warn_days`.
/// With `ocsp_path`, the OCSP response to staple is read and checked too (`ocsp.rs`).
pub fn load_cert(
    cert_path: &str,
    key_path: &str,
    ocsp_path: Option<&str>,
    warn_days: u32,
    now: i64,
) -> Result<(LoadedCert, CertProblems), CertProblems> {
    let mut p = CertProblems::default();
    let chain = read_chain(cert_path, &mut p);
    let key = read_key(key_path, &mut p);
    let (names, not_after) = match chain.first() {
        Some(leaf) => check_leaf(leaf, cert_path, warn_days, now, &mut p),
        None => (Vec::new(), 0),
    };
    let (Some(key), false) = (key, chain.is_empty()) else {
        return Err(p);
    };
    let mut certified = CertifiedKey::new(chain, key);
    let ocsp = ocsp_path.and_then(|path| staple(path, now, &mut p));
    certified.ocsp = ocsp.as_ref().map(|s| s.der.clone());
    if certified.keys_match().is_err() {
        p.errors.push((
            "key",
            format!(
                "{key_path}: this private key does not belong to the certificate in {cert_path}"
            ),
        ));
    }
    if !p.errors.is_empty() {
        return Err(p);
    }
    Ok((
        LoadedCert {
            cert_path: cert_path.to_string(),
            key_path: key_path.to_string(),
            names,
            not_after,
            ocsp: ocsp.map(|s| (ocsp_path.unwrap_or_default().to_string(), s.next_update)),
            key: Arc::new(certified),
        },
        p,
    ))
}

/// The OCSP response of `path`, checked: an error when unusable or past its `nextUpdate`, a
/// warning within two days of it.
fn staple(path: &str, now: i64, p: &mut CertProblems) -> Option<ocsp::Staple> {
    match ocsp::read(path) {
        Ok(s) => {
            match s.next_update {
                Some(t) if t <= now => {
                    p.errors.push(("ocsp", format!("{path}: the OCSP response is past its nextUpdate: fetch a fresh one")));
                    return None;
                }
                Some(t) if t - now < 2 * 86_400 => p.warnings.push((
                    "ocsp",
                    format!("{path}: the OCSP response's nextUpdate is in {} hours: fetch a fresh one and reload", (t - now) / 3600),
                )),
                _ => {}
            }
            Some(s)
        }
        Err(e) => {
            p.errors.push(("ocsp", e));
            None
        }
    }
}

/// The certificate chain of a PEM file, leaf first (empty, with an error, when unusable).
fn read_chain(cert_path: &str, p: &mut CertProblems) -> Vec<CertificateDer<'static>> {
    let error = match CertificateDer::pem_file_iter(cert_path) {
        Ok(iter) => match iter.collect::<Result<Vec<_>, _>>() {
            Ok(chain) if !chain.is_empty() => return chain,
            Ok(_) => format!("{cert_path}: no PEM certificate in the file"),
            Err(e) => format!("{cert_path}: not a PEM certificate file: {e}"),
        },
        Err(e) => format!("{cert_path}: {}", pem_error(e)),
    };
    p.errors.push(("cert", error));
    Vec::new()
}

/// The private key of a PEM file, as a signing key rustls supports.
fn read_key(key_path: &str, p: &mut CertProblems) -> Option<Arc<dyn rustls::sign::SigningKey>> {
    let error = match PrivateKeyDer::from_pem_file(key_path) {
        Ok(der) => match rustls::crypto::ring::sign::any_supported_type(&der) {
            Ok(k) => return Some(k),
            Err(e) => format!("{key_path}: unsupported private key: {e}"),
        },
        Err(e) => format!("{key_path}: {}", pem_error(e)),
    };
    p.errors.push(("key", error));
    None
}

/// The leaf's DNS names and expiry (Unix seconds); no names or an expired leaf are errors, an
/// expiry within `warn_days` a warning.
fn check_leaf(
    leaf: &CertificateDer<'_>,
    cert_path: &str,
    warn_days: u32,
    now: i64,
    p: &mut CertProblems,
) -> (Vec<String>, i64) {
    let cert = match x509_parser::parse_x509_certificate(leaf.as_ref()) {
        Ok((_, cert)) => cert,
        Err(e) => {
            let error = format!("{cert_path}: not an X.509 certificate: {e}");
            p.errors.push(("cert", error));
            return (Vec::new(), 0);
        }
    };
    let not_after = cert.validity().not_after.timestamp();
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::DNSName(d) = n {
                names.push(d.to_ascii_lowercase());
            }
        }
    }
    if names.is_empty() {
        p.errors.push((
            "cert",
            format!("{cert_path}: the certificate has no DNS names in subjectAltName"),
        ));
    }
    let expiry = cert.validity().not_after;
    if not_after <= now {
        let error = format!("{cert_path}: the certificate expired on {expiry}");
        p.errors.push(("cert", error));
    } else if not_after - now < i64::from(warn_days) * 86_400 {
        let days = (not_after - now) / 86_400;
        let warning = format!("{cert_path}: the certificate expires in {days} days ({expiry})");
        p.warnings.push(("cert", warning));
    }
    (names, not_after)
}

fn pem_error(e: rustls_pki_types::pem::Error) -> String {
    match e {
        rustls_pki_types::pem::Error::Io(io) => format!("cannot read: {io}"),
        rustls_pki_types::pem::Error::NoItemsFound => {
            "no PEM item of the expected kind in the file".into()
        }
        other => format!("bad PEM: {other:?}"),
    }
}

/// The certificates of one listener, indexed by name.
#[derive(Default)]
pub struct CertSet {
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// `*.example.com` stored as `.example.com`.
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    /// For clients with no or an unknown SNI; None with strict SNI.
    default: Option<Arc<CertifiedKey>>,
}

impl CertSet {
    /// `default` is the index in `certs` of the default certificate, None for strict SNI.
    pub fn new(certs: &[Arc<LoadedCert>], default: Option<usize>) -> CertSet {
        let mut set = CertSet {
            default: default.and_then(|i| certs.get(i)).map(|c| c.key.clone()),
            ..CertSet::default()
        };
        for c in certs {
            for name in &c.names {
                let map = match name.strip_prefix('*') {
                    Some(suffix) => set.wildcard.entry(suffix.to_string()),
                    None => set.exact.entry(name.clone()),
                };
                // The first certificate listed for a name wins.
                map.or_insert_with(|| c.key.clone());
            }
        }
        set
    }

    /// Exact name, then a one-label wildcard (RFC 6125: `*.example.com` covers
    /// `a.example.com`, not `a.b.example.com`), then the default.
    pub fn pick(&self, sni: Option<&str>) -> Option<Arc<CertifiedKey>> {
        if let Some(sni) = sni {
            let sni = sni.trim_end_matches('.').to_ascii_lowercase();
            if let Some(k) = self.exact.get(&sni) {
                return Some(k.clone());
            }
            if let Some(k) = sni.find('.').and_then(|dot| self.wildcard.get(&sni[dot..])) {
                return Some(k.clone());
            }
        }
        self.default.clone()
    }
}

/// rustls asks this for a certificate on every handshake.
pub struct SniResolver {
    set: ArcSwap<CertSet>,
    /// ACME tls-alpn-01 (RFC 8737): the challenge certificate per name, served only to a
    /// client that offers nothing but the `acme-tls/1` protocol.
    alpn_challenges: std::sync::RwLock<HashMap<String, Arc<CertifiedKey>>>,
}

/// The ALPN protocol of ACME's tls-alpn-01 validation.
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

impl fmt::Debug for SniResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SniResolver")
    }
}

impl SniResolver {
    pub fn new(set: CertSet) -> Arc<Self> {
        Arc::new(SniResolver {
            set: ArcSwap::from_pointee(set),
            alpn_challenges: Default::default(),
        })
    }

    /// Replaces the certificates for new handshakes; open connections are unaffected.
    pub fn swap(&self, set: CertSet) {
        self.set.store(Arc::new(set));
    }

    /// Serves `key` to tls-alpn-01 validations of `name` (None: stops).
    pub fn set_alpn_challenge(&self, name: &str, key: Option<Arc<CertifiedKey>>) {
        let mut map = self
            .alpn_challenges
            .write()
            .unwrap_or_else(|e| e.into_inner());
        match key {
            Some(k) => map.insert(name.to_ascii_lowercase(), k),
            None => map.remove(&name.to_ascii_lowercase()),
        };
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let acme = hello
            .alpn()
            .is_some_and(|mut protocols| protocols.all(|p| p == ACME_TLS_ALPN));
        if acme {
            let map = self
                .alpn_challenges
                .read()
                .unwrap_or_else(|e| e.into_inner());
            return map.get(&hello.server_name()?.to_ascii_lowercase()).cloned();
        }
        self.set.load().pick(hello.server_name())
    }
}

/// What the handshake told us, kept with the connection for the access log.
#[derive(Debug, Clone, Default)]
pub struct TlsFacts {
    pub sni: Option<String>,
}

/// Records the SNI of each handshake into the connection's TLS digest, and counts handshakes
/// by protocol version.
pub struct HandshakeFacts {
    tls12: prometheus::IntCounter,
    tls13: prometheus::IntCounter,
}

#[async_trait::async_trait]
impl pingora::listeners::TlsAccept for HandshakeFacts {
    async fn handshake_complete_callback(
        &self,
        tls: &pingora::protocols::tls::TlsRef,
    ) -> Option<Arc<dyn std::any::Any + Send + Sync>> {
        match tls.version() {
            Some(v) if v.contains("1_3") || v.contains("1.3") => self.tls13.inc(),
            Some(_) => self.tls12.inc(),
            None => {}
        }
        Some(Arc::new(TlsFacts {
            sni: tls.server_name().map(str::to_string),
        }))
    }
}

/// A running TLS listener's state kept across reloads: its certificates (swapped by a reload)
/// and its ticket keys (a reload brings a changed key file's keys).
pub struct ListenerTls {
    pub resolver: Arc<SniResolver>,
    pub tickets: Option<Arc<tickets::Tickets>>,
    /// The config's certificates and default, and the ACME certificate: the resolver's set is
    /// rebuilt from both when either changes.
    certs: std::sync::Mutex<Served>,
}

/// The config's certificates, its default's index, and the ACME certificate.
type Served = (Vec<Arc<LoadedCert>>, Option<usize>, Option<Arc<LoadedCert>>);

impl ListenerTls {
    pub fn new(t: &settings::TlsListener) -> ListenerTls {
        ListenerTls {
            resolver: SniResolver::new(CertSet::new(&t.certificates, t.default)),
            tickets: server_config::tickets(&t.protocol, t.ticket_keys.as_ref()),
            certs: std::sync::Mutex::new((t.certificates.clone(), t.default, None)),
        }
    }

    /// What a reload changes in place: the certificates, and ticket keys from a key file.
    pub fn reload(&self, t: &settings::TlsListener) {
        self.update(|c| (c.0, c.1) = (t.certificates.clone(), t.default));
        if let (Some(tickets), Some(keys)) = (&self.tickets, &t.ticket_keys) {
            tickets.set_shared_keys(&keys.0);
        }
    }

    /// Serves `cert` (from ACME) from the next handshake on, after the config's certificates
    /// for names both have; it is the default when the config has no certificate.
    pub fn set_acme_cert(&self, cert: Arc<LoadedCert>) {
        self.update(|c| c.2 = Some(cert));
    }

    /// The ACME certificate being served, if any.
    pub fn acme_cert(&self) -> Option<Arc<LoadedCert>> {
        self.certs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .2
            .clone()
    }

    fn update(
        &self,
        change: impl FnOnce(&mut (Vec<Arc<LoadedCert>>, Option<usize>, Option<Arc<LoadedCert>>)),
    ) {
        let mut c = self.certs.lock().unwrap_or_else(|e| e.into_inner());
        change(&mut c);
        let mut all = c.0.clone();
        all.extend(c.2.clone());
        // No default in the config (only ACME, or strict SNI with no certificate): the ACME one.
        let default = match (c.1, c.0.is_empty()) {
            (Some(d), _) => Some(d),
            (None, true) => c.2.as_ref().map(|_| 0),
            (None, false) => None,
        };
        self.resolver.swap(CertSet::new(&all, default));
    }
}

/// pingora's TLS settings for a listener: the whole rustls config built from `[listeners.tls]`
/// (versions, suites, groups, resumption, our resolver, ALPN), with the handshake callbacks.
pub fn listener_settings(
    state: &ListenerTls,
    t: &settings::TlsListener,
    handshakes: &prometheus::IntCounterVec,
) -> pingora::Result<pingora::listeners::tls::TlsSettings> {
    let facts = HandshakeFacts {
        tls12: handshakes.with_label_values(&["TLSv1.2"]),
        tls13: handshakes.with_label_values(&["TLSv1.3"]),
    };
    let mut settings = pingora::listeners::tls::TlsSettings::with_callbacks(Box::new(facts))?;
    let tls_alpn_01 = t
        .acme
        .as_ref()
        .is_some_and(|a| a.challenge == "tls-alpn-01");
    let config = server_config::build(
        &t.protocol,
        state.resolver.clone(),
        state.tickets.clone(),
        (t.h2, tls_alpn_01),
    )
    .map_err(|e| pingora::Error::because(pingora::ErrorType::InternalError, "TLS config", e))?;
    crate::pingora_ext::use_server_config(&mut settings, config);
    Ok(settings)
}
