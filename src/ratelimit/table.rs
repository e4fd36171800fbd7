//! The counting behind a rate limit: one generic cell rate algorithm (GCRA, the leaky bucket
//! as a single "theoretical arrival time" per key) in a table of fixed capacity, split in
//! shards so that two worker threads rarely meet on one lock (held for a lookup and a store,
//! never across an await).
//!
//! Why a bounded table and not a sketch: a sketch (pingora-limits' count-min estimator) never
//! forgets and overcounts on collisions, so at a million keys it refuses clients that sent
//! nothing wrong, and counts fixed windows (twice the rate across a window's edge). Here a key
//! costs 16 bytes plus the map's overhead, its count is exact, and a key whose bucket has
//! drained holds nothing worth keeping: a full shard first drops those (at most every 10 ms).
//! When every key of a full shard is still counting, the new key takes the place of the one
//! closest to drained among a few (`Verdict::Evicted`, counted): the table never grows past
//! `capacity`, whatever the number of distinct keys, and a flood of new keys can neither make
//! room for itself by being let through uncounted nor cost more than a few lookups each.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher, RandomState};
use std::sync::Mutex;
use std::time::Duration;

/// Shards per table: a power of two, well above the worker threads.
const SHARDS: usize = 64;

/// A full shard is swept for drained keys at most this often (nanoseconds).
const SWEEP_EVERY_NS: u64 = 10_000_000;

/// Keys of a full shard looked at for the one to evict (in the map's order: by hash).
const EVICTION_SAMPLE: usize = 8;

/// The keys are already hashes (`super::Limit::key_hash`): the map uses them as they are.
#[derive(Default)]
pub struct PassThroughHasher(u64);

impl Hasher for PassThroughHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type Map = HashMap<u64, u64, BuildHasherDefault<PassThroughHasher>>;

struct Shard {
    /// Key hash → theoretical arrival time (nanoseconds on the table's clock).
    tat: Map,
    /// When this shard was last swept of drained keys.
    swept_at: u64,
    /// The latest arrival time it has counted: a thread that read the clock before another
    /// but took the lock after it counts at that time, not earlier (else the second of two
    /// requests at once could look early by the other's lead, and be delayed or refused).
    latest: u64,
}

/// What a request's arrival means for its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within the rate (or the burst).
    Pass,
    /// Within the rate once it has waited this long (only when the caller allows a delay).
    Delay(Duration),
    /// Over the rate: it would conform after this long.
    Over(Duration),
    /// Within the rate, a new key counted in the place of another that was still counting
    /// (the table full).
    Evicted,
}

/// The rate: one request per `interval_ns`, `burst` of them at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub interval_ns: u64,
    pub burst: u64,
}

impl Rate {
    /// `count` per `window`, `count` of them at once.
    pub fn per(count: u64, window: Duration) -> Rate {
        Rate {
            interval_ns: (window.as_nanos() / u128::from(count.max(1))).max(1) as u64,
            burst: count,
        }
    }
}

pub struct Table {
    shards: Box<[Mutex<Shard>]>,
    per_shard: usize,
    /// Keys are hashed with a key of this table's own: a client cannot aim at a shard.
    hasher: RandomState,
}

impl Table {
    /// A table holding at most `capacity` keys (rounded up to a multiple of the shards).
    pub fn new(capacity: usize) -> Table {
        let per_shard = capacity.div_ceil(SHARDS).max(1);
        let shards = (0..SHARDS)
            .map(|_| {
                Mutex::new(Shard {
                    tat: Map::default(),
                    swept_at: 0,
                    latest: 0,
                })
            })
            .collect();
        Table {
            shards,
            per_shard,
            hasher: RandomState::new(),
        }
    }

    /// Counts one request of `key` arriving at `now` (nanoseconds, monotonic): passes it,
    /// delays it (when that is at most `max_delay`) or finds it over the rate. A request that
    /// is over is not counted: a refused client's bucket drains as if it had not asked.
    pub fn arrive(&self, key: u64, now: u64, rate: Rate, max_delay: Duration) -> Verdict {
        // The high bits: the map's buckets are chosen by the low ones.
        let shard = &self.shards[(key >> 58) as usize & (SHARDS - 1)];
        let mut s = shard.lock().unwrap_or_else(|p| p.into_inner());
        let now = now.max(s.latest);
        s.latest = now;
        let tat = s.tat.get(&key).copied().unwrap_or(now).max(now);
        let next = tat.saturating_add(rate.interval_ns);
        // Conforms when the bucket, after this request, holds at most `burst` of them.
        let conforms_at = next.saturating_sub(rate.interval_ns.saturating_mul(rate.burst));
        let verdict = if conforms_at <= now {
            Verdict::Pass
        } else {
            let wait = Duration::from_nanos(conforms_at - now);
            if wait > max_delay {
                return Verdict::Over(wait);
            }
            Verdict::Delay(wait)
        };
        let mut verdict = verdict;
        if s.tat.len() >= self.per_shard && !s.tat.contains_key(&key) {
            if now.saturating_sub(s.swept_at) >= SWEEP_EVERY_NS {
                s.swept_at = now;
                s.tat.retain(|_, t| *t > now);
            }
            if s.tat.len() >= self.per_shard {
                let sample = s.tat.iter().take(EVICTION_SAMPLE);
                if let Some((&old, _)) = sample.min_by_key(|(_, t)| **t) {
                    s.tat.remove(&old);
                    verdict = Verdict::Evicted;
                }
            }
        }
        s.tat.insert(key, next);
        verdict
    }

