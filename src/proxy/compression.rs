//! Compression on pingora's path, at its two points around the cache:
//!
//! - before the cache (`from_server`): a response on a compressing route that the cache will
//!   store is compressed once, in the route's `cache_encoding`, and stored so: every hit is
//!   served without compressing again. The server is asked for that coding too
//!   (`to_server`), so a file it keeps compressed comes as it is.
//! - after it (`to_client`): each client gets what its Accept-Encoding takes. An unencoded
//!   response is compressed in its best coding; a coding it does not take (stored, or sent by
//!   the server) is decoded on the fly, as Varnish's `http_gzip_support` does; a range of such
//!   a response is not offered then (`range_allowed`): the client gets the whole of it.
//!
//! The fast path serves a hit only when the client takes the stored coding as it is
//! (`fast_hit_ok`); the direct exchange never runs on a compressing route.

use super::ctx::{Ctx, Plan};
use crate::compress::response::{self, Coding};
use crate::compress::{Accepted, Coder, Encoding, Settings};
use bytes::Bytes;
use http::header;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::Session;
use pingora::{Error, ErrorType, Result};

/// The request's route's compression, when it compresses.
pub fn settings(ctx: &Ctx) -> Option<&Settings> {
    ctx.rt.config.routes[ctx.routed?.route].compression.as_ref()
}

/// What the client gets of a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ForClient {
    /// As it is.
    Keep,
    /// As it is, with Vary naming Accept-Encoding (it could have been compressed).
    Vary,
    Compress(Encoding),
    Decode(Encoding),
}

fn for_client(req: &RequestHeader, resp: &ResponseHeader, s: &Settings) -> ForClient {
    if resp.status.is_informational() || resp.status == http::StatusCode::NOT_MODIFIED {
        return ForClient::Keep;
    }
    let accepted = Accepted::parse(
        req.headers
            .get_all(header::ACCEPT_ENCODING)
            .iter()
            .map(|v| v.as_bytes()),
    );
    match response::coding(&resp.headers) {
        Coding::Identity => {
            if !response::compressible(resp, s, !accepted.identity_ok()) {
                return ForClient::Keep;
            }
            accepted
                .best(&s.preference)
                .map_or(ForClient::Vary, ForClient::Compress)
        }
        Coding::Coded(e) => {
            // no-transform aside: the coding may be one gatehouse asked the server for
            // (`to_server`), and a client must not get a coding it refused.
            let untouchable = resp.status == http::StatusCode::PARTIAL_CONTENT
                || resp.headers.contains_key(header::CONTENT_RANGE);
            if accepted.accepts(e) || !accepted.identity_ok() || untouchable {
                ForClient::Keep
            } else {
                ForClient::Decode(e)
            }
        }
        Coding::Other => ForClient::Keep,
    }
}

/// `upstream_request_filter`: a request the cache may store the answer of asks the server
/// for the coding it is stored in.
pub fn to_server(session: &Session, upstream: &mut RequestHeader, ctx: &Ctx) -> Result<()> {
    // Only with the cache on: pingora then drops Range and the preconditions, so the server's
    // answer is a whole representation.
    if let (Some(s), Plan::Cache, true) = (settings(ctx), &ctx.plan, session.cache.enabled()) {
        upstream.insert_header(header::ACCEPT_ENCODING, s.cache_encoding.token())?;
    }
    Ok(())
}

/// `upstream_response_filter`: compresses, once, a response the cache is about to store.
pub fn from_server(session: &Session, resp: &mut ResponseHeader, ctx: &mut Ctx) -> Result<()> {
    let Some(s) = settings(ctx) else {
        return Ok(());
    };
    if !matches!(ctx.plan, Plan::Cache) {
        return Ok(());
    }
    if resp.status == http::StatusCode::NOT_MODIFIED {
        revalidating(session, resp);
        return Ok(());
    }
    if matches!(response::coding(&resp.headers), Coding::Coded(_)) {
        // The server coded it as `to_server` asked: one stored copy for every client.
        response::vary_on_accept_encoding(resp);
        return Ok(());
    }
    let stores = session.cache.enabled() // a HEAD is fetched as a GET then
        && response::compressible(resp, s, false)
        && super::caching::would_store(resp, ctx);
    if !stores {
        return Ok(());
    }
    let e = s.cache_encoding;
    let coder = Coder::compressor(e, s.level(e)).map_err(coding_error)?;
    response::transformed(resp, Some(e));
    ctx.coders.stored = Some(Box::new(coder));
    Ok(())
}

