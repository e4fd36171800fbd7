//! Access log records a receiver does not take: a TCP or datagram receiver that never reads,
//! one that is gone or restarts. Requests never wait on logging, and every record is counted
//! once, as sent or dropped, in `/metrics` too, with one warning at most every 10 s.

use crate::common::process::{spawn_gatehouse, wait_listening, ConfigFile};
use crate::common::*;
use std::time::{Duration, Instant};

/// A TCP receiver that accepts and never reads, with a tiny receive buffer: its address.
fn stuck_tcp_receiver() -> std::net::SocketAddr {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = sock.listen(8).unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut conns = Vec::new();
        while let Ok((c, _)) = listener.accept().await {
            conns.push(c);
        }
    });
    addr
}

/// A log's text without its ANSI colour sequences (`ESC [ ... m`).
fn without_colours(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            chars.by_ref().find(|c| *c == 'm');
        } else {
            out.push(c);
        }
    }
    out
}

/// The `gatehouse_access_log_records_total` series of target `stuck`: (sent, dropped).
async fn records_of_stuck(admin: std::net::SocketAddr) -> (f64, f64) {
    let series = parse_metrics(&metrics_text(admin).await);
    let of = |outcome: &str| {
        let key =
            format!("gatehouse_access_log_records_total{{outcome=\"{outcome}\",target=\"stuck\"}}");
        *series
            .get(&key)
            .unwrap_or_else(|| panic!("no {key} in {series:?}"))
    };
    (of("sent"), of("dropped"))
}

