//! The own exchange's wire to the server: the request head written as bytes, the response
//! header read and parsed as bytes and, for the common response, relayed to the client with
//! its body copied as it comes. An HTTP/1 client gets the server's header lines as they came
//! (no header map is built on either side); an HTTP/2 client a header map built once from them.
//!
//! The common response: HTTP/1.1, a final status with its usual reason phrase, a header
//! httparse takes under its strict rules, and a body framed by one Content-Length, or none at
//! all (HEAD, 204, 304). Every other response (informational, chunked, close-delimited,
//! HTTP/1.0, lenient syntax...) goes on to pingora's HTTP/1 client with the bytes read so far
//! (vendored patch 9), which reads it exactly as before.
//!
//! Why: no header map is built on either side for the common response; what that saves is
//! measured in `bench/results/2026-11-27-vm-relay.md` and `2026-11-27-vm-relay-h2.md`.
//!
//! Nothing about policy is decided here: what a response header yields on arrival is
//! `upstream::header_arrived`, what the client gets of it `upstream::ClientEdits` (the same
//! decisions pingora's path applies to its header maps), keep-alive towards the client the
//! client's pingora session (vendored patch 10 writes the head serialized here). Errors are
//! pingora's client's, so that retries and answers do not depend on which reader ran.

use super::ctx::Ctx;
use super::failure;
use super::upstream::{self, ClientEdits};
use bytes::{BufMut, Bytes, BytesMut};
use http::StatusCode;
use pingora::http::ResponseHeader;
use pingora::protocols::http::ServerSession;
use pingora::protocols::Stream;
use pingora::proxy::Session;
use pingora::{Error, ErrorType, Result, RetryType};
use pingora_timeout::timeout;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Header lines parsed in place; a response with more goes to pingora's client (256).
const MAX_LINES: usize = 64;
/// A header still incomplete past this size goes to pingora's client, which refuses it.
const MAX_HEAD: usize = 64 * 1024;
/// Read buffer to start with: a typical header and a small body.
pub const BUF_START: usize = 4096;

/// What the response header read is.
pub enum Head {
    /// The common response, ready for the client.
    Relayed(Relayed),
    /// Anything else: pingora's client reads it from the bytes in the buffer.
    Other,
}

/// A common response, its header parsed and the client's head already serialized.
pub struct Relayed {
    /// Bytes of the header at the start of the buffer.
    len: usize,
    framing: Framing,
    /// The response as the client's session takes it.
    client_head: ClientHead,
}

/// What a common response's header says of its status, body and connection (a cache hit's
/// too, `hit`).
pub(super) struct Framing {
    pub status: StatusCode,
    /// Body bytes that follow the header.
    pub body: u64,
    /// Framing for the client's session: the server's Content-Length, if the body has one.
    pub content_length: Option<http::HeaderValue>,
    /// The server keeps the connection open after the response.
    pub keepalive: bool,
}

/// A relayed response's head, in the form the client's protocol takes.
pub(super) enum ClientHead {
    /// HTTP/1: status line and header lines, without Connection or the blank line (the client's
    /// session adds them, vendored patch 10).
    Lines(BytesMut),
    /// HTTP/2: a header map (the session turns it into a HEADERS frame, adds Date when missing,
    /// drops connection-specific fields).
    Map(Box<ResponseHeader>),
}

/// The client's protocol: what form its response head takes.
#[derive(Clone, Copy)]
pub enum Client {
    H1,
    H2,
}

/// Writes the request head `wire` to the server, as pingora's client would.
pub async fn send(stream: &mut Stream, wire: &[u8], write_timeout: Duration) -> Result<()> {
    let write = async {
        stream.write_all(wire).await?;
        stream.flush().await
    };
    match timeout(write_timeout, write).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(io)) => {
            // On a reused connection the server may have closed it meanwhile: nothing reached
            // it, and the exchange retries on a new connection.
            let mut e = Error::because(ErrorType::WriteError, "while writing request headers", io);
            e.retry = RetryType::ReusedOnly;
            Err(e)
        }
        Err(_) => Error::e_explain(
            ErrorType::WriteTimedout,
            "while writing request headers (timeout)",
        ),
    }
}

