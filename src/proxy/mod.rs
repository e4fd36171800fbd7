//! The one `ProxyHttp` implementation: each hook is a short call into the module that owns the
//! concern.
//!
//! ```text
//!  client ──► [conn::ClientApp]      connection counted against its limits; header deadline;
//!                                    requests `direct` will take, plain fresh cache hits (or
//!                                    what gatehouse answers) run the hooks below from the
//!                                    connection's loop (`fast_path`), the rest go through
//!                                    pingora's proxy framework
//!         ──► early_request_filter   client idle timeout; which listener, TLS or not; headers in
//!         ──► request_filter         `recv`'s steps, each of which may answer: connection
//!                                    and request limits; ACME; https redirect; routing:
//!                                    host/path → route → pool (404); read-only mode; then
//!                                    `decide` settles the request's one `Plan`: a plain
//!                                    fresh hit found by `fast_path` is served by `hit`; a plain
//!                                    GET/HEAD the cache does not take is proxied here by
//!                                    `direct` (the direct exchange: gatehouse's HTTP/1,
//!                                    through the same `upstream`/`forward` functions as the hooks
//!                                    below), then straight to fail_to_proxy/logging; the
//!                                    rest go on, through pingora-cache or past it
//!         ──► [cache] key, lookup    HIT/STALE answered from the cache; misses coalesce
//!             (cache_key_callback, cache_vary_filter, should_serve_stale)
//!         ──► upstream_peer          balance: pick a usable server, count it in flight
//!         │     └─ fail_to_connect   mark it tried; retry on another server (connect only)
//!         ──► upstream_request_filter X-Forwarded-For/-Proto/-Host
//!         ◄── response from the server, streamed back; response_cache_filter decides storing
//!         ──► response_filter        X-Cache, HSTS
//!         ──► fail_to_proxy          502 / 503 / 504 with a short body
//!         ──► logging                (always runs)
//! ```
//!
//! The hooks from upstream_peer to response_filter are one-line calls into `upstream` and
//! `forward`, which `direct` calls too: one implementation of each policy for both paths.
//!
//! The context holds the config generation loaded when the request began, so every hook of
//! one request sees the same config, and the in-flight guard of the chosen server.

mod access;
mod caching;
mod client_wire;
mod compression;
mod ctx;
mod direct;
mod failure;
mod fast_path;
mod forward;
mod head_line;
mod hit;
mod hpack_head;
mod logging;
mod rate_limit;
mod real_client;
mod recv;
mod server_wire;
mod upstream;

pub use ctx::{Ctx, Outcome, Plan};
pub use forward::request_host;

use crate::cache;
use crate::respond;
use crate::runtime::Shared;
use async_trait::async_trait;
use ctx::Routed;
use pingora::cache::key::HashBinary;
use pingora::cache::{CacheKey, CacheMeta, RespCacheable};
use pingora::connectors::TransportConnector;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::HttpPeer;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::{Error, ErrorSource, ErrorType, Result};
use std::sync::atomic::Ordering;
use std::sync::Arc;

pub struct Proxy {
    shared: Arc<Shared>,
    /// Opens connections for `direct` (pingora's path has its own connector). Shared with
    /// `sibling`s: building one loads the system's root certificates (milliseconds).
    connector: Arc<TransportConnector>,
    /// None: the sessions `fast_path` builds pass through no downstream module.
    modules: pingora::modules::http::HttpModules,
}

impl Proxy {
    pub fn new(shared: Arc<Shared>) -> Self {
        Proxy {
            shared,
            connector: Arc::new(TransportConnector::new(None)),
            modules: pingora::modules::http::HttpModules::new(),
        }
    }

    /// Another handle on the same proxy (for the fast path, `fast_path`, while pingora's proxy
    /// owns this one).
    pub fn sibling(&self) -> Self {
        Proxy {
            shared: self.shared.clone(),
            connector: self.connector.clone(),
            modules: pingora::modules::http::HttpModules::new(),
        }
    }
}

#[async_trait]
impl ProxyHttp for Proxy {
    type CTX = Ctx;

    /// No downstream modules. pingora's default registers a disabled compression module, and
    /// every request would then build its context and pass each header and body chunk through
    /// its filters; gatehouse compresses in its own hooks (`compression`), before the cache
    /// and after it.
    fn init_downstream_modules(&self, _modules: &mut pingora::modules::http::HttpModules) {}

    fn new_ctx(&self) -> Ctx {
        Ctx::new(self.shared.current())
    }

