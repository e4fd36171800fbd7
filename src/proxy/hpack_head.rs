//! A response head as an HTTP/2 client takes it: one HPACK header block (RFC 7541) written
//! straight from HTTP/1 header lines, sent as is by the client's HTTP/2 session (vendored
//! patch 25) instead of a header map that h2 would encode again.
//!
//! The block stands alone, as HAProxy's encoder writes them: names from the static table where
//! it has them, every field a literal without indexing, no Huffman coding. It neither reads nor
//! changes the connection's dynamic table, so it decodes the same whatever the connection sent
//! before it. Names are lowercased; the connection-specific fields HTTP/2 forbids (RFC 9113
//! §8.2.2) are left out.

use bytes::{BufMut, Bytes, BytesMut};
use http::StatusCode;

/// An HPACK header block being written, `:status` first.
pub(super) struct HpackHead {
    out: BytesMut,
    dated: bool,
}

impl HpackHead {
    /// A block for `status`, with room for about `capacity` bytes of fields.
    pub fn new(status: StatusCode, capacity: usize) -> Self {
        let mut out = BytesMut::with_capacity(capacity + 8);
        match status_index(status) {
            Some(index) => out.put_u8(0x80 | index),
            None => {
                // Literal without indexing, the name `:status` (static entry 8).
                out.put_u8(0x08);
                put_str(&mut out, status.as_str().as_bytes());
            }
        }
        HpackHead { out, dated: false }
    }

    /// Adds a field from a header line (any case): nothing for a connection-specific one.
    /// `name` is a token and `value` has no CR, LF or NUL (httparse's, or a stored header's).
    pub fn field(&mut self, name: &[u8], value: &[u8]) {
        debug_assert!(http::HeaderName::from_bytes(name).is_ok(), "{name:?}");
        debug_assert!(http::HeaderValue::from_bytes(value).is_ok(), "{value:?}");
        let mut buf = [0u8; SHORT_NAME];
        match buf.get_mut(..name.len()) {
            Some(lower) => {
                for (l, n) in lower.iter_mut().zip(name) {
                    *l = n.to_ascii_lowercase();
                }
                match classify(lower) {
                    Name::ConnectionSpecific => return,
                    Name::Static(index) => {
                        self.dated |= index == DATE;
                        put_int(&mut self.out, index, 4, 0x00);
                    }
                    Name::Other => {
                        self.out.put_u8(0x00);
                        put_str(&mut self.out, lower);
                    }
                }
            }
            // Longer than any name `classify` knows.
            None => {
                self.out.put_u8(0x00);
                put_int(&mut self.out, name.len(), 7, 0x00);
                self.out.reserve(name.len());
                for b in name {
                    self.out.put_u8(b.to_ascii_lowercase());
                }
            }
        }
        put_str(&mut self.out, value);
    }

    /// Whether a Date field was added.
    pub fn is_dated(&self) -> bool {
        self.dated
    }

    /// The finished block.
    pub fn finish(self) -> Bytes {
        self.out.freeze()
    }
}

/// Names up to this long are lowercased on the stack; `classify` knows no longer one.
const SHORT_NAME: usize = 32;

/// The static table's entry for `date`.
const DATE: usize = 33;

/// What a (lowercase) field name is to HTTP/2.
enum Name {
    /// Forbidden in an HTTP/2 message (RFC 9113 §8.2.2); TE, a request field, says nothing in
    /// a response either.
    ConnectionSpecific,
    /// In the static table (RFC 7541 Appendix A), at this entry.
    Static(usize),
    /// Anything else: a literal name.
    Other,
}

/// The name's class, by its length first: the static table's names a response may carry (its
/// request-only names are written as literals) and the connection-specific ones.
fn classify(lower: &[u8]) -> Name {
    use Name::{ConnectionSpecific as Cs, Static as S};
    match (lower.len(), lower) {
        (2, b"te") => Cs,
        (3, b"age") => S(21),
        (3, b"via") => S(60),
        (4, b"date") => S(DATE),
        (4, b"etag") => S(34),
        (4, b"link") => S(45),
        (4, b"vary") => S(59),
        (5, b"allow") => S(22),
        (6, b"server") => S(54),
        (7, b"expires") => S(36),
        (7, b"refresh") => S(52),
        (7, b"upgrade") => Cs,
        (8, b"location") => S(46),
        (10, b"connection") => Cs,
        (10, b"keep-alive") => Cs,
        (10, b"set-cookie") => S(55),
        (11, b"retry-after") => S(53),
        (12, b"content-type") => S(31),
        (13, b"accept-ranges") => S(18),
        (13, b"cache-control") => S(24),
        (13, b"content-range") => S(30),
        (13, b"last-modified") => S(44),
        (14, b"content-length") => S(28),
        (16, b"content-encoding") => S(26),
        (16, b"content-language") => S(27),
        (16, b"content-location") => S(29),
        (16, b"proxy-connection") => Cs,
        (16, b"www-authenticate") => S(61),
        (17, b"transfer-encoding") => Cs,
        (18, b"proxy-authenticate") => S(48),
        (19, b"content-disposition") => S(25),
        (25, b"strict-transport-security") => S(56),
        (27, b"access-control-allow-origin") => S(20),
        _ => Name::Other,
    }
}

