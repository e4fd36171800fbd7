//! Hostile input and faults: raw bytes over TCP, checking both the client's answer and what the
//! origin received; limits; cache poisoning; servers that die or cut responses.

use crate::common::raw::{Act, ScriptOrigin, Wire};
use crate::common::*;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

/// Sends raw bytes, reads until the server closes (or 3 s); returns the status codes seen.
async fn raw(addr: std::net::SocketAddr, bytes: &[u8]) -> (Vec<u16>, String) {
    let mut wire = Wire::connect(addr).await;
    assert!(wire.send(bytes).await, "request sent");
    wire.open_after(Duration::from_secs(3)).await;
    let text = String::from_utf8_lossy(&wire.buf).into_owned();
    // Status lines wherever they start: a pipelined response follows the previous body
    // directly, which need not end with a line break.
    let statuses = text
        .match_indices("HTTP/1.")
        .filter_map(|(at, _)| text[at..].split(' ').nth(1)?.parse().ok())
        .collect();
    (statuses, text)
}

async fn plain_proxy(o: &Origin, extra: &str) -> Proxy {
    boot(&format!(
        "{extra}{}[routes.cache]\nenabled = false\n",
        one_route(&[o])
    ))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smuggling_attempts_never_become_two_requests() {
    let o = Origin::start("o").await;
    let gh = plain_proxy(&o, "").await;
    let h = "Host: a\r\n";
    // (request bytes, expected statuses, requests the origin may see)
    let cases: Vec<(String, Vec<u16>, usize)> = vec![
        // TE wins over CL (RFC 9112): one chunked request, the tail is never a second request.
        (format!("POST /p HTTP/1.1\r\n{h}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n{h}\r\n"), vec![200], 1),
        (format!("POST /p HTTP/1.1\r\n{h}Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"), vec![400], 0),
        (format!("POST /p HTTP/1.1\r\n{h}Transfer-Encoding: chunked, identity\r\n\r\n5\r\nhello\r\n0\r\n\r\n"), vec![400], 0),
        ("GET / HTTP/1.1\r\nHost : a\r\n\r\n".to_string(), vec![400], 0),
        (format!("GET / HTTP/1.1\r\n{h}X-A: 1\r\n folded\r\n\r\n"), vec![400], 0),
        (format!("POST /p HTTP/1.1\r\n{h}Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"), vec![400], 1),
        (format!("POST /p HTTP/1.1\r\n{h}Transfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFFFF\r\nhello\r\n0\r\n\r\n"), vec![400], 1),
        (format!("GET / HTTP/1.1\r\n{h}X-A: a\x00b\r\n\r\n"), vec![400], 0),
        (format!("GET / HTTP/1.1\r\n{h}X-A: a\x07b\r\n\r\n"), vec![400], 0),
        ("GET http://b.example/ HTTP/1.1\r\nHost: a\r\n\r\n".to_string(), vec![400], 0),
        ("GET / HTTP/1.1\r\n\r\n".to_string(), vec![400], 0),
        (format!("POST /p HTTP/1.1\r\n{h}Content-Length: -1\r\n\r\n"), vec![400], 0),
    ];
    // Each case's request has a path of its own (`/c<i>`): a request the origin receives
    // after its client was answered (the head went on, the body then failed) is counted with
    // its own case, never with the next one.
    let tag = |i: usize, req: &str| {
        let first = req.find(" HTTP/1.1").unwrap();
        let (target, rest) = req.split_at(first);
        let target = target.trim_end_matches('p').trim_end_matches('/');
        format!("{target}/c{i}{rest}")
    };
    let seen_for = |i: usize| {
        o.seen()
            .iter()
            .filter(|s| s.path == format!("/c{i}"))
            .count()
    };
    for (i, (req, statuses, max_origin)) in cases.iter().enumerate() {
        let req = tag(i, req);
        let (got, text) = raw(gh.addr, req.as_bytes()).await;
        assert_eq!(&got, statuses, "case {i}: {req:?}\n{text}");
        wait_until(|| o.in_flight() == 0).await;
        assert!(
            seen_for(i) <= *max_origin,
            "case {i}: origin saw {}",
            seen_for(i)
        );
    }
    // Late arrivals too: once everything settled, no case went over and nothing smuggled
    // reached the origin.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    wait_until(|| o.in_flight() == 0).await;
    for (i, (_, _, max_origin)) in cases.iter().enumerate() {
        assert!(
            seen_for(i) <= *max_origin,
            "case {i}: origin saw {}",
            seen_for(i)
        );
    }
    assert!(
        o.seen().iter().all(|s| s.path.starts_with("/c")),
        "a request no case sent (smuggled) reached the origin: {:?}",
        o.seen().iter().map(|s| &s.path).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn framing_that_is_legal_passes_once() {
    let o = Origin::start("o").await;
    let gh = plain_proxy(&o, "").await;
    let h = "Host: a\r\n";
    // Expect: 100-continue, pipelining, HTTP/1.0 without Host, bare LF line ends.
    let (got, _) = raw(
        gh.addr,
        format!("POST /e HTTP/1.1\r\n{h}Content-Length: 5\r\nExpect: 100-continue\r\n\r\nhello")
            .as_bytes(),
    )
    .await;
    assert_eq!(got, vec![100, 200]);
    // Pipelining (RFC 9112 §9.3.2): both requests answered, in order.
    let (got, text) = raw(
        gh.addr,
        format!("GET /1 HTTP/1.1\r\n{h}\r\nGET /2 HTTP/1.1\r\n{h}Connection: close\r\n\r\n")
            .as_bytes(),
    )
    .await;
    assert_eq!(got, vec![200, 200], "{text}");
    let answered = got.len();
    let (got, _) = raw(gh.addr, b"GET /old HTTP/1.0\r\n\r\n").await;
    assert_eq!(got, vec![200]);
    let (got, _) = raw(gh.addr, b"GET /lf HTTP/1.1\nHost: a\nConnection: close\n\n").await;
    assert_eq!(got, vec![200]);
    let paths: Vec<String> = o.seen().iter().map(|s| s.path.clone()).collect();
    let expected: Vec<&str> = ["/e", "/1", "/2"][..1 + answered]
        .iter()
        .copied()
        .chain(["/old", "/lf"])
        .collect();
    assert_eq!(
        paths, expected,
        "the origin saw exactly the requests that were answered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_answer_with_their_own_status() {
    let o = Origin::start("o").await;
    let gh = plain_proxy(
        &o,
        "[limits]\nmax_header_bytes = \"4k\"\nmax_headers = 20\nmax_uri_length = \"1k\"\nmax_body_size = \"64k\"\nkeepalive_requests = 3\n",
    )
    .await;
    let h = "Host: a\r\n";
    let big = "x".repeat(5000);
    assert_eq!(
        raw(
            gh.addr,
            format!("GET / HTTP/1.1\r\n{h}X-Big: {big}\r\n\r\n").as_bytes()
        )
        .await
        .0,
        vec![431]
    );
    let many: String = (0..30).map(|i| format!("X-{i}: 1\r\n")).collect();
    assert_eq!(
        raw(
            gh.addr,
            format!("GET / HTTP/1.1\r\n{h}{many}\r\n").as_bytes()
        )
        .await
        .0,
        vec![431]
    );
    let long = "a".repeat(2000);
    assert_eq!(
        raw(
            gh.addr,
            format!("GET /{long} HTTP/1.1\r\n{h}\r\n").as_bytes()
        )
        .await
        .0,
        vec![414]
    );
    // A declared body over the limit: 413 at once, body never read.
    assert_eq!(
        raw(
            gh.addr,
            format!("POST /u HTTP/1.1\r\n{h}Content-Length: 10000000\r\n\r\n").as_bytes()
        )
        .await
        .0,
        vec![413]
    );
    assert_eq!(o.hits(), 0, "no refused request reached the origin");
    // A chunked body that grows past the limit.
    let chunk = format!("{:x}\r\n{}\r\n", 40_000, "c".repeat(40_000));
    let (got, _) = raw(
        gh.addr,
        format!("POST /c HTTP/1.1\r\n{h}Transfer-Encoding: chunked\r\n\r\n{chunk}{chunk}0\r\n\r\n")
            .as_bytes(),
    )
    .await;
    assert_eq!(got, vec![413]);
    // Three requests per connection, then it closes.
    let mut wire = Wire::connect(gh.addr).await;
    let mut answers = Vec::new();
    for i in 0..4 {
        if !wire
            .send(format!("GET /k{i} HTTP/1.1\r\n{h}\r\n").as_bytes())
            .await
        {
            break;
        }
        match wire.response(false, Duration::from_secs(3)).await {
            Ok(answer) => answers.push(answer.head),
            Err(_) => break,
        }
    }
    assert_eq!(answers.len(), 3, "{answers:?}");
    assert!(
        answers[2]
            .to_ascii_lowercase()
            .contains("connection: close"),
        "{}",
        answers[2]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_passes_only_where_the_route_allows_it() {
    let o = Origin::start("o").await;
    let gh = boot(&format!(
        "{}[[routes]]\npath_prefix = \"/ws\"\npool = \"web\"\nallow_upgrade = true\n[[routes]]\npool = \"web\"\n",
        unchecked_pool("web", &[&o])
    ))
    .await;
    let req = |p: &str| {
        format!("GET {p} HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
    };
    assert_eq!(raw(gh.addr, req("/page").as_bytes()).await.0, vec![200]);
    assert_eq!(raw(gh.addr, req("/ws/chat").as_bytes()).await.0, vec![200]);
    let seen = o.seen();
    assert!(
        seen[0].headers.get("upgrade").is_none(),
        "stripped on a route without allow_upgrade"
    );
    assert_eq!(seen[1].headers["upgrade"], "websocket");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_cannot_be_poisoned_or_leak_credentials() {
    let o = Origin::start("o").await;
    o.echo_host();
    o.set_headers(&[("cache-control", "public, max-age=60")]);
    let gh = boot(&one_route(&[&o])).await;
    let c = client();
    // A response to a request with credentials is never served to others.
    let r = c
        .get(gh.url("/me"))
        .header("authorization", "Bearer secret")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-cache"], "PASS");
    let r = c.get(gh.url("/me")).send().await.unwrap();
    assert_eq!(
        r.headers()["x-cache"],
        "MISS",
        "not served from the credentialed response"
    );
    // An unkeyed header cannot steer what is stored: X-Forwarded-Host is gatehouse's own.
    let r = c
        .get(gh.url("/poison"))
        .header("host", "good.test")
        .header("x-forwarded-host", "evil.test")
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "o:good.test");
    let seen = o.seen();
    assert_eq!(
        seen.last().unwrap().headers["x-forwarded-host"],
        "good.test"
    );
    // The same path on another host is another object.
    let r = c
        .get(gh.url("/poison"))
        .header("host", "other.test")
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "o:other.test");
}

/// An origin that sends headers for a 100 kB body, 1 kB of it, then closes.
async fn cutting_origin() -> ScriptOrigin {
    ScriptOrigin::start(|_| {
        let head = "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\nCache-Control: max-age=60\r\n\r\n";
        vec![
            Act::Write(head.as_bytes().to_vec()),
            Act::Write(vec![b'x'; 1000]),
            Act::Close,
        ]
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_cut_mid_body_reaches_the_client_cut_and_is_not_cached() {
    let cutting = cutting_origin().await;
    let addr = cutting.addr;
    let gh = boot(&format!(
        "[pools.web.health]\nenabled = false\n[[pools.web.servers]]\naddress = \"{addr}\"\n[[routes]]\npool = \"web\"\n"
    ))
    .await;
    let c = client();
    for _ in 0..2 {
        let r = c.get(gh.url("/cut")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let body = r.bytes().await;
        assert!(
            body.is_err() || body.unwrap().len() < 100_000,
            "the client sees a cut response, never a complete one"
        );
    }
    assert_eq!(cutting.seen().len(), 2, "the cut response was not cached");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_under_load_costs_only_its_in_flight_requests() {
    let (mut a, b) = (Origin::start("a").await, Origin::start("b").await);
    let gh = boot(&format!(
        "{}{}[[routes]]\npool = \"web\"\n[routes.cache]\nenabled = false\n",
        fast_health("web", 2, 1),
        servers("web", &[&a, &b])
    ))
    .await;
    gh.wait_healthy(Duration::from_secs(5)).await;
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed, failed_late) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let noticed = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for w in 0..4 {
        let (c, base) = (client(), gh.url(""));
        let (stop, ok, failed, failed_late, noticed) = (
            stop.clone(),
            ok.clone(),
            failed.clone(),
            failed_late.clone(),
            noticed.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(SeqCst) && i < 50_000 {
                i += 1;
                match c.get(format!("{base}/k/{w}/{i}")).send().await {
                    Ok(r) if r.status() == 200 => ok.fetch_add(1, SeqCst),
                    _ if noticed.load(SeqCst) => failed_late.fetch_add(1, SeqCst),
                    _ => failed.fetch_add(1, SeqCst),
                };
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    a.stop().await; // killed: listener and open connections gone at once
    wait_until(|| !gh.server_healthy("web", "a")).await;
    noticed.store(true, SeqCst);
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, SeqCst);
    for t in tasks {
        t.await.unwrap();
    }
    assert!(
        failed.load(SeqCst) <= 4,
        "at most the requests in flight on a: {}",
        failed.load(SeqCst)
    );
    assert_eq!(
        failed_late.load(SeqCst),
        0,
        "none after the health check noticed"
    );
    assert!(ok.load(SeqCst) > 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gone_syslog_receiver_and_an_unwritable_state_file_do_not_touch_traffic() {
    let o = Origin::start("o").await;
    let dir = state_dir();
    // The state file cannot be written: a directory stands where it would go.
    std::fs::create_dir_all(dir.join("state.json")).unwrap();
    let nobody = free_port();
    let toml = format!(
        "{}[[listeners]]\naddress = \"{}\"\n[[access_log.targets]]\naddress = \"{nobody}\"\n\
         [[access_log.targets]]\ntransport = \"unix\"\npath = \"{}\"\n{}",
        server_section_in(&dir),
        free_port(),
        dir.join("no-such.sock").display(),
        one_route(&[&o])
    );
    let config = gatehouse::Config::from_toml(&toml, "t").unwrap();
    let listen = config.listeners[0].address;
    let gh = boot_config(config).await;
    let c = client();
    for i in 0..50 {
        assert_eq!(
            c.get(format!("http://{listen}/g{i}"))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
    let (status, body) =
        admin_call(&gh, "POST", "/api/pools/web/servers/o/drain", Some(TOKEN)).await;
    assert_eq!(status, 200);
    assert_eq!(body["persisted"], false);
    assert!(
        body["warning"]
            .as_str()
            .unwrap()
            .contains("cannot write state file"),
        "{body}"
    );
    assert_eq!(body["state"], "drain", "the change holds in memory");
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}

/// A bounded soak: mixed traffic pushing 10x the cache size through a gatehouse process; its
/// RSS stays under a ceiling and flat after warm-up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stays_flat_under_cache_churn() {
    let o = Origin::start("o").await;
    o.set_headers(&[("cache-control", "max-age=60")]);
    o.set_body_size(64 * 1024);
    let dir = state_dir();
    let listen = free_port();
    let path = dir.join("soak.toml");
    std::fs::write(
        &path,
        format!(
            "{}[[listeners]]\naddress = \"{listen}\"\n[cache]\nmax_size = \"8m\"\nmax_object_size = \"1m\"\n{}",
            server_section_in(&dir),
            one_route(&[&o])),
    )
    .unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["run", "-c"])
        .arg(&path)
        .env("RUST_LOG", "error")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let child = Reap(child);
    let pid = child.0.id();
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(listen).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // 1280 objects of 64 KiB = 80 MiB through an 8 MiB cache, hits mixed in, 4 clients.
    let run = |from: usize, to: usize| {
        let mut tasks = Vec::new();
        for w in 0..4 {
            let c = client();
            tasks.push(tokio::spawn(async move {
                for i in (from + w..to).step_by(4) {
                    let url = format!("http://{listen}/obj/{}", i % 1280);
                    let r = c.get(&url).send().await.unwrap();
                    assert_eq!(r.status(), 200);
                    r.bytes().await.unwrap();
                    if i % 3 == 0 {
                        c.get(format!("http://{listen}/hot/{}", i % 8))
                            .send()
                            .await
                            .unwrap()
                            .bytes()
                            .await
                            .unwrap();
                    }
                }
            }));
        }
        tasks
    };
    for t in run(0, 1280) {
        t.await.unwrap();
    }
    let warm = rss_kib(pid);
    for t in run(1280, 3840) {
        t.await.unwrap();
    }
    let end = rss_kib(pid);
    assert!(warm > 0 && end > 0);
    assert!(end < 200 * 1024, "RSS ceiling: {end} KiB");
    assert!(
        end < warm + 24 * 1024,
        "RSS flat after warm-up: {warm} KiB then {end} KiB"
    );
}
