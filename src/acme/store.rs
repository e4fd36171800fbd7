//! ACME files in `storage`: `account.json` (the account's credentials, its private key
//! included) and `<first domain>.pem` / `.key`, all written with mode 0600 through a temporary
//! file and a rename, so a crash never leaves half a key.

use crate::tls::settings::AcmeSettings;
use crate::tls::LoadedCert;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A certificate from storage or from the ACME server, checked.
pub struct Stored {
    pub cert: Arc<LoadedCert>,
    /// Unix seconds.
    pub not_before: i64,
}

fn paths(s: &AcmeSettings) -> (PathBuf, PathBuf) {
    let stem = s.domains.first().map_or("certificate", String::as_str);
    (
        s.storage.join(format!("{stem}.pem")),
        s.storage.join(format!("{stem}.key")),
    )
}

/// Writes `data` to `path` with mode 0600, atomically.
fn write_private(path: &Path, data: &[u8]) -> Result<(), String> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    f.write_all(data)
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}

pub fn account(s: &AcmeSettings) -> Result<Option<instant_acme::AccountCredentials>, String> {
    let path = s.storage.join("account.json");
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

pub fn save_account(
    s: &AcmeSettings,
    creds: &instant_acme::AccountCredentials,
) -> Result<(), String> {
    let json = serde_json::to_vec_pretty(creds).map_err(|e| e.to_string())?;
    write_private(&s.storage.join("account.json"), &json)
}

/// Saves a new certificate and key, then reads them back as the listener will serve them.
pub fn save(s: &AcmeSettings, chain_pem: &str, key_pem: &str) -> Result<Stored, String> {
    let (cert, key) = paths(s);
    write_private(&key, key_pem.as_bytes())?;
    write_private(&cert, chain_pem.as_bytes())?;
    load(s)?.ok_or_else(|| "the certificate just saved does not load".into())
}

/// The stored certificate, if there is one that covers every configured domain.
pub fn load(s: &AcmeSettings) -> Result<Option<Stored>, String> {
    let (cert, key) = paths(s);
    if !cert.exists() || !key.exists() {
        return Ok(None);
    }
    let now = crate::clock::unix_now() as i64;
    let (c, k) = (cert.display().to_string(), key.display().to_string());
    let loaded = match crate::tls::load_cert(&c, &k, None, 0, now) {
        Ok((loaded, _)) => loaded,
        // Expired or otherwise unusable: order a new one.
        Err(p) => {
            let why: Vec<String> = p.errors.into_iter().map(|(_, e)| e).collect();
            tracing::warn!("stored ACME certificate not used: {}", why.join("; "));
            return Ok(None);
        }
    };
    if !s.domains.iter().all(|d| loaded.names.contains(d)) {
        return Ok(None); // the domains changed: a new order
    }
    let not_before = not_before(&c).unwrap_or(now);
    Ok(Some(Stored {
        cert: Arc::new(loaded),
        not_before,
    }))
}

fn not_before(cert_path: &str) -> Option<i64> {
    use rustls_pki_types::pem::PemObject;
    let der = rustls_pki_types::CertificateDer::pem_file_iter(cert_path)
        .ok()?
        .next()?
        .ok()?;
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    Some(cert.validity().not_before.timestamp())
}
