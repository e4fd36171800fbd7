//! The connection layer's questions (`conn::ConnPolicy`), answered from the running config:
//! limits and deadlines, whether gatehouse is closing, and the timing record of a request
//! whose headers never arrived.

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
            header_timeout: c.timeouts.client_header,
            idle: c.timeouts.client_idle,
        }
    }

    fn closing(&self) -> bool {
        self.closing.load(Relaxed)
    }

    fn header_timed_out(&self, client: Option<SocketAddr>, server: Option<SocketAddr>) {
        if !self.access_log.is_active() {
            return;
        }
        let rt = self.current();
        let listener = server
            .and_then(|a| rt.listener_for(a))
            .map(|l| rt.config.listeners[l].name.clone())
            .unwrap_or_default();
        self.access_log.push(Record {
            time: Some(SystemTime::now()),
            client,
            listener,
            method: "-".into(),
            authority: "-".into(),
            path: "-".into(),
            http_version: "HTTP/1.1",
            status: 408,
            termination: Termination::ClientTimeout,
            error: Some(HEADER_TIMEOUT.into()),
            t_total_ms: crate::clock::ms(rt.config.timeouts.client_header),
            ..Record::default()
        });
    }
}
