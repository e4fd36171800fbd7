//! The connection layer's questions (`conn::ConnPolicy`), answered from the running config:
//! limits and deadlines, whether gatehouse is closing, and the timing record of a request
//! whose headers never arrived or did not parse.

use super::Shared;
use crate::accesslog::{Record, Termination};
use crate::conn::{ConnPolicy, ConnSettings, HEADER_TIMEOUT};
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::time::SystemTime;

impl ConnPolicy for Shared {
    fn settings(&self) -> ConnSettings {
        // Read once per connection: a long-lived connection must not pin an old generation.
        let rt = self.current();
        let c = &rt.config;
        ConnSettings {
            max_connections: c.limits.max_connections,
            max_connections_per_client: c.limits.max_connections_per_client,
            max_silent_per_client: c.limits.max_silent_per_client,
            header_timeout: c.timeouts.client_header,
            idle: c.timeouts.client_idle,
            handshake_timeout: c.timeouts.client_handshake,
        }
    }

    fn trusted_proxy(&self, ip: std::net::IpAddr) -> bool {
        let rt = self.runtime.load(); // a guard, not a reference count: once per connection
        let trusted = &rt.config.client_address.trusted_proxies;
        !trusted.is_empty() && trusted.contains(ip)
    }

    fn connection_rate_ok(&self, ip: std::net::IpAddr) -> bool {
        let rt = self.runtime.load();
        let Some(rate) = rt.config.limits.max_connection_rate_per_client else {
            return true;
        };
        let trusted = &rt.config.client_address.trusted_proxies;
        if !trusted.is_empty() && trusted.contains(ip) {
            return true;
        }
        // An IPv4 client reaching an IPv6 listener (`::ffff:a.b.c.d`) is the same client; an
        // IPv6 one is its /64 (a host has a whole /64 to draw addresses from).
        let key = match ip.to_canonical() {
            std::net::IpAddr::V4(a) => u128::from(u32::from(a)),
            std::net::IpAddr::V6(a) => u128::from(a) & !(u128::MAX >> 64),
        };
        let key = std::hash::BuildHasher::hash_one(self.conn_rate.hasher(), key);
        let now = crate::ratelimit::now_ns();
        let zero = std::time::Duration::ZERO;
        match self.conn_rate.arrive(key, now, rate, zero) {
            crate::ratelimit::Verdict::Over(_) => {
                self.conns.refused_rate.fetch_add(1, Relaxed);
                false
            }
            _ => true,
        }
    }

    fn closing(&self) -> bool {
        self.closing.load(Relaxed)
    }

    fn header_timed_out(&self, client: Option<SocketAddr>, server: Option<SocketAddr>) {
        let record = self.unparsed_request(
            client,
            server,
            408,
            Termination::ClientTimeout,
            HEADER_TIMEOUT,
        );
        if let Some(r) = record {
            let waited = self.current().config.timeouts.client_header;
            self.access_log.push(Record {
                t_total_ms: crate::clock::ms(waited),
                ..r
            });
        }
    }
}

/// Why a request whose header did not parse was answered 400.
pub const BAD_REQUEST: &str = "bad request";

impl Shared {
    /// A request header that did not parse was answered 400 (`proxy::fast_path`): its record.
    pub fn bad_request(&self, client: Option<SocketAddr>, server: Option<SocketAddr>) {
        let record =
            self.unparsed_request(client, server, 400, Termination::ClientAbort, BAD_REQUEST);
        if let Some(r) = record {
            self.access_log.push(r);
        }
    }

    /// The record of a request gatehouse answered before it had a header to log (none when no
    /// access log is configured).
    fn unparsed_request(
        &self,
        client: Option<SocketAddr>,
        server: Option<SocketAddr>,
        status: u16,
        termination: Termination,
        error: &str,
    ) -> Option<Record> {
        if !self.access_log.is_active() {
            return None;
        }
        let rt = self.current();
        let listener = server
            .and_then(|a| rt.listener_for(a))
            .map(|l| rt.config.listeners[l].name.clone())
            .unwrap_or_default();
        Some(Record {
            time: Some(SystemTime::now()),
            client,
            listener,
            method: "-".into(),
            authority: "-".into(),
            path: "-".into(),
            http_version: "HTTP/1.1",
            status,
            termination,
            error: Some(error.into()),
            ..Record::default()
        })
    }
}
