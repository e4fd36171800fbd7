//! `ClientApp`: the listening service's app. It counts each connection against the limits,
//! wraps its stream in a `ClientStream`, and runs the HTTP/1 keep-alive loop itself, waiting
//! for each request's first bytes outside pingora so that an idle connection holds only its
//! stream. HTTP/2 connections run pingora's handshake and accept loop (vendored patch 12), their
//! streams served within the connection's task (`streams::StreamSet`), each offered to the
//! `FastPath` before pingora's proxy.
//!
//! The loop mirrors the HTTP/1 branch of pingora-core 0.9.1's blanket
//! `impl<T: HttpServerApp> ServerApp for T` (`apps/mod.rs`, `process_new`): one
//! `ServerSession::new_http1` per request, `HttpPersistentSettings` carried from one request to
//! the next, no reuse once shutdown begins. It differs in waiting for bytes before building the
//! session, in applying gatehouse's idle timeout and closing flag, and in offering each request
//! to a `FastPath` first: the app may serve it on this loop, without pingora's proxy
//! framework, or hand the session back (its header read) for pingora's proxy.

use super::cork::{CorkedStream, Streaming};
use super::glitches::Glitches;
use super::stream::{ClientStream, Next};
use super::streams::StreamSet;
use super::{ConnPolicy, ConnSettings, ConnState, ConnTracker};
use crate::telemetry::Misbehaviour;
use async_trait::async_trait;
use pingora::apps::{HttpPersistentSettings, HttpServerApp, ReusedHttpStream, ServerApp};
use pingora::protocols::http::v2::server as h2;
use pingora::protocols::http::ServerSession;
use pingora::protocols::{Digest, GetSocketDigest, Stream, ALPN};
use pingora::server::ShutdownWatch;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

/// Runs an HTTP/2 connection's accept loop until it ends, the process stops, or the connection
/// `misbehaving` resolves. The last two close it the same way, through `close`, the loop's
/// shutdown signal: pingora sends GOAWAY and lets the streams in progress finish (as long as
/// the process allows on a graceful stop; `GOAWAY_DRAIN` for a misbehaving client).
///
/// Not an `async fn`: one would hold `misbehaving` twice, as its argument and as its local
/// (rust-lang/rust#62958), in what every idle HTTP/2 connection keeps. A block uses what it
/// captured in place.
#[allow(clippy::manual_async_fn)] // deliberately not an `async fn`: see above
fn until_closed(
    streams_loop: impl Future<Output = ()>,
    misbehaving: impl Future<Output = ()>,
    mut process: ShutdownWatch,
    close: tokio::sync::watch::Sender<bool>,
) -> impl Future<Output = ()> {
    async move {
        let mut streams_loop = std::pin::pin!(streams_loop);
        let misbehaved = tokio::select! {
            () = &mut streams_loop => return,
            _ = process.wait_for(|stopping| *stopping) => false,
            () = misbehaving => true,
        };
        let _ = close.send(true);
        if misbehaved {
            let _ = tokio::time::timeout(GOAWAY_DRAIN, streams_loop).await;
        } else {
            streams_loop.await;
        }
    }
}

/// Waits for the next request's first bytes on an HTTP/1 connection. `Next::Closed` when it
/// idles out (`wait`; the first request's counted as silent), when it is evicted while still
/// without a request (`first`, counted where it was chosen), or when shutdown begins while it
/// is idle, unless a request has already begun (then served, with Connection: close, rather
/// than reset by closing the socket under it). The flag: shutdown began during the wait.
async fn next_request(
    stream: &mut ClientStream,
    wait: Duration,
    first: Option<&super::waiting::FirstRequest>,
    shutdown: &ShutdownWatch,
    stopping: bool,
) -> (Next, bool) {
    let mut watch = shutdown.clone();
    let evicted = async {
        match first {
            Some(first) => first.evicted().await,
            None => std::future::pending().await,
        }
    };
    let request = std::future::poll_fn(|cx| stream.poll_next_request(cx));
    let next = tokio::select! {
        biased;
        _ = watch.changed(), if !stopping => None,
        () = evicted => Some(Next::Closed),
        next = tokio::time::timeout(wait, request) => Some(next.unwrap_or_else(|_| {
            if first.is_some() {
                crate::telemetry::client_misbehaved(Misbehaviour::Silent);
            }
            Next::Closed
        })),
    };
    match next {
        Some(next) => (next, false),
        None => (request_begun(stream), true),
    }
}

