//! The access steps of `request_filter`: the address blocks set at runtime (`crate::blocks`)
//! first, then the check of the global rules before routing and
//! of the route's rules right after it (the client as `forward::client_ip` gives it), and the
//! refusal itself: the rule's status, or a drop (an HTTP/1 connection closed with a reset, an
//! HTTP/2 stream reset with CANCEL), each counted per rule, logged at debug and recorded in the
//! access log (`Outcome::Denied`). A check that refuses nothing reads the request in place (a
//! path copied only when it needs normalizing): no lock, no reference count.

use super::ctx::{Ctx, Outcome};
use super::failure;
use super::forward::client_ip;
use crate::access::{self, Action, Request};
use crate::clock::unix_now;
use crate::request_path;
use crate::runtime::Shared;
use pingora::protocols::http::ServerSession;
use pingora::proxy::Session;
use pingora::{Error, Result};
use std::net::IpAddr;
use std::sync::atomic::Ordering::Relaxed;

/// Which list of rules a step checks.
#[derive(Clone, Copy)]
pub enum Scope {
    /// `[access] rules`, before routing.
    Global,
    /// The route's `access` and `access_rules`, after routing.
    Route(usize),
}

/// Checks the rules of `scope`: false when none refuses; true when one did and answered;
/// the `failure::DROPPED` error when one dropped the request.
pub async fn check(session: &mut Session, ctx: &mut Ctx, scope: Scope) -> Result<bool> {
    let config = &ctx.rt.config;
    let list = match scope {
        Scope::Global => &config.access.global,
        Scope::Route(route) => &config.routes[route].access,
    };
    if list.is_empty() {
        return Ok(false);
    }
    let req = session.req_header();
    let path = request_path::normalized(req.uri.path());
    let lenient = request_path::lenient(req.uri.path());
    let request = Request {
        client: client_ip(session, &config.client_address),
        method: &req.method,
        path: &path,
        lenient_path: lenient.as_deref(),
        headers: &req.headers,
    };
    let Some(rule) = access::first_refusal(&config.access.rules, list, &request) else {
        return Ok(false);
    };
    let client = request.client;
    refuse(session, ctx, rule, client).await
}

/// Refuses (403, connection closed) a request whose client an address block holds.
pub async fn blocked(shared: &Shared, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
    let blocks = shared.blocks.load();
    if blocks.is_empty() {
        return Ok(false);
    }
    let Some(client) = client_ip(session, &ctx.rt.config.client_address) else {
        return Ok(false);
    };
    let Some(block) = blocks.matching(client, unix_now()) else {
        return Ok(false);
    };
    shared.blocked.fetch_add(1, Relaxed);
    ctx.blocked_by = Some(block.cidr.clone());
    ctx.answer_locally(Outcome::Blocked);
    tracing::debug!(block = %block.cidr, client = %client, "request refused by an address block");
    crate::respond::refusal(session, ctx.hsts(), 403, &[], false).await?;
    Ok(true)
}

/// Answers (or drops) a request `rule` refused.
async fn refuse(
    session: &mut Session,
    ctx: &mut Ctx,
    rule: usize,
    client: Option<IpAddr>,
) -> Result<bool> {
    let rt = ctx.rt.clone();
    let r = &rt.config.access.rules[rule];
    rt.access_refused[rule].inc();
    ctx.answer_locally(Outcome::Denied(rule));
    let req = session.req_header();
    tracing::debug!(
        rule = %r.name,
        client = ?client,
        method = %req.method,
        path = req.uri.path(),
        action = ?r.action,
        "request refused by an access rule"
    );
    match r.action {
        Action::Deny(status) => {
            crate::respond::refusal(session, ctx.hsts(), status, &[], false).await?;
            Ok(true)
        }
        Action::Drop => Err(drop_request(session, &r.name)),
    }
}

/// Drops a request without an answer (an access rule's `drop`, a rate limit's `close`): an
/// HTTP/1 connection closed with a reset, an HTTP/2 stream reset with CANCEL. The error to
/// return, naming `by`.
pub fn drop_request(session: &mut Session, by: &str) -> Box<Error> {
    if let ServerSession::H2(stream) = &mut *session.downstream_session {
        // CANCEL, not REFUSED_STREAM: that one tells the client a retry is safe
        // (RFC 9113 §8.7), and clients retry it on a new connection.
        stream.shutdown_with_reason(h2::Reason::CANCEL);
    } else {
        crate::conn::reset_at_close(session);
    }
    Error::explain(failure::DROPPED, by.to_string())
}
