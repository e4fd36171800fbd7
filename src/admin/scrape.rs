//! What `GET /metrics` reads from the running state at scrape time, handed to `metrics` as
//! plain values.

use crate::metrics::{ClusterScrape, Scrape, ServerScrape};
use crate::runtime::Shared;
use std::sync::atomic::Ordering::Relaxed;

/// The Prometheus text of the running state.
pub fn render(shared: &Shared) -> String {
    let rt = shared.current();
    let mut scrape = Scrape::default();
    for pool in &rt.pools {
        for s in &pool.servers {
            let st = &s.state;
            scrape.servers.push(ServerScrape {
                pool: &pool.config.name,
                server: &s.config.name,
                state: st.admin_state().as_str(),
                up: st.is_healthy(),
                effective_weight: s.effective_weight(),
                in_flight: st.inflight(),
                requests: st.requests(),
                check_failures: st.check_failures(),
                connect_failures: st.connect_failures(),
            });
        }
    }
    let c = &rt.cache.counters;
    scrape.cache_events = [
        ("hit", &c.hits),
        ("miss", &c.misses),
        ("stale", &c.stale),
        ("pass", &c.passes),
        ("expired", &c.expired),
        ("revalidated", &c.revalidated),
        ("coalesced", &c.coalesced),
        ("eviction", &c.evictions),
        ("too_large", &c.too_large),
        ("warmed", &c.warmed),
        ("from_sibling", &c.from_siblings),
    ]
    .into_iter()
    .map(|(event, v)| (event, v.load(Relaxed)))
    .collect();
    let s = &c.snapshot;
    scrape.cache_snapshot = [
        ("loaded_objects", &s.loaded_objects),
        ("loaded_bytes", &s.loaded_bytes),
        ("load_ms", &s.load_ms),
        ("refused", &s.refused),
        ("written_objects", &s.written_objects),
        ("written_bytes", &s.written_bytes),
        ("write_ms", &s.write_ms),
    ]
    .into_iter()
    .map(|(what, v)| (what, v.load(Relaxed)))
    .collect();
    (scrape.cache_bytes, scrape.cache_objects) = rt.cache.usage();
    add_tls(&mut scrape, shared, &rt);
    scrape.readonly_active = shared.readonly.load().is_active();
    scrape.readonly_refused = shared.readonly_refused.load(Relaxed);
    scrape.blocked = shared.blocked.load(Relaxed);
    scrape.blocks = shared.blocks.load().active(crate::clock::unix_now()).len();
    for (name, stats) in shared.access_log.stats() {
        scrape
            .log_targets
            .push((name, stats.sent.load(Relaxed), stats.dropped.load(Relaxed)));
    }
    scrape.reloads_ok = shared.reloads_ok.load(Relaxed);
    scrape.reloads_failed = shared.reloads_failed.load(Relaxed);
    let conns = &shared.conns;
    scrape.client_open = conns.open();
    scrape.client_accepted = conns.accepted.load(Relaxed);
    scrape.client_refusals = vec![
        ("max_connections", conns.refused_total.load(Relaxed)),
        (
            "max_connections_per_client",
            conns.refused_per_client.load(Relaxed),
        ),
        ("connection_rate", conns.refused_rate.load(Relaxed)),
        ("header_timeout", conns.header_timeouts.load(Relaxed)),
    ];
    scrape.config_loaded = rt.loaded_at;
    scrape.worker_threads = rt.config.server.threads;
    scrape.cluster = cluster(shared);
    shared.metrics.render(&scrape)
}

fn cluster(shared: &Shared) -> Option<ClusterScrape<'_>> {
    shared.cluster.as_deref().map(|c| {
        let st = &c.status;
        ClusterScrape {
            cluster: &c.config.name,
            node: &c.config.node,
            connected: st.connected.load(Relaxed),
            applied_revision: st.applied_revision(),
            sync_age: st.sync_age_ms().map(|ms| ms as f64 / 1000.0),
            events: [
                ("reconnect", st.reconnects.load(Relaxed)),
                ("full_read", st.full_reads.load(Relaxed)),
                ("write_ok", st.writes_ok.load(Relaxed)),
                ("write_unknown", st.writes_failed.load(Relaxed)),
            ],
        }
    })
}

/// Certificates, OCSP staples, ACME and failed handshakes.
fn add_tls<'a>(scrape: &mut Scrape<'a>, shared: &'a Shared, rt: &'a crate::runtime::Runtime) {
    for l in &rt.config.listeners {
        for cert in l.tls.iter().flat_map(|t| &t.certificates) {
            scrape
                .certificates
                .push((&l.name, &cert.cert_path, cert.not_after));
            if let Some((_, Some(next))) = &cert.ocsp {
                scrape
                    .ocsp_next_update
                    .push((&l.name, &cert.cert_path, *next));
            }
        }
    }
    for (listener, st) in &shared.acme {
        scrape.acme.push((
            listener,
            st.not_after.load(Relaxed),
            st.renewals.load(Relaxed),
            st.failures.load(Relaxed),
        ));
    }
    scrape.tls_handshake_failures = crate::telemetry::handshake_failures();
    scrape.client_misbehaviour = crate::telemetry::misbehaviour();
}
