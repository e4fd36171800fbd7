//! Compression at the edge: which content codings a client accepts (`negotiate`), which
//! responses may be transformed and how their header changes (`response`), and the streaming
//! coders over flate2 (zlib-ng), brotli and zstd (`codec`). What a route allows is its
//! `Settings`, compiled from `[compression]` and the route's own table at config load.
//!
//! The proxy (`proxy::compression`) uses these at two points: before the cache, a response
//! the cache will store is compressed once in the route's `cache_encoding`; after it, each
//! client gets what it accepts: an identity response compressed in its best coding, a stored
//! coding it does not accept decoded on the fly (Varnish's `http_gzip_support`).

pub mod codec;
pub mod negotiate;
pub mod response;

pub use codec::{Coder, Op};
pub use negotiate::Accepted;

/// The content codings gatehouse writes and reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Gzip,
    Br,
    Zstd,
}

impl Encoding {
    pub const ALL: [Encoding; 3] = [Encoding::Gzip, Encoding::Br, Encoding::Zstd];

    /// Its token in Accept-Encoding and Content-Encoding.
    pub fn token(self) -> &'static str {
        match self {
            Encoding::Gzip => "gzip",
            Encoding::Br => "br",
            Encoding::Zstd => "zstd",
        }
    }

    /// The coding a token names (case-insensitive; `x-gzip` is gzip, RFC 9110 §8.4.1.3).
    pub fn from_token(token: &[u8]) -> Option<Encoding> {
        let t = token.trim_ascii();
        if t.eq_ignore_ascii_case(b"gzip") || t.eq_ignore_ascii_case(b"x-gzip") {
            Some(Encoding::Gzip)
        } else if t.eq_ignore_ascii_case(b"br") {
            Some(Encoding::Br)
        } else if t.eq_ignore_ascii_case(b"zstd") {
            Some(Encoding::Zstd)
        } else {
            None
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// What a route's compression does (`[compression]`, overridden by `[routes.compression]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Media types compressed: exact (`application/json`), a family (`text/*`) or `*`.
    pub types: Vec<String>,
    /// Bodies with a known length under this are sent as they are.
    pub min_size: u64,
    /// Level per coding, `Encoding` order.
    pub levels: [u32; 3],
    /// The codings offered, best first: a client's highest q-value wins, ties go to the
    /// earlier one here.
    pub preference: Vec<Encoding>,
    /// The coding a cacheable response is stored in.
    pub cache_encoding: Encoding,
}

impl Settings {
    pub const DEFAULT_TYPES: [&'static str; 16] = [
        "text/*",
        "application/json",
        "application/javascript",
        "application/x-javascript",
        "application/xml",
        "application/xhtml+xml",
        "application/rss+xml",
        "application/atom+xml",
        "application/ld+json",
        "application/manifest+json",
        "application/geo+json",
        "application/wasm",
        "image/svg+xml",
        "image/x-icon",
        "font/ttf",
        "font/otf",
    ];

    /// Whether `media_type` (a Content-Type's value) is one to compress. Server-sent events
    /// never are: each event must reach the client as it is written.
    pub fn compresses_type(&self, content_type: &[u8]) -> bool {
        let essence = content_type
            .split(|b| *b == b';')
            .next()
            .unwrap_or_default()
            .trim_ascii();
        if essence.eq_ignore_ascii_case(b"text/event-stream") {
            return false;
        }
        self.types.iter().any(|t| {
            let t = t.as_bytes();
            match t.strip_suffix(b"*") {
                Some(b"") => true,
                Some(family) => {
                    essence.len() > family.len()
                        && essence[..family.len()].eq_ignore_ascii_case(family)
                }
                None => essence.eq_ignore_ascii_case(t),
            }
        })
    }

    pub fn level(&self, e: Encoding) -> u32 {
        self.levels[e.index()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            types: Settings::DEFAULT_TYPES
                .iter()
                .map(|s| s.to_string())
                .collect(),
            min_size: 256,
            levels: [6, 4, 3],
            preference: vec![Encoding::Zstd, Encoding::Br, Encoding::Gzip],
            cache_encoding: Encoding::Gzip,
        }
    }

    #[test]
    fn types_match_by_family_and_exactly() {
        let s = settings();
        assert!(s.compresses_type(b"text/html; charset=utf-8"));
        assert!(s.compresses_type(b"Application/JSON"));
        assert!(!s.compresses_type(b"application/jsonp"));
        assert!(!s.compresses_type(b"image/png"));
        assert!(!s.compresses_type(b"text/event-stream"));
        assert!(!s.compresses_type(b"text/"));
        assert!(!s.compresses_type(b""));
    }
}
