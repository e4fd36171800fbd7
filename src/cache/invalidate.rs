//! Invalidation by writes (RFC 9111 §4.4): a non-error response to an unsafe request (POST,
//! PUT, DELETE, PATCH or any method not known to be safe) invalidates the stored responses of
//! its target URI and of the same-origin URIs in its `Location` and `Content-Location`, every
//! Vary variant, without scanning the cache.

use super::Cache;
use crate::config::RouteCache;
use http::{HeaderMap, Method, Uri};
use pingora::cache::key::CacheHashKey;

/// Whether a request with this method may change what the server would answer.
pub fn is_unsafe(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

impl Cache {
    /// Applies §4.4 after a response with `status` to a write on `host` + `target`.
    pub fn invalidate_after_write(
        &self,
        https: bool,
        host: &str,
        target: &Uri,
        status: u16,
        response: &HeaderMap,
        rules: &RouteCache,
    ) {
        if !(200..400).contains(&status) {
            return;
        }
        self.invalidate_uri(https, host, target, rules);
        for field in [http::header::LOCATION, http::header::CONTENT_LOCATION] {
            let Some(uri) = response
                .get(field)
                .and_then(|v| same_origin(v, https, host))
            else {
                continue;
            };
            self.invalidate_uri(https, host, &uri, rules);
        }
    }

    fn invalidate_uri(&self, https: bool, host: &str, uri: &Uri, rules: &RouteCache) {
        let key = Cache::key(https, host, uri, rules);
        self.tombstones.invalidated_primary(key.primary_bin());
        self.storage.invalidate_primary(key.primary_bin());
    }
}

/// The path and query of a `Location`-like value when it names the request's own origin
/// (relative, or absolute with the same scheme and host).
fn same_origin(v: &http::HeaderValue, https: bool, host: &str) -> Option<Uri> {
    let uri: Uri = v.to_str().ok()?.trim().parse().ok()?;
    if let Some(authority) = uri.authority() {
        let scheme_ok = uri.scheme_str() == Some(if https { "https" } else { "http" });
        if !scheme_ok || !authority.as_str().eq_ignore_ascii_case(host) {
            return None;
        }
    } else if !uri.path().starts_with('/') {
        return None; // a path relative to the target: not resolved
    }
    let pq = uri.path_and_query()?.clone();
    Uri::builder().path_and_query(pq).build().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_same_origin_locations_count() {
        let v = |s: &str| http::HeaderValue::from_str(s).unwrap();
        let pq = |u: Option<Uri>| u.map(|u| u.to_string());
        assert_eq!(
            pq(same_origin(&v("/a?b=1"), false, "x.test")),
            Some("/a?b=1".into())
        );
        assert_eq!(
            pq(same_origin(&v("http://X.test/c"), false, "x.test")),
            Some("/c".into())
        );
        assert_eq!(
            pq(same_origin(&v("https://x.test/c"), false, "x.test")),
            None
        );
        assert_eq!(
            pq(same_origin(&v("http://other.test/c"), false, "x.test")),
            None
        );
        assert!(is_unsafe(&Method::from_bytes(b"M-SEARCH").unwrap()));
        assert!(!is_unsafe(&Method::HEAD));
    }
}
