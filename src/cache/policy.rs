//! What may be cached: Varnish's builtin rules as the floor, RFC 9111's shared-cache rules on
//! top, then the route's TTL rules.
//!
//! Requests: only GET and HEAD; `Authorization` passes; `Cookie` passes unless every cookie is
//! one the route ignores (those are removed). Responses: not stored with `Set-Cookie`,
//! `private | no-store | no-cache`, `Vary: *`, a status outside the cacheable set, a body
//! larger than `max_object_size`, or when already stale on arrival. Directives come from the
//! gatehouse-targeted field, else `CDN-Cache-Control`, else `Cache-Control` (RFC 9213: a
//! targeted field replaces `Cache-Control` and `Expires`; one that is not a valid Structured
//! Field is ignored, as if absent). Freshness lifetime: `s-maxage`, then `max-age`, then
//! `Expires` − `Date`, then the route's `default_ttl`; capped by `max_ttl` (or the route's
//! `override_ttl`); minus the response's age on arrival (the first member of `Age`, or now −
//! `Date`, whichever is larger). Stale serving: the response's `stale-while-revalidate` /
//! `stale-if-error` when present, else the route's `grace` / `stale_if_error`; none at all
//! with `must-revalidate`, `proxy-revalidate` or `s-maxage`.

use super::control::Directives;
use crate::config::RouteCache;
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
/// `targeted` is the gatehouse-targeted Cache-Control field, read first when present.
/// `ttl_floor` raises every TTL (read-only mode's "cache everything aggressively").
pub fn response(
    resp: &ResponseHeader,
    rules: &RouteCache,
    max_object_size: u64,
    targeted: Option<&http::HeaderName>,
    ttl_floor: Duration,
) -> RespCacheable {
    use RespCacheable::Uncacheable;
    if let Some(why) = refusal(resp, max_object_size) {
        return Uncacheable(why);
    }
    let h = &resp.headers;
    let from_targeted = targeted
        .and_then(|name| Directives::targeted(h, name.as_str()))
        .or_else(|| Directives::targeted(h, "cdn-cache-control"));
    let is_targeted = from_targeted.is_some();
    let cc = from_targeted
        .or_else(|| Directives::of(h, "cache-control"))
        .unwrap_or_default();
    if cc.has("private") || cc.has("no-store") || cc.has("no-cache") {
        return Uncacheable(NoCacheReason::OriginNotCache);
    }
    let now = SystemTime::now();
    let date = header_time(resp, http::header::DATE);
    // RFC 9111 §4.2.3: the larger of the received Age and the apparent age.
    let age_value = received_age(h);
    let apparent = date.map_or(Duration::ZERO, |d| {
        now.duration_since(d).unwrap_or_default()
    });
    let age = age_value.max(apparent);
    let ttl = match rules.override_ttl {
        Some(t) => t,
        None => {
            let lifetime = cc
                .seconds("s-maxage")
                .or_else(|| cc.seconds("max-age"))
                .map(|s| Duration::from_secs(s.into()))
                .or_else(|| {
                    (!is_targeted)
                        .then(|| expires_lifetime(resp, date, now))
                        .flatten()
                })
                .unwrap_or(rules.default_ttl);
            lifetime.min(rules.max_ttl).saturating_sub(age)
        }
    }
    .max(ttl_floor);
    if ttl.is_zero() {
        return Uncacheable(reason("no-ttl"));
    }
    let secs = |d: Duration| u32::try_from(d.as_secs()).unwrap_or(u32::MAX);
    let (swr, sie) =
        if cc.has("must-revalidate") || cc.has("proxy-revalidate") || cc.has("s-maxage") {
            (0, 0) // never served stale (s-maxage implies proxy-revalidate)
        } else {
            (
                cc.seconds("stale-while-revalidate")
                    .unwrap_or(secs(rules.grace)),
                cc.seconds("stale-if-error")
                    .unwrap_or(secs(rules.stale_if_error)),
            )
        };
    RespCacheable::Cacheable(CacheMeta::new(
        now + ttl,
        now.checked_sub(age).unwrap_or(now),
        swr,
        sie,
        storable_header(resp),
    ))
}

/// The received `Age` (RFC 9111 §5.1): of a list or of several lines, the first member counts;
/// an invalid one (anything but digits: `abc`, `-7200`, `7200.0`) is ignored (zero), and one
/// too large for the cache counts as 2^31 seconds (§1.2.2). So `Age: 7200, 0` is two hours.
fn received_age(h: &http::HeaderMap) -> Duration {
    let first = h
        .get(http::header::AGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()));
    first.map_or(Duration::ZERO, |v| {
        Duration::from_secs(v.parse::<u64>().map_or(1 << 31, |s| s.min(1 << 31)))
    })
}

