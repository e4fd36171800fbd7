//! What may be cached: Varnish's builtin rules as the floor, then the route's TTL rules.
//!
//! Requests: only GET and HEAD; `Authorization` passes; `Cookie` passes unless every cookie is
//! one the route ignores (those are removed). Responses: not stored with `Set-Cookie`,
//! `Cache-Control: private | no-store | no-cache`, `Vary: *`, a status outside the cacheable
//! set, or a body larger than `max_object_size`. TTL: `s-maxage`, then `max-age`, then
//! `Expires` against `Date`, then the route's `default_ttl`; capped by `max_ttl`; or the
//! route's `override_ttl`.

use crate::config::RouteCache;
use pingora::cache::cache_control::{CacheControl, InterpretCacheControl};
use pingora::cache::filters::calculate_expires_header_time;
use pingora::cache::{CacheMeta, NoCacheReason, RespCacheable};
use pingora::http::{RequestHeader, ResponseHeader};
use std::time::{Duration, SystemTime};

/// Why a request is passed to a server without the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    Method,
    Authorization,
    Cookie,
}

/// Decides whether a request may use the cache; removes ignorable cookies from it.
pub fn request(req: &mut RequestHeader, rules: &RouteCache) -> Result<(), Pass> {
    if req.method != http::Method::GET && req.method != http::Method::HEAD {
        return Err(Pass::Method);
    }
    if req.headers.contains_key(http::header::AUTHORIZATION) {
        return Err(Pass::Authorization);
    }
    if !req.headers.contains_key(http::header::COOKIE) {
        return Ok(());
    }
    if rules.ignore_cookies.is_empty() {
        return Err(Pass::Cookie);
    }
    let mut personal = false;
    for value in req.headers.get_all(http::header::COOKIE) {
        let Ok(text) = value.to_str() else {
            personal = true;
            break;
        };
        for pair in text.split(';') {
            let name = pair.split_once('=').map_or(pair, |(n, _)| n).trim();
            if !name.is_empty() && !rules.ignore_cookies.iter().any(|c| c == name) {
                personal = true;
            }
        }
    }
    if personal {
        return Err(Pass::Cookie);
    }
    req.remove_header(&http::header::COOKIE);
    Ok(())
}

/// Statuses stored (RFC 9110 §15.1 heuristically cacheable, plus 302/307 as Varnish does).
fn cacheable_status(status: u16) -> bool {
    matches!(
        status,
        200 | 203 | 204 | 300 | 301 | 302 | 307 | 308 | 404 | 405 | 410 | 414 | 501
    )
}

const fn reason(r: &'static str) -> NoCacheReason {
    NoCacheReason::Custom(r)
}

