//! The server side of a proxied request, one implementation for both ways a request reaches its
//! server (pingora's proxy path through the `ProxyHttp` hooks, and gatehouse's own exchange in
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
use pingora::http::ResponseHeader;
use pingora::prelude::HttpPeer;
use pingora::proxy::Session;
use pingora::{Error, Result};
use std::time::Instant;

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
            ip_octets = client_ip(session).map(|ip| match ip {
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
pub fn peer(server: &Server, t: &Timeouts) -> HttpPeer {
    let mut peer = HttpPeer::new(server.config.address, false, String::new());
    peer.options.connection_timeout = Some(t.connect);
    peer.options.read_timeout = Some(t.upstream_read);
    peer.options.write_timeout = Some(t.upstream_write);
    peer.options.idle_timeout = Some(t.client_idle);
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
    let t = &mut ctx.timings;
    t.connected = Some(now);
    t.connect_ms = Some(if reused {
        0.0
    } else {
        t.last_peer.map_or(0.0, |from| ms_between(from, now))
    });
}

/// The server's response header arrived: time to first byte, the headers the access log
/// captures, Set-Cookie dropped in logged-out read-only mode (before the cache sees it), and a
/// 304's fields kept for the cache.
pub fn from_server(resp: &mut ResponseHeader, ctx: &mut Ctx) {
    let now = Instant::now();
    let t = &mut ctx.timings;
    if t.response_ms.is_none() {
        t.response_ms = t.connected.map(|from| ms_between(from, now));
    }
    let log = &ctx.rt.config.access_log;
    for name in &log.capture_response_headers {
        if let Some(v) = resp.headers.get(name) {
            ctx.captured.push((
                name.clone(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            ));
        }
    }
    if ctx.readonly && ctx.rt.config.readonly.strip_cookies {
        resp.remove_header(&http::header::SET_COOKIE);
    }
    caching::from_server(resp, ctx);
}

/// What every response gets or loses on its way to the client (`response_filter`): no
/// Set-Cookie in logged-out read-only mode, captured headers stripped when configured, the
/// cache's status and invalidations, HSTS on the listeners that send it.
pub fn to_client(session: &Session, resp: &mut ResponseHeader, ctx: &Ctx) -> Result<()> {
    if ctx.readonly && ctx.rt.config.readonly.strip_cookies {
        resp.remove_header(&http::header::SET_COOKIE);
    }
    let log = &ctx.rt.config.access_log;
    if log.strip_captured_response_headers {
        for name in &log.capture_response_headers {
            resp.remove_header(name);
        }
    }
    caching::to_client(session, resp, ctx)?;
    if let Some(hsts) = ctx
        .listener
        .and_then(|i| ctx.rt.config.listeners[i].hsts.as_ref())
    {
        resp.insert_header(http::header::STRICT_TRANSPORT_SECURITY, hsts.clone())?;
    }
    Ok(())
}
