//! Read-only mode: writes refused without reaching a server, reads served, allow-lists, the
//! logged-out sub-mode, runtime toggles that persist and expire, and the Lanyrd migration.

use crate::common::ctl::ctl;
use crate::common::raw::Wire;
use crate::common::*;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

async fn readonly_proxy(o: &Origin, readonly: &str, routes: &str) -> Proxy {
    boot(&format!(
        "[readonly]\n{readonly}\n{}{routes}[[routes]]\npool = \"web\"\n",
        unchecked_pool("web", &[o])
    ))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_get_503_and_never_reach_a_server_while_reads_are_served() {
    let o = Origin::start("o").await;
    let gh = readonly_proxy(&o, "enabled = true\nretry_after = \"90s\"", "").await;
    let c = client();
    for method in ["POST", "PUT", "PATCH", "DELETE"] {
        let r = c
            .request(method.parse().unwrap(), gh.url("/items/1"))
            .body("x")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 503, "{method}");
        assert_eq!(r.headers()["retry-after"], "90");
        assert_eq!(r.headers()["x-gatehouse-readonly"], "1");
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        assert!(r.text().await.unwrap().contains("read-only"));
    }
    let r = c
        .post(gh.url("/api/x"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"], "read-only");
    assert_eq!(get(&c, &gh.url("/items/1")).await, (200, "o".into()));
    assert_eq!(
        c.head(gh.url("/items/1")).send().await.unwrap().status(),
        200
    );
    assert_eq!(o.hits(), 2, "only the reads reached the server");
    assert!(o
        .seen()
        .iter()
        .all(|s| s.method == "GET" || s.method == "HEAD"));
    assert_eq!(gh.gh.shared.readonly_refused.load(SeqCst), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_upload_is_answered_at_once_and_its_connection_closed() {
    let o = Origin::start("o").await;
    let gh = readonly_proxy(&o, "enabled = true", "").await;
    let mut wire = Wire::connect(gh.addr).await;
    let started = Instant::now();
    assert!(
        wire.send(
            b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: 104857600\r\n\r\n",
        )
        .await
    );
    assert!(wire.send(&vec![b'a'; 64 * 1024]).await);
    // Read until the server closes: a 100 MB body would take far longer to drain.
    let open = wire.open_after(Duration::from_secs(5)).await;
    assert!(!open, "the connection was not closed");
    let text = String::from_utf8_lossy(&wire.buf);
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(o.hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_listed_paths_and_exempt_routes_still_take_writes() {
    let o = Origin::start("o").await;
    let gh = readonly_proxy(
        &o,
        "enabled = true\nallow_paths = [\"/login\"]",
        "[[routes]]\nhosts = [\"api.test\"]\npool = \"web\"\nreadonly = \"never\"\n",
    )
    .await;
    let c = client();
    assert_eq!(c.post(gh.url("/login")).send().await.unwrap().status(), 200);
    assert_eq!(c.post(gh.url("/other")).send().await.unwrap().status(), 503);
    let r = c
        .post(gh.url("/other"))
        .header("host", "api.test")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the exempt route takes writes");
    assert_eq!(o.hits(), 2);
}

/// An allowed path is judged as servers read it: `/login/../account` is a write to `/account`
/// (raw bytes: an HTTP client library would resolve the dot segments itself).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_prefix_spelt_around_is_not_allowed() {
    let o = Origin::start("o").await;
    let gh = readonly_proxy(&o, "enabled = true\nallow_paths = [\"/login\"]", "").await;
    let cases = [
        ("/login/x", 200),
        ("/login/../account", 503),
        ("/login%2f..%2faccount", 503),
        ("/login/..;/account", 503),
        ("/login\\..\\account", 503),
        ("/%6cogin/x", 200),
    ];
    for (path, want) in cases {
        let mut wire = Wire::connect(gh.addr).await;
        let req = format!("POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi");
        assert!(wire.send(req.as_bytes()).await);
        let msg = wire.response(false, Duration::from_secs(5)).await.unwrap();
        assert_eq!(msg.status(), want, "{path}");
    }
    assert_eq!(o.hits(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logged_out_mode_strips_cookies_and_serves_everyone_from_the_cache() {
    let o = Origin::start("o").await;
    o.set_headers(&[
        ("cache-control", "max-age=60"),
        ("set-cookie", "session=new; Path=/"),
    ]);
    let gh = readonly_proxy(&o, "enabled = true\nstrip_cookies = true", "").await;
    let c = client();
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let r = c
            .get(gh.url("/home"))
            .header("cookie", "session=abc")
            .send()
            .await
            .unwrap();
        assert!(
            r.headers().get("set-cookie").is_none(),
            "Set-Cookie never reaches the client"
        );
        statuses.push(r.headers()["x-cache"].to_str().unwrap().to_string());
    }
    assert_eq!(statuses, ["MISS", "HIT", "HIT"]);
    assert_eq!(o.hits(), 1);
    assert!(
        o.seen()[0].headers.get("cookie").is_none(),
        "the server never sees the cookie"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_switch_works_from_the_api_and_ctl_persists_and_expires() {
    let o = Origin::start("o").await;
    let dir = state_dir();
    let path = dir.join("gatehouse.toml");
    let listen = free_port();
    let toml = format!(
        "{}[[listeners]]\naddress = \"{listen}\"\n{}",
        server_section_in(&dir),
        one_route(&[&o])
    );
    std::fs::write(&path, &toml).unwrap();
    let gh = boot_config(gatehouse::Config::load(&path).unwrap()).await;
    let c = client();
    let post = |c: &reqwest::Client| c.post(format!("http://{listen}/w")).send();
    assert_eq!(post(&c).await.unwrap().status(), 200);

    let body = serde_json::json!({"enabled": true, "reason": "db migration"});
    let addr = gh.shared.current().config.admin.address;
    let r = c
        .post(format!("http://{addr}/api/readonly"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "the switch needs the token");
    let r = c
        .post(format!("http://{addr}/api/readonly"))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(post(&c).await.unwrap().status(), 503);
    let (_, status) = admin_call(&gh, "GET", "/api/readonly", None).await;
    assert_eq!(
        (status["active"].as_bool(), status["reason"].as_str()),
        (Some(true), Some("db migration"))
    );

    // A reload and a restart keep it on.
    gh.shared.reload_from(&path).unwrap();
    assert_eq!(post(&c).await.unwrap().status(), 503);
    drop(gh);
    let gh = boot_config(gatehouse::Config::load(&path).unwrap()).await;
    assert_eq!(
        post(&c).await.unwrap().status(),
        503,
        "still read-only after a restart"
    );

    // ctl turns it off, then on for one second: it expires by itself.
    let admin = gh.shared.current().config.admin.address;
    let readonly = |args: &[&str]| {
        let args: Vec<&str> = std::iter::once("readonly")
            .chain(args.iter().copied())
            .collect();
        let (code, out, err) = ctl(admin, &args);
        assert_eq!(code, 0, "{err}");
        out
    };
    assert!(readonly(&["off"]).contains("read-only: off"));
    assert_eq!(post(&c).await.unwrap().status(), 200);
    // Three seconds: long enough for the check below on a loaded machine (the suite runs
    // handshake-heavy tests alongside).
    let out = readonly(&["on", "--reason", "cutover", "--for", "3s"]);
    assert!(out.contains("read-only: ON (cutover)"), "{out}");
    assert_eq!(post(&c).await.unwrap().status(), 503);
    tokio::time::sleep(Duration::from_millis(3200)).await;
    assert_eq!(post(&c).await.unwrap().status(), 200, "expired");
}

/// Lanyrd's migration: under mixed load, read-only goes on (reads keep working, writes get
/// 503), then off (writes work again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lanyrd_migration_under_load() {
    let o = Origin::start("o").await;
    let gh = readonly_proxy(&o, "", "").await;
    let stop = Arc::new(AtomicBool::new(false));
    // 0 before, 1 read-only, 2 after; 10 and 11 while switching (writes then are not judged)
    let phase = Arc::new(AtomicUsize::new(0));
    let failed_reads = Arc::new(AtomicUsize::new(0));
    let reads = Arc::new(AtomicUsize::new(0));
    // (phase, status) of every write
    let writes = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut load = Vec::new();
    for n in 0..4 {
        let (c, base) = (client(), gh.url(""));
        let (stop, phase, failed_reads, reads, writes) = (
            stop.clone(),
            phase.clone(),
            failed_reads.clone(),
            reads.clone(),
            writes.clone(),
        );
        load.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(SeqCst) && i < 50_000 {
                i += 1;
                if n == 0 {
                    let before = phase.load(SeqCst);
                    let status = c
                        .post(format!("{base}/comment"))
                        .body("hi")
                        .send()
                        .await
                        .map(|r| r.status().as_u16());
                    let after = phase.load(SeqCst);
                    if before == after {
                        writes.lock().unwrap().push((before, status.unwrap_or(0)));
                    }
                } else {
                    match c.get(format!("{base}/page/{i}")).send().await {
                        Ok(r) if r.status() == 200 => reads.fetch_add(1, SeqCst),
                        _ => failed_reads.fetch_add(1, SeqCst),
                    };
                }
            }
        }));
    }
    let switch = |on: bool| {
        let gh = &gh;
        async move {
            let addr = gh.gh.shared.current().config.admin.address;
            client()
                .post(format!("http://{addr}/api/readonly"))
                .bearer_auth(TOKEN)
                .json(&serde_json::json!({"enabled": on, "reason": "migration"}))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    phase.store(10, SeqCst);
    assert_eq!(switch(true).await, 200);
    phase.store(1, SeqCst);
    tokio::time::sleep(Duration::from_millis(500)).await;
    phase.store(11, SeqCst);
    assert_eq!(switch(false).await, 200);
    phase.store(2, SeqCst);
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, SeqCst);
    for l in load {
        l.await.unwrap();
    }
    assert_eq!(failed_reads.load(SeqCst), 0, "no read failed");
    assert!(reads.load(SeqCst) > 100);
    let writes = writes.lock().unwrap().clone();
    for p in 0..3 {
        let statuses: Vec<u16> = writes
            .iter()
            .filter(|(ph, _)| *ph == p)
            .map(|(_, s)| *s)
            .collect();
        assert!(!statuses.is_empty(), "writes in phase {p}");
        let expected = if p == 1 { 503 } else { 200 };
        assert!(
            statuses.iter().all(|s| *s == expected),
            "phase {p}: {statuses:?}"
        );
    }
    wait_until(|| o.in_flight() == 0).await;
}
