//! Client connections, before pingora's HTTP layer sees them: how many are open (in total and
//! per client address, against `limits.max_connections` and `max_connections_per_client`), and
//! the deadline for receiving each request's headers (`timeouts.client_header`, against
//! slowloris). `ClientApp` wraps pingora's proxy as the listening service's app, so every
//! connection passes through here once, and leaves through `ConnGuard`'s drop.
//!
//! A connection over a limit is still read: its requests are answered 503 by the proxy (so the
//! refusal is a proper HTTP answer, logged like any other). A client whose headers do not arrive
//! in time gets a 408 written by `ClientStream`, and the connection is closed.
//!
//! Between requests (and before the first) an HTTP/1 connection waits here for its next bytes
//! (`client_idle`), holding only its stream: pingora's session and request future, tens of KiB,
//! exist only while a request is in progress. HTTP/2 connections go to pingora as they are.

use crate::accesslog::Record;
use crate::proxy::Proxy;
use crate::runtime::Shared;
use async_trait::async_trait;
use pingora::apps::{HttpPersistentSettings, HttpServerApp, ServerApp};
use pingora::protocols::http::ServerSession;
use pingora::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, Ssl, UniqueID, UniqueIDType,
};
use pingora::protocols::{Stream, ALPN};
use pingora::proxy::HttpProxy;
use pingora::server::ShutdownWatch;
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Why a connection's requests are refused.
pub const OVER_TOTAL: &str = "too many client connections";
pub const OVER_PER_CLIENT: &str = "too many connections from this client";
const HEADER_TIMEOUT: &str = "request header timeout";

const TIMEOUT_ANSWER: &[u8] = b"HTTP/1.1 408 Request Timeout\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 20\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n408 Request Timeout\n";

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
    pub header_timeouts: AtomicU64,
}

impl ConnTracker {
    pub fn open(&self) -> usize {
        self.open.load(Relaxed)
    }

    /// Counts a new connection; says which limit it is over, if any.
    fn admit(
        self: &Arc<Self>,
        ip: Option<IpAddr>,
        limits: &crate::config::Limits,
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
        let over = if total > limits.max_connections {
            self.refused_total.fetch_add(1, Relaxed);
            Some(OVER_TOTAL)
        } else if limits.max_connections_per_client > 0
            && from_client > limits.max_connections_per_client
        {
            self.refused_per_client.fetch_add(1, Relaxed);
            Some(OVER_PER_CLIENT)
        } else {
            None
        };
        (guard, over)
    }
}

/// One open client connection; uncounted on drop.
pub struct ConnGuard {
    tracker: Arc<ConnTracker>,
    ip: Option<IpAddr>,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
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

/// The client stream as pingora sees it: the real one, plus the header deadline.
pub struct ClientStream {
    inner: Stream,
    pub state: Arc<ConnState>,
    header_timeout: Duration,
    /// Allocated at the first request, then re-armed for each one.
    deadline: Option<Pin<Box<Sleep>>>,
    /// Bytes of the 408 answer written so far, once the deadline passed.
    answered: Option<usize>,
    /// The first bytes of a request, read by `wait_for_request` before pingora reads.
    stash: Vec<u8>,
    stash_pos: usize,
}

impl std::fmt::Debug for ClientStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientStream")
            .field("inner", &self.inner)
            .finish()
    }
}

thread_local! {
    /// Where `wait_for_request` reads a request's first bytes before copying out what came.
    static SCRATCH: std::cell::RefCell<Box<[u8]>> =
        std::cell::RefCell::new(vec![0u8; 8192].into_boxed_slice());
}

/// How waiting for a client's next request ended.
enum Next {
    Request,
    Closed,
}

impl ClientStream {
    fn new(inner: Stream, state: Arc<ConnState>, header_timeout: Duration) -> ClientStream {
        ClientStream {
            inner,
            state,
            header_timeout,
            deadline: None,
            answered: None,
            stash: Vec::new(),
            stash_pos: 0,
        }
    }

