//! Configuration: the typed, validated values the rest of gatehouse runs on.
//!
//! Two layers, as in River: `file` mirrors the TOML an operator writes; `validate` turns it into
//! the `Config` below (socket addresses, durations, resolved pool references), collecting every
//! error with its key path and line. The request path only ever sees `Config`.

pub mod changes;
pub mod defaults;
mod error;
mod file;
mod validate;

pub use error::{ConfigError, ConfigErrors, KeyPath};

pub use crate::tls::settings::{AcmeSettings, TicketKeys, TlsListener, TlsProtocol};
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// A whole validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerSettings,
    pub timeouts: Timeouts,
    pub listeners: Vec<Listener>,
    pub pools: Vec<PoolConfig>,
    pub routes: Vec<RouteConfig>,
    pub admin: AdminConfig,
    pub cache: CacheConfig,
    pub readonly: ReadonlyConfig,
    pub access_log: AccessLogConfig,
    pub source: ConfigSource,
    pub limits: Limits,
    /// `[cluster]`: None for a node on its own.
    pub cluster: Option<ClusterConfig>,
    /// `[[access_rules]]` and `[access]`.
    pub access: AccessConfig,
    /// `[[rate_limits]]`, `[access] rate_limits` and the routes' own.
    pub rate_limits: RateLimitConfig,
    /// `[client_address]`: the proxies trusted to name the client.
    pub client_address: ClientAddressConfig,
    /// Warnings found while validating (the config is usable).
    pub warnings: Vec<ConfigError>,
}

#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub threads: usize,
    pub state_dir: PathBuf,
    pub pid_file: PathBuf,
    pub upgrade_socket: PathBuf,
    pub grace_period: Duration,
    pub shutdown_timeout: Duration,
    /// gatehouse's own HTTP/1 exchange with servers for the requests it can take
    /// (`proxy::direct`); false: every request goes through pingora's proxy path.
    pub direct_exchange: bool,
}

#[derive(Debug, Clone)]
pub struct Timeouts {
    pub connect: Duration,
    pub upstream_read: Duration,
    pub upstream_write: Duration,
    pub client_idle: Duration,
    /// From the first byte of a request to the end of its headers (slowloris): 408 after. Also
    /// from a connection's start (after TLS) to its first request's headers, the HTTP/2
    /// preface included: closed after.
    pub client_header: Duration,
    /// From accept to the end of the TLS handshake: closed after.
    pub client_handshake: Duration,
    /// How long the client may take to accept each write of its response (at most 64 KiB;
    /// a zero window or a full socket trips it): the stream (HTTP/2) or connection (HTTP/1)
    /// is closed after, its server released.
    pub client_send: Duration,
}

#[derive(Debug, Clone)]
pub struct Listener {
    pub name: String,
    pub address: SocketAddr,
    pub tls: Option<TlsListener>,
    /// Plain listeners only: answer every request with a 301 to https.
    pub redirect_to_https: bool,
    /// TLS listeners only: the Strict-Transport-Security value sent on every response.
    pub hsts: Option<http::HeaderValue>,
    /// Every connection starts with a PROXY protocol header (v1 or v2), from a trusted proxy.
    pub proxy_protocol: bool,
}

/// `[client_address]`: who may say which client a connection or request is for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientAddressConfig {
    /// Peers whose PROXY protocol header and forwarding header are believed.
    pub trusted_proxies: crate::access::CidrSet,
    /// The request header a trusted peer names the client in.
    pub header: RealIpHeader,
    /// The addresses of the `proxy_protocol` listeners: there the PROXY header names the
    /// client (or says it cannot), and a forwarding header is the client's own word, never
    /// believed.
    pub proxy_listeners: Vec<std::net::SocketAddr>,
}

impl ClientAddressConfig {
    /// Whether a connection accepted at `local` came through a `proxy_protocol` listener.
    pub fn on_proxy_listener(&self, local: std::net::SocketAddr) -> bool {
        self.proxy_listeners.iter().any(|l| {
            l.port() == local.port()
                && (l.ip().is_unspecified() || l.ip() == local.ip().to_canonical())
        })
    }
}

