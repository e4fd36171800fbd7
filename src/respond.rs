//! Answers gatehouse writes itself (no route, no server, timeouts): short plain-text bodies
//! that say what happened, never cached, never an HTML error page of pingora's.

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;

/// A local answer: status and the one-line body explaining it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalAnswer {
    pub status: u16,
    pub body: &'static str,
}

pub const NO_ROUTE: LocalAnswer = LocalAnswer {
    status: 404,
    body: "404 Not Found: no route for this host and path\n",
};
pub const BAD_GATEWAY: LocalAnswer = LocalAnswer {
    status: 502,
    body: "502 Bad Gateway: no server answered\n",
};
pub const NO_SERVER: LocalAnswer = LocalAnswer {
    status: 503,
    body: "503 Service Unavailable: no server is available\n",
};
pub const GATEWAY_TIMEOUT: LocalAnswer = LocalAnswer {
    status: 504,
    body: "504 Gateway Timeout: the server did not answer in time\n",
};
pub const BAD_REQUEST: LocalAnswer = LocalAnswer {
    status: 400,
    body: "400 Bad Request\n",
};
pub const HEADERS_TOO_LARGE: LocalAnswer = LocalAnswer {
    status: 431,
    body: "431 Request Header Fields Too Large\n",
};
pub const URI_TOO_LONG: LocalAnswer = LocalAnswer {
    status: 414,
    body: "414 URI Too Long\n",
};
pub const BODY_TOO_LARGE: LocalAnswer = LocalAnswer {
    status: 413,
    body: "413 Content Too Large\n",
};
pub const MISSING_HOST: LocalAnswer = LocalAnswer {
    status: 400,
    body: "400 Bad Request: HTTP/1.1 request without Host\n",
};
pub const TOO_MANY_CONNECTIONS: LocalAnswer = LocalAnswer {
    status: 503,
    body: "503 Service Unavailable: too many connections\n",
};
pub const INTERNAL: LocalAnswer = LocalAnswer {
    status: 500,
    body: "500 Internal Server Error\n",
};

/// Writes a whole local response: `status`, `extra` headers, a body, and whether the
/// connection stays open after it (closing it means an unread request body is never read).
/// `hsts`: the listener's Strict-Transport-Security value, which every response it sends
/// carries, gatehouse's own answers included.
pub async fn write(
    session: &mut Session,
    hsts: Option<&http::HeaderValue>,
    status: u16,
    extra: &[(http::HeaderName, http::HeaderValue)],
    content_type: &'static str,
    body: Bytes,
    keepalive: bool,
) -> pingora::Result<()> {
    let mut resp = ResponseHeader::build(status, Some(5 + extra.len()))?;
    for (k, v) in extra {
        resp.insert_header(k.clone(), v.clone())?;
    }
    if let Some(hsts) = hsts {
        resp.insert_header(http::header::STRICT_TRANSPORT_SECURITY, hsts.clone())?;
    }
    resp.insert_header(http::header::CONTENT_TYPE, content_type)?;
    resp.insert_header(http::header::CONTENT_LENGTH, body.len())?;
    resp.insert_header(http::header::CACHE_CONTROL, "no-store")?;
    if !keepalive {
        session.set_keepalive(None);
        resp.insert_header(http::header::CONNECTION, "close")?;
    }
    // A failure here is the client's side (it left, or reset its stream).
    session
        .write_response_header(Box::new(resp), false)
        .await
        .map_err(|e| e.into_down())?;
    session
        .write_response_body(Some(body), true)
        .await
        .map_err(|e| e.into_down())
}

/// Writes `answer` to the client. `keepalive = false` closes the connection after it.
pub async fn send(
    session: &mut Session,
    hsts: Option<&http::HeaderValue>,
    answer: LocalAnswer,
    keepalive: bool,
) -> pingora::Result<()> {
    let body = Bytes::from_static(answer.body.as_bytes());
    write(
        session,
        hsts,
        answer.status,
        &[],
        "text/plain; charset=utf-8",
        body,
        keepalive,
    )
    .await
}

/// A refusal of the operator's choosing (an access rule's, a rate limit's, a block's): `status`
/// and its reason phrase as the body, with `extra` headers.
pub async fn refusal(
    session: &mut Session,
    hsts: Option<&http::HeaderValue>,
    status: u16,
    extra: &[(http::HeaderName, http::HeaderValue)],
    keepalive: bool,
) -> pingora::Result<()> {
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Refused");
    let body = Bytes::from(format!("{status} {reason}\n"));
    let plain = "text/plain; charset=utf-8";
    write(session, hsts, status, extra, plain, body, keepalive).await
}

/// A 301 to `location` (plain HTTP to HTTPS).
pub async fn redirect(
    session: &mut Session,
    hsts: Option<&http::HeaderValue>,
    location: &str,
) -> pingora::Result<()> {
    let location = http::HeaderValue::from_str(location)
        .map_err(|_| pingora::Error::explain(pingora::ErrorType::InternalError, "bad Location"))?;
    let body = Bytes::from_static(b"301 Moved Permanently\n");
    write(
        session,
        hsts,
        301,
        &[(http::header::LOCATION, location)],
        "text/plain; charset=utf-8",
        body,
        true,
    )
    .await
}
