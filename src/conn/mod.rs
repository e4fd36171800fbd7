//! Client connections, before pingora's HTTP layer sees them: how many are open (in total and
//! per client address, against `limits.max_connections` and `max_connections_per_client`), and
//! the deadline for receiving each request's headers (`timeouts.client_header`, against
//! slowloris). `keepalive::ClientApp` wraps the HTTP app as the listening service's app, so
//! every connection passes through here once, and leaves through `ConnGuard`'s drop;
//! `stream::ClientStream` carries the deadline.
//!
//! A connection over a limit is still read: its requests are answered 503 by the proxy (so the
//! refusal is a proper HTTP answer, logged like any other). A client whose headers do not arrive
//! in time gets a 408 written by `ClientStream`, and the connection is closed.
//!
//! Between requests (and before the first) an HTTP/1 connection waits for its next bytes
//! (`client_idle`), holding only its stream: pingora's session and request future, tens of KiB,
//! exist only while a request is in progress. HTTP/2 connections go to pingora's HTTP/2 layer
//! over `cork::CorkedStream`, which sends the responses of streams finishing together in one
//! write.
//!
//! Before its handshake, every connection passes `admission`: a `proxy_protocol` listener's
//! PROXY header (`proxy_accept`, `proxy_header`), whose address is the connection's peer
//! address from then on, then the client's connection rate.
//!
//! This module knows nothing of the proxy: what it needs of the running config and of the
//! timing log comes through `ConnPolicy`.

mod admission;
mod cork;
mod gather;
mod glitches;
mod keepalive;
mod proxy_accept;
mod proxy_header;
mod stream;
mod streams;
mod waiting;

pub use admission::Admission;
pub use glitches::stream_cancelled;
pub use keepalive::{inet, ClientApp, FastPath, Prepare, Served};
pub use stream::ClientStream;

/// Tests elsewhere in the crate: a pingora stream over a real loopback connection, and the
/// peer's end.
#[cfg(test)]
pub(crate) async fn test_loopback() -> (pingora::protocols::Stream, tokio::net::TcpStream) {
    gather::loopback().await
}

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Why a connection's requests are refused.
pub const OVER_TOTAL: &str = "too many client connections";
pub const OVER_PER_CLIENT: &str = "too many connections from this client";
pub const HEADER_TIMEOUT: &str = "request header timeout";

/// The limits and deadlines in force when a connection opens.
#[derive(Debug, Clone)]
pub struct ConnSettings {
    pub max_connections: usize,
    /// 0: no per-address limit.
    pub max_connections_per_client: usize,
    /// Connections from one address without a request yet (0: no limit).
    pub max_silent_per_client: usize,
    pub header_timeout: Duration,
    pub idle: Duration,
    /// From accept to the end of the TLS handshake.
    pub handshake_timeout: Duration,
}

/// What the connection layer asks of the rest of gatehouse.
pub trait ConnPolicy: Send + Sync + 'static {
    /// The limits and deadlines of the config in force now.
    fn settings(&self) -> ConnSettings;
    /// A graceful stop or upgrade has begun: connections close after their current request.
    fn closing(&self) -> bool;
    /// A client's request headers did not arrive in time; it was answered 408 and closed.
    fn header_timed_out(&self, client: Option<SocketAddr>, server: Option<SocketAddr>);
    /// Whether `ip` is in `client_address.trusted_proxies`: it may send a PROXY protocol
    /// header, and it is not held to the per-client connection limits (its connections carry
    /// many clients).
    fn trusted_proxy(&self, ip: IpAddr) -> bool;
    /// Counts a new connection from `ip` against `limits.max_connection_rate_per_client`:
    /// false (and counted as a refusal) when it is over.
    fn connection_rate_ok(&self, ip: IpAddr) -> bool;
}

