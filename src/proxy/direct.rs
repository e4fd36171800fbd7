//! the direct exchange with a server, for the requests most of a front tier's traffic is:
//! a GET or HEAD without a body that the cache does not handle (a route without caching, or a
//! request its rules pass), with no connection options beyond keep-alive. pingora's proxy path
//! (`proxy_1to1`) runs each exchange as two tasks joined by two channels, takes the connection
//! from a pool that spawns a task per returned connection, and builds its peer, session and
//! request anew per attempt; here one request is one sequence on the client's own task: choose
//! a server, take an idle connection (or open one), write the request, stream the response
//! back, give the connection back to the server's idle list.
//!
//! Nothing about policy is decided here. The server choice, retries and in-flight slot, the
//! connect accounting and timings and the response's treatment are `upstream`'s, the forwarding
//! headers `forward`'s, failures become answers in `fail_to_proxy` and the record in `logging`,
//! as for every request. The request head is serialized by `forward` (the client's header lines
//! as they came, less hop-by-hop ones, plus the forwarding headers: no second header map is
//! built) and written by `server_wire`, which also reads the response header as bytes and
//! relays the common response (one Content-Length or no body, strict syntax): line by line to an HTTP/1
//! client, as one header map to an HTTP/2 client. Every other response is read by pingora's
//! HTTP/1 client session from the bytes already read (chunked, close-delimited, informational
//! responses, lenient syntax) and written back by the client's session, as before. A request
//! this path does not take goes
//! through pingora's path unchanged, and so does every request when
//! `server.direct_exchange = false`.
//!
//! Server connections are held to pingora's standard: an idle one is checked when taken
//! (closed, reset, or bytes nobody asked for: dropped, `balance::idle`), bytes past a
//! response's framing close it, and a reused one that fails before any response byte is
//! retried once on a new connection. Idle connections are not watched by a task each, as
//! pingora's pool does: the check runs when one is taken instead.
//!
//! What that saves is measured in `bench/results/2026-11-27-vm-direct.md` (`bench/ab.sh`
//! with `server.direct_exchange` false and true on one binary).

use super::client_wire::Client;
use super::ctx::Ctx;
use super::server_wire::{self, Head, RelayTo};
use super::{forward, routed, upstream};
use crate::runtime::Runtime;
use bytes::BytesMut;
use pingora::connectors::TransportConnector;
use pingora::http::RequestHeader;
use pingora::protocols::http::v1::client::HttpSession as ServerConn;
use pingora::protocols::http::HttpTask;
use pingora::protocols::http::ServerSession;
use pingora::protocols::Stream;
use pingora::proxy::Session;
use pingora::{Error, ErrorSource, ErrorType, Result};

/// Attempts per request at most, as pingora's proxy loop allows.
const MAX_ATTEMPTS: u32 = 16;

/// Room for a typical request header as sent to its server (grown when larger).
const WIRE_CAPACITY: usize = 1024;

/// A request carrying any of these goes to pingora's path: a body, an upgrade, trailers.
const NOT_TAKEN: [http::HeaderName; 7] = [
    http::header::UPGRADE,
    http::header::TE,
    http::header::TRAILER,
    http::header::TRANSFER_ENCODING,
    http::header::EXPECT,
    http::header::CONTENT_LENGTH,
    http::HeaderName::from_static("http2-settings"),
];

/// Whether this exchange can carry the request (see the module doc); the rest go to pingora.
pub fn takes(session: &mut Session) -> bool {
    !session.cache.enabled() && session.is_body_empty() && takes_header(session.req_header())
}

/// The request header's part of `takes`: a GET or HEAD without a body or connection options.
/// One pass over the header lines (a lookup per name would hash each name again).
pub fn takes_header(req: &RequestHeader) -> bool {
    if !matches!(req.method, http::Method::GET | http::Method::HEAD) {
        return false;
    }
    let mut hosts = 0;
    for (name, value) in &req.headers {
        if name == http::header::HOST {
            if value.as_bytes().contains(&b'@') {
                return false;
            }
            hosts += 1;
        } else if name == http::header::CONNECTION {
            let options_only = value.as_bytes().split(|b| *b == b',').all(|t| {
                let t = t.trim_ascii();
                t.eq_ignore_ascii_case(b"keep-alive") || t.eq_ignore_ascii_case(b"close")
            });
            if !options_only {
                return false;
            }
        } else if NOT_TAKEN.iter().any(|n| n == name) {
            return false;
        }
    }
    match req.version {
        // Origin-form target and exactly one Host.
        http::Version::HTTP_11 => {
            req.raw_path().first() == Some(&b'/') && req.uri.authority().is_none() && hosts == 1
        }
        // The host comes from :authority alone.
        http::Version::HTTP_2 => {
            hosts == 0
                && req
                    .uri
                    .authority()
                    .is_some_and(|a| !a.as_str().contains('@'))
        }
        _ => false,
    }
}

