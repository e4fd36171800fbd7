//! In-process origins on 127.0.0.1 ephemeral ports that count what they get and can be told to
//! fail, hang or be slow, or be stopped (connections refused) and started again on their port.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinSet;

/// How an origin answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// 200 with the origin's name as body.
    Ok,
    /// Every request, health checks included, gets this status.
    Status(u16),
    /// Requests wait this long before a 200 (health checks answer at once).
    Delay(Duration),
    /// Requests never get an answer (health checks answer at once).
    Hang,
}

/// What an origin saw of one request.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: http::HeaderMap,
}

#[derive(Default)]
struct State {
    hits: AtomicUsize,
    connections: AtomicUsize,
    health_hits: AtomicUsize,
    in_flight: AtomicUsize,
    mode: Mutex<Option<Mode>>,
    seen: Mutex<Vec<Seen>>,
    /// Extra response headers on every answer.
    headers: Mutex<Vec<(String, String)>>,
    /// Answer 304 to a matching If-None-Match (the ETag is taken from `headers`).
    not_modified: AtomicUsize,
    /// Body: name, then ":" and the Host header, padded to `body_size` bytes when set.
    echo_host: std::sync::atomic::AtomicBool,
    body_size: AtomicUsize,
}

pub struct Origin {
    pub name: String,
    pub addr: SocketAddr,
    state: Arc<State>,
    tasks: Option<JoinSet<()>>,
}

impl Origin {
    /// Starts an origin on a fresh ephemeral port.
    pub async fn start(name: &str) -> Origin {
        Self::start_on(name, "127.0.0.1:0".parse().unwrap()).await
    }

    /// Starts an origin on `addr` (used to bring a stopped origin back on its port).
    pub async fn start_on(name: &str, addr: SocketAddr) -> Origin {
        let mut o = Origin {
            name: name.to_string(),
            addr,
            state: Arc::new(State::default()),
            tasks: None,
        };
        o.listen().await;
        o
    }

    async fn listen(&mut self) {
        let listener = bind_retrying(self.addr).await;
        self.addr = listener.local_addr().unwrap();
        let mut tasks = JoinSet::new();
        let state = self.state.clone();
        let name = self.name.clone();
        tasks.spawn(async move {
            let mut conns = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                state.connections.fetch_add(1, SeqCst);
                let (state, name) = (state.clone(), name.clone());
                conns.spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        handle(req, state.clone(), name.clone())
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
                while conns.try_join_next().is_some() {}
            }
        });
        self.tasks = Some(tasks);
    }

    /// Closes the listener and every open connection: new connections are refused.
    pub async fn stop(&mut self) {
        if let Some(mut t) = self.tasks.take() {
            t.shutdown().await;
        }
    }

    /// Listens again on the same port.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.listen().await;
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.state.mode.lock().unwrap() = Some(mode);
    }

    /// Requests other than health checks.
    pub fn hits(&self) -> usize {
        self.state.hits.load(SeqCst)
    }

    /// TCP connections accepted (health checks included).
    pub fn connections(&self) -> usize {
        self.state.connections.load(SeqCst)
    }

    pub fn health_hits(&self) -> usize {
        self.state.health_hits.load(SeqCst)
    }

    pub fn in_flight(&self) -> usize {
        self.state.in_flight.load(SeqCst)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    /// Extra headers sent with every response (e.g. Cache-Control).
    pub fn set_headers(&self, headers: &[(&str, &str)]) {
        *self.state.headers.lock().unwrap() = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    }

    /// Bodies say which Host the origin saw: "name:host".
    pub fn echo_host(&self) {
        self.state.echo_host.store(true, SeqCst);
    }

    /// Bodies padded with '.' to exactly `n` bytes.
    pub fn set_body_size(&self, n: usize) {
        self.state.body_size.store(n, SeqCst);
    }

    /// 304 answers given to conditional requests.
    pub fn not_modified(&self) -> usize {
        self.state.not_modified.load(SeqCst)
    }

    pub fn reset(&self) {
        self.state.hits.store(0, SeqCst);
        self.state.seen.lock().unwrap().clear();
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        if let Some(mut t) = self.tasks.take() {
            t.abort_all();
        }
    }
}

async fn bind_retrying(addr: SocketAddr) -> tokio::net::TcpListener {
    for _ in 0..100 {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.set_reuseaddr(true).unwrap();
        if sock.bind(addr).is_ok() {
            if let Ok(l) = sock.listen(1024) {
                return l;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("cannot bind origin on {addr}");
}

async fn handle(
    req: Request<Incoming>,
    state: Arc<State>,
    name: String,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let mode = state.mode.lock().unwrap().clone().unwrap_or(Mode::Ok);
    let health = req.uri().path() == "/health";
    if health {
        state.health_hits.fetch_add(1, SeqCst);
        let status = match mode {
            Mode::Status(s) => s,
            _ => 200,
        };
        return Ok(reply(status, &name, "ok"));
    }
    state.hits.fetch_add(1, SeqCst);
    state.seen.lock().unwrap().push(Seen {
        method: req.method().to_string(),
        path: req.uri().path().to_string(),
        headers: req.headers().clone(),
    });
    state.in_flight.fetch_add(1, SeqCst);
    let extra = state.headers.lock().unwrap().clone();
    let etag = extra
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("etag"))
        .map(|(_, v)| v.clone());
    let conditional = req
        .headers()
        .get("if-none-match")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| Some(v) == etag.as_deref());
    let mut body = name.clone();
    if state.echo_host.load(SeqCst) {
        let host = req
            .headers()
            .get("host")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        body = format!("{name}:{host}");
    }
    let size = state.body_size.load(SeqCst);
    if size > body.len() {
        body.push_str(&".".repeat(size - body.len()));
    }
    let _ = req.into_body().collect().await;
    let status = match mode {
        Mode::Ok => 200,
        Mode::Status(s) => s,
        Mode::Delay(d) => {
            tokio::time::sleep(d).await;
            200
        }
        Mode::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            200
        }
    };
    state.in_flight.fetch_sub(1, SeqCst);
    let (status, body) = if conditional && status == 200 {
        state.not_modified.fetch_add(1, SeqCst);
        (304, String::new())
    } else {
        (status, body)
    };
    let mut resp = reply(status, &name, &body);
    for (k, v) in extra {
        resp.headers_mut().append(
            http::HeaderName::try_from(k).unwrap(),
            http::HeaderValue::try_from(v).unwrap(),
        );
    }
    Ok(resp)
}

fn reply(status: u16, name: &str, body: &str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("X-Origin", name)
        .header("X-Runtime", "0.001")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}
