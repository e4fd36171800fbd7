//! The cache key: scheme, host (URI authority first, then Host: over HTTP/2 there is no Host),
//! path and query, with the route's query rules applied; and the Vary variance, with
//! Accept-Encoding normalised so that a hundred browser spellings make three variants.

use crate::config::RouteCache;
use http::Uri;
use pingora::cache::key::HashBinary;
use pingora::cache::{CacheMeta, VarianceBuilder};
use pingora::http::RequestHeader;

/// The primary key text: `scheme \n host \n path?query`, newline-separated so no two
/// (host, path) pairs can produce the same bytes.
pub fn primary(https: bool, host: &str, uri: &Uri, rules: &RouteCache) -> String {
    let scheme = if https { "https" } else { "http" };
    let path = uri.path();
    let mut key = String::with_capacity(scheme.len() + host.len() + path.len() + 32);
    key.push_str(scheme);
    key.push('\n');
    key.push_str(host);
    key.push('\n');
    key.push_str(path);
    if let Some(q) = uri.query().filter(|_| !rules.ignore_query) {
        let mut first = true;
        for pair in q.split('&') {
            let name = pair.split_once('=').map_or(pair, |(n, _)| n);
            if pair.is_empty() || rules.ignore_params.iter().any(|p| p == name) {
                continue;
            }
            key.push(if first { '?' } else { '&' });
            key.push_str(pair);
            first = false;
        }
    }
    key
}

/// The host part of the key: lower-case, without port or trailing dot.
pub fn host(raw: &str) -> String {
    crate::routing::host_without_port(raw)
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

/// Accept-Encoding reduced to what we store separately: br, gzip or identity.
pub fn normalize_accept_encoding(value: &[u8]) -> &'static str {
    let v = String::from_utf8_lossy(value).to_ascii_lowercase();
    let accepts = |coding: &str| {
        v.split(',').any(|part| {
            let mut it = part.split(';');
            let name = it.next().unwrap_or("").trim();
            let refused = it.any(|p| {
                let p = p.trim();
                p == "q=0" || p == "q=0.0" || p == "q=0.00" || p == "q=0.000"
            });
            name == coding && !refused
        })
    };
    if accepts("br") {
        "br"
    } else if accepts("gzip") {
        "gzip"
    } else {
        "identity"
    }
}

/// The variance of a request against a stored response's `Vary` (None: no variance).
/// `decodes`: the route decodes a stored coding the client does not take
/// (`proxy::compression`), so Accept-Encoding does not split the stored response into
/// variants when its coding is one gatehouse reads.
pub fn variance(meta: &CacheMeta, req: &RequestHeader, decodes: bool) -> Option<HashBinary> {
    variance_of(meta.headers(), req, decodes)
}

/// `variance`, from the stored response's header fields.
pub fn variance_of(
    stored: &http::HeaderMap,
    req: &RequestHeader,
    decodes: bool,
) -> Option<HashBinary> {
    let one_copy = decodes
        && crate::compress::response::coding(stored) != crate::compress::response::Coding::Other;
    let mut builder = VarianceBuilder::new();
    for vary in stored.get_all(http::header::VARY) {
        let Ok(list) = vary.to_str() else { continue };
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let name = name.to_ascii_lowercase();
            if one_copy && name == "accept-encoding" {
                continue;
            }
            let value: Vec<u8> = if name == "accept-encoding" {
                let raw = req.headers.get(http::header::ACCEPT_ENCODING);
                normalize_accept_encoding(raw.map_or(&[][..], |v| v.as_bytes()))
                    .as_bytes()
                    .to_vec()
            } else {
                req.headers
                    .get_all(name.as_str())
                    .iter()
                    .flat_map(|v| v.as_bytes().iter().copied().chain(*b"\n"))
                    .collect()
            };
            builder.add_owned_name_value(name, value);
        }
    }
    builder.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> RouteCache {
        RouteCache {
            default_ttl: Default::default(),
            max_ttl: Default::default(),
            override_ttl: None,
            grace: Default::default(),
            stale_if_error: Default::default(),
            keep: Default::default(),
            min_uses: 1,
            min_uses_window: Default::default(),
            ignore_query: false,
            ignore_params: vec!["utm_source".into()],
            ignore_cookies: vec![],
        }
    }

    #[test]
    fn keys_separate_hosts_and_drop_ignored_params() {
        let uri: Uri = "/a?x=1&utm_source=mail&y".parse().unwrap();
        assert_eq!(primary(false, "h", &uri, &rules()), "http\nh\n/a?x=1&y");
        let mut r = rules();
        r.ignore_query = true;
        assert_eq!(primary(true, "h", &uri, &r), "https\nh\n/a");
        // "a.test" + "/x" and "a.tes" + "t/x" cannot collide.
        let a = primary(false, "a.test", &"/x".parse().unwrap(), &rules());
        let b = primary(false, "a.tes", &"t/x".parse().unwrap_or_default(), &rules());
        assert_ne!(a, b);
        assert_eq!(host("WWW.Example.com.:8080"), "www.example.com");
    }

    #[test]
    fn accept_encoding_is_normalised() {
        assert_eq!(normalize_accept_encoding(b"gzip, deflate, br"), "br");
        assert_eq!(normalize_accept_encoding(b"gzip;q=1.0, br;q=0"), "gzip");
        assert_eq!(normalize_accept_encoding(b"deflate"), "identity");
        assert_eq!(normalize_accept_encoding(b""), "identity");
    }
}