/// Proxies the request; an error is answered and logged by the proxy's failure hooks.
pub async fn exchange(
    session: &mut Session,
    ctx: &mut Ctx,
    connector: &TransportConnector,
) -> Result<()> {
    let rt = ctx.rt.clone();
    let pool = &rt.pools[routed(ctx)?.pool];
    let timeouts = &rt.config.timeouts;
    let wire = request_head(session, ctx)?;
    let mut retried_reuse = false;
    let (stream, ix, addr, buf, head) = loop {
        // An HTTP/2 stream the client already reset (Rapid Reset) is never sent to a server.
        if let Some(gone) = upstream::stream_reset(session) {
            return Err(gone);
        }
        let ix = upstream::choose(session, ctx)?;
        let server = &pool.servers[ix];
        let addr = server.config.address;
        let (mut stream, reused) = match server.state.idle.take(addr, timeouts.client_idle) {
            Some(stream) => (stream, true),
            // Boxed: connecting is the rare case on kept-alive connections, and its future
            // (8 KiB) would otherwise be part of every exchange's, copied into the heap with
            // request_filter's future on each request. A client that leaves meanwhile stops
            // the wait (the connection attempt is dropped, the server's slot freed).
            None => match unless_client_leaves(
                session,
                Box::pin(connector.new_stream(&upstream::peer(server, timeouts))),
            )
            .await
            {
                Ok(stream) => (stream, false),
                Err(gone) if *gone.esource() == ErrorSource::Downstream => return Err(gone),
                Err(e) => {
                    // The server's side: a 502 (504 on a timeout), logged as a connect error,
                    // as on pingora's path (the connector leaves the side unset).
                    let e = upstream::connect_failed(ctx, e);
                    if e.retry() && ctx.upstream.attempts < MAX_ATTEMPTS {
                        continue;
                    }
                    return Err(e);
                }
            },
        };
        upstream::connected(ctx, reused);
        let mut buf = BytesMut::with_capacity(server_wire::BUF_START);
        match send_and_read(session, ctx, &rt, &mut stream, &wire, &mut buf).await {
            Ok(head) => break (stream, ix, addr, buf, head),
            Err(mut e) => {
                ctx.upstream.guard = None;
                // A reused connection the server had closed: retried once, on a fresh one (the
                // method is idempotent and nothing was answered), as pingora does.
                e.retry.decide_reuse(reused && !retried_reuse);
                if e.retry() && ctx.upstream.attempts < MAX_ATTEMPTS {
                    retried_reuse |= reused;
                    server.state.idle.clear();
                    continue;
                }
                return Err(e);
            }
        }
    };
    let kept = match head {
        Head::Relayed(head) => {
            server_wire::relay(session, stream, buf, head, timeouts.upstream_read).await?
        }
        Head::Other => through_pingora(session, ctx, stream, &buf).await?,
    };
    if let Some(stream) = kept {
        pool.servers[ix].state.idle.give_back(stream, addr);
    }
    Ok(())
}

/// The request head as it goes to the server (`forward`).
fn request_head(session: &Session, ctx: &Ctx) -> Result<BytesMut> {
    let req = session.req_header();
    let mut wire = BytesMut::with_capacity(WIRE_CAPACITY);
    forward::Forwarding::of(req, session, ctx)
        .write_head(req, &mut wire)
        .map_err(|e| e.into_up())?;
    Ok(wire)
}

/// Writes the request and reads the response header, unless the client leaves first; an
/// HTTP/1 client can have the response relayed.
async fn send_and_read(
    session: &mut Session,
    ctx: &mut Ctx,
    rt: &Runtime,
    stream: &mut Stream,
    wire: &[u8],
    buf: &mut BytesMut,
) -> Result<Head> {
    let timeouts = &rt.config.timeouts;
    server_wire::send(stream, wire, timeouts.upstream_write)
        .await
        .map_err(|e| e.into_up())?;
    let edits = upstream::ClientEdits::of(rt, session, ctx);
    let client = match *session.downstream_session {
        ServerSession::H1(_) => Some(Client::H1),
        ServerSession::H2(_) => Some(Client::H2),
        _ => None,
    };
    let relay_to = client.map(|client| RelayTo {
        client,
        is_head: session.req_header().method == http::Method::HEAD,
        edits: &edits,
        ctx,
    });
    unless_client_leaves(
        session,
        server_wire::read_head(stream, buf, timeouts.upstream_read, relay_to),
    )
    .await
}

