//! A cluster of gatehouse nodes sharing their runtime decisions through etcd: server admin states
//! (drain / maint / ready), the read-only switch, purges and bans, and address blocks. The config file stays
//! each node's own.
//!
//! - `keys`: the key layout under `{prefix}/{name}/` and the JSON records;
//! - `sync`: the watcher: reads the whole `state/` prefix, applies it at once, then watches from
//!   the next revision; reconnects with backoff and resumes from the last revision, or reads
//!   everything again when that revision was compacted. Known state is never dropped because
//!   etcd is gone: a node starts from its state file and serves at once;
//! - `node`: this node's record (applied revision, health) on a lease kept alive;
//! - `write`: the admin API's write-through: a change is written to etcd and answered once this
//!   node has applied it from the watch, so every node applies it the same way (one path).
//!
//! The node itself is reached through `LocalNode`, so this module never sees the runtime.

mod keys;
mod node;
mod sync;
mod write;

pub use keys::{Change, InvalidationRecord, Keys, NodeRecord, ReadonlyRecord, ServerRecord};
pub use write::WriteError;

use crate::balance::AdminState;
use crate::cache::Invalidation;
use crate::clock::unix_now;
use crate::config::ClusterConfig;
use crate::readonly::ReadonlyState;
use arc_swap::ArcSwapOption;
use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

/// What the cluster asks of the node it runs in.
pub trait LocalNode: Send + Sync + 'static {
    /// Sets every server of the running config to its state in `known` (no entry: ready);
    /// true if any changed.
    fn set_servers(&self, known: &ServerStates) -> bool;
    /// Sets a server's admin state; true if it changed. Unknown servers are ignored.
    fn set_server(&self, pool: &str, server: &str, state: AdminState) -> bool;
    /// Switches read-only mode (None: back to the config's default); true if it changed.
    fn set_readonly(&self, state: Option<ReadonlyState>) -> bool;
    /// Applies a purge or ban made at `at` (Unix seconds); the number of objects removed.
    fn invalidate(&self, what: &Invalidation, at: u64) -> usize;
    /// Replaces every address block with `blocks`; true if they changed.
    fn set_blocks(&self, blocks: Vec<crate::blocks::Block>) -> bool;
    /// Sets one block (an ended one removes its network's); true if it changed anything.
    fn set_block(&self, block: crate::blocks::Block) -> bool;
    /// Removes the block of network `cidr`; true if there was one.
    fn remove_block(&self, cidr: &str) -> bool;
    /// Writes the state file after changes.
    fn persist(&self);
    /// Serving, not stopping.
    fn healthy(&self) -> bool;
    /// Where this node's admin API listens.
    fn admin_address(&self) -> String;
}

/// The cluster membership of this process: its settings, its etcd client and what it knows.
pub struct Cluster {
    pub config: ClusterConfig,
    pub keys: Keys,
    client: ArcSwapOption<etcd_client::Client>,
    pub status: Status,
    /// The server states the cluster holds, as last read and watched (None before the first
    /// read): what a reload gives the servers it adds.
    known: Mutex<Option<ServerStates>>,
}

/// (pool, server) → admin state; a server with no record is ready.
pub type ServerStates = std::collections::HashMap<(String, String), AdminState>;

/// The state of the link to etcd, for `/api/cluster` and `/metrics`.
pub struct Status {
    pub connected: AtomicBool,
    /// The revision of the cluster state applied here (0: none yet).
    applied: tokio::sync::watch::Sender<i64>,
    /// Unix milliseconds when this node last knew it was up to date (0: never).
    pub synced_at_ms: AtomicU64,
    pub reconnects: AtomicU64,
    pub full_reads: AtomicU64,
    pub writes_ok: AtomicU64,
    pub writes_failed: AtomicU64,
    pub started_at: u64,
    last_error: Mutex<Option<String>>,
    /// Objects removed by recent invalidations, by revision (the writer's answer).
    removed: Mutex<VecDeque<(i64, usize)>>,
}