    /// Keys counted now (drained ones included until a sweep drops them).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).tat.len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The hasher a request's key goes through (`super::Limit::key_hash`).
    pub fn hasher(&self) -> &RandomState {
        &self.hasher
    }

    /// The most keys this table holds.
    pub fn capacity(&self) -> usize {
        self.per_shard * SHARDS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;
    /// 5 per second, 5 at once.
    const RATE: Rate = Rate {
        interval_ns: 200 * MS,
        burst: 5,
    };

    #[test]
    fn the_burst_passes_then_the_rate_decides() {
        let t = Table::new(1000);
        let zero = Duration::ZERO;
        for i in 0..5 {
            assert_eq!(t.arrive(1, 0, RATE, zero), Verdict::Pass, "request {i}");
        }
        assert_eq!(
            t.arrive(1, 0, RATE, zero),
            Verdict::Over(Duration::from_millis(200))
        );
        assert_eq!(t.arrive(2, 0, RATE, zero), Verdict::Pass, "another key");
        // Refusals are not counted: one interval later, one more passes, and only one.
        assert_eq!(t.arrive(1, 200 * MS, RATE, zero), Verdict::Pass);
        assert!(matches!(
            t.arrive(1, 200 * MS, RATE, zero),
            Verdict::Over(_)
        ));
        // A drained bucket takes the whole burst again.
        for _ in 0..5 {
            assert_eq!(t.arrive(1, 2000 * MS, RATE, zero), Verdict::Pass);
        }
    }

    #[test]
    fn an_arrival_counted_late_is_not_early() {
        // Two requests at once: the second read the clock first but took the lock second.
        let t = Table::new(1000);
        let rate = Rate {
            interval_ns: 250 * MS,
            burst: 2,
        };
        assert_eq!(t.arrive(3, 10 * MS, rate, Duration::ZERO), Verdict::Pass);
        assert_eq!(t.arrive(3, 9 * MS, rate, Duration::ZERO), Verdict::Pass);
    }

    #[test]
    fn a_delay_within_the_bound_is_given_and_counted() {
        let t = Table::new(1000);
        let bound = Duration::from_millis(500);
        for _ in 0..5 {
            assert_eq!(t.arrive(7, 0, RATE, bound), Verdict::Pass);
        }
        assert_eq!(
            t.arrive(7, 0, RATE, bound),
            Verdict::Delay(Duration::from_millis(200))
        );
        assert_eq!(
            t.arrive(7, 0, RATE, bound),
            Verdict::Delay(Duration::from_millis(400))
        );
        assert_eq!(
            t.arrive(7, 0, RATE, bound),
            Verdict::Over(Duration::from_millis(600))
        );
    }

    #[test]
    fn a_million_keys_stay_within_the_capacity() {
        let t = Table::new(10_000);
        let zero = Duration::ZERO;
        let mut evicted = 0;
        for k in 0..1_000_000u64 {
            // Spread like hashes; all arrive within one interval, so none drains.
            let key = k.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            if t.arrive(key, k, RATE, zero) == Verdict::Evicted {
                evicted += 1;
            }
        }
        assert!(t.len() <= t.capacity(), "{} keys", t.len());
        assert!(t.capacity() < 10_100);
        assert!(evicted >= 1_000_000 - t.capacity());
        // A key counted lately stays counted through the flood that follows it: the evicted
        // are the ones closest to drained.
        let hot = 7u64.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 1;
        for _ in 0..5 {
            t.arrive(hot, 1_000_000, RATE, zero);
        }
        for k in 1_000_000..1_020_000u64 {
            t.arrive(k.wrapping_mul(0x9E37_79B9_7F4A_7C15), 1_000_000, RATE, zero);
        }
        assert!(matches!(
            t.arrive(hot, 1_000_001, RATE, zero),
            Verdict::Over(_)
        ));
        // Once they drain, a new key is counted again (its shard swept): its burst, then no more.
        let later = 10_000 * MS;
        for _ in 0..5 {
            assert_eq!(t.arrive(42, later, RATE, zero), Verdict::Pass);
        }
        assert!(matches!(t.arrive(42, later, RATE, zero), Verdict::Over(_)));
    }
}
