//! Hostile clients cannot hold the door (issue 38): every state a connection can be in has a
//! deadline, a client that takes nothing of its response loses it and frees the server behind
//! it, and requests a client cancels at once (HTTP/2 Rapid Reset) never reach a server.

use crate::common::certs::{cert_entries, Ca};
use crate::common::tls_client::h2_client;
use crate::common::*;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Every client deadline at one second.
const TIMEOUTS: &str =
    "[timeouts]\nclient_handshake = \"1s\"\nclient_header = \"1s\"\nclient_send = \"1s\"\n";

/// gatehouse with a plain and a TLS (h2) listener in front of `origin`, route not caching.
async fn gatehouse(origin: SocketAddr) -> (gatehouse::Gatehouse, SocketAddr, SocketAddr) {
    gatehouse_with(origin, "").await
}

/// `gatehouse`, with `routes` (TOML) ahead of its catch-all route.
async fn gatehouse_with(
    origin: SocketAddr,
    routes: &str,
) -> (gatehouse::Gatehouse, SocketAddr, SocketAddr) {
    let (ca, dir) = (Ca::new(), state_dir());
    let leaf = ca.issue(&dir, "a", &["a.test"]);
    let (plain, tls) = (free_port(), free_port());
    let toml = format!(
        "{}{TIMEOUTS}[[listeners]]\naddress = \"{plain}\"\n[[listeners]]\naddress = \"{tls}\"\n\
         [listeners.tls]\n{}\n[pools.web.health]\nenabled = false\n[[pools.web.servers]]\n\
         name = \"s0\"\naddress = \"{origin}\"\n{routes}[[routes]]\npool = \"web\"\n\
         [routes.cache]\nenabled = false\n",
        server_section(),
        cert_entries(&[&leaf]),
    );
    (crate::common::certs::boot_tls(&toml).await, plain, tls)
}

/// How long until the peer closes `stream` (reading and discarding), at most `limit`.
async fn closed_after(stream: &mut (impl AsyncReadExt + Unpin), limit: Duration) -> Duration {
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    let read_all = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    };
    let _ = tokio::time::timeout(limit, read_all).await;
    start.elapsed()
}

fn counter(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

/// Fails unless the peer closes `stream` within a few seconds of a one-second deadline.
async fn assert_closed(stream: &mut (impl AsyncReadExt + Unpin), what: &str) {
    let took = closed_after(stream, Duration::from_secs(6)).await;
    assert!(took < Duration::from_secs(4), "{what} lived {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_that_say_nothing_are_closed_at_their_deadlines() {
    let o = Origin::start("o").await;
    let (gh, plain, tls) = gatehouse(o.addr).await;
    // No ClientHello (pingora's fixed 60 s before).
    let mut raw = tokio::net::TcpStream::connect(tls).await.unwrap();
    assert_closed(&mut raw, "a TLS connection without a ClientHello").await;
    // TLS done with ALPN h2, then no preface (never closed before).
    let mut h2 = crate::common::tls_client::handshake(tls, Some("a.test"), &[b"h2"])
        .await
        .unwrap();
    assert_eq!(h2.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    assert_closed(&mut h2, "an HTTP/2 connection without a preface").await;
    // Plain TCP, no request (client_idle, 60 s, before).
    let mut raw = tokio::net::TcpStream::connect(plain).await.unwrap();
    assert_closed(&mut raw, "a silent plain connection").await;
    // A preface and then no request at all is silent too.
    let mut h2 = crate::common::tls_client::handshake(tls, Some("a.test"), &[b"h2"])
        .await
        .unwrap();
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    assert_closed(&mut h2, "an HTTP/2 connection without a request").await;
    let m = metrics_text(gh.shared.current().config.admin.address).await;
    let silent = counter(&m, "gatehouse_client_misbehaviour_total{reason=\"silent\"}");
    assert!(silent >= 3.0, "silent connections counted: {silent}\n{m}");
    // Real clients are still served.
    let (status, _) = get(&client(), &format!("http://{plain}/")).await;
    assert_eq!(status, 200);
    assert_eq!(o.hits(), 1);
}

/// An origin answering every request with a body it writes until the connection closes; counts
/// the answers whose connection gatehouse closed before the body ended.
async fn endless_origin() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cut = Arc::new(AtomicUsize::new(0));
    let counted = cut.clone();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let cut = counted.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf).await;
                let head = b"HTTP/1.1 200 OK\r\nContent-Length: 1073741824\r\n\r\n";
                if conn.write_all(head).await.is_err() {
                    return;
                }
                let chunk = vec![b'x'; 65536];
                for _ in 0..16384 {
                    if conn.write_all(&chunk).await.is_err() {
                        cut.fetch_add(1, SeqCst);
                        return;
                    }
                }
            });
        }
    });
    (addr, cut)
}

