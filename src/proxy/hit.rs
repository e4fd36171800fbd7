//! Cache hits served from the fast path (`fast_path`), for the request a front tier's
//! cache answers most: a GET or HEAD without a range on a fresh object (`cache::Cache::fast_hit`
//! finds it, its Vary variant included, as pingora-cache's lookup would). The request runs the
//! same hooks as every other (limits, read-only, routing, the cache policy for the request,
//! logging, metrics); only pingora-proxy's cache phase and its per-request future are skipped.
//! A stale object, a range, If-Match or If-Unmodified-Since, or a miss, goes through
//! pingora-cache as before.
//!
//! The response is pingora's hit response (`proxy_cache_hit`): the stored header with its Age,
//! a 304 when If-None-Match or If-Modified-Since says the client has it (pingora's
//! `conditional_filter`, as its hit path evaluates them), then `response_filter`'s changes
//! (`upstream::ClientEdits`: X-Cache, HSTS, fields stripped), then the body. An HTTP/1 client
//! gets the stored header's lines, made once when the object was stored (`cache::wire`),
//! through `client_wire` (vendored patch 10), and an HTTP/1 304 a header map as pingora's
//! path builds it; an HTTP/2 client an HPACK block written from the same lines (vendored
//! patch 25), a 304 too.
//!
//! Why: a plain hit skips pingora-cache's hit state machine and pingora-proxy's per-request
//! framework; what that saves is measured in `bench/results/2026-11-28-vm-hit.md`.

use super::client_wire::{self, ClientHead, Framing};
use super::ctx::Ctx;
use super::upstream::{self, ClientEdits};
use crate::cache::store::Entry;
use crate::cache::wire::HitHead;
use crate::runtime::Runtime;
use bytes::{BufMut, Bytes, BytesMut};
use http::header;
use pingora::protocols::http::conditional_filter;
use pingora::protocols::http::ServerSession;
use pingora::proxy::Session;
use pingora::Result;
use std::sync::Arc;
use std::time::SystemTime;

/// Request fields left to pingora-cache's hit path: ranges (a 206 or 416 from the stored
/// body), and the preconditions it does not evaluate on hits either.
const LEFT_TO_PINGORA: [header::HeaderName; 4] = [
    header::IF_MATCH,
    header::IF_UNMODIFIED_SINCE,
    header::IF_RANGE,
    header::RANGE,
];

/// The stored response this request on `route` is a plain fresh hit on, if any.
pub fn lookup(rt: &Runtime, session: &Session, route: usize) -> Option<Arc<Entry>> {
    let rules = rt.cache_rules(route)?;
    let req = session.req_header();
    if req
        .headers
        .keys()
        .any(|name| LEFT_TO_PINGORA.contains(name))
    {
        return None;
    }
    let host = super::request_host(req).unwrap_or("");
    let compression = rt.config.routes[route].compression.as_ref();
    // A request the cache passes goes to pingora's path, which compresses.
    let personal = |h: &http::HeaderMap| {
        h.contains_key(header::AUTHORIZATION) || h.contains_key(header::COOKIE)
    };
    if compression.is_some() && personal(&req.headers) {
        return None;
    }
    let entry = rt.cache.fast_hit(
        super::is_https(session),
        host,
        req,
        rules,
        compression.is_some(),
    )?;
    match compression {
        Some(s) if !super::compression::fast_hit_ok(s, req, entry.header()) => None,
        _ => Some(entry),
    }
}

