//! The Varnish-style cache of anonymous responses: pingora-cache's state machine (lock for
//! coalescing, predictor for hit-for-miss, stale handling) over our moka storage; plain fresh
//! hits are found here (`Cache::fast_hit`) and served by the fast path (`proxy::hit`).
//!
//! - `policy`: what is cacheable and for how long (`control`: Cache-Control directives);
//! - `key`: the cache key and Vary variants;
//! - `store`: the moka storage;
//! - `invalidate`: what a successful write invalidates (RFC 9111 §4.4);
//! - `purge`: operator purges and bans as values (shared by a cluster);
//! - `shelf`: what pingora holds as `&'static`, pointing at the current storage;
//! - `wire`: a stored header as lines, for hits served from the fast path;
//! - here: the process-wide `Cache` (storage, lock, predictor, counters), admission
//!   (`min_uses`), the X-Cache status, and invalidation (purge, ban).

pub mod control;
pub mod fills;
mod invalidate;
pub mod key;
pub mod peers;
pub mod policy;
mod purge;
mod served;
mod shelf;
pub mod snapshot;
pub mod store;
mod tombstones;
pub mod wire;

use crate::config::{CacheConfig, RouteCache};
pub use invalidate::is_unsafe;
use moka::sync::Cache as Moka;
use pingora::cache::key::CacheHashKey;
use pingora::cache::lock::CacheKeyLockImpl;
use pingora::cache::predictor::CacheablePredictor;
use pingora::cache::{CacheKey, CacheOptionOverrides, CachePhase};
pub use purge::{longest_life, Invalidation};
use shelf::Shelf;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use store::{KeyOrigin, MokaStorage};

/// Cache counters, for metrics.
#[derive(Debug, Default)]
pub struct Counters {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub stale: AtomicU64,
    pub expired: AtomicU64,
    pub revalidated: AtomicU64,
    pub passes: AtomicU64,
    /// Requests that waited on another request's fetch of the same object.
    pub coalesced: AtomicU64,
    pub evictions: AtomicU64,
    /// Responses that streamed through uncached because of max_object_size.
    pub too_large: AtomicU64,
    /// The snapshot read at start and written at stop (`snapshot`).
    pub snapshot: SnapshotCounters,
    /// Objects copied from peers (`peers`): by a hot spare, and on misses from siblings.
    pub warmed: AtomicU64,
    pub from_siblings: AtomicU64,
}

/// What the last snapshot read and write did.
#[derive(Debug, Default)]
pub struct SnapshotCounters {
    pub loaded_objects: AtomicU64,
    pub loaded_bytes: AtomicU64,
    pub load_ms: AtomicU64,
    /// 1 when the snapshot found at start was refused (partial, corrupt, foreign).
    pub refused: AtomicU64,
    pub written_objects: AtomicU64,
    pub written_bytes: AtomicU64,
    pub write_ms: AtomicU64,
}

impl SnapshotCounters {
    pub fn loaded(&self, d: snapshot::Done) {
        self.loaded_objects.store(d.objects, Relaxed);
        self.loaded_bytes.store(d.bytes, Relaxed);
        self.load_ms.store(d.millis, Relaxed);
    }

    pub fn written(&self, d: snapshot::Done) {
        self.written_objects.store(d.objects, Relaxed);
        self.written_bytes.store(d.bytes, Relaxed);
        self.write_ms.store(d.millis, Relaxed);
    }
}

/// The status a response reports in `X-Cache`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Hit,
    Miss,
    Stale,
    Pass,
    Expired,
    Revalidated,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Hit => "HIT",
            Status::Miss => "MISS",
            Status::Stale => "STALE",
            Status::Pass => "PASS",
            Status::Expired => "EXPIRED",
            Status::Revalidated => "REVALIDATED",
        }
    }

    pub fn from_phase(phase: CachePhase) -> Status {
        match phase {
            CachePhase::Hit => Status::Hit,
            CachePhase::Miss => Status::Miss,
            CachePhase::Stale | CachePhase::StaleUpdating => Status::Stale,
            CachePhase::Expired => Status::Expired,
            CachePhase::Revalidated | CachePhase::RevalidatedNoCache(_) => Status::Revalidated,
            _ => Status::Pass,
        }
    }
}

/// How often one key was asked for recently, for `min_uses`.
struct Uses {
    count: AtomicU32,
    window: Duration,
}

struct UsesWindow;

