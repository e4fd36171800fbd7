//! The admin API: server states, drain with wait, maint, safe restore, tokens and errors, state
//! that survives reloads and restarts, `gatehouse ctl`, and the deploy workflow under load.

use crate::common::ctl::ctl;
use crate::common::*;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

const ROUTE: &str = "[[routes]]\npool = \"web\"\n";

async fn two_servers(checked: bool) -> (Origin, Origin, Proxy) {
    let (a, b) = (Origin::start("a").await, Origin::start("b").await);
    let pool = if checked {
        format!("{}{}", fast_health("web", 1, 1), servers("web", &[&a, &b]))
    } else {
        unchecked_pool("web", &[&a, &b])
    };
    let gh = boot(&format!("{pool}{ROUTE}")).await;
    gh.wait_healthy(Duration::from_secs(5)).await;
    (a, b, gh)
}

/// Sends GETs one at a time until one of them is in flight on server a (round robin sends
/// every other one there), within 10 s; the requests sent, each answering its status.
async fn park_one_on_a(gh: &Proxy, c: &reqwest::Client) -> Vec<JoinHandle<u16>> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut sent = Vec::new();
    loop {
        let (c2, url) = (c.clone(), gh.url("/slow"));
        let t = tokio::spawn(async move { c2.get(url).send().await.unwrap().status().as_u16() });
        // One request out at a time: it either shows up on a or finishes (on b).
        while gh.in_flight("web", "a") == 0 && !t.is_finished() {
            assert!(
                Instant::now() < deadline,
                "no request in flight on a after 10 s: {} sent, in flight a {} b {}",
                sent.len() + 1,
                gh.in_flight("web", "a"),
                gh.in_flight("web", "b")
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        sent.push(t);
        if gh.in_flight("web", "a") == 1 {
            return sent;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drained_server_gets_no_new_requests_and_its_slow_request_completes() {
    let (a, b, gh) = two_servers(false).await;
    // Long enough that the drain below, however slow this machine, finds it in flight.
    a.set_mode(Mode::Delay(Duration::from_secs(2)));
    let c = client();
    // Park one slow request on a.
    let sent = park_one_on_a(&gh, &c).await;
    let (status, body) = gh
        .admin("POST", "/api/pools/web/servers/a/drain", Some(TOKEN))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "drain");
    assert_eq!(body["in_flight"], 1);
    let a_hits = a.hits();
    for _ in 0..10 {
        assert_eq!(get(&c, &gh.url("/")).await, (200, "b".into()));
    }
    assert_eq!(
        a.hits(),
        a_hits,
        "no new request reached the drained server"
    );
    for t in sent {
        assert_eq!(t.await.unwrap(), 200, "the in-flight request completed");
    }
    // Its in-flight slot is released just after the client has its answer.
    wait_until(|| gh.in_flight("web", "a") == 0).await;
    let (_, s) = gh.admin("GET", "/api/pools/web/servers/a", None).await;
    assert_eq!(
        (s["state"].as_str(), s["in_flight"].as_u64()),
        (Some("drain"), Some(0))
    );
    let _ = b;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_with_wait_answers_when_in_flight_requests_finish_or_times_out() {
    let (a, _b, gh) = two_servers(false).await;
    // Slow enough that the drain finds it in flight with at least 200 ms to wait.
    a.set_mode(Mode::Delay(Duration::from_secs(2)));
    let c = client();
    let parked = park_one_on_a(&gh, &c).await;
    let started = Instant::now();
    let (status, body) = gh
        .admin(
            "POST",
            "/api/pools/web/servers/a/drain?wait=10s",
            Some(TOKEN),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["drained"], true);
    assert_eq!(body["in_flight"], 0);
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "it waited for the request"
    );
    assert!(body["waited_ms"].as_u64().unwrap() >= 200, "{body}");
    assert_eq!(a.in_flight(), 0, "answered once the origin was done");
    for p in parked {
        assert_eq!(p.await.unwrap(), 200);
    }

    // A request that outlasts the wait: 409 with the count still in flight.
    let (status, body) = gh
        .admin("POST", "/api/pools/web/servers/a/ready", Some(TOKEN))
        .await;
    assert_eq!(status, 200, "{body}");
    a.set_mode(Mode::Delay(Duration::from_secs(3)));
    let parked = park_one_on_a(&gh, &c).await;
    let (status, body) = gh
        .admin(
            "POST",
            "/api/pools/web/servers/a/drain?wait=300ms",
            Some(TOKEN),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["in_flight"], 1);
    assert_eq!(body["drained"], false);
    for p in parked {
        assert_eq!(p.await.unwrap(), 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maint_stops_checks_and_traffic_and_ready_waits_for_a_passing_check() {
    let (a, _b, gh) = two_servers(true).await;
    let (status, _) = gh
        .admin("POST", "/api/pools/web/servers/a/maint", Some(TOKEN))
        .await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(150)).await;
    let checks = a.health_hits();
    a.reset();
    let c = client();
    for _ in 0..10 {
        assert_eq!(get(&c, &gh.url("/")).await, (200, "b".into()));
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(a.hits(), 0);
    assert!(
        a.health_hits() <= checks + 1,
        "health checks paused in maint"
    );

    // The server is failing when it is put back: it stays out of rotation.
    a.set_mode(Mode::Status(500));
    let (status, body) = gh
        .admin("POST", "/api/pools/web/servers/a/ready", Some(TOKEN))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["usable"], false, "{body}");
    tokio::time::sleep(Duration::from_millis(400)).await;
    for _ in 0..10 {
        assert_eq!(get(&c, &gh.url("/")).await, (200, "b".into()));
    }
    assert_eq!(a.hits(), 0, "a failing server is not routed to after ready");
    a.set_mode(Mode::Ok);
    wait_until(|| gh.server_healthy("web", "a")).await;
    let mut got_a = 0;
    for _ in 0..10 {
        got_a += usize::from(get(&c, &gh.url("/")).await.1 == "a");
    }
    assert_eq!(got_a, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_errors() {
    let (_a, _b, gh) = two_servers(false).await;
    let path = "/api/pools/web/servers/a/drain";
    assert_eq!(gh.admin("POST", path, None).await.0, 401);
    let (status, body) = gh.admin("POST", path, Some("wrong-token-0123456789")).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("wrong token")));
    assert_eq!(
        gh.admin("GET", "/api/pools", None).await.0,
        200,
        "reads are open on loopback"
    );
    let (status, body) = gh
        .admin("POST", "/api/pools/api/servers/a/drain", Some(TOKEN))
        .await;
    assert_eq!(status, 404);
    assert_eq!(body["pools"], serde_json::json!(["web"]));
    let (status, body) = gh
        .admin("POST", "/api/pools/web/servers/zz/drain", Some(TOKEN))
        .await;
    assert_eq!(status, 404);
    assert_eq!(body["servers"], serde_json::json!(["a", "b"]));
    let (status, _) = gh
        .admin("POST", "/api/pools/web/servers/a/explode", Some(TOKEN))
        .await;
    assert_eq!(status, 404);
    let (status, _) = gh
        .admin(
            "POST",
            "/api/pools/web/servers/a/drain?wait=soon",
            Some(TOKEN),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        gh.admin("DELETE", "/api/pools/web", Some(TOKEN)).await.0,
        405
    );
    let (_, s) = gh.admin("GET", "/api/pools/web/servers/a", None).await;
    assert_eq!(s["state"], "ready", "no failed call changed anything");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_state_survives_a_reload_and_a_restart() {
    let (a, b) = (Origin::start("a").await, Origin::start("b").await);
    let dir = state_dir();
    let config_path = dir.join("gatehouse.toml");
    let listen = free_port();
    let section = server_section_in(&dir);
    let write = |extra: &str| {
        std::fs::write(
            &config_path,
            format!(
                "{section}[[listeners]]\naddress = \"{listen}\"\n{}{extra}{ROUTE}",
                unchecked_pool("web", &[&a, &b])
            ),
        )
        .unwrap()
    };
    write("");
    let gh = boot_config(gatehouse::Config::load(&config_path).unwrap()).await;
    assert_eq!(
        admin_call(&gh, "POST", "/api/pools/web/servers/a/drain", Some(TOKEN))
            .await
            .0,
        200
    );
    // A reload (here: a retry count change) keeps the drain.
    write("[pools.web]\nretries = 2\n");
    gh.shared.reload_from(&config_path).unwrap();
    let (_, s) = admin_call(&gh, "GET", "/api/pools/web/servers/a", None).await;
    assert_eq!(s["state"], "drain");
    drop(gh);
    // A restart reads the state file.
    let gh = boot_config(gatehouse::Config::load(&config_path).unwrap()).await;
    let (_, s) = admin_call(&gh, "GET", "/api/pools/web/servers/a", None).await;
    assert_eq!(s["state"], "drain");
    let c = client();
    for _ in 0..6 {
        let r = c.get(format!("http://{listen}/")).send().await.unwrap();
        assert_eq!(r.text().await.unwrap(), "b");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctl_shows_status_and_changes_states() {
    let (a, b, gh) = two_servers(false).await;
    let (code, out, _) = ctl(gh.admin_address(), &["status"]);
    assert_eq!(code, 0);
    // The header, then one row per server: pool, name, address, state, health, counts.
    let rows: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let (a, b) = (a.addr.to_string(), b.addr.to_string());
    assert_eq!(
        rows,
        [
            vec![
                "POOL",
                "SERVER",
                "ADDRESS",
                "STATE",
                "HEALTH",
                "IN-FLIGHT",
                "REQUESTS"
            ],
            vec!["web", "a", &a, "ready", "unchecked", "0", "0"],
            vec!["web", "b", &b, "ready", "unchecked", "0", "0"],
        ],
        "{out}"
    );
    let (code, out, err) = ctl(gh.admin_address(), &["drain", "web", "a", "--wait", "5s"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("drained after"), "{out}");
    let (code, out, _) = ctl(gh.admin_address(), &["--json", "ready", "web", "a"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (v["state"].as_str(), v["previous_state"].as_str()),
        (Some("ready"), Some("drain"))
    );
    let (code, _, err) = ctl(gh.admin_address(), &["drain", "web", "nope"]);
    assert_eq!(code, 1);
    assert!(err.contains("unknown server"), "{err}");
}

/// The deploy scenario: a load loop runs through gatehouse while each server in turn is
/// drained (waiting), stopped, restarted and restored. No request may fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploying_each_server_under_load_fails_no_request() {
    let (mut a, mut b) = (Origin::start("a").await, Origin::start("b").await);
    let body = format!(
        "{}{}{ROUTE}",
        fast_health("web", 2, 1),
        servers("web", &[&a, &b])
    );
    let gh = boot(&body).await;
    gh.wait_healthy(Duration::from_secs(5)).await;
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut load = Vec::new();
    for _ in 0..4 {
        let (c, url, stop, ok, failed) = (
            client(),
            gh.url("/"),
            stop.clone(),
            ok.clone(),
            failed.clone(),
        );
        load.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(SeqCst) && n < 20_000 {
                n += 1;
                match c.get(&url).send().await {
                    Ok(r) if r.status() == 200 => ok.fetch_add(1, SeqCst),
                    _ => failed.fetch_add(1, SeqCst),
                };
            }
        }));
    }
    for origin in [&mut a, &mut b] {
        let name = origin.name.clone();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let path = format!("/api/pools/web/servers/{name}/drain?wait=10s");
        let (status, body) = gh.admin("POST", &path, Some(TOKEN)).await;
        assert_eq!(status, 200, "{body}");
        origin.stop().await; // the "deploy"
        tokio::time::sleep(Duration::from_millis(200)).await;
        origin.restart().await;
        let path = format!("/api/pools/web/servers/{name}/ready");
        assert_eq!(gh.admin("POST", &path, Some(TOKEN)).await.0, 200);
        wait_until(|| {
            gh.gh.shared.current().pools[0]
                .servers
                .iter()
                .all(|s| s.state.is_usable())
        })
        .await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, SeqCst);
    for l in load {
        l.await.unwrap();
    }
    let (ok, failed) = (ok.load(SeqCst), failed.load(SeqCst));
    assert_eq!(failed, 0, "{failed} failed requests out of {}", ok + failed);
    assert!(ok > 100, "the load ran: {ok}");
    assert_eq!(
        a.hits() + b.hits(),
        ok,
        "every request was counted by an origin"
    );
}

/// `ctl purge`, `ctl ban --prefix|--regex` and `ctl config` through the real binary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctl_purges_bans_and_shows_the_config() {
    let o = Origin::start("o").await;
    o.set_headers(&[("cache-control", "max-age=60")]);
    let gh = boot(&one_route(&[&o])).await;
    let host = gh.addr.to_string();
    let c = client();
    let x_cache = |path: &'static str| {
        let (c, url) = (c.clone(), gh.url(path));
        async move {
            let r = c.get(url).send().await.unwrap();
            r.headers()["x-cache"].to_str().unwrap().to_string()
        }
    };
    for p in ["/a?x=1", "/img/1.png", "/img/2.png", "/css/s.css", "/keep"] {
        let url = gh.url(p);
        c.get(url).send().await.unwrap();
    }
    assert_eq!(x_cache("/a?x=1").await, "HIT");
    let (code, out, err) = ctl(gh.admin_address(), &["purge", &host, "/a?x=1"]);
    assert_eq!((code, out.trim()), (0, "removed 1 object(s)"), "{err}");
    assert_eq!(x_cache("/a?x=1").await, "MISS");
    let (code, out, _) = ctl(gh.admin_address(), &["ban", &host, "--prefix", "/img/"]);
    assert_eq!((code, out.trim()), (0, "removed 2 object(s)"));
    let (code, out, _) = ctl(gh.admin_address(), &["ban", "*", "--regex", r"\.css$"]);
    assert_eq!((code, out.trim()), (0, "removed 1 object(s)"));
    assert_eq!(x_cache("/keep").await, "HIT", "nothing else went");
    let (code, _, err) = ctl(gh.admin_address(), &["ban", &host]);
    assert_ne!(code, 0, "ban needs --prefix or --regex");
    assert!(err.contains("--prefix") || err.contains("--regex"), "{err}");
    let (code, out, _) = ctl(gh.admin_address(), &["config"]);
    assert_eq!(code, 0);
    let checksum = &gh.gh.shared.current().config.source.checksum;
    assert!(out.contains(&format!("checksum:   {checksum}")), "{out}");
    assert!(out.contains("generation: 0"), "{out}");
}
