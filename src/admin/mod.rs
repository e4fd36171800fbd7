//! The admin HTTP API, on its own listener (loopback by default): JSON in and out, a bearer
//! token for every state-changing call (and for every call on a non-loopback address).
//!
//! Its endpoints and their table are `api::Endpoint`: the router matches the same
//! definitions `gatehouse ctl` builds its calls from.
//! Every state-changing call goes to every node through etcd when clustered (`?local=1`: this
//! node alone; `X-Gatehouse-By` names who asked), see `cluster`.
//! Handlers are plain functions of (shared state, request parts) in `handlers`, answering with
//! the typed views of `api` (which `gatehouse ctl` reads back), so the HTTP layer here only
//! parses, authenticates and serializes. `scrape` reads the running state for `/metrics`.

pub mod api;
mod blocks;
mod cache_peers;
mod cluster;
mod endpoint;
mod handlers;
mod scrape;
mod status_page;
mod tls;

use crate::config::AdminConfig;
use crate::runtime::{Runtime, Shared};
use api::{Endpoint, Miss};
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
        let req = session.req_header();
        let (method, path) = (req.method.clone(), req.uri.path().to_string());
        let reply = match Endpoint::parse(&method, &path) {
            Ok(page @ (Endpoint::Metrics | Endpoint::StatusPage)) => {
                match authorize_read(&self.shared.current().config.admin, session) {
                    Ok(()) => return self.page(page),
                    Err(reply) => reply,
                }
            }
            Ok(Endpoint::Health) => cluster::health(&self.shared, &self.shared.current()),
            Ok(Endpoint::CacheObject { key }) => {
                let rt = self.shared.current();
                let query = session.req_header().uri.query().unwrap_or("").to_string();
                match authorize_peer(&rt.config, session) {
                    Ok(()) => match cache_peers::object(&rt, key, &query).await {
                        Ok(record) => return raw(record),
                        Err(reply) => reply,
                    },
                    Err(reply) => reply,
                }
            }
            Ok(Endpoint::CacheHot) => {
                let rt = self.shared.current();
                let query = session.req_header().uri.query().unwrap_or("").to_string();
                match authorize_peer(&rt.config, session) {
                    // A scan of the whole cache: off the admin API's runtime threads.
                    Ok(()) => tokio::task::spawn_blocking(move || cache_peers::hot(&rt, &query))
                        .await
                        .unwrap_or_else(|e| {
                            Reply::error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
                        }),
                    Err(reply) => reply,
                }
            }
            called => self.handle(session, called, &method, &path).await,
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
    /// `/metrics` or the status page: not JSON.
    fn page(&self, page: Endpoint) -> Response<Vec<u8>> {
        let (body, content_type) = if page == Endpoint::Metrics {
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
        Response::builder()
            .status(StatusCode::OK)
            .header("Content-Type", content_type)
            .header("Content-Length", body.len())
            .header("Cache-Control", "no-store")
            .body(body)
            .unwrap_or_default()
    }

    /// A JSON call: every write needs the token, and so does every read off loopback.
    async fn handle(
        &self,
        session: &mut ServerSession,
        called: Result<Endpoint<'_>, Miss<'_>>,
        method: &Method,
        path: &str,
    ) -> Reply {
        let rt = self.shared.current();
        let writes = method != Method::GET && method != Method::HEAD;
        let authorized = if writes {
            authorize(rt.config.admin.token.as_deref(), session)
        } else {
            authorize_read(&rt.config.admin, session)
        };
        if let Err(reply) = authorized {
            return reply;
        }
        let endpoint = match called {
            Ok(endpoint) => endpoint,
            Err(miss) => return missed(miss, method, path),
        };
        let query = session.req_header().uri.query().unwrap_or("").to_string();
        let caller = cluster::Caller::new(
            session
                .get_header("x-gatehouse-by")
                .and_then(|v| v.to_str().ok()),
            &query,
        );
        self.call(session, &rt, endpoint, &query, &caller).await
    }

    /// The handler of an endpoint, once the caller may call it.
    async fn call(
        &self,
        session: &mut ServerSession,
        rt: &Runtime,
        endpoint: Endpoint<'_>,
        query: &str,
        caller: &cluster::Caller,
    ) -> Reply {
        let shared = &self.shared;
        match endpoint {
            Endpoint::Pools => handlers::pools(rt),
            Endpoint::Pool { pool } => handlers::pool(rt, pool),
            Endpoint::Server { pool, server } => handlers::server(rt, pool, server),
            Endpoint::ServerAction {
                pool,
                server,
                state,
            } => handlers::server_action(shared, rt, pool, server, state, query, caller).await,
            Endpoint::Readonly => handlers::readonly(shared),
            Endpoint::Config => handlers::config(rt),
            Endpoint::Reload => handlers::reload(shared, rt),
            Endpoint::ConfigCheck => match read_body(session, MAX_CONFIG_BODY).await {
                Ok(body) => handlers::check_config(rt, &body),
                Err(reply) => reply,
            },
            Endpoint::Cache => handlers::cache(rt),
            Endpoint::Tls => tls::tls(shared, rt),
            Endpoint::Cluster => cluster::view(shared).await,
            Endpoint::Purge | Endpoint::Ban => match read_body(session, MAX_BODY).await {
                Ok(body) => handlers::invalidate(shared, rt, endpoint, &body, caller).await,
                Err(reply) => reply,
            },
            Endpoint::SetReadonly => match read_body(session, MAX_BODY).await {
                Ok(body) => handlers::set_readonly(shared, &body, caller).await,
                Err(reply) => reply,
            },
            Endpoint::Blocks => blocks::list(shared),
            Endpoint::Block => match read_body(session, MAX_BODY).await {
                Ok(body) => blocks::block(shared, &body, caller).await,
                Err(reply) => reply,
            },
            Endpoint::Unblock { cidr } => blocks::unblock(shared, cidr, caller).await,
            // Answered by `response`, never called here.
            Endpoint::Health
            | Endpoint::Metrics
            | Endpoint::StatusPage
            | Endpoint::CacheHot
            | Endpoint::CacheObject { .. } => Reply::error(
                StatusCode::NOT_FOUND,
                format!("no such endpoint: {}", endpoint.path()),
            ),
        }
    }
}

/// The answer to a request that names no endpoint.
fn missed(miss: Miss, method: &Method, path: &str) -> Reply {
    match miss {
        Miss::UnknownAction(action) => Reply::error(
            StatusCode::NOT_FOUND,
            format!("unknown action {action:?}: use drain, maint or ready"),
        ),
        Miss::MethodNotAllowed => Reply::error(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{method} is not allowed on {path}"),
        ),
        Miss::NotFound => Reply::error(StatusCode::NOT_FOUND, format!("no such endpoint: {path}")),
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

/// A read needs the token on an address other than loopback.
fn authorize_read(admin: &AdminConfig, session: &ServerSession) -> Result<(), Reply> {
    if admin.address.ip().is_loopback() {
        return Ok(());
    }
    authorize(admin.token.as_deref(), session)
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

/// A peer's call (`cache_peers`): the fleet's `[cache] peer_token`, which opens only these
/// endpoints, or the admin token.
fn authorize_peer(config: &crate::config::Config, session: &ServerSession) -> Result<(), Reply> {
    let peer_token = config.cache.peers.token.as_deref();
    if peer_token.is_some() && authorize(peer_token, session).is_ok() {
        return Ok(());
    }
    authorize(config.admin.token.as_deref(), session)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A binary answer (an object for a peer).
fn raw(body: Vec<u8>) -> Response<Vec<u8>> {
    Response::builder()
        .status(StatusCode::OK)
        .header("Content-Type", "application/x-gatehouse-object")
        .header("Content-Length", body.len())
        .header("Cache-Control", "no-store")
        // This node's clock, that the object's times are on (`cache::peers::CLOCK`).
        .header(
            crate::cache::peers::CLOCK,
            crate::cache::peers::unix_nanos(std::time::SystemTime::now()),
        )
        .body(body)
        .unwrap_or_default()
}
