//! The misses this node is filling now (`[cache] siblings`), so that a fleet's nodes fill
//! each URL once between them, as one node's cache lock does for its own requests.
//!
//! A node that misses registers its fill, then asks its siblings (`cache::peers`). A sibling
//! that is filling the same URL answers "filling" when it goes to the servers itself (it
//! asked its own siblings already), or when it outranks the asker (a lower `rank`, drawn at
//! start): the asker then waits for that fill and takes its copy. Two nodes never wait for
//! each other: a node waits only for one that goes to the servers or that outranks it.

use pingora::cache::key::HashBinary;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::watch;

pub struct Fills {
    /// This node's rank among its siblings: the lower fills, the higher waits.
    pub rank: u64,
    filling: Mutex<HashMap<HashBinary, Fill>>,
}

/// A fill's state (`ASKING`, then `FETCHING`); closed (its sender dropped) when the request
/// that fills is done.
type Fill = Arc<watch::Sender<u8>>;
const ASKING: u8 = 0;
/// The siblings had no copy: this node is going to the servers.
const FETCHING: u8 = 1;

/// Held by the request that fills a key, for as long as it runs; dropped, it ends the fill
/// and wakes the requests and siblings waiting for it.
pub struct FillGuard {
    fills: Arc<Fills>,
    key: HashBinary,
    fill: Fill,
}

impl FillGuard {
    /// The siblings had no copy: this node fills from the servers (and the requests here
    /// that waited go on to the cache lock).
    pub fn fetching(&self) {
        self.fill.send_replace(FETCHING);
    }
}

impl Drop for FillGuard {
    fn drop(&mut self) {
        let mut filling = self.fills.lock();
        if filling
            .get(&self.key)
            .is_some_and(|f| Arc::ptr_eq(f, &self.fill))
        {
            filling.remove(&self.key);
        }
    }
}

/// What a sibling asking for a key this node lacks is told.
pub enum Answer {
    /// Nothing being filled here that it should wait for.
    None,
    /// Filling here: wait for this (`wait_done`), then ask again.
    Filling(watch::Receiver<u8>),
}

impl Fills {
    pub fn new() -> Arc<Fills> {
        // A rank unlike any other node's: the clock's nanoseconds mixed with the process id.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64;
        let rank = (nanos ^ u64::from(std::process::id()).rotate_left(40))
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        Arc::new(Fills {
            rank,
            filling: Mutex::new(HashMap::new()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<HashBinary, Fill>> {
        self.filling.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers this request's fill of `key`; or, when another request here fills it
    /// already, that fill's state (`wait_asked`), so the siblings are asked once.
    pub fn begin(self: &Arc<Self>, key: HashBinary) -> Result<FillGuard, watch::Receiver<u8>> {
        let mut filling = self.lock();
        if let Some(fill) = filling.get(&key) {
            return Err(fill.subscribe());
        }
        let fill = Arc::new(watch::channel(ASKING).0);
        filling.insert(key, fill.clone());
        Ok(FillGuard {
            fills: self.clone(),
            key,
            fill,
        })
    }

    /// What a sibling of rank `asker` that lacks `key` is told.
    pub fn answer(&self, key: &HashBinary, asker: u64) -> Answer {
        match self.lock().get(key) {
            Some(f) if *f.borrow() == FETCHING || self.rank < asker => {
                Answer::Filling(f.subscribe())
            }
            _ => Answer::None,
        }
    }
}

/// Waits, at most `limit`, for a fill to be done.
pub async fn wait_done(mut fill: watch::Receiver<u8>, limit: Duration) {
    let _ = tokio::time::timeout(limit, async {
        // Ok on each change of state; an error once the filling request is done.
        while fill.changed().await.is_ok() {}
    })
    .await;
}

/// Waits, at most `limit`, until a fill has asked the siblings: done (their copy stored), or
/// fetching from the servers (the cache lock then makes the waiter wait for that fetch).
pub async fn wait_asked(mut fill: watch::Receiver<u8>, limit: Duration) {
    let _ = tokio::time::timeout(limit, fill.wait_for(|state| *state == FETCHING)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_fill_is_waited_for_by_the_lower_ranks_only_until_it_fetches() {
        let fills = Fills::new();
        let key = [1; 16];
        let fill = fills.begin(key).unwrap();
        // A second request here waits for the first one's asking.
        let other = fills.begin(key).err().unwrap();
        let (lower, higher) = (fills.rank.saturating_sub(1), fills.rank.saturating_add(1));
        assert!(matches!(fills.answer(&key, higher), Answer::Filling(_)));
        assert!(matches!(fills.answer(&key, lower), Answer::None));
        assert!(matches!(fills.answer(&[2; 16], higher), Answer::None));
        let asked = tokio::spawn(wait_asked(other, Duration::from_secs(10)));
        fill.fetching();
        tokio::time::timeout(Duration::from_secs(1), asked)
            .await
            .expect("woken when the fill goes to the servers")
            .unwrap();
        // Fetching: every asker waits, whatever its rank, until the fill is done.
        let Answer::Filling(done) = fills.answer(&key, lower) else {
            panic!("a fetching fill is waited for");
        };
        let waiter = tokio::spawn(wait_done(done, Duration::from_secs(10)));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished(), "not done yet");
        drop(fill);
        tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .expect("woken when the fill is done")
            .unwrap();
        assert!(fills.begin(key).is_ok(), "forgotten once done");
    }
}
