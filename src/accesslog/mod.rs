//! The per-request timing log: one record per request (proxied, cached, answered locally or
//! failed), with HAProxy-style timers, TLS facts and captured headers, sent to syslog (UDP,
//! TCP, unix socket), stdout or a file, in RFC 5424, RFC 3164 or JSON.
//!
//! It never blocks a request: a record is appended to its target's bounded batch, which a
//! writer thread sends with one system call per batch (`batch`; `sendmmsg` for datagrams in
//! `datagram`), waking at most once per batch. A full batch, a full receiver or a gone one
//! drops the record and counts it, with a warning at most every 10 seconds per target. `close`
//! writes what the batches hold before the process exits.

mod batch;
mod datagram;
mod format;
mod httplog;
pub mod record;
mod text;

use crate::config::{AccessLogConfig, LogFormat, LogTarget};
use batch::Batch;
pub use record::{CompressionRecord, Record, Termination, TlsRecord};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

/// One record as bytes for `target`, in its format (no trailing newline: transports frame it).
pub fn format(target: &LogTarget, r: &Record) -> String {
    match target.format {
        LogFormat::Json => format::json(r),
        LogFormat::Rfc5424 => format::rfc5424(target, r),
        LogFormat::Rfc3164 => format::rfc3164(target, r),
        LogFormat::Haproxy => httplog::format(target, r),
    }
}

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

impl TargetStats {
    /// Counts a dropped record, with a warning at most every 10 seconds.
    fn dropped(&self, target: &str) {
        let dropped = self.dropped.fetch_add(1, Relaxed) + 1;
        let now = crate::clock::unix_now();
        let last = self.last_warning.load(Relaxed);
        if now >= last + 10
            && self
                .last_warning
                .compare_exchange(last, now, Relaxed, Relaxed)
                .is_ok()
        {
            tracing::warn!(
                target,
                dropped,
                "access log: receiver full or gone, or queue full: dropping records"
            );
        }
    }
}

struct Target {
    config: LogTarget,
    /// None when its writer could not be started: every record is dropped.
    batch: Option<Arc<Batch>>,
    stats: Arc<TargetStats>,
}

/// The request path's side of the access log.
pub struct AccessLog {
    targets: Vec<Target>,
    /// The stream targets' writer threads, joined by `close`.
    writers: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl AccessLog {
    pub fn new(config: &AccessLogConfig) -> AccessLog {
        let mut targets = Vec::new();
        let mut writers = Vec::new();
        for t in &config.targets {
            let stats = Arc::new(TargetStats::default());
            let queue = Arc::new(Batch::new(config.queue_size));
            let batch = match batch::spawn(t.clone(), queue.clone(), stats.clone()) {
                Ok(writer) => {
                    writers.push(writer);
                    Some(queue)
                }
                Err(e) => {
                    tracing::error!(target = %t.name, "access log: cannot start the writer: {e}");
                    None
                }
            };
            targets.push(Target {
                config: t.clone(),
                batch,
                stats,
            });
        }
        AccessLog {
            targets,
            writers: Mutex::new(writers),
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
            let taken = t.batch.as_ref().is_some_and(|b| b.push(record.clone()));
            if !taken {
                t.stats.dropped(&t.config.name);
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

    /// Writes what the batches hold and stops their writers: the last step of a graceful stop
    /// or upgrade hand-off. Records pushed afterwards are dropped and counted.
    pub fn close(&self) {
        for batch in self.targets.iter().filter_map(|t| t.batch.as_ref()) {
            batch.close();
        }
        let writers = std::mem::take(&mut *self.writers.lock().unwrap_or_else(|e| e.into_inner()));
        for w in writers {
            let _ = w.join();
        }
    }
}

impl Drop for AccessLog {
    fn drop(&mut self) {
        self.close();
    }
}
