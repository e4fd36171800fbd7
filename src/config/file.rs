//! The configuration file as the operator writes it: serde structs that mirror the TOML.
//!
//! Nothing here is trusted or typed beyond what TOML gives: addresses, durations and host
//! patterns stay strings so that `validate` can check all of them and report every error at
//! once, each with its key path. Unknown keys are collected by `serde_ignored` (see
//! `validate::from_toml`) rather than `deny_unknown_fields`, which would stop at the first one.

use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Default, Deserialize)]
pub struct FileConfig {
    #[serde(default)]
    pub server: ServerSection,
    #[serde(default)]
    pub timeouts: TimeoutsSection,
    #[serde(default)]
    pub listeners: Vec<ListenerSection>,
    #[serde(default)]
    pub pools: BTreeMap<String, PoolSection>,
    #[serde(default)]
    pub routes: Vec<RouteSection>,
    #[serde(default)]
    pub admin: AdminSection,
    #[serde(default)]
    pub cache: CacheSection,
    pub compression: Option<CompressionSection>,
    #[serde(default)]
    pub readonly: ReadonlySection,
    #[serde(default)]
    pub access_log: AccessLogSection,
    #[serde(default)]
    pub limits: LimitsSection,
    pub cluster: Option<ClusterSection>,
    #[serde(default)]
    pub access: AccessSection,
    #[serde(default)]
    pub access_rules: Vec<AccessRuleSection>,
    #[serde(default)]
    pub rate_limits: Vec<RateLimitSection>,
    #[serde(default)]
    pub client_address: ClientAddressSection,
}

/// `[[rate_limits]]` and `[[routes.rate_limits]]`: one request-rate limit.
#[derive(Debug, Default, Deserialize)]
pub struct RateLimitSection {
    pub name: Option<String>,
    /// `"client"`, `"header:NAME"` or `"cookie:NAME"`.
    pub key: Option<String>,
    pub ipv4_prefix: Option<u8>,
    pub ipv6_prefix: Option<u8>,
    /// `"100/10s"`.
    pub rate: Option<String>,
    pub burst: Option<u64>,
    /// `"deny"`, `"delay"` or `"close"`.
    pub action: Option<String>,
    pub status: Option<u16>,
    pub max_delay: Option<String>,
    pub dry_run: Option<bool>,
    pub max_keys: Option<usize>,
    /// Keys not listed above (reported by validation: a limit may be written inline in a
    /// route's list, where the file's own unknown-key check cannot see).
    #[serde(flatten)]
    pub unknown: BTreeMap<String, toml::Value>,
}

/// `[client_address]`: which peers may name the client (PROXY protocol, forwarding headers).
#[derive(Debug, Default, Deserialize)]
pub struct ClientAddressSection {
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    pub header: Option<String>,
}

/// `[access]`: the named rules checked on every request, before routing.
#[derive(Debug, Default, Deserialize)]
pub struct AccessSection {
    #[serde(default)]
    pub rules: Vec<String>,
    /// Named `[[rate_limits]]` every request counts against, before routing.
    #[serde(default)]
    pub rate_limits: Vec<String>,
}

/// `[[access_rules]]` and `[[routes.access_rules]]`: one access rule.
#[derive(Debug, Default, Deserialize)]
pub struct AccessRuleSection {
    pub name: Option<String>,
    pub action: Option<String>,
    pub status: Option<u16>,
    #[serde(default)]
    pub deny_cidrs: Vec<String>,
    pub deny_cidrs_file: Option<String>,
    #[serde(default)]
    pub allow_cidrs: Vec<String>,
    pub allow_cidrs_file: Option<String>,
    #[serde(default)]
    pub methods: Vec<String>,
    #[serde(default)]
    pub path_prefixes: Vec<String>,
    pub path_regex: Option<String>,
    pub header: Option<String>,
    pub header_value: Option<String>,
    pub header_regex: Option<String>,
}