/// GET `path` on `send`'s connection to `tls`; the response header, within 5 s.
async fn h2_get(
    send: &mut h2::client::SendRequest<bytes::Bytes>,
    tls: SocketAddr,
    path: &str,
) -> http::Response<h2::RecvStream> {
    let req = http::Request::get(format!("https://a.test:{}{path}", tls.port()))
        .body(())
        .unwrap();
    let (resp, _) = send.send_request(req, true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), resp)
        .await
        .unwrap()
        .unwrap()
}

async fn wait_for(what: &str, limit: Duration, done: impl Fn() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_takes_nothing_loses_its_response_and_frees_the_server() {
    let (origin, cut) = endless_origin().await;
    let (gh, plain, tls) = gatehouse(origin).await;
    // HTTP/1: the request, then nothing read.
    let mut h1 = tokio::net::TcpStream::connect(plain).await.unwrap();
    h1.write_all(b"GET /big HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    wait_for(
        "HTTP/1 reader's server connection freed",
        Duration::from_secs(20),
        || cut.load(SeqCst) >= 1,
    )
    .await;
    // HTTP/2: the response header taken, its body never.
    let mut send = h2_client(tls).await;
    let resp = h2_get(&mut send, tls, "/big").await;
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    wait_for(
        "HTTP/2 reader's server connection freed",
        Duration::from_secs(20),
        || cut.load(SeqCst) >= 2,
    )
    .await;
    // The stream was reset: what is left of the body ends in an error.
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match body.data().await {
                Some(Ok(chunk)) => {
                    let _ = body.flow_control().release_capacity(chunk.len());
                }
                Some(Err(e)) => return Err(e.to_string()),
                None => return Ok(()),
            }
        }
    })
    .await;
    assert!(
        matches!(ended, Ok(Err(_))),
        "the stream was not reset: {ended:?}"
    );
    let m = metrics_text(gh.shared.current().config.admin.address).await;
    let n = counter(
        &m,
        "gatehouse_client_misbehaviour_total{reason=\"send_timeout\"}",
    );
    assert!(n >= 2.0, "send timeouts counted: {n}");
    drop(h1);
}

/// A reader that takes its response a hundred bytes at a time makes progress, but far too
/// slowly: each buffer (at most 64 KiB) must be taken within `client_send`, on HTTP/1 and on
/// HTTP/2 (where every window update would otherwise restart the deadline).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickling_reader_is_cut_at_the_send_deadline() {
    let (origin, cut) = endless_origin().await;
    let (_gh, plain, tls) = gatehouse(origin).await;
    // HTTP/1: a small receive buffer, read 100 bytes every 100 ms.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut h1 = socket.connect(plain).await.unwrap();
    h1.write_all(b"GET /big HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    let start = Instant::now();
    let mut buf = [0u8; 100];
    let mut taken = 0usize;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), h1.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => taken += n,
            Err(_) => panic!("HTTP/1 trickle: neither data nor close for 10 s"),
        }
        assert!(
            start.elapsed() < Duration::from_secs(8),
            "HTTP/1 trickle still served after {:?} ({taken} bytes)",
            start.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_for(
        "HTTP/1 trickle's server connection freed",
        Duration::from_secs(5),
        || cut.load(SeqCst) >= 1,
    )
    .await;
    // HTTP/2: a 100-byte window, reopened 100 bytes every 100 ms.
    let tls_stream = crate::common::tls_client::handshake(tls, Some("a.test"), &[b"h2"])
        .await
        .unwrap();
    let (send, conn) = h2::client::Builder::new()
        .initial_window_size(100)
        .initial_connection_window_size(100)
        .handshake::<_, bytes::Bytes>(tls_stream)
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut send = send.ready().await.unwrap();
    let resp = h2_get(&mut send, tls, "/big").await;
    let mut body = resp.into_body();
    let start = Instant::now();
    let ended = loop {
        match tokio::time::timeout(Duration::from_secs(10), body.data()).await {
            Ok(Some(Ok(chunk))) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let _ = body.flow_control().release_capacity(chunk.len());
            }
            Ok(Some(Err(e))) => break e.to_string(),
            Ok(None) => panic!("HTTP/2 trickle: a 1 GiB body ended"),
            Err(_) => panic!("HTTP/2 trickle: neither data nor reset for 10 s"),
        }
        assert!(
            start.elapsed() < Duration::from_secs(8),
            "HTTP/2 trickle still served after {:?}",
            start.elapsed()
        );
    };
    assert!(!ended.is_empty());
    wait_for(
        "HTTP/2 trickle's server connection freed",
        Duration::from_secs(5),
        || cut.load(SeqCst) >= 2,
    )
    .await;
}