    /// Waits for the first bytes of the next request and keeps them for pingora. An idle
    /// connection then holds only this stream, not pingora's per-request session and future
    /// (tens of KiB); the header deadline starts with these bytes.
    fn poll_next_request(&mut self, cx: &mut Context<'_>) -> Poll<Next> {
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            let mut buf = ReadBuf::new(&mut scratch[..]);
            match Pin::new(&mut self.inner).poll_read(cx, &mut buf) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Ok(())) if !buf.filled().is_empty() => {
                    self.stash.clear();
                    self.stash.extend_from_slice(buf.filled());
                    self.stash_pos = 0;
                    self.state.head_pending.store(true, Relaxed);
                    self.arm();
                    Poll::Ready(Next::Request)
                }
                Poll::Ready(_) => Poll::Ready(Next::Closed),
            }
        })
    }

    fn arm(&mut self) {
        let at = Instant::now() + self.header_timeout;
        match &mut self.deadline {
            Some(sleep) => sleep.as_mut().reset(at),
            None => self.deadline = Some(Box::pin(tokio::time::sleep_until(at))),
        }
    }

    /// Writes the 408 (as far as the socket takes it), then fails the read.
    fn poll_timeout_answer(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut done = *self.answered.get_or_insert(0);
        while done < TIMEOUT_ANSWER.len() {
            match Pin::new(&mut self.inner).poll_write(cx, &TIMEOUT_ANSWER[done..]) {
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => break,
                Poll::Ready(Ok(n)) => done += n,
                Poll::Pending => {
                    self.answered = Some(done);
                    return Poll::Pending;
                }
            }
        }
        self.answered = Some(done);
        if Pin::new(&mut self.inner).poll_flush(cx).is_pending() {
            return Poll::Pending;
        }
        self.state.timed_out.store(true, Relaxed);
        Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, HEADER_TIMEOUT)))
    }
}