/// `[cluster]`: nodes sharing runtime state through etcd.
#[derive(Debug, Default, Deserialize)]
pub struct ClusterSection {
    pub name: Option<String>,
    pub node: Option<String>,
    #[serde(default)]
    pub etcd_endpoints: Vec<String>,
    pub prefix: Option<String>,
    pub dial_timeout: Option<String>,
    pub request_timeout: Option<String>,
    pub node_ttl: Option<String>,
    pub ca_file: Option<String>,
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    pub user: Option<String>,
    pub password_file: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct LimitsSection {
    pub max_header_bytes: Option<Size>,
    pub max_headers: Option<usize>,
    pub max_uri_length: Option<Size>,
    pub max_body_size: Option<Size>,
    pub keepalive_requests: Option<u32>,
    pub max_connections: Option<usize>,
    pub max_connections_per_client: Option<usize>,
    pub max_silent_per_client: Option<usize>,
    /// `"20/1s"`: new connections from one address.
    pub max_connection_rate_per_client: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct AccessLogSection {
    pub enabled: Option<bool>,
    #[serde(default)]
    pub capture_request_headers: Vec<String>,
    #[serde(default)]
    pub capture_response_headers: Vec<String>,
    pub strip_captured_response_headers: Option<bool>,
    pub request_id_header: Option<String>,
    pub queue_size: Option<usize>,
    #[serde(default)]
    pub targets: Vec<LogTargetSection>,
}

#[derive(Debug, Default, Deserialize)]
pub struct LogTargetSection {
    pub name: Option<String>,
    pub transport: Option<String>,
    pub address: Option<String>,
    pub path: Option<String>,
    pub format: Option<String>,
    pub facility: Option<String>,
    pub tag: Option<String>,
    pub hostname: Option<String>,
    pub sample: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ReadonlySection {
    pub enabled: Option<bool>,
    pub retry_after: Option<String>,
    pub message: Option<String>,
    pub page: Option<String>,
    #[serde(default)]
    pub allow_paths: Vec<String>,
    pub strip_cookies: Option<bool>,
    pub ttl_floor: Option<String>,
}

/// A size: a number of bytes, or a string with a k/m/g suffix (powers of 1024).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Size {
    Bytes(u64),
    Text(String),
}

#[derive(Debug, Default, Deserialize)]
pub struct CacheSection {
    pub enabled: Option<bool>,
    pub max_size: Option<Size>,
    pub max_object_size: Option<Size>,
    pub lock_timeout: Option<String>,
    pub status_header: Option<String>,
    pub targeted_field: Option<String>,
    pub snapshot: Option<String>,
    #[serde(default)]
    pub peers: Vec<String>,
    pub warm: Option<bool>,
    pub warm_interval: Option<String>,
    pub warm_objects: Option<usize>,
    pub siblings: Option<bool>,
    pub sibling_timeout: Option<String>,
    pub sibling_wait: Option<String>,
    pub peer_token: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RouteCacheSection {
    pub enabled: Option<bool>,
    pub default_ttl: Option<String>,
    pub max_ttl: Option<String>,
    pub override_ttl: Option<String>,
    pub grace: Option<String>,
    pub stale_if_error: Option<String>,
    pub keep: Option<String>,
    pub min_uses: Option<u32>,
    pub min_uses_window: Option<String>,
    pub ignore_query: Option<bool>,
    #[serde(default)]
    pub ignore_params: Vec<String>,
    #[serde(default)]
    pub ignore_cookies: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ServerSection {
    pub threads: Option<usize>,
    pub pid_file: Option<String>,
    pub upgrade_socket: Option<String>,
    pub state_dir: Option<String>,
    pub grace_period: Option<String>,
    pub shutdown_timeout: Option<String>,
    pub direct_exchange: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
pub struct TimeoutsSection {
    pub connect: Option<String>,
    pub upstream_read: Option<String>,
    pub upstream_write: Option<String>,
    pub client_idle: Option<String>,
    pub client_header: Option<String>,
    pub client_handshake: Option<String>,
    pub client_send: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ListenerSection {
    pub name: Option<String>,
    pub address: Option<String>,
    pub tls: Option<TlsSection>,
    pub redirect_to_https: Option<bool>,
    pub hsts: Option<String>,
    pub proxy_protocol: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
pub struct TlsSection {
    #[serde(default)]
    pub certificates: Vec<CertEntry>,
    pub strict_sni: Option<bool>,
    pub h2: Option<bool>,
    pub expiry_warning_days: Option<u32>,
    pub profile: Option<String>,
    pub min_version: Option<String>,
    pub cipher_suites: Option<Vec<String>>,
    pub groups: Option<Vec<String>>,
    pub session_tickets: Option<bool>,
    pub ticket_rotation: Option<String>,
    pub ticket_key_file: Option<String>,
    pub session_cache: Option<usize>,
    pub acme: Option<AcmeSection>,
}

#[derive(Debug, Default, Deserialize)]
pub struct AcmeSection {
    pub directory: Option<String>,
    #[serde(default)]
    pub contact: Vec<String>,
    #[serde(default)]
    pub domains: Vec<String>,
    pub challenge: Option<String>,
    pub storage: Option<String>,
    pub directory_ca: Option<String>,
    pub renew_before: Option<String>,
    pub retry: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct CertEntry {
    pub cert: Option<String>,
    pub key: Option<String>,
    pub default: Option<bool>,
    /// "file:PATH": an OCSP response (DER) to staple.
    pub ocsp: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct PoolSection {
    pub balance: Option<String>,
    pub hash_key: Option<String>,
    pub retries: Option<u32>,
    pub slowstart: Option<String>,
    pub health: Option<HealthSection>,
    #[serde(default)]
    pub servers: Vec<ServerEntry>,
}

#[derive(Debug, Default, Deserialize)]
pub struct HealthSection {
    pub enabled: Option<bool>,
    pub path: Option<String>,
    pub host: Option<String>,
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub rise: Option<u32>,
    pub fall: Option<u32>,
    pub expect_status: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ServerEntry {
    pub name: Option<String>,
    pub address: Option<String>,
    pub weight: Option<u32>,
    pub backup: Option<bool>,
    pub slowstart: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RouteSection {
    pub name: Option<String>,
    #[serde(default)]
    pub hosts: Vec<String>,
    pub path_prefix: Option<String>,
    pub pool: Option<String>,
    pub cache: Option<RouteCacheSection>,
    pub readonly: Option<String>,
    pub allow_upgrade: Option<bool>,
    #[serde(default)]
    pub access: Vec<String>,
    #[serde(default)]
    pub access_rules: Vec<AccessRuleSection>,
    /// Named `[[rate_limits]]` (by name) and the route's own (tables), in order.
    #[serde(default)]
    pub rate_limits: Vec<RateLimitEntry>,
    pub compression: Option<CompressionSection>,
}

/// `[compression]` and a route's `[routes.compression]`.
#[derive(Debug, Default, Deserialize)]
pub struct CompressionSection {
    pub enabled: Option<bool>,
    pub types: Option<Vec<String>>,
    pub min_size: Option<u64>,
    pub gzip_level: Option<u32>,
    pub br_level: Option<u32>,
    pub zstd_level: Option<u32>,
    pub preference: Option<Vec<String>>,
    pub cache_encoding: Option<String>,
}

/// An entry of a route's `rate_limits`: a named `[[rate_limits]]`, or a limit of its own.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RateLimitEntry {
    Named(String),
    Own(RateLimitSection),
}

#[derive(Debug, Default, Deserialize)]
pub struct AdminSection {
    pub enabled: Option<bool>,
    pub address: Option<String>,
    pub token: Option<String>,
    pub token_file: Option<String>,
}
