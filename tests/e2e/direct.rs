//! gatehouse's own HTTP/1 exchange with servers (`proxy::direct`): it must send what pingora's
//! proxy path sends and give the client what pingora's path gives, for every response framing;
//! keep its connections and survive a server that closed one; time out, fail over and log like
//! the rest. The origin here is raw TCP, so the exact bytes each path sends are on record.

use crate::common::raw::{header, Wire};
use crate::common::raw_origin::{RawOrigin, BIG};
use crate::common::syslog::{json_record, json_sink};
use crate::common::*;
use std::net::SocketAddr;
use std::time::Duration;

/// A request head with its header lines sorted and names lowercased, the request id masked.
fn normalized(head: &str) -> Vec<String> {
    let mut lines = head.lines().filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or_default().to_string();
    let mut rest: Vec<String> = lines
        .map(|l| match l.split_once(':') {
            // The request id differs by request.
            Some((n, _)) if n.eq_ignore_ascii_case("x-request-id") => "x-request-id:<id>".into(),
            Some((n, v)) => format!("{}:{}", n.to_ascii_lowercase(), v.trim()),
            None => l.to_string(),
        })
        .collect();
    rest.sort();
    std::iter::once(first).chain(rest).collect()
}

/// gatehouse with one pool of `origins` (no health checks, one retry) and one route without
/// caching; `direct`: `server.direct_exchange`.
async fn proxy_to(origins: &[SocketAddr], direct: bool, extra: &str) -> Proxy {
    proxy_retrying(origins, direct, extra, 1).await
}

/// `proxy_to` with the pool's `retries`.
async fn proxy_retrying(origins: &[SocketAddr], direct: bool, extra: &str, retries: u32) -> Proxy {
    proxy_with(origins, direct, extra, retries, "enabled = false").await
}

