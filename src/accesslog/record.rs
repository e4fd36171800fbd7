//! One access log record: everything known about a request once it is done, timers in
//! milliseconds following HAProxy's model.

use std::net::SocketAddr;
use std::time::SystemTime;

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
    /// Who ended the request and how: done, local, cache, client_abort, connect_error,
    /// server_timeout, server_error, no_server.
    pub termination: &'static str,
    pub error: Option<String>,
    pub request_headers: Vec<(http::HeaderName, String)>,
    pub response_headers: Vec<(http::HeaderName, String)>,
}