/// The header the client's address is taken from, when the peer is a trusted proxy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RealIpHeader {
    #[default]
    XForwardedFor,
    /// RFC 7239's `for=` parameters.
    Forwarded,
    /// No header: only the PROXY protocol names the client.
    None,
}

#[derive(Debug, Clone)]
pub struct PoolConfig {
    pub name: String,
    pub balance: Balance,
    pub retries: u32,
    /// Slow start for servers of this pool that do not set their own (0: off).
    pub slowstart: Duration,
    pub health: Option<HealthConfig>,
    pub servers: Vec<ServerConfig>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Balance {
    RoundRobin,
    LeastConn,
    Hash(HashKey),
}

/// What a consistent-hash pool hashes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashKey {
    Path,
    Uri,
    ClientIp,
    Header(http::HeaderName),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthConfig {
    pub path: String,
    pub host: String,
    pub interval: Duration,
    pub timeout: Duration,
    pub rise: u32,
    pub fall: u32,
    pub expect_status: RangeInclusive<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    pub name: String,
    pub address: SocketAddr,
    pub weight: u32,
    pub backup: bool,
    /// The weight's ramp when the server comes back (the pool's unless set here; 0: off).
    pub slowstart: Duration,
}

#[derive(Debug, Clone)]
pub struct RouteConfig {
    pub name: String,
    /// Empty: any host.
    pub hosts: Vec<HostPattern>,
    pub path_prefix: String,
    /// Index into `Config::pools`.
    pub pool: usize,
    /// None: responses on this route are never cached.
    pub cache: Option<RouteCache>,
    pub readonly: RouteReadonly,
    /// Whether `Upgrade` requests (e.g. WebSocket) pass to servers; otherwise the Upgrade is
    /// removed and the request proxied as a plain one (nginx's default).
    pub allow_upgrade: bool,
    /// Access rules checked right after routing, in order (indices into
    /// `AccessConfig::rules`): the named ones, then the route's own.
    pub access: Vec<usize>,
    /// Rate limits counted right after the access rules, in order (indices into
    /// `RateLimitConfig::limits`).
    pub rate_limits: Vec<usize>,
    /// What the route compresses (`[compression]`, `[routes.compression]`); None: nothing.
    pub compression: Option<crate::compress::Settings>,
}

/// Every rate limit of the config (named and per route, names unique) and the global list.
#[derive(Debug, Clone, Default)]
pub struct RateLimitConfig {
    pub limits: Vec<crate::ratelimit::Limit>,
    /// Counted on every request before routing, in order (indices into `limits`).
    pub global: Vec<usize>,
}

/// Every access rule of the config (named and per route, names unique) and the global list.
#[derive(Debug, Clone, Default)]
pub struct AccessConfig {
    pub rules: Vec<crate::access::Rule>,
    /// Checked on every request before routing, in order (indices into `rules`).
    pub global: Vec<usize>,
}

/// Limits on what a client may send; each answered with its own status and logged.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Total size of the request headers (names and values): 431 above.
    pub max_header_bytes: usize,
    /// Number of request headers: 431 above (pingora itself refuses more than 256 with 400).
    pub max_headers: usize,
    /// Request target length: 414 above.
    pub max_uri_length: usize,
    /// Request body: 413 above (0 = no limit).
    pub max_body_size: u64,
    /// Requests served on one client connection before it is closed.
    pub keepalive_requests: u32,
    /// Open client connections (all listeners): a request on a connection over it gets 503.
    pub max_connections: usize,
    /// Open client connections from one address (0 = no limit): 503 over it.
    pub max_connections_per_client: usize,
    /// Connections from one address that have not sent a request yet (0 = no limit): over it,
    /// the oldest of them is closed.
    pub max_silent_per_client: usize,
    /// New connections from one address (None: no limit): over it, a connection is closed
    /// before its handshake.
    pub max_connection_rate_per_client: Option<crate::ratelimit::Rate>,
}

