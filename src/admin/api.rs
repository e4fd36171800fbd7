//! The admin API's contract: every JSON body it takes and gives, as typed views. The handlers
//! serialize these, `gatehouse ctl` deserializes them, and the status page reads the same field
//! names; a field renamed here is renamed for all three. The endpoints that take and give
//! them (`Endpoint`: method and path, built by `ctl` and matched by the router) are written in
//! `endpoint`, re-exported here.

pub use super::endpoint::{duration_text, Endpoint, Miss, Query};
use serde::{Deserialize, Serialize};

/// Any error answer: a sentence, plus what helps fix the call (see the `*Detail` types).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorView {
    pub error: String,
    /// The problems of a refused reload.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// With 404 for an unknown pool: the pools that do exist.
#[derive(Debug, Serialize)]
pub struct UnknownPoolDetail<'a> {
    pub pools: Vec<&'a str>,
}

/// With 404 for an unknown server: the servers of that pool.
#[derive(Debug, Serialize)]
pub struct UnknownServerDetail<'a> {
    pub servers: Vec<&'a str>,
}

/// With 409 when a drain's wait ended with requests still in flight.
#[derive(Debug, Serialize)]
pub struct DrainTimeoutDetail {
    pub in_flight: u64,
    pub state: &'static str,
    pub drained: bool,
}

/// With 422 for a refused reload.
#[derive(Debug, Serialize)]
pub struct ReloadRefusedDetail {
    pub reloaded: bool,
    pub errors: Vec<String>,
    pub needs_upgrade: bool,
    pub needs_restart: bool,
}

/// `GET /api/pools`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PoolsView {
    pub pools: Vec<PoolView>,
}

/// `GET /api/pools/{pool}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PoolView {
    pub name: String,
    /// round_robin, least_conn or hash(...)
    pub balance: String,
    pub servers: Vec<ServerView>,
}

/// `GET /api/pools/{pool}/servers/{server}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerView {
    pub pool: String,
    pub name: String,
    pub address: String,
    pub weight: u32,
    /// The weight requests see now: lower while the server is in slow start.
    pub effective_weight: f64,
    /// Time left in the server's slow start, when it is ramping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slowstart_remaining_ms: Option<u64>,
    pub backup: bool,
    /// Admin state: ready, drain or maint.
    pub state: String,
    /// unchecked, pending (never up yet), up or down.
    pub health: String,
    pub usable: bool,
    pub in_flight: u64,
    pub requests: u64,
    pub connect_failures: u64,
    pub check_failures: u64,
    pub last_check: Option<CheckView>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckView {
    pub ok: bool,
    pub ago_ms: u64,
    pub detail: String,
}

/// `POST /api/pools/{pool}/servers/{server}/{drain|maint|ready}[?wait=30s]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerActionView {
    #[serde(flatten)]
    pub server: ServerView,
    pub previous_state: String,
    /// Present only when a drain waited: it ended with nothing in flight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drained: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waited_ms: Option<u64>,
    #[serde(flatten)]
    pub persisted: Persisted,
    /// Present when the change went through the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterWriteView>,
}

/// A change written to the cluster: its etcd revision, and whether this node applied it
/// before answering.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterWriteView {
    pub revision: i64,
    pub applied_here: bool,
}

/// `GET /api/cluster`: this node's link to etcd and every node's record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterView {
    pub cluster: String,
    pub node: String,
    pub endpoints: Vec<String>,
    pub connected: bool,
    /// The etcd revision of the cluster state applied here.
    pub applied_revision: i64,
    /// Milliseconds since this node last knew it was up to date.
    pub sync_age_ms: Option<u64>,
    pub last_error: Option<String>,
    pub reconnects: u64,
    pub full_reads: u64,
    /// The live nodes (their records, read from etcd now).
    pub nodes: Vec<NodeView>,
    /// Why `nodes` could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes_error: Option<String>,
}

/// A node of the cluster: its own record in etcd.
pub use crate::cluster::NodeRecord as NodeView;

/// `GET /health`: whether this node should hold the service address.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HealthView {
    pub healthy: bool,
    pub status: String,
    /// Pools with at least one usable server, of all pools.
    pub pools_usable: usize,
    pub pools: usize,
}

/// Whether a runtime change reached the state file; absent fields: it did.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Persisted {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persisted: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

impl Persisted {
    /// From the result of writing the state file.
    pub fn from(result: Result<(), String>) -> Persisted {
        match result {
            Ok(()) => Persisted::default(),
            Err(e) => {
                tracing::error!("{e}");
                Persisted {
                    persisted: Some(false),
                    warning: Some(format!("{e}: the change holds until restart")),
                }
            }
        }
    }
}

/// `POST /api/readonly`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadonlySwitch {
    pub enabled: bool,
    #[serde(default)]
    pub reason: Option<String>,
    /// A duration such as "2h" after which the mode turns itself off.
    #[serde(default, rename = "for")]
    pub duration: Option<String>,
}

