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
pub const INTERNAL: LocalAnswer = LocalAnswer {
    status: 500,
    body: "500 Internal Server Error\n",
};

/// Writes `answer` to the client. `keepalive = false` closes the connection after it.
pub async fn send(
    session: &mut Session,
    answer: LocalAnswer,
    keepalive: bool,
) -> pingora::Result<()> {
    let mut resp = ResponseHeader::build(answer.status, Some(4))?;
    resp.insert_header("Content-Type", "text/plain; charset=utf-8")?;
    resp.insert_header("Content-Length", answer.body.len())?;
    resp.insert_header("Cache-Control", "no-store")?;
    if !keepalive {
        session.set_keepalive(None);
        resp.insert_header("Connection", "close")?;
    }
    session.write_response_header(Box::new(resp), false).await?;
    session
        .write_response_body(Some(Bytes::from_static(answer.body.as_bytes())), true)
        .await?;
    Ok(())
}

/// A 301 to `location` (plain HTTP to HTTPS).
pub async fn redirect(session: &mut Session, location: &str) -> pingora::Result<()> {
    const BODY: &str = "301 Moved Permanently\n";
    let mut resp = ResponseHeader::build(301, Some(4))?;
    resp.insert_header("Location", location)?;
    resp.insert_header("Content-Type", "text/plain; charset=utf-8")?;
    resp.insert_header("Content-Length", BODY.len())?;
    session.write_response_header(Box::new(resp), false).await?;
    session
        .write_response_body(Some(Bytes::from_static(BODY.as_bytes())), true)
        .await?;
    Ok(())
}