/// Decides whether a response is stored, and for how long.
/// `ttl_floor` raises every TTL (read-only mode's "cache everything aggressively").
pub fn response(
    resp: &ResponseHeader,
    rules: &RouteCache,
    max_object_size: u64,
    ttl_floor: Duration,
) -> RespCacheable {
    use RespCacheable::Uncacheable;
    if !cacheable_status(resp.status.as_u16()) {
        return Uncacheable(reason("status"));
    }
    if resp.headers.contains_key(http::header::SET_COOKIE) {
        return Uncacheable(reason("set-cookie"));
    }
    let vary_star = resp.headers.get_all(http::header::VARY).iter().any(|v| {
        v.to_str()
            .is_ok_and(|s| s.split(',').any(|p| p.trim() == "*"))
    });
    if vary_star {
        return Uncacheable(reason("vary-star"));
    }
    let too_large = resp
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        .is_some_and(|n| n > max_object_size);
    if too_large {
        return Uncacheable(NoCacheReason::ResponseTooLarge);
    }
    let cc = CacheControl::from_resp_headers(resp);
    if let Some(cc) = &cc {
        if cc.private() || cc.no_store() || cc.no_cache() {
            return Uncacheable(NoCacheReason::OriginNotCache);
        }
    }
    let now = SystemTime::now();
    let ttl = match rules.override_ttl {
        Some(t) => t,
        None => cc
            .as_ref()
            .and_then(|cc| cc.fresh_duration())
            .or_else(|| {
                calculate_expires_header_time(resp)
                    .map(|at| at.duration_since(now).unwrap_or_default())
            })
            .unwrap_or(rules.default_ttl),
    }
    .min(rules.max_ttl)
    .max(ttl_floor);
    if ttl.is_zero() {
        return Uncacheable(reason("no-ttl"));
    }
    let secs = |d: Duration| u32::try_from(d.as_secs()).unwrap_or(u32::MAX);
    let directive = |v: Option<pingora::Result<Option<u32>>>| v.and_then(|r| r.ok().flatten());
    let swr = directive(cc.as_ref().map(|c| c.stale_while_revalidate())).unwrap_or(0);
    let sie = directive(cc.as_ref().map(|c| c.stale_if_error())).unwrap_or(0);
    RespCacheable::Cacheable(CacheMeta::new(
        now + ttl,
        now,
        swr.max(secs(rules.grace)),
        sie.max(secs(rules.stale_if_error)),
        resp.clone(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> RouteCache {
        RouteCache {
            default_ttl: Duration::ZERO,
            max_ttl: Duration::from_secs(3600),
            override_ttl: None,
            grace: Duration::from_secs(10),
            stale_if_error: Duration::from_secs(60),
            keep: Duration::from_secs(60),
            min_uses: 1,
            min_uses_window: Duration::from_secs(600),
            ignore_query: false,
            ignore_params: vec![],
            ignore_cookies: vec!["_ga".into()],
        }
    }

    fn resp(headers: &[(&str, &str)]) -> ResponseHeader {
        let mut r = ResponseHeader::build(200, None).unwrap();
        for (k, v) in headers {
            r.append_header(k.to_string(), *v).unwrap();
        }
        r
    }

    fn ttl(r: RespCacheable) -> Option<u64> {
        match r {
            RespCacheable::Cacheable(m) => Some(m.fresh_sec()),
            RespCacheable::Uncacheable(_) => None,
        }
    }

    #[test]
    fn ttl_sources_in_order() {
        let r = rules();
        assert_eq!(
            ttl(response(
                &resp(&[("cache-control", "max-age=60, s-maxage=120")]),
                &r,
                1 << 20,
                Duration::ZERO,
            )),
            Some(120)
        );
        assert_eq!(
            ttl(response(
                &resp(&[("cache-control", "max-age=60")]),
                &r,
                1 << 20,
                Duration::ZERO,
            )),
            Some(60)
        );
        assert_eq!(
            ttl(response(
                &resp(&[("cache-control", "max-age=99999")]),
                &r,
                1 << 20,
                Duration::ZERO,
            )),
            Some(3600)
        );
        assert_eq!(
            ttl(response(&resp(&[]), &r, 1 << 20, Duration::ZERO)),
            None,
            "default_ttl 0: not cached"
        );
        let mut r2 = rules();
        r2.default_ttl = Duration::from_secs(30);
        assert_eq!(
            ttl(response(&resp(&[]), &r2, 1 << 20, Duration::ZERO)),
            Some(30)
        );
        for bad in [
            ("cache-control", "private, max-age=60"),
            ("cache-control", "no-store"),
            ("cache-control", "no-cache, max-age=60"),
            ("set-cookie", "a=b"),
            ("vary", "Accept, *"),
        ] {
            let mut h = vec![("cache-control", "max-age=60")];
            h.push(bad);
            assert_eq!(
                ttl(response(&resp(&h), &r, 1 << 20, Duration::ZERO)),
                None,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn cookies_pass_unless_all_ignored() {
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        req.insert_header("cookie", "_ga=1").unwrap();
        assert_eq!(request(&mut req, &rules()), Ok(()));
        assert!(
            req.headers.get("cookie").is_none(),
            "ignored cookies are removed"
        );
        req.insert_header("cookie", "_ga=1; session=x").unwrap();
        assert_eq!(request(&mut req, &rules()), Err(Pass::Cookie));
        let mut post = RequestHeader::build("POST", b"/", None).unwrap();
        assert_eq!(request(&mut post, &rules()), Err(Pass::Method));
    }
}
