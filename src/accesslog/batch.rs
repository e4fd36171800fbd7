//! Every target's records wait in a bounded batch that one writer thread per target empties
//! `FLUSH_EVERY` after the first record arrived, or as soon as `BATCH_SIZE` records wait: one
//! `sendmmsg` per batch for UDP and unix datagrams, one write for TCP (octet-counted frames,
//! RFC 6587), files and stdout (lines). A request only takes a short lock to append; it wakes
//! the writer at most once per batch (never per record) and never waits on it or on the
//! receiver. An idle log wakes nobody. On close the writer writes what is left and exits, so
//! a graceful stop or upgrade loses nothing that was accepted.

use super::datagram::{Datagrams, Dest};
use super::format;
use super::record::Record;
use super::TargetStats;
use crate::config::{LogTarget, LogTransport};
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The longest a record waits before it is written.
pub const FLUSH_EVERY: Duration = Duration::from_millis(20);
/// Records that make a batch worth waking the writer for before `FLUSH_EVERY`.
pub const BATCH_SIZE: usize = 64;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// A receiver that stops reading costs at most this long per batch before it is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

struct Queue {
    records: Vec<Arc<Record>>,
    closing: bool,
}

/// The records waiting for one target's writer.
pub struct Batch {
    queue: Mutex<Queue>,
    wake: Condvar,
    capacity: usize,
}

impl Batch {
    pub fn new(capacity: usize) -> Batch {
        Batch {
            queue: Mutex::new(Queue {
                records: Vec::new(),
                closing: false,
            }),
            wake: Condvar::new(),
            capacity,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends a record; false (dropped) when `capacity` records already wait or the log is
    /// closed.
    pub fn push(&self, record: Arc<Record>) -> bool {
        let mut q = self.lock();
        if q.closing || q.records.len() >= self.capacity {
            return false;
        }
        q.records.push(record);
        // Wake the writer to start a batch, and again when it is full: twice per batch at most.
        if q.records.len() == 1 || q.records.len() == BATCH_SIZE {
            self.wake.notify_one();
        }
        true
    }

    /// The writer's wait for its next batch; None once closed and drained.
    fn next(&self) -> Option<Vec<Arc<Record>>> {
        let mut q = self.lock();
        while q.records.is_empty() && !q.closing {
            q = self.wake.wait(q).unwrap_or_else(|e| e.into_inner());
        }
        let deadline = Instant::now() + FLUSH_EVERY;
        while q.records.len() < BATCH_SIZE && !q.closing {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            q = self
                .wake
                .wait_timeout(q, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        if q.closing && q.records.is_empty() {
            return None;
        }
        Some(std::mem::take(&mut q.records))
    }

    /// Refuses new records and tells the writer to finish.
    pub fn close(&self) {
        self.lock().closing = true;
        self.wake.notify_all();
    }
}

/// Starts the writer thread of one stream target.
pub fn spawn(
    target: LogTarget,
    batch: Arc<Batch>,
    stats: Arc<TargetStats>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("gatehouse log {}", target.name))
        .spawn(move || {
            let mut out = Output::open(&target);
            let mut buf = Vec::new();
            while let Some(records) = batch.next() {
                let n = records.len();
                let sent = match &mut out {
                    Output::Datagrams(d) => {
                        let msgs: Vec<String> =
                            records.iter().map(|r| format(&target, r)).collect();
                        let views: Vec<&[u8]> = msgs.iter().map(|m| m.as_bytes()).collect();
                        d.send(&views)
                    }
                    _ => {
                        buf.clear();
                        for r in &records {
                            encode(&target, r, &mut buf);
                        }
                        if out.write(&target, &buf) {
                            n
                        } else {
                            0
                        }
                    }
                };
                stats.sent.fetch_add(sent as u64, Relaxed);
                for _ in sent..n {
                    stats.dropped(&target.name);
                }
            }
        })
}

/// Appends one record as the target frames it.
fn encode(target: &LogTarget, r: &Record, buf: &mut Vec<u8>) {
    let msg = format(target, r);
    if matches!(target.transport, LogTransport::Tcp(_)) {
        let _ = write!(buf, "{} ", msg.len());
        buf.extend_from_slice(msg.as_bytes());
    } else {
        buf.extend_from_slice(msg.as_bytes());
        buf.push(b'\n');
    }
}

/// Where a writer writes.
enum Output {
    Datagrams(Datagrams),
    Tcp {
        addr: SocketAddr,
        conn: Option<TcpStream>,
        retry_at: Instant,
        backoff: Duration,
    },
    File(Option<std::fs::File>),
    Stdout,
}

impl Output {
    fn open(target: &LogTarget) -> Output {
        match &target.transport {
            LogTransport::Udp(addr) => Output::Datagrams(Datagrams::new(Dest::Udp(*addr))),
            LogTransport::Unix(path) => Output::Datagrams(Datagrams::new(Dest::Unix(path.clone()))),
            LogTransport::Tcp(addr) => Output::Tcp {
                addr: *addr,
                conn: None,
                retry_at: Instant::now(),
                backoff: Duration::from_millis(100),
            },
            LogTransport::File(path) => {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path);
                if let Err(e) = &file {
                    tracing::error!(target = %target.name, path = %path.display(), "access log: cannot open file: {e}");
                }
                Output::File(file.ok())
            }
            _ => Output::Stdout,
        }
    }

    /// Writes one batch; false if it could not be (it is then dropped and counted).
    fn write(&mut self, target: &LogTarget, buf: &[u8]) -> bool {
        match self {
            Output::Datagrams(_) => false, // sent record by record in `spawn`
            Output::File(Some(f)) => f.write_all(buf).is_ok(),
            Output::File(None) => false,
            Output::Stdout => std::io::stdout().lock().write_all(buf).is_ok(),
            Output::Tcp {
                addr,
                conn,
                retry_at,
                backoff,
            } => {
                if conn.is_none() {
                    if Instant::now() < *retry_at {
                        return false;
                    }
                    match connect(*addr) {
                        Ok(s) => {
                            *backoff = Duration::from_millis(100);
                            *conn = Some(s);
                        }
                        Err(e) => {
                            tracing::warn!(target = %target.name, %addr, "access log: TCP receiver unreachable ({e}); retrying in {backoff:?}");
                            *retry_at = Instant::now() + *backoff;
                            *backoff = (*backoff * 2).min(MAX_BACKOFF);
                            return false;
                        }
                    }
                }
                let ok = conn.as_mut().is_some_and(|s| s.write_all(buf).is_ok());
                if !ok {
                    *conn = None; // reconnect for the next batch
                }
                ok
            }
        }
    }
}

fn connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?;
    s.set_write_timeout(Some(WRITE_TIMEOUT))?;
    s.set_nodelay(true)?;
    Ok(s)
}