/// The rest of the exchange on pingora's HTTP/1 client, for the responses `server_wire` does not
/// carry: it reads the response from the bytes already read (vendored patch 9). The server's
/// connection, when it can serve another request.
async fn through_pingora(
    session: &mut Session,
    ctx: &mut Ctx,
    stream: Stream,
    read: &[u8],
) -> Result<Option<Stream>> {
    let timeouts = &ctx.rt.config.timeouts;
    let mut conn = ServerConn::new(stream);
    conn.read_timeout = Some(timeouts.upstream_read);
    conn.write_timeout = Some(timeouts.upstream_write);
    // The request is written (`server_wire::send`, vendored patch 8). What pingora's client keeps of
    // it is its method (a response to HEAD has no body); it has no body and no Upgrade
    // (`takes_header`).
    let kept = RequestHeader::build_no_case(session.req_header().method.clone(), b"/", Some(0))?;
    crate::pingora_ext::exchange_taken_over(&mut conn, kept, read);
    let task = final_header(session, &mut conn).await?;
    stream_back(session, ctx, &mut conn, task).await?;
    conn.respect_keepalive();
    Ok(conn.reuse().await)
}

/// Reads the final response header; informational responses (103 Early Hints...) are passed
/// on to the client as they come, as pingora's path does.
async fn final_header(session: &mut Session, conn: &mut ServerConn) -> Result<HttpTask> {
    loop {
        let task = unless_client_leaves(session, conn.read_response_task()).await?;
        match task {
            HttpTask::Header(resp, _) if resp.status.as_u16() == 101 => {
                return Error::e_explain(ErrorType::InvalidHTTPHeader, "101 without an upgrade")
                    .map_err(|e| e.into_up());
            }
            HttpTask::Header(resp, _) if resp.status.is_informational() => {
                session.write_response_header(resp, false).await?;
            }
            task => return Ok(task),
        }
    }
}

/// What the server answers, unless the client leaves first: then the exchange ends there (the
/// server connection is dropped, the server's in-flight slot freed), as on pingora's path and
/// nginx's default. Bytes of a pipelined next request are kept for it by pingora.
async fn unless_client_leaves<T>(
    session: &mut Session,
    server: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    tokio::select! {
        answer = server => answer.map_err(|e| e.into_up()),
        gone = session.downstream_session.read_body_or_idle(true) => {
            let e = match gone {
                Err(e) => e,
                Ok(_) => Error::explain(ErrorType::ConnectionClosed, "client left"),
            };
            Err(e.into_down())
        }
    }
}

/// Sends the response header with the first body chunk (one write for a small response), then
/// the rest as it arrives.
async fn stream_back(
    session: &mut Session,
    ctx: &mut Ctx,
    conn: &mut ServerConn,
    task: HttpTask,
) -> Result<()> {
    let HttpTask::Header(mut resp, mut end) = task else {
        return Error::e_explain(ErrorType::InvalidHTTPHeader, "no response header")
            .map_err(|e| e.into_up());
    };
    upstream::from_server(&mut resp, ctx);
    // As pingora's path does: a body the server delimits by closing reaches the client chunked,
    // so that the client's connection can stay open.
    let no_body = session.req_header().method == http::Method::HEAD
        || matches!(resp.status.as_u16(), 204 | 304);
    if !no_body
        && !end
        && !resp.headers.contains_key(http::header::TRANSFER_ENCODING)
        && !resp.headers.contains_key(http::header::CONTENT_LENGTH)
    {
        resp.set_version(http::Version::HTTP_11);
        resp.insert_header(http::header::TRANSFER_ENCODING, "chunked")?;
    }
    upstream::to_client(session, &mut resp, ctx)?;
    let mut tasks = vec![HttpTask::Header(resp, end)];
    while !end {
        let task = conn.read_response_task().await.map_err(|e| e.into_up())?;
        end = match &task {
            HttpTask::Body(_, end) => *end,
            _ => true,
        };
        tasks.push(task);
        session
            .write_response_tasks(std::mem::take(&mut tasks))
            .await?;
    }
    if !tasks.is_empty() {
        session.write_response_tasks(tasks).await?;
    }
    Ok(())
}

#[cfg(test)]
#[path = "direct_tests.rs"]
mod tests;