/// Serves the hit: the stored header with its Age and the client's edits, then the body (none
/// for HEAD).
pub async fn serve(session: &mut Session, ctx: &mut Ctx, entry: Arc<Entry>) -> Result<()> {
    let Some(stored) = entry.hit_head() else {
        return Err(pingora::Error::explain(
            super::failure::IMPOSSIBLE,
            "a hit the fast path cannot frame",
        ));
    };
    let req = session.req_header();
    // If-None-Match, If-Modified-Since: pingora's hit path's own evaluation and 304.
    let not_modified = conditional_filter::not_modified_filter(req, entry.header());
    let is_head = req.method == http::Method::HEAD;
    let no_body = not_modified || is_head || matches!(stored.status.as_u16(), 204 | 304);
    let framing = Framing {
        status: match not_modified {
            true => http::StatusCode::NOT_MODIFIED,
            false => stored.status,
        },
        body: if no_body {
            0
        } else {
            entry.body().len() as u64
        },
        content_length: stored
            .content_length
            .as_ref()
            .filter(|_| !no_body)
            .map(|(v, _)| v.clone()),
        keepalive: true,
    };
    let age = entry.age(SystemTime::now()).as_secs();
    let head = match *session.downstream_session {
        ServerSession::H1(_) if !not_modified => {
            let rt = ctx.rt.clone();
            let edits = ClientEdits::of(&rt, session, ctx);
            ClientHead::Lines(lines(stored, age, &edits))
        }
        ServerSession::H2(_) => {
            let rt = ctx.rt.clone();
            let edits = ClientEdits::of(&rt, session, ctx);
            ClientHead::Block(block(stored, not_modified, age, &edits))
        }
        _ => {
            let mut map = Box::new(entry.header().clone());
            map.set_version(http::Version::HTTP_11);
            map.insert_header(header::AGE, age)?;
            if not_modified {
                conditional_filter::to_304(&mut map);
            }
            upstream::to_client(session, &mut map, ctx)?;
            ClientHead::Map(map)
        }
    };
    client_wire::write_head(session, &framing, head).await?;
    if framing.body > 0 {
        // In slices: the client's write timeout (`timeouts.client_send`) applies to each write,
        // so a slow but steady client gets a large object as it would from a server.
        let body = entry.body();
        let mut at = 0;
        while at < body.len() {
            let end = (at + crate::cache::store::BODY_SLICE).min(body.len());
            client_wire::write_body(session, body.slice(at..end), end == body.len()).await?;
            at = end;
        }
    }
    Ok(())
}

/// Fields a 304 made from a stored response leaves out, as pingora's `conditional_filter::to_304`
/// does (representation metadata the client's stored copy already has).
const NOT_IN_304: [&[u8]; 5] = [
    b"content-length",
    b"content-type",
    b"transfer-encoding",
    b"content-encoding",
    b"accept-ranges",
];

/// The HTTP/2 head as an HPACK block (a 304 when `not_modified`): the stored fields less Age
/// and what `edits` removes (and, for a 304, `NOT_IN_304`); Date when the stored header has
/// none; then Age and what `edits` adds.
fn block(stored: &HitHead, not_modified: bool, age: u64, edits: &ClientEdits) -> Bytes {
    let status = match not_modified {
        true => http::StatusCode::NOT_MODIFIED,
        false => stored.status,
    };
    let left_out = |name: &[u8]| {
        name.eq_ignore_ascii_case(b"age")
            || (not_modified && NOT_IN_304.iter().any(|n| name.eq_ignore_ascii_case(n)))
    };
    let fields = stored.fields().filter(|(name, _)| !left_out(name));
    let mut digits = itoa::Buffer::new();
    let age = (&b"age"[..], digits.format(age).as_bytes());
    // Room for Date, Age and what `edits` adds.
    let capacity = stored.wire_len() + 128;
    client_wire::hpack_block(status, capacity, fields, Some(age), edits)
}

/// The HTTP/1 head: the stored lines less Connection (the session writes its own), Age and what
/// `edits` removes; Date when the stored header has none; then Age and what `edits` adds.
fn lines(stored: &HitHead, age: u64, edits: &ClientEdits) -> BytesMut {
    let mut out = BytesMut::with_capacity(stored.status_line().len() + 512);
    out.put_slice(stored.status_line());
    for (name, line) in stored.lines() {
        if client_wire::client_keeps(name, edits) && !name.eq_ignore_ascii_case(b"age") {
            out.put_slice(line);
        }
    }
    let mut digits = itoa::Buffer::new();
    let age = (&b"Age"[..], digits.format(age).as_bytes());
    client_wire::finish_head(&mut out, stored.dated, Some(age), edits);
    out
}