impl moka::Expiry<u128, Arc<Uses>> for UsesWindow {
    fn expire_after_create(
        &self,
        _: &u128,
        v: &Arc<Uses>,
        _: std::time::Instant,
    ) -> Option<Duration> {
        Some(v.window)
    }
}

/// The cache of one config generation: kept by a reload that leaves `[cache]` as it is,
/// replaced (and freed once unused) by one that changes it.
pub struct Cache {
    pub config: CacheConfig,
    pub storage: Arc<MokaStorage>,
    shelf: &'static Shelf,
    lock: &'static CacheKeyLockImpl,
    uses: Moka<u128, Arc<Uses>>,
    pub counters: Arc<Counters>,
    /// What was invalidated here, and when (`Cache::restore` checks copies against it).
    tombstones: tombstones::Tombstones,
    /// The misses being filled here, which siblings may wait for.
    pub fills: Arc<fills::Fills>,
    /// The peers not asked on a miss for a while (`peers::Unreachable`).
    pub unreachable: peers::Unreachable,
}

impl Cache {
    /// Stores a copy from a snapshot or a peer, unless an invalidation applied here names it
    /// and came after it was made.
    pub fn restore(&self, key: pingora::cache::key::HashBinary, entry: store::Entry) -> bool {
        if self.tombstones.refuse(&entry) {
            return false;
        }
        self.storage.restore(key, entry);
        true
    }

    /// A gatehouse instance's first cache (and its shelf).
    pub fn new(config: &CacheConfig) -> Arc<Cache> {
        let counters = Arc::new(Counters::default());
        let storage = Cache::storage(config, &counters);
        Cache::on_shelf(Shelf::new(storage.clone(), counters), storage, config)
    }

    /// The cache for a changed `[cache]` section: a new, empty storage from now on; this one's
    /// objects are dropped now and its structures once the last request using them is done.
    pub fn replace(&self, config: &CacheConfig) -> Arc<Cache> {
        self.storage.entries.invalidate_all();
        let storage = Cache::storage(config, &self.shelf.counters);
        self.shelf.put(storage.clone());
        Cache::on_shelf(self.shelf, storage, config)
    }

    fn storage(config: &CacheConfig, counters: &Arc<Counters>) -> Arc<MokaStorage> {
        Arc::new(MokaStorage::new(
            config.max_size,
            usize::try_from(config.max_object_size).unwrap_or(usize::MAX),
            counters.clone(),
        ))
    }

    fn on_shelf(
        shelf: &'static Shelf,
        storage: Arc<MokaStorage>,
        config: &CacheConfig,
    ) -> Arc<Cache> {
        Arc::new(Cache {
            config: config.clone(),
            storage,
            shelf,
            lock: shelf.lock(config.lock_timeout),
            uses: Moka::builder()
                .max_capacity(1_000_000)
                .expire_after(UsesWindow)
                .build(),
            counters: shelf.counters.clone(),
            tombstones: Default::default(),
            fills: fills::Fills::new(),
            unreachable: Default::default(),
        })
    }

    /// Turns the cache on for this request.
    pub fn enable(&self, cache: &mut pingora::cache::HttpCache) {
        let mut overrides = CacheOptionOverrides::default();
        overrides.wait_timeout = Some(self.config.lock_timeout);
        cache.enable(
            self.shelf,
            None,
            Some(&self.shelf.predictor),
            Some(self.lock),
            Some(overrides),
        );
    }

    /// Counts one request for `key`; true once it has been asked for `min_uses` times within
    /// the window (Vinted's "store after the third hit").
    pub fn admit(&self, key: &CacheKey, rules: &RouteCache) -> bool {
        if rules.min_uses <= 1 {
            return true;
        }
        let id = u128::from_be_bytes(key.primary_bin());
        let uses = self.uses.get_with(id, || {
            Arc::new(Uses {
                count: AtomicU32::new(0),
                window: rules.min_uses_window,
            })
        });
        uses.count.fetch_add(1, Relaxed) + 1 >= rules.min_uses
    }

    /// Builds the cache key of a request, with what bans and the storage need to know.
    pub fn key(https: bool, host: &str, uri: &http::Uri, rules: &RouteCache) -> CacheKey {
        let host = key::host(host);
        let mut k = CacheKey::new(key::primary(https, &host, uri, rules), "");
        let path_and_query = uri.path_and_query().map_or("/", |pq| pq.as_str());
        k.extensions.insert(KeyOrigin {
            host: host.into(),
            path: path_and_query.into(),
        });
        k.extensions.insert(store::Retention(
            rules.grace.max(rules.stale_if_error) + rules.keep,
        ));
        k
    }

