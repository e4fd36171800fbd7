//! Admin API handlers: plain functions of the running state and the request's parts.

use super::Reply;
use crate::balance::{AdminState, Pool, Server};
use crate::runtime::{Runtime, Shared};
use http::StatusCode;
use serde_json::{json, Value};
use std::time::{Duration, Instant, SystemTime};

/// The longest `?wait=` a drain may ask for.
const MAX_WAIT: Duration = Duration::from_secs(600);

pub fn pools(rt: &Runtime) -> Reply {
    Reply::ok(json!({ "pools": rt.pools.iter().map(pool_json).collect::<Vec<_>>() }))
}

pub fn pool(rt: &Runtime, name: &str) -> Reply {
    match find_pool(rt, name) {
        Ok(p) => Reply::ok(pool_json(p)),
        Err(r) => r,
    }
}

pub fn server(rt: &Runtime, pool: &str, server: &str) -> Reply {
    match find_server(rt, pool, server) {
        Ok((p, s)) => Reply::ok(server_json(p, s)),
        Err(r) => r,
    }
}

/// `drain`, `maint` or `ready`; a drain may wait (`?wait=30s`) for in-flight requests.
pub async fn server_action(
    shared: &Shared,
    rt: &Runtime,
    pool: &str,
    server: &str,
    action: &str,
    query: &str,
) -> Reply {
    let Some(state) = AdminState::parse(action) else {
        return Reply::error(
            StatusCode::NOT_FOUND,
            format!("unknown action {action:?}: use drain, maint or ready"),
        );
    };
    let wait = match query_param(query, "wait").map(humantime::parse_duration) {
        None => None,
        Some(Ok(d)) if d <= MAX_WAIT => Some(d),
        Some(_) => {
            return Reply::error(
                StatusCode::BAD_REQUEST,
                "wait must be a duration up to 10m, e.g. wait=30s",
            )
        }
    };
    if wait.is_some() && state == AdminState::Ready {
        return Reply::error(
            StatusCode::BAD_REQUEST,
            "wait applies to drain and maint only",
        );
    }
    let (p, s) = match find_server(rt, pool, server) {
        Ok(found) => found,
        Err(r) => return r,
    };
    let previous = s.state.set_admin_state(state);
    tracing::info!(
        pool = %p.config.name, server = %s.config.name,
        from = previous.as_str(), to = state.as_str(), "admin state changed"
    );
    let mut body = server_json(p, s);
    let obj = body.as_object_mut().expect("server json is an object");
    obj.insert("previous_state".into(), json!(previous.as_str()));
    if let Err(e) = shared.persist_state() {
        tracing::error!("{e}");
        obj.insert("persisted".into(), json!(false));
        obj.insert(
            "warning".into(),
            json!(format!("{e}: the change holds until restart")),
        );
    }
    if let Some(wait) = wait {
        let started = Instant::now();
        match s.state.wait_drained(wait).await {
            Ok(()) => {
                obj.insert("drained".into(), json!(true));
                obj.insert(
                    "waited_ms".into(),
                    json!(started.elapsed().as_millis() as u64),
                );
                obj.insert("in_flight".into(), json!(s.state.inflight()));
            }
            Err(left) => {
                return Reply::error_with(
                    StatusCode::CONFLICT,
                    format!(
                        "{left} request(s) still in flight after {}",
                        humantime::format_duration(wait)
                    ),
                    json!({ "in_flight": left, "state": state.as_str(), "drained": false }),
                );
            }
        }
    }
    Reply::ok(body)
}

fn query_param<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

fn find_pool<'a>(rt: &'a Runtime, name: &str) -> Result<&'a Pool, Reply> {
    rt.pools
        .iter()
        .find(|p| p.config.name == name)
        .ok_or_else(|| {
            Reply::error_with(
                StatusCode::NOT_FOUND,
                format!("unknown pool {name:?}"),
                json!({ "pools": rt.pools.iter().map(|p| &p.config.name).collect::<Vec<_>>() }),
            )
        })
}

