//! Admin API handlers: plain functions of the running state and the request's parts, answering
//! with the typed views of `api`.

use super::api::*;
use super::cluster::{written, Caller};
use super::Reply;
use crate::balance::{AdminState, Pool, Server};
use crate::cache::Invalidation as CacheInvalidation;
use crate::config::Config;
use crate::runtime::{Runtime, Shared};
use http::StatusCode;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant, SystemTime};

/// The longest `?wait=` a drain may ask for.
const MAX_WAIT: Duration = Duration::from_secs(600);

pub fn pools(rt: &Runtime) -> Reply {
    Reply::ok(&PoolsView {
        pools: rt.pools.iter().map(pool_view).collect(),
    })
}

pub fn pool(rt: &Runtime, name: &str) -> Reply {
    match find_pool(rt, name) {
        Ok(p) => Reply::ok(&pool_view(p)),
        Err(r) => r,
    }
}

pub fn server(rt: &Runtime, pool: &str, server: &str) -> Reply {
    match find_server(rt, pool, server) {
        Ok((p, s)) => Reply::ok(&server_view(p, s)),
        Err(r) => r,
    }
}

/// Drain, maint or ready; a drain may wait (`?wait=30s`) for in-flight requests.
/// Clustered, the change goes through etcd to every node (`?local=1`: this node only).
pub async fn server_action(
    shared: &Shared,
    rt: &Runtime,
    pool: &str,
    server: &str,
    state: AdminState,
    query: &str,
    caller: &Caller,
) -> Reply {
    let wait = match drain_wait(query, state) {
        Ok(w) => w,
        Err(reply) => return reply,
    };
    let (p, s) = match find_server(rt, pool, server) {
        Ok(found) => found,
        Err(r) => return r,
    };
    let (previous, persisted, cluster) = match caller.cluster(shared) {
        Some(c) => {
            let previous = s.state.admin_state();
            let write = c.put_server(pool, server, state, &caller.by).await;
            match written(c, write).await {
                Ok(w) => (previous, Persisted::default(), Some(w)),
                Err(reply) => return reply,
            }
        }
        None => {
            let previous = s.state.set_admin_state(state);
            (previous, Persisted::from(shared.persist_state()), None)
        }
    };
    tracing::info!(
        pool = %p.config.name, server = %s.config.name, by = caller.by,
        from = previous.as_str(), to = state.as_str(), "admin state changed"
    );
    let mut view = ServerActionView {
        server: server_view(p, s),
        previous_state: previous.as_str().into(),
        drained: None,
        waited_ms: None,
        persisted,
        cluster,
    };
    if let Some(wait) = wait {
        let started = Instant::now();
        if let Err(left) = s.state.wait_drained(wait).await {
            return Reply::error_with(
                StatusCode::CONFLICT,
                format!(
                    "{left} request(s) still in flight after {}",
                    humantime::format_duration(wait)
                ),
                &DrainTimeoutDetail {
                    in_flight: left,
                    state: state.as_str(),
                    drained: false,
                },
            );
        }
        view.drained = Some(true);
        view.waited_ms = Some(started.elapsed().as_millis() as u64);
        view.server.in_flight = s.state.inflight();
    }
    Reply::ok(&view)
}

/// `?wait=30s`: how long a drain or maint waits for in-flight requests.
fn drain_wait(query: &str, state: AdminState) -> Result<Option<Duration>, Reply> {
    let wait = match query_param(query, "wait").map(humantime::parse_duration) {
        None => None,
        Some(Ok(d)) if d <= MAX_WAIT => Some(d),
        Some(_) => {
            return Err(Reply::error(
                StatusCode::BAD_REQUEST,
                "wait must be a duration up to 10m, e.g. wait=30s",
            ))
        }
    };
    if wait.is_some() && state == AdminState::Ready {
        return Err(Reply::error(
            StatusCode::BAD_REQUEST,
            "wait applies to drain and maint only",
        ));
    }
    Ok(wait)
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
                &UnknownPoolDetail {
                    pools: rt.pools.iter().map(|p| p.config.name.as_str()).collect(),
                },
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
            &UnknownServerDetail {
                servers: p.servers.iter().map(|s| s.config.name.as_str()).collect(),
            },
        )),
    }
}

fn pool_view(p: &Pool) -> PoolView {
    PoolView {
        name: p.config.name.clone(),
        balance: format!("{:?}", p.config.balance).to_lowercase(),
        servers: p.servers.iter().map(|s| server_view(p, s)).collect(),
    }
}