    /// The stored response a request can be served from the fast path, without
    /// pingora-cache's state machine: what that machine's lookup would serve as a fresh hit (the
    /// key predicted cacheable; the object under the primary key, or the request's Vary
    /// variant of it, chosen as `HttpCache::cache_vary_lookup` does; fresh) and that the own
    /// loop can frame (`wire::HitHead`). Anything else (no object, a stale one, a variant
    /// pingora-cache would not trust) is left to pingora-cache.
    /// The hash a request's URL is stored under (its primary key).
    pub fn primary_key(
        &self,
        https: bool,
        host: &str,
        req: &pingora::http::RequestHeader,
        rules: &RouteCache,
    ) -> CacheKey {
        CacheKey::new(key::primary(https, &key::host(host), &req.uri, rules), "")
    }

    /// Whether pingora-cache's predictor still expects the URL of `key` to be stored.
    pub fn predicted_cacheable(&self, key: &CacheKey) -> bool {
        self.shelf.predictor.cacheable_prediction(key)
    }

    pub fn fast_hit(
        &self,
        https: bool,
        host: &str,
        req: &pingora::http::RequestHeader,
        rules: &RouteCache,
        decodes: bool,
    ) -> Option<Arc<store::Entry>> {
        let mut key = CacheKey::new(key::primary(https, &key::host(host), &req.uri, rules), "");
        if !self.shelf.predictor.cacheable_prediction(&key) {
            return None;
        }
        let primary = self.storage.entries.get(&key.combined_bin())?;
        let entry = match key::variance_of(&primary.header().headers, req, decodes) {
            None => primary,
            Some(v) if primary.variance() == Some(v) => primary,
            Some(v) => {
                key.set_variance_key(v);
                let variant = self.storage.entries.get(&key.combined_bin())?;
                // As pingora-cache: the variant must be the one asked for, and not older than
                // the primary (whose creation is its variants' tombstone).
                if variant.variance() != Some(v) || variant.created() < primary.created() {
                    return None;
                }
                variant
            }
        };
        let framed = entry.hit_head().is_some_and(|h| {
            h.content_length
                .as_ref()
                .is_none_or(|(_, n)| *n == entry.body().len() as u64)
        });
        let hit = framed && entry.is_fresh(std::time::SystemTime::now());
        if hit {
            entry.touch();
        }
        hit.then_some(entry)
    }

    /// Counts a finished request by how the cache served it.
    pub fn record(&self, status: Status, waited_on_lock: bool) {
        let c = &self.counters;
        let counter = match status {
            Status::Hit => &c.hits,
            Status::Miss => &c.misses,
            Status::Stale => &c.stale,
            Status::Pass => &c.passes,
            Status::Expired => &c.expired,
            Status::Revalidated => &c.revalidated,
        };
        counter.fetch_add(1, Relaxed);
        if waited_on_lock {
            c.coalesced.fetch_add(1, Relaxed);
        }
    }

    /// Removes every stored variant of one URL (`host` as requested, `path_and_query` as
    /// stored), whatever its scheme. Returns how many objects went.
    pub fn purge(&self, host: &str, path_and_query: &str) -> usize {
        let host = key::host(host);
        self.remove_where(|o| *o.host == *host && *o.path == *path_and_query)
    }

    /// Removes every object of `host` (any host when None) whose path starts with `prefix`.
    pub fn ban_prefix(&self, host: Option<&str>, prefix: &str) -> usize {
        let host = host.map(key::host);
        self.remove_where(|o| {
            host.as_deref().is_none_or(|h| *o.host == *h) && o.path.starts_with(prefix)
        })
    }

    /// Removes every object of `host` (any host when None) whose path and query match `re`.
    pub fn ban_regex(&self, host: Option<&str>, re: &regex::Regex) -> usize {
        let host = host.map(key::host);
        self.remove_where(|o| host.as_deref().is_none_or(|h| *o.host == *h) && re.is_match(&o.path))
    }

    fn remove_where(&self, matches: impl Fn(&KeyOrigin) -> bool) -> usize {
        let doomed: Vec<_> = self
            .storage
            .entries
            .iter()
            .filter(|(_, e)| e.origin.as_ref().is_some_and(&matches))
            .map(|(k, _)| *k)
            .collect();
        for k in &doomed {
            self.storage.entries.invalidate(k);
        }
        doomed.len()
    }

    /// Stored bytes and objects.
    pub fn usage(&self) -> (u64, u64) {
        self.storage.usage()
    }
}
