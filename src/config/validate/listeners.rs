//! `[[listeners]]` and their `[listeners.tls]`: addresses, redirects, HSTS, certificates.

use super::super::defaults as d;
use super::super::error::{Collector, KeyPath};
use super::super::file;
use super::super::*;
use super::values::socket_addr;
use std::collections::HashSet;

pub(super) fn listeners(
    list: Vec<file::ListenerSection>,
    state_dir: &std::path::Path,
    p: &KeyPath,
    c: &mut Collector,
) -> Vec<Listener> {
    if list.is_empty() {
        c.error(p, "at least one [[listeners]] entry is needed");
    }
    let mut seen_addr = HashSet::new();
    let mut seen_name = HashSet::new();
    let mut out = Vec::new();
    for (i, l) in list.into_iter().enumerate() {
        let lp = p.index(i);
        let Some(addr_s) = l.address else {
            c.error(
                &lp.key("address"),
                "missing (e.g. address = \"0.0.0.0:80\")",
            );
            continue;
        };
        let Some(address) = socket_addr(&addr_s, &lp.key("address"), c) else {
            continue;
        };
        if !seen_addr.insert(address) {
            c.error(
                &lp.key("address"),
                format!("{address} is used by another listener"),
            );
        }
        let name = l.name.unwrap_or_else(|| address.to_string());
        if !seen_name.insert(name.clone()) {
            c.error(&lp.key("name"), format!("duplicate listener name {name:?}"));
        }
        let tls = l.tls.map(|t| tls_listener(t, state_dir, &lp.key("tls"), c));
        let redirect_to_https = l.redirect_to_https.unwrap_or(false);
        if redirect_to_https && tls.is_some() {
            c.error(
                &lp.key("redirect_to_https"),
                "only for plain-HTTP listeners: this one has tls",
            );
        }
        let hsts = l.hsts.and_then(|v| {
            if tls.is_none() {
                c.error(&lp.key("hsts"), "only sent over HTTPS: set it on a listener with tls");
            }
            match http::HeaderValue::from_str(&v) {
                Ok(h) if v.contains("max-age=") => Some(h),
                _ => {
                    c.error(&lp.key("hsts"), format!("not a Strict-Transport-Security value: {v:?} (e.g. \"max-age=31536000; includeSubDomains\")"));
                    None
                }
            }
        });
        out.push(Listener {
            name,
            address,
            tls,
            redirect_to_https,
            hsts,
            proxy_protocol: l.proxy_protocol.unwrap_or(d::PROXY_PROTOCOL),
        });
    }
    http01_needs_plain(&out, p, c);
    if out.iter().any(|l| l.redirect_to_https) && !out.iter().any(|l| l.tls.is_some()) {
        c.error(p, "redirect_to_https is set but no listener has tls");
    }
    out
}

fn tls_listener(
    mut t: file::TlsSection,
    state_dir: &std::path::Path,
    p: &KeyPath,
    c: &mut Collector,
) -> TlsListener {
    let (protocol, ticket_keys) = super::tls::protocol(&mut t, p, c);
    let acme = t
        .acme
        .take()
        .and_then(|a| super::tls::acme(a, state_dir, &p.key("acme"), c));
    let warn_days = t.expiry_warning_days.unwrap_or(d::EXPIRY_WARNING_DAYS);
    if t.certificates.is_empty() && acme.is_none() {
        c.error(
            &p.key("certificates"),
            "a TLS listener needs at least one [[listeners.tls.certificates]] (cert and key)",
        );
    }
    let (certificates, default) = certificates(t.certificates, warn_days, p, c);
    let strict = t.strict_sni.unwrap_or(d::STRICT_SNI);
    if strict && default.is_some() {
        c.error(
            &p.key("strict_sni"),
            "strict SNI has no default certificate: drop `default = true` or strict_sni",
        );
    }
    let default = if strict {
        None
    } else {
        Some(default.unwrap_or(0))
    };
    TlsListener {
        certificates,
        default,
        h2: t.h2.unwrap_or(d::H2),
        protocol,
        ticket_keys,
        acme,
    }
}

/// ACME http-01 challenges are answered on a plain-HTTP listener: there must be one.
fn http01_needs_plain(listeners: &[Listener], p: &KeyPath, c: &mut Collector) {
    let http01 = listeners.iter().position(|l| {
        l.tls
            .as_ref()
            .and_then(|t| t.acme.as_ref())
            .is_some_and(|a| a.challenge == "http-01")
    });
    if let Some(i) = http01 {
        if !listeners.iter().any(|l| l.tls.is_none()) {
            c.error(
                &p.index(i).key("tls").key("acme").key("challenge"),
                "http-01 is answered on a plain-HTTP listener (port 80 for a public ACME server), and there is none: add one",
            );
        }
    }
}

/// Each `[[certificates]]` entry loaded and checked, and the index of the one marked default.
fn certificates(
    entries: Vec<file::CertEntry>,
    warn_days: u32,
    p: &KeyPath,
    c: &mut Collector,
) -> (Vec<Arc<crate::tls::LoadedCert>>, Option<usize>) {
    let now = crate::clock::unix_now() as i64;
    let mut certificates = Vec::new();
    let mut default = None;
    for (i, entry) in entries.into_iter().enumerate() {
        let cp = p.key("certificates").index(i);
        let (Some(cert), Some(key)) = (&entry.cert, &entry.key) else {
            if entry.cert.is_none() {
                c.error(&cp.key("cert"), "missing: the certificate chain PEM file");
            }
            if entry.key.is_none() {
                c.error(&cp.key("key"), "missing: the private key PEM file");
            }
            continue;
        };
        let ocsp = match entry.ocsp.as_deref().map(|o| o.strip_prefix("file:")) {
            None => None,
            Some(Some(path)) => Some(path),
            Some(None) => {
                c.error(
                    &cp.key("ocsp"),
                    "write \"file:PATH\" (an OCSP response in DER)",
                );
                None
            }
        };
        match crate::tls::load_cert(cert, key, ocsp, warn_days, now) {
            Ok((loaded, problems)) => {
                for (k, w) in problems.warnings {
                    c.warn(&cp.key(k), w);
                }
                if entry.default == Some(true) {
                    if default.is_some() {
                        c.error(
                            &cp.key("default"),
                            "only one certificate can be the default",
                        );
                    }
                    default = Some(certificates.len());
                }
                certificates.push(Arc::new(loaded));
            }
            Err(problems) => {
                for (k, e) in problems.errors {
                    c.error(&cp.key(k), e);
                }
            }
        }
    }
    (certificates, default)
}
