//! `GET /api/tls`: every TLS listener as it runs — versions, suites, groups, resumption — and
//! each certificate's names, expiry and OCSP staple.

use super::api::{AcmeView, CertificateView, TlsListenerView, TlsView};
use super::Reply;
use crate::runtime::{Runtime, Shared};
use std::sync::atomic::Ordering::Relaxed;

/// Every TLS listener as it runs: what it offers, and each certificate's state.
pub fn tls(shared: &Shared, rt: &Runtime) -> Reply {
    let now = crate::clock::unix_now() as i64;
    let listeners = rt
        .config
        .listeners
        .iter()
        .filter_map(|l| {
            let t = l.tls.as_ref()?;
            let p = &t.protocol;
            let mut versions = vec!["TLSv1.3".to_string()];
            if p.tls12 {
                versions.push("TLSv1.2".into());
            }
            let ticket_keys =
                p.session_tickets
                    .then(|| match (&p.ticket_key_file, &t.ticket_keys) {
                        (Some(f), Some(k)) => format!("file {} ({} keys)", f.display(), k.0.len()),
                        _ => format!(
                            "rotating every {}",
                            humantime::format_duration(p.ticket_rotation)
                        ),
                    });
            let certificates = t
                .certificates
                .iter()
                .enumerate()
                .map(|(i, c)| CertificateView {
                    file: c.cert_path.clone(),
                    names: c.names.clone(),
                    default: t.default == Some(i),
                    not_after: c.not_after,
                    days_left: (c.not_after - now).div_euclid(86_400),
                    ocsp_file: c.ocsp.as_ref().map(|(f, _)| f.clone()),
                    ocsp_next_update: c.ocsp.as_ref().and_then(|(_, n)| *n),
                })
                .collect();
            Some(TlsListenerView {
                listener: l.name.clone(),
                profile: p.profile.into(),
                versions,
                cipher_suites: p.cipher_suites.iter().map(|s| s.to_string()).collect(),
                groups: p.groups.iter().map(|s| s.to_string()).collect(),
                session_tickets: p.session_tickets,
                ticket_keys,
                session_cache: p.session_cache,
                strict_sni: t.default.is_none(),
                certificates,
                acme: t.acme.as_ref().map(|a| {
                    let st = shared.acme.get(&l.name);
                    let not_after = st.map_or(0, |s| s.not_after.load(Relaxed));
                    AcmeView {
                        directory: a.directory.clone(),
                        domains: a.domains.clone(),
                        challenge: a.challenge.into(),
                        not_after: (not_after > 0).then_some(not_after),
                        next_attempt: st.map_or(0, |s| s.next_attempt.load(Relaxed)),
                        renewals: st.map_or(0, |s| s.renewals.load(Relaxed)),
                        failures: st.map_or(0, |s| s.failures.load(Relaxed)),
                        last_error: st.and_then(|s| {
                            s.last_error
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .clone()
                        }),
                    }
                }),
            })
        })
        .collect();
    Reply::ok(&TlsView { listeners })
}
