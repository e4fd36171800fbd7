//! The admin HTTP API, on its own listener (loopback by default): JSON in and out, a bearer
//! token for every state-changing call (and for every call on a non-loopback address).
//!
//! ```text
//! GET  /api/pools                                   every pool and server
//! GET  /api/pools/{pool}                            one pool
//! GET  /api/pools/{pool}/servers/{server}           one server
//! POST /api/pools/{pool}/servers/{server}/drain     [?wait=30s] answer once nothing is in flight
//! POST /api/pools/{pool}/servers/{server}/maint
//! POST /api/pools/{pool}/servers/{server}/ready
//! POST /api/reload                                  reload the config file (all or nothing)
//! POST /api/config/check  {file, text}               what a reload of that text would do
//! GET  /api/config                                  checksum, load time and file of the config
//! GET  /api/tls                                     TLS listeners: protocol, certificates
//! GET  /api/cluster                                 the etcd link, applied revision, every node
//! GET  /health                                      200 while serving (keepalived; no token)
//! GET  /api/cache                                   cache counters and size
//! POST /api/cache/purge  {"host": "www.example.com", "path": "/a?b=1"}   every variant
//! POST /api/cache/ban    {"host": "...", "prefix": "/img/"} or {"regex": "\\.css$"}
//! GET  /metrics                                     Prometheus text format
//! GET  /                                            the status page
//! GET  /api/readonly                                read-only mode: on/off, since, why, until
//! POST /api/readonly     {"enabled": true, "reason": "db migration", "for": "2h"}
//! ```
//! Every state-changing call goes to every node through etcd when clustered (`?local=1`: this
//! node alone; `X-Gatehouse-By` names who asked), see `cluster`.
//! Handlers are plain functions of (shared state, request parts) in `handlers`, answering with
//! the typed views of `api` (which `gatehouse ctl` reads back), so the HTTP layer here only
//! parses, authenticates and serializes. `scrape` reads the running state for `/metrics`.

pub mod api;
mod cluster;
mod handlers;
mod scrape;
mod status_page;
mod tls;

use crate::runtime::Shared;
use async_trait::async_trait;
use http::{Method, Response, StatusCode};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;

/// An answer of the API: status and JSON body (one of the views of `api`).
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
}

impl Reply {
    pub fn ok(view: &impl Serialize) -> Reply {
        Reply {
            status: StatusCode::OK,
            body: serde_json::to_value(view).unwrap_or(Value::Null),
        }
    }

    pub fn error(status: StatusCode, message: impl Into<String>) -> Reply {
        Reply::error_with(status, message, &())
    }

    /// An error with more fields (e.g. the names that do exist): a `*Detail` view of `api`.
    pub fn error_with(
        status: StatusCode,
        message: impl Into<String>,
        detail: &impl Serialize,
    ) -> Reply {
        let mut body = serde_json::to_value(api::ErrorView {
            error: message.into(),
            errors: Vec::new(),
        })
        .unwrap_or(Value::Null);
        if let (Some(b), Ok(Value::Object(extra))) =
            (body.as_object_mut(), serde_json::to_value(detail))
        {
            b.extend(extra);
        }
        Reply { status, body }
    }
}

/// The pingora app serving the API.
pub struct AdminApp {
    shared: Arc<Shared>,
}

impl AdminApp {
    pub fn new(shared: Arc<Shared>) -> Self {
        AdminApp { shared }
    }
}

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let path = session.req_header().uri.path();
        if session.req_header().method == Method::GET && (path == "/metrics" || path == "/") {
            let rt = self.shared.current();
            if rt.config.admin.address.ip().is_loopback()
                || authorize(rt.config.admin.token.as_deref(), session).is_ok()
            {
                let (body, content_type) = if path == "/metrics" {
                    (
                        scrape::render(&self.shared).into_bytes(),
                        "text/plain; version=0.0.4",
                    )
                } else {
                    (
                        status_page::PAGE.as_bytes().to_vec(),
                        "text/html; charset=utf-8",
                    )
                };
                return Response::builder()
                    .status(StatusCode::OK)
                    .header("Content-Type", content_type)
                    .header("Content-Length", body.len())
                    .header("Cache-Control", "no-store")
                    .body(body)
                    .unwrap_or_default();
            }
        }
        let reply = if session.req_header().method == Method::GET && path == "/health" {
            cluster::health(&self.shared, &self.shared.current())
        } else {
            self.handle(session).await
        };
        let mut body = serde_json::to_vec_pretty(&reply.body).unwrap_or_default();
        body.push(b'\n');
        Response::builder()
            .status(reply.status)
            .header("Content-Type", "application/json")
            .header("Content-Length", body.len())
            .header("Cache-Control", "no-store")
            .body(body)
            .unwrap_or_default()
    }
}