fn find_server<'a>(
    rt: &'a Runtime,
    pool: &str,
    name: &str,
) -> Result<(&'a Pool, &'a Server), Reply> {
    let p = find_pool(rt, pool)?;
    match p.servers.iter().find(|s| s.config.name == name) {
        Some(s) => Ok((p, s)),
        None => Err(Reply::error_with(
            StatusCode::NOT_FOUND,
            format!("unknown server {name:?} in pool {pool:?}"),
            json!({ "servers": p.servers.iter().map(|s| &s.config.name).collect::<Vec<_>>() }),
        )),
    }
}

fn pool_json(p: &Pool) -> Value {
    json!({
        "name": p.config.name,
        "balance": format!("{:?}", p.config.balance).to_lowercase(),
        "servers": p.servers.iter().map(|s| server_json(p, s)).collect::<Vec<_>>(),
    })
}

fn server_json(p: &Pool, s: &Server) -> Value {
    let st = &s.state;
    let health = if !st.is_checked() {
        "unchecked"
    } else if st.is_healthy() {
        "up"
    } else if st.ever_up() {
        "down"
    } else {
        "pending"
    };
    let last_check = st.last_check().map(|c| {
        json!({
            "ok": c.ok,
            "ago_ms": SystemTime::now().duration_since(c.at).map_or(0, |d| d.as_millis() as u64),
            "detail": c.detail,
        })
    });
    json!({
        "pool": p.config.name,
        "name": s.config.name,
        "address": s.config.address.to_string(),
        "weight": s.config.weight,
        "backup": s.config.backup,
        "state": st.admin_state().as_str(),
        "health": health,
        "usable": st.is_usable(),
        "in_flight": st.inflight(),
        "requests": st.requests(),
        "connect_failures": st.connect_failures(),
        "check_failures": st.check_failures(),
        "last_check": last_check,
    })
}

fn readonly_json(shared: &Shared) -> Value {
    let state = shared.readonly.load();
    json!({
        "enabled": state.enabled,
        "active": state.is_active(),
        "reason": state.reason,
        "since": state.since,
        "until": state.until,
        "refused_writes": shared.readonly_refused.load(std::sync::atomic::Ordering::Relaxed),
    })
}

pub fn readonly(shared: &Shared) -> Reply {
    Reply::ok(readonly_json(shared))
}

/// `{"enabled": bool, "reason": "...", "for": "2h"}`
pub fn set_readonly(shared: &Shared, body: &[u8]) -> Reply {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Switch {
        enabled: bool,
        reason: Option<String>,
        #[serde(rename = "for")]
        duration: Option<String>,
    }
    let switch: Switch = match serde_json::from_slice(body) {
        Ok(s) => s,
        Err(e) => {
            return Reply::error(
                StatusCode::BAD_REQUEST,
                format!(
                "expected {{\"enabled\": true|false, \"reason\": \"...\", \"for\": \"2h\"}}: {e}"
            ),
            )
        }
    };
    let duration = match switch.duration.as_deref().map(humantime::parse_duration) {
        None => None,
        Some(Ok(d)) if !d.is_zero() => Some(d),
        Some(_) => {
            return Reply::error(
                StatusCode::BAD_REQUEST,
                "for must be a duration such as \"2h\"",
            )
        }
    };
    let state = crate::readonly::ReadonlyState::switched(switch.enabled, switch.reason, duration);
    let persisted = shared.set_readonly(state);
    let mut body = readonly_json(shared);
    if let Err(e) = persisted {
        tracing::error!("{e}");
        body["persisted"] = json!(false);
        body["warning"] = json!(format!("{e}: the change holds until restart"));
    }
    Reply::ok(body)
}

pub fn config(rt: &Runtime) -> Reply {
    let c = &rt.config;
    Reply::ok(json!({
        "checksum": c.source.checksum,
        "file": c.source.path.as_ref().map(|p| p.display().to_string()),
        "loaded_at": rt.loaded_at,
        "generation": rt.generation,
        "warnings": c.warnings.iter().map(|w| w.to_string()).collect::<Vec<_>>(),
    }))
}

