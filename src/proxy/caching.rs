//! The proxy's cache hooks beyond the key: whether a response is stored (with the headers a
//! 304 brought when it revalidated the stored one), and what every response on a caching
//! route gets or loses on its way out (X-Cache, the targeted Cache-Control field, invalidation
//! by writes).

use super::ctx::{Ctx, Plan};
use super::forward::request_host;
use crate::cache;
use pingora::cache::{NoCacheReason, RespCacheable};
use pingora::http::ResponseHeader;
use pingora::proxy::Session;

/// The request's cache status (X-Cache, the log, the counters): on a caching route, for a
/// request that went past `request_filter`'s checks; a hit from the fast path is a HIT,
/// otherwise pingora-cache's phase says.
pub fn status(session: &Session, ctx: &Ctx) -> Option<cache::Status> {
    ctx.cache_rules()?;
    match ctx.plan {
        Plan::FastHit => Some(cache::Status::Hit),
        ref plan if plan.went_on() => Some(cache::Status::from_phase(session.cache.phase())),
        _ => None,
    }
}

/// `response_cache_filter`: the policy's verdict on `resp`, and `min_uses` admission.
pub fn verdict(session: &Session, resp: &ResponseHeader, ctx: &mut Ctx) -> RespCacheable {
    let merged;
    // A 304 revalidating a stored response: pingora merged only a few of its fields.
    let resp = match ctx.not_modified.take() {
        Some(fresh) => {
            merged = cache::policy::updated_by_304(resp, &fresh);
            &merged
        }
        None => resp,
    };
    let verdict = policy(resp, ctx);
    if let (RespCacheable::Cacheable(_), Some(rules)) = (&verdict, ctx.cache_rules()) {
        if !ctx.rt.cache.admit(session.cache.cache_key(), rules) {
            return RespCacheable::Uncacheable(NoCacheReason::Custom("min-uses"));
        }
    }
    verdict
}

/// Whether the policy would store `resp` (`min_uses` aside: admission counts a use).
pub fn would_store(resp: &ResponseHeader, ctx: &Ctx) -> bool {
    matches!(policy(resp, ctx), RespCacheable::Cacheable(_))
}

fn policy(resp: &ResponseHeader, ctx: &Ctx) -> RespCacheable {
    let Some(rules) = ctx.cache_rules() else {
        return RespCacheable::Uncacheable(NoCacheReason::NeverEnabled);
    };
    let floor = if ctx.readonly {
        ctx.rt.config.readonly.ttl_floor
    } else {
        std::time::Duration::ZERO
    };
    let config = &ctx.rt.cache.config;
    let targeted = config.targeted_field.as_ref();
    cache::policy::response(resp, rules, config.max_object_size, targeted, floor)
}

/// `upstream_response_filter`: keeps a 304's fields for `verdict`.
pub fn from_server(resp: &ResponseHeader, ctx: &mut Ctx) {
    if resp.status == http::StatusCode::NOT_MODIFIED && matches!(ctx.plan, Plan::Cache) {
        ctx.not_modified = Some(resp.headers.clone());
    }
}

/// `response_filter`: invalidation of what a successful write changed (the cache status and
/// the targeted field are `upstream::ClientEdits`').
pub fn invalidate(session: &Session, resp: &ResponseHeader, ctx: &Ctx) {
    if !ctx.plan.went_on() {
        return; // answered by gatehouse: nothing was written
    }
    let req = session.req_header();
    if let (true, Some(rules)) = (cache::is_unsafe(&req.method), ctx.cache_rules()) {
        let host = request_host(req).unwrap_or("");
        let status = resp.status.as_u16();
        ctx.rt.cache.invalidate_after_write(
            ctx.https,
            host,
            &req.uri,
            status,
            &resp.headers,
            rules,
        );
    }
}