/// Where a config came from.
#[derive(Debug, Clone, Default)]
pub struct ConfigSource {
    pub path: Option<PathBuf>,
    /// A checksum of the file's text (hex), to tell which config is running.
    pub checksum: String,
}

/// The per-request timing log.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessLogConfig {
    pub enabled: bool,
    pub capture_request_headers: Vec<http::HeaderName>,
    pub capture_response_headers: Vec<http::HeaderName>,
    /// Remove captured server headers (e.g. X-Runtime) from what the client gets.
    pub strip_captured_response_headers: bool,
    /// Accepted from clients (or generated), passed to servers, logged.
    pub request_id_header: http::HeaderName,
    /// Records waiting per target before new ones are dropped.
    pub queue_size: usize,
    pub targets: Vec<LogTarget>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogTarget {
    pub name: String,
    pub transport: LogTransport,
    pub format: LogFormat,
    /// Syslog facility number (local0 = 16).
    pub facility: u8,
    pub tag: String,
    pub hostname: String,
    /// Fraction of records sent, 0 < sample <= 1.
    pub sample: f64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogTransport {
    Udp(SocketAddr),
    Tcp(SocketAddr),
    Unix(PathBuf),
    Stdout,
    File(PathBuf),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Rfc5424,
    Rfc3164,
    Json,
    /// HAProxy's `option httplog` line behind an RFC 3164 header, for `halog` and goaccess.
    Haproxy,
}

/// How a route meets read-only mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteReadonly {
    /// Follows the global switch.
    Inherit,
    /// Always read-only.
    Always,
    /// Never read-only (e.g. a login or health endpoint).
    Never,
}

/// Read-only mode settings.
#[derive(Debug, Clone)]
pub struct ReadonlyConfig {
    /// The mode at first start (the state file wins afterwards).
    pub enabled: bool,
    pub retry_after: Duration,
    pub message: String,
    /// The HTML body of refused writes.
    pub page: bytes::Bytes,
    /// Path prefixes whose writes still pass.
    pub allow_paths: Vec<String>,
    /// "Logged-out" sub-mode: drop Cookie from requests and Set-Cookie from responses.
    pub strip_cookies: bool,
    /// While read-only, responses are cached at least this long.
    pub ttl_floor: Duration,
}

/// The shared cache: one per process.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheConfig {
    pub enabled: bool,
    /// Hard cap on stored bytes (headers + bodies).
    pub max_size: u64,
    /// Larger responses stream through uncached.
    pub max_object_size: u64,
    /// How long concurrent misses wait for the one fetching.
    pub lock_timeout: Duration,
    /// The response header telling HIT/MISS/...; None: not sent.
    pub status_header: Option<http::HeaderName>,
    /// The Cache-Control field targeted at gatehouse (RFC 9213), read before
    /// `CDN-Cache-Control` and `Cache-Control` and never sent to clients; None: not read.
    pub targeted_field: Option<http::HeaderName>,
    /// Written to `<state_dir>/cache.snapshot` at a graceful stop or a binary upgrade and
    /// read back at start (`cache::snapshot`): `snapshot = "on-stop"` (the default) or "off".
    pub snapshot: bool,
    /// Other nodes' caches (`cache::peers`).
    pub peers: CachePeers,
}

/// Other nodes' admin APIs, asked for objects with the admin token (the fleet's): a hot spare
/// keeps a copy of their hottest objects (`warm`); active nodes ask them before the servers
/// on a miss (`siblings`), as Squid's `cache_peer ... sibling`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CachePeers {
    pub peers: Vec<SocketAddr>,
    pub warm: bool,
    pub warm_interval: Duration,
    pub warm_objects: usize,
    pub siblings: bool,
    pub sibling_timeout: Duration,
    /// How long a node waits for a sibling that fills the URL it missed (`cache::fills`).
    pub sibling_wait: Duration,
    /// The fleet's token for these calls only (sent instead of the admin token, which can
    /// change everything); the peer endpoints take either.
    pub token: Option<String>,
}

