//! What a request carries to its server besides the client's own headers: X-Forwarded-For,
//! -Proto and -Host, a Host header for HTTP/2 clients, the request id, and Upgrade only where
//! the route allows it, decided once (`Forwarding`) for both paths; for the direct exchange, the
//! request head as it goes to the server. Also the facts about the client request those are
//! made from.

use super::ctx::Ctx;
use super::head_line::put_line;
use super::real_client::{self, Found};
use crate::config::ClientAddressConfig;
use bytes::{BufMut, BytesMut};
use http::{HeaderName, HeaderValue};
use pingora::http::{HeaderNameVariant, RequestHeader};
use pingora::proxy::Session;
use pingora::{Error, ErrorType, Result};
use std::fmt::Write;
use std::net::{IpAddr, SocketAddr};

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

/// The client's IP address, the one every per-client decision uses (access rules, hashing,
/// X-Forwarded-For, the access log): the connection's peer (the TCP peer, or the address a
/// trusted proxy's PROXY protocol header gave), or the client a trusted peer names in its
/// forwarding header (`real_client`); an IPv4-mapped IPv6 address (`::ffff:10.1.2.3`, a
/// dual-stack listener) as its IPv4 address.
pub fn client_ip(session: &Session, ca: &ClientAddressConfig) -> Option<IpAddr> {
    client(session, ca).map(|f| f.addr.ip())
}

/// `client_ip` with its port (0 when a header named the client without one), and how it was
/// found.
pub fn client(session: &Session, ca: &ClientAddressConfig) -> Option<Found> {
    let peer = session.client_addr().and_then(|a| a.as_inet())?;
    let peer = SocketAddr::new(peer.ip().to_canonical(), peer.port());
    let local = session.server_addr().and_then(|a| a.as_inet()).copied();
    Some(real_client::find(
        peer,
        local,
        &session.req_header().headers,
        ca,
    ))
}

/// Adds the forwarding headers to the request going upstream (pingora's path).
pub fn upstream_headers(session: &Session, upstream: &mut RequestHeader, ctx: &Ctx) -> Result<()> {
    Forwarding::of(upstream, session, ctx).apply(upstream)
}

/// What gatehouse sets on a request going to its server, decided once from the request as it
/// will be sent: the one policy of both paths. `apply` writes it into pingora's request header
/// (pingora's path); `write_head` serializes the request with it (the direct exchange), without
/// building a second header map. Each header set replaces any of that name the client sent.
pub struct Forwarding<'a> {
    /// Upgrade (and Connection) removed: the route does not allow upgrades.
    drop_upgrade: bool,
    request_id: Option<(&'a HeaderName, &'a HeaderValue)>,
    /// The client's address, appended to the X-Forwarded-For the request carries (if any).
    client_ip: Option<IpAddr>,
    prior_forwarded_for: Option<HeaderValue>,
    proto: &'static str,
    /// X-Forwarded-Host, and Host when the request has none (HTTP/2 carries it in :authority).
    host: Option<HeaderValue>,
    add_host: bool,
    /// An HTTP/2 client's cookie fields joined into one (RFC 9113 §8.2.3: an HTTP/1 server
    /// gets one Cookie line), when it sent more than one.
    cookie: Option<HeaderValue>,
}

impl<'a> Forwarding<'a> {
    pub fn of(req: &RequestHeader, session: &Session, ctx: &'a Ctx) -> Self {
        let route_allows_upgrade = ctx
            .routed
            .is_some_and(|r| ctx.rt.config.routes[r.route].allow_upgrade);
        let host = request_host_value(session.req_header());
        let found = client(session, &ctx.rt.config.client_address);
        // What a trusted proxy's header said came before the client is passed on; the hops
        // from the client to gatehouse are not (the client is the last entry servers get).
        let prior_forwarded_for = match found {
            Some(f) if f.consumed > 0 => real_client::earlier_hops(&req.headers, f.consumed)
                .and_then(|h| HeaderValue::from_str(&h).ok()),
            _ => req
                .headers
                .get(X_FORWARDED_FOR)
                .filter(|v| v.to_str().is_ok())
                .cloned(),
        };
        Forwarding {
            drop_upgrade: !route_allows_upgrade && req.headers.contains_key(http::header::UPGRADE),
            request_id: ctx
                .request_id
                .as_ref()
                .map(|id| (&ctx.rt.config.access_log.request_id_header, id)),
            client_ip: found.map(|f| f.addr.ip()),
            prior_forwarded_for,
            proto: if ctx.https { "https" } else { "http" },
            add_host: host.is_some() && !req.headers.contains_key(http::header::HOST),
            host,
            cookie: joined_cookies(session.req_header()),
        }
    }

    /// Sets the headers in pingora's request header.
    pub fn apply(self, upstream: &mut RequestHeader) -> Result<()> {
        if self.drop_upgrade {
            // Not allowed on this route: proxied as a plain request (nginx's default).
            upstream.remove_header(&http::header::UPGRADE);
            upstream.remove_header(&http::header::CONNECTION);
        }
        if let Some((name, id)) = self.request_id {
            upstream.insert_header(name.clone(), id.clone())?;
        }
        if let Some(ip) = self.client_ip {
            let xff = match self
                .prior_forwarded_for
                .as_ref()
                .and_then(|v| v.to_str().ok())
            {
                Some(prior) => format!("{prior}, {ip}"),
                None => ip.to_string(),
            };
            upstream.insert_header(X_FORWARDED_FOR, xff)?;
        }
        // Values reused rather than re-parsed: a static one for the scheme, the client's own
        // (shared, not copied) for the host.
        upstream.insert_header(X_FORWARDED_PROTO, HeaderValue::from_static(self.proto))?;
        if let Some(cookie) = self.cookie {
            upstream.insert_header(http::header::COOKIE, cookie)?;
        }
        if let Some(host) = self.host {
            if self.add_host {
                upstream.insert_header(http::header::HOST, host.clone())?;
            }
            upstream.insert_header(X_FORWARDED_HOST, host)?;
        }
        Ok(())
    }