/// A 304's fields replace the stored response's (`cache::policy::updated_by_304`): for a
/// stored coded response, its ETag is weakened and its Vary keeps naming Accept-Encoding.
fn revalidating(session: &Session, resp: &mut ResponseHeader) {
    let Some(stored) = session.cache.maybe_cache_meta() else {
        return;
    };
    if !matches!(response::coding(stored.headers()), Coding::Coded(_)) {
        return;
    }
    if let Some(weak) = resp.headers.get(header::ETAG).and_then(response::weakened) {
        let _ = resp.insert_header(header::ETAG, weak);
    }
    if resp.headers.contains_key(header::VARY) {
        response::vary_on_accept_encoding(resp);
    }
}

/// `upstream_response_body_filter`: the stored coder's part.
pub fn from_server_body(body: &mut Option<Bytes>, end: bool, ctx: &mut Ctx) -> Result<()> {
    code(ctx.coders.stored.as_deref_mut(), body, end)
}

/// `range_header_filter`: whether a range of this response may be served. Not of one the
/// client gets decoded: the range would count the coded bytes.
pub fn range_allowed(session: &Session, resp: &ResponseHeader, ctx: &Ctx) -> bool {
    settings(ctx).is_none_or(|s| {
        !matches!(
            for_client(session.req_header(), resp, s),
            ForClient::Decode(_)
        )
    })
}

/// `response_filter`: the client's coding.
pub fn to_client(session: &Session, resp: &mut ResponseHeader, ctx: &mut Ctx) -> Result<()> {
    let Some(s) = settings(ctx) else {
        return Ok(());
    };
    let req = session.req_header();
    let (to, coder) = match for_client(req, resp, s) {
        ForClient::Keep => return Ok(()),
        ForClient::Vary => {
            response::vary_on_accept_encoding(resp);
            return Ok(());
        }
        // pingora serves a revalidated or stale-on-error object without marking its last
        // chunk (`HttpTask::Done`): a compressor would never be finished. Sent as it is.
        ForClient::Compress(_) if whole_body_unmarked(session) => {
            response::vary_on_accept_encoding(resp);
            return Ok(());
        }
        ForClient::Compress(e) => (Some(e), Coder::compressor(e, s.level(e))),
        ForClient::Decode(e) => (None, Coder::decompressor(e)),
    };
    let coder = coder.map_err(coding_error)?;
    response::transformed(resp, to);
    let body = req.method != http::Method::HEAD && !matches!(resp.status.as_u16(), 204 | 304);
    if body && req.version < http::Version::HTTP_11 {
        // HTTP/1.0 reads to the close (pingora marked it chunked when the length went).
        resp.remove_header(&header::TRANSFER_ENCODING);
    } else if body && !resp.headers.contains_key(header::TRANSFER_ENCODING) {
        // HTTP/1.1: the length is gone, so the body is chunked (HTTP/2 drops the field).
        resp.insert_header(header::TRANSFER_ENCODING, "chunked")?;
    }
    if body {
        ctx.coders.client = Some(Box::new(coder));
    }
    Ok(())
}

/// Whether pingora serves this response's body from the cache after a revalidation or as
/// stale on an error (`ServeFromCache`), whose body ends without `end` set.
fn whole_body_unmarked(session: &Session) -> bool {
    use pingora::cache::CachePhase;
    matches!(
        session.cache.phase(),
        CachePhase::Revalidated | CachePhase::RevalidatedNoCache(_) | CachePhase::Stale
    )
}

/// `response_body_filter`: the client's coder's part.
pub fn to_client_body(body: &mut Option<Bytes>, end: bool, ctx: &mut Ctx) -> Result<()> {
    code(ctx.coders.client.as_deref_mut(), body, end)
}

fn code(coder: Option<&mut Coder>, body: &mut Option<Bytes>, end: bool) -> Result<()> {
    let Some(coder) = coder else { return Ok(()) };
    let input = body.as_deref().unwrap_or_default();
    if input.is_empty() && !end {
        return Ok(());
    }
    *body = Some(coder.feed(input, end).map_err(coding_error)?);
    Ok(())
}

/// Whether the fast path may serve this hit as stored: the client takes its coding, or it is
/// one no client would get compressed.
pub fn fast_hit_ok(s: &Settings, req: &RequestHeader, stored: &ResponseHeader) -> bool {
    matches!(for_client(req, stored, s), ForClient::Keep)
}

/// Counts a finished request's coders.
pub fn account(ctx: &Ctx) {
    let coders = [ctx.coders.stored.as_deref(), ctx.coders.client.as_deref()];
    for c in coders.into_iter().flatten() {
        let m = &ctx.rt.compression.coded[c.op as usize][c.encoding.index()];
        m.responses.inc();
        m.bytes_in.inc_by(c.bytes_in);
        m.bytes_out.inc_by(c.bytes_out);
    }
}

fn coding_error(e: std::io::Error) -> Box<Error> {
    Error::because(ErrorType::InternalError, "compression", e)
}
