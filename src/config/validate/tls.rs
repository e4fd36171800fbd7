//! `[listeners.tls]` protocol settings: Mozilla's profile, or explicit versions, suites and
//! groups, checked against what gatehouse's TLS library (rustls with ring) offers; session
//! tickets (rotation, or a shared key file) and the session cache.

use super::super::defaults as d;
use super::super::error::{Collector, KeyPath};
use super::super::file;
use super::super::*;
use super::values::duration;

/// TLS 1.3 suites, then TLS 1.2 ones, in Mozilla's order of preference (all that ring offers:
/// these are exactly Mozilla's "intermediate" list).
const TLS13_SUITES: [&str; 3] = [
    "TLS13_AES_128_GCM_SHA256",
    "TLS13_AES_256_GCM_SHA384",
    "TLS13_CHACHA20_POLY1305_SHA256",
];
const TLS12_SUITES: [&str; 6] = [
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
];
/// Mozilla's groups for both profiles (X25519, prime256v1, secp384r1).
const GROUPS: [&str; 3] = ["X25519", "secp256r1", "secp384r1"];

/// The rustls name of a suite written in rustls, IANA or OpenSSL spelling.
fn suite_name(s: &str) -> Option<&'static str> {
    let up = s.trim().to_ascii_uppercase().replace('-', "_");
    let openssl = |ossl: &str| -> Option<&'static str> {
        let (kx, rest) = ossl.split_once('_')?;
        let auth_and_cipher = rest;
        let (auth, cipher) = auth_and_cipher.split_once('_')?;
        let iana = match cipher {
            "AES128_GCM_SHA256" => "AES_128_GCM_SHA256",
            "AES256_GCM_SHA384" => "AES_256_GCM_SHA384",
            "CHACHA20_POLY1305" => "CHACHA20_POLY1305_SHA256",
            _ => return None,
        };
        let want = format!("TLS_{kx}_{auth}_WITH_{iana}");
        TLS12_SUITES.iter().copied().find(|n| *n == want)
    };
    let tls13 = up.strip_prefix("TLS_").map(|r| format!("TLS13_{r}"));
    TLS13_SUITES
        .iter()
        .chain(&TLS12_SUITES)
        .copied()
        .find(|n| *n == up || Some(n.to_string()) == tls13)
        .or_else(|| openssl(&up))
}

fn group_name(g: &str) -> Option<&'static str> {
    match g.trim().to_ascii_lowercase().as_str() {
        "x25519" => Some("X25519"),
        "secp256r1" | "prime256v1" | "p-256" => Some("secp256r1"),
        "secp384r1" | "p-384" => Some("secp384r1"),
        _ => None,
    }
}

pub(super) fn protocol(
    t: &mut file::TlsSection,
    p: &KeyPath,
    c: &mut Collector,
) -> (TlsProtocol, Option<TicketKeys>) {
    let profile = match t.profile.as_deref().unwrap_or(d::TLS_PROFILE) {
        "intermediate" => "intermediate",
        "modern" => "modern",
        other => {
            c.error(
                &p.key("profile"),
                format!(
                    "unknown profile {other:?}: use \"intermediate\" or \"modern\" (Mozilla's)"
                ),
            );
            "intermediate"
        }
    };
    let tls12 = match t.min_version.as_deref() {
        None => profile == "intermediate",
        Some("1.2") => true,
        Some("1.3") => false,
        Some(other) => {
            c.error(
                &p.key("min_version"),
                format!("{other:?}: use \"1.2\" or \"1.3\""),
            );
            true
        }
    };
    let cipher_suites = suites(t.cipher_suites.take(), tls12, p, c);
    let groups = match t.groups.take() {
        None => GROUPS.to_vec(),
        Some(list) => names(list, group_name, &p.key("groups"), c, &GROUPS),
    };
    let session_tickets = t.session_tickets.unwrap_or(d::SESSION_TICKETS);
    let ticket_rotation = duration(
        t.ticket_rotation.take(),
        d::TICKET_ROTATION,
        &p.key("ticket_rotation"),
        c,
    );
    if ticket_rotation < std::time::Duration::from_secs(60) {
        c.error(&p.key("ticket_rotation"), "at least 1m");
    }
    let ticket_key_file = t.ticket_key_file.take().map(PathBuf::from);
    let ticket_keys = ticket_key_file
        .as_deref()
        .and_then(|f| ticket_keys(f, &p.key("ticket_key_file"), c));
    if ticket_key_file.is_some() && !session_tickets {
        c.error(
            &p.key("ticket_key_file"),
            "set, but session_tickets = false",
        );
    }
    let protocol = TlsProtocol {
        profile,
        tls12,
        cipher_suites,
        groups,
        session_tickets,
        ticket_rotation,
        ticket_key_file,
        session_cache: t.session_cache.unwrap_or(d::SESSION_CACHE),
    };
    (protocol, ticket_keys)
}

fn suites(
    list: Option<Vec<String>>,
    tls12: bool,
    p: &KeyPath,
    c: &mut Collector,
) -> Vec<&'static str> {
    let all: Vec<&str> = TLS13_SUITES.iter().chain(&TLS12_SUITES).copied().collect();
    let Some(list) = list else {
        return if tls12 { all } else { TLS13_SUITES.to_vec() };
    };
    let key = p.key("cipher_suites");
    let chosen = names(list, suite_name, &key, c, &all);
    if !chosen.iter().any(|s| s.starts_with("TLS13_")) {
        c.error(
            &key,
            "no TLS 1.3 suite: list at least one (e.g. \"TLS13_AES_128_GCM_SHA256\")",
        );
    }
    if tls12 && !chosen.iter().any(|s| !s.starts_with("TLS13_")) {
        c.error(
            &key,
            "TLS 1.2 is offered (min_version \"1.2\") but no TLS 1.2 suite is listed",
        );
    }
    chosen
}