/// Opens an HTTP/2 connection and sends up to `streams` requests, each reset by the client
/// right after (in the same write when `gap` is zero), until gatehouse closes the connection;
/// how many were sent.
async fn rapid_reset(tls: SocketAddr, streams: usize, gap: Duration) -> usize {
    let mut send = h2_client(tls).await;
    for i in 0..streams {
        let req = http::Request::get(format!("https://a.test:{}/r{i}", tls.port()))
            .body(())
            .unwrap();
        send = match send.ready().await {
            Ok(send) => send,
            Err(_) => return i, // closed by gatehouse
        };
        let Ok((_, mut stream)) = send.send_request(req, true) else {
            return i;
        };
        if !gap.is_zero() {
            tokio::time::sleep(gap).await;
        }
        stream.send_reset(h2::Reason::CANCEL);
    }
    streams
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_cancelled_at_once_never_reach_the_servers() {
    let o = Origin::start("o").await;
    let (gh, _, tls) = gatehouse(o.addr).await;
    // Reset in the same write as the request: refused before any server sees it.
    let sent = rapid_reset(tls, 200, Duration::ZERO).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let reached = o.seen().iter().filter(|s| s.path.starts_with("/r")).count();
    assert!(
        reached <= sent / 20,
        "{reached} of {sent} cancelled requests reached the server"
    );
    // Reset a moment later, while a slow server works on the request: the connection is
    // closed once most of many streams were cancelled, so each connection costs the servers a
    // bounded number of requests.
    o.reset();
    o.set_mode(Mode::Delay(Duration::from_millis(500)));
    for round in 0..3 {
        let sent = rapid_reset(tls, 400, Duration::from_millis(5)).await;
        assert!(
            sent < 400,
            "round {round}: all {sent} streams accepted, never disconnected"
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let reached = o.seen().iter().filter(|s| s.path.starts_with("/r")).count();
    assert!(
        reached <= 3 * 80,
        "{reached} cancelled requests reached the server in 3 connections"
    );
    let m = metrics_text(gh.shared.current().config.admin.address).await;
    let floods = counter(
        &m,
        "gatehouse_client_misbehaviour_total{reason=\"reset_flood\"}",
    );
    assert!(floods >= 3.0, "connections closed for resets: {floods}");
    // A client that waits for its answer is served.
    let mut send = h2_client(tls).await.ready().await.unwrap();
    let resp = h2_get(&mut send, tls, "/kept").await;
    assert_eq!(resp.status(), 200);
}

/// A listening address that never accepts: its accept queue is full, so a connection to it
/// waits in SYN-SENT until its connect timeout. The returned sockets keep the queue full.
async fn never_accepting() -> (
    SocketAddr,
    tokio::net::TcpListener,
    Vec<tokio::net::TcpStream>,
) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut filling = Vec::new();
    for _ in 0..2 {
        let c = tokio::time::timeout(
            Duration::from_millis(300),
            tokio::net::TcpStream::connect(addr),
        );
        if let Ok(Ok(c)) = c.await {
            filling.push(c);
        }
    }
    (addr, listener, filling)
}

/// Connections from this host in SYN-SENT to `to` (from /proc/net/tcp).
fn connecting_to(to: SocketAddr) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let port = format!(":{:04X}", to.port());
    table
        .lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3 && f[2].ends_with(&port) && f[3] == "02"
        })
        .count()
}

