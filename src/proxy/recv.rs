//! `request_filter` as named steps, each of which may answer the request (HAProxy's
//! `http_process_req_common`, Varnish's `vcl_recv`): the connection's and the request's limits,
//! ACME http-01 challenges, the global access rules, the plain-HTTP redirect, routing, the
//! route's access rules, read-only mode, then `decide`, the one place that settles which way
//! the request goes (`Plan`): a fresh hit from the own loop, the direct exchange, or pingora's
//! proxy with or without its cache.

use super::access::{self, Scope};
use super::ctx::{Ctx, Outcome, Plan, Routed};
use super::rate_limit;
use super::{direct, forward, hit};
use crate::cache;
use crate::readonly;
use crate::respond;
use crate::runtime::Shared;
use pingora::connectors::TransportConnector;
use pingora::proxy::Session;
use pingora::Result;
use std::sync::atomic::Ordering;

/// Runs the steps in order; true when the request was answered (or proxied) here.
pub async fn request_filter(
    shared: &Shared,
    connector: &TransportConnector,
    session: &mut Session,
    ctx: &mut Ctx,
) -> Result<bool> {
    if over_limits(session, ctx).await? {
        return Ok(true);
    }
    // Passed upstream by `forward`: a cache hit never pays for the header.
    let id_header = &ctx.rt.config.access_log.request_id_header;
    ctx.request_id = Some(crate::accesslog::request_id(
        session.req_header().headers.get(id_header),
    ));
    // ACME challenges first: an allow list must not keep the CA from validating a domain.
    if acme_challenge(shared, session, ctx).await?
        || access::blocked(shared, session, ctx).await?
        || access::check(session, ctx, Scope::Global).await?
        || rate_limit::check(session, ctx, Scope::Global).await?
        || https_redirect(session, ctx).await?
    {
        return Ok(true);
    }
    let Some(route) = route(session, ctx).await? else {
        return Ok(true);
    };
    if access::check(session, ctx, Scope::Route(route)).await?
        || rate_limit::check(session, ctx, Scope::Route(route)).await?
    {
        return Ok(true);
    }
    if readonly_gate(shared, session, ctx, route).await? {
        return Ok(true);
    }
    decide(session, ctx, connector, route).await
}

/// The connection over its limit, or the request over `[limits]`: refused, the connection
/// closed after the answer (a body is never read).
async fn over_limits(session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
    let over_limit = crate::conn::state_of(session).and_then(|c| c.over_limit);
    let refusal = match over_limit {
        Some(reason) => Some((respond::TOO_MANY_CONNECTIONS, reason)),
        None => crate::limits::check(session.req_header(), &ctx.rt.config.limits),
    };
    let Some((answer, reason)) = refusal else {
        return Ok(false);
    };
    ctx.answer_locally(Outcome::Refused(reason));
    tracing::debug!(reason, "request refused");
    respond::send(session, ctx.hsts(), answer, false).await?;
    Ok(true)
}

/// An ACME http-01 challenge gatehouse is answering for its own certificates.
async fn acme_challenge(shared: &Shared, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
    let Some(answer) = shared.challenges.http01(session.req_header().uri.path()) else {
        return Ok(false);
    };
    ctx.answer_locally(Outcome::Answered);
    let body = bytes::Bytes::from(answer);
    respond::write(
        session,
        ctx.hsts(),
        200,
        &[],
        "application/octet-stream",
        body,
        true,
    )
    .await?;
    Ok(true)
}

/// A listener that sends plain HTTP to HTTPS (ACME challenges excepted).
async fn https_redirect(session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
    let rt = ctx.rt.clone();
    let redirects = ctx
        .listener
        .is_some_and(|i| rt.config.listeners[i].redirect_to_https);
    let req = session.req_header();
    if !redirects || req.uri.path().starts_with("/.well-known/acme-challenge/") {
        return Ok(false);
    }
    let location = forward::https_location(req, rt.config.https_port());
    ctx.answer_locally(Outcome::Answered);
    respond::redirect(session, ctx.hsts(), &location).await?;
    Ok(true)
}

/// The request's route and pool (the one the fast path looked up, or looked up now); `None`
/// when no route matches, answered 404.
async fn route(session: &mut Session, ctx: &mut Ctx) -> Result<Option<usize>> {
    let route = match &ctx.plan {
        Plan::Previewed { route, .. } => *route,
        _ => {
            let req = session.req_header();
            ctx.rt
                .router
                .route(forward::request_host(req), req.uri.path())
        }
    };
    if reads_to_another_route(session, ctx, route) {
        ctx.answer_locally(Outcome::Refused("ambiguous path"));
        tracing::debug!("request refused: its path reads to another route on some servers");
        respond::send(session, ctx.hsts(), respond::BAD_REQUEST, false).await?;
        return Ok(None);
    }
    let Some(route) = route else {
        ctx.answer_locally(Outcome::Answered);
        respond::send(session, ctx.hsts(), respond::NO_ROUTE, true).await?;
        return Ok(None);
    };
    let pool = ctx.rt.config.routes[route].pool;
    ctx.routed = Some(Routed { route, pool });
    Ok(Some(route))
}

