//! Cache storage on moka, for pingora-cache's state machine: one entry per variant (keyed by
//! the combined primary+variance hash), weighed in bytes (headers + body) against `max_size`,
//! each kept until its own end of life (fresh + grace/stale-if-error + keep), so stale objects
//! remain for grace, stale-if-error and 304 revalidation.

use super::served::Hit;
pub use super::served::BODY_SLICE;
use super::wire::HitHead;
use super::Counters;
use bytes::{Bytes, BytesMut};
use moka::sync::Cache as Moka;
use pingora::cache::key::{CacheHashKey, CacheKey, HashBinary};
use pingora::cache::storage::{
    HandleMiss, HitHandler, MissFinishType, MissHandler, PurgeOutcome, PurgeTarget,
};
use pingora::cache::CacheMeta;
use pingora::Result;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Fixed bookkeeping cost counted per object on top of its headers and body.
const ENTRY_OVERHEAD: usize = 128;

/// Where an object came from, for bans: set on the cache key when it is built.
#[derive(Debug, Clone)]
pub struct KeyOrigin {
    pub host: Arc<str>,
    pub path: Arc<str>,
}

/// The stored form of a `CacheMeta` (which is not `Clone`): the response header kept parsed,
/// so a hit clones it instead of decompressing and re-parsing pingora's serialized form (the
/// largest cost of a small hit, `bench/results/2026-11-22-vm.md`). The times rebuild the same
/// freshness and age.
struct StoredMeta {
    header: pingora::http::ResponseHeader,
    fresh_until: SystemTime,
    created: SystemTime,
    /// What age and freshness count from (`updated`, or pingora's epoch override).
    epoch: SystemTime,
    stale_while_revalidate: u32,
    stale_if_error: u32,
    variance: Option<HashBinary>,
    /// Bytes of the header as it appears on the wire, for the weigher.
    header_bytes: usize,
    /// The header as lines, when a hit on it can be served from the fast path.
    hit_head: Option<HitHead>,
}

impl StoredMeta {
    fn new(meta: &CacheMeta) -> StoredMeta {
        let header = meta.response_header_copy();
        let header_bytes = header
            .headers
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 4)
            .sum::<usize>()
            + 16;
        StoredMeta {
            fresh_until: meta.fresh_until(),
            created: meta.created(),
            epoch: meta.epoch(),
            stale_while_revalidate: meta.stale_while_revalidate_sec(),
            stale_if_error: meta.stale_if_error_sec(),
            variance: meta.variance(),
            header_bytes,
            hit_head: HitHead::of(&header),
            header,
        }
    }

    /// A body that came without a length (chunked, or coded before the cache) gets its
    /// length once stored whole: hits then say it, and a range of it can be answered.
    fn with_length(mut self, len: usize) -> StoredMeta {
        let h = &self.header.headers;
        let bodiless = matches!(self.header.status.as_u16(), 100..=199 | 204 | 304);
        if bodiless || h.contains_key(http::header::CONTENT_LENGTH) {
            return self;
        }
        self.header.remove_header(&http::header::TRANSFER_ENCODING);
        if self
            .header
            .insert_header(http::header::CONTENT_LENGTH, len)
            .is_ok()
        {
            self.hit_head = HitHead::of(&self.header);
            self.header_bytes += 20;
        }
        self
    }

    fn to_meta(&self) -> CacheMeta {
        let mut meta = CacheMeta::new(
            self.fresh_until,
            self.created,
            self.stale_while_revalidate,
            self.stale_if_error,
            self.header.clone(),
        );
        if self.epoch != self.created {
            meta.set_epoch_override(self.epoch);
        }
        if let Some(v) = self.variance {
            meta.set_variance(v);
        }
        meta
    }
}

/// One stored variant.
pub struct Entry {
    meta: StoredMeta,
    body: Bytes,
    pub primary: HashBinary,
    pub origin: Option<KeyOrigin>,
    /// When the storage may forget it.
    pub end_of_life: SystemTime,
    /// Hits served from it: what a hot spare copies first (`super::peers`).
    hits: std::sync::atomic::AtomicU32,
}

impl Entry {
    /// Counts a hit.
    pub fn touch(&self) {
        self.hits.fetch_add(1, Relaxed);
    }

    pub fn hits(&self) -> u32 {
        self.hits.load(Relaxed)
    }

    /// Fresh at `now`, as pingora-cache decides it (`CacheMeta::is_fresh`).
    pub fn is_fresh(&self, now: SystemTime) -> bool {
        self.meta.fresh_until >= now
    }

    /// The Age a response from it carries (RFC 9111 §4.2.3), counted as pingora-cache's
    /// `CacheMeta::age`: from when it was stored or last revalidated.
    pub fn age(&self, now: SystemTime) -> std::time::Duration {
        now.duration_since(self.meta.epoch).unwrap_or_default()
    }

    /// The Vary variance it was stored under, if any.
    pub fn variance(&self) -> Option<HashBinary> {
        self.meta.variance
    }

