//! The clock helpers every module shares: wall-clock Unix seconds and millisecond spans, the
//! units of the state file, the admin API and the timing log.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Now, as whole Unix seconds (0 if the clock is before 1970).
pub fn unix_now() -> u64 {
    unix_secs(SystemTime::now())
}

/// Now, as Unix milliseconds.
pub fn unix_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A wall-clock time as whole Unix seconds (0 before 1970).
pub fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Milliseconds from `from` to `to` (0 if `to` is earlier), as the timing log writes them.
pub fn ms_between(from: Instant, to: Instant) -> f64 {
    to.saturating_duration_since(from).as_secs_f64() * 1000.0
}

/// A duration in whole seconds, rounded up.
pub fn ceil_secs(d: std::time::Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// A duration in milliseconds.
pub fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn spans_never_go_negative() {
        let t = Instant::now();
        let later = t + Duration::from_millis(1500);
        assert_eq!(ms_between(t, later), 1500.0);
        assert_eq!(ms_between(later, t), 0.0);
        assert_eq!(unix_secs(UNIX_EPOCH + Duration::from_secs(42)), 42);
        assert_eq!(unix_secs(UNIX_EPOCH - Duration::from_secs(1)), 0);
        assert_eq!(ceil_secs(Duration::ZERO), 0);
        assert_eq!(ceil_secs(Duration::from_millis(1)), 1);
        assert_eq!(ceil_secs(Duration::from_millis(1000)), 1);
        assert_eq!(ceil_secs(Duration::from_millis(1001)), 2);
    }
}
