//! The running state shared by every request: the current config generation (`Runtime`) behind
//! one `ArcSwap`, loaded once per request so a request never sees two configs, and beside it the
//! state that outlives a config (server states in the `ServerRegistry`, the read-only switch,
//! counters). `reload` swaps generations; `policy` answers the connection layer;
//! `cluster_node` is this node as the cluster sees it.

mod cluster_node;
mod policy;
mod reload;
mod warm;

pub use cluster_node::ClusterNode;
pub use warm::keep_warm;

use crate::accesslog::AccessLog;
use crate::balance::{build_pools, Pool, ServerRegistry};
use crate::cache::Cache;
use crate::clock::unix_now;
use crate::config::Config;
use crate::conn::ConnTracker;
use crate::metrics::{Metrics, RouteMetrics};
use crate::readonly::ReadonlyState;
use crate::routing::Router;
use crate::statefile;
use crate::tls::ListenerTls;
use arc_swap::ArcSwap;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};

/// Client addresses whose connection rate is counted at once (a few MB at most).
const CONN_RATE_KEYS: usize = 100_000;

/// One config generation with its derived tables.
pub struct Runtime {
    pub config: Arc<Config>,
    pub router: Router,
    pub pools: Vec<Pool>,
    /// The cache; the same one across reloads while the `[cache]` section is unchanged.
    pub cache: Arc<Cache>,
    /// Per-request metric handles of this config (last: requests with no route).
    pub route_metrics: Vec<RouteMetrics>,
    /// Refusals of each access rule (`config.access.rules` order).
    pub access_refused: Vec<prometheus::IntCounter>,
    /// Each rate limit's table (`config.rate_limits.limits` order), kept across reloads while
    /// the limit counts alike, and its counters.
    pub rate_tables: Vec<Arc<crate::ratelimit::Table>>,
    pub rate_limited: Vec<crate::metrics::RateLimitMetrics>,
    pub compression: crate::metrics::CompressionMetrics,
    /// When this config was loaded (Unix seconds).
    pub loaded_at: u64,
    /// How this config makes cache keys (`cache::snapshot::layout`): a snapshot's or a
    /// peer's objects are taken only when it is the same.
    pub key_layout: u32,
    /// Increases with every swap; lets background services notice a new config.
    pub generation: u64,
    /// Listener index by the exact local address a connection arrived on.
    listener_by_addr: HashMap<SocketAddr, usize>,
    /// Listener index by port, for listeners bound to 0.0.0.0 or [::].
    listener_by_port: HashMap<u16, usize>,
}

impl Runtime {
    /// The caching rules of `route`, when the cache is on and the route caches.
    pub fn cache_rules(&self, route: usize) -> Option<&crate::config::RouteCache> {
        let rules = self.config.routes[route].cache.as_ref()?;
        self.cache.config.enabled.then_some(rules)
    }

    /// The listener a connection with local address `local` was accepted on.
    pub fn listener_for(&self, local: SocketAddr) -> Option<usize> {
        self.listener_by_addr
            .get(&local)
            .or_else(|| self.listener_by_port.get(&local.port()))
            .copied()
    }
}

impl AsRef<[Pool]> for Runtime {
    /// What the health checker reads of a generation.
    fn as_ref(&self) -> &[Pool] {
        &self.pools
    }
}

/// Everything shared between requests, services and the admin API.
pub struct Shared {
    runtime: ArcSwap<Runtime>,
    pub registry: ServerRegistry,
    generations: AtomicU64,
    /// Certificate resolvers of the TLS listeners, by listener name (listeners live as long as
    /// the process; their certificates are swapped on reload).
    pub tls: HashMap<String, Arc<ListenerTls>>,
    /// ACME: the http-01 answers under way, and each ACME listener's certificate state.
    pub challenges: Arc<crate::acme::Challenges>,
    pub acme: HashMap<String, Arc<crate::acme::AcmeState>>,
    pub metrics: Metrics,
    /// Set when a graceful stop or upgrade hand-off begins: every response from then on closes
    /// its connection, so kept-alive clients move to fresh connections (which the new process
    /// accepts) before pingora drops idle ones.
    pub closing: AtomicBool,
    pub reloads_ok: AtomicU64,
    pub reloads_failed: AtomicU64,
    /// The per-request timing log (targets fixed for the life of the process).
    pub access_log: Arc<AccessLog>,
    /// Read-only mode as switched at runtime.
    pub readonly: ArcSwap<ReadonlyState>,
    /// Refused writes, for metrics.
    pub readonly_refused: AtomicU64,
    /// Address blocks in force (`crate::blocks`), and the requests they refused.
    pub blocks: ArcSwap<crate::blocks::Blocks>,
    pub blocked: AtomicU64,
    /// Open client connections and their refusals.
    pub conns: Arc<ConnTracker>,
    /// The cluster this node belongs to (`[cluster]`), fixed for the life of the process.
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
    /// New connections per client address (`limits.max_connection_rate_per_client`), for the
    /// life of the process.
    pub conn_rate: crate::ratelimit::Table,
    /// Serializes writes of the state file (admin calls only, never held across an await).
    state_file: Mutex<PathBuf>,
}