fn server_view(p: &Pool, s: &Server) -> ServerView {
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
    ServerView {
        pool: p.config.name.clone(),
        name: s.config.name.clone(),
        address: s.config.address.to_string(),
        weight: s.config.weight,
        effective_weight: s.effective_weight(),
        slowstart_remaining_ms: st.ramp.remaining().map(|d| d.as_millis() as u64),
        backup: s.config.backup,
        state: st.admin_state().as_str().into(),
        health: health.into(),
        usable: st.is_usable(),
        in_flight: st.inflight(),
        requests: st.requests(),
        connect_failures: st.connect_failures(),
        check_failures: st.check_failures(),
        last_check: st.last_check().map(|c| CheckView {
            ok: c.ok,
            ago_ms: SystemTime::now()
                .duration_since(c.at)
                .map_or(0, |d| d.as_millis() as u64),
            detail: c.detail.clone(),
        }),
    }
}

fn readonly_view(
    shared: &Shared,
    persisted: Persisted,
    cluster: Option<ClusterWriteView>,
) -> ReadonlyView {
    let state = shared.readonly.load();
    ReadonlyView {
        enabled: state.enabled,
        active: state.is_active(),
        reason: state.reason.clone(),
        since: state.since,
        until: state.until,
        refused_writes: shared.readonly_refused.load(Relaxed),
        persisted,
        cluster,
    }
}

pub fn readonly(shared: &Shared) -> Reply {
    Reply::ok(&readonly_view(shared, Persisted::default(), None))
}

/// `{"enabled": bool, "reason": "...", "for": "2h"}`
pub async fn set_readonly(shared: &Shared, body: &[u8], caller: &Caller) -> Reply {
    let switch: ReadonlySwitch = match serde_json::from_slice(body) {
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
    match caller.cluster(shared) {
        Some(c) => match written(c, c.put_readonly(state, &caller.by).await).await {
            Ok(w) => Reply::ok(&readonly_view(shared, Persisted::default(), Some(w))),
            Err(reply) => reply,
        },
        None => {
            let persisted = Persisted::from(shared.set_readonly(state));
            Reply::ok(&readonly_view(shared, persisted, None))
        }
    }
}

pub fn config(rt: &Runtime) -> Reply {
    let c = &rt.config;
    Reply::ok(&ConfigView {
        checksum: c.source.checksum.clone(),
        file: c.source.path.as_ref().map(|p| p.display().to_string()),
        loaded_at: rt.loaded_at,
        generation: rt.generation,
        warnings: c.warnings.iter().map(|w| w.to_string()).collect(),
    })
}

pub fn cache(rt: &Runtime) -> Reply {
    let c = &rt.cache.counters;
    let (stored_bytes, objects) = rt.cache.usage();
    let hits = c.hits.load(Relaxed) + c.stale.load(Relaxed);
    let lookups =
        hits + c.misses.load(Relaxed) + c.expired.load(Relaxed) + c.revalidated.load(Relaxed);
    Reply::ok(&CacheView {
        enabled: rt.cache.config.enabled,
        stored_bytes,
        objects,
        max_size: rt.cache.config.max_size,
        hits: c.hits.load(Relaxed),
        misses: c.misses.load(Relaxed),
        stale: c.stale.load(Relaxed),
        passes: c.passes.load(Relaxed),
        coalesced: c.coalesced.load(Relaxed),
        evictions: c.evictions.load(Relaxed),
        hit_ratio: if lookups == 0 {
            0.0
        } else {
            hits as f64 / lookups as f64
        },
        snapshot: {
            let s = &c.snapshot;
            super::api::SnapshotView {
                loaded_objects: s.loaded_objects.load(Relaxed),
                loaded_bytes: s.loaded_bytes.load(Relaxed),
                load_ms: s.load_ms.load(Relaxed),
                refused: s.refused.load(Relaxed) > 0,
                written_objects: s.written_objects.load(Relaxed),
                written_bytes: s.written_bytes.load(Relaxed),
                write_ms: s.write_ms.load(Relaxed),
            }
        },
    })
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
        Ok(changes) => {
            let now = shared.current();
            Reply::ok(&ReloadView {
                reloaded: true,
                file: path.display().to_string(),
                checksum: now.config.source.checksum.clone(),
                generation: now.generation,
                warnings: now.config.warnings.iter().map(|w| w.to_string()).collect(),
                changed: changes.reload,
                after_restart: changes.after_restart,
            })
        }
        Err(errors) => Reply::error_with(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "reload refused, the running config stays: {} problem(s)",
                errors.errors.len()
            ),
            &ReloadRefusedDetail {
                reloaded: false,
                errors: errors
                    .errors
                    .iter()
                    .filter(|e| !e.warning)
                    .map(|e| e.to_string())
                    .collect(),
                needs_upgrade: errors
                    .errors
                    .iter()
                    .any(|e| e.message.starts_with("needs upgrade")),
                needs_restart: errors
                    .errors
                    .iter()
                    .any(|e| e.message.starts_with("needs restart")),
            },
        ),
    }
}

