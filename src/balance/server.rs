//! One backend server's live state: health, in-flight count, totals. Shared by every config
//! generation that still lists the server (keyed by pool + server name), all atomics.

use super::idle::IdleConns;
use super::slowstart::Ramp;
use arc_swap::ArcSwapOption;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::Arc;
use std::time::SystemTime;

/// The operator's say over a server (HAProxy's semantics), apart from its health.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AdminState {
    /// Normal.
    Ready,
    /// No new requests; in-flight ones finish; health checks go on.
    Drain,
    /// No traffic at all; health checks paused.
    Maint,
}

impl AdminState {
    pub fn as_str(self) -> &'static str {
        match self {
            AdminState::Ready => "ready",
            AdminState::Drain => "drain",
            AdminState::Maint => "maint",
        }
    }

    pub fn parse(s: &str) -> Option<AdminState> {
        match s {
            "ready" => Some(AdminState::Ready),
            "drain" => Some(AdminState::Drain),
            "maint" => Some(AdminState::Maint),
            _ => None,
        }
    }

    fn from_u8(v: u8) -> AdminState {
        match v {
            1 => AdminState::Drain,
            2 => AdminState::Maint,
            _ => AdminState::Ready,
        }
    }

    fn to_u8(self) -> u8 {
        match self {
            AdminState::Ready => 0,
            AdminState::Drain => 1,
            AdminState::Maint => 2,
        }
    }
}

/// The last health check of a server.
#[derive(Debug, Clone)]
pub struct CheckResult {
    pub ok: bool,
    pub at: SystemTime,
    /// Empty when it passed; why it failed otherwise.
    pub detail: String,
}

#[derive(Debug, Default)]
pub struct ServerState {
    /// Whether the pool health-checks this server (otherwise it is always healthy).
    checked: bool,
    admin: AtomicU8,
    /// Woken when the in-flight count reaches 0 while the server is not ready.
    drained: tokio::sync::Notify,
    last_check: ArcSwapOption<CheckResult>,
    healthy: AtomicBool,
    /// Set once a health check has passed: until then a new server gets no traffic.
    ever_up: AtomicBool,
    ok_streak: AtomicU32,
    fail_streak: AtomicU32,
    inflight: AtomicU64,
    requests: AtomicU64,
    connect_failures: AtomicU64,
    check_failures: AtomicU64,
    /// Slow start: the share of its weight the server gets while coming back.
    pub ramp: Ramp,
    /// Keep-alive connections to the server waiting for the next request.
    pub idle: IdleConns,
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
        let s = ServerState {
            checked,
            ..ServerState::default()
        };
        s.healthy.store(!checked, Relaxed);
        if !checked {
            s.ramp.usable_from_start();
        }
        s
    }

    pub fn is_checked(&self) -> bool {
        self.checked
    }

    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Relaxed)
    }

    /// Whether health checks have ever passed (false: a new server still waiting for its first).
    pub fn ever_up(&self) -> bool {
        self.ever_up.load(Relaxed)
    }

    /// Whether new requests may be sent here: healthy and ready.
    pub fn is_usable(&self) -> bool {
        self.is_healthy() && self.admin.load(Relaxed) == 0
    }

    pub fn admin_state(&self) -> AdminState {
        AdminState::from_u8(self.admin.load(Relaxed))
    }

    /// Sets the admin state; returns the previous one. Leaving maint puts a checked server
    /// back behind its health check: it takes traffic again only once a check passes.
    pub fn set_admin_state(&self, state: AdminState) -> AdminState {
        let prev = AdminState::from_u8(self.admin.swap(state.to_u8(), Relaxed));
        if prev == AdminState::Maint && state != AdminState::Maint && self.checked {
            self.healthy.store(false, Relaxed);
            self.ever_up.store(false, Relaxed);
            self.ok_streak.store(0, Relaxed);
            self.fail_streak.store(0, Relaxed);
        }
        if state != AdminState::Ready {
            self.drained.notify_waiters();
        } else if prev != AdminState::Ready && self.is_healthy() {
            self.ramp.became_usable();
        }
        prev
    }

    /// Waits until no request is in flight here, or `timeout`; Err carries the count left.
    pub async fn wait_drained(&self, timeout: std::time::Duration) -> Result<(), u64> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.drained.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.inflight() == 0 {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                let left = self.inflight();
                return if left == 0 { Ok(()) } else { Err(left) };
            }
        }
    }

    pub fn last_check(&self) -> Option<Arc<CheckResult>> {
        self.last_check.load_full()
    }

    pub fn set_last_check(&self, result: CheckResult) {
        self.last_check.store(Some(Arc::new(result)));
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
                if self.admin_state() == AdminState::Ready {
                    self.ramp.became_usable();
                }
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
        let before = self.0.inflight.fetch_sub(1, Relaxed);
        // Only a draining (or maint) server has anyone waiting: keep Notify off the hot path.
        if before == 1 && self.0.admin.load(Relaxed) != 0 {
            self.0.drained.notify_waiters();
        }
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
    fn leaving_maint_waits_for_a_passing_check() {
        let s = ServerState::new(true);
        s.record_check(true, 2, 2);
        assert!(s.is_usable());
        s.set_admin_state(AdminState::Maint);
        assert!(!s.is_usable());
        s.set_admin_state(AdminState::Ready);
        assert!(!s.is_usable(), "not before a check passes");
        assert_eq!(s.record_check(true, 2, 2), Transition::Up);
        assert!(s.is_usable());
    }

    #[test]
    fn slow_start_on_a_return_only() {
        let s = ServerState::new(true);
        s.ramp.set_span(std::time::Duration::from_secs(60));
        s.record_check(true, 1, 1);
        assert_eq!(s.ramp.factor(), crate::balance::FULL_SHARE, "first time up");
        assert_eq!(s.record_check(false, 1, 1), Transition::Down);
        assert_eq!(s.record_check(true, 1, 1), Transition::Up);
        assert!(
            s.ramp.factor() < crate::balance::FULL_SHARE,
            "up after down ramps"
        );
        let unchecked = ServerState::new(false);
        unchecked.ramp.set_span(std::time::Duration::from_secs(60));
        unchecked.set_admin_state(AdminState::Drain);
        assert_eq!(unchecked.ramp.factor(), crate::balance::FULL_SHARE);
        unchecked.set_admin_state(AdminState::Ready);
        assert!(
            unchecked.ramp.factor() < crate::balance::FULL_SHARE,
            "ready after drain ramps"
        );
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