/// Whether a request's first bytes are there to read now, without waiting.
fn request_begun(stream: &mut ClientStream) -> Next {
    let mut now = std::task::Context::from_waker(std::task::Waker::noop());
    match stream.poll_next_request(&mut now) {
        std::task::Poll::Ready(next) => next,
        std::task::Poll::Pending => Next::Closed,
    }
}

/// The HTTP/2 handshake's connection, unless it fails or `give_up` resolves first (true: the
/// client stayed silent past its deadline; false: evicted, counted there).
async fn handshake_unless<C>(
    handshake: impl Future<Output = pingora::Result<C>>,
    give_up: Pin<&mut impl Future<Output = bool>>,
) -> Option<C> {
    tokio::select! {
        conn = handshake => match conn {
            Ok(conn) => Some(conn),
            Err(e) => {
                // A client that closes before sending anything (a browser's unused preconnect)
                // did nothing wrong; a malformed preface or SETTINGS is counted.
                let cause = e.root_cause().to_string();
                if !cause.contains("closed before reading preface")
                    && !cause.contains("Connection reset")
                {
                    crate::telemetry::client_misbehaved(Misbehaviour::H2Handshake);
                }
                tracing::debug!("H2 handshake error {e}");
                None
            }
        },
        silent = give_up => {
            if silent {
                crate::telemetry::client_misbehaved(Misbehaviour::Silent);
            }
            None
        }
    }
}

/// What pingora's sessions know of the connection they run on.
fn digest_of(stream: &Stream) -> Arc<Digest> {
    Arc::new(Digest {
        ssl_digest: stream.get_ssl_digest(),
        timing_digest: stream.get_timing_digest(),
        proxy_digest: stream.get_proxy_digest(),
        socket_digest: stream.get_socket_digest(),
    })
}

/// The most streams of one HTTP/2 connection served at once, counting those the client has
/// reset but whose work (a server connection, a response) is still in progress: as many as it
/// may open at once (pingora's SETTINGS_MAX_CONCURRENT_STREAMS). Beyond it, new streams wait
/// unaccepted, so cancelling and reopening streams cannot pile up work on the servers.
const STREAMS_IN_PROGRESS: usize = 100;

/// How long a misbehaving HTTP/2 connection's streams may run on after its GOAWAY.
const GOAWAY_DRAIN: Duration = Duration::from_secs(1);

/// Counts, wraps and serves client connections for the HTTP app `A` (gatehouse's proxy).
pub struct ClientApp<A> {
    pub app: Arc<A>,
    /// Offered every HTTP/1 request first; what it does not take goes to `app`.
    pub fast: Option<Arc<dyn FastPath>>,
    pub tracker: Arc<ConnTracker>,
    pub policy: Arc<dyn ConnPolicy>,
}

/// An app that serves some HTTP/1 requests itself, on this loop, without pingora's proxy
/// framework (gatehouse's `proxy::fast_path`).
pub trait FastPath: Send + Sync + 'static {
    /// Builds the session on `stream` (set up by `prepare`), reads the request, and serves it
    /// if it is one this app takes; otherwise hands the session back, its request read.
    fn serve<'a>(
        &'a self,
        stream: Stream,
        prepare: Prepare,
        shutdown: &'a ShutdownWatch,
    ) -> Pin<Box<dyn Future<Output = Served> + Send + 'a>>;

    /// Serves one HTTP/2 stream if it is one this app takes; otherwise hands it back.
    fn serve_stream<'a>(
        &'a self,
        session: ServerSession,
        shutdown: &'a ShutdownWatch,
    ) -> Pin<Box<dyn Future<Output = Served> + Send + 'a>>;
}

/// What became of a request offered to a `FastPath`.
pub enum Served {
    /// Served; the connection, if it can carry another request.
    Done(Option<ReusedHttpStream>),
    /// Not taken: the session, its request header read, for pingora's proxy.
    Pass(Box<ServerSession>),
}

/// How a request's session is set up: the settings carried from the previous request on the
/// connection, or the first request's.
pub struct Prepare {
    carried: Option<HttpPersistentSettings>,
    idle: Duration,
    keepalive_limit: Option<u32>,
    /// Shutdown or a graceful stop has begun: no further request on this connection.
    close: bool,
}

