//! The wire standard of issue 30, items 1–6, each held on both HTTP/1 paths to servers: the own
//! exchange (`server.direct_exchange = true`) and pingora's (`false`). The origins are raw
//! (`common::raw::ScriptOrigin`) and answer each request with its own target (field `X-Path`
//! and body), so a response given to the wrong request shows; clients write raw bytes (or
//! HTTP/2 frames through hyper) and every read has a timeout.

use crate::common::raw::{shown, Act, Msg, ScriptOrigin, Wire};
use crate::common::*;
use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Empty};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(3);

/// An unasked response, written by an origin after (or with) its answer to `/p`.
const POISON: &[u8] = b"HTTP/1.1 200 OK\r\nX-Poison: 1\r\nContent-Length: 6\r\n\r\nPOISON";

/// The usual answer: 200, `X-Path` and the body both the request's target; `extra` fields.
pub(crate) fn echo_path(req: &Msg, extra: &str) -> Vec<u8> {
    let t = req.target();
    format!(
        "HTTP/1.1 200 OK\r\nX-Path: {t}\r\n{extra}Content-Length: {}\r\n\r\n{t}",
        t.len()
    )
    .into_bytes()
}

/// gatehouse on both paths to `origin`, with the route's `[routes.cache]` `cache`.
async fn both(origin: SocketAddr, cache: &str) -> [(&'static str, Proxy); 2] {
    [
        ("own", proxy_with(&[origin], true, "", 1, cache).await),
        ("pingora", proxy_with(&[origin], false, "", 1, cache).await),
    ]
}

/// One request on a new client connection: its response or what was seen instead.
async fn one(addr: SocketAddr, method: &str, path: &str, extra: &str) -> Result<Msg, String> {
    let mut c = Wire::connect(addr).await;
    let req = format!("{method} {path} HTTP/1.1\r\nHost: site.test\r\n{extra}\r\n");
    c.send(req.as_bytes()).await;
    c.response(method == "HEAD", WAIT).await
}

/// A response that is the origin's answer to `path` (never the poison).
fn answers(r: &Result<Msg, String>, path: &str) -> Result<(), String> {
    let m = r.as_ref().map_err(|e| format!("{path}: {e}"))?;
    let poisoned = m.field("x-poison").is_some() || m.body.windows(6).any(|w| w == b"POISON");
    if poisoned || m.status() != 200 || m.field("x-path") != Some(path) || m.body != path.as_bytes()
    {
        return Err(format!(
            "{path} got {} {:?} body {:?}",
            m.start,
            m.fields,
            shown(&m.body)
        ));
    }
    Ok(())
}

/// An origin bug that leaves bytes after a response: the request to `/p` that provokes it,
/// the response head (and body) written first, and when the poison follows.
#[derive(Clone)]
struct Desync {
    name: &'static str,
    method: &'static str,
    request_extra: &'static str,
    first: String,
    delay_ms: u64,
}

fn desyncs() -> Vec<Desync> {
    let mut v = vec![Desync {
        name: "an unasked response after a whole one",
        method: "GET",
        request_extra: "",
        first: "HTTP/1.1 200 OK\r\nX-Path: /p\r\nContent-Length: 2\r\n\r\nOK".into(),
        delay_ms: 50,
    }];
    v.push(Desync {
        name: "Content-Length shorter than the body",
        delay_ms: 0,
        ..v[0].clone()
    });
    for delay_ms in [0, 50] {
        let head = format!(
            "HTTP/1.1 200 OK\r\nX-Path: /p\r\nContent-Length: {}\r\n\r\n",
            POISON.len()
        );
        v.push(Desync {
            name: "HEAD answered with a body",
            method: "HEAD",
            request_extra: "",
            first: head,
            delay_ms,
        });
        v.push(Desync {
            name: "204 with a body",
            method: "GET",
            request_extra: "",
            first: "HTTP/1.1 204 No Content\r\nX-Path: /p\r\n\r\n".into(),
            delay_ms,
        });
        v.push(Desync {
            name: "304 with a body",
            method: "GET",
            request_extra: "If-None-Match: \"x\"\r\n",
            first: "HTTP/1.1 304 Not Modified\r\nX-Path: /p\r\nETag: \"x\"\r\n\r\n".into(),
            delay_ms,
        });
    }
    v
}

/// Runs one desync case through both paths: rounds of one client asking `/p` (the origin
/// misbehaves) then another asking `/q`; every answer must be the origin's to that request.
/// `cache`: the route's cache section; `extra`: fields on every origin answer; `cookie`: a
/// `Cookie` line on every request (or empty).
async fn desync_case(d: &Desync, cache: &str, extra: &'static str, cookie: &str) -> Vec<String> {
    let (first, delay) = (d.first.clone(), d.delay_ms);
    let first = first.replace("\r\n\r\n", &format!("\r\n{extra}\r\n"));
    let o = ScriptOrigin::start(move |req| {
        if req.target() != "/p" {
            return vec![Act::Write(echo_path(req, extra))];
        }
        let mut bytes = first.clone().into_bytes();
        if delay == 0 {
            bytes.extend_from_slice(POISON);
            return vec![Act::Write(bytes)];
        }
        vec![
            Act::Write(bytes),
            Act::Sleep(Duration::from_millis(delay)),
            Act::Write(POISON.to_vec()),
        ]
    })
    .await;
    let mut problems = Vec::new();
    for (path_name, gh) in both(o.addr, cache).await {
        for round in 0..4 {
            let at = format!("{} ({} ms), {path_name} path, round {round}", d.name, delay);
            let p_extra = format!("{}{cookie}", d.request_extra);
            match one(gh.addr, d.method, "/p", &p_extra).await {
                Ok(m) if m.field("x-poison").is_some() || m.field("x-path") != Some("/p") => {
                    problems.push(format!("{at}: /p got {} {:?}", m.start, m.fields));
                }
                Ok(_) => {}
                Err(e) => problems.push(format!("{at}: /p: {e}")),
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
            if let Err(e) = answers(&one(gh.addr, "GET", "/q", cookie).await, "/q") {
                problems.push(format!("{at}: {e}"));
            }
        }
    }
    problems
}

/// Item 1: bytes an origin sends beyond a response's framing are never read as the answer to
/// another client's request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_after_a_response_never_answer_another_request() {
    let mut problems = Vec::new();
    for d in desyncs() {
        problems.extend(desync_case(&d, "enabled = false", "", "").await);
    }
    // A caching route whose responses are not stored (after the first miss, the URL passes),
    // and one whose requests carry a cookie (the cache rules pass them to the server).
    let late = &desyncs()[0];
    let no_store = "Cache-Control: no-store\r\n";
    for p in desync_case(late, "enabled = true", no_store, "").await {
        problems.push(format!("caching route, no-store: {p}"));
    }
    for p in desync_case(late, "enabled = true", "", "Cookie: s=1\r\n").await {
        problems.push(format!("caching route, cookie: {p}"));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Item 2: a pooled server connection the server reset while idle is retried on a new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pooled_connection_reset_while_idle_is_retried() {
    let script = Arc::new(|req: &Msg| vec![Act::Write(echo_path(req, ""))]);
    let o = ScriptOrigin::start_with(Some(Duration::from_secs(1)), script).await;
    let mut problems = Vec::new();
    for (name, gh) in both(o.addr, "enabled = false").await {
        for i in 0..2 {
            if i == 1 {
                tokio::time::sleep(Duration::from_millis(1600)).await;
            }
            if let Err(e) = answers(&one(gh.addr, "GET", "/a", "").await, "/a") {
                problems.push(format!("{name} path, request {i}: {e}"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Item 4: hop-by-hop fields of a request, and the fields its `Connection` names, stay here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hop_by_hop_request_fields_are_not_forwarded() {
    let o = ScriptOrigin::start(|req| vec![Act::Write(echo_path(req, ""))]).await;
    let requests = [
        (
            "/proxy-fields",
            "Proxy-Authenticate: Basic realm=\"x\"\r\nProxy-Authorization: Basic eDp5\r\n",
        ),
        (
            "/connection-named",
            "Connection: keep-alive, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\n",
        ),
    ];
    let mut problems = Vec::new();
    for (name, gh) in both(o.addr, "enabled = false").await {
        for (path, fields) in requests {
            if let Err(e) = answers(&one(gh.addr, "GET", path, fields).await, path) {
                problems.push(format!("{name} path: {e}"));
            }
            let Some(seen) = o.take().pop() else {
                problems.push(format!("{name} path: {path} never reached the origin"));
                continue;
            };
            let hop = [
                "proxy-authenticate",
                "proxy-authorization",
                "x-hop",
                "keep-alive",
            ];
            let leaked: Vec<_> = seen
                .fields
                .iter()
                .filter(|(n, v)| {
                    hop.iter().any(|h| n.eq_ignore_ascii_case(h))
                        || n.eq_ignore_ascii_case("connection")
                            && v.to_ascii_lowercase().contains("x-hop")
                })
                .collect();
            if !leaked.is_empty() {
                problems.push(format!(
                    "{name} path, {path}: the origin received {leaked:?}"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Item 5: three requests in one write on one connection get three answers, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_are_all_answered_in_order() {
    let o = ScriptOrigin::start(|req| vec![Act::Write(echo_path(req, ""))]).await;
    let mut problems = Vec::new();
    for (name, gh) in both(o.addr, "enabled = false").await {
        let mut c = Wire::connect(gh.addr).await;
        let paths = ["/1", "/2", "/3"];
        let bytes: String = paths
            .iter()
            .map(|p| format!("GET {p} HTTP/1.1\r\nHost: site.test\r\n\r\n"))
            .collect();
        c.send(bytes.as_bytes()).await;
        for path in paths {
            let r = c.response(false, WAIT).await;
            if let Err(e) = answers(&r, path) {
                problems.push(format!("{name} path: {e}"));
                break;
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// A request body of unknown length: HEADERS without END_STREAM and no content-length, then
/// one DATA frame, then the end of the stream.
struct Unsized(Option<Bytes>);

impl hyper::body::Body for Unsized {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        std::task::Poll::Ready(self.0.take().map(|b| Ok(hyper::body::Frame::data(b))))
    }
}

/// gatehouse with one TLS listener (h2 by ALPN) in front of `origin`, route not caching.
async fn tls_to(origin: SocketAddr, direct: bool) -> (Proxy, crate::common::certs::Ca) {
    let (ca, dir) = (crate::common::certs::Ca::new(), state_dir());
    let leaf = ca.issue(&dir, "a", &["a.test"]);
    let addr = free_port();
    let section = server_section().replacen(
        "[server]\n",
        &format!("[server]\ndirect_exchange = {direct}\n"),
        1,
    );
    let toml = format!(
        "{section}[[listeners]]\nname = \"https\"\naddress = \"{addr}\"\n[listeners.tls]\n{}\n\
         [pools.web.health]\nenabled = false\n[[pools.web.servers]]\nname = \"s0\"\n\
         address = \"{origin}\"\n[[routes]]\npool = \"web\"\n[routes.cache]\nenabled = false\n",
        certs::cert_entries(&[&leaf])
    );
    let gh = crate::common::certs::boot_tls(&toml).await;
    (Proxy { gh, addr }, ca)
}

/// Sends `req` over HTTP/2 (TLS, ALPN h2) to `addr`: status and body, or what went wrong.
async fn h2_send(
    addr: SocketAddr,
    req: http::Request<BoxBody<Bytes, Infallible>>,
) -> Result<(u16, Bytes), String> {
    let tls = crate::common::tls_client::handshake(addr, Some("a.test"), &[b"h2"])
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let io = hyper_util::rt::TokioIo::new(tls);
    let exec = hyper_util::rt::TokioExecutor::new();
    let (mut send, conn) = hyper::client::conn::http2::handshake(exec, io)
        .await
        .map_err(|e| format!("h2 handshake: {e}"))?;
    tokio::spawn(conn);
    let resp = tokio::time::timeout(WAIT, send.send_request(req))
        .await
        .map_err(|_| "no response in time".to_string())?
        .map_err(|e| format!("request: {e}"))?;
    let status = resp.status().as_u16();
    let body = tokio::time::timeout(WAIT, resp.into_body().collect())
        .await
        .map_err(|_| "no whole body in time".to_string())?
        .map_err(|e| format!("body: {e}"))?;
    Ok((status, body.to_bytes()))
}

fn h2_request(port: u16) -> http::request::Builder {
    http::Request::get(format!("https://a.test:{port}/echo"))
}

/// Item 3: an HTTP/2 GET with a body and no content-length reaches the server with its body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_get_with_a_body_of_unknown_length_keeps_its_body() {
    let o = ScriptOrigin::start(|req| {
        let b = String::from_utf8_lossy(&req.body).into_owned();
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", b.len());
        vec![Act::Write((head + &b).into_bytes())]
    })
    .await;
    let mut problems = Vec::new();
    for direct in [true, false] {
        let (gh, _ca) = tls_to(o.addr, direct).await;
        let body = Unsized(Some(Bytes::from_static(b"{\"q\":1}"))).boxed();
        let req = h2_request(gh.addr.port()).body(body).unwrap();
        let got = h2_send(gh.addr, req).await;
        let seen: Vec<_> = o
            .take()
            .iter()
            .map(|m| (m.start.clone(), shown(&m.body)))
            .collect();
        let want = ("GET /echo HTTP/1.1".to_string(), "{\"q\":1}".to_string());
        if seen != [want] || got != Ok((200, Bytes::from_static(b"{\"q\":1}"))) {
            problems.push(format!(
                "direct {direct}: origin saw {seen:?}; client got {got:?}"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Item 6: two `cookie` fields of an HTTP/2 request reach an HTTP/1 server as one `Cookie`
/// line joined with `; ` (RFC 9113 §8.2.3).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_cookie_fields_reach_an_http1_server_as_one_line() {
    let o = ScriptOrigin::start(|req| vec![Act::Write(echo_path(req, ""))]).await;
    let mut problems = Vec::new();
    for direct in [true, false] {
        let (gh, _ca) = tls_to(o.addr, direct).await;
        let req = h2_request(gh.addr.port())
            .header("cookie", "a=1")
            .header("cookie", "b=2")
            .body(Empty::new().boxed())
            .unwrap();
        let got = h2_send(gh.addr, req).await;
        let seen = o.take();
        let cookies: Vec<Vec<&str>> = seen.iter().map(|m| m.all("cookie")).collect();
        if cookies != [vec!["a=1; b=2"]] || got.as_ref().map(|g| g.0) != Ok(200) {
            problems.push(format!(
                "direct {direct}: origin saw Cookie lines {cookies:?}; client got {got:?}"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// One HTTP/2 connection's streams are served side by side (all within the connection's task,
/// `conn::streams`): a stream whose server is slow holds neither its siblings nor the frames
/// they send, on both paths.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_stream_does_not_hold_its_siblings_on_one_connection() {
    let o = ScriptOrigin::start(|req| {
        let mut acts = Vec::new();
        if req.start.contains("/slow") {
            acts.push(Act::Sleep(Duration::from_secs(3)));
        }
        acts.push(Act::Write(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec(),
        ));
        acts
    })
    .await;
    for direct in [true, false] {
        let (gh, _ca) = tls_to(o.addr, direct).await;
        let tls = crate::common::tls_client::handshake(gh.addr, Some("a.test"), &[b"h2"])
            .await
            .unwrap();
        let io = hyper_util::rt::TokioIo::new(tls);
        let exec = hyper_util::rt::TokioExecutor::new();
        let (send, conn) = hyper::client::conn::http2::handshake(exec, io)
            .await
            .unwrap();
        tokio::spawn(conn);
        let get = |path: &str| {
            let url = format!("https://a.test:{}{path}", gh.addr.port());
            let req = http::Request::get(url)
                .body(Empty::<Bytes>::new().boxed())
                .unwrap();
            let mut send = send.clone();
            tokio::spawn(async move { send.send_request(req).await.map(|r| r.status()) })
        };
        let slow = get("/slow");
        tokio::time::sleep(Duration::from_millis(200)).await;
        let started = std::time::Instant::now();
        let fast = tokio::time::timeout(Duration::from_secs(2), get("/fast")).await;
        let waited = started.elapsed();
        assert!(
            matches!(fast, Ok(Ok(Ok(s))) if s == 200),
            "direct {direct}: the fast stream was held behind the slow one: {fast:?} after {waited:?}"
        );
        assert!(
            !slow.is_finished(),
            "direct {direct}: the slow stream was not slow"
        );
        let slow = tokio::time::timeout(WAIT, slow).await;
        assert!(
            matches!(slow, Ok(Ok(Ok(s))) if s == 200),
            "direct {direct}: {slow:?}"
        );
    }
}