    /// Serializes `req` for its server as HTTP/1.1, as pingora's client would once `apply` had
    /// run and the hop-by-hop headers were removed: request line, the client's header lines as
    /// they came (names in the client's case) less those removed or set here, then the ones set.
    pub fn write_head(&self, req: &RequestHeader, buf: &mut BytesMut) -> Result<()> {
        let target = req.raw_path();
        if target.iter().any(|b| matches!(b, 0 | b'\n' | b'\r' | b' ')) {
            return Error::e_explain(ErrorType::InvalidHTTPHeader, "request target to forward");
        }
        buf.put_slice(req.method.as_str().as_bytes());
        buf.put_u8(b' ');
        buf.put_slice(target);
        buf.put_slice(b" HTTP/1.1\r\n");
        req.map(|name, value| {
            let name = match name {
                HeaderNameVariant::Case(n) => n.as_slice(),
                HeaderNameVariant::Titled(n) => n.as_bytes(),
            };
            if !self.replaces(name) {
                put_line(buf, name, value.as_bytes());
            }
            Ok(())
        })?;
        if let Some((name, id)) = self.request_id {
            put_line(buf, name.as_str().as_bytes(), id.as_bytes());
        }
        if let Some(ip) = self.client_ip {
            buf.put_slice(b"x-forwarded-for: ");
            if let Some(prior) = &self.prior_forwarded_for {
                buf.put_slice(prior.as_bytes());
                buf.put_slice(b", ");
            }
            put_ip(buf, ip);
            buf.put_slice(b"\r\n");
        }
        put_line(buf, b"x-forwarded-proto", self.proto.as_bytes());
        if let Some(cookie) = &self.cookie {
            put_line(buf, b"cookie", cookie.as_bytes());
        }
        if let Some(host) = &self.host {
            if self.add_host {
                put_line(buf, b"Host", host.as_bytes());
            }
            put_line(buf, b"x-forwarded-host", host.as_bytes());
        }
        buf.put_slice(b"\r\n");
        Ok(())
    }

    /// Whether a client header of this name is left out of `write_head`'s copy.
    fn replaces(&self, name: &[u8]) -> bool {
        let is = |n: &HeaderName| n.as_str().as_bytes().eq_ignore_ascii_case(name);
        crate::hop_by_hop::is(name)
            || is(&X_FORWARDED_PROTO)
            || (self.client_ip.is_some() && is(&X_FORWARDED_FOR))
            || (self.host.is_some() && is(&X_FORWARDED_HOST))
            || self.request_id.is_some_and(|(n, _)| is(n))
            || (self.drop_upgrade && is(&http::header::UPGRADE))
            || (self.cookie.is_some() && is(&http::header::COOKIE))
    }
}

/// An HTTP/2 request's cookie fields as one value joined with `; ` (RFC 9113 §8.2.3), when it
/// has more than one; `None` otherwise (the fields go as they came).
fn joined_cookies(req: &RequestHeader) -> Option<HeaderValue> {
    if req.version != http::Version::HTTP_2 {
        return None;
    }
    let mut cookies = req.headers.get_all(http::header::COOKIE).iter();
    let first = cookies.next()?;
    let mut rest = cookies.peekable();
    rest.peek()?;
    let mut joined = BytesMut::from(first.as_bytes());
    for cookie in rest {
        joined.put_slice(b"; ");
        joined.put_slice(cookie.as_bytes());
    }
    HeaderValue::from_maybe_shared(joined.freeze()).ok()
}

/// An address as `Display` writes it; IPv4 without the formatting machinery (a fifth of the
/// cost of serializing a request head went to formatting the client's address).
fn put_ip(buf: &mut BytesMut, ip: IpAddr) {
    let IpAddr::V4(v4) = ip else {
        // Writing to a BytesMut cannot fail.
        let _ = write!(buf, "{ip}");
        return;
    };
    let mut text = [0u8; 15];
    let mut len = 0;
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            text[len] = b'.';
            len += 1;
        }
        if octet >= 100 {
            text[len] = b'0' + octet / 100;
            len += 1;
        }
        if octet >= 10 {
            text[len] = b'0' + octet / 10 % 10;
            len += 1;
        }
        text[len] = b'0' + octet % 10;
        len += 1;
    }
    buf.put_slice(&text[..len]);
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
    fn addresses_are_written_as_display_writes_them() {
        for ip in [
            "0.0.0.0",
            "9.10.99.100",
            "127.0.0.1",
            "255.255.255.255",
            "::1",
            "::ffff:1.2.3.4",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            let mut buf = BytesMut::new();
            put_ip(&mut buf, ip);
            assert_eq!(buf, ip.to_string().as_bytes());
        }
    }

    #[test]
    fn an_http2_clients_cookies_are_joined_into_one() {
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        req.append_header("cookie", "a=1").unwrap();
        assert_eq!(joined_cookies(&req), None, "HTTP/1.1: sent as they came");
        req.set_version(http::Version::HTTP_2);
        assert_eq!(joined_cookies(&req), None, "one field: nothing to join");
        req.append_header("cookie", "b=2").unwrap();
        req.append_header("cookie", "c=3").unwrap();
        assert_eq!(joined_cookies(&req).unwrap(), "a=1; b=2; c=3");
    }

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
