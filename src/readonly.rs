//! Read-only mode: while it is on, writes (any method but GET, HEAD and OPTIONS) get a 503
//! with `Retry-After` without reaching a server or having their body read; reads go on. In the
//! "logged-out" sub-mode, requests lose their cookies and responses their `Set-Cookie`, so every
//! visitor is anonymous and served from the cache.
//!
//! The switch is runtime state beside the config (`Shared::readonly`, an `ArcSwap`): the config
//! sets the default at first start, the admin API flips it (with a reason and an optional
//! expiry), and the state file carries it across reloads and restarts.

use crate::clock::unix_now;
use crate::config::{ReadonlyConfig, RouteReadonly};
use bytes::Bytes;
use pingora::proxy::Session;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The mode as switched at runtime.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadonlyState {
    pub enabled: bool,
    #[serde(default)]
    pub reason: Option<String>,
    /// Unix seconds when it was last switched.
    #[serde(default)]
    pub since: u64,
    /// Unix seconds when it turns itself off.
    #[serde(default)]
    pub until: Option<u64>,
}

impl ReadonlyState {
    pub fn switched(enabled: bool, reason: Option<String>, duration: Option<Duration>) -> Self {
        let now = unix_now();
        ReadonlyState {
            enabled,
            reason,
            since: now,
            until: duration.filter(|_| enabled).map(|d| now + d.as_secs()),
        }
    }

    /// On, and not past its expiry.
    pub fn is_active(&self) -> bool {
        self.enabled && self.until.is_none_or(|u| unix_now() < u)
    }
}

/// Whether a request meets read-only mode on its route.
pub fn applies(state: &ReadonlyState, route: RouteReadonly) -> bool {
    match route {
        RouteReadonly::Always => true,
        RouteReadonly::Never => false,
        RouteReadonly::Inherit => state.is_active(),
    }
}

/// True for a request read-only mode refuses: a write, not on an allowed path. `path` is the
/// request's as sent: it is allowed only if every reading of it servers make
/// (`request_path`) is, so `/login/../account` and `/login/..;/account` are writes to
/// `/account`.
pub fn refuses(method: &http::Method, path: &str, config: &ReadonlyConfig) -> bool {
    let write = !matches!(
        *method,
        http::Method::GET | http::Method::HEAD | http::Method::OPTIONS
    );
    if !write {
        return false;
    }
    let allowed = |p: &str| config.allow_paths.iter().any(|a| p.starts_with(a.as_str()));
    let lenient = crate::request_path::lenient(path);
    !(allowed(&crate::request_path::normalized(path)) && lenient.as_deref().is_none_or(allowed))
}

/// Whether the client prefers JSON to HTML (by its Accept header).
fn wants_json(session: &Session) -> bool {
    session
        .req_header()
        .headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| {
            let json = a.find("application/json");
            let html = a.find("text/html");
            json.is_some() && (html.is_none() || json < html)
        })
}

/// The 503 for a refused write. The connection closes after it: an upload's body is never read.
pub async fn refuse(
    session: &mut Session,
    hsts: Option<&http::HeaderValue>,
    config: &ReadonlyConfig,
    state: &ReadonlyState,
) -> pingora::Result<()> {
    let (content_type, body) = if wants_json(session) {
        let body = serde_json::json!({
            "error": "read-only",
            "message": config.message,
            "reason": state.reason,
            "retry_after": config.retry_after.as_secs(),
        });
        ("application/json", Bytes::from(body.to_string() + "\n"))
    } else {
        ("text/html; charset=utf-8", config.page.clone())
    };
    let extra = [
        (
            http::header::RETRY_AFTER,
            http::HeaderValue::from(config.retry_after.as_secs()),
        ),
        (
            http::HeaderName::from_static("x-gatehouse-readonly"),
            http::HeaderValue::from_static("1"),
        ),
    ];
    crate::respond::write(session, hsts, 503, &extra, content_type, body, false).await
}
