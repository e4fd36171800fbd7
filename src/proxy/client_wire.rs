//! The response as the client's protocol takes it: its head (an HTTP/1 client gets the
//! server's header lines as they came, less Connection and what `upstream::ClientEdits`
//! removes; an HTTP/2 client an HPACK block written once from them) and its body, written through
//! the client's pingora session. Used for responses relayed from a server (`server_wire`) and
//! for hits served from the store (`hit`); this module never talks to a server.
//!
//! Keep-alive towards the client is the client's pingora session's (vendored patch 10 writes
//! the head serialized here). A failure writing is the client's side (`into_down`).

use super::failure;
use super::head_line::{put_line, RawLines};
use super::hpack_head::HpackHead;
use super::upstream::ClientEdits;
use bytes::{BufMut, Bytes, BytesMut};
use http::StatusCode;
use pingora::http::ResponseHeader;
use pingora::protocols::http::ServerSession;
use pingora::proxy::Session;
use pingora::{Error, Result};

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
    /// HTTP/2: a header block ready to send (`hpack_block`), for the status in `Framing`.
    Block(Bytes),
}

/// The client's protocol: what form its response head takes.
#[derive(Clone, Copy)]
pub enum Client {
    H1,
    H2,
}

/// The status line and the server's header lines as they came (copied from `buf`, where
/// `resp` was parsed, `RawLines`), less Connection (the client's session writes its own) and
/// what `edits` removes, plus Date when missing (as pingora's session adds it) and what
/// `edits` adds.
pub(super) fn write_client_head(
    buf: &[u8],
    resp: &httparse::Response,
    status: StatusCode,
    edits: &ClientEdits,
    out: &mut BytesMut,
) {
    let code = status.as_str().as_bytes();
    let reason = status.canonical_reason().unwrap_or_default().as_bytes();
    let status_line: [&[u8]; 5] = [b"HTTP/1.1 ", code, b" ", reason, b"\r\n"];
    let mut raw = RawLines::new(buf);
    if !raw.lead(&status_line) {
        status_line.iter().for_each(|part| out.put_slice(part));
    }
    let mut dated = false;
    for line in resp.headers.iter() {
        let name = line.name.as_bytes();
        if client_keeps(name, edits) {
            dated |= name.eq_ignore_ascii_case(b"date");
            raw.line(out, name, line.value);
        }
    }
    raw.flush(out);
    finish_head(out, dated, None, edits);
}

/// Whether a server's (or stored) header line goes to an HTTP/1 client: not Connection (the
/// client's session writes its own), not what `edits` removes.
pub(super) fn client_keeps(name: &[u8], edits: &ClientEdits) -> bool {
    !name.eq_ignore_ascii_case(b"connection") && !edits.removes(name)
}

/// The last lines of an HTTP/1 client's head: Date when the response has none (as pingora's
/// session adds it), `extra` unless `edits` removes it, then what `edits` adds.
pub(super) fn finish_head(
    out: &mut BytesMut,
    dated: bool,
    extra: Option<(&[u8], &[u8])>,
    edits: &ClientEdits,
) {
    if !dated {
        let date = pingora::protocols::http::date::get_cached_date();
        put_line(out, b"Date", date.as_bytes());
    }
    let extra = extra.filter(|(name, _)| !edits.removes(name));
    for (name, value) in extra.into_iter().chain(edits.added()) {
        put_line(out, name, value);
    }
}

/// A response head as an HPACK block for an HTTP/2 client (`hpack_head`): `fields` (a
/// server's or a stored header's, names in any case) less what `edits` removes and the
/// connection-specific ones, Date when they have none (as pingora's session adds it), `extra`
/// unless `edits` removes it, then what `edits` adds.
pub(super) fn hpack_block<'f>(
    status: StatusCode,
    capacity: usize,
    fields: impl Iterator<Item = (&'f [u8], &'f [u8])>,
    extra: Option<(&[u8], &[u8])>,
    edits: &ClientEdits,
) -> Bytes {
    let mut block = HpackHead::new(status, capacity);
    for (name, value) in fields {
        if !edits.removes(name) {
            block.field(name, value);
        }
    }
    if !block.is_dated() {
        let date = pingora::protocols::http::date::get_cached_date();
        block.field(b"date", date.as_bytes());
    }
    // `extra` (a hit's Age) is the server's as far as `edits` go: stripped when they strip it.
    if let Some((name, value)) = extra.filter(|(name, _)| !edits.removes(name)) {
        block.field(name, value);
    }
    for (name, value) in edits.added() {
        block.field(name, value);
    }
    block.finish()
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
            crate::pingora_ext::write_head_lines(client, kept, &lines).await
        }
        (ClientHead::Map(map), _) => session.write_response_header(map, framing.body == 0).await,
        // The body, if any, and the stream's end follow, as after a header map.
        (ClientHead::Block(block), ServerSession::H2(client)) => {
            client.write_response_encoded(framing.status, block, false)
        }
        (ClientHead::Lines(_), _) => {
            Error::e_explain(failure::IMPOSSIBLE, "an HTTP/1 head for another protocol")
        }
        (ClientHead::Block(_), _) => {
            Error::e_explain(failure::IMPOSSIBLE, "an HTTP/2 head for another protocol")
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
