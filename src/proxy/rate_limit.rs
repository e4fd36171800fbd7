//! The rate-limit steps of `request_filter`, right after the access rules of the same scope:
//! each limit of the list counts the request under its key (`crate::ratelimit`), and the first
//! it is over decides: refused with the limit's status and `Retry-After`, held until it
//! conforms (`delay`), or its connection closed (`close`, as an access rule's drop). Dry-run
//! limits count and let it through, noted in the access log. Counted per limit and outcome
//! (`gatehouse_rate_limited_total`). A request within its limits costs a hash and one short
//! lock per limit, and allocates nothing.

use super::access::{drop_request, Scope};
use super::ctx::{Ctx, Outcome};
use super::forward::client_ip;
use crate::ratelimit::{self, Action, Request, Verdict};
use http::{HeaderName, HeaderValue};
use pingora::proxy::Session;
use pingora::Result;
use std::time::Duration;

/// Counts the request against the limits of `scope`: false when it may go on (after any
/// delay); true when a limit refused it and answered; the `failure::DROPPED` error when a
/// limit closed it.
pub async fn check(session: &mut Session, ctx: &mut Ctx, scope: Scope) -> Result<bool> {
    let config = &ctx.rt.config;
    let list = match scope {
        Scope::Global => &config.rate_limits.global,
        Scope::Route(route) => &config.routes[route].rate_limits,
    };
    if list.is_empty() {
        return Ok(false);
    }
    let req = Request {
        client: client_ip(session, &config.client_address),
        headers: &session.req_header().headers,
    };
    let now = ratelimit::now_ns();
    let mut delay = Duration::ZERO;
    let mut over = None;
    for &i in list {
        let (limit, table) = (&config.rate_limits.limits[i], &ctx.rt.rate_tables[i]);
        let Some(key) = limit.key_hash(&req, table.hasher()) else {
            continue;
        };
        let counted = &ctx.rt.rate_limited[i];
        match table.arrive(key, now, limit.rate, limit.max_delay()) {
            Verdict::Pass => {}
            Verdict::Evicted => counted.evicted.inc(),
            Verdict::Delay(_) | Verdict::Over(_) if limit.dry_run => {
                counted.dry_run.inc();
                ctx.over_dry_run.get_or_insert(i);
            }
            Verdict::Delay(d) => {
                counted.delayed.inc();
                delay = delay.max(d);
            }
            Verdict::Over(wait) => {
                over = Some((i, wait));
                break;
            }
        }
    }
    if let Some((i, wait)) = over {
        return refuse(session, ctx, i, wait).await;
    }
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    Ok(false)
}

/// Answers (or closes) a request over limit `i`, which would conform after `wait`.
async fn refuse(session: &mut Session, ctx: &mut Ctx, i: usize, wait: Duration) -> Result<bool> {
    let rt = ctx.rt.clone();
    let limit = &rt.config.rate_limits.limits[i];
    ctx.answer_locally(Outcome::RateLimited(i));
    tracing::debug!(
        limit = %limit.name,
        client = ?client_ip(session, &rt.config.client_address),
        path = session.req_header().uri.path(),
        "request over a rate limit"
    );
    if limit.action == Action::Close {
        rt.rate_limited[i].closed.inc();
        return Err(drop_request(session, &limit.name));
    }
    rt.rate_limited[i].refused.inc();
    // Whole seconds, at least one.
    let retry = crate::clock::ceil_secs(wait).max(1);
    let extra = [(
        HeaderName::from_static("retry-after"),
        HeaderValue::from(retry),
    )];
    // The connection stays open, as nginx keeps it, unless a request body would have to be
    // read past first.
    let h = &session.req_header().headers;
    let bodiless = !h.contains_key(http::header::TRANSFER_ENCODING)
        && h.get(http::header::CONTENT_LENGTH).is_none_or(|v| v == "0");
    crate::respond::refusal(session, ctx.hsts(), limit.status, &extra, bodiless).await?;
    Ok(true)
}
