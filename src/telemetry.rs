//! Process logging: `tracing` to stderr, with pingora's `log` records bridged in so its own
//! errors (listener failures, upstream errors) are not lost. `RUST_LOG` overrides the level.
//!
//! Two of pingora's errors are client noise, not faults: a failed TLS handshake (port scans,
//! health probes, clients giving up) and a request-header timeout (slowloris; gatehouse already
//! logs the 408 in the access log). pingora logs an ERROR line for each, so a scan could flood
//! the journal. They are counted instead (`handshake_failures`, by reason, for `/metrics`) and
//! summarised in one warning at most every 10 seconds, with the count since the last one (and
//! sent once a burst ends: a thread looks every 10 seconds). So are client misbehaviour
//! (`Misbehaviour`) and the h2 crate's warning for each connection it closes for resetting too
//! many streams before they were accepted (Rapid Reset).
//!
//! Gatehouse's own connections are not clients: the readiness probe connects to every
//! listener and closes without a handshake, which pingora reports like any client that gave
//! up. The probe registers its source address (`self_probe`) before it closes; the one failed
//! handshake from that address is then neither counted nor reported.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

/// Failed TLS handshakes by reason: eof (the client closed), timeout, protocol (anything else).
pub static HANDSHAKE_FAILURES: [(&str, AtomicU64); 3] = [
    ("eof", AtomicU64::new(0)),
    ("timeout", AtomicU64::new(0)),
    ("protocol", AtomicU64::new(0)),
];

/// Source addresses of gatehouse's own probe connections whose handshake failure has not been
/// seen yet; `PROBES_WAITING` spares the lock while there are none (the usual case).
static OWN_PROBES: Mutex<Vec<SocketAddr>> = Mutex::new(Vec::new());
static PROBES_WAITING: AtomicUsize = AtomicUsize::new(0);
/// Probes remembered at most (one per listener per start; the oldest is forgotten first).
const MAX_PROBES: usize = 64;

/// Marks a connection gatehouse itself made to one of its TLS listeners, by its source
/// address, before it closes: its failed handshake is not client noise.
pub fn self_probe(from: SocketAddr) {
    let mut probes = OWN_PROBES.lock().unwrap_or_else(|e| e.into_inner());
    if probes.len() >= MAX_PROBES {
        probes.remove(0);
    }
    probes.push(from);
    PROBES_WAITING.store(probes.len(), Relaxed);
}

/// Whether a handshake error message (pingora: "Downstream handshake error from PEER: ...")
/// is about an own probe; that probe is then forgotten.
fn from_self_probe(message: &str) -> bool {
    if PROBES_WAITING.load(Relaxed) == 0 {
        return false;
    }
    let peer = message
        .split_once(" from ")
        .and_then(|(_, rest)| rest.split(": ").next()?.parse::<SocketAddr>().ok());
    peer.is_some_and(own_probe)
}

/// Whether a connection from `peer` is an own probe (`self_probe`); it is then forgotten.
pub fn own_probe(peer: SocketAddr) -> bool {
    if PROBES_WAITING.load(Relaxed) == 0 {
        return false;
    }
    let mut probes = OWN_PROBES.lock().unwrap_or_else(|e| e.into_inner());
    let Some(i) = probes.iter().position(|p| *p == peer) else {
        return false;
    };
    probes.remove(i);
    PROBES_WAITING.store(probes.len(), Relaxed);
    true
}

/// Installs the logger once at level "info"; later calls (tests boot several servers) do nothing.
pub fn init() {
    init_with_default("info");
}

/// Installs the logger with `level` unless `RUST_LOG` says otherwise.
pub fn init_with_default(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(QuietClientNoise)
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .try_init();
    if installed.is_ok() {
        let _ = std::thread::Builder::new()
            .name("gatehouse-noise".into())
            .spawn(summarise_pending_forever);
    }
}

/// The failed handshakes counted so far, by reason.
pub fn handshake_failures() -> Vec<(&'static str, u64)> {
    HANDSHAKE_FAILURES
        .iter()
        .map(|(reason, n)| (*reason, n.load(Relaxed)))
        .collect()
}