impl Shared {
    pub fn new(config: Config) -> Arc<Shared> {
        let registry = ServerRegistry::default();
        let tls = config
            .listeners
            .iter()
            .filter_map(|l| {
                let t = l.tls.as_ref()?;
                Some((l.name.clone(), Arc::new(ListenerTls::new(t))))
            })
            .collect();
        let state_file = config.server.state_dir.join("state.json");
        let cache = Cache::new(&config.cache);
        let access_log = Arc::new(AccessLog::new(&config.access_log));
        let metrics = Metrics::new();
        let readonly = ReadonlyState {
            enabled: config.readonly.enabled,
            since: unix_now(),
            ..Default::default()
        };
        let acme = config
            .listeners
            .iter()
            .filter(|l| l.tls.as_ref().is_some_and(|t| t.acme.is_some()))
            .map(|l| (l.name.clone(), Arc::default()))
            .collect();
        let config_cluster = config.cluster.clone().map(crate::cluster::Cluster::new);
        let runtime = build(config, &registry, cache, &metrics, (0, None));
        let shared = Arc::new(Shared {
            runtime: ArcSwap::from_pointee(runtime),
            registry,
            generations: AtomicU64::new(0),
            tls,
            challenges: Arc::default(),
            acme,
            access_log,
            metrics,
            closing: AtomicBool::new(false),
            reloads_ok: AtomicU64::new(0),
            reloads_failed: AtomicU64::new(0),
            readonly: ArcSwap::from_pointee(readonly),
            readonly_refused: AtomicU64::new(0),
            blocks: ArcSwap::default(),
            blocked: AtomicU64::new(0),
            conns: Default::default(),
            cluster: config_cluster,
            conn_rate: crate::ratelimit::Table::new(CONN_RATE_KEYS),
            state_file: Mutex::new(state_file),
        });
        shared.restore_state();
        shared
    }

    /// The config generation in force now.
    pub fn current(&self) -> Arc<Runtime> {
        self.runtime.load_full()
    }
}

impl Shared {
    /// Applies the state file's admin states to the servers that exist.
    fn restore_state(&self) {
        let path = self.state_path();
        let saved = match statefile::load(&path) {
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
        let blocks = crate::blocks::Blocks::new(saved.blocks, unix_now());
        if !blocks.active(unix_now()).is_empty() {
            tracing::info!(
                blocks = blocks.active(unix_now()).len(),
                "address blocks restored"
            );
        }
        self.blocks.store(Arc::new(blocks));
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

    pub fn state_path(&self) -> PathBuf {
        self.state_file
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Writes the current runtime decisions to the state file.
    pub fn persist_state(&self) -> Result<(), String> {
        let path = self.state_file.lock().unwrap_or_else(|e| e.into_inner());
        let state = statefile::StateFile {
            servers: self.registry.admin_states(),
            readonly: Some((**self.readonly.load()).clone()),
            blocks: self.blocks.load().active(unix_now()),
        };
        statefile::save(&path, &state)
    }

    /// Changes the blocks in force (`crate::blocks`) with `change` (of the current ones; None:
    /// no change), retried if another change landed meanwhile; the state file is the caller's.
    /// Whether the blocks in force changed.
    pub fn change_blocks(
        &self,
        change: impl Fn(&crate::blocks::Blocks) -> Option<crate::blocks::Blocks>,
    ) -> bool {
        let now = unix_now();
        let mut changed = false;
        self.blocks.rcu(|old| match change(old) {
            Some(new) => {
                changed = new.active(now) != old.active(now);
                Arc::new(new)
            }
            None => {
                changed = false;
                old.clone()
            }
        });
        changed
    }

    /// Switches read-only mode and writes the state file.
    pub fn set_readonly(&self, state: ReadonlyState) -> Result<(), String> {
        tracing::warn!(enabled = state.enabled, reason = ?state.reason, until = ?state.until, "read-only mode switched");
        self.readonly.store(Arc::new(state));
        self.persist_state()
    }
}

fn build(
    config: Config,
    registry: &ServerRegistry,
    cache: Arc<Cache>,
    metrics: &Metrics,
    (generation, previous): (u64, Option<&Runtime>),
) -> Runtime {
    let previous_limits = previous.map_or((&[][..], &[][..]), |p| {
        (&p.config.rate_limits.limits[..], &p.rate_tables[..])
    });
    let rate_tables = crate::ratelimit::tables(&config.rate_limits.limits, previous_limits);
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
        access_refused: metrics.access_rules(&config),
        rate_tables,
        rate_limited: metrics.rate_limits(&config),
        compression: metrics.compression(),
        loaded_at: unix_now(),
        key_layout: crate::cache::snapshot::layout(&config),
        config: Arc::new(config),
        cache,
        generation,
    }
}