/// Sends `per_task` requests with an 8000-byte header from each of 8 tasks; none may take
/// the stuck receiver's write timeout (2 s): a request never waits on logging.
async fn big_requests(listen: std::net::SocketAddr, per_task: usize) {
    let big = "b".repeat(8000);
    let mut tasks = Vec::new();
    for t in 0..8 {
        let (c, url, big) = (client(), format!("http://{listen}/t{t}"), big.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..per_task {
                let started = Instant::now();
                let r = c.get(&url).header("x-big", &big).send().await.unwrap();
                assert_eq!(r.status(), 200);
                assert!(
                    started.elapsed() < Duration::from_secs(2),
                    "a request waited on logging"
                );
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// A gatehouse process (its warnings go to its own log) logging to a receiver that never
/// reads: every record is counted as sent or dropped, in `/metrics`, and the drops are
/// reported in one warning (at most one every 10 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tcp_receiver_that_never_reads_costs_requests_nothing() {
    let o = Origin::start("o").await;
    let cf = ConfigFile::new();
    cf.write(&format!(
        "[access_log]\nqueue_size = 16\ncapture_request_headers = [\"X-Big\"]\n\
         [[access_log.targets]]\nname = \"stuck\"\ntransport = \"tcp\"\naddress = \"{}\"\n{}",
        stuck_tcp_receiver(),
        one_route(&[&o])
    ));
    let log = cf.path.with_extension("log");
    let mut gh = Reap(spawn_gatehouse(&cf.path, false, &log));
    let admin = cf.admin();
    wait_listening(cf.listen).await;
    wait_listening(admin).await;
    let started = Instant::now();
    big_requests(cf.listen, 150).await;
    assert_eq!(o.hits(), 1200);
    // The batch held by the stuck write is counted when its 2 s write timeout ends.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (sent, dropped) = loop {
        let (sent, dropped) = records_of_stuck(admin).await;
        if sent + dropped >= 1200.0 || Instant::now() > deadline {
            break (sent, dropped);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let took = started.elapsed();
    assert_eq!(sent + dropped, 1200.0, "sent {sent}, dropped {dropped}");
    assert!(
        dropped > 0.0,
        "records were dropped and counted: sent {sent}"
    );
    assert!(gh.0.try_wait().unwrap().is_none(), "gatehouse exited");
    let text = without_colours(&std::fs::read_to_string(&log).unwrap());
    let warnings: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("dropping records") && l.contains("target=\"stuck\""))
        .collect();
    // Two warnings are at least 9 s apart (the clock is read in whole seconds).
    let most = 1 + took.as_secs() as usize / 9;
    assert!(
        (1..=most).contains(&warnings.len()),
        "{} warnings in {took:?}, expected 1 to {most}:\n{text}",
        warnings.len()
    );
    assert!(warnings[0].contains("dropped=1"), "the first drop: {text}");
}

/// A unix receiver that never reads fills its queue, after which every send fails at once
/// (EAGAIN); a path nobody listens on fails at once too. Requests never wait, and every record
/// is counted as sent or dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_datagram_receiver_that_never_reads_or_is_gone_costs_requests_nothing() {
    let o = Origin::start("o").await;
    let dir = state_dir();
    let stuck = dir.join("stuck.sock");
    let _never_read = std::os::unix::net::UnixDatagram::bind(&stuck).unwrap();
    let gone = dir.join("nobody.sock");
    let body = format!(
        "[[access_log.targets]]\nname = \"stuck\"\ntransport = \"unix\"\npath = {:?}\n\
         [[access_log.targets]]\nname = \"gone\"\ntransport = \"unix\"\npath = {:?}\n{}",
        stuck.display().to_string(),
        gone.display().to_string(),
        one_route(&[&o])
    );
    let gh = boot(&body).await;
    let mut tasks = Vec::new();
    for t in 0..4 {
        let (c, url) = (client(), gh.url(&format!("/d{t}")));
        tasks.push(tokio::spawn(async move {
            for _ in 0..250 {
                let started = std::time::Instant::now();
                assert_eq!(c.get(&url).send().await.unwrap().status(), 200);
                assert!(
                    started.elapsed() < Duration::from_secs(2),
                    "a request waited on logging"
                );
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    wait_until_counted(&gh, 1000).await;
    let stats = gh.gh.shared.access_log.stats();
    let load = |i: usize| {
        let s = stats[i].1;
        (
            s.sent.load(std::sync::atomic::Ordering::Relaxed),
            s.dropped.load(std::sync::atomic::Ordering::Relaxed),
        )
    };
    let (sent, dropped) = load(0);
    assert!(
        sent > 0,
        "the stuck receiver took some before its queue filled"
    );
    assert!(dropped > 0, "then every send failed, counted");
    assert_eq!(sent + dropped, 1000);
    assert_eq!(load(1), (0, 1000), "nobody listens: all dropped");
}

/// File records are written in batches; stopping gatehouse writes the last batch before the
/// stop returns, so a record accepted is a record kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_writes_the_last_batch_before_it_returns() {
    let o = Origin::start("o").await;
    let path = state_dir().join("access.log");
    let body = format!(
        "[[access_log.targets]]\ntransport = \"file\"\npath = {:?}\n{}",
        path.display().to_string(),
        one_route(&[&o])
    );
    let gh = boot(&body).await;
    let c = client();
    for i in 0..300 {
        assert_eq!(
            c.get(gh.url(&format!("/f{i}")))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
    tokio::task::spawn_blocking(move || drop(gh)).await.unwrap();
    let lines = std::fs::read_to_string(&path).unwrap().lines().count();
    assert_eq!(lines, 300);
}

/// Reads octet-counted syslog frames (RFC 6587) from one TCP connection until it closes or
/// `want` frames came; returns the messages.
async fn read_frames(conn: &mut tokio::net::TcpStream, want: usize) -> Vec<String> {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let mut frames = Vec::new();
    let mut chunk = [0u8; 65536];
    while frames.len() < want {
        let read = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut chunk)).await;
        let Ok(Ok(n)) = read else { break };
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        while let Some(space) = buf.iter().position(|b| *b == b' ') {
            let len: usize = std::str::from_utf8(&buf[..space]).unwrap().parse().unwrap();
            if buf.len() < space + 1 + len {
                break;
            }
            frames.push(String::from_utf8_lossy(&buf[space + 1..space + 1 + len]).into_owned());
            buf.drain(..space + 1 + len);
        }
    }
    frames
}

/// A TCP receiver that restarts: the writer notices the dead connection, reconnects with
/// backoff, and records flow again; every record is counted as sent or dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tcp_receiver_that_restarts_gets_records_again() {
    use std::sync::atomic::Ordering::Relaxed;
    let o = Origin::start("o").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let body = format!(
        "[[access_log.targets]]\ntransport = \"tcp\"\naddress = \"{addr}\"\n{}",
        one_route(&[&o])
    );
    let gh = boot(&body).await;
    let c = client();
    for i in 0..5 {
        c.get(gh.url(&format!("/before/{i}"))).send().await.unwrap();
    }
    let (mut conn, _) = listener.accept().await.unwrap();
    let first = read_frames(&mut conn, 5).await;
    assert_eq!(first.len(), 5);
    assert!(first[0].contains("path=\"/before/0\""), "{}", first[0]);
    drop(conn);
    drop(listener);
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let mut sent_requests = 5;
    let accepted = async {
        loop {
            if let Ok(Ok((conn, _))) =
                tokio::time::timeout(Duration::from_millis(100), listener.accept()).await
            {
                return conn;
            }
        }
    };
    tokio::pin!(accepted);
    let mut conn = loop {
        c.get(gh.url(&format!("/after/{sent_requests}")))
            .send()
            .await
            .unwrap();
        sent_requests += 1;
        tokio::select! {
            conn = &mut accepted => break conn,
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
        assert!(sent_requests < 200, "the writer never reconnected");
    };
    c.get(gh.url("/after/last")).send().await.unwrap();
    let again = read_frames(&mut conn, 1).await;
    assert!(!again.is_empty(), "records flow on the new connection");
    wait_until_counted(&gh, sent_requests as u64 + 1).await;
    let stats = gh.gh.shared.access_log.stats();
    let (sent, dropped) = (
        stats[0].1.sent.load(Relaxed),
        stats[0].1.dropped.load(Relaxed),
    );
    assert_eq!(
        sent + dropped,
        sent_requests as u64 + 1,
        "each record counted once"
    );
}

/// Waits until every target has counted `n` records as sent or dropped (within 30 s: a target
/// whose receiver is stuck holds a batch for its write timeout, 2 s, before dropping it).
async fn wait_until_counted(gh: &Proxy, n: u64) {
    use std::sync::atomic::Ordering::Relaxed;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let counted: Vec<(String, u64, u64)> = gh
            .gh
            .shared
            .access_log
            .stats()
            .iter()
            .map(|(name, s)| {
                (
                    name.to_string(),
                    s.sent.load(Relaxed),
                    s.dropped.load(Relaxed),
                )
            })
            .collect();
        if counted.iter().all(|(_, sent, dropped)| sent + dropped >= n) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not every target counted {n} records in 30 s: (target, sent, dropped) {counted:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
