//! The server side of a proxied request, one implementation for both ways a request reaches its
//! server (pingora's proxy path through the `ProxyHttp` hooks, and the direct exchange in
//! `direct`): choosing the server (balance, retries, in-flight slot), how a connection attempt
//! is counted and timed, and what the server's response header yields before anything else
//! sees it (timing, captured headers, cookies stripped in read-only mode, a 304's fields).

use super::ctx::Ctx;
use super::failure;
use super::forward::client_ip;
use super::{caching, routed};
use crate::balance::{InflightGuard, Server};
use crate::clock::ms_between;
use crate::config::{HashKey, Timeouts};
use crate::runtime::Runtime;
use http::{HeaderName, HeaderValue};
use pingora::http::ResponseHeader;
use pingora::prelude::HttpPeer;
use pingora::proxy::Session;
use pingora::{Error, Result};
use std::time::Instant;

/// The error to end a request with when its client has reset its HTTP/2 stream already
/// (Rapid Reset: it is never sent to a server, on either path); checked without waiting (one
/// poll of the stream's reset watch).
pub fn stream_reset(session: &mut Session) -> Option<Box<Error>> {
    if !session.downstream_session.is_http2() {
        return None;
    }
    let idle = std::pin::pin!(session.downstream_session.read_body_or_idle(true));
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match std::future::Future::poll(idle, &mut cx) {
        std::task::Poll::Pending => None,
        std::task::Poll::Ready(Err(e)) => Some(e.into_down()),
        std::task::Poll::Ready(Ok(_)) => {
            Some(Error::explain(pingora::ErrorType::ConnectionClosed, "client left").into_down())
        }
    }
}

/// Chooses the server for the next attempt and counts it in flight; returns its index in the
/// route's pool. A retry releases the previous attempt's slot first.
pub fn choose(session: &Session, ctx: &mut Ctx) -> Result<usize> {
    ctx.upstream.guard = None;
    let rt = ctx.rt.clone();
    let pool = &rt.pools[routed(ctx)?.pool];
    let ip_octets;
    let req = session.req_header();
    let key: Option<&[u8]> = match pool.hash_key() {
        None => None,
        Some(HashKey::Path) => Some(req.uri.path().as_bytes()),
        Some(HashKey::Uri) => Some(
            req.uri
                .path_and_query()
                .map_or(b"/".as_slice(), |pq| pq.as_str().as_bytes()),
        ),
        Some(HashKey::Header(h)) => req.headers.get(h).map(|v| v.as_bytes()),
        Some(HashKey::ClientIp) => {
            ip_octets = client_ip(session, &rt.config.client_address).map(|ip| match ip {
                std::net::IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
                std::net::IpAddr::V6(v6) => v6.octets(),
            });
            ip_octets.as_ref().map(|o| o.as_slice())
        }
    };
    let Some(ix) = pool.select(key, &ctx.upstream.tried) else {
        let etype = if ctx.upstream.tried.is_empty() {
            failure::NO_USABLE_SERVER
        } else {
            failure::ALL_SERVERS_FAILED
        };
        return Err(Error::explain(etype, format!("pool {}", pool.config.name)).into_up());
    };
    let now = Instant::now();
    ctx.timings.first_peer.get_or_insert(now);
    ctx.timings.last_peer = Some(now);
    ctx.upstream.server = Some(ix);
    ctx.upstream.attempts += 1;
    ctx.upstream.guard = Some(InflightGuard::new(&pool.servers[ix].state));
    Ok(ix)
}

/// The peer pingora connects to for `server`, with the config's timeouts.
pub fn peer(server: &Server, timeouts: &Timeouts) -> HttpPeer {
    let mut peer = HttpPeer::new(server.config.address, false, String::new());
    peer.options.connection_timeout = Some(timeouts.connect);
    peer.options.read_timeout = Some(timeouts.upstream_read);
    peer.options.write_timeout = Some(timeouts.upstream_write);
    peer.options.idle_timeout = Some(timeouts.client_idle);
    peer
}

/// A connection to the chosen server failed: counted against it, never chosen again for this
/// request, and retried on another server while the pool's `retries` allow (nothing reached the
/// server, so any method may be retried).
pub fn connect_failed(ctx: &mut Ctx, mut e: Box<Error>) -> Box<Error> {
    ctx.upstream.guard = None;
    let Ok(routed) = routed(ctx) else {
        return e; // cannot happen: `choose` picked a server of the route's pool
    };
    let pool = &ctx.rt.pools[routed.pool];
    if let Some(ix) = ctx.upstream.server {
        pool.servers[ix].state.note_connect_failure();
        ctx.upstream.tried.push(ix);
    }
    e.set_retry(ctx.upstream.attempts <= pool.config.retries);
    e
}

/// A connection to the server is ready: the connect time is 0 for a reused one.
pub fn connected(ctx: &mut Ctx, reused: bool) {
    let now = Instant::now();
    let timings = &mut ctx.timings;
    timings.connected = Some(now);
    timings.connect_ms = Some(if reused {
        0.0
    } else {
        timings.last_peer.map_or(0.0, |from| ms_between(from, now))
    });
}