/// Open client connections, and refusals, for limits and metrics.
#[derive(Default)]
pub struct ConnTracker {
    open: AtomicUsize,
    /// Open connections per client address (entries removed at zero). Locked briefly when a
    /// connection opens and closes, never across an await.
    per_client: Mutex<HashMap<IpAddr, usize>>,
    pub accepted: AtomicU64,
    pub refused_total: AtomicU64,
    pub refused_per_client: AtomicU64,
    /// Connections closed before their handshake, over the connection rate.
    pub refused_rate: AtomicU64,
    pub header_timeouts: AtomicU64,
    /// Connections without a request yet: the first to go when the table is full.
    waiting: Arc<waiting::Waiting>,
}

impl ConnTracker {
    pub fn open(&self) -> usize {
        self.open.load(Relaxed)
    }

    /// Counts a new connection; says which limit it is over, if any.
    pub(crate) fn admit(
        self: &Arc<Self>,
        ip: Option<IpAddr>,
        limits: &ConnSettings,
    ) -> (ConnGuard, Option<&'static str>) {
        self.accepted.fetch_add(1, Relaxed);
        let total = self.open.fetch_add(1, Relaxed) + 1;
        let from_client = ip.map_or(0, |ip| {
            let mut map = self.per_client.lock().unwrap_or_else(|p| p.into_inner());
            let n = map.entry(ip).or_insert(0);
            *n += 1;
            *n
        });
        let guard = ConnGuard {
            tracker: self.clone(),
            ip,
        };
        let over_per_client = limits.max_connections_per_client > 0
            && from_client > limits.max_connections_per_client;
        // Room is made (a silent connection closed) only for a connection that will be served.
        let over = if total > limits.max_connections
            && (over_per_client || !self.waiting.evict_oldest())
        {
            self.refused_total.fetch_add(1, Relaxed);
            Some(OVER_TOTAL)
        } else if over_per_client {
            self.refused_per_client.fetch_add(1, Relaxed);
            Some(OVER_PER_CLIENT)
        } else {
            None
        };
        (guard, over)
    }

    /// Lists a connection from `ip` as waiting for its first request (`waiting`).
    pub(crate) fn waiting_for_request(
        &self,
        ip: Option<IpAddr>,
        limits: &ConnSettings,
    ) -> waiting::FirstRequest {
        self.waiting.enter(ip, limits.max_silent_per_client)
    }
}

/// One open client connection; uncounted on drop.
pub struct ConnGuard {
    tracker: Arc<ConnTracker>,
    ip: Option<IpAddr>,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        crate::freed_memory::connection_closed();
        self.tracker.open.fetch_sub(1, Relaxed);
        if let Some(ip) = self.ip {
            let mut map = self
                .tracker
                .per_client
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if let Some(n) = map.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    map.remove(&ip);
                }
            }
        }
    }
}

/// What the proxy's hooks and the connection loop share about one connection.
#[derive(Debug, Default)]
pub struct ConnState {
    /// A request's headers are awaited: the header deadline runs from its first byte.
    head_pending: AtomicBool,
    timed_out: AtomicBool,
    /// The limit this connection is over: its requests get 503.
    pub over_limit: Option<&'static str>,
}

impl ConnState {
    /// Called by the proxy once a request's headers are parsed.
    pub fn headers_received(&self) {
        self.head_pending.store(false, Relaxed);
    }
}

/// The connection state of the stream a request arrived on (HTTP/1 only).
pub fn state_of(session: &pingora::proxy::Session) -> Option<&Arc<ConnState>> {
    let stream = session.as_downstream().stream()?;
    Some(&stream.as_any().downcast_ref::<ClientStream>()?.state)
}

/// Ends an HTTP/1 client's connection with a reset instead of a FIN, once it is closed: a
/// client that stopped taking its response would otherwise be sent what the kernel still holds
/// for it (megabytes) for as long as it keeps trickling (nginx's `reset_timedout_connection`).
pub fn reset_at_close(session: &pingora::proxy::Session) {
    let Some(stream) = session.as_downstream().stream() else {
        return; // an HTTP/2 stream: its reset is the stream's own
    };
    let fd = stream.id();
    if fd >= 0 {
        crate::pingora_ext::reset_at_close(fd);
    }
    // Set only where the connection ends: pingora never reuses a client connection after a
    // failed request (`fail_to_proxy`'s `can_reuse_downstream: false`, the fast path's
    // `Done(None)`), so no later response is cut by this reset.
}