/// Whether the path's lenient reading (`request_path::lenient`: Tomcat's `/x/..;/admin`, IIS's
/// `\\`) routes elsewhere than the reading routing uses: that route's access rules and
/// read-only setting would never see the request, so it is refused (400), as Spring's
/// StrictHttpFirewall refuses such paths. One byte scan for a path without `;`, `\\` or `%`.
fn reads_to_another_route(session: &Session, ctx: &Ctx, route: Option<usize>) -> bool {
    let req = session.req_header();
    crate::request_path::lenient(req.uri.path())
        .is_some_and(|path| ctx.rt.router.route(forward::request_host(req), &path) != route)
}

/// Read-only mode on the route: writes refused with 503, and cookies stripped when it says so.
async fn readonly_gate(
    shared: &Shared,
    session: &mut Session,
    ctx: &mut Ctx,
    route: usize,
) -> Result<bool> {
    let rt = ctx.rt.clone();
    let ro_state = shared.readonly.load();
    if !readonly::applies(&ro_state, rt.config.routes[route].readonly) {
        return Ok(false);
    }
    ctx.readonly = true;
    let ro = &rt.config.readonly;
    let req = session.req_header();
    if readonly::refuses(&req.method, req.uri.path(), ro) {
        ctx.answer_locally(Outcome::ReadonlyRefused);
        shared.readonly_refused.fetch_add(1, Ordering::Relaxed);
        readonly::refuse(session, ctx.hsts(), ro, &ro_state).await?;
        return Ok(true);
    }
    if ro.strip_cookies {
        session
            .req_header_mut()
            .remove_header(&http::header::COOKIE);
    }
    Ok(false)
}

/// Settles the plan: the route's cache policy for the request, then a fresh hit the fast path
/// found is served (`hit`), a request the direct exchange carries is proxied (`direct`), and
/// anything else goes on to pingora's proxy, through pingora-cache when the policy enabled
/// it. True when served here.
/// A miss (nothing stored for the URL) asks the peers first (`cache::peers`): a fresh copy
/// they have is stored here, and pingora-cache's lookup then finds it. Not found, the fill
/// from the servers is this request's, for the siblings to wait for: its guard is returned.
async fn from_siblings(
    session: &Session,
    https: bool,
    rt: &crate::runtime::Runtime,
    route: usize,
) -> Option<Box<cache::fills::FillGuard>> {
    let rules = rt.cache_rules(route)?;
    let req = session.req_header();
    let host = super::request_host(req).unwrap_or("");
    let cache_key = rt.cache.primary_key(https, host, req, rules);
    let key = pingora::cache::key::CacheHashKey::combined_bin(&cache_key);
    // Stored here (fresh or not), or known not to be stored: not asked.
    if rt.cache.storage.entries.contains_key(&key) || !rt.cache.predicted_cacheable(&cache_key) {
        return None;
    }
    let peers = &rt.config.cache.peers;
    let fill = match rt.cache.fills.begin(key) {
        Ok(fill) => fill,
        Err(other) => {
            // Another request here fills it already: once it has asked the siblings, their
            // copy is stored, or the cache lock makes this one wait for its fetch.
            let limit = peers.sibling_timeout + peers.sibling_wait;
            cache::fills::wait_asked(other, limit).await;
            return None;
        }
    };
    let decodes = rt.config.routes[route].compression.is_some();
    let token = rt.config.peer_token();
    let variance = |stored: &http::HeaderMap| cache::key::variance_of(stored, req, decodes);
    if cache::peers::ask_siblings(&rt.cache, peers, token, (key, rt.key_layout), variance).await {
        rt.cache
            .counters
            .from_siblings
            .fetch_add(1, Ordering::Relaxed);
        return None;
    }
    fill.fetching();
    Some(Box::new(fill))
}

async fn decide(
    session: &mut Session,
    ctx: &mut Ctx,
    connector: &TransportConnector,
    route: usize,
) -> Result<bool> {
    let rt = ctx.rt.clone();
    // Whether the fast path took the request, and the hit it found.
    let previewed = match std::mem::take(&mut ctx.plan) {
        Plan::Previewed { hit, .. } => Some(hit),
        _ => None,
    };
    let mut plan = Plan::Pass;
    if let Some(rules) = rt.cache_rules(route) {
        if cache::policy::request(session.req_header_mut(), rules).is_ok() {
            if let Some(Some(entry)) = previewed {
                ctx.plan = Plan::FastHit;
                hit::serve(session, ctx, entry).await?;
                return Ok(true);
            }
            if rt.config.cache.peers.siblings {
                // Boxed: its state (a peer's connection and buffers) would otherwise be part
                // of every request's future, and copied with it.
                ctx.fill = Box::pin(from_siblings(session, ctx.https, &rt, route)).await;
            }
            rt.cache.enable(&mut session.cache);
            plan = Plan::Cache;
        }
    }
    // A compressing route goes through pingora's path, whose hooks compress.
    let compresses = rt.config.routes[route].compression.is_some();
    let direct = rt.config.server.direct_exchange && !compresses && direct::takes(session);
    if previewed.is_some() || direct {
        ctx.plan = Plan::Direct;
        direct::exchange(session, ctx, connector).await?;
        return Ok(true);
    }
    ctx.plan = plan;
    Ok(false)
}
