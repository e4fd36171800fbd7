//! Which responses may be transformed, and how their header changes when they are.
//!
//! Never compressed: a coded response (its coding is passed as it is, or decoded for a client
//! that does not take it), `Cache-Control: no-transform`, a 206 or any `Content-Range`, 1xx,
//! 204 and 304, a type not in the route's `types`, a body shorter than `min_size`.

use super::{Encoding, Settings};
use http::header;
use pingora::http::ResponseHeader;

/// A response's Content-Encoding, as far as gatehouse can act on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    /// None, or `identity`.
    Identity,
    /// One coding gatehouse reads.
    Coded(Encoding),
    /// Several codings, or one gatehouse does not read (`deflate`, `compress`...).
    Other,
}

pub fn coding(headers: &http::HeaderMap) -> Coding {
    let mut values = headers.get_all(header::CONTENT_ENCODING).iter();
    let Some(first) = values.next() else {
        return Coding::Identity;
    };
    let v = first.as_bytes().trim_ascii();
    if values.next().is_some() || v.contains(&b',') {
        return Coding::Other;
    }
    if v.is_empty() || v.eq_ignore_ascii_case(b"identity") {
        return Coding::Identity;
    }
    Encoding::from_token(v).map_or(Coding::Other, Coding::Coded)
}

/// Whether an unencoded response may be compressed (whether the client accepts a coding is
/// the caller's). `small_too`: a body under `min_size` is compressed all the same (the client
/// refused identity).
pub fn compressible(resp: &ResponseHeader, settings: &Settings, small_too: bool) -> bool {
    let status = resp.status.as_u16();
    if resp.status.is_informational() || matches!(status, 204 | 206 | 304) {
        return false;
    }
    let h = &resp.headers;
    if h.contains_key(header::CONTENT_RANGE) || coding(h) != Coding::Identity {
        return false;
    }
    if no_transform(h) {
        return false;
    }
    let Some(ctype) = h.get(header::CONTENT_TYPE) else {
        return false;
    };
    if !settings.compresses_type(ctype.as_bytes()) {
        return false;
    }
    let length = h
        .get(header::CONTENT_LENGTH)
        .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match length {
        Some(0) => false,
        Some(n) => small_too || n >= settings.min_size,
        None => true, // streamed: its length is not known ahead
    }
}

/// Whether Cache-Control says `no-transform` (RFC 9111 §5.2.2.6).
pub fn no_transform(h: &http::HeaderMap) -> bool {
    h.get_all(header::CACHE_CONTROL).iter().any(|v| {
        v.as_bytes()
            .split(|b| *b == b',')
            .any(|d| d.trim_ascii().eq_ignore_ascii_case(b"no-transform"))
    })
}

/// The header of a response whose body is now coded in `to` (Some) or decoded (None): the
/// coding set or removed, the length gone (the body is streamed), ranges no longer offered,
/// a strong ETag weakened (RFC 9110 §8.8.3: the bytes differ, the meaning does not), and
/// Vary naming Accept-Encoding.
pub fn transformed(resp: &mut ResponseHeader, to: Option<Encoding>) {
    match to {
        Some(e) => {
            let _ = resp.insert_header(header::CONTENT_ENCODING, e.token());
        }
        None => {
            resp.remove_header(&header::CONTENT_ENCODING);
        }
    }
    resp.remove_header(&header::CONTENT_LENGTH);
    resp.remove_header(&header::ACCEPT_RANGES);
    if let Some(weak) = resp.headers.get(header::ETAG).and_then(weakened) {
        let _ = resp.insert_header(header::ETAG, weak);
    }
    vary_on_accept_encoding(resp);
}

/// A strong entity tag made weak (`"x"` → `W/"x"`); None when it is weak already.
pub fn weakened(tag: &http::HeaderValue) -> Option<http::HeaderValue> {
    let t = tag.as_bytes();
    if !t.starts_with(b"\"") {
        return None;
    }
    let mut out = Vec::with_capacity(t.len() + 2);
    out.extend_from_slice(b"W/");
    out.extend_from_slice(t);
    http::HeaderValue::from_bytes(&out).ok()
}