impl AsyncRead for ClientStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.answered.is_some() {
            return this.poll_timeout_answer(cx);
        }
        // The deadline is armed whenever headers are pending (`poll_next_request` does both).
        if this.state.head_pending.load(Relaxed) {
            if let Some(sleep) = &mut this.deadline {
                if sleep.as_mut().poll(cx).is_ready() {
                    return this.poll_timeout_answer(cx);
                }
            }
        }
        if this.stash_pos < this.stash.len() {
            let n = buf.remaining().min(this.stash.len() - this.stash_pos);
            buf.put_slice(&this.stash[this.stash_pos..this.stash_pos + n]);
            this.stash_pos += n;
            if this.stash_pos == this.stash.len() {
                this.stash = Vec::new(); // an idle connection keeps no buffer
                this.stash_pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for ClientStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[async_trait]
impl Shutdown for ClientStream {
    async fn shutdown(&mut self) {
        self.inner.shutdown().await
    }
}

impl UniqueID for ClientStream {
    fn id(&self) -> UniqueIDType {
        self.inner.id()
    }
}

impl Ssl for ClientStream {
    fn get_ssl(&self) -> Option<&pingora::protocols::tls::TlsRef> {
        self.inner.get_ssl()
    }
    fn get_ssl_digest(&self) -> Option<Arc<pingora::protocols::tls::SslDigest>> {
        self.inner.get_ssl_digest()
    }
    fn selected_alpn_proto(&self) -> Option<ALPN> {
        self.inner.selected_alpn_proto()
    }
}

impl GetTimingDigest for ClientStream {
    fn get_timing_digest(&self) -> Vec<Option<pingora::protocols::TimingDigest>> {
        self.inner.get_timing_digest()
    }
    fn get_read_pending_time(&self) -> Duration {
        self.inner.get_read_pending_time()
    }
    fn get_write_pending_time(&self) -> Duration {
        self.inner.get_write_pending_time()
    }
}

impl GetProxyDigest for ClientStream {
    fn get_proxy_digest(&self) -> Option<Arc<pingora::protocols::raw_connect::ProxyDigest>> {
        self.inner.get_proxy_digest()
    }
}

impl GetSocketDigest for ClientStream {
    fn get_socket_digest(&self) -> Option<Arc<pingora::protocols::SocketDigest>> {
        self.inner.get_socket_digest()
    }
}

#[async_trait]
impl Peek for ClientStream {
    async fn try_peek(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        self.inner.try_peek(buf).await
    }
}

/// The connection state of the stream a request arrived on (HTTP/1 only).
pub fn state_of(session: &pingora::proxy::Session) -> Option<&Arc<ConnState>> {
    let stream = session.as_downstream().stream()?;
    Some(&stream.as_any().downcast_ref::<ClientStream>()?.state)
}

/// The listening service's app: counts the connection, wraps its stream, then hands it to
/// pingora's proxy (HTTP/1 keep-alive loop here, HTTP/2 in pingora).
pub struct ClientApp {
    pub proxy: Arc<HttpProxy<Proxy>>,
    pub shared: Arc<Shared>,
}

#[async_trait]
impl ServerApp for ClientApp {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let rt = self.shared.current();
        let peer = stream
            .get_socket_digest()
            .and_then(|d| d.peer_addr().and_then(|a| a.as_inet()).copied());
        let (_guard, over_limit) = self
            .shared
            .conns
            .admit(peer.map(|a| a.ip()), &rt.config.limits);
        let header_timeout = rt.config.timeouts.client_header;
        let idle = rt.config.timeouts.client_idle;
        drop(rt); // a long-lived connection must not pin an old config generation
        if matches!(stream.selected_alpn_proto(), Some(ALPN::H2)) {
            if over_limit.is_some() {
                return None; // no HTTP/1 answer to give on an HTTP/2 connection
            }
            return ServerApp::process_new(&self.proxy, stream, shutdown).await;
        }
        let state = Arc::new(ConnState {
            over_limit,
            ..ConnState::default()
        });
        let mut stream = Box::new(ClientStream::new(stream, state.clone(), header_timeout));
        let keepalive_limit = self
            .proxy
            .server_options()
            .and_then(|o| o.keepalive_request_limit);
        let server = stream
            .get_socket_digest()
            .and_then(|d| d.local_addr().and_then(|a| a.as_inet()).copied());
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
            if stopping || self.shared.closing.load(Relaxed) {
                session.set_keepalive(None);
            }
            let Some(reused) = self.proxy.process_new_http(session, shutdown).await else {
                break;
            };
            let (next_stream, next_settings) = reused.consume();
            settings = next_settings;
            match next_stream.into_any().downcast::<ClientStream>() {
                Ok(s) => stream = s,
                Err(_) => break, // not ours: cannot happen, as pingora hands back what it got
            }
        }
        if state.timed_out.load(Relaxed) {
            self.log_header_timeout(peer, server);
        }
        None
    }

    async fn cleanup(&self) {
        self.proxy.http_cleanup().await;
    }
}

impl ClientApp {
    fn log_header_timeout(
        &self,
        client: Option<std::net::SocketAddr>,
        server: Option<std::net::SocketAddr>,
    ) {
        self.shared.conns.header_timeouts.fetch_add(1, Relaxed);
        tracing::debug!(?client, "{HEADER_TIMEOUT}");
        if !self.shared.access_log.is_active() {
            return;
        }
        let rt = self.shared.current();
        let listener = server
            .and_then(|a| rt.listener_for(a))
            .map(|l| rt.config.listeners[l].name.clone())
            .unwrap_or_default();
        self.shared.access_log.push(Record {
            time: Some(SystemTime::now()),
            client,
            listener,
            method: "-".into(),
            authority: "-".into(),
            path: "-".into(),
            http_version: "HTTP/1.1",
            status: 408,
            termination: "client_timeout",
            error: Some(HEADER_TIMEOUT.into()),
            t_total_ms: rt.config.timeouts.client_header.as_secs_f64() * 1000.0,
            ..Record::default()
        });
    }
}
