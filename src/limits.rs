//! What a client may send: header size and count (431), target length (414), body size (413),
//! and HTTP/1.1 without Host (400). Checked on the parsed request before anything else.
//! pingora's parser has already refused malformed syntax with 400 (bad or overflowing chunk
//! sizes, obs-fold, whitespace before the colon, NUL and control characters, differing
//! Content-Lengths, non-final chunked) and, per RFC 9112 §6.3, reads a request with both
//! Transfer-Encoding and Content-Length as chunked, drops the Content-Length and closes the
//! connection after it, so no second request can hide in the body.

use crate::config::Limits;
use crate::respond::{self, LocalAnswer};
use pingora::http::RequestHeader;

/// The answer for a request over a limit or with ambiguous framing, with the reason to log.
pub fn check(req: &RequestHeader, limits: &Limits) -> Option<(LocalAnswer, &'static str)> {
    let headers = &req.headers;
    if headers.len() > limits.max_headers {
        return Some((respond::HEADERS_TOO_LARGE, "too many request headers"));
    }
    let header_bytes: usize = headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if header_bytes > limits.max_header_bytes {
        return Some((respond::HEADERS_TOO_LARGE, "request headers too large"));
    }
    let target_len = req.raw_path().len();
    if target_len > limits.max_uri_length {
        return Some((respond::URI_TOO_LONG, "request target too long"));
    }
    if req.version == http::Version::HTTP_11
        && !headers.contains_key(http::header::HOST)
        && req.uri.authority().is_none()
    {
        return Some((respond::MISSING_HOST, "HTTP/1.1 request without Host"));
    }
    if limits.max_body_size > 0 {
        let declared = headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
        if declared.is_some_and(|n| n > limits.max_body_size) {
            return Some((respond::BODY_TOO_LARGE, "request body too large"));
        }
    }
    None
}