/// A stream the client cancels while gatehouse connects for it (to a server that never
/// accepts, the connect timeout 3 s away) stops connecting: from 200 streams cancelled one
/// after another, a handful of connections are under way at once, not hundreds. Each cancelled
/// request is followed by two answered at once (a read-only route's 503), so the connection
/// never looks like a reset flood. (Work that did go on would still be capped at the stream
/// limit, 100 per connection: `conn::keepalive::STREAMS_IN_PROGRESS`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_cancelled_while_connecting_stops_connecting() {
    let (origin, _listener, _filling) = never_accepting().await;
    let ro = "[[routes]]\npath_prefix = \"/ro\"\npool = \"web\"\nreadonly = \"always\"\n";
    let (_gh, _, tls) = gatehouse_with(origin, ro).await;
    let mut send = h2_client(tls).await;
    let url = |p: String| format!("https://a.test:{}{p}", tls.port());
    let (mut most, mut kept, mut sent) = (0, Vec::new(), 0);
    for i in 0..200 {
        let ready = tokio::time::timeout(Duration::from_secs(1), send.ready()).await;
        let Ok(Ok(ready)) = ready else { break };
        send = ready;
        let req = http::Request::get(url(format!("/r{i}"))).body(()).unwrap();
        let Ok((_, mut cancelled)) = send.send_request(req, true) else {
            break;
        };
        // Long enough for gatehouse to start connecting.
        tokio::time::sleep(Duration::from_millis(10)).await;
        cancelled.send_reset(h2::Reason::CANCEL);
        for _ in 0..2 {
            let req = http::Request::post(url(format!("/ro{i}")))
                .body(())
                .unwrap();
            // Kept: h2 cancels a stream whose handles are all dropped.
            let Ok(answered) = send.send_request(req, true) else {
                break;
            };
            kept.push(answered);
        }
        most = most.max(connecting_to(origin));
        sent += 1;
    }
    assert!(
        sent >= 150,
        "the client was cut off after {sent} cancelled streams"
    );
    assert!(most >= 1, "no connection to the origin seen: no proof");
    assert!(
        most <= 10,
        "{most} connections under way at once for cancelled streams"
    );
}

/// An origin, gatehouse with `limits` in front of it (patient headers: `client_header` 30 s),
/// and `n` plain connections to it, opened `gap` apart, that never send anything.
async fn with_silent(
    limits: &str,
    n: usize,
    gap: Duration,
) -> (Origin, Proxy, Vec<tokio::net::TcpStream>) {
    let o = Origin::start("o").await;
    let gh = boot(&format!(
        "[limits]\n{limits}\n[timeouts]\nclient_header = \"30s\"\n{}",
        one_route(&[&o])
    ))
    .await;
    let mut silent = Vec::new();
    for _ in 0..n {
        silent.push(tokio::net::TcpStream::connect(gh.addr).await.unwrap());
        tokio::time::sleep(gap).await;
    }
    (o, gh, silent)
}

