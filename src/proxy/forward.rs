//! What a request carries to its server besides the client's own headers: X-Forwarded-For,
//! -Proto and -Host, a Host header for HTTP/2 clients, the request id, and Upgrade only where
//! the route allows it. Also the facts about the client request those are made from.

use super::ctx::Ctx;
use http::{HeaderName, HeaderValue};
use pingora::http::RequestHeader;
use pingora::proxy::Session;
use pingora::Result;

// Parsed once, here: with vendored patch 6, pingora-http inserts a `HeaderName` without
// parsing it again (a name given as a string is parsed on every insert).
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// The host a request names: URI authority first (absolute-form, HTTP/2), then Host.
pub fn request_host(req: &RequestHeader) -> Option<&str> {
    req.uri
        .authority()
        .map(|a| a.as_str())
        .or_else(|| req.headers.get(http::header::HOST)?.to_str().ok())
}

/// `request_host` as a header value: the Host header's own when it is the source.
fn request_host_value(req: &RequestHeader) -> Option<HeaderValue> {
    match req.uri.authority() {
        Some(a) => HeaderValue::from_str(a.as_str()).ok(),
        None => req
            .headers
            .get(http::header::HOST)
            .filter(|v| v.to_str().is_ok())
            .cloned(),
    }
}

/// The client's IP address (the TCP peer; gatehouse is the edge).
pub fn client_ip(session: &Session) -> Option<std::net::IpAddr> {
    session
        .client_addr()
        .and_then(|a| a.as_inet())
        .map(|a| a.ip())
}

/// Adds the forwarding headers to the request going upstream.
pub fn upstream_headers(session: &Session, upstream: &mut RequestHeader, ctx: &Ctx) -> Result<()> {
    let route_allows_upgrade = ctx
        .routed
        .is_some_and(|r| ctx.rt.config.routes[r.route].allow_upgrade);
    if !route_allows_upgrade && upstream.headers.contains_key(http::header::UPGRADE) {
        // Not allowed on this route: proxied as a plain request (nginx's default).
        upstream.remove_header(&http::header::UPGRADE);
        upstream.remove_header(&http::header::CONNECTION);
    }
    if let Some(id) = &ctx.request_id {
        let name = ctx.rt.config.access_log.request_id_header.clone();
        upstream.insert_header(name, id.clone())?;
    }
    if let Some(ip) = client_ip(session) {
        let xff = match upstream
            .headers
            .get(X_FORWARDED_FOR)
            .and_then(|v| v.to_str().ok())
        {
            Some(prev) => format!("{prev}, {ip}"),
            None => ip.to_string(),
        };
        upstream.insert_header(X_FORWARDED_FOR, xff)?;
    }
    // Values reused rather than re-parsed: a static one for the scheme, the client's own
    // (shared, not copied) for the host.
    let proto = if ctx.https { "https" } else { "http" };
    upstream.insert_header(X_FORWARDED_PROTO, HeaderValue::from_static(proto))?;
    if let Some(host) = request_host_value(session.req_header()) {
        // HTTP/2 carries the host in :authority; an HTTP/1.1 server needs a Host header.
        if !upstream.headers.contains_key(http::header::HOST) {
            upstream.insert_header(http::header::HOST, host.clone())?;
        }
        upstream.insert_header(X_FORWARDED_HOST, host)?;
    }
    Ok(())
}

/// `https://host[:port]/path?query` for a plain-HTTP request.
pub fn https_location(req: &RequestHeader, https_port: Option<u16>) -> String {
    let host = crate::routing::host_without_port(request_host(req).unwrap_or("localhost"));
    let port = match https_port {
        Some(443) | None => String::new(),
        Some(p) => format!(":{p}"),
    };
    let pq = req.uri.path_and_query().map_or("/", |pq| pq.as_str());
    format!("https://{host}{port}{pq}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_keep_path_and_query_and_drop_the_plain_port() {
        let mut req = RequestHeader::build("GET", b"/a/b?c=1", None).unwrap();
        req.insert_header("Host", "www.example.com:8080").unwrap();
        assert_eq!(
            https_location(&req, Some(8443)),
            "https://www.example.com:8443/a/b?c=1"
        );
        assert_eq!(
            https_location(&req, Some(443)),
            "https://www.example.com/a/b?c=1"
        );
        assert_eq!(request_host(&req), Some("www.example.com:8080"));
    }
}
