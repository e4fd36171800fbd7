//! Slow start (HAProxy's `slowstart`): a server that becomes usable again — back up after being
//! down, or made ready after a drain or maintenance — takes a share of its pool's traffic that
//! grows linearly from 0 to its full weight over the configured span, so a server back from a
//! deploy warms its caches and JIT on a trickle instead of its full share cold.
//!
//! Like HAProxy, it never applies to a server's first time up (at start, or when a reload adds
//! it): only to a server that was usable before. One mechanism serves every balance mode: a
//! ramping server is admitted to a pick with the probability of its ramp (a low-discrepancy
//! sequence, no random numbers); with a hash key, the key's own position decides, so a key
//! moves to the returning server once, when the ramp passes it, and stays there. A server not
//! ramping costs one atomic load per pick.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A full share, in 1/1024ths.
pub const FULL: u32 = 1024;

#[derive(Debug, Default)]
pub struct Ramp {
    span_ms: AtomicU64,
    /// Milliseconds since the process's epoch when the ramp began.
    began_ms: AtomicU64,
    active: AtomicBool,
    /// Set once the server has been usable: from then on, coming back ramps.
    seen_usable: AtomicBool,
    tick: AtomicU32,
}

fn now_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64
}

impl Ramp {
    /// The span of the ramp (0: slow start off), set by each config generation.
    pub fn set_span(&self, span: Duration) {
        self.span_ms.store(span.as_millis() as u64, Relaxed);
    }

    /// The server has just become usable: ramps if it was usable before and a span is set.
    pub fn became_usable(&self) {
        let returning = self.seen_usable.swap(true, Relaxed);
        if returning && self.span_ms.load(Relaxed) > 0 {
            self.began_ms.store(now_ms(), Relaxed);
            self.tick.store(0, Relaxed);
            self.active.store(true, Relaxed);
        }
    }

    /// The server is usable from the start (no health check): it was never away.
    pub fn usable_from_start(&self) {
        self.seen_usable.store(true, Relaxed);
    }

    /// The current share in 1/1024ths of the server's weight (at least 1 while ramping).
    pub fn factor(&self) -> u32 {
        if !self.active.load(Relaxed) {
            return FULL;
        }
        let span = self.span_ms.load(Relaxed);
        let elapsed = now_ms().saturating_sub(self.began_ms.load(Relaxed));
        if span == 0 || elapsed >= span {
            self.active.store(false, Relaxed);
            return FULL;
        }
        ((elapsed * u64::from(FULL) / span) as u32).max(1)
    }

    /// Time left in the ramp, if one is under way.
    pub fn remaining(&self) -> Option<Duration> {
        if self.factor() == FULL {
            return None;
        }
        let left =
            (self.began_ms.load(Relaxed) + self.span_ms.load(Relaxed)).saturating_sub(now_ms());
        Some(Duration::from_millis(left))
    }

    /// Whether this pick may go to the server: always when not ramping; otherwise for the
    /// ramp's fraction of picks, spread evenly (633/1024 is near the golden ratio, and odd, so
    /// the sequence visits every residue once per 1024 picks).
    pub fn admit(&self) -> bool {
        let f = self.factor();
        if f == FULL {
            return true;
        }
        let t = self.tick.fetch_add(1, Relaxed);
        (t.wrapping_mul(633) % FULL) < f
    }

    /// Whether requests with this hash key go to the server yet: the key's own position in
    /// 0..1024 against the ramp, so each key moves once.
    pub fn admit_key(&self, key: &[u8]) -> bool {
        let f = self.factor();
        if f == FULL {
            return true;
        }
        // FNV-1a: stable across runs and nodes.
        let h = key.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
        });
        ((h >> 32) as u32 % FULL) < f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_returning_server_ramps_and_the_ramp_ends() {
        let r = Ramp::default();
        // A span long enough that a thread stalled for a few hundred ms on a loaded machine
        // still finds the ramp in its first quarter.
        r.set_span(Duration::from_secs(2));
        r.became_usable();
        assert_eq!(r.factor(), FULL, "the first time up is not a return");
        r.became_usable();
        let f = r.factor();
        assert!((1..FULL / 4).contains(&f), "{f}");
        let admitted = (0..1024).filter(|_| r.admit()).count() as u32;
        let f2 = r.factor();
        assert!(
            (f.saturating_sub(8)..=f2 + 8).contains(&admitted),
            "{admitted} of 1024 picks at a factor of {f}..{f2}"
        );
        let keys: Vec<String> = (0..1000).map(|i| format!("user{i}")).collect();
        let first: Vec<bool> = keys.iter().map(|k| r.admit_key(k.as_bytes())).collect();
        std::thread::sleep(Duration::from_millis(600));
        let later: Vec<bool> = keys.iter().map(|k| r.admit_key(k.as_bytes())).collect();
        assert!(
            first.iter().zip(&later).all(|(a, b)| !a || *b),
            "admitted keys stay"
        );
        assert!(later.iter().filter(|b| **b).count() > first.iter().filter(|b| **b).count());
        std::thread::sleep(Duration::from_secs(2));
        assert_eq!(r.factor(), FULL);
        assert!(r.remaining().is_none());
    }
}
