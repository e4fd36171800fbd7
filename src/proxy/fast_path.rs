//! The fast path: requests served from the connection's loop (`conn::FastPath`) rather than
//! through pingora's proxy framework. For each HTTP/1 request the loop builds the
//! session and reads the header here (an HTTP/2 stream comes with its header, vendored patches
//! 11 and 12); a request `direct` will take (a plain GET/HEAD on a route that does not cache,
//! `direct::takes_header`), a plain fresh cache hit (the same kind of request on a caching
//! route, `hit::lookup`), or one gatehouse answers itself, is served by calling the proxy's own
//! hooks in pingora's order: `early_request_filter`, `request_filter` (which answers, serves
//! the hit through `hit`, or proxies through `direct`), `fail_to_proxy` on an error,
//! `logging`, then the session's `finish`. Every other request is handed to pingora's proxy
//! with its header read (vendored patch 7 lets pingora take it as read).
//!
//! What this skips, per request: pingora-proxy's `process_new_http`/`process_request` futures
//! (about 24 KiB, allocated and copied into the heap per request), its module, subrequest and
//! cache-phase steps, none of which these requests use. Policies are untouched: the hooks
//! called are the ones pingora calls.
//!
//! What that saves is measured in `bench/results/2026-11-27-vm-own.md`.

use super::{failure, Proxy};
use crate::cache::store::Entry;
use crate::conn::{inet, FastPath, Prepare, Served};
use crate::runtime::{Runtime, Shared};
use pingora::apps::{HttpPersistentSettings, ReusedHttpStream};
use pingora::protocols::http::ServerSession;
use pingora::protocols::Stream;
use pingora::proxy::{ProxyHttp, Session};
use pingora::server::ShutdownWatch;
use pingora::{Error, ErrorType};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

impl FastPath for Proxy {
    fn serve<'a>(
        &'a self,
        stream: Stream,
        prepare: Prepare,
        shutdown: &'a ShutdownWatch,
    ) -> Pin<Box<dyn Future<Output = Served> + Send + 'a>> {
        Box::pin(self.serve_fast(stream, prepare, shutdown))
    }

    fn serve_stream<'a>(
        &'a self,
        session: ServerSession,
        shutdown: &'a ShutdownWatch,
    ) -> Pin<Box<dyn Future<Output = Served> + Send + 'a>> {
        Box::pin(async move {
            let mut session = crate::pingora_ext::proxy_session(session, &self.modules);
            if !read_request(&mut session, &self.shared).await {
                return Served::Done(None);
            }
            match self.serve_read(session, shutdown).await {
                // An HTTP/2 stream ends at once: this future never carries HTTP/1's end.
                Read::Finish(mut session) => {
                    if let ServerSession::H2(stream) = &mut *session.downstream_session {
                        let _ = stream.finish();
                    }
                    Served::Done(None)
                }
                Read::Served(served) => served,
            }
        })
    }
}

impl Proxy {
    async fn serve_fast(
        &self,
        stream: Stream,
        prepare: Prepare,
        shutdown: &ShutdownWatch,
    ) -> Served {
        let mut session = Session::new_h1_with_modules(stream, &self.modules);
        prepare.apply(&mut session.downstream_session);
        if !read_request(&mut session, &self.shared).await {
            return Served::Done(None);
        }
        match self.serve_read(session, shutdown).await {
            Read::Finish(session) => {
                let settings = HttpPersistentSettings::for_session(&session);
                let reused = session.downstream_session.finish().await.ok().flatten();
                Served::Done(reused.map(|s| ReusedHttpStream::from_reusable_stream(s, settings)))
            }
            Read::Served(served) => served,
        }
    }

