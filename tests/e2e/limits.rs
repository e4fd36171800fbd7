//! Connection-level limits and client/server timeouts: slowloris (header deadline), client
//! connections in total and per address, idle keep-alive connections, connect and upstream
//! timeouts. Each refusal is checked on the wire, in the access log and in the metrics.

use crate::common::raw::{Msg, Wire};
use crate::common::syslog::{json_record, json_sink};
use crate::common::*;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::net::TcpSocket;

/// One series of gatehouse's metrics, by its exact `name{labels}`.
async fn metric(gh: &Proxy, series: &str) -> f64 {
    let text = metrics_text(gh.gh.shared.current().config.admin.address).await;
    *parse_metrics(&text)
        .get(series)
        .unwrap_or_else(|| panic!("no {series} in metrics"))
}

/// The next response on `wire`, each read within 5 s.
async fn response_on(wire: &mut Wire) -> Msg {
    wire.response(false, Duration::from_secs(5))
        .await
        .unwrap_or_else(|e| panic!("no response: {e}"))
}

/// A kept-alive connection from `source` (any 127.x address) that has done one request.
async fn open_from(source: [u8; 4], to: SocketAddr) -> (Wire, Msg) {
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind(SocketAddr::from((source, 0))).unwrap();
    let mut wire = Wire::over(sock.connect(to).await.unwrap());
    assert!(wire.send(b"GET /c HTTP/1.1\r\nHost: a\r\n\r\n").await);
    let answer = response_on(&mut wire).await;
    (wire, answer)
}