/// `GET /api/readonly` and the answer to `POST /api/readonly`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReadonlyView {
    pub enabled: bool,
    /// On and not past its expiry.
    pub active: bool,
    pub reason: Option<String>,
    /// Unix seconds.
    pub since: u64,
    pub until: Option<u64>,
    pub refused_writes: u64,
    #[serde(flatten)]
    pub persisted: Persisted,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterWriteView>,
}

/// `POST /api/blocks`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockRequest {
    /// An address or network: `203.0.113.0/24`, `2001:db8::/32`, `192.0.2.7`.
    pub cidr: String,
    /// How long it holds, such as "1h".
    #[serde(rename = "for")]
    pub duration: String,
    #[serde(default)]
    pub reason: String,
}

/// `GET /api/blocks` and the answers to `POST` and `DELETE`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BlocksView {
    pub blocks: Vec<crate::blocks::Block>,
    /// Requests refused by a block since start.
    pub refused: u64,
    #[serde(flatten)]
    pub persisted: Persisted,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterWriteView>,
}

/// `GET /api/config`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConfigView {
    pub checksum: String,
    pub file: Option<String>,
    pub loaded_at: u64,
    pub generation: u64,
    pub warnings: Vec<String>,
}

/// `POST /api/reload` when it applied.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReloadView {
    pub reloaded: bool,
    pub file: String,
    pub checksum: String,
    pub generation: u64,
    pub warnings: Vec<String>,
    /// Sections that changed and now apply.
    #[serde(default)]
    pub changed: Vec<String>,
    /// Settings accepted that apply only after a binary upgrade or restart ("key: old → new").
    #[serde(default)]
    pub after_restart: Vec<String>,
}

/// `POST /api/config/check`: a config file's text (and its path, for relative paths in it).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigCheck {
    pub file: String,
    pub text: String,
}

/// The answer to `POST /api/config/check`: whether the text is valid, and what a reload of
/// it would do to the running process.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConfigCheckView {
    pub valid: bool,
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
    /// The running config's checksum, and whether the text is the same file.
    pub running_checksum: String,
    pub same_as_running: bool,
    /// Applied by a reload at once.
    pub reload: Vec<String>,
    /// Accepted by a reload, applied by the next binary upgrade or restart.
    pub after_restart: Vec<String>,
    /// Refused by a reload: needs a binary upgrade.
    pub upgrade: Vec<String>,
    /// Refused by a reload: needs a restart.
    pub restart: Vec<String>,
}

/// `GET /api/tls`: every TLS listener's protocol settings and certificates.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TlsView {
    pub listeners: Vec<TlsListenerView>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TlsListenerView {
    pub listener: String,
    pub profile: String,
    /// "TLSv1.2", "TLSv1.3".
    pub versions: Vec<String>,
    pub cipher_suites: Vec<String>,
    pub groups: Vec<String>,
    pub session_tickets: bool,
    /// "rotating every 12h" or "file /path (N keys)"; absent without tickets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket_keys: Option<String>,
    pub session_cache: usize,
    pub strict_sni: bool,
    pub certificates: Vec<CertificateView>,
    /// With `[listeners.tls.acme]`: the automatic certificate's state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acme: Option<AcmeView>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AcmeView {
    pub directory: String,
    pub domains: Vec<String>,
    pub challenge: String,
    /// Expiry of the certificate served (Unix seconds); absent before the first one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<i64>,
    /// When the next order is planned (Unix seconds).
    pub next_attempt: i64,
    /// Certificates obtained by this process.
    pub renewals: u64,
    pub failures: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CertificateView {
    pub file: String,
    pub names: Vec<String>,
    pub default: bool,
    /// Unix seconds.
    pub not_after: i64,
    pub days_left: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ocsp_file: Option<String>,
    /// The staple's nextUpdate, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ocsp_next_update: Option<i64>,
}

/// `GET /api/cache`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CacheView {
    pub enabled: bool,
    pub stored_bytes: u64,
    pub objects: u64,
    pub max_size: u64,
    pub hits: u64,
    pub misses: u64,
    pub stale: u64,
    pub passes: u64,
    pub coalesced: u64,
    pub evictions: u64,
    pub hit_ratio: f64,
    /// The snapshot read at start (`loaded_*`, `refused`) and the last written.
    #[serde(default)]
    pub snapshot: SnapshotView,
}

/// `CacheView::snapshot`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SnapshotView {
    pub loaded_objects: u64,
    pub loaded_bytes: u64,
    pub load_ms: u64,
    pub refused: bool,
    pub written_objects: u64,
    pub written_bytes: u64,
    pub write_ms: u64,
}

/// `POST /api/cache/purge` (`host` and `path`) and `POST /api/cache/ban` (`host` optional,
/// and `prefix` or `regex`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Invalidation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
}

/// The answer to a purge or ban.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InvalidationView {
    /// Objects removed here (unknown when clustered and not yet applied here).
    pub removed: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterWriteView>,
}
