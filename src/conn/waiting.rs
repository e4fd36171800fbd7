//! Connections that have not sent a request yet, oldest first: when the connection table is
//! full, the oldest of them is closed to make room for the new one (HAProxy and nginx keep
//! serving real clients while an attacker holds idle connections open), and one address may
//! hold at most `limits.max_silent_per_client` of them (its oldest goes first). A connection
//! is listed from its start until its first request's first bytes (HTTP/1) or first stream
//! (HTTP/2).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// The connections waiting for their first request.
#[derive(Default)]
pub struct Waiting {
    next: AtomicU64,
    /// Locked briefly to add, remove or pick one, never across an await.
    list: Mutex<List>,
}

#[derive(Default)]
struct List {
    /// By the order they came in.
    conns: BTreeMap<u64, (Option<IpAddr>, Arc<Notify>)>,
    per_client: HashMap<IpAddr, usize>,
}

impl List {
    fn remove(&mut self, id: u64) -> Option<Arc<Notify>> {
        let (ip, evicted) = self.conns.remove(&id)?;
        if let Some(ip) = ip {
            if let Some(n) = self.per_client.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    self.per_client.remove(&ip);
                }
            }
        }
        Some(evicted)
    }
}

/// One listed connection; unlisted on drop.
pub struct FirstRequest {
    waiting: Arc<Waiting>,
    id: u64,
    evicted: Arc<Notify>,
}

impl Waiting {
    fn lock(&self) -> std::sync::MutexGuard<'_, List> {
        self.list.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Lists a new connection from `ip`; when that address already has `per_client` (not 0)
    /// listed, its oldest is closed.
    pub fn enter(self: &Arc<Self>, ip: Option<IpAddr>, per_client: usize) -> FirstRequest {
        let id = self.next.fetch_add(1, Relaxed);
        let evicted = Arc::new(Notify::new());
        let over = {
            let mut list = self.lock();
            list.conns.insert(id, (ip, evicted.clone()));
            let from_ip = ip.map_or(0, |ip| {
                let n = list.per_client.entry(ip).or_insert(0);
                *n += 1;
                *n
            });
            let oldest_of_ip = || {
                let first = list.conns.iter().find(|(_, (i, _))| *i == ip);
                first.map(|(id, _)| *id)
            };
            match per_client > 0 && from_ip > per_client {
                true => oldest_of_ip().and_then(|old| list.remove(old)),
                false => None,
            }
        };
        if let Some(evicted) = over {
            evicted.notify_one();
        }
        FirstRequest {
            waiting: self.clone(),
            id,
            evicted,
        }
    }

    /// Closes the oldest connection still without a request; false when there is none.
    pub fn evict_oldest(&self) -> bool {
        let oldest = {
            let mut list = self.lock();
            let first = list.conns.keys().next().copied();
            first.and_then(|id| list.remove(id))
        };
        match oldest {
            Some(evicted) => {
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

    /// The connection's first request came: it is no longer listed.
    pub fn leave(&self) {
        self.waiting.lock().remove(self.id);
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

    const QUICK: Duration = Duration::from_millis(20);

    #[tokio::test]
    async fn the_oldest_waiting_connection_goes_first() {
        let w = Arc::new(Waiting::default());
        let (a, b) = (w.enter(None, 0), w.enter(None, 0));
        assert!(w.evict_oldest());
        assert!(tokio::time::timeout(QUICK, a.evicted()).await.is_ok());
        assert!(tokio::time::timeout(QUICK, b.evicted()).await.is_err());
        drop(b); // its first request came: no longer listed
        assert!(!w.evict_oldest(), "nothing left to evict");
        drop(a);
    }

    #[tokio::test]
    async fn one_address_holds_at_most_its_share() {
        let w = Arc::new(Waiting::default());
        let (x, y): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let other = w.enter(Some(y), 2);
        let first = w.enter(Some(x), 2);
        let second = w.enter(Some(x), 2);
        assert!(tokio::time::timeout(QUICK, first.evicted()).await.is_err());
        let _third = w.enter(Some(x), 2);
        assert!(
            tokio::time::timeout(QUICK, first.evicted()).await.is_ok(),
            "x's oldest goes"
        );
        assert!(tokio::time::timeout(QUICK, second.evicted()).await.is_err());
        assert!(tokio::time::timeout(QUICK, other.evicted()).await.is_err());
        assert_eq!(w.lock().per_client[&x], 2);
    }
}
