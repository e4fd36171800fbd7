//! The number and time writers of the log formats, without `core::fmt`: a record has a dozen
//! numbers and a timestamp, and formatting them through `write!` cost more than everything
//! else a record does (floats above all). Integers go through `itoa`; milliseconds are written
//! as fixed-point from whole microseconds; the date part of a timestamp is built once per
//! second per thread.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

pub fn int(out: &mut String, n: impl itoa::Integer) {
    out.push_str(itoa::Buffer::new().format(n));
}

/// `v` rounded to `decimals` (1 or 3) places, e.g. 1.329 → "1.329"; negative values as 0.
pub fn fixed(out: &mut String, v: f64, decimals: u32) {
    let scale = 10u64.pow(decimals);
    let scaled = (v.max(0.0) * scale as f64).round() as u64;
    int(out, scaled / scale);
    out.push('.');
    let frac = scaled % scale;
    let digits = itoa::Buffer::new().format(frac).len() as u32;
    for _ in digits..decimals {
        out.push('0');
    }
    int(out, frac);
}

/// `ip:port` (`[ip]:port` for IPv6).
pub fn addr(out: &mut String, a: SocketAddr) {
    match a {
        SocketAddr::V4(v4) => {
            for (i, o) in v4.ip().octets().iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                int(out, *o);
            }
        }
        SocketAddr::V6(v6) => {
            use std::fmt::Write;
            let _ = write!(out, "[{}]", v6.ip());
        }
    }
    out.push(':');
    int(out, a.port());
}

/// One thread's last-formatted second: the Unix second, "YYYY-MM-DDTHH:MM:SS",
/// "Mmm dd hh:mm:ss" and HAProxy's "dd/Mmm/yyyy:hh:mm:ss".
struct Second {
    secs: u64,
    rfc3339: String,
    bsd: String,
    haproxy: String,
}

thread_local! {
    static SECOND: RefCell<Option<Second>> = const { RefCell::new(None) };
}

fn with_second<R>(t: SystemTime, f: impl FnOnce(&Second) -> R) -> (R, u32) {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let r = SECOND.with(|cell| {
        let mut cell = cell.borrow_mut();
        if cell.as_ref().is_none_or(|s| s.secs != secs) {
            let rfc3339 = humantime::format_rfc3339_seconds(UNIX_EPOCH + since)
                .to_string()
                .trim_end_matches('Z')
                .to_string();
            let month = rfc3339
                .get(5..7)
                .and_then(|m| m.parse::<usize>().ok())
                .and_then(|m| MONTHS.get(m.checked_sub(1)?))
                .copied()
                .unwrap_or("Jan");
            let day = rfc3339.get(8..10).unwrap_or("01").trim_start_matches('0');
            let clock = rfc3339.get(11..19).unwrap_or("00:00:00");
            let bsd = format!("{month} {day:>2} {clock}");
            let year = rfc3339.get(..4).unwrap_or("1970");
            let dd = rfc3339.get(8..10).unwrap_or("01");
            let haproxy = format!("{dd}/{month}/{year}:{clock}");
            *cell = Some(Second {
                secs,
                rfc3339,
                bsd,
                haproxy,
            });
        }
        f(cell.as_ref().expect("just set"))
    });
    (r, since.subsec_micros())
}

/// RFC 3339 in UTC with microseconds: `2026-11-22T01:21:12.969026Z`.
pub fn rfc3339_micros(out: &mut String, t: SystemTime) {
    let ((), micros) = with_second(t, |s| out.push_str(&s.rfc3339));
    out.push('.');
    let digits = itoa::Buffer::new().format(micros).len();
    for _ in digits..6 {
        out.push('0');
    }
    int(out, micros);
    out.push('Z');
}

/// The BSD syslog timestamp (RFC 3164), UTC: `Nov 22 01:21:12`.
pub fn bsd(out: &mut String, t: SystemTime) {
    with_second(t, |s| out.push_str(&s.bsd));
}

/// HAProxy's accept date, UTC, with milliseconds: `22/Nov/2026:01:21:12.969`.
pub fn haproxy_date(out: &mut String, t: SystemTime) {
    let ((), micros) = with_second(t, |s| out.push_str(&s.haproxy));
    out.push('.');
    let millis = micros / 1000;
    for _ in itoa::Buffer::new().format(millis).len()..3 {
        out.push('0');
    }
    int(out, millis);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn numbers_and_times_read_as_core_fmt_writes_them() {
        for v in [0.0, 0.0004, 0.0005, 1.329, 12.5, 999.9996, 1234.0] {
            let mut s = String::new();
            fixed(&mut s, v, 3);
            assert_eq!(s, format!("{v:.3}"), "{v}");
        }
        let mut s = String::new();
        fixed(&mut s, 24.06, 1);
        assert_eq!(s, "24.1");
        let mut s = String::new();
        addr(&mut s, "203.0.113.7:51234".parse().unwrap());
        addr(&mut s, "[::1]:80".parse().unwrap());
        assert_eq!(s, "203.0.113.7:51234[::1]:80");
        let t = UNIX_EPOCH + Duration::from_micros(1_795_310_472_000_042);
        let mut s = String::new();
        rfc3339_micros(&mut s, t);
        assert_eq!(s, humantime::format_rfc3339_micros(t).to_string());
        let mut s = String::new();
        bsd(&mut s, UNIX_EPOCH + Duration::from_secs(1_795_310_472));
        let full =
            humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(1_795_310_472))
                .to_string();
        assert!(full.starts_with("2026-11-22T"), "{full}");
        assert_eq!(s, format!("Nov 22 {}", &full[11..19]));
        let mut s = String::new();
        haproxy_date(&mut s, t);
        assert_eq!(s, format!("22/Nov/2026:{}.000", &full[11..19]));
    }
}
