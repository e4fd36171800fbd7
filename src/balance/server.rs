//! One backend server's live state: health, in-flight count, totals. Shared by every config
//! generation that still lists the server (keyed by pool + server name), all atomics.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

#[derive(Debug, Default)]
pub struct ServerState {
    healthy: AtomicBool,
    /// Set once a health check has passed: until then a new server gets no traffic.
    ever_up: AtomicBool,
    ok_streak: AtomicU32,
    fail_streak: AtomicU32,
    inflight: AtomicU64,
    requests: AtomicU64,
    connect_failures: AtomicU64,
    check_failures: AtomicU64,
}

/// What one health check result changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    None,
    Up,
    Down,
}

impl ServerState {
    /// A server whose pool has no health check is usable from the start.
    pub fn new(checked: bool) -> Self {
        let s = ServerState::default();
        s.healthy.store(!checked, Relaxed);
        s
    }

    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Relaxed)
    }

    /// Whether new requests may be sent here.
    pub fn is_usable(&self) -> bool {
        self.is_healthy()
    }

    pub fn inflight(&self) -> u64 {
        self.inflight.load(Relaxed)
    }

    pub fn requests(&self) -> u64 {
        self.requests.load(Relaxed)
    }

    pub fn connect_failures(&self) -> u64 {
        self.connect_failures.load(Relaxed)
    }

    pub fn check_failures(&self) -> u64 {
        self.check_failures.load(Relaxed)
    }

    pub fn note_connect_failure(&self) {
        self.connect_failures.fetch_add(1, Relaxed);
    }

    /// Applies one health check result with HAProxy's rise/fall rule; the first pass ever
    /// brings a new server up at once.
    pub fn record_check(&self, ok: bool, rise: u32, fall: u32) -> Transition {
        if ok {
            self.fail_streak.store(0, Relaxed);
            let streak = self.ok_streak.fetch_add(1, Relaxed).saturating_add(1);
            let first = !self.ever_up.swap(true, Relaxed);
            if !self.is_healthy() && (first || streak >= rise) {
                self.healthy.store(true, Relaxed);
                return Transition::Up;
            }
        } else {
            self.check_failures.fetch_add(1, Relaxed);
            self.ok_streak.store(0, Relaxed);
            let streak = self.fail_streak.fetch_add(1, Relaxed).saturating_add(1);
            if self.is_healthy() && streak >= fall {
                self.healthy.store(false, Relaxed);
                return Transition::Down;
            }
        }
        Transition::None
    }
}

/// Counts one request in flight on a server for as long as it lives: dropped on every exit
/// path (response done, error, retry to another server), so least-conn and drain see the truth.
#[derive(Debug)]
pub struct InflightGuard(Arc<ServerState>);

impl InflightGuard {
    pub fn new(state: &Arc<ServerState>) -> Self {
        state.inflight.fetch_add(1, Relaxed);
        state.requests.fetch_add(1, Relaxed);
        InflightGuard(state.clone())
    }
}

impl Drop for InflightGuard {
    fn drop(&mut self) {
        self.0.inflight.fetch_sub(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_pass_brings_up_then_rise_and_fall_apply() {
        let s = ServerState::new(true);
        assert!(!s.is_healthy());
        assert_eq!(s.record_check(true, 3, 2), Transition::Up);
        assert_eq!(s.record_check(false, 3, 2), Transition::None);
        assert_eq!(s.record_check(false, 3, 2), Transition::Down);
        assert_eq!(s.record_check(true, 3, 2), Transition::None);
        assert_eq!(s.record_check(true, 3, 2), Transition::None);
        assert_eq!(s.record_check(true, 3, 2), Transition::Up);
    }

    #[test]
    fn guard_counts_while_alive() {
        let s = Arc::new(ServerState::new(false));
        let g = InflightGuard::new(&s);
        assert_eq!(s.inflight(), 1);
        drop(g);
        assert_eq!((s.inflight(), s.requests()), (0, 1));
    }
}
