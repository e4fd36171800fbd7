//! The per-request context: what the hooks of one request learn and hand on, grouped by who
//! reads it (the client side, the route, the upstream attempts, the timers) with one `Outcome`
//! saying how gatehouse itself disposed of the request.

use crate::balance::InflightGuard;
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
    /// The body went over `limits.max_body_size` while being forwarded.
    BodyTooLarge,
}

impl Outcome {
    /// Gatehouse wrote the answer itself.
    pub fn is_local(self) -> bool {
        matches!(
            self,
            Outcome::Answered | Outcome::Refused(_) | Outcome::ReadonlyRefused
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
    /// The route has caching: the response reports an X-Cache status.
    pub cache_attempted: bool,
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
    /// Set by `own`, which found the request is one `direct` takes (the test `request_filter`
    /// would make) and looked up its route (none: no route matches).
    pub own_route: Option<Option<usize>>,
    /// Set by `own` with `own_route`: the stored response the request is a fresh hit on
    /// (`cache::Cache::own_hit`), served by `hit` once the request's checks pass.
    pub own_hit: Option<Arc<crate::cache::store::Entry>>,
    /// How the cache served the request when gatehouse served it itself (`hit`); otherwise
    /// pingora-cache's phase says.
    pub served_from_cache: Option<crate::cache::Status>,
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
            cache_attempted: false,
            readonly: false,
            outcome: Outcome::Forwarded,
            body_bytes: 0,
            request_id: None,
            captured: Vec::new(),
            not_modified: None,
            own_route: None,
            own_hit: None,
            served_from_cache: None,
        }
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