/// The server's response header arrived: time to first byte, the headers the access log
/// captures, Set-Cookie dropped in logged-out read-only mode (before the cache sees it), and a
/// 304's fields kept for the cache.
pub fn from_server(resp: &mut ResponseHeader, ctx: &mut Ctx) {
    header_arrived(ctx, |name| resp.headers.get(name).map(|v| v.as_bytes()));
    if strips_cookies(ctx) {
        resp.remove_header(&http::header::SET_COOKIE);
    }
    caching::from_server(resp, ctx);
}

/// What every response header yields on arrival, whatever holds it (`get`: a field's first
/// value): the time to first byte and the captured headers.
pub fn header_arrived<'h>(ctx: &mut Ctx, get: impl Fn(&HeaderName) -> Option<&'h [u8]>) {
    let now = Instant::now();
    let timings = &mut ctx.timings;
    if timings.response_ms.is_none() {
        timings.response_ms = timings.connected.map(|from| ms_between(from, now));
    }
    let log = &ctx.rt.config.access_log;
    for name in &log.capture_response_headers {
        if let Some(v) = get(name) {
            ctx.captured
                .push((name.clone(), String::from_utf8_lossy(v).into_owned()));
        }
    }
}

/// Set-Cookie is dropped from responses in logged-out read-only mode.
fn strips_cookies(ctx: &Ctx) -> bool {
    ctx.readonly && ctx.rt.config.readonly.strip_cookies
}

/// What every response gets or loses on its way to the client (`response_filter`): the
/// changes `ClientEdits` decides, and the invalidations a write causes.
pub fn to_client(session: &Session, resp: &mut ResponseHeader, ctx: &Ctx) -> Result<()> {
    let edits = ClientEdits::of(&ctx.rt, session, ctx);
    edits.remove_from(resp);
    caching::invalidate(session, resp, ctx);
    edits.add_to(resp)
}

/// The changes to a response header on its way to the client, decided once for both ways a
/// response is written: into pingora's header (`remove_from`/`add_to`) or line by line
/// (`removes`, `added`) by the direct exchange's relay. No Set-Cookie in logged-out read-only
/// mode, captured headers stripped when configured, the cache's targeted field
/// (`CDN-Cache-Control`...) removed, the cache status (X-Cache) where the cache was asked, HSTS
/// on the listeners that send it. Each header added replaces any the server sent.
pub struct ClientEdits<'a> {
    strip_cookies: bool,
    strip_captured: &'a [HeaderName],
    targeted: Option<&'a HeaderName>,
    cache_status: Option<(&'a HeaderName, &'static str)>,
    hsts: Option<&'a HeaderValue>,
}

impl<'a> ClientEdits<'a> {
    /// `rt` is the request's runtime (`ctx.rt`), borrowed apart from `ctx`.
    pub fn of(rt: &'a Runtime, session: &Session, ctx: &Ctx) -> Self {
        let log = &rt.config.access_log;
        let cache = &rt.cache.config;
        ClientEdits {
            strip_cookies: strips_cookies(ctx),
            strip_captured: if log.strip_captured_response_headers {
                &log.capture_response_headers
            } else {
                &[]
            },
            targeted: cache.targeted_field.as_ref(),
            cache_status: cache
                .status_header
                .as_ref()
                .zip(caching::status(session, ctx))
                .map(|(name, status)| (name, status.as_str())),
            hsts: ctx
                .listener
                .and_then(|i| rt.config.listeners[i].hsts.as_ref()),
        }
    }

    fn remove_from(&self, resp: &mut ResponseHeader) {
        if self.strip_cookies {
            resp.remove_header(&http::header::SET_COOKIE);
        }
        for name in self.strip_captured {
            resp.remove_header(name);
        }
        if let Some(field) = self.targeted.filter(|f| resp.headers.contains_key(*f)) {
            resp.remove_header(field);
        }
    }

    fn add_to(&self, resp: &mut ResponseHeader) -> Result<()> {
        if let Some((name, status)) = self.cache_status {
            resp.insert_header(name.clone(), status)?;
        }
        if let Some(hsts) = self.hsts {
            resp.insert_header(http::header::STRICT_TRANSPORT_SECURITY, hsts.clone())?;
        }
        Ok(())
    }

    /// Whether a server's header line of this name is left out (removed, or replaced by one of
    /// `added`).
    pub fn removes(&self, name: &[u8]) -> bool {
        let is = |n: &HeaderName| n.as_str().as_bytes().eq_ignore_ascii_case(name);
        (self.strip_cookies && is(&http::header::SET_COOKIE))
            || self.strip_captured.iter().any(is)
            || self.targeted.is_some_and(is)
            || self.cache_status.is_some_and(|(n, _)| is(n))
            || (self.hsts.is_some() && is(&http::header::STRICT_TRANSPORT_SECURITY))
    }

    /// The header lines added, as (name, value), named as pingora's header writes them.
    pub fn added(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> {
        let status = self
            .cache_status
            .map(|(name, status)| (name.as_str().as_bytes(), status.as_bytes()));
        let hsts = self.hsts.map(|v| {
            let name = http::header::STRICT_TRANSPORT_SECURITY.as_str().as_bytes();
            (name, v.as_bytes())
        });
        status.into_iter().chain(hsts)
    }
}
