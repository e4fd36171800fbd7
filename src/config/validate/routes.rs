//! `[[routes]]` and `[routes.cache]`: host/path matching, the pool, read-only behaviour,
//! caching rules, and the route's access rules, rate limits and compression (compiled by
//! `access`, `rate_limits` and `compression`).

use super::super::defaults as d;
use super::super::error::{Collector, KeyPath};
use super::super::file;
use super::super::*;
use super::values::duration;
use std::collections::HashSet;

pub(super) fn routes(
    list: Vec<file::RouteSection>,
    pools: &[PoolConfig],
    (rules, limits, compression): (
        &mut super::access::Builder,
        &mut super::rate_limits::Builder,
        &super::compression::Global,
    ),
    p: &KeyPath,
    c: &mut Collector,
) -> Vec<RouteConfig> {
    if list.is_empty() {
        c.error(p, "at least one [[routes]] entry is needed");
    }
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (i, r) in list.into_iter().enumerate() {
        let rp = p.index(i);
        let name = r.name.unwrap_or_else(|| format!("route{i}"));
        let path_prefix = r.path_prefix.unwrap_or_else(|| d::PATH_PREFIX.into());
        if !path_prefix.starts_with('/') {
            c.error(
                &rp.key("path_prefix"),
                format!("{path_prefix:?} must start with '/'"),
            );
        }
        let mut hosts = Vec::new();
        for (j, h) in r.hosts.iter().enumerate() {
            match host_pattern(h) {
                Some(pat) => {
                    if !seen.insert((Some(pat.clone()), path_prefix.clone())) {
                        c.error(&rp.key("hosts").index(j), format!("{h:?} with path_prefix {path_prefix:?} is already routed by an earlier route"));
                    }
                    hosts.push(pat)
                }
                None => c.error(
                    &rp.key("hosts").index(j),
                    format!("not a host name: {h:?} (write \"example.com\" or \"*.example.com\", no port)"),
                ),
            }
        }
        if r.hosts.is_empty() && !seen.insert((None, path_prefix.clone())) {
            c.error(
                &rp.key("path_prefix"),
                format!("a route for any host with path_prefix {path_prefix:?} already exists"),
            );
        }
        let pool = pool_index(r.pool, pools, &rp.key("pool"), c);
        let cache = route_cache(r.cache, &rp.key("cache"), c);
        let readonly = readonly(r.readonly.as_deref(), &rp.key("readonly"), c);
        let access = rules.route(&r.access, r.access_rules, &rp, c);
        let rate_limits = limits.route(r.rate_limits, &rp.key("rate_limits"), c);
        let compression =
            super::compression::route(r.compression, compression, &rp.key("compression"), c);
        out.push(RouteConfig {
            name,
            hosts,
            path_prefix,
            pool,
            cache,
            readonly,
            allow_upgrade: r.allow_upgrade.unwrap_or(false),
            access,
            rate_limits,
            compression,
        });
    }
    out
}

/// The index of the pool a route names (0, with an error, when it names none that exists:
/// the config is refused then, so the placeholder is never used).
fn pool_index(name: Option<String>, pools: &[PoolConfig], p: &KeyPath, c: &mut Collector) -> usize {
    let Some(name) = name else {
        c.error(p, "missing: name the pool this route sends to");
        return 0;
    };
    pools
        .iter()
        .position(|pl| pl.name == name)
        .unwrap_or_else(|| {
            let known: Vec<_> = pools.iter().map(|p| p.name.as_str()).collect();
            c.error(
                p,
                format!("unknown pool {name:?} (pools are: {})", known.join(", ")),
            );
            0
        })
}

fn readonly(v: Option<&str>, p: &KeyPath, c: &mut Collector) -> RouteReadonly {
    match v {
        None | Some("inherit") => RouteReadonly::Inherit,
        Some("always") => RouteReadonly::Always,
        Some("never") => RouteReadonly::Never,
        Some(other) => {
            c.error(
                p,
                format!("{other:?}: use \"inherit\", \"always\" or \"never\""),
            );
            RouteReadonly::Inherit
        }
    }
}

fn host_pattern(h: &str) -> Option<HostPattern> {
    let h = h.trim().to_ascii_lowercase();
    let (wild, name) = match h.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, h.as_str()),
    };
    let ok = !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if !ok {
        return None;
    }
    Some(if wild {
        HostPattern::Wildcard(format!(".{name}"))
    } else {
        HostPattern::Exact(name.to_string())
    })
}

fn route_cache(
    f: Option<file::RouteCacheSection>,
    p: &KeyPath,
    c: &mut Collector,
) -> Option<RouteCache> {
    let f = f.unwrap_or_default();
    if f.enabled == Some(false) {
        return None;
    }
    let max_ttl = duration(f.max_ttl, d::MAX_TTL, &p.key("max_ttl"), c);
    let override_ttl = f
        .override_ttl
        .map(|v| duration(Some(v), "0s", &p.key("override_ttl"), c));
    let min_uses = f.min_uses.unwrap_or(d::MIN_USES);
    if min_uses == 0 {
        c.error(&p.key("min_uses"), "must be at least 1");
    }
    for (i, name) in f.ignore_cookies.iter().enumerate() {
        if name.is_empty() || name.bytes().any(|b| b <= b' ' || b"=;,".contains(&b)) {
            c.error(
                &p.key("ignore_cookies").index(i),
                format!("not a cookie name: {name:?}"),
            );
        }
    }
    Some(RouteCache {
        default_ttl: duration(f.default_ttl, d::DEFAULT_TTL, &p.key("default_ttl"), c),
        max_ttl,
        override_ttl,
        grace: duration(f.grace, d::GRACE, &p.key("grace"), c),
        stale_if_error: duration(
            f.stale_if_error,
            d::STALE_IF_ERROR,
            &p.key("stale_if_error"),
            c,
        ),
        keep: duration(f.keep, d::KEEP, &p.key("keep"), c),
        min_uses: min_uses.max(1),
        min_uses_window: duration(
            f.min_uses_window,
            d::MIN_USES_WINDOW,
            &p.key("min_uses_window"),
            c,
        ),
        ignore_query: f.ignore_query.unwrap_or(false),
        ignore_params: f.ignore_params,
        ignore_cookies: f.ignore_cookies,
    })
}