/// Adds `Accept-Encoding` to Vary unless Vary is `*` or names it already.
pub fn vary_on_accept_encoding(resp: &mut ResponseHeader) {
    let mut names = resp
        .headers
        .get_all(header::VARY)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b','))
        .map(|n| n.trim_ascii());
    if names.any(|n| n == b"*" || n.eq_ignore_ascii_case(b"accept-encoding")) {
        return;
    }
    let _ = resp.append_header(header::VARY, "Accept-Encoding");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            types: vec!["text/*".into(), "application/json".into()],
            min_size: 100,
            levels: [6, 4, 3],
            preference: vec![Encoding::Gzip],
            cache_encoding: Encoding::Gzip,
        }
    }

    fn resp(status: u16, fields: &[(&str, &str)]) -> ResponseHeader {
        let mut r = ResponseHeader::build(status, None).unwrap();
        for (n, v) in fields {
            r.append_header(n.to_string(), *v).unwrap();
        }
        r
    }

    #[test]
    fn what_is_never_compressed() {
        let s = settings();
        let html = ("content-type", "text/html");
        let long = ("content-length", "500");
        assert!(compressible(&resp(200, &[html, long]), &s, false));
        assert!(compressible(&resp(404, &[html]), &s, false));
        assert!(!compressible(&resp(206, &[html, long]), &s, false));
        assert!(!compressible(&resp(304, &[html]), &s, false));
        assert!(!compressible(&resp(204, &[html]), &s, false));
        let ranged = ("content-range", "bytes 0-9/500");
        assert!(!compressible(&resp(200, &[html, long, ranged]), &s, false));
        let gz = ("content-encoding", "gzip");
        assert!(!compressible(&resp(200, &[html, long, gz]), &s, false));
        let nt = ("cache-control", "public, No-Transform");
        assert!(!compressible(&resp(200, &[html, long, nt]), &s, false));
        assert!(!compressible(
            &resp(200, &[("content-type", "image/png"), long]),
            &s,
            false
        ));
        assert!(!compressible(&resp(200, &[long]), &s, false));
        let short = ("content-length", "99");
        assert!(!compressible(&resp(200, &[html, short]), &s, false));
        assert!(compressible(&resp(200, &[html, short]), &s, true));
    }

    #[test]
    fn codings_read() {
        let c = |v: &str| coding(&resp(200, &[("content-encoding", v)]).headers);
        assert_eq!(c("GZIP"), Coding::Coded(Encoding::Gzip));
        assert_eq!(c("identity"), Coding::Identity);
        assert_eq!(c("gzip, br"), Coding::Other);
        assert_eq!(c("deflate"), Coding::Other);
        assert_eq!(coding(&resp(200, &[]).headers), Coding::Identity);
    }

    #[test]
    fn a_transformed_header() {
        let mut r = resp(
            200,
            &[
                ("content-length", "500"),
                ("etag", "\"v1\""),
                ("vary", "Cookie"),
                ("accept-ranges", "bytes"),
            ],
        );
        transformed(&mut r, Some(Encoding::Br));
        let h = &r.headers;
        assert_eq!(h["content-encoding"], "br");
        assert_eq!(h["etag"], "W/\"v1\"");
        assert!(h.get("content-length").is_none() && h.get("accept-ranges").is_none());
        let vary: Vec<_> = h.get_all("vary").iter().collect();
        assert_eq!(vary, ["Cookie", "Accept-Encoding"]);
        transformed(&mut r, None);
        assert!(r.headers.get("content-encoding").is_none());
        assert_eq!(r.headers["etag"], "W/\"v1\"");
        assert_eq!(r.headers.get_all("vary").iter().count(), 2);
    }
}