    async fn early_request_filter(&self, session: &mut Session, ctx: &mut Ctx) -> Result<()> {
        let timeouts = &ctx.rt.config.timeouts;
        if self.shared.closing.load(Ordering::Relaxed) {
            session.set_keepalive(None);
        } else {
            session.set_keepalive(Some(timeouts.client_idle.as_secs().max(1)));
        }
        // A client that takes nothing of its response for this long loses it (HAProxy's
        // timeout client, nginx's send_timeout), and the server connection behind it is freed.
        session.set_write_timeout(Some(timeouts.client_send));
        ctx.listener = session
            .server_addr()
            .and_then(|a| a.as_inet())
            .and_then(|a| ctx.rt.listener_for(*a));
        ctx.https = is_https(session);
        if let Some(conn) = crate::conn::state_of(session) {
            conn.headers_received();
        }
        Ok(())
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
        recv::request_filter(&self.shared, &self.connector, session, ctx).await
    }

    fn cache_key_callback(&self, session: &Session, ctx: &mut Ctx) -> Result<CacheKey> {
        let rules = ctx
            .cache_rules()
            .ok_or_else(|| Error::explain(ErrorType::InternalError, "cache without rules"))?;
        let req = session.req_header();
        let host = request_host(req).unwrap_or("");
        Ok(cache::Cache::key(ctx.https, host, &req.uri, rules))
    }

    fn cache_vary_filter(
        &self,
        meta: &CacheMeta,
        ctx: &mut Ctx,
        req: &RequestHeader,
    ) -> Option<HashBinary> {
        cache::key::variance(meta, req, compression::settings(ctx).is_some())
    }

    fn response_cache_filter(
        &self,
        session: &Session,
        resp: &ResponseHeader,
        ctx: &mut Ctx,
    ) -> Result<RespCacheable> {
        Ok(caching::verdict(session, resp, ctx))
    }

    fn range_header_filter(
        &self,
        session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut Ctx,
    ) -> pingora::proxy::RangeType {
        // One range answered from the cache (206, or 416); several get the whole response
        // (pingora gives up on a count at or over the limit).
        let req = session.req_header();
        if !req.headers.contains_key(http::header::RANGE) {
            return pingora::proxy::RangeType::None; // most hits: skip parsing Content-Length
        }
        if !compression::range_allowed(session, resp, ctx) {
            return pingora::proxy::RangeType::None;
        }
        let req = session.req_header();
        pingora::proxy::range_header_filter(req, resp, Some(2))
    }

    fn should_serve_stale(
        &self,
        session: &mut Session,
        _ctx: &mut Ctx,
        error: Option<&Error>,
    ) -> bool {
        match error {
            // Grace: the stored object's stale-while-revalidate window is checked by pingora.
            None => true,
            // Stale-if-error: the server failed (5xx, connect failure, timeout) or the pool has
            // no usable server at all.
            Some(e) => {
                let serve = match e.etype() {
                    ErrorType::HTTPStatus(code) => *code >= 500,
                    _ => *e.esource() == ErrorSource::Upstream,
                };
                if serve {
                    // pingora does not reuse the client connection after serving stale on an
                    // error: say so in the response, or the client's next request on it is reset.
                    session.set_keepalive(None);
                }
                serve
            }
        }
    }