impl Status {
    pub fn applied_revision(&self) -> i64 {
        *self.applied.borrow()
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set_error(&self, e: Option<String>) {
        if let Some(e) = &e {
            tracing::warn!("cluster: {e}");
        }
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = e;
    }

    /// Milliseconds since this node last knew it was up to date.
    pub fn sync_age_ms(&self) -> Option<u64> {
        match self.synced_at_ms.load(Relaxed) {
            0 => None,
            at => Some(crate::clock::unix_now_ms().saturating_sub(at)),
        }
    }

    fn mark_synced(&self) {
        self.synced_at_ms
            .store(crate::clock::unix_now_ms(), Relaxed);
    }

    fn record_removed(&self, revision: i64, removed: usize) {
        let mut r = self.removed.lock().unwrap_or_else(|e| e.into_inner());
        if r.len() == 256 {
            r.pop_front();
        }
        r.push_back((revision, removed));
    }

    pub fn removed_at(&self, revision: i64) -> Option<usize> {
        let r = self.removed.lock().unwrap_or_else(|e| e.into_inner());
        r.iter().find(|(rev, _)| *rev == revision).map(|(_, n)| *n)
    }
}

impl Cluster {
    pub fn new(config: ClusterConfig) -> Arc<Cluster> {
        Arc::new(Cluster {
            keys: Keys::new(&config.prefix, &config.name),
            config,
            client: ArcSwapOption::empty(),
            known: Mutex::new(None),
            status: Status {
                connected: AtomicBool::new(false),
                applied: tokio::sync::watch::Sender::new(0),
                synced_at_ms: AtomicU64::new(0),
                reconnects: AtomicU64::new(0),
                full_reads: AtomicU64::new(0),
                writes_ok: AtomicU64::new(0),
                writes_failed: AtomicU64::new(0),
                started_at: unix_now(),
                last_error: Mutex::new(None),
                removed: Mutex::new(VecDeque::new()),
            },
        })
    }

    /// The etcd client, once the service made it.
    fn client(&self) -> Option<etcd_client::Client> {
        self.client.load_full().map(|c| (*c).clone())
    }

    /// Makes the etcd client (no connection is opened until a call needs one).
    async fn connect(&self) -> Result<etcd_client::Client, String> {
        if let Some(c) = self.client() {
            return Ok(c);
        }
        let c = &self.config;
        let mut options = etcd_client::ConnectOptions::new()
            .with_connect_timeout(c.dial_timeout)
            .with_keep_alive(std::time::Duration::from_secs(2), c.dial_timeout)
            .with_keep_alive_while_idle(true)
            .with_require_leader(true);
        if let Some(ca) = &c.ca_file {
            let pem = std::fs::read(ca).map_err(|e| format!("{}: {e}", ca.display()))?;
            let mut tls = etcd_client::TlsOptions::new()
                .ca_certificate(etcd_client::Certificate::from_pem(pem));
            if let Some((cert, key)) = &c.identity {
                let read = |p: &std::path::Path| {
                    std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))
                };
                tls = tls.identity(etcd_client::Identity::from_pem(read(cert)?, read(key)?));
            }
            options = options.with_tls(tls);
        }
        if let Some((user, password)) = &c.credentials {
            // etcd's auth tokens expire: the client asks for a fresh one when told so.
            options = options
                .with_user(user.clone(), password.0.clone())
                .with_auto_token_refresh(true);
        }
        let client = etcd_client::Client::connect(&c.etcd_endpoints, Some(options))
            .await
            .map_err(|e| format!("etcd {:?}: {e}", c.etcd_endpoints))?;
        self.client.store(Some(Arc::new(client.clone())));
        Ok(client)
    }

    /// The server states the cluster holds (None before this node first read them).
    pub fn known_servers(&self) -> Option<ServerStates> {
        self.known.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn remember(&self, update: impl FnOnce(&mut ServerStates)) {
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        update(known.get_or_insert_with(ServerStates::new));
    }

    fn publish_applied(&self, revision: i64) {
        self.status.applied.send_if_modified(|r| {
            let newer = revision > *r;
            if newer {
                *r = revision;
            }
            newer
        });
    }

    /// Waits until this node has applied `revision`; false after `timeout`.
    pub async fn wait_applied(&self, revision: i64, timeout: std::time::Duration) -> bool {
        let mut rx = self.status.applied.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|r| *r >= revision))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

/// `call` within `limit`; its error or the timeout as text naming `what`.
async fn within<T, E: std::fmt::Display>(
    limit: std::time::Duration,
    what: &str,
    call: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(limit, call).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("{what}: {e}")),
        Err(_) => Err(format!("{what}: no answer within {limit:?}")),
    }
}

/// The background service: the watcher and this node's record.
pub struct ClusterService {
    cluster: Arc<Cluster>,
    node: Arc<dyn LocalNode>,
}

impl ClusterService {
    pub fn new(cluster: Arc<Cluster>, node: Arc<dyn LocalNode>) -> Self {
        ClusterService { cluster, node }
    }
}

#[async_trait]
impl BackgroundService for ClusterService {
    async fn start(&self, shutdown: ShutdownWatch) {
        let record = node::run(self.cluster.clone(), self.node.clone(), shutdown.clone());
        let watch = sync::run(self.cluster.clone(), self.node.clone(), shutdown);
        tokio::join!(record, watch);
    }
}
