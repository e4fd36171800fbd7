//! Idle keep-alive connections to one server, kept for the proxy's own HTTP/1 exchange
//! (`proxy::direct`): taken for a request, given back when its response ended cleanly.
//!
//! Last in, first out (the warmest connection first). A connection idle longer than the
//! caller's limit is closed instead of reused, and so is one that is not quiet when taken: the
//! server closed or reset it, or sent bytes nobody asked for (an unasked response must never be
//! read as the answer to the next request, which may be another client's). That check is one
//! non-blocking read, as pingora's pool watches its idle connections. A connection the server
//! closes after the check fails on first use, and the exchange retries once on a new
//! connection (the requests it takes are idempotent). Each entry remembers the address it leads to, so a reload that moves a server
//! to another address never reuses a connection to the old one. The lock is held for a push or
//! a pop, never across an await; closing connections happens after it is released.

use pingora::protocols::Stream;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, ReadBuf};

/// At most this many idle connections per server (pingora's pool default is 128 per process).
pub const MAX_IDLE: usize = 128;

#[derive(Default)]
pub struct IdleConns {
    conns: Mutex<Vec<Idle>>,
}

struct Idle {
    stream: Stream,
    to: SocketAddr,
    since: Instant,
}

impl std::fmt::Debug for IdleConns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IdleConns({})", self.len())
    }
}

impl IdleConns {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Idle>> {
        self.conns.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// The most recently returned connection to `to` that is still quiet (`quiet`), unless it
    /// has been idle for `max_idle` or longer (then it and every older one are closed).
    pub fn take(&self, to: SocketAddr, max_idle: Duration) -> Option<Stream> {
        loop {
            let mut stream = self.pop(to, max_idle)?;
            if quiet(&mut stream) {
                return Some(stream);
            }
            // Closed, reset, or bytes beyond the last response's framing: never reused.
            drop(stream);
        }
    }

    /// The most recently returned connection to `to` not idle for `max_idle`, closing the
    /// ones passed over after the lock is released.
    fn pop(&self, to: SocketAddr, max_idle: Duration) -> Option<Stream> {
        let mut stale = Vec::new();
        let now = Instant::now();
        let found = {
            let mut conns = self.lock();
            let mut found = None;
            while let Some(idle) = conns.pop() {
                if now.saturating_duration_since(idle.since) >= max_idle {
                    // Older entries sit below: all of them are past the limit too.
                    stale.push(idle);
                    stale.append(&mut conns);
                } else if idle.to == to {
                    found = Some(idle.stream);
                    break;
                } else {
                    stale.push(idle);
                }
            }
            found
        };
        drop(stale);
        found
    }

    /// Keeps `stream` for the next request to `to` (closed instead when the list is full).
    pub fn give_back(&self, stream: Stream, to: SocketAddr) {
        let idle = Idle {
            stream,
            to,
            since: Instant::now(),
        };
        let mut conns = self.lock();
        if conns.len() < MAX_IDLE {
            conns.push(idle);
        } else {
            drop(conns);
            drop(idle);
        }
    }

    /// Closes every idle connection (its server failed a reused one: the others are suspect).
    pub fn clear(&self) {
        let all = std::mem::take(&mut *self.lock()); // the lock is released here, then they close
        drop(all);
    }
}

/// Whether an idle connection has nothing to say: a read would wait. A read that returns
/// bytes (an unasked response, the tail of a body longer than its framing), the end of the
/// stream or an error (reset) means the connection must not carry another request. The read
/// is polled once with a waker that does nothing: it never waits, and when the socket is not
/// marked readable it costs no system call.
fn quiet(stream: &mut Stream) -> bool {
    let mut byte = [0u8; 1];
    let mut buf = ReadBuf::new(&mut byte);
    let mut cx = Context::from_waker(Waker::noop());
    matches!(Pin::new(stream).poll_read(&mut cx, &mut buf), Poll::Pending)
}
