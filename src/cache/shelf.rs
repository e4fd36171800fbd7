//! What pingora-cache holds as `&'static`: the storage it calls, the cache lock and the
//! hit-for-miss predictor. One `Shelf` per running gatehouse, made once and kept for the
//! process; the objects themselves live in the current generation's `MokaStorage`, which the
//! shelf points to. A reload that changes `[cache]` puts a new storage on the shelf; the old
//! one is freed as soon as nothing uses it (its generation's last request, its last miss
//! handler still writing).
//!
//! The lock's age timeout is fixed when a lock is made, so the shelf keeps one lock per
//! `lock_timeout` value the process has run with (a few KiB each, made only on reload).

use super::store::MokaStorage;
use super::Counters;
use arc_swap::ArcSwap;
use pingora::cache::key::CacheKey;
use pingora::cache::lock::{CacheKeyLockImpl, CacheLock};
use pingora::cache::predictor::Predictor;
use pingora::cache::storage::Storage;
use pingora::cache::storage::{HitHandler, MissHandler, PurgeOutcome, PurgeTarget, PurgeType};
use pingora::cache::trace::SpanHandle;
use pingora::cache::CacheMeta;
use pingora::Result;
use std::any::Any;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct Shelf {
    current: ArcSwap<MokaStorage>,
    pub predictor: Predictor<16>,
    locks: Mutex<Vec<(Duration, &'static CacheKeyLockImpl)>>,
    /// Kept across storages, so the metrics' counters never go back.
    pub counters: Arc<Counters>,
}

impl Shelf {
    /// The instance's shelf, with its first storage.
    pub fn new(storage: Arc<MokaStorage>, counters: Arc<Counters>) -> &'static Shelf {
        Box::leak(Box::new(Shelf {
            current: ArcSwap::new(storage),
            predictor: Predictor::new(4096, None),
            locks: Mutex::new(Vec::new()),
            counters,
        }))
    }

    /// Requests from now on use `storage`.
    pub fn put(&self, storage: Arc<MokaStorage>) {
        self.current.store(storage);
    }

    /// The cache lock whose writers' age timeout is `age`.
    pub fn lock(&self, age: Duration) -> &'static CacheKeyLockImpl {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, l)) = locks.iter().find(|(d, _)| *d == age) {
            return *l;
        }
        let l: &'static CacheKeyLockImpl = Box::leak(CacheLock::new_boxed(age));
        locks.push((age, l));
        l
    }
}

#[async_trait::async_trait]
impl Storage for Shelf {
    async fn lookup(
        &'static self,
        key: &CacheKey,
        _trace: &SpanHandle,
    ) -> Result<Option<(CacheMeta, HitHandler)>> {
        Ok(self.current.load().lookup(key))
    }

    async fn get_miss_handler(
        &'static self,
        key: &CacheKey,
        meta: &CacheMeta,
        _trace: &SpanHandle,
    ) -> Result<MissHandler> {
        Ok(self.current.load_full().miss_handler(key, meta))
    }

    async fn purge(
        &'static self,
        target: PurgeTarget<'_>,
        _purge_type: PurgeType,
        _trace: &SpanHandle,
    ) -> Result<PurgeOutcome> {
        Ok(self.current.load().purge(target))
    }

    async fn update_meta(
        &'static self,
        key: &CacheKey,
        meta: &CacheMeta,
        _trace: &SpanHandle,
    ) -> Result<bool> {
        Ok(self.current.load().update_meta(key, meta))
    }

    fn as_any(&self) -> &(dyn Any + Send + Sync + 'static) {
        self
    }
}
