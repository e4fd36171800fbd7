//! `[cache]`: the shared store's size and behaviour.

use super::super::defaults as d;
use super::super::error::{Collector, KeyPath};
use super::super::file;
use super::super::*;
use super::values::{duration, size};

pub(super) fn cache(f: file::CacheSection, p: &KeyPath, c: &mut Collector) -> CacheConfig {
    let peers = peers(&f, p, c);
    let max_size = size(f.max_size, d::CACHE_MAX_SIZE, &p.key("max_size"), c);
    // Unset, it follows a small max_size down rather than contradicting it.
    let max_object_size = size(
        f.max_object_size,
        d::CACHE_MAX_OBJECT_SIZE.min(max_size),
        &p.key("max_object_size"),
        c,
    );
    if max_object_size > max_size {
        c.error(&p.key("max_object_size"), "larger than max_size");
    }
    let status_header = optional_header(
        f.status_header.as_deref(),
        d::CACHE_STATUS_HEADER,
        &p.key("status_header"),
        c,
    );
    let targeted_field = optional_header(
        f.targeted_field.as_deref(),
        d::CACHE_TARGETED_FIELD,
        &p.key("targeted_field"),
        c,
    );
    CacheConfig {
        enabled: f.enabled.unwrap_or(true),
        max_size,
        max_object_size,
        lock_timeout: duration(
            f.lock_timeout,
            d::CACHE_LOCK_TIMEOUT,
            &p.key("lock_timeout"),
            c,
        ),
        status_header,
        targeted_field,
        peers,
        snapshot: match f.snapshot.as_deref() {
            None | Some("on-stop") => true,
            Some("off") => false,
            Some(other) => {
                c.error(
                    &p.key("snapshot"),
                    format!("{other:?}: use \"on-stop\" or \"off\""),
                );
                true
            }
        },
    }
}

/// A header name with a default; "" turns it off.
fn optional_header(
    v: Option<&str>,
    default: &'static str,
    p: &KeyPath,
    c: &mut Collector,
) -> Option<http::HeaderName> {
    match v {
        None => Some(http::HeaderName::from_static(default)),
        Some("") => None,
        Some(h) => match http::HeaderName::try_from(h) {
            Ok(h) => Some(h),
            Err(_) => {
                c.error(p, format!("not a header name: {h:?}"));
                None
            }
        },
    }
}

/// `peers`, `warm*`, `siblings`, `sibling_timeout`, `sibling_wait`, `peer_token`.
fn peers(f: &file::CacheSection, p: &KeyPath, c: &mut Collector) -> crate::config::CachePeers {
    let mut peers = Vec::new();
    for (i, a) in f.peers.iter().enumerate() {
        match a.parse::<std::net::SocketAddr>() {
            Ok(addr) => peers.push(addr),
            Err(_) => c.error(
                &p.key("peers").index(i),
                format!("{a:?}: write a node's admin address, \"10.0.0.2:9901\""),
            ),
        }
    }
    if matches!(&f.peer_token, Some(t) if t.len() < 16) {
        c.error(
            &p.key("peer_token"),
            "too short: use at least 16 characters",
        );
    }
    let warm = f.warm.unwrap_or(false);
    let siblings = f.siblings.unwrap_or(false);
    if (warm || siblings) && peers.is_empty() {
        c.error(
            &p.key("peers"),
            "warm and siblings need the peers' admin addresses",
        );
    }
    crate::config::CachePeers {
        peers,
        warm,
        warm_interval: duration(f.warm_interval.clone(), "5s", &p.key("warm_interval"), c),
        warm_objects: f.warm_objects.unwrap_or(1000),
        siblings,
        sibling_timeout: duration(
            f.sibling_timeout.clone(),
            "100ms",
            &p.key("sibling_timeout"),
            c,
        ),
        sibling_wait: duration(f.sibling_wait.clone(), "10s", &p.key("sibling_wait"), c),
        token: f.peer_token.clone(),
    }
}