    /// A request whose header is read: served here if `takes` says so, else handed back. A
    /// served request's session is left for the caller to end (`Read::Finish`): an HTTP/1
    /// connection's end is a future of several KiB that an HTTP/2 stream's future need not
    /// carry (and copy whenever it is moved).
    async fn serve_read(&self, mut session: Session, shutdown: &ShutdownWatch) -> Read {
        let rt = self.shared.current();
        let Some((route, hit)) = takes(&rt, &mut session) else {
            return Read::Served(Served::Pass(session.downstream_session));
        };
        if *shutdown.borrow() {
            session.set_keepalive(None);
        }
        let mut ctx = super::Ctx::new(rt);
        ctx.plan = super::Plan::Previewed { route, hit };
        let failed = match self.early_request_filter(&mut session, &mut ctx).await {
            Err(e) => Some(e),
            Ok(()) => match self.request_filter(&mut session, &mut ctx).await {
                Ok(true) => None,
                // `takes` admits only what request_filter answers or proxies itself.
                Ok(false) => Some(Error::explain(
                    failure::IMPOSSIBLE,
                    "request left to a path that does not run",
                )),
                Err(e) => Some(e),
            },
        };
        let reusable = match failed {
            None => {
                self.logging(&mut session, None, &mut ctx).await;
                true
            }
            Some(e) => {
                let res = self.fail_to_proxy(&mut session, &e, &mut ctx).await;
                if !self.suppress_error_log(&session, &ctx, &e) {
                    tracing::error!(
                        "Fail to filter request: {e}, status: {}, {}",
                        res.error_code,
                        self.request_summary(&session, &ctx)
                    );
                }
                self.logging(&mut session, Some(&e), &mut ctx).await;
                session.downstream_session.on_proxy_failure(e);
                res.can_reuse_downstream
            }
        };
        if !reusable {
            return Read::Served(Served::Done(None));
        }
        Read::Finish(session)
    }
}

/// What `serve_read` leaves to its caller. Returned once per request and matched at once:
/// boxing the session would cost an allocation per request to save a move.
#[allow(clippy::large_enum_variant)]
enum Read {
    Served(Served),
    /// Served and reusable: the session, to end.
    Finish(Session),
}

/// Reads the request header as pingora's proxy does: a malformed one is answered 400 and the
/// connection closed; unlike pingora's proxy, it is also logged. False when there is no
/// request to serve.
async fn read_request(session: &mut Session, shared: &Shared) -> bool {
    let ds = &mut session.downstream_session;
    let kind = if ds.is_http2() { "http2" } else { "http1" };
    match ds.read_request().await {
        Ok(read) => read,
        Err(e) => {
            if matches!(e.etype, ErrorType::InvalidHTTPHeader) {
                tracing::debug!("Fail to proxy: {e}, downstream session type: {kind}");
                if let Err(e) = ds.respond_error(400).await {
                    tracing::error!("failed to send error response to downstream: {e}");
                }
                shared.bad_request(inet(ds.client_addr()), inet(ds.server_addr()));
            } else if matches!(
                e.etype,
                ErrorType::ReadError | ErrorType::ConnectionClosed | ErrorType::ReadTimedout
            ) {
                // The client went away or timed out (a 408 already answered and logged):
                // client noise, counted where it is seen, not an error of gatehouse's.
                tracing::debug!("Fail to proxy: {e}, downstream session type: {kind}");
            } else {
                tracing::error!("Fail to proxy: {e}, downstream session type: {kind}");
            }
            ds.shutdown().await;
            false
        }
    }
}

/// Whether the request is one `request_filter` will answer, serve from the cache (`hit`) or
/// give to `direct`: `direct` is on, the header is one it carries, and the route it goes to (if
/// any) neither caches nor compresses, or has a fresh hit for it the client takes as stored. The route found and the hit, when it is.
fn takes(rt: &Runtime, session: &mut Session) -> Option<(Option<usize>, Option<Arc<Entry>>)> {
    if !rt.config.server.direct_exchange || !super::direct::takes_header(session.req_header()) {
        return None;
    }
    // An HTTP/2 request says it has a body by leaving its stream open, with or without a
    // content-length: that body goes to pingora's path, which forwards it.
    if matches!(*session.downstream_session, ServerSession::H2(_))
        && !session.downstream_session.is_body_empty()
    {
        return None;
    }
    let req = session.req_header();
    let route = rt.router.route(super::request_host(req), req.uri.path());
    match route {
        Some(r) if rt.cache_rules(r).is_some() => {
            Some((route, Some(super::hit::lookup(rt, session, r)?)))
        }
        // A compressing route's responses go through pingora's path (`compression`).
        Some(r) if rt.config.routes[r].compression.is_some() => None,
        route => Some((route, None)),
    }
}
