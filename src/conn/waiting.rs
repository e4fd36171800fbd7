//! Connections that have not sent a request yet, oldest first: when the connection table is
//! full, the oldest of them is closed to make room for the new one (HAProxy and nginx keep
//! serving real clients while an attacker holds idle connections open). A connection is listed
//! from its start until its first request's first bytes (HTTP/1) or first stream (HTTP/2).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// The connections waiting for their first request.
#[derive(Default)]
pub struct Waiting {
    next: AtomicU64,
    /// By the order they came in; locked briefly to add, remove or pick one, never across an
    /// await.
    conns: Mutex<BTreeMap<u64, Arc<Notify>>>,
}

/// One listed connection; unlisted on drop.
pub struct FirstRequest {
    waiting: Arc<Waiting>,
    id: u64,
    evicted: Arc<Notify>,
}

impl Waiting {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<Notify>>> {
        self.conns.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Lists a new connection.
    pub fn enter(self: &Arc<Self>) -> FirstRequest {
        let id = self.next.fetch_add(1, Relaxed);
        let evicted = Arc::new(Notify::new());
        self.lock().insert(id, evicted.clone());
        FirstRequest {
            waiting: self.clone(),
            id,
            evicted,
        }
    }

    /// Closes the oldest connection still without a request; false when there is none.
    pub fn evict_oldest(&self) -> bool {
        let oldest = self.lock().pop_first();
        match oldest {
            Some((_, evicted)) => {
                evicted.notify_one();
                true
            }
            None => false,
        }
    }
}

impl FirstRequest {
    /// Resolves when this connection is closed to make room for another.
    pub async fn evicted(&self) {
        self.evicted.notified().await;
    }
}

impl FirstRequest {
    /// The connection's first request came: it is no longer listed.
    pub fn leave(&self) {
        self.waiting.lock().remove(&self.id);
    }
}

impl Drop for FirstRequest {
    fn drop(&mut self) {
        self.leave();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn the_oldest_waiting_connection_goes_first() {
        let w = Arc::new(Waiting::default());
        let (a, b) = (w.enter(), w.enter());
        assert!(w.evict_oldest());
        let quick = Duration::from_millis(20);
        assert!(tokio::time::timeout(quick, a.evicted()).await.is_ok());
        assert!(tokio::time::timeout(quick, b.evicted()).await.is_err());
        drop(b); // its first request came: no longer listed
        assert!(!w.evict_oldest(), "nothing left to evict");
        drop(a);
    }
}