/// Whether each connection is still open (not closed by gatehouse within `wait`).
async fn still_open(conns: &mut [tokio::net::TcpStream], wait: Duration) -> Vec<bool> {
    let mut open = Vec::new();
    for s in conns {
        open.push(closed_after(s, wait).await >= wait);
    }
    open
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_connection_table_makes_room_for_real_clients() {
    // Ten connections that never ask for anything fill the table.
    let (_o, gh, mut silent) = with_silent("max_connections = 10", 10, Duration::ZERO).await;
    // Silent for over a second: only such connections are closed to make room.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    // Five real clients, each keeping its connection open (so each needs a place of its own).
    let mut real = Vec::new();
    for i in 0..5 {
        let c = client();
        let (status, body) = get(&c, &format!("http://{}/real{i}", gh.addr)).await;
        assert_eq!(status, 200, "real client {i} refused: {body}");
        real.push(c);
    }
    // The oldest silent ones were closed to make room.
    let open = still_open(&mut silent, Duration::from_millis(100)).await;
    let closed = open.iter().filter(|o| !**o).count();
    assert!(
        closed >= 5,
        "only {closed} of the silent connections were closed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_holds_at_most_its_share_of_silent_connections() {
    let gap = Duration::from_millis(50);
    let (_o, gh, mut silent) = with_silent("max_silent_per_client = 3", 5, gap).await;
    let open = still_open(&mut silent, Duration::from_millis(300)).await;
    assert_eq!(open, [false, false, true, true, true], "the oldest two go");
    // A connection that asks for something is served as usual.
    let (status, _) = get(&client(), &format!("http://{}/", gh.addr)).await;
    assert_eq!(status, 200);
}

/// `client_send` is about a client taking nothing: one that reads a large cached object slowly
/// but steadily gets all of it, on HTTP/1 (the stored body goes out in slices, each under the
/// deadline, rather than as one write that must finish within it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_but_steady_reader_gets_a_large_hit_whole() {
    // Larger than the kernel's send buffer can hold (4 MiB at most here).
    const SIZE: usize = 8 * 1024 * 1024;
    let o = Origin::start("o").await;
    o.set_body_size(SIZE);
    o.set_headers(&[("Cache-Control", "max-age=60")]);
    let gh = boot(&format!(
        "[timeouts]\nclient_send = \"1s\"\n[cache]\nmax_object_size = \"16m\"\n{}",
        one_route(&[&o])
    ))
    .await;
    let url = format!("http://{}/big", gh.addr);
    let mut seen = Vec::new();
    for _ in 0..5 {
        let r = client().get(&url).send().await.unwrap();
        let x_cache = r
            .headers()
            .get("x-cache")
            .map(|v| v.to_str().unwrap().to_string());
        let len = r.bytes().await.unwrap().len();
        seen.push((x_cache.clone(), len));
        if x_cache.as_deref() == Some("HIT") {
            break;
        }
    }
    assert_eq!(seen.last(), Some(&(Some("HIT".into()), SIZE)), "{seen:?}");
    // A small receive window: the reader's pace, not the kernel's buffers, sets the speed.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(32 * 1024).unwrap();
    let mut slow = socket.connect(gh.addr).await.unwrap();
    let req = format!(
        "GET /big HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        gh.addr
    );
    slow.write_all(req.as_bytes()).await.unwrap();
    // At most 32 KiB every 20 ms: the whole object takes several times `client_send`.
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match tokio::time::timeout(Duration::from_secs(5), slow.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let text = String::from_utf8_lossy(&got[..got.len().min(300)]).into_owned();
    assert!(
        text.contains("x-cache: HIT") || text.contains("X-Cache: HIT"),
        "{text}"
    );
    let head = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(got.len() - head, SIZE, "after {:?}", started.elapsed());
    assert!(
        started.elapsed() > Duration::from_secs(2),
        "not read slowly enough to prove it"
    );
}

/// Under Rapid Reset the log stays a few summary lines (`telemetry`'s report at most every few
/// seconds), not a line per cancelled stream: the process's own log, at `RUST_LOG=warn`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rapid_reset_leaves_a_few_log_lines() {
    let o = Origin::start("o").await;
    o.set_mode(Mode::Delay(Duration::from_millis(200)));
    let (ca, cf) = (Ca::new(), crate::common::process::ConfigFile::new());
    let dir = cf.path.parent().unwrap().to_path_buf();
    let leaf = ca.issue(&dir, "a", &["a.test"]);
    cf.write(&format!(
        "[listeners.tls]\n{}\n{}",
        cert_entries(&[&leaf]),
        one_route(&[&o])
    ));
    let log = dir.join("gatehouse.log");
    let _gh = Reap(crate::common::process::spawn_gatehouse(
        &cf.path, false, &log,
    ));
    crate::common::process::wait_listening(cf.listen).await;
    // Streams reset in the same write as their request (the h2 crate closes such connections
    // itself), then reset a moment later (gatehouse closes them).
    let mut sent = 0;
    for gap in [0; 15].into_iter().chain([5, 5]) {
        sent += rapid_reset(cf.listen, 300, Duration::from_millis(gap)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let text = std::fs::read_to_string(&log).unwrap();
    let lines = text.lines().count();
    assert!(sent >= 300, "only {sent} streams sent: nothing proved");
    let m = metrics_text(cf.admin()).await;
    let floods = counter(
        &m,
        "gatehouse_client_misbehaviour_total{reason=\"reset_flood\"}",
    );
    // Which limit closes a connection, and whether the client has already sent all its
    // streams by then, depends on timing; each close is counted, never logged.
    assert!(floods >= 1.0, "no connection closed for resets was counted");
    assert!(
        lines <= 2,
        "{lines} log lines for {sent} cancelled streams:\n{}",
        text.lines().take(20).collect::<Vec<_>>().join("\n")
    );
}
