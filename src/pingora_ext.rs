//! The seam to gatehouse's vendored pingora (`vendor/PATCHES.md`): every API a patch adds is
//! called through here, so moving to a new pingora is this file's review, not a hunt through
//! the request path. Patches that change behaviour without a new API (3–7, 13, 14, 16) need no
//! call; patch 17 is a provided trait method, answered by `conn::ClientApp`.

use bytes::BytesMut;
use pingora::apps::HttpPersistentSettings;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::modules::http::HttpModules;
use pingora::protocols::http::v1::client::HttpSession as ServerConnection;
use pingora::protocols::http::v1::server::HttpSession as ClientSession;
use pingora::protocols::http::ServerSession;
use pingora::proxy::Session;
use pingora::Result;
use std::sync::Arc;

/// HTTP/2 streams accepted by the caller's own loop, with a cap on those in progress (patches
/// 12 and 20).
pub use pingora::protocols::http::v2::server::{
    accept_downstream_sessions_capped as accept_h2_streams, StreamGuard,
};

/// A proxy session over a client session already built (patch 11).
pub fn proxy_session(client: ServerSession, modules: &HttpModules) -> Session {
    Session::new_with_modules(Box::new(client), modules)
}

/// Hands a server connection over to pingora's HTTP/1 client after the caller wrote the
/// request (`kept`: what the client keeps of it, patch 8) and read the first bytes of the
/// response (`read`, patch 9).
pub fn exchange_taken_over(conn: &mut ServerConnection, kept: RequestHeader, read: &[u8]) {
    conn.request_written_by_caller(Box::new(kept));
    conn.preread_response(read);
}

/// Writes an HTTP/1 response head the caller serialized (`lines`: the status line and header
/// lines, without Connection or the blank line), `kept` being what the session keeps of it:
/// status and framing (patch 10).
pub async fn write_head_lines(
    client: &mut ClientSession,
    kept: ResponseHeader,
    lines: &[u8],
) -> Result<()> {
    client
        .write_response_head(Box::new(kept), Some(lines))
        .await
}

/// A TLS listener built from the caller's rustls server config (patch 2).
pub fn use_server_config(
    settings: &mut pingora::listeners::tls::TlsSettings,
    config: rustls::ServerConfig,
) {
    settings.set_server_config(Arc::new(config));
}

/// `listener` runs `callback` on each connection it accepts, before the TLS or HTTP handshake
/// (patch 32: the PROXY protocol header).
pub fn before_handshake(
    listener: pingora::listeners::ListenerConfig,
    callback: Arc<dyn pingora::listeners::PreTlsProcess>,
) -> pingora::listeners::ListenerConfig {
    listener.pre_handshake(callback)
}

/// The bytes a client sent past its last request, for the caller's keep-alive loop to serve
/// (patch 15).
pub fn pipelined_prefix(settings: &mut HttpPersistentSettings) -> Option<BytesMut> {
    settings.take_pipelined_prefix()
}

/// Makes the socket `fd` close with a reset, dropping what is still queued (patch 19).
pub fn reset_at_close(fd: std::os::fd::RawFd) {
    let _ = pingora::protocols::l4::ext::set_linger_zero(fd);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use std::time::Duration;

    /// With a cap of 2, six requests on one connection are all served, never more than two at
    /// once: the rest wait unaccepted while the connection keeps moving.
    #[tokio::test]
    async fn the_accept_loop_serves_at_most_its_cap_at_once() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let peer = tokio::net::TcpStream::connect(listener.local_addr().unwrap());
        let (peer, accepted) = tokio::join!(peer, listener.accept());
        let l4: pingora::protocols::l4::stream::Stream = accepted.unwrap().0.into();
        let (server, peer): (pingora::protocols::Stream, _) = (Box::new(l4), peer.unwrap());
        let (now, most, served) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
        );
        let counts = (now.clone(), most.clone(), served.clone());
        // Kept until the end: a dropped sender reads as the loop's shutdown signal.
        let (_open, closing) = tokio::sync::watch::channel(false);
        let serving = tokio::spawn(async move {
            let conn = pingora::protocols::http::v2::server::handshake(server, None)
                .await
                .unwrap();
            let digest = Arc::new(pingora::protocols::Digest::default());
            accept_h2_streams(conn, digest, closing, None, 2, |mut session, guard| {
                let (now, most, served) = counts.clone();
                tokio::spawn(async move {
                    most.fetch_max(now.fetch_add(1, SeqCst) + 1, SeqCst);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    now.fetch_sub(1, SeqCst);
                    let resp = ResponseHeader::build(200, None).unwrap();
                    session.write_response_header(Box::new(resp), true).unwrap();
                    served.fetch_add(1, SeqCst);
                    drop(guard);
                });
            })
            .await;
        });
        let (send, conn) = h2::client::handshake(peer).await.unwrap();
        tokio::spawn(conn);
        let mut answers = Vec::new();
        for i in 0..6 {
            let mut send = send.clone().ready().await.unwrap();
            let req = http::Request::get(format!("http://a/{i}"))
                .body(())
                .unwrap();
            answers.push(send.send_request(req, true).unwrap().0);
        }
        for answer in answers {
            let answer = tokio::time::timeout(Duration::from_secs(5), answer).await;
            assert_eq!(answer.unwrap().unwrap().status(), 200);
        }
        assert_eq!(served.load(SeqCst), 6);
        assert_eq!(most.load(SeqCst), 2, "requests in progress at once");
        serving.abort();
    }
}