impl crate::config::Config {
    /// The token this node asks its cache peers with: `[cache] peer_token`, else the admin
    /// token.
    pub fn peer_token(&self) -> &str {
        let peer = self.cache.peers.token.as_deref();
        peer.or(self.admin.token.as_deref()).unwrap_or("")
    }
}

impl CacheConfig {
    /// Whether a cache built for `self` serves `other` as it is: everything but `snapshot`,
    /// read at stop from the config then current.
    pub fn same_storage(&self, other: &CacheConfig) -> bool {
        CacheConfig {
            snapshot: other.snapshot,
            peers: other.peers.clone(),
            ..self.clone()
        } == *other
    }
}

/// A route's caching rules.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteCache {
    /// TTL of responses without freshness information (0: not cached).
    pub default_ttl: Duration,
    pub max_ttl: Duration,
    /// Ignores the response's freshness information and uses this TTL.
    pub override_ttl: Option<Duration>,
    /// Stale-while-revalidate window.
    pub grace: Duration,
    /// How long past freshness a stale copy may stand in for a failing server.
    pub stale_if_error: Duration,
    /// Kept further for revalidation with If-None-Match / If-Modified-Since.
    pub keep: Duration,
    /// An object is stored only from its N-th request within `min_uses_window`.
    pub min_uses: u32,
    pub min_uses_window: Duration,
    pub ignore_query: bool,
    pub ignore_params: Vec<String>,
    /// Cookies that do not make a request personal: removed, and the request stays cacheable.
    pub ignore_cookies: Vec<String>,
}

/// A host a route answers for, lower-cased, without port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HostPattern {
    Exact(String),
    /// `*.example.com`, kept as `.example.com`.
    Wildcard(String),
}

/// Sharing drain, read-only and purges with other nodes through etcd.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterConfig {
    pub name: String,
    /// This node's id, unique in the cluster.
    pub node: String,
    /// `http://host:port` or `https://host:port`.
    pub etcd_endpoints: Vec<String>,
    /// Keys live under `{prefix}/{name}/`.
    pub prefix: String,
    pub dial_timeout: Duration,
    /// How long a write may take before its outcome is reported unknown.
    pub request_timeout: Duration,
    /// The lease of this node's record: it disappears this long after the node stops.
    pub node_ttl: Duration,
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key, both or neither.
    pub identity: Option<(PathBuf, PathBuf)>,
    /// etcd user and password (read from `password_file`).
    pub credentials: Option<(String, Secret)>,
}

/// A password: compared, never printed.
#[derive(Clone, PartialEq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<secret>")
    }
}

#[derive(Debug, Clone)]
pub struct AdminConfig {
    pub enabled: bool,
    pub address: SocketAddr,
    pub token: Option<String>,
}

impl Config {
    /// Reads and validates a file; every problem is reported at once.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigErrors {
            source: path.display().to_string(),
            errors: vec![ConfigError {
                path: KeyPath::root(),
                line: None,
                message: format!("cannot read file: {e}"),
                warning: false,
            }],
        })?;
        Config::from_file_text(&text, path)
    }

    /// Validates the text of the file at `path` (relative paths in it are relative to the
    /// file's own directory).
    pub fn from_file_text(text: &str, path: &Path) -> Result<Config, ConfigErrors> {
        let base = path.parent().unwrap_or(Path::new("."));
        let mut config = validate::from_toml(text, &path.display().to_string(), base)?;
        config.source.path = Some(path.to_path_buf());
        Ok(config)
    }

    /// Validates TOML text; `source` names it in errors; relative paths are taken from the
    /// working directory.
    pub fn from_toml(text: &str, source: &str) -> Result<Config, ConfigErrors> {
        validate::from_toml(text, source, Path::new(""))
    }

    /// The port https redirects point to: the first TLS listener's.
    pub fn https_port(&self) -> Option<u16> {
        self.listeners
            .iter()
            .find(|l| l.tls.is_some())
            .map(|l| l.address.port())
    }
}
