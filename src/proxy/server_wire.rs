//! the direct exchange's wire to the server: the request head written as bytes, the response
//! header read and parsed as bytes and, for the common response, relayed to the client (its
//! head built by `client_wire`) with its body copied as it comes.
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
//! decisions pingora's path applies to its header maps). Errors are pingora's client's, so
//! that retries and answers do not depend on which reader ran.

use super::client_wire::{self, Client, ClientHead, Framing};
use super::ctx::Ctx;
use super::upstream::{self, ClientEdits};
use bytes::BytesMut;
use http::StatusCode;
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
            client_wire::write_client_head(buf, &resp, framing.status, to.edits, &mut lines);
            ClientHead::Lines(lines)
        }
        Client::H2 => {
            let fields = resp.headers.iter().map(|h| (h.name.as_bytes(), h.value));
            let block = client_wire::hpack_block(framing.status, len, fields, None, to.edits);
            ClientHead::Block(block)
        }
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
    client_wire::write_head(session, &framing, client_head).await?;
    let mut overread = false;
    let _ = buf.split_to(len);
    loop {
        let available = buf.len() as u64;
        let take = available.min(left) as usize;
        overread |= available > left;
        if take > 0 {
            left -= take as u64;
            client_wire::write_body(session, buf.split_to(take).freeze(), left == 0).await?;
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

#[cfg(test)]
#[path = "server_wire_tests.rs"]
mod tests;
