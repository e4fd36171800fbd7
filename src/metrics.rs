//! Prometheus metrics (`GET /metrics` on the admin listener).
//!
//! Per-request counters and histograms are resolved once per config generation
//! (`RouteMetrics`: one handle per route × server × status class), so a request only does
//! atomic increments: no label lookup, no lock, no allocation. Everything else (server states,
//! cache, access log, read-only, reloads) is read from its own atomics when Prometheus scrapes.

use crate::config::Config;
use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Status classes: index 0 for "no response", then 1xx..5xx.
const CLASSES: [&str; 6] = ["none", "1xx", "2xx", "3xx", "4xx", "5xx"];
/// X-Cache statuses, in `cache::Status` order.
const CACHE: [&str; 6] = ["HIT", "MISS", "STALE", "PASS", "EXPIRED", "REVALIDATED"];
const NO_ROUTE: &str = "-";

/// Per-route handles, resolved at config load.
pub struct RouteMetrics {
    /// [server index (last: no server)][status class]
    requests: Vec<[IntCounter; 6]>,
    cache: [IntCounter; 6],
    duration: Histogram,
    ttfb: Histogram,
}

impl RouteMetrics {
    /// Counts one finished request: all atomics.
    pub fn observe(
        &self,
        server: Option<usize>,
        status: u16,
        cache: Option<crate::cache::Status>,
        total_s: f64,
        ttfb_s: Option<f64>,
    ) {
        let row = server.map_or(self.requests.len() - 1, |s| s.min(self.requests.len() - 1));
        let class = usize::from(status / 100).min(5);
        self.requests[row][class].inc();
        if let Some(c) = cache {
            self.cache[c as usize].inc();
        }
        self.duration.observe(total_s);
        if let Some(t) = ttfb_s {
            self.ttfb.observe(t);
        }
    }
}

pub struct Metrics {
    pub registry: Registry,
    requests: IntCounterVec,
    cache_requests: IntCounterVec,
    duration: HistogramVec,
    ttfb: HistogramVec,
    server_state: IntGaugeVec,
    server_up: IntGaugeVec,
    server_in_flight: IntGaugeVec,
    server_weight: prometheus::GaugeVec,
    server_requests: IntCounterVec,
    server_check_failures: IntCounterVec,
    server_connect_failures: IntCounterVec,
    cache_events: IntCounterVec,
    cache_snapshot: IntGaugeVec,
    cache_bytes: IntGauge,
    cache_objects: IntGauge,
    pub tls_handshakes: IntCounterVec,
    tls_handshake_failures: IntCounterVec,
    client_misbehaviour: IntCounterVec,
    cert_expiry: GaugeVec,
    ocsp_next_update: GaugeVec,
    acme_expiry: GaugeVec,
    acme_orders: IntCounterVec,
    readonly_mode: IntGauge,
    readonly_refused: IntCounter,
    blocked: IntCounter,
    blocks: IntGauge,
    log_records: IntCounterVec,
    reloads: IntCounterVec,
    config_loaded: Gauge,
    worker_threads: IntGauge,
    in_flight: IntGauge,
    client_connections: IntGauge,
    cluster_connected: IntGaugeVec,
    cluster_revision: IntGaugeVec,
    cluster_sync_age: GaugeVec,
    cluster_events: IntCounterVec,
    client_accepted: IntCounter,
    client_refusals: IntCounterVec,
    access_refused: IntCounterVec,
    rate_limited: IntCounterVec,
    compression_responses: IntCounterVec,
    compression_bytes: IntCounterVec,
}

/// What gatehouse's coders did, `[Op][Encoding]` (compress, decompress × gzip, br, zstd).
pub struct CompressionMetrics {
    pub coded: [[CodedMetrics; 3]; 2],
}

/// One coder kind's counters.
pub struct CodedMetrics {
    pub responses: IntCounter,
    /// Bytes into the coder and out of it (the ratio is out ÷ in).
    pub bytes_in: IntCounter,
    pub bytes_out: IntCounter,
}

/// What a rate limit did to the requests over it, by outcome.
pub struct RateLimitMetrics {
    pub refused: IntCounter,
    pub delayed: IntCounter,
    pub closed: IntCounter,
    /// Over the limit in dry-run mode: let through.
    pub dry_run: IntCounter,
    /// New keys its full table counted in the place of others still counting.
    pub evicted: IntCounter,
}

fn counter_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let v = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    r.register(Box::new(v.clone())).expect("unique metric");
    v
}

fn gauge_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let v = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
    r.register(Box::new(v.clone())).expect("unique metric");
    v
}

