//! The per-request context: what the hooks of one request learn and hand on, grouped by who
//! reads it (the client side, the route, the upstream attempts, the timers) with one `Outcome`
//! saying how gatehouse itself disposed of the request.

use crate::balance::InflightGuard;
use crate::compress::Coder;
use crate::runtime::Runtime;
use std::sync::Arc;
use std::time::Instant;

/// How gatehouse itself disposed of a request. Proxied, cached and failed requests stay
/// `Forwarded`: the session and the error tell those apart.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Outcome {
    #[default]
    Forwarded,
    /// Answered by gatehouse: no route, https redirect.
    Answered,
    /// Refused before any server saw it, for this reason (limits, connection limits).
    Refused(&'static str),
    /// A write refused by read-only mode.
    ReadonlyRefused,
    /// Refused by an access rule (index into `config.access.rules`): answered with its
    /// status, or dropped without an answer.
    Denied(usize),
    /// Refused by an address block set at runtime (`crate::blocks`; its network in
    /// `Ctx::blocked_by`).
    Blocked,
    /// Over a rate limit (index into `config.rate_limits.limits`): answered with its status,
    /// or its connection closed.
    RateLimited(usize),
    /// The body went over `limits.max_body_size` while being forwarded.
    BodyTooLarge,
}

impl Outcome {
    /// Gatehouse wrote the answer itself.
    pub fn is_local(self) -> bool {
        matches!(
            self,
            Outcome::Answered
                | Outcome::Refused(_)
                | Outcome::ReadonlyRefused
                | Outcome::Denied(_)
                | Outcome::RateLimited(_)
                | Outcome::Blocked
        )
    }

    /// Why gatehouse refused the request, for the log's `error`.
    pub fn reason(self) -> Option<&'static str> {
        match self {
            Outcome::Refused(reason) => Some(reason),
            Outcome::BodyTooLarge => Some("request body too large"),
            _ => None,
        }
    }
}

/// The route a request matched and the pool it sends to, chosen together.
#[derive(Debug, Clone, Copy)]
pub struct Routed {
    pub route: usize,
    pub pool: usize,
}

/// Which way a request goes: one value, decided once by `request_filter`'s last step
/// (`recv::decide`, as Varnish's `vcl_recv` returns pass, hash or synth) and read by every hook
/// after it. The fast path may look ahead first (`Previewed`); gatehouse's
/// answers set `Local` wherever in `request_filter` they are given.
#[derive(Default)]
pub enum Plan {
    /// `request_filter` has not decided yet.
    #[default]
    Undecided,
    /// The fast path looked ahead before the hooks ran (`fast_path::takes`): the route it
    /// found (`None`: no route matches) and, on a caching route, the fresh stored response the
    /// request hits. The request's checks still run before `decide` settles the plan.
    Previewed {
        route: Option<usize>,
        hit: Option<Arc<crate::cache::store::Entry>>,
    },
    /// Answered by gatehouse itself (a refusal, an ACME challenge, a redirect, no route,
    /// read-only mode).
    Local,
    /// A fresh hit served from the fast path (`hit`).
    FastHit,
    /// Proxied by the direct exchange (`direct`).
    Direct,
    /// Through pingora's proxy and pingora-cache.
    Cache,
    /// Through pingora's proxy, past the cache.
    Pass,
}

impl Plan {
    /// The request went (or goes) on past `request_filter`'s checks: served from the cache or
    /// sent to a server.
    pub fn went_on(&self) -> bool {
        matches!(
            self,
            Plan::FastHit | Plan::Direct | Plan::Cache | Plan::Pass
        )
    }
}

/// Servers tried for this request.
#[derive(Default)]
pub struct Upstream {
    /// The server of the current (last) attempt.
    pub server: Option<usize>,
    /// Servers this request failed to connect to; never chosen again for it.
    pub tried: Vec<usize>,
    pub attempts: u32,
    /// Holds the current attempt's in-flight slot; replaced on retry.
    pub guard: Option<InflightGuard>,
}

/// Timers for the access log (see `accesslog::Record`).
pub struct Timings {
    pub started: Instant,
    pub first_peer: Option<Instant>,
    pub last_peer: Option<Instant>,
    pub connected: Option<Instant>,
    pub connect_ms: Option<f64>,
    pub response_ms: Option<f64>,
}

/// The coders of one request: before the cache and for the client.
#[derive(Default)]
pub struct Coders {
    pub stored: Option<Box<Coder>>,
    pub client: Option<Box<Coder>>,
}

impl Coders {
    /// The coder the log reports: the client's, else the one before the cache.
    pub fn logged(&self) -> Option<&Coder> {
        self.client.as_deref().or(self.stored.as_deref())
    }
}

/// Per-request state.
pub struct Ctx {
    /// The config generation loaded when the request began: every hook sees the same one.
    pub rt: Arc<Runtime>,
    /// Index of the listener the request arrived on.
    pub listener: Option<usize>,
    /// Whether the client connection is TLS.
    pub https: bool,
    pub routed: Option<Routed>,
    pub upstream: Upstream,
    pub timings: Timings,
    pub plan: Plan,
    /// Read-only mode applied to this request.
    pub readonly: bool,
    pub outcome: Outcome,
    /// Request body bytes seen, against `limits.max_body_size`.
    pub body_bytes: u64,
    pub request_id: Option<http::HeaderValue>,
    /// Server response headers captured for the access log.
    pub captured: Vec<(http::HeaderName, String)>,
    /// The fields of a 304 that revalidated the stored response, for updating it.
    pub not_modified: Option<http::HeaderMap>,
    /// A rate limit in dry-run mode this request went over (it went on), for the log.
    pub over_dry_run: Option<usize>,
    /// The network of the block that refused the request, for the log.
    pub blocked_by: Option<String>,
    /// The response's coders, if gatehouse (de)compresses it (`compression`).
    pub coders: Coders,
    /// This request fills a miss its siblings may wait for (`cache::fills`): held until it
    /// is done.
    pub fill: Option<Box<crate::cache::fills::FillGuard>>,
}

impl Ctx {
    pub fn new(rt: Arc<Runtime>) -> Ctx {
        Ctx {
            rt,
            listener: None,
            https: false,
            routed: None,
            upstream: Upstream::default(),
            timings: Timings {
                started: Instant::now(),
                first_peer: None,
                last_peer: None,
                connected: None,
                connect_ms: None,
                response_ms: None,
            },
            plan: Plan::Undecided,
            readonly: false,
            outcome: Outcome::Forwarded,
            body_bytes: 0,
            request_id: None,
            captured: Vec::new(),
            not_modified: None,
            over_dry_run: None,
            blocked_by: None,
            coders: Default::default(),
            fill: None,
        }
    }

    /// Gatehouse answers the request itself, for this reason.
    pub fn answer_locally(&mut self, outcome: Outcome) {
        self.plan = Plan::Local;
        self.outcome = outcome;
    }

    /// The Strict-Transport-Security value of the listener the request came on, if it sets one.
    pub fn hsts(&self) -> Option<&http::HeaderValue> {
        self.rt.config.listeners[self.listener?].hsts.as_ref()
    }

    /// The caching rules of the request's route, when it has any.
    pub fn cache_rules(&self) -> Option<&crate::config::RouteCache> {
        self.rt.config.routes[self.routed?.route].cache.as_ref()
    }
}
