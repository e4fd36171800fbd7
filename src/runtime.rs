//! The running state shared by every request: the current config generation (`Runtime`) behind
//! one `ArcSwap`, loaded once per request so a request never sees two configs, and beside it the
//! state that outlives a config (server states in the `ServerRegistry`).

use crate::balance::{build_pools, Pool, ServerRegistry};
use crate::cache::Cache;
use crate::config::Config;
use crate::routing::Router;
use crate::tls::{CertSet, SniResolver};
use arc_swap::ArcSwap;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// One config generation with its derived tables.
pub struct Runtime {
    pub config: Arc<Config>,
    pub router: Router,
    pub pools: Vec<Pool>,
    /// The cache; the same one across reloads while the `[cache]` section is unchanged.
    pub cache: &'static Cache,
    /// Per-request metric handles of this config (last: requests with no route).
    pub route_metrics: Vec<crate::metrics::RouteMetrics>,
    /// When this config was loaded (Unix seconds).
    pub loaded_at: u64,
    /// Increases with every swap; lets background services notice a new config.
    pub generation: u64,
    /// Listener index by the exact local address a connection arrived on.
    listener_by_addr: HashMap<SocketAddr, usize>,
    /// Listener index by port, for listeners bound to 0.0.0.0 or [::].
    listener_by_port: HashMap<u16, usize>,
}

impl Runtime {
    /// The listener a connection with local address `local` was accepted on.
    pub fn listener_for(&self, local: SocketAddr) -> Option<usize> {
        self.listener_by_addr
            .get(&local)
            .or_else(|| self.listener_by_port.get(&local.port()))
            .copied()
    }
}

/// Everything shared between requests, services and (later) the admin API.
pub struct Shared {
    runtime: ArcSwap<Runtime>,
    pub registry: ServerRegistry,
    generations: AtomicU64,
    /// Certificate resolvers of the TLS listeners, by listener name (listeners live as long as
    /// the process; their certificates are swapped on reload).
    pub tls: HashMap<String, std::sync::Arc<SniResolver>>,
    pub metrics: crate::metrics::Metrics,
    /// Set when a graceful stop or upgrade hand-off begins: every response from then on closes
    /// its connection, so kept-alive clients move to fresh connections (which the new process
    /// accepts) before pingora drops idle ones.
    pub closing: std::sync::atomic::AtomicBool,
    pub reloads_ok: AtomicU64,
    pub reloads_failed: AtomicU64,
    /// The per-request timing log (targets fixed for the life of the process).
    pub access_log: crate::accesslog::AccessLog,
    /// Read-only mode as switched at runtime.
    pub readonly: ArcSwap<crate::readonly::ReadonlyState>,
    /// Refused writes, for metrics.
    pub readonly_refused: AtomicU64,
    /// Open client connections and their refusals.
    pub conns: std::sync::Arc<crate::conn::ConnTracker>,
    /// Serializes writes of the state file (admin calls only, never held across an await).
    state_file: std::sync::Mutex<std::path::PathBuf>,
}

impl Shared {
    pub fn new(config: Config) -> Arc<Shared> {
        let registry = ServerRegistry::default();
        let tls = config
            .listeners
            .iter()
            .filter_map(|l| {
                let t = l.tls.as_ref()?;
                Some((
                    l.name.clone(),
                    SniResolver::new(CertSet::new(&t.certificates, t.default)),
                ))
            })
            .collect();
        let state_file = config.server.state_dir.join("state.json");
        let cache = Cache::new(&config.cache);
        let access_log = crate::accesslog::AccessLog::new(&config.access_log);
        let metrics = crate::metrics::Metrics::new();
        let readonly = crate::readonly::ReadonlyState {
            enabled: config.readonly.enabled,
            since: crate::readonly::unix_now(),
            ..Default::default()
        };
        let runtime = build(config, &registry, cache, &metrics, 0);
        let shared = Arc::new(Shared {
            runtime: ArcSwap::from_pointee(runtime),
            registry,
            generations: AtomicU64::new(0),
            tls,
            access_log,
            metrics,
            closing: std::sync::atomic::AtomicBool::new(false),
            reloads_ok: AtomicU64::new(0),
            reloads_failed: AtomicU64::new(0),
            readonly: ArcSwap::from_pointee(readonly),
            readonly_refused: AtomicU64::new(0),
            conns: Default::default(),
            state_file: std::sync::Mutex::new(state_file),
        });
        shared.restore_state();
        shared
    }

    /// The config generation in force now.
    pub fn current(&self) -> Arc<Runtime> {
        self.runtime.load_full()
    }

    /// Swaps in a new, already validated config; servers that still exist keep their state and
    /// TLS listeners get the new certificates for their next handshakes.
    pub fn apply(&self, config: Config) {
        self.swap_certificates(&config);
        *self.state_file.lock().unwrap_or_else(|e| e.into_inner()) =
            config.server.state_dir.join("state.json");
        let generation = self.generations.fetch_add(1, Ordering::Relaxed) + 1;
        let old = self.current().cache;
        let cache = if old.config == config.cache {
            old
        } else {
            // A resized cache is a new cache: free the old one's objects (the small structure
            // itself stays, as pingora holds storage as &'static).
            old.storage.entries.invalidate_all();
            Cache::new(&config.cache)
        };
        let runtime = build(config, &self.registry, cache, &self.metrics, generation);
        self.registry.retain(&runtime.config);
        self.runtime.store(Arc::new(runtime));
    }
}

