//! What runs on every accepted connection before its TLS or HTTP handshake (vendored patch
//! 32), within `timeouts.client_handshake`: on a `proxy_protocol` listener, the PROXY header
//! (`proxy_accept`), which names the client; then the client's connection rate
//! (`limits.max_connection_rate_per_client`, HAProxy's `tcp-request connection reject if {
//! src_conn_rate gt N }`): a client over it is closed before a handshake is spent on it, and
//! counted (`gatehouse_client_refusals_total{reason="connection_rate"}`), never logged one line
//! per connection. Trusted proxies are not held to it (their connections carry many clients).

use super::{proxy_accept, ConnPolicy};
use crate::telemetry::CONN_RATE_REFUSED;
use async_trait::async_trait;
use pingora::listeners::PreTlsProcess;
use pingora::protocols::l4::stream::Stream as L4Stream;
use pingora::protocols::GetSocketDigest;
use pingora::{Error, ErrorType, Result};
use std::sync::Arc;

/// The pre-handshake step of a listener.
pub struct Admission {
    pub policy: Arc<dyn ConnPolicy>,
    /// The listener expects a PROXY protocol header.
    pub proxy_protocol: bool,
}

#[async_trait]
impl PreTlsProcess for Admission {
    async fn process(&self, stream: &mut L4Stream) -> Result<()> {
        if self.proxy_protocol {
            proxy_accept::accept(&*self.policy, stream).await?;
        }
        let client = stream
            .get_socket_digest()
            .and_then(|d| super::inet(d.peer_addr()));
        match client {
            Some(c) if !self.policy.connection_rate_ok(c.ip()) => {
                Error::e_explain(ErrorType::HandshakeError, CONN_RATE_REFUSED)
            }
            _ => Ok(()),
        }
    }
}