/// Waits (up to 3 s) for a gauge to reach `want`.
async fn settle<F: std::future::Future<Output = f64>>(read: &impl Fn() -> F, want: f64) {
    for _ in 0..150 {
        if read().await == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("gauge never reached {want}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_trickling_headers_gets_408_and_others_are_served() {
    let o = Origin::start("o").await;
    let (log, targets) = json_sink().await;
    let gh = boot(&format!(
        "[timeouts]\nclient_header = \"1s\"\n[access_log]\n{targets}{}",
        one_route(&[&o])
    ))
    .await;
    // Idle between requests is the idle timeout's business, not the header deadline's (a new
    // connection's first request comes within the header deadline: `deadlines.rs`).
    let mut patient = Wire::connect(gh.addr).await;
    assert!(
        patient
            .send(b"GET /first HTTP/1.1\r\nHost: a\r\n\r\n")
            .await
    );
    let first = response_on(&mut patient).await;
    assert_eq!(first.status(), 200, "{first:?}");
    // The slowloris: one header line every 200 ms, forever.
    let mut slow = Wire::connect(gh.addr).await;
    assert!(slow.send(b"GET /slow HTTP/1.1\r\nHost: a\r\n").await);
    let started = Instant::now();
    let trickle = tokio::spawn(async move {
        for i in 0..50 {
            let line = format!("X-Slow-{i}: 1\r\n");
            if !slow.send(line.as_bytes()).await
                || !slow.open_after(Duration::from_millis(200)).await
            {
                break;
            }
        }
        (
            String::from_utf8_lossy(&slow.buf).into_owned(),
            started.elapsed(),
        )
    });
    // Meanwhile other clients are served normally.
    let c = client();
    for _ in 0..10 {
        assert_eq!(get(&c, &gh.url("/ok")).await.0, 200);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (answer, cut_after) = trickle.await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer:?}");
    assert!(
        cut_after >= Duration::from_millis(900) && cut_after < Duration::from_secs(5),
        "cut after {cut_after:?}"
    );
    assert!(
        o.seen().iter().all(|s| !s.path.contains("slow")),
        "the trickled request never reaches the origin"
    );
    // The patient connection waited 1.5 s+ before its second request, and is still served.
    assert!(
        patient
            .send(b"GET /patient HTTP/1.1\r\nHost: a\r\n\r\n")
            .await
    );
    let late = response_on(&mut patient).await;
    assert_eq!(late.status(), 200, "{late:?}");
    let mut timeouts = Vec::new();
    for _ in 0..12 {
        let r = json_record(&log).await;
        if r["status"] == 408 {
            timeouts.push(r);
        }
    }
    assert_eq!(timeouts.len(), 1, "{timeouts:?}");
    assert_eq!(timeouts[0]["error"], "request header timeout");
    assert_eq!(timeouts[0]["termination"], "client_timeout");
    assert_eq!(
        metric(
            &gh,
            "gatehouse_client_refusals_total{reason=\"header_timeout\"}"
        )
        .await,
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_total_or_per_client_limit_get_503() {
    let o = Origin::start("o").await;
    let (log, targets) = json_sink().await;
    let gh = boot(&format!(
        "[limits]\nmax_connections = 3\nmax_connections_per_client = 2\n[access_log]\n{targets}{}",
        one_route(&[&o])
    ))
    .await;
    let open = || metric(&gh, "gatehouse_client_connections");
    let (_a1, r) = open_from([127, 0, 0, 1], gh.addr).await;
    assert_eq!(r.status(), 200, "{r:?}");
    let (_a2, r) = open_from([127, 0, 0, 1], gh.addr).await;
    assert_eq!(r.status(), 200, "{r:?}");
    // A third from the same address: over the per-client limit.
    let (_a3, r) = open_from([127, 0, 0, 1], gh.addr).await;
    let text = r.head.clone() + &String::from_utf8_lossy(&r.body);
    assert_eq!(r.status(), 503, "{text}");
    assert!(text.contains("too many connections"), "{text}");
    assert!(
        text.to_ascii_lowercase().contains("connection: close"),
        "{text}"
    );
    drop(_a3);
    // Another address still gets in, up to the total.
    settle(&open, 2.0).await;
    let (_b1, r) = open_from([127, 0, 0, 2], gh.addr).await;
    assert_eq!(r.status(), 200, "{r:?}");
    let (_b2, r) = open_from([127, 0, 0, 2], gh.addr).await;
    assert_eq!(r.status(), 503, "over the total: {r:?}");
    assert_eq!(o.seen().len(), 3, "refused requests never reach the origin");
    let mut errors = Vec::new();
    for _ in 0..5 {
        let rec = json_record(&log).await;
        errors.push((rec["status"].as_u64().unwrap(), rec["error"].clone()));
    }
    assert!(errors.contains(&(503, "too many connections from this client".into())));
    assert!(errors.contains(&(503, "too many client connections".into())));
    // Closing connections frees their places.
    drop((_a1, _a2, _b1, _b2));
    settle(&open, 0.0).await;
    let (_c, r) = open_from([127, 0, 0, 1], gh.addr).await;
    assert_eq!(r.status(), 200, "{r:?}");
    assert_eq!(
        metric(
            &gh,
            "gatehouse_client_refusals_total{reason=\"max_connections_per_client\"}"
        )
        .await,
        1.0
    );
    assert_eq!(
        metric(
            &gh,
            "gatehouse_client_refusals_total{reason=\"max_connections\"}"
        )
        .await,
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keepalive_connection_is_closed_after_client_idle() {
    let o = Origin::start("o").await;
    let gh = boot(&format!(
        "[timeouts]\nclient_idle = \"1s\"\n{}",
        one_route(&[&o])
    ))
    .await;
    let (mut wire, r) = open_from([127, 0, 0, 1], gh.addr).await;
    assert_eq!(r.status(), 200);
    let started = Instant::now();
    let open = wire.open_after(Duration::from_secs(5)).await;
    assert!(!open, "closed by gatehouse within 5 s");
    assert!(wire.buf.is_empty(), "closed without a response");
    let idle = started.elapsed();
    assert!(
        idle >= Duration::from_millis(800) && idle < Duration::from_secs(4),
        "{idle:?}"
    );
}

/// A listening socket whose accept queue is full: connects to it hang (SYNs are dropped).
fn blackhole() -> (std::net::TcpListener, Vec<std::net::TcpStream>, SocketAddr) {
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = sock.local_addr().unwrap();
    let listener = sock.listen(1).unwrap().into_std().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..16 {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(s) => fillers.push(s),
            Err(_) => break,
        }
    }
    (listener, fillers, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_does_not_accept_is_a_504_after_the_connect_timeout() {
    let (_listener, _fillers, dead) = blackhole();
    let gh = boot(&format!(
        "[timeouts]\nconnect = \"300ms\"\n[pools.web]\nretries = 0\n[pools.web.health]\nenabled = false\n\
         [[pools.web.servers]]\nname = \"hole\"\naddress = \"{dead}\"\n[[routes]]\npool = \"web\"\n"
    ))
    .await;
    let started = Instant::now();
    let (code, text) = get(&client(), &gh.url("/")).await;
    let took = started.elapsed();
    assert_eq!(code, 504, "{text}");
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert_eq!(gh.in_flight("web", "hole"), 0);
}

/// A request header that does not parse is answered 400, the connection closed, and the
/// request logged (pingora's proxy answers it without a record).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_request_is_answered_400_and_logged() {
    let o = Origin::start("o").await;
    let (log, targets) = json_sink().await;
    let gh = boot(&format!("[access_log]\n{targets}{}", one_route(&[&o]))).await;
    let mut bad = Wire::connect(gh.addr).await;
    assert!(bad.send(b"GET / HTTP/1.1\r\nHost : a\r\n\r\n").await);
    let answer = response_on(&mut bad).await;
    assert_eq!(answer.status(), 400, "{answer:?}");
    let r = json_record(&log).await;
    assert_eq!(r["status"], 400, "{r}");
    assert_eq!(r["error"], "bad request");
    assert_eq!(r["termination"], "client_abort");
    assert!(o.seen().is_empty(), "the origin never sees it");
    // Other clients are unaffected, and logged as usual.
    assert_eq!(get(&client(), &gh.url("/ok")).await.0, 200);
    assert_eq!(json_record(&log).await["status"], 200);
}