fn histogram_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    let buckets = vec![
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    ];
    let v = HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels)
        .expect("valid metric");
    r.register(Box::new(v.clone())).expect("unique metric");
    v
}

fn single<T: prometheus::core::Collector + Clone + 'static>(r: &Registry, m: T) -> T {
    r.register(Box::new(m.clone())).expect("unique metric");
    m
}

/// Raises a counter to `value` (the source of truth is an atomic of ours).
fn sync(c: &IntCounter, value: u64) {
    let cur = c.get();
    if value > cur {
        c.inc_by(value - cur);
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let r = Registry::new();
        #[cfg(target_os = "linux")]
        {
            let _ = r.register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ));
        }
        Metrics {
            requests: counter_vec(&r, "gatehouse_requests_total", "Requests by route, pool, server and status class.", &["route", "pool", "server", "code"]),
            cache_requests: counter_vec(&r, "gatehouse_cache_requests_total", "Requests on caching routes by cache status.", &["route", "status"]),
            duration: histogram_vec(&r, "gatehouse_request_duration_seconds", "Total active time of requests.", &["route"]),
            ttfb: histogram_vec(&r, "gatehouse_upstream_response_seconds", "Time from connected to the server's response headers.", &["route"]),
            server_state: gauge_vec(&r, "gatehouse_server_state", "1 for the server's admin state (ready, drain, maint).", &["pool", "server", "state"]),
            server_up: gauge_vec(&r, "gatehouse_server_up", "1 if the server passes its health check.", &["pool", "server"]),
            server_in_flight: gauge_vec(&r, "gatehouse_server_in_flight", "Requests in flight on the server.", &["pool", "server"]),
            server_weight: single(&r, prometheus::GaugeVec::new(Opts::new("gatehouse_server_weight", "Effective weight: the configured one, ramping during slow start."), &["pool", "server"]).expect("valid")),
            server_requests: counter_vec(&r, "gatehouse_server_requests_total", "Requests sent to the server (attempts).", &["pool", "server"]),
            server_check_failures: counter_vec(&r, "gatehouse_server_check_failures_total", "Failed health checks.", &["pool", "server"]),
            server_connect_failures: counter_vec(&r, "gatehouse_server_connect_failures_total", "Failed connection attempts.", &["pool", "server"]),
            cache_snapshot: gauge_vec(&r, "gatehouse_cache_snapshot", "The cache snapshot (<state_dir>/cache.snapshot): loaded_objects, loaded_bytes, load_ms (read at start), refused (1: the one found was partial, corrupt or foreign), written_objects, written_bytes, write_ms (written at the last graceful stop or hand-off of this process).", &["what"]),
            cache_events: counter_vec(&r, "gatehouse_cache_events_total", "Cache events: hit, miss, stale, pass, expired, revalidated, coalesced, eviction, too_large, warmed (objects a hot spare copied from its peers), from_sibling (misses answered by a peer's copy).", &["event"]),
            cache_bytes: single(&r, IntGauge::new("gatehouse_cache_stored_bytes", "Bytes stored in the cache (headers and bodies).").expect("valid")),
            cache_objects: single(&r, IntGauge::new("gatehouse_cache_objects", "Objects stored in the cache.").expect("valid")),
            tls_handshakes: counter_vec(&r, "gatehouse_tls_handshakes_total", "Completed TLS handshakes by protocol version.", &["version"]),
            tls_handshake_failures: counter_vec(&r, "gatehouse_tls_handshake_failures_total", "Failed TLS handshakes by reason: eof (the client closed), timeout, protocol.", &["reason"]),
            client_misbehaviour: counter_vec(&r, "gatehouse_client_misbehaviour_total", "Client misbehaviour by reason: silent (no request before client_header), h2_handshake, cancelled (left before its answer was complete), send_timeout (took nothing for client_send), reset_flood (an HTTP/2 connection closed for cancelling most of its streams), evicted (a connection without a request closed to make room), proxy_header (no valid PROXY protocol header on a proxy_protocol listener), proxy_untrusted (a proxy_protocol listener's connection from outside trusted_proxies).", &["reason"]),
            acme_expiry: single(&r, GaugeVec::new(Opts::new("gatehouse_acme_certificate_expiry_timestamp_seconds", "Expiry of each listener's ACME certificate (Unix time); absent before the first."), &["listener"]).expect("valid")),
            acme_orders: counter_vec(&r, "gatehouse_acme_orders_total", "ACME orders by listener and result (ok, failure).", &["listener", "result"]),
            ocsp_next_update: single(&r, GaugeVec::new(Opts::new("gatehouse_tls_ocsp_next_update_timestamp_seconds", "nextUpdate of each stapled OCSP response (Unix time): fetch a fresh one before it."), &["listener", "cert"]).expect("valid")),
            cert_expiry: single(&r, GaugeVec::new(Opts::new("gatehouse_certificate_expiry_timestamp_seconds", "Expiry of each certificate (Unix time)."), &["listener", "cert"]).expect("valid")),
            readonly_mode: single(&r, IntGauge::new("gatehouse_readonly_mode", "1 while read-only mode is on.").expect("valid")),
            readonly_refused: single(&r, IntCounter::new("gatehouse_readonly_refused_total", "Writes refused by read-only mode.").expect("valid")),
            blocked: single(&r, IntCounter::new("gatehouse_blocked_total", "Requests refused by an address block (POST /api/blocks).").expect("valid")),
            blocks: single(&r, IntGauge::new("gatehouse_blocks", "Address blocks in force.").expect("valid")),
            log_records: counter_vec(&r, "gatehouse_access_log_records_total", "Access log records by target and outcome (sent, dropped).", &["target", "outcome"]),
            reloads: counter_vec(&r, "gatehouse_reloads_total", "Config reloads by result.", &["result"]),
            config_loaded: single(&r, Gauge::new("gatehouse_config_load_timestamp_seconds", "When the running config was loaded (Unix time).").expect("valid")),
            worker_threads: single(&r, IntGauge::new("gatehouse_worker_threads", "Worker threads of the proxy.").expect("valid")),
            in_flight: single(&r, IntGauge::new("gatehouse_requests_in_flight", "Requests in flight to servers.").expect("valid")),
            client_connections: single(&r, IntGauge::new("gatehouse_client_connections", "Open client connections (after the TLS handshake).").expect("valid")),
            client_accepted: single(&r, IntCounter::new("gatehouse_client_connections_total", "Client connections accepted (after the TLS handshake).").expect("valid")),
            client_refusals: counter_vec(&r, "gatehouse_client_refusals_total", "Client connections refused or cut: max_connections, max_connections_per_client (503), header_timeout (408).", &["reason"]),
            access_refused: counter_vec(&r, "gatehouse_access_refused_total", "Requests refused by an access rule (answered with its status, or dropped), by rule.", &["rule"]),
            compression_responses: counter_vec(&r, "gatehouse_compression_responses_total", "Response bodies gatehouse coded, by coding and op: compress (for a client, or once for the cache), decompress (a stored or served coding the client does not accept).", &["encoding", "op"]),
            compression_bytes: counter_vec(&r, "gatehouse_compression_bytes_total", "Bytes into and out of gatehouse's coders (side in, out), by coding and op; out ÷ in is the ratio.", &["encoding", "op", "side"]),
            rate_limited: counter_vec(&r, "gatehouse_rate_limited_total", "Requests over a rate limit, by limit and outcome: refused, delayed, closed, dry_run (let through), evicted (a new key counted in the place of another, the table full).", &["limit", "outcome"]),
            cluster_connected: gauge_vec(&r, "gatehouse_cluster_connected", "1 while this node watches the cluster's state in etcd.", &["cluster", "node"]),
            cluster_revision: gauge_vec(&r, "gatehouse_cluster_applied_revision", "The etcd revision of the cluster state applied on this node.", &["cluster", "node"]),
            cluster_sync_age: single(&r, GaugeVec::new(Opts::new("gatehouse_cluster_sync_age_seconds", "Seconds since this node last knew it had the cluster's latest state."), &["cluster", "node"]).expect("valid")),
            cluster_events: counter_vec(&r, "gatehouse_cluster_events_total", "Cluster link events: reconnect, full_read, write_ok, write_unknown.", &["cluster", "node", "event"]),
            registry: r,
        }
    }

    /// Resolves the per-request handles of a config (the last entry: requests with no route).
    pub fn routes(&self, config: &Config) -> Vec<RouteMetrics> {
        let mut out: Vec<RouteMetrics> = config
            .routes
            .iter()
            .map(|route| {
                let pool = &config.pools[route.pool];
                let mut servers: Vec<&str> = pool.servers.iter().map(|s| s.name.as_str()).collect();
                servers.push("-");
                self.route(&route.name, &pool.name, &servers)
            })
            .collect();
        out.push(self.route(NO_ROUTE, "-", &["-"]));
        out
    }

    /// The refusal counter of each access rule of a config, in `config.access.rules` order.
    pub fn access_rules(&self, config: &Config) -> Vec<IntCounter> {
        let rules = &config.access.rules;
        rules
            .iter()
            .map(|r| self.access_refused.with_label_values(&[r.name.as_str()]))
            .collect()
    }

    /// The counters of each rate limit of a config, in `config.rate_limits.limits` order.
    pub fn rate_limits(&self, config: &Config) -> Vec<RateLimitMetrics> {
        let limits = &config.rate_limits.limits;
        let c = |name: &str, outcome| self.rate_limited.with_label_values(&[name, outcome]);
        limits
            .iter()
            .map(|l| RateLimitMetrics {
                refused: c(&l.name, "refused"),
                delayed: c(&l.name, "delayed"),
                closed: c(&l.name, "closed"),
                dry_run: c(&l.name, "dry_run"),
                evicted: c(&l.name, "evicted"),
            })
            .collect()
    }

    /// The compression counters' handles.
    pub fn compression(&self) -> CompressionMetrics {
        use crate::compress::{Encoding, Op};
        let kind = |op: Op, e: Encoding| {
            let bytes = |side| {
                self.compression_bytes
                    .with_label_values(&[e.token(), op.name(), side])
            };
            CodedMetrics {
                responses: self
                    .compression_responses
                    .with_label_values(&[e.token(), op.name()]),
                bytes_in: bytes("in"),
                bytes_out: bytes("out"),
            }
        };
        let ops = |op| Encoding::ALL.map(|e| kind(op, e));
        CompressionMetrics {
            coded: [ops(Op::Compress), ops(Op::Decompress)],
        }
    }

    fn route(&self, route: &str, pool: &str, servers: &[&str]) -> RouteMetrics {
        RouteMetrics {
            requests: servers
                .iter()
                .map(|s| CLASSES.map(|c| self.requests.with_label_values(&[route, pool, s, c])))
                .collect(),
            cache: CACHE.map(|c| self.cache_requests.with_label_values(&[route, c])),
            duration: self.duration.with_label_values(&[route]),
            ttfb: self.ttfb.with_label_values(&[route]),
        }
    }

    /// The text exposition, after setting every scrape-time value from `scrape`.
    pub fn render(&self, scrape: &Scrape) -> String {
        let mut total_in_flight = 0;
        for s in &scrape.servers {
            let labels = [s.pool, s.server];
            for name in ["ready", "drain", "maint"] {
                self.server_state
                    .with_label_values(&[s.pool, s.server, name])
                    .set(i64::from(name == s.state));
            }
            self.server_up
                .with_label_values(&labels)
                .set(i64::from(s.up));
            self.server_weight
                .with_label_values(&labels)
                .set(s.effective_weight);
            total_in_flight += s.in_flight;
            self.server_in_flight
                .with_label_values(&labels)
                .set(s.in_flight as i64);
            sync(&self.server_requests.with_label_values(&labels), s.requests);
            sync(
                &self.server_check_failures.with_label_values(&labels),
                s.check_failures,
            );
            sync(
                &self.server_connect_failures.with_label_values(&labels),
                s.connect_failures,
            );
        }
        self.in_flight.set(total_in_flight as i64);
        for (what, value) in &scrape.cache_snapshot {
            let v = i64::try_from(*value).unwrap_or(i64::MAX);
            self.cache_snapshot.with_label_values(&[what]).set(v);
        }
        for (event, value) in &scrape.cache_events {
            sync(&self.cache_events.with_label_values(&[event]), *value);
        }
        self.cache_bytes.set(scrape.cache_bytes as i64);
        self.cache_objects.set(scrape.cache_objects as i64);
        self.render_tls(scrape);
        self.readonly_mode.set(i64::from(scrape.readonly_active));
        sync(&self.readonly_refused, scrape.readonly_refused);
        sync(&self.blocked, scrape.blocked);
        self.blocks.set(scrape.blocks as i64);
        for (name, sent, dropped) in &scrape.log_targets {
            sync(&self.log_records.with_label_values(&[name, "sent"]), *sent);
            sync(
                &self.log_records.with_label_values(&[name, "dropped"]),
                *dropped,
            );
        }
        sync(
            &self.reloads.with_label_values(&["success"]),
            scrape.reloads_ok,
        );
        sync(
            &self.reloads.with_label_values(&["failure"]),
            scrape.reloads_failed,
        );
        self.client_connections.set(scrape.client_open as i64);
        sync(&self.client_accepted, scrape.client_accepted);
        for (reason, value) in &scrape.client_refusals {
            sync(&self.client_refusals.with_label_values(&[reason]), *value);
        }
        self.config_loaded.set(scrape.config_loaded as f64);
        self.worker_threads.set(scrape.worker_threads as i64);
        self.render_cluster(scrape);
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }

    /// The link of a clustered node to etcd.
    fn render_cluster(&self, scrape: &Scrape) {
        let Some(c) = &scrape.cluster else {
            return;
        };
        let labels = [c.cluster, c.node];
        self.cluster_connected
            .with_label_values(&labels)
            .set(i64::from(c.connected));
        self.cluster_revision
            .with_label_values(&labels)
            .set(c.applied_revision);
        if let Some(age) = c.sync_age {
            self.cluster_sync_age.with_label_values(&labels).set(age);
        }
        for (event, n) in c.events {
            sync(
                &self
                    .cluster_events
                    .with_label_values(&[c.cluster, c.node, event]),
                n,
            );
        }
    }

    /// Certificates, OCSP staples, ACME and failed handshakes.
    fn render_tls(&self, scrape: &Scrape) {
        for (listener, cert, not_after) in &scrape.certificates {
            self.cert_expiry
                .with_label_values(&[listener, cert])
                .set(*not_after as f64);
        }
        for (listener, not_after, ok, failed) in &scrape.acme {
            if *not_after > 0 {
                self.acme_expiry
                    .with_label_values(&[listener])
                    .set(*not_after as f64);
            }
            sync(&self.acme_orders.with_label_values(&[listener, "ok"]), *ok);
            sync(
                &self.acme_orders.with_label_values(&[listener, "failure"]),
                *failed,
            );
        }
        for (listener, cert, next) in &scrape.ocsp_next_update {
            self.ocsp_next_update
                .with_label_values(&[listener, cert])
                .set(*next as f64);
        }
        for (reason, n) in &scrape.tls_handshake_failures {
            sync(
                &self.tls_handshake_failures.with_label_values(&[reason]),
                *n,
            );
        }
        for (reason, n) in &scrape.client_misbehaviour {
            sync(&self.client_misbehaviour.with_label_values(&[reason]), *n);
        }
    }
}

