//! The per-request timing log: one record per request (proxied, cached, answered locally or
//! failed), with HAProxy-style timers, TLS facts and captured headers, sent to syslog (UDP,
//! TCP, unix socket), stdout or a file, in RFC 5424, RFC 3164 or JSON.
//!
//! It never blocks a request: each target has a bounded queue that the request path fills
//! with `try_send`; a full queue (slow or absent receiver) drops the record and counts it,
//! with a warning on stderr at most every 10 seconds per target.

pub mod format;
pub mod record;
mod transport;

use crate::config::{AccessLogConfig, LogTarget};
use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
pub use record::{Record, Termination, TlsRecord};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// The request id: the client's, when it is a sane token (printable, at most 128 bytes),
/// otherwise a new one (unique per process: a random per-process prefix and a counter).
pub fn request_id(incoming: Option<&http::HeaderValue>) -> http::HeaderValue {
    if let Some(v) = incoming {
        let b = v.as_bytes();
        if !b.is_empty() && b.len() <= 128 && b.iter().all(|c| c.is_ascii_graphic()) {
            return v.clone();
        }
    }
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let seed = *SEED.get_or_init(|| {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        h.finish()
    });
    // 16 hex digits of seed and 8 of counter, written without a formatting allocation.
    let n = COUNTER.fetch_add(1, Relaxed);
    let mut id = [0u8; 24];
    for (i, b) in id.iter_mut().enumerate() {
        let nibble = if i < 16 {
            (seed >> (60 - 4 * i)) & 0xf
        } else {
            (n >> (28 - 4 * (i - 16))) & 0xf
        };
        *b = b"0123456789abcdef"[nibble as usize];
    }
    http::HeaderValue::from_bytes(&id).unwrap_or_else(|_| http::HeaderValue::from_static("-"))
}

/// Counters of one target, for metrics.
#[derive(Debug, Default)]
pub struct TargetStats {
    pub sent: AtomicU64,
    pub dropped: AtomicU64,
    /// Records offered to this target (before sampling).
    offered: AtomicU64,
    last_warning: AtomicU64,
}

struct Target {
    config: LogTarget,
    tx: mpsc::Sender<Arc<Record>>,
    stats: Arc<TargetStats>,
}

pub type Writers = Vec<(LogTarget, mpsc::Receiver<Arc<Record>>, Arc<TargetStats>)>;

/// The request path's side of the access log.
pub struct AccessLog {
    targets: Vec<Target>,
    /// Taken once by the writer service when the server starts.
    writers: Mutex<Option<Writers>>,
}

impl AccessLog {
    pub fn new(config: &AccessLogConfig) -> AccessLog {
        let mut targets = Vec::new();
        let mut writers = Vec::new();
        for t in &config.targets {
            let (tx, rx) = mpsc::channel(config.queue_size);
            let stats = Arc::new(TargetStats::default());
            writers.push((t.clone(), rx, stats.clone()));
            targets.push(Target {
                config: t.clone(),
                tx,
                stats,
            });
        }
        AccessLog {
            targets,
            writers: Mutex::new(Some(writers)),
        }
    }

    pub fn is_active(&self) -> bool {
        !self.targets.is_empty()
    }

    /// Queues a record for every target (after sampling). Never waits.
    pub fn push(&self, record: Record) {
        let record = Arc::new(record);
        for t in &self.targets {
            let n = t.stats.offered.fetch_add(1, Relaxed);
            // Exact fraction: take record n when floor((n+1)·s) passes floor(n·s).
            let s = t.config.sample;
            if s < 1.0 && ((n + 1) as f64 * s).floor() <= (n as f64 * s).floor() {
                continue;
            }
            if t.tx.try_send(record.clone()).is_err() {
                let dropped = t.stats.dropped.fetch_add(1, Relaxed) + 1;
                let now = crate::clock::unix_now();
                let last = t.stats.last_warning.load(Relaxed);
                if now >= last + 10
                    && t.stats
                        .last_warning
                        .compare_exchange(last, now, Relaxed, Relaxed)
                        .is_ok()
                {
                    tracing::warn!(
                        target = %t.config.name,
                        dropped,
                        "access log: queue full or receiver gone, dropping records"
                    );
                }
            }
        }
    }

    /// (target name, stats) for metrics.
    pub fn stats(&self) -> Vec<(&str, &TargetStats)> {
        self.targets
            .iter()
            .map(|t| (t.config.name.as_str(), &*t.stats))
            .collect()
    }

    fn take_writers(&self) -> Writers {
        self.writers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .unwrap_or_default()
    }
}

/// Runs one writer task per target.
pub struct AccessLogService(pub Arc<AccessLog>);

#[async_trait]
impl BackgroundService for AccessLogService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let tasks: Vec<_> = self
            .0
            .take_writers()
            .into_iter()
            .map(|(t, rx, stats)| tokio::spawn(transport::run(t, rx, stats)))
            .collect();
        let _ = shutdown.changed().await;
        for t in tasks {
            t.abort();
        }
    }
}
