//! `ClientApp`: the listening service's app. It counts each connection against the limits,
//! wraps its stream in a `ClientStream`, and runs the HTTP/1 keep-alive loop itself, waiting
//! for each request's first bytes outside pingora so that an idle connection holds only its
//! stream. HTTP/2 connections go to pingora as they are.
//!
//! The loop mirrors the HTTP/1 branch of pingora-core 0.9.1's blanket
//! `impl<T: HttpServerApp> ServerApp for T` (`apps/mod.rs`, `process_new`): one
//! `ServerSession::new_http1` per request, `HttpPersistentSettings` carried from one request to
//! the next, no reuse once shutdown begins. It differs in waiting for bytes before building the
//! session, and in applying gatehouse's idle timeout and closing flag.

use super::stream::{ClientStream, Next};
use super::{ConnPolicy, ConnState, ConnTracker};
use async_trait::async_trait;
use pingora::apps::{HttpPersistentSettings, HttpServerApp, ServerApp};
use pingora::protocols::http::ServerSession;
use pingora::protocols::{GetSocketDigest, Stream, ALPN};
use pingora::server::ShutdownWatch;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

/// Counts, wraps and serves client connections for the HTTP app `A` (gatehouse's proxy).
pub struct ClientApp<A> {
    pub app: Arc<A>,
    pub tracker: Arc<ConnTracker>,
    pub policy: Arc<dyn ConnPolicy>,
}

fn inet(addr: Option<&pingora::protocols::l4::socket::SocketAddr>) -> Option<SocketAddr> {
    addr.and_then(|a| a.as_inet()).copied()
}

#[async_trait]
impl<A> ServerApp for ClientApp<A>
where
    A: HttpServerApp + Send + Sync + 'static,
{
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let settings = self.policy.settings();
        let peer = stream.get_socket_digest().and_then(|d| inet(d.peer_addr()));
        let (_guard, over_limit) = self.tracker.admit(peer.map(|a| a.ip()), &settings);
        if matches!(stream.selected_alpn_proto(), Some(ALPN::H2)) {
            if over_limit.is_some() {
                return None; // no HTTP/1 answer to give on an HTTP/2 connection
            }
            return ServerApp::process_new(&self.app, stream, shutdown).await;
        }
        let state = Arc::new(ConnState {
            over_limit,
            ..ConnState::default()
        });
        let stream = Box::new(ClientStream::new(
            stream,
            state.clone(),
            settings.header_timeout,
        ));
        let server = stream
            .get_socket_digest()
            .and_then(|d| inet(d.local_addr()));
        self.keepalive_loop(stream, settings.idle, shutdown).await;
        if state.timed_out.load(Relaxed) {
            self.tracker.header_timeouts.fetch_add(1, Relaxed);
            tracing::debug!(client = ?peer, "{}", super::HEADER_TIMEOUT);
            self.policy.header_timed_out(peer, server);
        }
        None
    }

    async fn cleanup(&self) {
        self.app.http_cleanup().await;
    }
}

impl<A> ClientApp<A>
where
    A: HttpServerApp + Send + Sync + 'static,
{
    /// Serves requests on one HTTP/1 connection until it closes, idles out or shutdown begins.
    async fn keepalive_loop(
        &self,
        mut stream: Box<ClientStream>,
        idle: std::time::Duration,
        shutdown: &ShutdownWatch,
    ) {
        let keepalive_limit = self
            .app
            .server_options()
            .and_then(|o| o.keepalive_request_limit);
        let mut settings = None;
        for served in 0u64.. {
            let stopping = *shutdown.borrow();
            if stopping && served > 0 {
                break; // pingora stops reusing connections once shutdown begins
            }
            let mut watch = shutdown.clone();
            let request = std::future::poll_fn(|cx| stream.poll_next_request(cx));
            let next = tokio::select! {
                biased;
                _ = watch.changed(), if !stopping => Next::Closed,
                next = tokio::time::timeout(idle, request) => next.unwrap_or(Next::Closed),
            };
            if matches!(next, Next::Closed) {
                break;
            }
            let mut session = ServerSession::new_http1(stream);
            match settings.take() {
                Some(s) => HttpPersistentSettings::apply_to_session(s, &mut session),
                None => {
                    session.set_keepalive(Some(idle.as_secs().max(1)));
                    session.set_keepalive_reuses_remaining(keepalive_limit);
                }
            }
            if stopping || self.policy.closing() {
                session.set_keepalive(None);
            }
            let Some(reused) = self.app.process_new_http(session, shutdown).await else {
                break;
            };
            let (next_stream, next_settings) = reused.consume();
            settings = next_settings;
            match next_stream.into_any().downcast::<ClientStream>() {
                Ok(s) => stream = s,
                Err(_) => break, // not ours: cannot happen, as pingora hands back what it got
            }
        }
    }
}