impl Prepare {
    pub fn apply(self, session: &mut ServerSession) {
        match self.carried {
            Some(s) => HttpPersistentSettings::apply_to_session(s, session),
            None => {
                session.set_keepalive(Some(self.idle.as_secs().max(1)));
                session.set_keepalive_reuses_remaining(self.keepalive_limit);
                // Bytes read past a request are kept for the next one (RFC 9112 §9.3.2); the
                // settings carry the choice to the connection's later requests.
                session.set_pipelining_enabled(true);
            }
        }
        if self.close {
            session.set_keepalive(None);
        }
    }
}

/// The IP socket address of a pingora address, when it is one.
pub fn inet(addr: Option<&pingora::protocols::l4::socket::SocketAddr>) -> Option<SocketAddr> {
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
        // Per-client limits count clients: a trusted proxy's connections carry many (as the
        // PROXY protocol's address, when its header named one, the peer is the client).
        let client = peer
            .map(|a| a.ip())
            .filter(|ip| !self.policy.trusted_proxy(*ip));
        let (_guard, over_limit) = self.tracker.admit(client, &settings);
        if matches!(stream.selected_alpn_proto(), Some(ALPN::H2)) {
            if over_limit.is_some() {
                return None; // no HTTP/1 answer to give on an HTTP/2 connection
            }
            return match &self.fast {
                Some(fast) => {
                    // Boxed: an HTTP/1 connection's future need not be the size of HTTP/2's.
                    Box::pin(self.h2_streams(fast, stream, &settings, client, shutdown)).await;
                    None
                }
                None => ServerApp::process_new(&self.app, stream, shutdown).await,
            };
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
        self.keepalive_loop(stream, &settings, client, shutdown)
            .await;
        if state.timed_out.load(Relaxed) {
            self.tracker.header_timeouts.fetch_add(1, Relaxed);
            crate::telemetry::header_timed_out();
            tracing::debug!(client = ?peer, "{}", super::HEADER_TIMEOUT);
            self.policy.header_timed_out(peer, server);
        }
        None
    }

    async fn cleanup(&self) {
        self.app.http_cleanup().await;
    }

    /// `timeouts.client_handshake` of the config in force (vendored patch 17).
    fn handshake_timeout(&self) -> Duration {
        self.policy.settings().handshake_timeout
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
        limits: &ConnSettings,
        ip: Option<IpAddr>,
        shutdown: &ShutdownWatch,
    ) {
        let idle = limits.idle;
        let mut first = Some(self.tracker.waiting_for_request(ip, limits));
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
            // A new connection sends its first request within the header deadline (nginx's
            // client_header_timeout, HAProxy's timeout http-request); then `client_idle`
            // between requests.
            let wait = match served {
                0 => limits.header_timeout.min(idle),
                _ => idle,
            };
            let (next, stopped) =
                next_request(&mut stream, wait, first.as_ref(), shutdown, stopping).await;
            first = None; // a request came: no longer the first to go
            let stopping = stopping || stopped;
            if matches!(next, Next::Closed) {
                break;
            }
            let prepare = Prepare {
                carried: settings.take(),
                idle,
                keepalive_limit,
                close: stopping || self.policy.closing(),
            };
            let Some(reused) = self.serve(stream, prepare, shutdown).await else {
                break;
            };
            let (next_stream, mut next_settings) = reused.consume();
            let pipelined = next_settings
                .as_mut()
                .and_then(crate::pingora_ext::pipelined_prefix);
            settings = next_settings;
            match next_stream.into_any().downcast::<ClientStream>() {
                Ok(s) => stream = s,
                Err(_) => break, // not ours: cannot happen, as pingora hands back what it got
            }
            if let Some(bytes) = pipelined {
                // The next request already arrived behind this one: it is served next, in
                // order, once this response is written (one request at a time).
                stream.unread(&bytes);
            }
        }
    }

    /// Serves the streams of one HTTP/2 connection as pingora's blanket `ServerApp` does (the
    /// handshake, then pingora's accept loop: graceful shutdown, idle timeout), each stream
    /// served within the connection's task (`StreamSet`), offered to the direct exchange
    /// first, then to pingora's proxy.
    async fn h2_streams(
        self: &Arc<Self>,
        fast: &Arc<dyn FastPath>,
        stream: Stream,
        limits: &ConnSettings,
        ip: Option<IpAddr>,
        shutdown: &ShutdownWatch,
    ) {
        let digest = digest_of(&stream);
        let streams = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let stream = Box::new(CorkedStream::new(stream, streams.clone()));
        // Preface, SETTINGS and the first request's HEADERS come within the header deadline
        // (HAProxy's timeout http-request).
        let first_request = tokio::time::Instant::now() + limits.header_timeout;
        let waiting = self.tracker.waiting_for_request(ip, limits);
        // Ends when the first request's deadline passes (true: silent) or when the table is full
        // and this connection, still without a request, is evicted (false: counted there).
        let give_up = async {
            tokio::select! {
                () = tokio::time::sleep_until(first_request) => true,
                () = waiting.evicted() => false,
            }
        };
        let mut give_up = std::pin::pin!(give_up);
        // Boxed, as each large state of this future: what a connection holds while it idles
        // is the size of its future, and the handshake's is freed when it ends.
        let handshake = Box::pin(h2::handshake(stream, self.app.h2_options()));
        let Some(conn) = handshake_unless(handshake, give_up.as_mut()).await else {
            return;
        };
        let idle = self.app.server_options().and_then(|o| o.h2_idle_timeout);
        let seen = std::sync::atomic::AtomicBool::new(false);
        // The futures below are pinned where they are made, and their parents hold pointers
        // to them: moved, each would take room twice in the connection's future.
        let silent = std::pin::pin!(async {
            let timed_out = (&mut give_up).await;
            if seen.load(Relaxed) {
                std::future::pending::<()>().await;
            }
            if timed_out {
                crate::telemetry::client_misbehaved(Misbehaviour::Silent);
            }
        });
        let glitches = Arc::new(Glitches::default());
        // The accept loop's shutdown signal (`until_closed`).
        let (close, closing) = tokio::sync::watch::channel(false);
        // Declared after everything its streams borrow, so dropped before any of it.
        let running = StreamSet::new();
        let accept = crate::pingora_ext::accept_h2_streams(
            conn,
            digest,
            closing,
            idle,
            STREAMS_IN_PROGRESS,
            |h2, guard| {
                if !seen.swap(true, Relaxed) {
                    waiting.leave(); // a request came: no longer the first to go
                }
                let held = (guard, Streaming::new(&streams));
                running.push(glitches.serve(self.h2_stream(fast, h2, held, shutdown)));
            },
        );
        let streams_loop = Box::pin(running.serve(accept));
        let reset_flood = std::pin::pin!(async {
            glitches.exceeded().await;
            crate::telemetry::client_misbehaved(Misbehaviour::ResetFlood);
        });
        let misbehaving = std::pin::pin!(async {
            tokio::select! {
                () = silent => {}
                () = reset_flood => {}
            }
        });
        until_closed(streams_loop, misbehaving, shutdown.clone(), close).await;
    }

    /// One HTTP/2 stream, offered to the direct exchange first, then to pingora's proxy.
    /// `held` lives while it is served: the accept loop's idle timeout sees the guard, and the
    /// connection's writes wait for the `Streaming` (`CorkedStream`).
    async fn h2_stream(
        &self,
        fast: &Arc<dyn FastPath>,
        h2: h2::HttpSession,
        held: (crate::pingora_ext::StreamGuard, Streaming),
        shutdown: &ShutdownWatch,
    ) {
        let _held = held;
        let session = ServerSession::new_http2(h2);
        if let Served::Pass(session) = fast.serve_stream(session, shutdown).await {
            self.app.process_new_http(*session, shutdown).await;
        }
    }

    /// One request: offered to the direct exchange first, then to pingora's proxy.
    async fn serve(
        &self,
        stream: Stream,
        prepare: Prepare,
        shutdown: &ShutdownWatch,
    ) -> Option<ReusedHttpStream> {
        let session = match &self.fast {
            Some(fast) => match fast.serve(stream, prepare, shutdown).await {
                Served::Done(reused) => return reused,
                Served::Pass(session) => *session,
            },
            None => {
                let mut session = ServerSession::new_http1(stream);
                prepare.apply(&mut session);
                session
            }
        };
        self.app.process_new_http(session, shutdown).await
    }
}
