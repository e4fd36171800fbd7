//! The hop-by-hop fields (RFC 9110 §7.6.1, RFC 9112 §9.6): they describe one connection, so a
//! request never carries them on to a server and a stored response never keeps them. One list
//! for every path: the direct exchange's request head (`proxy::forward`) and the cache's stored
//! header (`cache::policy`). It is the list pingora's path strips from each request before
//! `upstream_request_filter` runs (pingora-proxy's `strip_standard_hop_by_hop_headers`), so
//! both paths send the same fields (`tests/e2e/wire.rs`, `tests/e2e/differential.rs`).

use http::header::{self, HeaderName};

/// Every hop-by-hop field name, lowercase.
pub const FIELDS: [HeaderName; 10] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    HeaderName::from_static("http2-settings"),
];

/// Whether a field of this name (any case) is hop-by-hop. Asked for every header line a
/// request sends on: the names of `FIELDS` by length, so that most names are told apart by
/// their length alone.
pub fn is(name: &[u8]) -> bool {
    let candidates: &[&str] = match name.len() {
        2 => &["te"],
        7 => &["trailer", "upgrade"],
        10 => &["connection", "keep-alive"],
        14 => &["http2-settings"],
        16 => &["proxy-connection"],
        17 => &["transfer-encoding"],
        18 => &["proxy-authenticate"],
        19 => &["proxy-authorization"],
        _ => return false,
    };
    candidates
        .iter()
        .any(|c| c.as_bytes().eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_field_and_only_those_are_hop_by_hop() {
        for f in &super::FIELDS {
            assert!(super::is(f.as_str().as_bytes()), "{f}");
        }
        let others = [
            "host",
            "cookie",
            "te-x",
            "upgrades",
            "connections",
            "x-proxy-connection",
        ];
        for name in others {
            assert!(!super::is(name.as_bytes()), "{name}");
        }
    }

    #[test]
    fn names_are_matched_in_any_case() {
        assert!(super::is(b"Proxy-Authenticate"));
        assert!(super::is(b"KEEP-ALIVE"));
        assert!(!super::is(b"proxy-authenticated"));
        assert!(!super::is(b"cookie"));
    }
}