    /// When it was stored (what pingora-cache checks a variant against its primary's).
    pub fn created(&self) -> SystemTime {
        self.meta.created
    }

    /// The stored response header.
    pub fn header(&self) -> &pingora::http::ResponseHeader {
        &self.meta.header
    }

    /// The header as lines, when the fast path can frame a response from it.
    pub fn hit_head(&self) -> Option<&HitHead> {
        self.meta.hit_head.as_ref()
    }

    /// The whole stored body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    fn weight(&self) -> u32 {
        // A parsed header costs about twice its wire size (map entries, case-preserving names),
        // and its lines for the fast path once more.
        let n = 3 * self.meta.header_bytes + self.body.len() + ENTRY_OVERHEAD;
        u32::try_from(n).unwrap_or(u32::MAX)
    }
}

/// An entry's fields, as a snapshot carries them (`super::snapshot`).
pub struct EntryParts {
    pub header: pingora::http::ResponseHeader,
    pub fresh_until: SystemTime,
    pub created: SystemTime,
    pub epoch: SystemTime,
    pub stale_while_revalidate: u32,
    pub stale_if_error: u32,
    pub variance: Option<HashBinary>,
    pub body: Bytes,
    pub primary: HashBinary,
    pub origin: Option<KeyOrigin>,
    pub end_of_life: SystemTime,
}

impl Entry {
    pub fn parts(&self) -> EntryParts {
        let m = &self.meta;
        EntryParts {
            header: m.header.clone(),
            fresh_until: m.fresh_until,
            created: m.created,
            epoch: m.epoch,
            stale_while_revalidate: m.stale_while_revalidate,
            stale_if_error: m.stale_if_error,
            variance: m.variance,
            body: self.body.clone(),
            primary: self.primary,
            origin: self.origin.clone(),
            end_of_life: self.end_of_life,
        }
    }

    /// The same object on a clock `ahead` of the one it was made by (negative: behind): a
    /// peer's copy read on this node's clock.
    pub fn rebased(&self, ahead: i128) -> Entry {
        let shift = |t: SystemTime| {
            let d =
                std::time::Duration::from_nanos(ahead.unsigned_abs().min(u64::MAX as u128) as u64);
            if ahead >= 0 {
                t.checked_add(d).unwrap_or(t)
            } else {
                t.checked_sub(d).unwrap_or(std::time::UNIX_EPOCH)
            }
        };
        let mut p = self.parts();
        p.fresh_until = shift(p.fresh_until);
        p.created = shift(p.created);
        p.epoch = shift(p.epoch);
        p.end_of_life = shift(p.end_of_life);
        Entry::from_parts(p)
    }

    pub fn from_parts(p: EntryParts) -> Entry {
        let mut meta = CacheMeta::new(
            p.fresh_until,
            p.created,
            p.stale_while_revalidate,
            p.stale_if_error,
            p.header,
        );
        if p.epoch != p.created {
            meta.set_epoch_override(p.epoch);
        }
        if let Some(v) = p.variance {
            meta.set_variance(v);
        }
        Entry {
            meta: StoredMeta::new(&meta),
            body: p.body,
            primary: p.primary,
            origin: p.origin,
            end_of_life: p.end_of_life,
            hits: 0.into(),
        }
    }
}

/// How long past freshness an object is kept (grace, stale-if-error, keep): set per route and
/// carried to the storage in the cache key's extensions.
#[derive(Debug, Clone, Copy, Default)]
pub struct Retention(pub Duration);

struct Lifetime;

impl moka::Expiry<HashBinary, Arc<Entry>> for Lifetime {
    fn expire_after_create(
        &self,
        _: &HashBinary,
        e: &Arc<Entry>,
        _: std::time::Instant,
    ) -> Option<Duration> {
        Some(
            e.end_of_life
                .duration_since(SystemTime::now())
                .unwrap_or_default(),
        )
    }

    fn expire_after_update(
        &self,
        _: &HashBinary,
        e: &Arc<Entry>,
        _: std::time::Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(
            e.end_of_life
                .duration_since(SystemTime::now())
                .unwrap_or_default(),
        )
    }
}

pub struct MokaStorage {
    pub entries: Moka<HashBinary, Arc<Entry>>,
    /// Primary keys stored under Vary variants (combined key ≠ primary), so that invalidating
    /// a URL finds its variants without scanning the cache.
    varied: Moka<HashBinary, ()>,
    max_object_size: usize,
    counters: Arc<Counters>,
}

impl MokaStorage {
    pub fn new(max_size: u64, max_object_size: usize, counters: Arc<Counters>) -> Self {
        let evictions = counters.clone();
        let entries = Moka::builder()
            .max_capacity(max_size)
            .weigher(|_, e: &Arc<Entry>| e.weight())
            .expire_after(Lifetime)
            .support_invalidation_closures()
            .eviction_listener(move |_, _, cause| {
                if cause == moka::notification::RemovalCause::Size {
                    evictions.evictions.fetch_add(1, Relaxed);
                }
            })
            .build();
        MokaStorage {
            entries,
            varied: Moka::new(1 << 20),
            max_object_size,
            counters,
        }
    }