/// One server's scrape-time values.
pub struct ServerScrape<'a> {
    pub pool: &'a str,
    pub server: &'a str,
    /// Admin state: ready, drain or maint.
    pub state: &'static str,
    pub up: bool,
    /// The configured weight times the slow-start ramp.
    pub effective_weight: f64,
    pub in_flight: u64,
    pub requests: u64,
    pub check_failures: u64,
    pub connect_failures: u64,
}

/// Everything read when Prometheus scrapes, gathered by whoever holds the running state
/// (`admin::scrape`), so this module depends on no runtime type.
#[derive(Default)]
pub struct Scrape<'a> {
    pub servers: Vec<ServerScrape<'a>>,
    /// (event, count): hit, miss, stale, pass, expired, revalidated, coalesced, eviction, too_large.
    pub cache_events: Vec<(&'static str, u64)>,
    pub cache_bytes: u64,
    pub cache_objects: u64,
    /// (what, value): the snapshot read at start and written at stop.
    pub cache_snapshot: Vec<(&'static str, u64)>,
    /// (listener, certificate file, not-after as Unix seconds).
    pub certificates: Vec<(&'a str, &'a str, i64)>,
    /// (listener, ACME certificate expiry or 0, orders that succeeded, orders that failed).
    pub acme: Vec<(&'a str, i64, u64, u64)>,
    /// (listener, certificate file, the staple's nextUpdate as Unix seconds).
    pub ocsp_next_update: Vec<(&'a str, &'a str, i64)>,
    /// (reason, count) of failed TLS handshakes.
    pub tls_handshake_failures: Vec<(&'static str, u64)>,
    pub client_misbehaviour: Vec<(&'static str, u64)>,
    pub readonly_active: bool,
    pub readonly_refused: u64,
    pub blocked: u64,
    pub blocks: usize,
    /// (target, sent, dropped).
    pub log_targets: Vec<(&'a str, u64, u64)>,
    pub reloads_ok: u64,
    pub reloads_failed: u64,
    pub client_open: usize,
    pub client_accepted: u64,
    /// (reason, count): max_connections, max_connections_per_client, header_timeout.
    pub client_refusals: Vec<(&'static str, u64)>,
    pub config_loaded: u64,
    pub worker_threads: usize,
    pub cluster: Option<ClusterScrape<'a>>,
}

/// The link of a clustered node to etcd.
pub struct ClusterScrape<'a> {
    pub cluster: &'a str,
    pub node: &'a str,
    pub connected: bool,
    pub applied_revision: i64,
    pub sync_age: Option<f64>,
    /// (event, count): reconnect, full_read, write_ok, write_unknown.
    pub events: [(&'static str, u64); 4],
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
