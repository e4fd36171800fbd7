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
    pub fn field(&mut self, name: &[u8], value: &[u8]) {
        let mut lower = [0u8; LONGEST_STATIC_NAME];
        let index = match lower.get_mut(..name.len()) {
            Some(lower) => {
                for (l, n) in lower.iter_mut().zip(name) {
                    *l = n.to_ascii_lowercase();
                }
                if is_connection_specific(lower) {
                    return;
                }
                self.dated |= lower == b"date";
                name_index(lower)
            }
            // Longer than any name in the static table or any connection-specific one.
            None => None,
        };
        match index {
            Some(index) => put_int(&mut self.out, index, 4, 0x00),
            None => {
                self.out.put_u8(0x00);
                put_int(&mut self.out, name.len(), 7, 0x00);
                self.out.extend(name.iter().map(|b| b.to_ascii_lowercase()));
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

/// The longest name this module compares: the static table's (`access-control-allow-origin`)
/// and the connection-specific ones.
const LONGEST_STATIC_NAME: usize = 27;

/// Fields HTTP/2 forbids in a message (RFC 9113 §8.2.2); TE, a request field, says nothing
/// in a response either.
fn is_connection_specific(lower: &[u8]) -> bool {
    matches!(
        lower,
        b"connection"
            | b"keep-alive"
            | b"proxy-connection"
            | b"transfer-encoding"
            | b"upgrade"
            | b"te"
    )
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

/// The static table's entry for a (lowercase) name, for the names a response may carry
/// (RFC 7541 Appendix A; request-only names are written as literals).
fn name_index(lower: &[u8]) -> Option<usize> {
    Some(match lower {
        b"accept-ranges" => 18,
        b"access-control-allow-origin" => 20,
        b"age" => 21,
        b"allow" => 22,
        b"cache-control" => 24,
        b"content-disposition" => 25,
        b"content-encoding" => 26,
        b"content-language" => 27,
        b"content-length" => 28,
        b"content-location" => 29,
        b"content-range" => 30,
        b"content-type" => 31,
        b"date" => 33,
        b"etag" => 34,
        b"expires" => 36,
        b"last-modified" => 44,
        b"link" => 45,
        b"location" => 46,
        b"proxy-authenticate" => 48,
        b"refresh" => 52,
        b"retry-after" => 53,
        b"server" => 54,
        b"set-cookie" => 55,
        b"strict-transport-security" => 56,
        b"vary" => 59,
        b"via" => 60,
        b"www-authenticate" => 61,
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
}
