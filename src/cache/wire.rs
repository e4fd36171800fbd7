//! A stored response's header as HTTP/1 lines, made once when the response is stored, so that
//! a hit served from the fast path (`proxy::hit`) writes bytes instead of cloning and
//! serializing a header map on every request. Only a response that loop can frame gets one: a
//! final status, one valid Content-Length (none for 204 and 304), and no Transfer-Encoding.

use bytes::{BufMut, Bytes, BytesMut};
use http::{header, StatusCode};
use pingora::http::ResponseHeader;

/// The stored header, written out.
pub struct HitHead {
    pub status: StatusCode,
    /// The status line, then each header line as pingora's session writes them (the names'
    /// case as the server sent them).
    wire: Bytes,
    status_end: usize,
    /// Each header line's name end and line end in `wire`.
    lines: Box<[(usize, usize)]>,
    /// The Content-Length: its value as stored, and as a number.
    pub content_length: Option<(http::HeaderValue, u64)>,
    /// The header has a Date.
    pub dated: bool,
}

impl HitHead {
    /// The lines of `header`, when the fast path can frame its response.
    pub fn of(header: &ResponseHeader) -> Option<HitHead> {
        let headers = &header.headers;
        if header.status.is_informational() || headers.contains_key(header::TRANSFER_ENCODING) {
            return None;
        }
        let mut lengths = headers.get_all(header::CONTENT_LENGTH).iter();
        let content_length = match (lengths.next(), lengths.next()) {
            (None, _) if matches!(header.status.as_u16(), 204 | 304) => None,
            (Some(v), None) => Some((v.clone(), length(v.as_bytes())?)),
            _ => return None,
        };
        let mut wire = BytesMut::with_capacity(64 + 48 * headers.len());
        wire.put_slice(b"HTTP/1.1 ");
        wire.put_slice(header.status.as_str().as_bytes());
        wire.put_u8(b' ');
        wire.put_slice(header.get_reason_phrase().unwrap_or_default().as_bytes());
        wire.put_slice(b"\r\n");
        let status_end = wire.len();
        header.header_to_h1_wire(&mut wire);
        let mut lines = Vec::with_capacity(headers.len());
        let mut start = status_end;
        while let Some(end) = find(&wire[start..], b"\r\n").map(|i| start + i + 2) {
            let name_end = start + find(&wire[start..end], b":")?;
            lines.push((name_end, end));
            start = end;
        }
        Some(HitHead {
            status: header.status,
            wire: wire.freeze(),
            status_end,
            lines: lines.into_boxed_slice(),
            content_length,
            dated: headers.contains_key(header::DATE),
        })
    }

    /// The status line, CRLF included.
    pub fn status_line(&self) -> &[u8] {
        &self.wire[..self.status_end]
    }

    /// Each header line as (name, whole line with its CRLF).
    pub fn lines(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        let mut start = self.status_end;
        self.lines.iter().map(move |&(name_end, end)| {
            let line = (&self.wire[start..name_end], &self.wire[start..end]);
            start = end;
            line
        })
    }

    /// The status line's and the header lines' bytes.
    pub fn wire_len(&self) -> usize {
        self.wire.len()
    }

    /// Each header field as (name, value).
    pub fn fields(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.lines().map(|(name, line)| {
            // `name: value\r\n`, as pingora's `header_to_h1_wire` writes it.
            let value = &line[name.len() + 2..line.len() - 2];
            (name, value)
        })
    }
}

/// A Content-Length value as a number: digits only, as the relay reads it.
fn length(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(status: u16, fields: &[(&str, &str)]) -> ResponseHeader {
        let mut h = ResponseHeader::build(status, None).unwrap();
        for (n, v) in fields {
            h.append_header(n.to_string(), *v).unwrap();
        }
        h
    }

    #[test]
    fn lines_keep_each_field_and_its_case() {
        let h = header(
            200,
            &[("Content-Length", "5"), ("X-Two", "a"), ("x-two", "b")],
        );
        let head = HitHead::of(&h).unwrap();
        assert_eq!(head.status_line(), b"HTTP/1.1 200 OK\r\n");
        let lines: Vec<_> = head.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(
            lines[0],
            (&b"Content-Length"[..], &b"Content-Length: 5\r\n"[..])
        );
        assert_eq!(lines[1].1, b"X-Two: a\r\n");
        assert_eq!(lines[2].1, b"x-two: b\r\n");
        assert_eq!(head.content_length.as_ref().map(|c| c.1), Some(5));
        assert!(!head.dated);
    }

    #[test]
    fn responses_it_cannot_frame_get_none() {
        assert!(HitHead::of(&header(200, &[])).is_none(), "no length");
        let two = [("Content-Length", "1"), ("Content-Length", "1")];
        assert!(HitHead::of(&header(200, &two)).is_none());
        assert!(HitHead::of(&header(200, &[("Content-Length", "+1")])).is_none());
        let chunked = [("Content-Length", "1"), ("Transfer-Encoding", "chunked")];
        assert!(HitHead::of(&header(200, &chunked)).is_none());
        let empty = HitHead::of(&header(204, &[("Date", "x")])).unwrap();
        assert!(empty.content_length.is_none() && empty.dated);
    }
}