/// Varnish's builtin refusals: status, Set-Cookie, Vary: *, size.
fn refusal(resp: &ResponseHeader, max_object_size: u64) -> Option<NoCacheReason> {
    if !cacheable_status(resp.status.as_u16()) {
        return Some(reason("status"));
    }
    if resp.headers.contains_key(http::header::SET_COOKIE) {
        return Some(reason("set-cookie"));
    }
    let vary_star = resp.headers.get_all(http::header::VARY).iter().any(|v| {
        v.to_str()
            .is_ok_and(|s| s.split(',').any(|p| p.trim() == "*"))
    });
    if vary_star {
        return Some(reason("vary-star"));
    }
    let too_large = resp
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        .is_some_and(|n| n > max_object_size);
    too_large.then_some(NoCacheReason::ResponseTooLarge)
}

fn header_time(resp: &ResponseHeader, name: http::HeaderName) -> Option<SystemTime> {
    let v = resp.headers.get(name)?.to_str().ok()?;
    httpdate::parse_http_date(v.trim()).ok()
}

/// `Expires` − `Date` (RFC 9111 §4.2.1): zero when Expires is invalid or not after Date; None
/// without Expires. Without Date, the time of receipt stands in for it.
fn expires_lifetime(
    resp: &ResponseHeader,
    date: Option<SystemTime>,
    now: SystemTime,
) -> Option<Duration> {
    resp.headers.get(http::header::EXPIRES)?;
    let Some(expires) = header_time(resp, http::header::EXPIRES) else {
        return Some(Duration::ZERO); // an invalid date means "already expired"
    };
    Some(
        expires
            .duration_since(date.unwrap_or(now))
            .unwrap_or_default(),
    )
}

/// Fields a 304 never replaces in the stored response: its framing and encoding belong to the
/// stored body (RFC 9111 §3.2).
const KEPT_ON_304: [&str; 4] = [
    "content-length",
    "content-encoding",
    "content-range",
    "content-type",
];

/// The stored response updated with the fields of the 304 that revalidated it: each field the
/// 304 carries replaces the stored one (RFC 9111 §4.3.4), except hop-by-hop fields and
/// `KEPT_ON_304`.
pub fn updated_by_304(stored: &ResponseHeader, fresh: &http::HeaderMap) -> ResponseHeader {
    let mut out = stored.clone();
    let never = not_stored(fresh);
    for name in fresh.keys() {
        let n = name.as_str();
        if KEPT_ON_304.contains(&n) || never.iter().any(|x| x == n) {
            continue;
        }
        let _ = out.remove_header(name);
        for v in fresh.get_all(name) {
            let _ = out.append_header(name.clone(), v.clone());
        }
    }
    out
}

/// The response as it may be stored: without hop-by-hop fields and the fields `Connection`
/// names.
pub fn storable_header(resp: &ResponseHeader) -> ResponseHeader {
    let mut stored = resp.clone();
    for name in not_stored(&resp.headers) {
        if stored.headers.contains_key(name.as_str()) {
            stored.remove_header(name.as_str());
        }
    }
    stored
}

/// The hop-by-hop fields and those `Connection` names, lowercased.
fn not_stored(headers: &http::HeaderMap) -> Vec<String> {
    let named = headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|n| n.trim().to_ascii_lowercase())
        .filter(|n| !n.is_empty());
    crate::hop_by_hop::FIELDS
        .iter()
        .map(|h| h.as_str().to_string())
        .chain(named)
        .collect()
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
                None,
                Duration::ZERO,
            )),
            Some(120)
        );
        assert_eq!(
            ttl(response(
                &resp(&[("cache-control", "max-age=60")]),
                &r,
                1 << 20,
                None,
                Duration::ZERO,
            )),
            Some(60)
        );
        assert_eq!(
            ttl(response(
                &resp(&[("cache-control", "max-age=99999")]),
                &r,
                1 << 20,
                None,
                Duration::ZERO,
            )),
            Some(3600)
        );
        assert_eq!(
            ttl(response(&resp(&[]), &r, 1 << 20, None, Duration::ZERO)),
            None,
            "default_ttl 0: not cached"
        );
        let mut r2 = rules();
        r2.default_ttl = Duration::from_secs(30);
        assert_eq!(
            ttl(response(&resp(&[]), &r2, 1 << 20, None, Duration::ZERO)),
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
                ttl(response(&resp(&h), &r, 1 << 20, None, Duration::ZERO)),
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