/// What a purge's and a ban's bodies hold, told to a caller that sent something else.
const PURGE_TAKES: &str = "purge takes {\"host\": \"...\", \"path\": \"/...\"}";
const BAN_TAKES: &str =
    "ban takes {\"host\": optional, and \"prefix\": \"/...\" or \"regex\": \"...\"}";

/// Purge one URL (all its variants) or ban by host and path prefix or regex (`Endpoint::Purge`
/// or `Endpoint::Ban`).
pub async fn invalidate(
    shared: &Shared,
    rt: &Runtime,
    endpoint: Endpoint<'_>,
    body: &[u8],
    caller: &Caller,
) -> Reply {
    let t: Invalidation = match serde_json::from_slice(body) {
        Ok(t) => t,
        Err(e) => return Reply::error(StatusCode::BAD_REQUEST, format!("bad JSON: {e}")),
    };
    let what = match (endpoint, t.host, t.path, t.prefix, t.regex) {
        (Endpoint::Purge, Some(host), Some(path), None, None) => {
            CacheInvalidation::Purge { host, path }
        }
        (Endpoint::Ban, host, None, Some(prefix), None) => {
            CacheInvalidation::BanPrefix { host, prefix }
        }
        (Endpoint::Ban, host, None, None, Some(regex)) => {
            CacheInvalidation::BanRegex { host, regex }
        }
        (Endpoint::Purge, ..) => return Reply::error(StatusCode::BAD_REQUEST, PURGE_TAKES),
        _ => return Reply::error(StatusCode::BAD_REQUEST, BAN_TAKES),
    };
    if let Err(e) = what.check() {
        return Reply::error(StatusCode::BAD_REQUEST, e);
    }
    let (removed, cluster) = match caller.cluster(shared) {
        Some(c) => {
            let lifetime = crate::cache::longest_life(&rt.config.routes);
            let write = c.put_invalidation(what.clone(), lifetime, &caller.by).await;
            match written(c, write).await {
                Ok(w) => (c.status.removed_at(w.revision), Some(w)),
                Err(reply) => return reply,
            }
        }
        None => (rt.cache.apply(&what).ok(), None),
    };
    tracing::info!(?what, by = caller.by, removed, "cache invalidation");
    Reply::ok(&InvalidationView {
        removed: removed.map(|n| n as u64),
        cluster,
    })
}

/// Validates a config file's text and says what a reload of it would do here; nothing applies.
pub fn check_config(rt: &Runtime, body: &[u8]) -> Reply {
    let req: ConfigCheck = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => {
            return Reply::error(
                StatusCode::BAD_REQUEST,
                format!("expected {{\"file\": ..., \"text\": ...}}: {e}"),
            )
        }
    };
    let running = &rt.config;
    let mut view = ConfigCheckView {
        valid: false,
        errors: Vec::new(),
        warnings: Vec::new(),
        running_checksum: running.source.checksum.clone(),
        same_as_running: false,
        reload: Vec::new(),
        after_restart: Vec::new(),
        upgrade: Vec::new(),
        restart: Vec::new(),
    };
    match Config::from_file_text(&req.text, std::path::Path::new(&req.file)) {
        Ok(new) => {
            let c = crate::config::changes::classify(running, &new);
            view.valid = true;
            view.warnings = new.warnings.iter().map(|w| w.to_string()).collect();
            view.same_as_running = new.source.checksum == running.source.checksum;
            (view.reload, view.after_restart) = (c.reload, c.after_restart);
            (view.upgrade, view.restart) = (c.upgrade, c.restart);
        }
        Err(errors) => {
            for e in errors.errors {
                if e.warning {
                    view.warnings.push(e.to_string());
                } else {
                    view.errors.push(e.to_string());
                }
            }
        }
    }
    Reply::ok(&view)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The query `ctl` writes (`Query`) is the one the handlers read back.
    #[test]
    fn the_query_written_is_the_query_read() {
        let query = |q: Query| q.to_string().trim_start_matches('?').to_string();
        let wait = Duration::from_millis(90_250);
        let both = query(Query {
            wait: Some(wait),
            local: true,
        });
        assert_eq!(drain_wait(&both, AdminState::Drain).ok(), Some(Some(wait)));
        assert!(Caller::new(None, &both).local);
        let neither = query(Query::default());
        assert_eq!(drain_wait(&neither, AdminState::Maint).ok(), Some(None));
        assert!(!Caller::new(None, &neither).local);
    }
}