/// What relaying a response to the client needs.
pub struct RelayTo<'r, 'a> {
    pub client: Client,
    /// The request is HEAD: the response has no body.
    pub is_head: bool,
    pub edits: &'r ClientEdits<'a>,
    /// Where the response's arrival is accounted.
    pub ctx: &'r mut Ctx,
}

/// Reads until `buf` holds the response header, and says what it is. `relay`: the client can
/// take a relayed response.
pub async fn read_head(
    stream: &mut Stream,
    buf: &mut BytesMut,
    read_timeout: Duration,
    mut relay: Option<RelayTo<'_, '_>>,
) -> Result<Head> {
    loop {
        if !buf.is_empty() {
            match parse(buf, relay.as_mut()) {
                Some(head) => return Ok(head),
                None if buf.len() > MAX_HEAD => return Ok(Head::Other),
                None => {}
            }
        }
        if buf.capacity() - buf.len() < BUF_START / 2 {
            buf.reserve(BUF_START);
        }
        let already = buf.len();
        let read = match timeout(read_timeout, stream.read_buf(buf)).await {
            Ok(read) => read,
            Err(_) => {
                return Error::e_explain(ErrorType::ReadTimedout, "while reading response headers")
            }
        };
        match read {
            // A reused connection that fails before any response byte is retried on a new
            // one (nginx, HAProxy's `retry-on conn-failure empty-response`, pingora); once the
            // server has begun answering, the request may have had its effect.
            Ok(0) => {
                let mut e = Error::explain(
                    ErrorType::ConnectionClosed,
                    format!("while reading response headers, bytes already read: {already}"),
                );
                if already == 0 {
                    e.retry = RetryType::ReusedOnly;
                }
                return Err(e);
            }
            Ok(_) => {}
            Err(io) => {
                let os_error = io.raw_os_error().is_some();
                let mut e = Error::because(
                    ErrorType::ReadError,
                    format!("while reading response headers, bytes already read: {already}"),
                    io,
                );
                if os_error && already == 0 {
                    e.retry = RetryType::ReusedOnly;
                }
                return Err(e);
            }
        }
    }
}

/// The header in `buf`, if complete: relayed when it is a common response and `relay` allows,
/// otherwise left to pingora's client.
fn parse(buf: &[u8], relay: Option<&mut RelayTo>) -> Option<Head> {
    let mut lines = [httparse::EMPTY_HEADER; MAX_LINES];
    let mut resp = httparse::Response::new(&mut lines);
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return None,
        // Lenient syntax, too many lines...: pingora's client decides.
        Err(_) => return Some(Head::Other),
    };
    let Some(to) = relay else {
        return Some(Head::Other);
    };
    let Some(framing) = framing(&resp, to.is_head) else {
        return Some(Head::Other);
    };
    let client_head = match to.client {
        Client::H1 => {
            let mut lines = BytesMut::with_capacity(len + 128);
            write_client_head(&resp, framing.status, to.edits, &mut lines);
            ClientHead::Lines(lines)
        }
        Client::H2 => match header_map(&resp, &buf[..len], framing.status, to.edits) {
            Some(map) => ClientHead::Map(Box::new(map)),
            None => return Some(Head::Other),
        },
    };
    upstream::header_arrived(to.ctx, |name| {
        resp.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name.as_str()))
            .map(|h| h.value)
    });
    Some(Head::Relayed(Relayed {
        len,
        framing,
        client_head,
    }))
}

