//! Idle keep-alive connections to one server, kept for the proxy's own HTTP/1 exchange
//! (`proxy::direct`): taken for a request, given back when its response ended cleanly.
//!
//! Last in, first out (the warmest connection first). A connection idle longer than the
//! caller's limit is closed instead of reused; one whose server closed it meanwhile fails on
//! first use, and the exchange retries on a new connection (the requests it takes are
//! idempotent). Each entry remembers the address it leads to, so a reload that moves a server
//! to another address never reuses a connection to the old one. The lock is held for a push or
//! a pop, never across an await; closing connections happens after it is released.

use pingora::protocols::Stream;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

    /// The most recently returned connection to `to`, unless it has been idle for `max_idle`
    /// or longer (then it and every older one are closed).
    pub fn take(&self, to: SocketAddr, max_idle: Duration) -> Option<Stream> {
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
