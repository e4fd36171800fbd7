//! Idle connections hold little (issue 37): measured on the gatehouse binary's RSS, a thousand
//! idle HTTP/1.1 keep-alive connections and a thousand idle HTTP/2-over-TLS ones, each after
//! one request (a browser between page views). The binary before issue 37's changes (codec
//! buffers held while idle, a second TLS read buffer, every connection's future the size of
//! HTTP/2's) fails both bounds; `bench/results/2026-12-07-vm-memory.md` has the figures.
//! Once they close, most of what they held goes back to the OS while the process stays quiet
//! (the rest is pages shared with what stays allocated): the binary without its worker threads'
//! collection before they park (`src/freed_memory.rs`) kept 57–72% of it, this one 10–14%.

use crate::common::certs::{cert_entries, Ca};
use crate::common::*;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CONNS: u64 = 1000;
/// Open files the test and the binary need: both ends of every connection, and some.
const FILES: u64 = 2 * CONNS + 1024;
/// KiB of RSS per idle connection, at most (measured here: 3 and 27, opened one at a time).
const H1_BOUND: u64 = 6;
const H2_BOUND: u64 = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_hold_a_few_kib_each() {
    raise_open_files();
    let o = Origin::start("o").await;
    let dir = state_dir();
    let leaf = Ca::new().issue(&dir, "a", &["a.test"]);
    let (plain, tls) = (free_port(), free_port());
    let path = dir.join("memory.toml");
    std::fs::write(
        &path,
        format!(
            "{}[limits]\nmax_connections = 5000\n[timeouts]\nclient_header = \"60s\"\n\
             [[listeners]]\naddress = \"{plain}\"\n[[listeners]]\naddress = \"{tls}\"\n\
             [listeners.tls]\n{}\n{}",
            server_section_in(&dir),
            cert_entries(&[&leaf]),
            one_route(&[&o]),
        ),
    )
    .unwrap();
    let child = Reap(process::spawn_gatehouse(&path, false, &dir.join("log")));
    let pid = child.0.id();
    process::wait_listening(plain).await;
    process::wait_listening(tls).await;
    // Warm: the first requests allocate what every later one reuses.
    for _ in 0..3 {
        drop(idle_h1(plain).await);
        drop(idle_h2(tls).await);
    }
    // What the warm-up freed goes back to the OS within a second, at the binary's next
    // collection (every 500 ms): before the baseline, not while the connections are counted.
    tokio::time::sleep(Duration::from_millis(3500)).await;

    let base = rss_kib(pid);
    let mut h1 = Vec::new();
    for _ in 0..CONNS {
        h1.push(idle_h1(plain).await);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let with_h1 = rss_kib(pid);
    let mut h2 = Vec::new();
    for _ in 0..CONNS {
        h2.push(idle_h2(tls).await);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let with_h2 = rss_kib(pid);

    let per_h1 = with_h1.saturating_sub(base) / CONNS;
    let per_h2 = with_h2.saturating_sub(with_h1) / CONNS;
    eprintln!("idle HTTP/1.1: {per_h1} KiB, idle HTTP/2 over TLS: {per_h2} KiB per connection");
    assert!(per_h1 <= H1_BOUND, "idle HTTP/1.1: {per_h1} KiB each");
    assert!(
        per_h2 <= H2_BOUND,
        "idle HTTP/2 over TLS: {per_h2} KiB each"
    );
    // Every connection is still open and served.
    let mut last = h1.pop().unwrap();
    last.write_all(b"GET /again HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    let mut head = [0u8; 12];
    last.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    for conn in &mut h2 {
        still_open(conn).await;
    }
    assert_eq!(o.hits(), 2 * (3 + CONNS as usize) + 1);

    // Once they are gone, what they held goes back to the OS (within a second of being freed
    // and the binary's next collection), though nothing else allocates any more: usually
    // within a second; the deadline allows for both cores kept busy by the rest of the suite
    // (the binary's tasks then see the 2 000 closes late).
    drop((h1, h2, last));
    let held = with_h2.saturating_sub(base);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut left = rss_kib(pid).saturating_sub(base);
    // At most half left: a binary that does not collect keeps all of it, one whose idle
    // worker threads do not collect their own heaps 57–72%; this one has measured 10–14% left
    // alone, and once 36% with the whole suite on both cores (what stays is pages shared with
    // other allocations).
    while left > held / 2 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        left = rss_kib(pid).saturating_sub(base);
    }
    eprintln!("held {held} KiB with the connections, {left} KiB after they closed");
    assert!(
        left <= held / 2,
        "{left} of {held} KiB still held after close"
    );
}

/// Raises this process's open-file limit (the binary inherits it) to what the test needs.
fn raise_open_files() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    if soft < FILES {
        assert!(
            hard >= FILES,
            "the open-file limit ({hard}) is below the {FILES} this test needs"
        );
        setrlimit(Resource::RLIMIT_NOFILE, FILES, hard).unwrap();
    }
}

/// A plain connection after one request and its whole response.
async fn idle_h1(addr: SocketAddr) -> tokio::net::TcpStream {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /idle HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !response_complete(&buf) {
        let n = s.read(&mut chunk).await.unwrap();
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&chunk[..n]);
    }
    s
}

/// Whether `buf` holds a whole response framed by Content-Length.
fn response_complete(buf: &[u8]) -> bool {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| v.trim().parse().unwrap())
        .expect("a Content-Length");
    buf.len() >= end + 4 + length
}

/// An HTTP/2 connection over TLS after one GET and its whole response: a browser between
/// page views. The request's header block is HPACK by hand: `:method GET`, `:scheme https`
/// and `:path /` from the static table, `:authority a.test` a literal without indexing.
async fn idle_h2(addr: SocketAddr) -> tls_client::Tls {
    let mut s = tls_client::handshake(addr, Some("a.test"), &[b"h2"])
        .await
        .unwrap();
    let block = b"\x82\x87\x84\x01\x06a.test";
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0".to_vec();
    out.extend_from_slice(&[0, 0, block.len() as u8, 1, 0x05, 0, 0, 0, 1]); // HEADERS, END_STREAM|END_HEADERS, stream 1
    out.extend_from_slice(block);
    s.write_all(&out).await.unwrap();
    loop {
        let (kind, flags, stream) = next_frame(&mut s).await;
        if kind == 4 && flags & 1 == 0 {
            s.write_all(b"\0\0\0\x04\x01\0\0\0\0").await.unwrap(); // SETTINGS ACK
        }
        if stream == 1 && flags & 1 == 1 && (kind == 0 || kind == 1) {
            break; // the response's last frame (END_STREAM)
        }
    }
    s.flush().await.unwrap();
    s
}

/// Reads one frame: its type, flags and stream.
async fn next_frame(s: &mut tls_client::Tls) -> (u8, u8, u32) {
    let mut head = [0u8; 9];
    s.read_exact(&mut head).await.unwrap();
    let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload).await.unwrap();
    let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
    (head[3], head[4], stream)
}

/// A PING on the connection is answered: it is still open and served.
async fn still_open(s: &mut tls_client::Tls) {
    s.write_all(b"\0\0\x08\x06\0\0\0\0\0gatehous")
        .await
        .unwrap();
    while next_frame(s).await != (6, 1, 0) {}
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}
