//! A TLS listener's settings, as validated from `[listeners.tls]` (the config module re-exports
//! them): its certificates, and the protocol it offers.

use super::LoadedCert;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct TlsListener {
    /// Checked certificates, in file order.
    pub certificates: Vec<Arc<LoadedCert>>,
    /// Index of the certificate for clients with no or unknown SNI; None = strict SNI.
    pub default: Option<usize>,
    pub h2: bool,
    /// Versions, suites, groups, resumption: fixed when the listener starts.
    pub protocol: TlsProtocol,
    /// The keys of `ticket_key_file`, when set (first one seals): a reload swaps them in.
    pub ticket_keys: Option<TicketKeys>,
    /// Certificates from an ACME server, besides (or instead of) `certificates`.
    pub acme: Option<AcmeSettings>,
}

/// What a TLS listener offers, fixed when it starts (a reload reports a change as applying
/// after a binary upgrade or restart).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsProtocol {
    /// Mozilla's profile the defaults follow: "intermediate" or "modern".
    pub profile: &'static str,
    /// TLS 1.2 offered (false: TLS 1.3 only).
    pub tls12: bool,
    /// rustls names of the cipher suites offered, in preference order.
    pub cipher_suites: Vec<&'static str>,
    /// Key exchange groups offered, in preference order (rustls names).
    pub groups: Vec<&'static str>,
    pub session_tickets: bool,
    /// How often random ticket keys are replaced (ignored with a key file).
    pub ticket_rotation: Duration,
    pub ticket_key_file: Option<PathBuf>,
    /// Sessions remembered by id (TLS 1.2 without tickets, TLS 1.3 without tickets); 0: none.
    pub session_cache: usize,
}

/// Ticket keys read from a file: compared by content, shown by count and fingerprint only.
#[derive(Clone, PartialEq, Eq)]
pub struct TicketKeys(pub Vec<Vec<u8>>);

impl std::fmt::Debug for TicketKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let all: Vec<u8> = self.0.concat();
        let digest = ring::digest::digest(&ring::digest::SHA256, &all);
        let short: String = digest.as_ref()[..6]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        write!(f, "TicketKeys({} keys, sha256 {short})", self.0.len())
    }
}

/// `[listeners.tls.acme]`: certificates obtained and renewed from an ACME server (RFC 8555).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeSettings {
    /// The directory URL (e.g. Let's Encrypt's).
    pub directory: String,
    /// "mailto:..." addresses given to the ACME server.
    pub contact: Vec<String>,
    /// The names of the certificate (the first one names its files).
    pub domains: Vec<String>,
    /// http-01 (answered on a plain listener) or tls-alpn-01 (in the TLS handshake).
    pub challenge: &'static str,
    /// Account key and certificates, mode 0600.
    pub storage: PathBuf,
    /// A PEM root to trust for the ACME server's own HTTPS (test servers); None: the system's.
    pub directory_ca: Option<PathBuf>,
    /// Renew this long before expiry; None: once two thirds of the lifetime have passed.
    pub renew_before: Option<Duration>,
    /// The first wait after a failed attempt (doubling, at most an hour).
    pub retry: Duration,
}