/// The static table's entry for a status it holds whole (RFC 7541 Appendix A).
fn status_index(status: StatusCode) -> Option<u8> {
    Some(match status.as_u16() {
        200 => 8,
        204 => 9,
        206 => 10,
        304 => 11,
        400 => 12,
        404 => 13,
        500 => 14,
        _ => return None,
    })
}

/// A string literal, not Huffman-coded (RFC 7541 §5.2).
fn put_str(out: &mut BytesMut, bytes: &[u8]) {
    put_int(out, bytes.len(), 7, 0x00);
    out.put_slice(bytes);
}

/// An integer with an N-bit prefix (RFC 7541 §5.1), `first` holding the bits above it.
fn put_int(out: &mut BytesMut, value: usize, prefix_bits: u32, first: u8) {
    let max = (1usize << prefix_bits) - 1;
    if value < max {
        out.put_u8(first | value as u8);
        return;
    }
    out.put_u8(first | max as u8);
    let mut rest = value - max;
    while rest >= 0x80 {
        out.put_u8(0x80 | (rest & 0x7f) as u8);
        rest >>= 7;
    }
    out.put_u8(rest as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_use_their_prefix_then_continuation_bytes() {
        // RFC 7541 C.1.1–C.1.3.
        let mut out = BytesMut::new();
        put_int(&mut out, 10, 5, 0);
        put_int(&mut out, 1337, 5, 0);
        put_int(&mut out, 42, 8, 0);
        assert_eq!(&out[..], &[0x0a, 0x1f, 0x9a, 0x0a, 0x2a]);
    }

    #[test]
    fn static_names_and_literals() {
        let mut head = HpackHead::new(StatusCode::OK, 64);
        head.field(b"Content-Length", b"5");
        head.field(b"X-A", b"b");
        head.field(b"Connection", b"close");
        head.field(b"Access-Control-Allow-Origin", b"*");
        head.field(b"access-control-allow-origin-x", b"");
        let block = head.finish();
        let mut want = vec![
            0x88,
            0x0f,
            28 - 15,
            1,
            b'5',
            0x00,
            3,
            b'x',
            b'-',
            b'a',
            1,
            b'b',
        ];
        want.extend([0x0f, 20 - 15, 1, b'*', 0x00, 29]);
        want.extend(b"access-control-allow-origin-x");
        want.push(0);
        assert_eq!(&block[..], &want[..]);
    }

    #[test]
    fn a_status_outside_the_table_is_a_literal() {
        let head = HpackHead::new(StatusCode::IM_A_TEAPOT, 0);
        assert_eq!(&head.finish()[..], &[0x08, 3, b'4', b'1', b'8']);
    }

    /// RFC 7541 Appendix A's names, entries 1 to 61.
    const STATIC_NAMES: [&str; 61] = [
        ":authority",
        ":method",
        ":method",
        ":path",
        ":path",
        ":scheme",
        ":scheme",
        ":status",
        ":status",
        ":status",
        ":status",
        ":status",
        ":status",
        ":status",
        "accept-charset",
        "accept-encoding",
        "accept-language",
        "accept-ranges",
        "accept",
        "access-control-allow-origin",
        "age",
        "allow",
        "authorization",
        "cache-control",
        "content-disposition",
        "content-encoding",
        "content-language",
        "content-length",
        "content-location",
        "content-range",
        "content-type",
        "cookie",
        "date",
        "etag",
        "expect",
        "expires",
        "from",
        "host",
        "if-match",
        "if-modified-since",
        "if-none-match",
        "if-range",
        "if-unmodified-since",
        "last-modified",
        "link",
        "location",
        "max-forwards",
        "proxy-authenticate",
        "proxy-authorization",
        "range",
        "referer",
        "refresh",
        "retry-after",
        "server",
        "set-cookie",
        "strict-transport-security",
        "transfer-encoding",
        "user-agent",
        "vary",
        "via",
        "www-authenticate",
    ];

    #[test]
    fn every_static_name_known_points_at_its_entry() {
        let mut known = 0;
        for name in STATIC_NAMES {
            if let Name::Static(index) = classify(name.as_bytes()) {
                assert_eq!(STATIC_NAMES[index - 1], name);
                known += 1;
            }
        }
        assert_eq!(known, 27, "the response names");
    }

    #[test]
    fn a_long_name_is_a_lowercased_literal() {
        let name = format!("X-{}", "N".repeat(38));
        let mut head = HpackHead::new(StatusCode::OK, 0);
        head.field(name.as_bytes(), b"v");
        let mut want = vec![0x88, 0x00, 40];
        want.extend(name.to_ascii_lowercase().bytes());
        want.extend([1, b'v']);
        assert_eq!(&head.finish()[..], &want[..]);
    }
}