impl Shared {
    /// Applies the state file's admin states to the servers that exist.
    fn restore_state(&self) {
        let path = self.state_path();
        let saved = match crate::statefile::load(&path) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("ignoring the state file: {e}");
                return;
            }
        };
        if let Some(ro) = saved.readonly {
            tracing::info!(enabled = ro.enabled, reason = ?ro.reason, "read-only mode restored");
            self.readonly.store(Arc::new(ro));
        }
        let rt = self.current();
        for pool in &rt.pools {
            for s in &pool.servers {
                let key = format!("{}/{}", pool.config.name, s.config.name);
                if let Some(state) = saved.servers.get(&key) {
                    s.state.set_admin_state(*state);
                    tracing::info!(server = %key, state = state.as_str(), "admin state restored");
                }
            }
        }
    }

    pub fn state_path(&self) -> std::path::PathBuf {
        self.state_file
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Writes the current runtime decisions to the state file.
    pub fn persist_state(&self) -> Result<(), String> {
        let path = self.state_file.lock().unwrap_or_else(|e| e.into_inner());
        let state = crate::statefile::StateFile {
            servers: self.registry.admin_states(),
            readonly: Some((**self.readonly.load()).clone()),
        };
        crate::statefile::save(&path, &state)
    }

    /// Switches read-only mode and writes the state file.
    pub fn set_readonly(&self, state: crate::readonly::ReadonlyState) -> Result<(), String> {
        tracing::warn!(enabled = state.enabled, reason = ?state.reason, until = ?state.until, "read-only mode switched");
        self.readonly.store(Arc::new(state));
        self.persist_state()
    }

    /// Gives each running TLS listener the certificate set `config` names for it.
    pub fn swap_certificates(&self, config: &Config) {
        for l in &config.listeners {
            if let (Some(t), Some(resolver)) = (&l.tls, self.tls.get(&l.name)) {
                resolver.swap(CertSet::new(&t.certificates, t.default));
            }
        }
    }

    /// Reads, validates and applies a config file: all or nothing. On error the running config
    /// stays and every problem comes back.
    pub fn reload_from(&self, path: &std::path::Path) -> Result<(), crate::config::ConfigErrors> {
        let result = self.try_reload(path);
        match &result {
            Ok(()) => {
                self.reloads_ok.fetch_add(1, Ordering::Relaxed);
                tracing::info!(file = %path.display(), "config reloaded");
            }
            Err(errors) => {
                self.reloads_failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!("config reload refused, the running config stays:\n{errors}");
            }
        }
        result
    }

    fn try_reload(&self, path: &std::path::Path) -> Result<(), crate::config::ConfigErrors> {
        let config = Config::load(path)?;
        let needs_upgrade = needs_new_sockets(&self.current().config, &config);
        if !needs_upgrade.is_empty() {
            return Err(crate::config::ConfigErrors {
                source: path.display().to_string(),
                errors: needs_upgrade,
            });
        }
        self.apply(config);
        if let Err(e) = self.persist_state() {
            tracing::error!("{e}");
        }
        Ok(())
    }
}

/// Changes a reload cannot apply because they need sockets opened or closed: those take a
/// binary upgrade (`run --upgrade`), never half of a reload.
pub fn needs_new_sockets(old: &Config, new: &Config) -> Vec<crate::config::ConfigError> {
    use crate::config::{ConfigError, KeyPath};
    let mut out = Vec::new();
    let mut push = |path: KeyPath, message: String| {
        out.push(ConfigError {
            path,
            line: None,
            message,
            warning: false,
        })
    };
    let shape = |c: &Config| -> Vec<(String, std::net::SocketAddr, bool)> {
        c.listeners
            .iter()
            .map(|l| (l.name.clone(), l.address, l.tls.is_some()))
            .collect()
    };
    if shape(old) != shape(new) {
        push(
            KeyPath::root().key("listeners"),
            "needs upgrade: listeners were added, removed or changed address or TLS; \
             run a binary upgrade (gatehouse run --upgrade) to apply"
                .into(),
        );
    }
    if old.access_log.targets != new.access_log.targets {
        push(
            KeyPath::root().key("access_log").key("targets"),
            "needs upgrade: access log targets changed; run a binary upgrade to apply".into(),
        );
    }
    if (old.admin.enabled, old.admin.address) != (new.admin.enabled, new.admin.address) {
        push(
            KeyPath::root().key("admin").key("address"),
            "needs upgrade: the admin listener changed; run a binary upgrade to apply".into(),
        );
    }
    out
}

fn build(
    config: Config,
    registry: &ServerRegistry,
    cache: &'static Cache,
    metrics: &crate::metrics::Metrics,
    generation: u64,
) -> Runtime {
    let mut listener_by_addr = HashMap::new();
    let mut listener_by_port = HashMap::new();
    for (i, l) in config.listeners.iter().enumerate() {
        listener_by_addr.insert(l.address, i);
        if l.address.ip().is_unspecified() {
            listener_by_port.insert(l.address.port(), i);
        }
    }
    Runtime {
        listener_by_addr,
        listener_by_port,
        router: Router::new(&config.routes),
        pools: build_pools(&config, registry),
        route_metrics: metrics.routes(&config),
        loaded_at: crate::readonly::unix_now(),
        config: Arc::new(config),
        cache,
        generation,
    }
}
