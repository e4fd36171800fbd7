//! One access log record: everything known about a request once it is done, timers in
//! milliseconds following HAProxy's model.

use std::net::SocketAddr;
use std::time::SystemTime;

/// Who ended a request and how, as the log writes it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Termination {
    /// Proxied, the whole response sent.
    #[default]
    Done,
    /// Served from the cache (fresh or stale).
    Cache,
    /// Answered by gatehouse itself: no route, redirect, read-only, limits.
    Local,
    /// Refused by an access rule (answered with its status, or dropped); the record's
    /// `error` names the rule.
    Denied,
    /// The client went away or sent something unusable.
    ClientAbort,
    /// The client's request headers did not arrive in time (408).
    ClientTimeout,
    /// No server could be connected to.
    ConnectError,
    /// A server took too long to answer or to take the request.
    ServerTimeout,
    /// A server failed mid-exchange.
    ServerError,
    /// The pool had no usable server.
    NoServer,
    /// A fault of gatehouse's own.
    InternalError,
}

impl Termination {
    pub fn as_str(self) -> &'static str {
        match self {
            Termination::Done => "done",
            Termination::Cache => "cache",
            Termination::Local => "local",
            Termination::Denied => "denied",
            Termination::ClientAbort => "client_abort",
            Termination::ClientTimeout => "client_timeout",
            Termination::ConnectError => "connect_error",
            Termination::ServerTimeout => "server_timeout",
            Termination::ServerError => "server_error",
            Termination::NoServer => "no_server",
            Termination::InternalError => "internal_error",
        }
    }
}

/// TLS facts of the client connection.
#[derive(Debug, Clone, Default)]
pub struct TlsRecord {
    pub sni: Option<String>,
    pub version: String,
    pub cipher: String,
    pub alpn: &'static str,
    pub handshake_ms: Option<f64>,
}

#[derive(Debug, Clone, Default)]
pub struct Record {
    pub time: Option<SystemTime>,
    pub request_id: String,
    pub client: Option<SocketAddr>,
    pub listener: String,
    pub tls: Option<TlsRecord>,
    pub method: String,
    pub authority: String,
    pub path: String,
    pub http_version: &'static str,
    pub status: u16,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub route: Option<String>,
    pub pool: Option<String>,
    pub server: Option<String>,
    pub cache: Option<&'static str>,
    /// Read-only mode applied to the request; `readonly_refused` if it was a refused write.
    pub readonly: bool,
    pub readonly_refused: bool,
    /// How long the client connection had been open when this request began (for the first
    /// request: TLS handshake and receiving the request headers; later: also idle time).
    /// pingora reads request headers before any hook runs, so their own duration is not
    /// observable separately.
    pub t_conn_age_ms: Option<f64>,
    /// From the request's start to choosing a server: routing, cache lookup, cache lock wait.
    pub t_queue_ms: Option<f64>,
    /// TCP connect to the server; 0 on a reused connection.
    pub t_connect_ms: Option<f64>,
    /// From connected to the server's response headers.
    pub t_response_ms: Option<f64>,
    /// Whole active time of the request.
    pub t_total_ms: f64,
    pub retries: u32,
    /// Who ended the request and how.
    pub termination: Termination,
    pub error: Option<String>,
    pub request_headers: Vec<(http::HeaderName, String)>,
    pub response_headers: Vec<(http::HeaderName, String)>,
    /// The body coded by gatehouse (`proxy::compression`), if it was.
    pub compression: Option<CompressionRecord>,
}

/// What gatehouse's coder did to a response body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompressionRecord {
    /// The coding: what the client got (compress), or what was decoded (decompress).
    pub encoding: &'static str,
    /// `compress` or `decompress`.
    pub op: &'static str,
    /// Body bytes into the coder and out of it.
    pub bytes_before: u64,
    pub bytes_after: u64,
}
