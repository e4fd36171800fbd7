//! Every default of the config file, named once. `conf/gatehouse.toml` repeats them in
//! `# default ...` comments for operators; a test (`tests::shipped_file_states_the_defaults`)
//! fails when a comment there and a value here disagree.
//!
//! Durations are written as the file writes them (humantime), so the two read alike.

// [server]
pub const STATE_DIR: &str = "/var/lib/gatehouse";
pub const MAX_THREADS: usize = 256;
pub const GRACE_PERIOD: &str = "5s";
pub const SHUTDOWN_TIMEOUT: &str = "5s";

// [timeouts]
pub const CONNECT: &str = "3s";
pub const UPSTREAM_READ: &str = "60s";
pub const UPSTREAM_WRITE: &str = "60s";
pub const CLIENT_IDLE: &str = "60s";
pub const CLIENT_HEADER: &str = "10s";
pub const CLIENT_HANDSHAKE: &str = "10s";
pub const CLIENT_SEND: &str = "30s";

// [[listeners]]
pub const PROXY_PROTOCOL: bool = false;

// [client_address]
pub const REAL_IP_HEADER: &str = "X-Forwarded-For";

// [[listeners]].tls
pub const H2: bool = true;
pub const STRICT_SNI: bool = false;
pub const EXPIRY_WARNING_DAYS: u32 = 14;
pub const TLS_PROFILE: &str = "intermediate";
pub const SESSION_TICKETS: bool = true;
pub const TICKET_ROTATION: &str = "12h";
pub const SESSION_CACHE: usize = 20_000;

// [pools.NAME]
pub const BALANCE: &str = "round_robin";
pub const RETRIES: u32 = 1;
pub const MAX_RETRIES: u32 = 10;
pub const SLOWSTART: &str = "0s";
pub const HEALTH_PATH: &str = "/";
pub const HEALTH_INTERVAL: &str = "2s";
pub const HEALTH_TIMEOUT: &str = "1s";
pub const HEALTH_RISE: u32 = 2;
pub const HEALTH_FALL: u32 = 3;
pub const HEALTH_EXPECT_STATUS: &str = "200-399";
pub const SERVER_WEIGHT: u32 = 1;
pub const MAX_SERVER_WEIGHT: u32 = 256;

// [[routes]] and [routes.cache]
pub const PATH_PREFIX: &str = "/";
pub const DEFAULT_TTL: &str = "0s";
pub const MAX_TTL: &str = "1d";
pub const GRACE: &str = "10s";
pub const STALE_IF_ERROR: &str = "1m";
pub const KEEP: &str = "1m";
pub const MIN_USES: u32 = 1;
pub const MIN_USES_WINDOW: &str = "10m";

// [cache]
pub const CACHE_MAX_SIZE: u64 = 256 << 20;
pub const CACHE_MAX_OBJECT_SIZE: u64 = 8 << 20;
pub const CACHE_LOCK_TIMEOUT: &str = "5s";
pub const CACHE_STATUS_HEADER: &str = "x-cache";
pub const CACHE_TARGETED_FIELD: &str = "gatehouse-cache-control";

// [readonly]
pub const READONLY_RETRY_AFTER: &str = "2m";
pub const READONLY_TTL_FLOOR: &str = "0s";
pub const READONLY_MESSAGE: &str =
    "This site is read-only for maintenance. Reading works; please try changes again later.";

// [access_log]
pub const REQUEST_ID_HEADER: &str = "x-request-id";
pub const LOG_QUEUE_SIZE: usize = 10_000;
pub const LOG_TRANSPORT: &str = "udp";
pub const LOG_FORMAT: &str = "rfc5424";
pub const LOG_FACILITY: &str = "local0";
pub const LOG_TAG: &str = "gatehouse";
pub const LOG_SAMPLE: f64 = 1.0;

// [limits]
pub const MAX_HEADER_BYTES: u64 = 32 << 10;
pub const MAX_HEADERS: usize = 100;
pub const MAX_URI_LENGTH: u64 = 8 << 10;
pub const MAX_BODY_SIZE: u64 = 100 << 20;
pub const KEEPALIVE_REQUESTS: u32 = 1000;
pub const MAX_CONNECTIONS: usize = 10_000;
pub const MAX_CONNECTIONS_PER_CLIENT: usize = 0;
pub const MAX_SILENT_PER_CLIENT: usize = 0;

// [admin]
pub const ADMIN_ADDRESS: &str = "127.0.0.1:9901";

/// The built-in page for writes refused by read-only mode, showing `message`.
pub fn readonly_page(message: &str) -> bytes::Bytes {
    let escaped = message
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    bytes::Bytes::from(format!(
        "<!doctype html>\n<meta charset=utf-8>\n<title>Read-only</title>\n<h1>Read-only for now</h1>\n<p>{escaped}</p>\n"
    ))
}

// [cluster]
pub const CLUSTER_PREFIX: &str = "/gatehouse";
pub const CLUSTER_DIAL_TIMEOUT: &str = "2s";
pub const CLUSTER_REQUEST_TIMEOUT: &str = "5s";
pub const CLUSTER_NODE_TTL: &str = "10s";
