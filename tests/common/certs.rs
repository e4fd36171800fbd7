//! Certificates made at test time with rcgen: a CA, and leaves it signs (or not) written as
//! PEM files into a test directory; the config of a TLS listener serving them. No key material
//! lives in the repository.

use super::{boot_config, one_route, server_section, Origin};
use gatehouse::Config;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls_pki_types::CertificateDer;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use time::{Duration, OffsetDateTime};

pub struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

/// A leaf written to disk.
pub struct Leaf {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub der: CertificateDer<'static>,
}

impl Ca {
    pub fn new() -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "gatehouse test CA");
        let cert = params.self_signed(&key).unwrap();
        Ca { cert, key }
    }

    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    pub fn der(&self) -> CertificateDer<'static> {
        self.cert.der().clone()
    }

    /// A leaf for `names`, valid from yesterday for `days`.
    pub fn issue(&self, dir: &Path, stem: &str, names: &[&str]) -> Leaf {
        self.issue_with(dir, stem, names, -1, 90)
    }

    /// A leaf valid from `from_days` (relative to now) for `days`.
    pub fn issue_with(
        &self,
        dir: &Path,
        stem: &str,
        names: &[&str],
        from_days: i64,
        days: i64,
    ) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name.push(DnType::CommonName, stem);
        let start = OffsetDateTime::now_utc() + Duration::days(from_days);
        params.not_before = start;
        params.not_after = start + Duration::days(days);
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        let leaf = Leaf {
            cert: dir.join(format!("{stem}.pem")),
            key: dir.join(format!("{stem}.key")),
            der: cert.der().clone(),
        };
        std::fs::write(&leaf.cert, cert.pem() + &self.cert.pem()).unwrap();
        std::fs::write(&leaf.key, key.serialize_pem()).unwrap();
        leaf
    }
}

/// `[[listeners.tls.certificates]]` for leaves, in order.
pub fn cert_entries(leaves: &[&Leaf]) -> String {
    leaves
        .iter()
        .map(|l| {
            format!(
                "[[listeners.tls.certificates]]\ncert = {:?}\nkey = {:?}\n",
                l.cert.display().to_string(),
                l.key.display().to_string()
            )
        })
        .collect()
}

/// An HTTPS client trusting `ca`, resolving each of `names` to `addr`.
pub fn https_client(
    ca: &Ca,
    names: &[&str],
    addr: std::net::SocketAddr,
    http1_only: bool,
) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_der(ca.der().as_ref()).unwrap())
        .timeout(std::time::Duration::from_secs(10));
    for n in names {
        b = b.resolve(n, addr);
    }
    if http1_only {
        b = b.http1_only();
    }
    b.build().unwrap()
}

/// A one-pool config with one TLS listener named `https`; `tls_extra` goes into `[listeners.tls]`.
pub fn tls_config(
    addr: SocketAddr,
    origin: &Origin,
    leaves: &[&Leaf],
    tls_extra: &str,
    listener_extra: &str,
) -> String {
    tls_config_in(
        &server_section(),
        addr,
        origin,
        leaves,
        tls_extra,
        listener_extra,
    )
}

/// `tls_config` with a given `[server]`/`[admin]` section (reloads must keep the admin address).
pub fn tls_config_in(
    section: &str,
    addr: SocketAddr,
    origin: &Origin,
    leaves: &[&Leaf],
    tls_extra: &str,
    listener_extra: &str,
) -> String {
    format!(
        "{section}[[listeners]]\nname = \"https\"\naddress = \"{addr}\"\n{listener_extra}\n[listeners.tls]\n{tls_extra}\n{}\n{}",
        cert_entries(leaves),
        one_route(&[origin]),
    )
}

/// Boots gatehouse on a whole config (a `tls_config`, say).
pub async fn boot_tls(toml: &str) -> gatehouse::Gatehouse {
    boot_config(Config::from_toml(toml, "test").unwrap_or_else(|e| panic!("{e}\n{toml}"))).await
}