const CLIENT_HEADERS: &str = "User-Agent: t/1\r\nAccept: */*\r\nCookie: a=b\r\n\
    X-Forwarded-For: 10.0.0.1\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\
    Proxy-Authorization: Basic eDp5\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_own_exchange_sends_and_returns_what_pingoras_path_does() {
    let o = RawOrigin::start().await;
    let own = proxy_to(&[o.addr], true, "").await;
    let theirs = proxy_to(&[o.addr], false, "").await;
    let cases = [
        ("GET", "/cl"),
        ("HEAD", "/cl"),
        ("GET", "/chunked"),
        ("GET", "/early"),
        ("GET", "/empty"),
        ("GET", "/close"),
    ];
    let mut answers = Vec::new();
    for gh in [&own, &theirs] {
        let mut c = Wire::connect(gh.addr).await;
        let mut got = Vec::new();
        for (method, path) in cases {
            let (status, headers, body) = c.round_trip(method, path, CLIENT_HEADERS).await;
            // What the client sees of the server's response (Date and framing aside).
            let kept: Vec<&str> = [
                "x-who",
                "content-length",
                "transfer-encoding",
                "connection",
                "link",
            ]
            .iter()
            .filter_map(|n| header(&headers, n))
            .collect();
            got.push(format!(
                "{method} {path} -> {status} {kept:?} {}",
                String::from_utf8_lossy(&body)
            ));
        }
        answers.push(got);
    }
    assert_eq!(answers[0], answers[1], "both paths answer alike");
    let expected = [
        "GET /cl -> 200 [\"raw\", \"5\", \"keep-alive\"] hello",
        "HEAD /cl -> 200 [\"raw\", \"5\", \"keep-alive\"] ",
        "GET /chunked -> 200 [\"chunked\", \"keep-alive\"] abcde",
        // The 103 reaches the client before the final response.
        "GET /early -> 200 [\"2\", \"keep-alive\", \"</s.css>\"] ok",
        "GET /empty -> 204 [\"raw\", \"keep-alive\"] ",
        // A close-delimited body reaches the client chunked, its connection kept.
        "GET /close -> 200 [\"raw\", \"chunked\", \"keep-alive\"] until-close",
    ];
    assert_eq!(answers[0], expected);

    let heads = o.heads();
    assert_eq!(heads.len(), 2 * cases.len());
    let (own_heads, their_heads) = heads.split_at(cases.len());
    for (a, b) in own_heads.iter().zip(their_heads) {
        assert_eq!(normalized(a), normalized(b), "both paths send alike");
    }
    // Header names keep the client's spelling on both paths.
    assert!(
        own_heads[0].contains("\nUser-Agent: t/1\n"),
        "{}",
        own_heads[0]
    );
    let first = normalized(&own_heads[0]);
    assert_eq!(first[0], "GET /cl HTTP/1.1");
    for expected in [
        "x-forwarded-for:10.0.0.1, 127.0.0.1",
        "x-forwarded-proto:http",
        "x-forwarded-host:site.test",
        "host:site.test",
        "cookie:a=b",
    ] {
        assert!(
            first.iter().any(|l| l == expected),
            "{expected} in {first:?}"
        );
    }
    for hop in ["connection:", "keep-alive:", "proxy-authorization:"] {
        assert!(
            !first.iter().any(|l| l.starts_with(hop)),
            "{hop} in {first:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_own_exchange_reuses_connections_and_retries_one_the_server_closed() {
    let o = RawOrigin::start().await;
    let gh = proxy_to(&[o.addr], true, "").await;
    let mut c = Wire::connect(gh.addr).await;
    for _ in 0..10 {
        assert_eq!(c.round_trip("GET", "/cl", "").await.0, 200);
    }
    assert_eq!(o.connections(), 1, "one server connection, kept alive");
    // The server now closes every connection after one response without saying so: each
    // pooled connection is dead when next taken, and the request is retried on a new one.
    o.close_after_each(true);
    for _ in 0..5 {
        let (status, _, body) = c.round_trip("GET", "/cl", "").await;
        assert_eq!((status, body.as_slice()), (200, b"hello".as_slice()));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(o.connections(), 5, "one new connection per request");
    // A response delimited by the close is never pooled, and the next request still works.
    o.close_after_each(false);
    assert_eq!(c.round_trip("GET", "/close", "").await.2, b"until-close");
    assert_eq!(c.round_trip("GET", "/cl", "").await.0, 200);
}

/// The next access log record has this status and termination.
async fn expect_record(sink: &tokio::net::UdpSocket, status: u64, termination: &str) {
    let r = json_record(sink).await;
    assert_eq!(
        (r["status"].as_u64(), r["termination"].as_str()),
        (Some(status), Some(termination)),
        "{r}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_own_exchange_fails_over_times_out_and_refuses_a_stray_101() {
    let o = RawOrigin::start().await;
    let dead = free_port(); // nothing listens: connection refused
    let (sink, target) = json_sink().await;
    let extra = format!("[timeouts]\nupstream_read = \"300ms\"\n{target}");
    let gh = proxy_to(&[dead, o.addr], true, &extra).await;
    let mut c = Wire::connect(gh.addr).await;
    let mut records = Vec::new();
    for _ in 0..4 {
        assert_eq!(c.round_trip("GET", "/cl", "").await.0, 200, "retried on s1");
        records.push(json_record(&sink).await);
    }
    assert!(records
        .iter()
        .all(|r| r["server"] == "s1" && r["termination"] == "done"));
    assert!(
        records.iter().any(|r| r["retries"] == 1),
        "the request that met s0 first was retried: {records:?}"
    );
    let (status, _, _) = Wire::connect(gh.addr)
        .await
        .round_trip("GET", "/hang", "")
        .await;
    assert_eq!(status, 504);
    expect_record(&sink, 504, "server_timeout").await;
    let (status, _, _) = Wire::connect(gh.addr)
        .await
        .round_trip("GET", "/switch", "")
        .await;
    assert_eq!(status, 502, "a 101 nobody asked for");
    let r = json_record(&sink).await;
    assert_eq!(
        (
            r["status"].as_u64(),
            r["termination"].as_str(),
            r["path"].as_str()
        ),
        (Some(502), Some("server_error"), Some("/switch")),
        "the server's fault: {r}"
    );
    // The dead server was tried, and counted, by the requests that met it.
    let rt = gh.gh.shared.current();
    assert!(rt.pools[0].servers[0].state.connect_failures() >= 1);
    // A refused connection, not retried: a 502, logged as a connect error (not an internal one).
    let gone = proxy_retrying(&[dead], true, &extra, 0).await;
    let (status, _, _) = Wire::connect(gone.addr)
        .await
        .round_trip("GET", "/cl", "")
        .await;
    assert_eq!(status, 502);
    expect_record(&sink, 502, "connect_error").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_clients_go_through_the_own_exchange_to_http1_servers() {
    use crate::common::certs::Ca;
    let (ca, dir) = (Ca::new(), state_dir());
    let leaf = ca.issue(&dir, "a", &["a.test"]);
    let o = Origin::start("o").await;
    let addr = free_port();
    let toml = crate::common::certs::tls_config(addr, &o, &[&leaf], "", "")
        + "[routes.cache]\nenabled = false\n";
    let gh = crate::common::certs::boot_tls(&toml).await;
    let c = crate::common::certs::https_client(&ca, &["a.test"], addr, false);
    let url = format!("https://a.test:{}/page?x=1", addr.port());
    for _ in 0..5 {
        let r = c.get(&url).send().await.unwrap();
        assert_eq!(r.version(), reqwest::Version::HTTP_2);
        assert_eq!(r.status(), 200);
        assert_eq!(r.text().await.unwrap(), "o");
    }
    let r = c.head(&url).send().await.unwrap();
    assert_eq!((r.status().as_u16(), r.content_length()), (200, Some(1)));
    assert_eq!(
        o.connections(),
        1,
        "one kept-alive server connection for all"
    );
    let idle = gh.shared.current().pools[0].servers[0].state.idle.len();
    assert_eq!(
        idle, 1,
        "the connection is in the direct exchange's idle list"
    );
    for s in o.seen() {
        assert_eq!(s.path, "/page");
        assert_eq!(
            s.headers["host"],
            format!("a.test:{}", addr.port()),
            ":authority becomes Host"
        );
        assert_eq!(s.headers["x-forwarded-proto"], "https");
    }
    // The relayed header map (built from the server's lines) is the one pingora's path builds:
    // every field and value, repeated fields in order, an obs-text value byte for byte.
    o.set_headers(&[
        ("x-one", "1"),
        ("set-cookie", "a=1"),
        ("set-cookie", "b=2"),
        ("x-empty", ""),
        ("x-latin", "caf\u{e9}"),
        ("cache-control", "no-store"),
    ]);
    let via_pingora = free_port();
    let toml = crate::common::certs::tls_config(via_pingora, &o, &[&leaf], "", "")
        + "[routes.cache]\nenabled = false\n";
    let _pingoras = crate::common::certs::boot_tls(
        &toml.replace("[server]\n", "[server]\ndirect_exchange = false\n"),
    )
    .await;
    let fields = |r: &reqwest::Response| {
        let mut v: Vec<(String, Vec<u8>)> = r
            .headers()
            .iter()
            .filter(|(n, _)| *n != "date")
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
            .collect();
        v.sort();
        v
    };
    let own = c.get(&url).send().await.unwrap();
    let c2 = crate::common::certs::https_client(&ca, &["a.test"], via_pingora, false);
    let theirs = c2
        .get(format!("https://a.test:{}/page?x=1", via_pingora.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(theirs.version(), reqwest::Version::HTTP_2);
    assert_eq!(fields(&own), fields(&theirs));
    let cookies: Vec<_> = own.headers().get_all("set-cookie").iter().collect();
    assert_eq!(cookies, ["a=1", "b=2"]);
    assert_eq!(own.headers()["x-latin"].as_bytes(), "café".as_bytes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_gone_mid_body_leaves_the_client_a_cut_response_on_both_paths() {
    let o = RawOrigin::start().await;
    for direct in [true, false] {
        let gh = proxy_to(&[o.addr], direct, "").await;
        let (status, headers, body) = Wire::connect(gh.addr)
            .await
            .round_trip("GET", "/cut", "")
            .await;
        let body = String::from_utf8_lossy(&body);
        assert_eq!(status, 200, "direct {direct}");
        assert!(header(&headers, "transfer-encoding").is_some(), "{headers}");
        assert!(body.contains("hello"), "direct {direct}: {body:?}");
        assert!(
            !body.contains("Bad Gateway") && !body.ends_with("0\r\n\r\n"),
            "direct {direct}: no error page inside the body, no last chunk: {body:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_leaves_frees_the_server_at_once() {
    let o = RawOrigin::start().await;
    let gh = proxy_to(&[o.addr], true, "[timeouts]\nupstream_read = \"30s\"\n").await;
    let mut tcp = Wire::connect(gh.addr).await;
    assert!(
        tcp.send(b"GET /hang HTTP/1.1\r\nHost: site.test\r\n\r\n")
            .await
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while gh.in_flight("web", "s0") == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the request reached the server"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(tcp); // the client gives up on the slow server
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while gh.in_flight("web", "s0") != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the server's slot is freed when the client leaves, not at upstream_read"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// On one client connection, requests the connection loop serves itself (`proxy::fast_path`) and
/// requests it hands to pingora's proxy with their header already read (vendored patch 7)
/// alternate: each is answered once, in order, and the connection stays open throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_handed_to_pingora_after_being_read_are_answered_on_the_same_connection() {
    let o = RawOrigin::start().await;
    let gh = proxy_to(&[o.addr], true, "").await;
    let mut c = Wire::connect(gh.addr).await;
    for i in 0..3 {
        // Served by the fast path.
        let (status, headers, body) = c.round_trip("GET", "/cl", "").await;
        assert_eq!((status, body.as_slice()), (200, b"hello".as_slice()), "{i}");
        assert_eq!(header(&headers, "connection"), Some("keep-alive"));
        // TE is a connection option the direct exchange does not carry: pingora's path.
        let (status, _, body) = c.round_trip("GET", "/chunked", "TE: trailers\r\n").await;
        assert_eq!((status, body.as_slice()), (200, b"abcde".as_slice()), "{i}");
    }
    let heads = o.heads();
    assert_eq!(
        heads.len(),
        6,
        "each request reached the server once: {heads:?}"
    );
    assert_eq!(
        o.connections(),
        2,
        "one server connection kept by each path"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relayed_bodies_arrive_whole_and_doubtful_server_connections_are_dropped() {
    let o = RawOrigin::start().await;
    let gh = proxy_to(&[o.addr], true, "").await;
    let idle = || gh.gh.shared.current().pools[0].servers[0].state.idle.len();
    let mut c = Wire::connect(gh.addr).await;
    let (status, _, body) = c.round_trip("GET", "/big", "").await;
    assert_eq!((status, body.len()), (200, BIG), "a body of many reads");
    assert!(body.iter().all(|b| *b == b'x'));
    assert_eq!(c.round_trip("GET", "/cl", "").await.2, b"hello");
    assert_eq!(o.connections(), 1, "the connection is kept after it");
    // The client can have its answer just before the connection is back in the idle list.
    wait_until(|| idle() == 1).await;
    for path in ["/cl-close", "/extra"] {
        let (status, headers, body) = c.round_trip("GET", path, "").await;
        assert_eq!((status, body.as_slice()), (200, b"ok".as_slice()), "{path}");
        assert_eq!(header(&headers, "connection"), Some("keep-alive"), "{path}");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(idle(), 0, "{path}: the server's connection is not kept");
        let before = o.connections();
        assert_eq!(c.round_trip("GET", "/cl", "").await.2, b"hello");
        assert_eq!(o.connections(), before + 1, "{path}");
    }
    // A response lenient syntax allows still reaches the client (pingora's client reads it).
    let (status, headers, body) = c.round_trip("GET", "/fold", "").await;
    assert_eq!((status, body.as_slice()), (200, b"ok".as_slice()));
    assert_eq!(header(&headers, "x-folded"), Some("a b"));
    // A body cut short stays short: the client's connection is closed, no error page added.
    let (status, headers, body) = c.round_trip("GET", "/cut-length", "").await;
    assert_eq!((status, body.as_slice()), (200, b"hello".as_slice()));
    assert_eq!(header(&headers, "content-length"), Some("100"));
}

/// Response heads whose HPACK blocks (written by `proxy::hpack_head`) an HTTP/2 client must
/// decode to what pingora's path sends: table and other statuses, names in any case, repeated
/// fields, the connection-specific ones, an empty and an obs-text value, lengths that take more
/// than one byte, chunked framing, and a head over 16 KiB (CONTINUATION frames).
fn hpack_cases() -> Vec<Vec<u8>> {
    let long_value = "v".repeat(300);
    let long_name = format!("X-{}", "n".repeat(140));
    let big: String = (0..60)
        .map(|i| format!("X-Big-{i:02}: {}\r\n", "b".repeat(300)))
        .collect();
    let heads = [
        "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nCache-Control: no-store\r\n\
         ETag: \"v1\"\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nX-Mixed-Case: Yes\r\n\
         Vary: Accept-Encoding\r\nSERVER: raw\r\nContent-Length: 2\r\n\r\nok"
            .to_string(),
        "HTTP/1.1 404 Not Found\r\nDate: Mon, 07 Dec 2026 01:02:03 GMT\r\nConnection: keep-alive\r\n\
         Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nUpgrade: example/1\r\n\
         Content-Length: 2\r\n\r\nno"
            .to_string(),
        format!("HTTP/1.1 302 Found\r\nLocation: /{long_value}\r\n{long_name}: {long_value}\r\nContent-Length: 0\r\n\r\n"),
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\nx-a: 2\r\n\r\n2\r\nok\r\n0\r\n\r\n"
            .to_string(),
        format!("HTTP/1.1 200 OK\r\n{big}Content-Length: 2\r\n\r\nok"),
        "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-1/10\r\nAccept-Ranges: bytes\r\n\
         Content-Length: 2\r\n\r\nok"
            .to_string(),
        "HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nAge: 3\r\n\r\n".to_string(),
        "HTTP/1.1 204 No Content\r\nX-Empty:\r\n\r\n".to_string(),
        "HTTP/1.1 500 Internal Server Error\r\nRetry-After: 5\r\nContent-Length: 2\r\n\r\nno"
            .to_string(),
        "HTTP/1.1 429 Too Many Requests\r\nWWW-Authenticate: Basic\r\nContent-Length: 2\r\n\r\nno"
            .to_string(),
    ];
    let mut cases: Vec<Vec<u8>> = heads.into_iter().map(String::into_bytes).collect();
    // An obs-text value, byte for byte.
    cases.push(b"HTTP/1.1 200 OK\r\nX-Latin: caf\xe9\r\nContent-Length: 2\r\n\r\nok".to_vec());
    cases
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_heads_sent_as_hpack_blocks_decode_as_pingoras_do() {
    let cases = hpack_cases();
    let o = hpack_origin().await;
    let mut clients = Vec::new();
    let mut keep = Vec::new();
    for direct in [true, false] {
        let (gh, addr, ca) = tls_gatehouse(o.addr, direct).await;
        keep.push(gh);
        // Room for the head over 16 KiB (hyper's client allows 16 KiB by default).
        let client = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_der(ca.der().as_ref()).unwrap())
            .resolve("a.test", addr)
            .http2_max_header_list_size(1 << 20)
            .build()
            .unwrap();
        clients.push((client, addr.port()));
    }
    type Seen = (u16, Vec<(String, Vec<u8>)>, Vec<u8>);
    let get = |i: usize, n: usize| {
        let (c, port) = &clients[i];
        let url = format!("https://a.test:{port}/case/{n}");
        async move {
            let r = c.get(&url).send().await.unwrap();
            assert_eq!(r.version(), reqwest::Version::HTTP_2);
            let mut fields: Vec<(String, Vec<u8>)> = r
                .headers()
                .iter()
                .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
                .collect();
            fields.sort();
            let seen: Seen = (
                r.status().as_u16(),
                fields,
                r.bytes().await.unwrap().to_vec(),
            );
            seen
        }
    };
    // Twice over: the second round's blocks follow others on the same connections.
    for round in 0..2 {
        for (n, case) in cases.iter().enumerate() {
            let (own, theirs) = (get(0, n).await, get(1, n).await);
            let dated = case.windows(6).any(|w| w == b"\nDate:");
            let undated = |s: &Seen| {
                let mut s = s.clone();
                if !dated {
                    // Each path adds its own, maybe a second apart.
                    assert_eq!(s.1.iter().filter(|(n, _)| n == "date").count(), 1);
                    s.1.retain(|(n, _)| n != "date");
                }
                s
            };
            assert_eq!(
                undated(&own),
                undated(&theirs),
                "round {round}, case {n}: {}",
                String::from_utf8_lossy(case)
            );
            for (name, _) in &own.1 {
                assert!(
                    ![
                        "connection",
                        "keep-alive",
                        "proxy-connection",
                        "upgrade",
                        "transfer-encoding"
                    ]
                    .contains(&name.as_str()),
                    "case {n}: {name} reached an HTTP/2 client"
                );
            }
        }
    }
    assert_eq!(
        o.connections(),
        2,
        "each gatehouse kept one server connection"
    );
    // The blocks compared were the relay's: its connection waits in the direct exchange's idle
    // list, pingora's path's in pingora's pool.
    assert_eq!((direct_idle(&keep[0]), direct_idle(&keep[1])), (1, 0));
}

/// Server connections waiting in the direct exchange's idle list (the only server's).
fn direct_idle(gh: &gatehouse::Gatehouse) -> usize {
    gh.shared.current().pools[0].servers[0].state.idle.len()
}

/// A raw origin answering `/case/N` with `hpack_cases()[N]`.
async fn hpack_origin() -> crate::common::raw::ScriptOrigin {
    use crate::common::raw::{Act, Msg, ScriptOrigin};
    let answers = hpack_cases();
    ScriptOrigin::start(move |m: &Msg| {
        let n: usize = m.target().trim_start_matches("/case/").parse().unwrap_or(0);
        vec![Act::Write(answers[n].clone())]
    })
    .await
}

/// gatehouse with one TLS listener (certificate for `a.test`, the default one) in front of
/// `origin`, without caching; `direct`: `server.direct_exchange`.
async fn tls_gatehouse(
    origin: SocketAddr,
    direct: bool,
) -> (gatehouse::Gatehouse, SocketAddr, crate::common::certs::Ca) {
    use crate::common::certs::{boot_tls, tls_config, Ca};
    let (ca, dir) = (Ca::new(), state_dir());
    let leaf = ca.issue(&dir, "a", &["a.test"]);
    let placeholder = Origin::start("placeholder").await;
    let addr = free_port();
    let toml = tls_config(addr, &placeholder, &[&leaf], "", "")
        .replace(&placeholder.addr.to_string(), &origin.to_string())
        .replace(
            "[server]\n",
            &format!("[server]\ndirect_exchange = {direct}\n"),
        )
        + "[routes.cache]\nenabled = false\n";
    (boot_tls(&toml).await, addr, ca)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_size_change_leads_the_next_hpack_block() {
    // nghttp2 refuses a header block that does not open with the table size update its
    // SETTINGS_HEADER_TABLE_SIZE called for (RFC 7541 §4.2): `-c 0` asks for one. The first
    // response's head is over 16 KiB, so its block (and the update) spans CONTINUATION frames.
    let Some(nghttp) = tool("nghttp", &["/usr/bin/nghttp"], "nghttp2-client") else {
        return;
    };
    let o = hpack_origin().await;
    let (gh, addr, _ca) = tls_gatehouse(o.addr, true).await;
    let urls: Vec<String> = [4, 0, 1]
        .iter()
        .map(|n| format!("https://127.0.0.1:{}/case/{n}", addr.port()))
        .collect();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(nghttp)
            .args(["-v", "-c", "0"])
            .args(&urls)
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(text.matches(":status: 200").count(), 2, "{text}");
    assert_eq!(text.matches(":status: 404").count(), 1, "{text}");
    // nghttp2 shows the HEADERS and CONTINUATION frames of a block as one frame: over the
    // default SETTINGS_MAX_FRAME_SIZE (nghttp sends none), it came in several.
    let longest = text
        .lines()
        .filter_map(|l| l.split("recv HEADERS frame <length=").nth(1))
        .filter_map(|l| l.split(',').next()?.parse::<usize>().ok())
        .max();
    assert!(longest > Some(16_384), "{text}");
    assert!(!text.contains("recv GOAWAY"), "{text}");
    assert!(
        direct_idle(&gh) >= 1,
        "the relay answered (its server connections are idle)"
    );
}