pub fn cache(rt: &Runtime) -> Reply {
    use std::sync::atomic::Ordering::Relaxed;
    let c = &rt.cache.counters;
    let (bytes, objects) = rt.cache.usage();
    let hits = c.hits.load(Relaxed) + c.stale.load(Relaxed);
    let lookups =
        hits + c.misses.load(Relaxed) + c.expired.load(Relaxed) + c.revalidated.load(Relaxed);
    Reply::ok(json!({
        "enabled": rt.cache.config.enabled,
        "stored_bytes": bytes,
        "objects": objects,
        "max_size": rt.cache.config.max_size,
        "hits": c.hits.load(Relaxed),
        "misses": c.misses.load(Relaxed),
        "stale": c.stale.load(Relaxed),
        "passes": c.passes.load(Relaxed),
        "coalesced": c.coalesced.load(Relaxed),
        "evictions": c.evictions.load(Relaxed),
        "hit_ratio": if lookups == 0 { 0.0 } else { hits as f64 / lookups as f64 },
    }))
}

/// Reloads the running config's file: all or nothing; the errors come back on refusal.
pub fn reload(shared: &Shared, rt: &Runtime) -> Reply {
    let Some(path) = rt.config.source.path.clone() else {
        return Reply::error(
            StatusCode::CONFLICT,
            "the running config was not read from a file",
        );
    };
    match shared.reload_from(&path) {
        Ok(()) => {
            let now = shared.current();
            Reply::ok(json!({
                "reloaded": true,
                "file": path.display().to_string(),
                "checksum": now.config.source.checksum,
                "generation": now.generation,
                "warnings": now.config.warnings.iter().map(|w| w.to_string()).collect::<Vec<_>>(),
            }))
        }
        Err(errors) => Reply::error_with(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "reload refused, the running config stays: {} problem(s)",
                errors.errors.len()
            ),
            json!({
                "reloaded": false,
                "errors": errors.errors.iter().filter(|e| !e.warning).map(|e| e.to_string()).collect::<Vec<_>>(),
                "needs_upgrade": errors.errors.iter().any(|e| e.message.starts_with("needs upgrade")),
            }),
        ),
    }
}

/// Purge one URL (all its variants) or ban by host and path prefix or regex.
pub fn invalidate(rt: &Runtime, action: &str, body: &[u8]) -> Reply {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Target {
        host: Option<String>,
        path: Option<String>,
        prefix: Option<String>,
        regex: Option<String>,
    }
    let t: Target = match serde_json::from_slice(body) {
        Ok(t) => t,
        Err(e) => return Reply::error(StatusCode::BAD_REQUEST, format!("bad JSON: {e}")),
    };
    let cache = rt.cache;
    let removed =
        match (action, &t) {
            (
                "purge",
                Target {
                    host: Some(h),
                    path: Some(p),
                    prefix: None,
                    regex: None,
                },
            ) => cache.purge(h, p),
            (
                "ban",
                Target {
                    path: None,
                    prefix: Some(p),
                    regex: None,
                    ..
                },
            ) => cache.ban_prefix(t.host.as_deref(), p),
            (
                "ban",
                Target {
                    path: None,
                    prefix: None,
                    regex: Some(r),
                    ..
                },
            ) => match regex::Regex::new(r) {
                Ok(re) => cache.ban_regex(t.host.as_deref(), &re),
                Err(e) => return Reply::error(StatusCode::BAD_REQUEST, format!("bad regex: {e}")),
            },
            ("purge", _) => {
                return Reply::error(
                    StatusCode::BAD_REQUEST,
                    "purge takes {\"host\": \"...\", \"path\": \"/...\"}",
                )
            }
            _ => return Reply::error(
                StatusCode::BAD_REQUEST,
                "ban takes {\"host\": optional, and \"prefix\": \"/...\" or \"regex\": \"...\"}",
            ),
        };
    tracing::info!(action, host = ?t.host, removed, "cache invalidation");
    Reply::ok(json!({ "removed": removed }))
}