impl AdminApp {
    async fn handle(&self, session: &mut ServerSession) -> Reply {
        let rt = self.shared.current();
        let admin = &rt.config.admin;
        let req = session.req_header();
        let method = req.method.clone();
        let path = req.uri.path().to_string();
        let query = req.uri.query().unwrap_or("").to_string();
        let writes = method != Method::GET && method != Method::HEAD;
        if writes || !admin.address.ip().is_loopback() {
            if let Err(reply) = authorize(admin.token.as_deref(), session) {
                return reply;
            }
        }
        let caller = cluster::Caller::new(
            session
                .get_header("x-gatehouse-by")
                .and_then(|v| v.to_str().ok()),
            &query,
        );
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        match (&method, segments.as_slice()) {
            (&Method::GET, ["api", "pools"]) => handlers::pools(&rt),
            (&Method::GET, ["api", "pools", pool]) => handlers::pool(&rt, pool),
            (&Method::GET, ["api", "pools", pool, "servers", server]) => {
                handlers::server(&rt, pool, server)
            }
            (&Method::POST, ["api", "pools", pool, "servers", server, action]) => {
                handlers::server_action(&self.shared, &rt, pool, server, action, &query, &caller)
                    .await
            }
            (&Method::GET, ["api", "readonly"]) => handlers::readonly(&self.shared),
            (&Method::GET, ["api", "config"]) => handlers::config(&rt),
            (&Method::POST, ["api", "reload"]) => handlers::reload(&self.shared, &rt),
            (&Method::POST, ["api", "config", "check"]) => {
                match read_body(session, MAX_CONFIG_BODY).await {
                    Ok(body) => handlers::check_config(&rt, &body),
                    Err(reply) => reply,
                }
            }
            (&Method::GET, ["api", "cache"]) => handlers::cache(&rt),
            (&Method::GET, ["api", "tls"]) => tls::tls(&self.shared, &rt),
            (&Method::GET, ["api", "cluster"]) => cluster::view(&self.shared).await,
            (&Method::POST, ["api", "cache", action @ ("purge" | "ban")]) => {
                match read_body(session, MAX_BODY).await {
                    Ok(body) => {
                        handlers::invalidate(&self.shared, &rt, action, &body, &caller).await
                    }
                    Err(reply) => reply,
                }
            }
            (&Method::POST, ["api", "readonly"]) => match read_body(session, MAX_BODY).await {
                Ok(body) => handlers::set_readonly(&self.shared, &body, &caller).await,
                Err(reply) => reply,
            },
            (_, ["api", "readonly"]) => Reply::error(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{method} is not allowed on {path}"),
            ),
            (_, ["api", "pools", ..]) => Reply::error(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{method} is not allowed on {path}"),
            ),
            _ => Reply::error(StatusCode::NOT_FOUND, format!("no such endpoint: {path}")),
        }
    }
}

/// The largest request body the API reads (a config file to check: `MAX_CONFIG_BODY`).
const MAX_BODY: usize = 64 * 1024;
const MAX_CONFIG_BODY: usize = 4 << 20;

async fn read_body(session: &mut ServerSession, max: usize) -> Result<Vec<u8>, Reply> {
    let mut body = Vec::new();
    loop {
        match session.read_request_body().await {
            Ok(Some(chunk)) => {
                body.extend_from_slice(&chunk);
                if body.len() > max {
                    return Err(Reply::error(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        format!("body over {max} bytes"),
                    ));
                }
            }
            Ok(None) => return Ok(body),
            Err(e) => {
                return Err(Reply::error(
                    StatusCode::BAD_REQUEST,
                    format!("cannot read body: {e}"),
                ))
            }
        }
    }
}

/// Checks `Authorization: Bearer <token>`.
fn authorize(token: Option<&str>, session: &ServerSession) -> Result<(), Reply> {
    let Some(token) = token else {
        return Err(Reply::error(
            StatusCode::FORBIDDEN,
            "no admin token is configured: set admin.token or admin.token_file to allow changes",
        ));
    };
    let given = session
        .get_header(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(g) if constant_time_eq(g.trim().as_bytes(), token.as_bytes()) => Ok(()),
        Some(_) => Err(Reply::error(StatusCode::UNAUTHORIZED, "wrong token")),
        None => Err(Reply::error(
            StatusCode::UNAUTHORIZED,
            "missing token: send Authorization: Bearer <admin token>",
        )),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