    /// Removes every stored variant of the URL whose primary key is `primary`: the object
    /// itself at once, its Vary variants (if it ever had some) as moka applies the predicate.
    pub fn invalidate_primary(&self, primary: HashBinary) {
        self.entries.invalidate(&primary);
        if self.varied.contains_key(&primary) {
            self.varied.invalidate(&primary);
            let _ = self
                .entries
                .invalidate_entries_if(move |_, e| e.primary == primary);
        }
    }

    /// Stores an entry from a snapshot or a peer under its key, unless the one there is as
    /// new (stored meanwhile).
    pub fn restore(&self, key: HashBinary, entry: Entry) {
        if key != entry.primary {
            self.varied.insert(entry.primary, ());
        }
        // One step: a newer object stored meanwhile is never replaced.
        let _ = self.entries.entry(key).and_compute_with(|old| {
            use moka::ops::compute::Op;
            match old {
                Some(old) if old.value().created() >= entry.created() => Op::Nop,
                _ => Op::Put(Arc::new(entry)),
            }
        });
    }

    /// Stored bytes and objects, after moka has applied pending evictions.
    pub fn usage(&self) -> (u64, u64) {
        self.entries.run_pending_tasks();
        (self.entries.weighted_size(), self.entries.entry_count())
    }

    fn end_of_life(meta: &CacheMeta, key: &CacheKey) -> SystemTime {
        let retention = key
            .extensions
            .get::<Retention>()
            .copied()
            .unwrap_or_default();
        meta.fresh_until() + retention.0
    }
}

/// The storage operations pingora-cache calls, reached through the instance's `Shelf` (which
/// pingora holds as `&'static`); a miss handler keeps its storage alive until it finishes.
impl MokaStorage {
    pub fn lookup(&self, key: &CacheKey) -> Option<(CacheMeta, HitHandler)> {
        let entry = self.entries.get(&key.combined_bin())?;
        entry.touch();
        let meta = entry.meta.to_meta();
        let hit = Hit {
            full: entry.body.clone(),
            body: Some(entry.body.clone()),
        };
        Some((meta, Box::new(hit)))
    }

    pub fn miss_handler(self: Arc<Self>, key: &CacheKey, meta: &CacheMeta) -> MissHandler {
        Box::new(Miss {
            key: key.combined_bin(),
            primary: key.primary_bin(),
            origin: key.extensions.get::<KeyOrigin>().cloned(),
            end_of_life: Self::end_of_life(meta, key),
            meta: StoredMeta::new(meta),
            body: BytesMut::new(),
            too_large: false,
            storage: self,
        })
    }

    pub fn purge(&self, target: PurgeTarget<'_>) -> PurgeOutcome {
        let key = match target {
            PurgeTarget::Active(k) => k.combined_bin(),
            PurgeTarget::Exact(k) => k.key().combined_bin(),
        };
        match self.entries.remove(&key) {
            Some(_) => PurgeOutcome::Purged(None),
            None => PurgeOutcome::NotFound,
        }
    }

    pub fn update_meta(&self, key: &CacheKey, meta: &CacheMeta) -> bool {
        let id = key.combined_bin();
        let Some(old) = self.entries.get(&id) else {
            return false;
        };
        let updated = Entry {
            meta: StoredMeta::new(meta),
            body: old.body.clone(),
            primary: old.primary,
            origin: old.origin.clone(),
            end_of_life: Self::end_of_life(meta, key),
            hits: old.hits().into(),
        };
        self.entries.insert(id, Arc::new(updated));
        true
    }
}

struct Miss {
    storage: Arc<MokaStorage>,
    key: HashBinary,
    primary: HashBinary,
    origin: Option<KeyOrigin>,
    end_of_life: SystemTime,
    meta: StoredMeta,
    body: BytesMut,
    /// Past max_object_size: the response streams on to the client, nothing is stored.
    too_large: bool,
}

#[async_trait::async_trait]
impl HandleMiss for Miss {
    async fn write_body(&mut self, data: Bytes, _eof: bool) -> Result<()> {
        if self.too_large {
            return Ok(());
        }
        if self.body.len() + data.len() > self.storage.max_object_size {
            self.too_large = true;
            self.body = BytesMut::new();
            self.storage.counters.too_large.fetch_add(1, Relaxed);
            return Ok(());
        }
        self.body.extend_from_slice(&data);
        Ok(())
    }

    async fn finish(self: Box<Self>) -> Result<MissFinishType> {
        if self.too_large {
            return Ok(MissFinishType::Created(0));
        }
        let entry = Entry {
            meta: self.meta.with_length(self.body.len()),
            body: self.body.freeze(),
            primary: self.primary,
            origin: self.origin,
            end_of_life: self.end_of_life,
            hits: 0.into(),
        };
        let size = entry.weight() as usize;
        if self.key != self.primary {
            self.storage.varied.insert(self.primary, ());
        }
        self.storage.entries.insert(self.key, Arc::new(entry));
        Ok(MissFinishType::Created(size))
    }
}