/// Each name resolved, unknown ones reported with the list of known ones.
fn names(
    list: Vec<String>,
    resolve: fn(&str) -> Option<&'static str>,
    key: &KeyPath,
    c: &mut Collector,
    known: &[&str],
) -> Vec<&'static str> {
    let mut out = Vec::new();
    for n in &list {
        match resolve(n) {
            Some(r) if !out.contains(&r) => out.push(r),
            Some(_) => {}
            None => c.error(key, format!("unknown {n:?}: use {}", known.join(", "))),
        }
    }
    if list.is_empty() {
        c.error(key, "empty: leave it out for the profile's list");
    }
    out
}

/// HAProxy's ticket key file: one base64 key of 48 or 80 bytes per line.
fn ticket_keys(path: &Path, key: &KeyPath, c: &mut Collector) -> Option<TicketKeys> {
    use base64::Engine;
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            c.error(key, format!("{}: cannot read: {e}", path.display()));
            return None;
        }
    };
    let mut keys = Vec::new();
    for (i, line) in text.lines().map(str::trim).enumerate() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match base64::engine::general_purpose::STANDARD.decode(line) {
            Ok(k) if k.len() == 48 || k.len() == 80 => keys.push(k),
            Ok(k) => c.error(
                key,
                format!("{} line {}: a key is 48 or 80 bytes, this one {} (make one with: openssl rand -base64 80)", path.display(), i + 1, k.len()),
            ),
            Err(_) => c.error(key, format!("{} line {}: not base64", path.display(), i + 1)),
        }
    }
    if keys.is_empty() {
        c.error(
            key,
            format!(
                "{}: no key (make one with: openssl rand -base64 80)",
                path.display()
            ),
        );
        return None;
    }
    Some(TicketKeys(keys))
}

/// `[listeners.tls.acme]`; `state_dir` gives the default storage.
pub(super) fn acme(
    a: file::AcmeSection,
    state_dir: &Path,
    p: &KeyPath,
    c: &mut Collector,
) -> Option<AcmeSettings> {
    check_names(&a, p, c);
    let directory = match a.directory {
        Some(d) if d.starts_with("https://") || d.starts_with("http://") => d,
        Some(d) => {
            c.error(
                &p.key("directory"),
                format!(
                    "not a URL: {d:?} (e.g. \"https://acme-v02.api.letsencrypt.org/directory\")"
                ),
            );
            return None;
        }
        None => {
            c.error(
                &p.key("directory"),
                "missing: the ACME server's directory URL",
            );
            return None;
        }
    };
    let challenge = match a.challenge.as_deref().unwrap_or("http-01") {
        "http-01" => "http-01",
        "tls-alpn-01" => "tls-alpn-01",
        other => {
            c.error(
                &p.key("challenge"),
                format!("unknown challenge {other:?}: use \"http-01\" or \"tls-alpn-01\""),
            );
            "http-01"
        }
    };
    let storage = a
        .storage
        .map(PathBuf::from)
        .unwrap_or_else(|| state_dir.join("acme"));
    if let Some(problem) = not_writable(&storage) {
        c.error(
            &p.key("storage"),
            format!("{}: {problem}", storage.display()),
        );
    }
    let retry = duration(a.retry, "1m", &p.key("retry"), c);
    let renew_before = a
        .renew_before
        .map(|v| duration(Some(v), "30d", &p.key("renew_before"), c));
    Some(AcmeSettings {
        directory,
        contact: a.contact,
        domains: a.domains.iter().map(|d| d.to_ascii_lowercase()).collect(),
        challenge,
        storage,
        directory_ca: a.directory_ca.map(PathBuf::from),
        renew_before,
        retry,
    })
}

/// Why `dir` (or, while it does not exist, its nearest existing parent) cannot take the ACME
/// files; probed by creating and removing a file, so ownership and mounts count.
fn not_writable(dir: &Path) -> Option<String> {
    let existing = dir.ancestors().find(|a| a.exists())?;
    if !existing.is_dir() {
        return Some(format!("{} is not a directory", existing.display()));
    }
    let probe = existing.join(format!(".gatehouse-write-test-{}", std::process::id()));
    match std::fs::File::create(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            None
        }
        Err(e) => Some(format!("not writable ({e})")),
    }
}

/// The domains are DNS names, the contacts `mailto:` addresses.
fn check_names(a: &file::AcmeSection, p: &KeyPath, c: &mut Collector) {
    if a.domains.is_empty() {
        c.error(
            &p.key("domains"),
            "missing: the names the certificate is for",
        );
    }
    let label =
        |l: &str| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    for d in &a.domains {
        if d.is_empty() || !d.split('.').all(label) {
            c.error(
                &p.key("domains"),
                format!(
                    "{d:?} is not a DNS name (wildcards need dns-01, which gatehouse does not do)"
                ),
            );
        }
    }
    for m in &a.contact {
        if !m.starts_with("mailto:") {
            c.error(
                &p.key("contact"),
                format!("{m:?}: write \"mailto:ADDRESS\""),
            );
        }
    }
}