/// Client noise, recognised by pingora's target and message.
enum Noise {
    Handshake(usize),
    HeaderTimeout,
    /// The h2 crate closed a connection whose client reset too many streams before they were
    /// accepted (its warning, one per connection: Rapid Reset).
    ResetFlood,
    /// A failed handshake of gatehouse's own probe, or a connection the PROXY protocol step
    /// refused (counted there as misbehaviour): neither counted again nor logged.
    SelfProbe,
}

struct Message(String);

impl Visit for Message {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0 = value.to_string();
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

fn classify(event: &Event<'_>) -> Option<Noise> {
    use tracing_log::NormalizeEvent;
    // pingora logs through `log`: the bridged event's own metadata says "log".
    let normalized = event.normalized_metadata();
    let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
    let from_h2 = meta.target().starts_with("h2::") && *meta.level() == tracing::Level::WARN;
    if !from_h2 && (!meta.target().starts_with("pingora") || *meta.level() != tracing::Level::ERROR)
    {
        return None;
    }
    let mut m = Message(String::new());
    event.record(&mut m);
    if from_h2 {
        // Either side's limit on reset streams: the client reset too many before they were
        // accepted, or made gatehouse reset too many (malformed or refused streams).
        let resets =
            m.0.contains("remotely-reset pending-accept streams reached limit")
                || m.0.contains("locally-reset streams reached limit");
        return resets.then_some(Noise::ResetFlood);
    }
    let text = m.0.to_ascii_lowercase();
    if text.contains("downstream handshake error") {
        let counted = m.0.contains(PROXY_REFUSED) || m.0.contains(CONN_RATE_REFUSED);
        if from_self_probe(&m.0) || counted {
            return Some(Noise::SelfProbe);
        }
        let reason = if text.contains("eof") || text.contains("connection reset") {
            0
        } else if text.contains("timeout") || text.contains("timed out") {
            1
        } else {
            2
        };
        return Some(Noise::Handshake(reason));
    }
    if text.contains("downstream handshake timeout") {
        return Some(Noise::Handshake(1)); // `timeouts.client_handshake` passed (patch 17)
    }
    text.contains("request header timeout")
        .then_some(Noise::HeaderTimeout)
}

/// What the refusal of a `proxy_protocol` listener's connection says (`conn::Admission`):
/// pingora's log line for it is recognised as counted already.
pub const PROXY_REFUSED: &str = "PROXY protocol";

/// What the refusal of a connection over the connection rate says (`conn::Admission`), counted
/// in `gatehouse_client_refusals_total` already.
pub const CONN_RATE_REFUSED: &str = "too many new connections from this client";

/// When the last summary went out (Unix seconds), and what happened since.
static LAST_SUMMARY: AtomicU64 = AtomicU64::new(0);
static SINCE_HANDSHAKES: AtomicU64 = AtomicU64::new(0);
static SINCE_HEADER_TIMEOUTS: AtomicU64 = AtomicU64::new(0);
static SINCE_MISBEHAVIOUR: AtomicU64 = AtomicU64::new(0);

/// What a client did that cost gatehouse without being a request it could answer.
#[derive(Debug, Clone, Copy)]
pub enum Misbehaviour {
    /// A connection that sent no request (nor, on HTTP/2, its preface) within
    /// `timeouts.client_header` of its start.
    Silent = 0,
    /// An HTTP/2 connection whose preface or SETTINGS were malformed.
    H2Handshake = 1,
    /// A request the client gave up on (closed its connection, reset its stream) before its
    /// answer was complete.
    Cancelled = 2,
    /// A client that took none of its response for `timeouts.client_send`.
    SendTimeout = 3,
    /// An HTTP/2 connection closed for cancelling most of its many streams (Rapid Reset).
    ResetFlood = 4,
    /// A connection without a request yet, closed to make room when the connection table was
    /// full, or its address had `limits.max_silent_per_client` such connections.
    Evicted = 5,
    /// A connection to a `proxy_protocol` listener without a valid PROXY protocol header.
    ProxyHeader = 6,
    /// A connection to a `proxy_protocol` listener from outside `trusted_proxies`.
    ProxyUntrusted = 7,
}

/// Client misbehaviour by reason (`Misbehaviour`'s order), for `/metrics`.
pub static MISBEHAVIOUR: [(&str, AtomicU64); 8] = [
    ("silent", AtomicU64::new(0)),
    ("h2_handshake", AtomicU64::new(0)),
    ("cancelled", AtomicU64::new(0)),
    ("send_timeout", AtomicU64::new(0)),
    ("reset_flood", AtomicU64::new(0)),
    ("evicted", AtomicU64::new(0)),
    ("proxy_header", AtomicU64::new(0)),
    ("proxy_untrusted", AtomicU64::new(0)),
];

/// Counts client misbehaviour: never a log line per event, only the periodic summary.
pub fn client_misbehaved(what: Misbehaviour) {
    MISBEHAVIOUR[what as usize].1.fetch_add(1, Relaxed);
    SINCE_MISBEHAVIOUR.fetch_add(1, Relaxed);
    summarise();
}

/// A client whose request header did not arrive within `timeouts.client_header` (answered
/// 408 by the connection layer): counted for the summary.
pub fn header_timed_out() {
    SINCE_HEADER_TIMEOUTS.fetch_add(1, Relaxed);
    summarise();
}

/// Client misbehaviour counted so far, by reason.
pub fn misbehaviour() -> Vec<(&'static str, u64)> {
    MISBEHAVIOUR
        .iter()
        .map(|(reason, n)| (*reason, n.load(Relaxed)))
        .collect()
}

/// How often the client noise summary may go out.
const SUMMARY_EVERY: u64 = 10;

/// Sends the summary of noise counted since the last one, when due, every `SUMMARY_EVERY`
/// seconds: a burst shorter than that is reported once it ends, not at the next event.
fn summarise_pending_forever() {
    loop {
        std::thread::sleep(std::time::Duration::from_secs(SUMMARY_EVERY));
        let pending = SINCE_HANDSHAKES.load(Relaxed)
            + SINCE_HEADER_TIMEOUTS.load(Relaxed)
            + SINCE_MISBEHAVIOUR.load(Relaxed);
        if pending > 0 {
            summarise();
        }
    }
}

/// One warning with the client noise counted since the last, at most every `SUMMARY_EVERY`
/// seconds.
fn summarise() {
    let now = crate::clock::unix_now();
    let last = LAST_SUMMARY.load(Relaxed);
    if now >= last + SUMMARY_EVERY
        && LAST_SUMMARY
            .compare_exchange(last, now, Relaxed, Relaxed)
            .is_ok()
    {
        let handshakes = SINCE_HANDSHAKES.swap(0, Relaxed);
        let header_timeouts = SINCE_HEADER_TIMEOUTS.swap(0, Relaxed);
        let misbehaviour = SINCE_MISBEHAVIOUR.swap(0, Relaxed);
        tracing::warn!(
            failed_tls_handshakes = handshakes,
            request_header_timeouts = header_timeouts,
            client_misbehaviour = misbehaviour,
            "client noise since the last report (see gatehouse_tls_handshake_failures_total, \
             gatehouse_client_refusals_total and gatehouse_client_misbehaviour_total)"
        );
    }
}

/// Counts client noise and keeps it off the log, but for a summary every 10 seconds at most.
struct QuietClientNoise;

impl<S: Subscriber> Layer<S> for QuietClientNoise {
    fn event_enabled(&self, event: &Event<'_>, _ctx: Context<'_, S>) -> bool {
        let Some(noise) = classify(event) else {
            return true;
        };
        match noise {
            Noise::Handshake(reason) => {
                HANDSHAKE_FAILURES[reason].1.fetch_add(1, Relaxed);
                SINCE_HANDSHAKES.fetch_add(1, Relaxed);
                summarise();
            }
            Noise::HeaderTimeout => header_timed_out(),
            Noise::ResetFlood => client_misbehaved(Misbehaviour::ResetFlood),
            Noise::SelfProbe => {}
        }
        false
    }
}