    async fn upstream_peer(&self, session: &mut Session, ctx: &mut Ctx) -> Result<Box<HttpPeer>> {
        if let Some(gone) = upstream::stream_reset(session) {
            return Err(gone);
        }
        let ix = upstream::choose(session, ctx)?;
        let rt = &ctx.rt;
        let server = &rt.pools[routed(ctx)?.pool].servers[ix];
        Ok(Box::new(upstream::peer(server, &rt.config.timeouts)))
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut Ctx,
        e: Box<Error>,
    ) -> Box<Error> {
        upstream::connect_failed(ctx, e)
    }

    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<Error>,
        ctx: &mut Ctx,
        client_reused: bool,
    ) -> Box<Error> {
        ctx.upstream.guard = None;
        // pingora's policy: retry only idempotent requests, and only when a reused upstream
        // connection turned out dead (bytes may have reached the server otherwise).
        let mut e = e.more_context(format!("peer: {peer}"));
        if !session.req_header().method.is_idempotent() || session.as_ref().retry_buffer_truncated()
        {
            e.set_retry(false);
        } else {
            e.retry.decide_reuse(client_reused);
        }
        e
    }

    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<bytes::Bytes>,
        _end_of_stream: bool,
        ctx: &mut Ctx,
    ) -> Result<()> {
        let max = ctx.rt.config.limits.max_body_size;
        if let Some(b) = body {
            ctx.body_bytes += b.len() as u64;
            if max > 0 && ctx.body_bytes > max {
                ctx.outcome = Outcome::BodyTooLarge;
                return Err(Error::explain(
                    ErrorType::HTTPStatus(413),
                    "request body too large",
                ));
            }
        }
        Ok(())
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream: &mut RequestHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        forward::upstream_headers(session, upstream, ctx)?;
        compression::to_server(session, upstream, ctx)
    }

    async fn connected_to_upstream(
        &self,
        _session: &mut Session,
        reused: bool,
        _peer: &HttpPeer,
        #[cfg(unix)] _fd: std::os::unix::io::RawFd,
        #[cfg(windows)] _sock: std::os::windows::io::RawSocket,
        _digest: Option<&pingora::protocols::Digest>,
        ctx: &mut Ctx,
    ) -> Result<()> {
        upstream::connected(ctx, reused);
        Ok(())
    }

    async fn upstream_response_filter(
        &self,
        session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        // First: a 304's fields, kept by `from_server` for the stored response, get the
        // coding's edits.
        compression::from_server(session, resp, ctx)?;
        upstream::from_server(resp, ctx);
        Ok(())
    }

    fn upstream_response_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<bytes::Bytes>,
        end_of_stream: bool,
        ctx: &mut Ctx,
    ) -> Result<Option<std::time::Duration>> {
        compression::from_server_body(body, end_of_stream, ctx)?;
        Ok(None)
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        compression::to_client(session, resp, ctx)?;
        upstream::to_client(session, resp, ctx)
    }

    fn response_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<bytes::Bytes>,
        end_of_stream: bool,
        ctx: &mut Ctx,
    ) -> Result<Option<std::time::Duration>> {
        compression::to_client_body(body, end_of_stream, ctx)?;
        Ok(None)
    }

    /// A request the client gave up on, or whose response it would not take, is client
    /// misbehaviour: counted and summarised (`telemetry`), never an ERROR line each.
    fn suppress_error_log(&self, session: &Session, _ctx: &Ctx, e: &Error) -> bool {
        if *e.etype() == failure::DROPPED {
            return true; // logged by `access` and in the access log
        }
        let Some(what) = failure::client_misbehaviour(e) else {
            return false;
        };
        // Only a request given up before any of its answer was written counts against its
        // HTTP/2 connection's glitch budget (`conn::glitches`).
        if matches!(what, crate::telemetry::Misbehaviour::Cancelled)
            && session.response_written().is_none()
        {
            crate::conn::stream_cancelled();
        }
        if matches!(what, crate::telemetry::Misbehaviour::SendTimeout) {
            crate::conn::reset_at_close(session);
        }
        crate::telemetry::client_misbehaved(what);
        true
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut Ctx) {
        // The background refresh of a stale object is not a client request.
        if session.subrequest_ctx.is_some() {
            return;
        }
        logging::account(session, ctx);
        if self.shared.access_log.is_active() {
            self.shared
                .access_log
                .push(logging::record(session, e, ctx));
        }
    }

    async fn fail_to_proxy(&self, session: &mut Session, e: &Error, ctx: &mut Ctx) -> FailToProxy {
        if let Some(resp) = session.response_written() {
            // The client already has the start of a response (the server failed mid-body): an
            // error page would land inside that body. Closing the connection is the signal
            // left, as nginx and HAProxy give it.
            return FailToProxy {
                error_code: resp.status.as_u16(),
                can_reuse_downstream: false,
            };
        }
        let answer = failure::answer(e);
        let code = match answer {
            Some(a) => {
                if let Err(err) = respond::send(session, ctx.hsts(), a, false).await {
                    tracing::debug!("could not send error answer: {err}");
                }
                a.status
            }
            None => 0,
        };
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }
}

/// Whether the client's connection is TLS.
fn is_https(session: &Session) -> bool {
    session.digest().is_some_and(|d| d.ssl_digest.is_some())
}

/// The route and pool `request_filter` chose. Every hook after it runs only for routed
/// requests; a missing choice is a bug, answered 500 rather than sent to some other pool.
fn routed(ctx: &Ctx) -> Result<Routed> {
    ctx.routed.ok_or_else(|| {
        Error::explain(
            failure::IMPOSSIBLE,
            "no route chosen before choosing a server",
        )
    })
}
