//! The value parsers every section shares: sizes, durations, socket addresses, names, header
//! names and status ranges. Each reports a bad value at its key path and returns a fallback,
//! so validation goes on and collects every error at once.

use super::super::error::{Collector, KeyPath};
use super::super::file;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::time::Duration;

/// Parses a size: bytes, or "512k", "256m", "1g" (powers of 1024, optional "b"/"ib").
pub(super) fn size(v: Option<file::Size>, default: u64, p: &KeyPath, c: &mut Collector) -> u64 {
    let text = match v {
        None => return default,
        Some(file::Size::Bytes(n)) => return n,
        Some(file::Size::Text(t)) => t,
    };
    let lower = text.trim().to_ascii_lowercase();
    let unit_start = lower
        .find(|ch: char| !ch.is_ascii_digit())
        .unwrap_or(lower.len());
    let (num, unit) = lower.split_at(unit_start);
    let mult = match unit.trim().trim_end_matches("ib").trim_end_matches('b') {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        _ => 0,
    };
    match num.parse::<u64>() {
        Ok(n) if mult > 0 => n.saturating_mul(mult),
        _ => {
            c.error(
                p,
                format!("not a size: {text:?} (write bytes, or e.g. \"512k\", \"256m\", \"1g\")"),
            );
            default
        }
    }
}

/// Parses `"2s"`, `"500ms"`, `"1m 30s"`; reports and falls back to `default` when invalid.
pub(super) fn duration(
    v: Option<String>,
    default: &str,
    path: &KeyPath,
    c: &mut Collector,
) -> Duration {
    let fallback = humantime::parse_duration(default).unwrap_or_default();
    let Some(s) = v else { return fallback };
    match humantime::parse_duration(s.trim()) {
        Ok(d) => d,
        Err(_) => {
            c.error(
                path,
                format!("not a duration: {s:?} (write e.g. \"500ms\", \"2s\", \"1m\")"),
            );
            fallback
        }
    }
}

pub(super) fn socket_addr(v: &str, path: &KeyPath, c: &mut Collector) -> Option<SocketAddr> {
    match v.trim().parse::<SocketAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            c.error(
                path,
                format!("not a socket address: {v:?} (write IP:PORT, e.g. \"10.0.0.1:80\" or \"[::1]:80\")"),
            );
            None
        }
    }
}

pub(super) fn placeholder_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

pub(super) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

pub(super) fn header_names(
    list: &[String],
    p: &KeyPath,
    c: &mut Collector,
) -> Vec<http::HeaderName> {
    let mut out = Vec::new();
    for (i, h) in list.iter().enumerate() {
        match http::HeaderName::try_from(h.as_str()) {
            Ok(n) => out.push(n),
            Err(_) => c.error(&p.index(i), format!("not a header name: {h:?}")),
        }
    }
    out
}

pub(super) fn status_range(s: &str) -> Option<RangeInclusive<u16>> {
    let (lo, hi) = s.split_once('-').unwrap_or((s, s));
    let (lo, hi): (u16, u16) = (lo.trim().parse().ok()?, hi.trim().parse().ok()?);
    ((100..=599).contains(&lo) && (lo..=599).contains(&hi)).then_some(lo..=hi)
}