/// A common response's status, body length and connection: `None` for any other.
fn framing(resp: &httparse::Response, is_head: bool) -> Option<Framing> {
    let status = StatusCode::from_u16(resp.code?).ok()?;
    if resp.version != Some(1)
        || !(200..600).contains(&status.as_u16())
        || Some(resp.reason?) != status.canonical_reason()
    {
        return None;
    }
    let mut content_length = None;
    let mut keepalive = true;
    for line in resp.headers.iter() {
        let name = line.name.as_bytes();
        if name.eq_ignore_ascii_case(b"content-length") {
            let digits = line.value;
            if content_length.is_some()
                || digits.is_empty()
                || digits.len() > 18
                || !digits.iter().all(u8::is_ascii_digit)
            {
                return None;
            }
            content_length = Some(digits);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            return None;
        } else if name.eq_ignore_ascii_case(b"connection") {
            keepalive &= !line
                .value
                .split(|b| *b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"));
        }
    }
    let no_body = is_head || matches!(status.as_u16(), 204 | 304);
    let body = match (no_body, content_length) {
        (true, _) => 0,
        (false, Some(digits)) => std::str::from_utf8(digits).ok()?.parse().ok()?,
        // Delimited by the server closing the connection.
        (false, None) => return None,
    };
    Some(Framing {
        status,
        body,
        content_length: match no_body {
            true => None,
            false => Some(http::HeaderValue::from_bytes(content_length?).ok()?),
        },
        keepalive,
    })
}

/// The status line and the server's header lines as they came, less Connection (the client's
/// session writes its own) and what `edits` removes, plus Date when missing (as pingora's
/// session adds it) and what `edits` adds.
fn write_client_head(
    resp: &httparse::Response,
    status: StatusCode,
    edits: &ClientEdits,
    out: &mut BytesMut,
) {
    out.put_slice(b"HTTP/1.1 ");
    out.put_slice(status.as_str().as_bytes());
    out.put_u8(b' ');
    out.put_slice(status.canonical_reason().unwrap_or_default().as_bytes());
    out.put_slice(b"\r\n");
    let mut dated = false;
    for line in resp.headers.iter() {
        let name = line.name.as_bytes();
        if client_keeps(name, edits) {
            dated |= name.eq_ignore_ascii_case(b"date");
            put_line(out, name, line.value);
        }
    }
    finish_head(out, dated, None, edits);
}

/// Whether a server's (or stored) header line goes to an HTTP/1 client: not Connection (the
/// client's session writes its own), not what `edits` removes.
pub fn client_keeps(name: &[u8], edits: &ClientEdits) -> bool {
    !name.eq_ignore_ascii_case(b"connection") && !edits.removes(name)
}

/// The last lines of an HTTP/1 client's head: Date when the response has none (as pingora's
/// session adds it), `extra`, then what `edits` adds.
pub fn finish_head(
    out: &mut BytesMut,
    dated: bool,
    extra: Option<(&[u8], &[u8])>,
    edits: &ClientEdits,
) {
    if !dated {
        let date = pingora::protocols::http::date::get_cached_date();
        put_line(out, b"Date", date.as_bytes());
    }
    for (name, value) in extra.into_iter().chain(edits.added()) {
        put_line(out, name, value);
    }
}

/// The server's header as a map for an HTTP/2 client, less what `edits` removes, plus what it
/// adds (Connection and the other connection-specific fields are the HTTP/2 session's to
/// drop). `None` for a field the map refuses: pingora's client then reads the response.
/// The map is filled directly (an HTTP/2 session keeps no original case, and pingora's
/// `append_header` would work out each name's title case for the case map it does not have),
/// and its values share one copy of the header bytes `head` instead of one allocation each.
fn header_map(
    resp: &httparse::Response,
    head: &[u8],
    status: StatusCode,
    edits: &ClientEdits,
) -> Option<ResponseHeader> {
    let shared = Bytes::copy_from_slice(head);
    let mut fields = http::HeaderMap::try_with_capacity(resp.headers.len() + 2).ok()?;
    for line in resp.headers.iter() {
        if edits.removes(line.name.as_bytes()) {
            continue;
        }
        let name = http::HeaderName::from_bytes(line.name.as_bytes()).ok()?;
        // httparse's values are slices of `head`: the same range of the copy.
        let at = (line.value.as_ptr() as usize).checked_sub(head.as_ptr() as usize)?;
        let end = at
            .checked_add(line.value.len())
            .filter(|end| *end <= shared.len())?;
        let value = shared.slice(at..end);
        let value = http::HeaderValue::from_maybe_shared(value).ok()?;
        fields.try_append(name, value).ok()?;
    }
    for (name, value) in edits.added() {
        let name = http::HeaderName::from_bytes(name).ok()?;
        let value = http::HeaderValue::from_bytes(value).ok()?;
        fields.try_insert(name, value).ok()?;
    }
    let (mut parts, ()) = http::Response::new(()).into_parts();
    parts.status = status;
    parts.headers = fields;
    Some(ResponseHeader::from(parts))
}

/// One header line, `name: value`, as both heads the own exchange writes have them.
pub fn put_line(out: &mut BytesMut, name: &[u8], value: &[u8]) {
    out.put_slice(name);
    out.put_slice(b": ");
    out.put_slice(value);
    out.put_slice(b"\r\n");
}

/// Writes the relayed response to the client and copies its body from the server; the
/// server's connection when it can serve another request.
pub async fn relay(
    session: &mut Session,
    stream: Stream,
    mut buf: BytesMut,
    head: Relayed,
    read_timeout: Duration,
) -> Result<Option<Stream>> {
    let mut stream = stream;
    let Relayed {
        len,
        framing,
        client_head,
    } = head;
    let mut left = framing.body;
    write_head(session, &framing, client_head).await?;
    let mut overread = false;
    let _ = buf.split_to(len);
    loop {
        let available = buf.len() as u64;
        let take = available.min(left) as usize;
        overread |= available > left;
        if take > 0 {
            left -= take as u64;
            write_body(session, buf.split_to(take).freeze(), left == 0).await?;
        }
        if left == 0 {
            break;
        }
        buf.clear();
        buf.reserve(BUF_START);
        let read = timeout(read_timeout, stream.read_buf(&mut buf))
            .await
            .map_err(|_| Error::explain(ErrorType::ReadTimedout, "while reading response body"))?
            .map_err(|e| Error::because(ErrorType::ReadError, "while reading response body", e))
            .map_err(|e| e.into_up())?;
        if read == 0 {
            return Error::e_explain(
                ErrorType::ConnectionClosed,
                format!("Peer prematurely closed connection with {left} bytes of body remaining to read"),
            )
            .map_err(|e| e.into_up());
        }
    }
    Ok((framing.keepalive && !overread).then_some(stream))
}

/// Writes the response head in the client's protocol.
pub(super) async fn write_head(
    session: &mut Session,
    framing: &Framing,
    head: ClientHead,
) -> Result<()> {
    // A failure here is the client's side (it left, or reset its stream).
    write_head_as(session, framing, head)
        .await
        .map_err(|e| e.into_down())
}

/// `write_head`'s writing, by the client's protocol.
async fn write_head_as(session: &mut Session, framing: &Framing, head: ClientHead) -> Result<()> {
    match (head, &mut *session.downstream_session) {
        (ClientHead::Lines(lines), ServerSession::H1(client)) => {
            // What the client's session keeps of the response: its status and framing.
            let mut kept = ResponseHeader::build_no_case(framing.status, Some(1))?;
            if let Some(length) = framing.content_length.clone() {
                kept.insert_header(http::header::CONTENT_LENGTH, length)?;
            }
            client
                .write_response_head(Box::new(kept), Some(&lines))
                .await
        }
        (ClientHead::Map(map), _) => session.write_response_header(map, framing.body == 0).await,
        (ClientHead::Lines(_), _) => {
            Error::e_explain(failure::IMPOSSIBLE, "an HTTP/1 head for another protocol")
        }
    }
}

/// Writes body bytes in the client's protocol; `end`: the last of them.
pub(super) async fn write_body(session: &mut Session, bytes: Bytes, end: bool) -> Result<()> {
    let written = match &mut *session.downstream_session {
        ServerSession::H1(client) => client.write_body(&bytes).await.map(|_| ()),
        _ => session.write_response_body(Some(bytes), end).await,
    };
    // The client's side (a send timeout, a client gone), as pingora's path marks it.
    written.map_err(|e| e.into_down())
}

#[cfg(test)]
#[path = "relay_tests.rs"]
mod tests;
