//! Connections that have not sent a request yet, oldest first: when the connection table is
//! full, the oldest of them is closed to make room for the new one (HAProxy and nginx keep
//! serving real clients while an attacker holds idle connections open), and one address may
//! hold at most `limits.max_silent_per_client` of them (its oldest goes first). A connection
//! is listed from its start until its first request's first bytes (HTTP/1) or first stream
//! (HTTP/2). Only a connection silent for `MIN_SILENCE` can be made room from: a real client
//! one round trip old, its request on the way, is never the one closed.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// How long a connection must have been silent before it can be closed to make room.
pub const MIN_SILENCE: Duration = Duration::from_secs(1);

/// The connections waiting for their first request.
#[derive(Default)]
pub struct Waiting {
    next: AtomicU64,
    /// Locked briefly to add, remove or pick one, never across an await.
    list: Mutex<List>,
}

struct Listed {
    ip: Option<IpAddr>,
    since: Instant,
    evicted: Arc<Notify>,
}

#[derive(Default)]
struct List {
    /// By the order they came in.
    conns: BTreeMap<u64, Listed>,
    /// Each address's listed connections, oldest first.
    per_client: HashMap<IpAddr, VecDeque<u64>>,
}

impl List {
    fn remove(&mut self, id: u64) -> Option<Arc<Notify>> {
        let listed = self.conns.remove(&id)?;
        if let Some(ip) = listed.ip {
            if let Some(ids) = self.per_client.get_mut(&ip) {
                ids.retain(|i| *i != id);
                if ids.is_empty() {
                    self.per_client.remove(&ip);
                }
            }
        }
        Some(listed.evicted)
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
            let since = Instant::now();
            let listed = Listed {
                ip,
                since,
                evicted: evicted.clone(),
            };
            list.conns.insert(id, listed);
            let oldest = ip.and_then(|ip| {
                let ids = list.per_client.entry(ip).or_default();
                ids.push_back(id);
                (per_client > 0 && ids.len() > per_client).then(|| ids[0])
            });
            oldest.and_then(|old| list.remove(old))
        };
        if let Some(evicted) = over {
            crate::telemetry::client_misbehaved(crate::telemetry::Misbehaviour::Evicted);
            evicted.notify_one();
        }
        FirstRequest {
            waiting: self.clone(),
            id,
            evicted,
        }
    }

    /// Closes the oldest connection still without a request, if it has been silent for
    /// `MIN_SILENCE`; false when there is none.
    pub fn evict_oldest(&self) -> bool {
        let oldest = {
            let mut list = self.lock();
            let first = list.conns.iter().next();
            let old_enough = first.filter(|(_, l)| l.since.elapsed() >= MIN_SILENCE);
            match old_enough.map(|(id, _)| *id) {
                Some(id) => list.remove(id),
                None => None,
            }
        };
        match oldest {
            Some(evicted) => {
                crate::telemetry::client_misbehaved(crate::telemetry::Misbehaviour::Evicted);
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

    const QUICK: Duration = Duration::from_millis(20);

    #[tokio::test]
    async fn the_oldest_waiting_connection_goes_first_once_silent_long_enough() {
        let w = Arc::new(Waiting::default());
        let (a, b) = (w.enter(None, 0), w.enter(None, 0));
        assert!(
            !w.evict_oldest(),
            "a connection just opened is not made room from"
        );
        tokio::time::sleep(MIN_SILENCE).await;
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
        let x: IpAddr = "192.0.2.1".parse().unwrap();
        let y: IpAddr = "192.0.2.2".parse().unwrap();
        let other = w.enter(Some(y), 2);
        let first = w.enter(Some(x), 2);
        let second = w.enter(Some(x), 2);
        assert!(tokio::time::timeout(QUICK, first.evicted()).await.is_err());
        let _third = w.enter(Some(x), 2);
        let gone = tokio::time::timeout(QUICK, first.evicted()).await;
        assert!(gone.is_ok(), "x's oldest goes");
        assert!(tokio::time::timeout(QUICK, second.evicted()).await.is_err());
        assert!(tokio::time::timeout(QUICK, other.evicted()).await.is_err());
        assert_eq!(w.lock().per_client[&x].len(), 2);
    }
}
