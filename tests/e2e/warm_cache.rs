//! A cache that stays warm (`src/cache/snapshot.rs`): written at a graceful stop or a binary
//! upgrade, read back at start; the objects' ages carry over; partial, corrupt and foreign
//! snapshots are refused whole. gatehouse runs as its own process, as an operator runs it.

use crate::common::cache::fetch;
use crate::common::process::{exits, pool_of, signal, spawn_gatehouse, wait_listening, ConfigFile};
use crate::common::*;
use std::time::Duration;

async fn exited(child: &mut Reap) {
    assert!(
        exits(child, Duration::from_secs(10)).await,
        "gatehouse did not exit"
    );
}

/// The `/api/cache` view's snapshot part.
async fn snapshot_view(admin: std::net::SocketAddr) -> serde_json::Value {
    let v: serde_json::Value = client()
        .get(format!("http://{admin}/api/cache"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["snapshot"].clone()
}

/// Waits until the started process has read its snapshot (or refused it).
async fn snapshot_read(admin: std::net::SocketAddr) -> serde_json::Value {
    for _ in 0..100 {
        let s = snapshot_view(admin).await;
        if s["loaded_objects"].as_u64() > Some(0) || s["refused"] == true {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    snapshot_view(admin).await
}

async fn start(cf: &ConfigFile, upgrade: bool, log: &str) -> Reap {
    let child = Reap(spawn_gatehouse(
        &cf.path,
        upgrade,
        &cf.path.with_extension(log),
    ));
    if !upgrade {
        wait_listening(cf.listen).await;
        wait_listening(cf.admin()).await;
    }
    child
}

fn cached_config(o: &Origin) -> String {
    pool_of(&[o], "") + "[routes.cache]\n"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_survives_a_stop_and_start_with_its_ages() {
    let o = Origin::start("o").await;
    o.set_headers(&[("cache-control", "max-age=60")]);
    let cf = ConfigFile::new();
    cf.write(&cached_config(&o));
    let url = |p: &str| format!("http://{}{p}", cf.listen);
    let c = client();
    let mut gh = start(&cf, false, "1.log").await;
    for p in ["/a", "/b", "/c"] {
        assert_eq!(fetch(&c, &url(p), &[]).await.x_cache, "MISS");
    }
    assert_eq!(o.hits(), 3);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    signal(&gh.0, "-TERM");
    exited(&mut gh).await;
    assert!(
        cf.path.with_file_name("cache.snapshot").exists(),
        "written at stop"
    );

    let _gh = start(&cf, false, "2.log").await;
    let s = snapshot_read(cf.admin()).await;
    assert_eq!(s["loaded_objects"], 3, "{s}");
    for p in ["/a", "/b", "/c"] {
        let got = fetch(&c, &url(p), &[]).await;
        assert_eq!(got.x_cache, "HIT", "{p}");
        assert!(
            got.age >= Some(1),
            "{p}: the age carried over: {:?}",
            got.age
        );
    }
    assert_eq!(o.hits(), 3, "nothing fetched again");
    assert!(
        !cf.path.with_file_name("cache.snapshot").exists(),
        "read once: a crash later does not bring back what was purged since"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_corrupt_and_foreign_snapshots_are_refused_whole() {
    let o = Origin::start("o").await;
    o.set_headers(&[("cache-control", "max-age=60")]);
    let cf = ConfigFile::new();
    cf.write(&cached_config(&o));
    let snapshot = cf.path.with_file_name("cache.snapshot");
    let c = client();
    let mut gh = start(&cf, false, "0.log").await;
    for p in ["/a", "/b"] {
        fetch(&c, &format!("http://{}{p}", cf.listen), &[]).await;
    }
    signal(&gh.0, "-TERM");
    exited(&mut gh).await;
    let good = std::fs::read(&snapshot).unwrap();
    let mut flipped = good.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x40;
    let cases: [(&str, Vec<u8>, &str); 4] = [
        ("truncated", good[..good.len() - 9].to_vec(), ""),
        ("a flipped byte", flipped, ""),
        ("garbage", b"this is no snapshot at all".to_vec(), ""),
        // The same objects, for a config whose keys are made otherwise.
        ("another key layout", good.clone(), "ignore_query = true\n"),
    ];
    for (what, bytes, cache_rules) in cases {
        o.reset();
        cf.write(&format!("{}{cache_rules}", cached_config(&o)));
        std::fs::write(&snapshot, bytes).unwrap();
        let mut gh = start(&cf, false, "n.log").await;
        let s = snapshot_read(cf.admin()).await;
        assert_eq!(
            (s["refused"].clone(), s["loaded_objects"].clone()),
            (true.into(), 0.into()),
            "{what}: {s}"
        );
        let got = fetch(&c, &format!("http://{}/a", cf.listen), &[]).await;
        assert_eq!(got.x_cache, "MISS", "{what}: nothing of it is served");
        signal(&gh.0, "-INT"); // a fast stop writes no snapshot
        exited(&mut gh).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binary_upgrade_hands_the_cache_over() {
    let o = Origin::start("o").await;
    o.set_headers(&[("cache-control", "max-age=60")]);
    let cf = ConfigFile::new();
    cf.write(&cached_config(&o));
    let url = |p: &str| format!("http://{}{p}", cf.listen);
    let c = client();
    let mut old = start(&cf, false, "old.log").await;
    for p in ["/x", "/y"] {
        assert_eq!(fetch(&c, &url(p), &[]).await.x_cache, "MISS");
    }
    let _new = start(&cf, true, "new.log").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    signal(&old.0, "-QUIT");
    exited(&mut old).await;
    let s = snapshot_read(cf.admin()).await;
    assert_eq!(s["loaded_objects"], 2, "{s}");
    for p in ["/x", "/y"] {
        assert_eq!(fetch(&c, &url(p), &[]).await.x_cache, "HIT", "{p}");
    }
    assert_eq!(o.hits(), 2, "the new process fetched nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_off_writes_nothing() {
    let o = Origin::start("o").await;
    o.set_headers(&[("cache-control", "max-age=60")]);
    let cf = ConfigFile::new();
    cf.write(&format!(
        "[cache]\nsnapshot = \"off\"\n{}",
        cached_config(&o)
    ));
    let mut gh = start(&cf, false, "1.log").await;
    fetch(&client(), &format!("http://{}/a", cf.listen), &[]).await;
    signal(&gh.0, "-TERM");
    exited(&mut gh).await;
    assert!(!cf.path.with_file_name("cache.snapshot").exists());
}

/// The `gatehouse_cache_events_total` count of `event` on a node.
async fn cache_event(admin: std::net::SocketAddr, event: &str) -> f64 {
    let series = format!("gatehouse_cache_events_total{{event=\"{event}\"}}");
    parse_metrics(&metrics_text(admin).await)
        .get(&series)
        .copied()
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hot_spare_copies_the_active_nodes_hottest_objects_from_it() {
    let o = Origin::start("o").await;
    o.set_headers(&[("cache-control", "max-age=60")]);
    let active = crate::common::cache::cached(&o, "", "").await;
    let c = client();
    for p in ["/hot1", "/hot2", "/hot1"] {
        for _ in 0..2 {
            fetch(&c, &active.url(p), &[]).await;
        }
    }
    // Stored, never hit: not hot, not copied.
    fetch(&c, &active.url("/cold"), &[]).await;
    assert_eq!(o.hits(), 3);
    let spare = crate::common::cache::cached(
        &o,
        "",
        &format!(
            "peers = [\"{}\"]\nwarm = true\nwarm_interval = \"100ms\"\n",
            active.admin_address()
        ),
    )
    .await;
    let admin = spare.admin_address();
    for _ in 0..100 {
        if cache_event(admin, "warmed").await >= 2.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(cache_event(admin, "warmed").await, 2.0);
    for p in ["/hot1", "/hot2"] {
        assert_eq!(fetch(&c, &spare.url(p), &[]).await.x_cache, "HIT", "{p}");
    }
    assert_eq!(o.hits(), 3, "the spare fetched nothing from the server");
    assert_eq!(fetch(&c, &spare.url("/cold"), &[]).await.x_cache, "MISS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn siblings_answer_each_others_misses() {
    let o = Origin::start("o").await;
    o.set_headers(&[("cache-control", "max-age=60"), ("vary", "Accept-Language")]);
    let a = crate::common::cache::cached(&o, "", "").await;
    let b = crate::common::cache::cached(
        &o,
        "",
        &format!("peers = [\"{}\"]\nsiblings = true\n", a.admin_address()),
    )
    .await;
    let c = client();
    let en = [("accept-language", "en")];
    assert_eq!(fetch(&c, &a.url("/s"), &en).await.x_cache, "MISS");
    assert_eq!(fetch(&c, &b.url("/s"), &en).await.x_cache, "HIT");
    assert_eq!(o.hits(), 1, "one fetch for both nodes");
    assert_eq!(cache_event(b.admin_address(), "from_sibling").await, 1.0);
    // Another variant than the sibling's copy: checked like a server's answer, not taken.
    let fr = [("accept-language", "fr")];
    assert_eq!(fetch(&c, &a.url("/t"), &en).await.x_cache, "MISS");
    assert_eq!(fetch(&c, &b.url("/t"), &fr).await.x_cache, "MISS");
    assert_eq!(o.hits(), 3);
    assert_eq!(cache_event(b.admin_address(), "from_sibling").await, 1.0);
    // A purge here keeps the sibling's older copy out.
    let r = client()
        .post(format!("http://{}/api/cache/purge", b.admin_address()))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"host": b.addr.to_string(), "path": "/s"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(fetch(&c, &b.url("/s"), &en).await.x_cache, "MISS");
    assert_eq!(o.hits(), 4, "fetched again, not copied back");
    assert_eq!(fetch(&c, &a.url("/s"), &en).await.x_cache, "HIT");
    // A sibling that is down costs the request nothing but its timeout.
    drop(a);
    assert_eq!(fetch(&c, &b.url("/u"), &en).await.x_cache, "MISS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_need_the_token_even_on_loopback() {
    let o = Origin::start("o").await;
    o.set_headers(&[("cache-control", "max-age=60")]);
    let gh = crate::common::cache::cached(&o, "", &format!("peer_token = \"{PEER_TOKEN}\"")).await;
    let admin = gh.admin_address();
    for path in [
        "/api/cache/hot",
        "/api/cache/objects/00112233445566778899aabbccddeeff",
    ] {
        let r = client()
            .get(format!("http://{admin}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{path}");
        for token in [TOKEN, PEER_TOKEN] {
            let r = client()
                .get(format!("http://{admin}{path}"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            // Without the asker's key layout, no object is handed out.
            let want = if path.ends_with("hot") { 200 } else { 409 };
            assert_eq!(r.status(), want, "{path}");
        }
    }
    // The peers' token opens nothing else.
    let r = client()
        .post(format!("http://{admin}/api/cache/purge"))
        .bearer_auth(PEER_TOKEN)
        .json(&serde_json::json!({"host": gh.addr.to_string(), "path": "/"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

const PEER_TOKEN: &str = "peer-token-0123456789";

/// A node of a pair of siblings, its admin API on `admin`, the other's on `other`.
async fn sibling(o: &Origin, admin: std::net::SocketAddr, other: std::net::SocketAddr) -> Proxy {
    let section = server_section();
    let own = section
        .split("[admin]\naddress = \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_string();
    let addr = free_port();
    // Each its own admin token: they ask each other with the fleet's peer token.
    let section = section
        .replace(&own, &admin.to_string())
        .replace(TOKEN, &format!("{TOKEN}-{}", admin.port()));
    let toml = format!(
        "{section}[[listeners]]\naddress = \"{addr}\"\n\n[cache]\npeers = [\"{other}\"]\nsiblings = true\npeer_token = \"{PEER_TOKEN}\"\n\n{}[routes.cache]\n",
        one_route(&[o])
    );
    let config = gatehouse::config::Config::from_toml(&toml, "test").unwrap();
    Proxy {
        gh: boot_config(config).await,
        addr,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn siblings_missing_at_once_fetch_once() {
    let o = Origin::start("o").await;
    o.set_headers(&[("cache-control", "max-age=60")]);
    o.set_mode(Mode::Delay(Duration::from_millis(600)));
    let (admin_a, admin_b) = (free_port(), free_port());
    let a = sibling(&o, admin_a, admin_b).await;
    let b = sibling(&o, admin_b, admin_a).await;
    let c = client();
    for (i, (first, second)) in [(&a, &b), (&b, &a), (&a, &b)].into_iter().enumerate() {
        let path = format!("/at-once-{i}");
        let (url_one, url_two) = (first.url(&path), second.url(&path));
        let (one, two) = tokio::join!(fetch(&c, &url_one, &[]), async {
            // While the first node fetches from the server.
            tokio::time::sleep(Duration::from_millis(150)).await;
            fetch(&c, &url_two, &[]).await
        });
        assert_eq!((one.status, two.status), (200, 200));
        assert_eq!(one.x_cache, "MISS");
        assert_eq!(two.x_cache, "HIT", "the second took the first one's copy");
        assert_eq!(o.hits(), i + 1, "one fetch from the server between the two");
    }
    let copied =
        cache_event(admin_a, "from_sibling").await + cache_event(admin_b, "from_sibling").await;
    assert_eq!(copied, 3.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sibling_that_does_not_answer_is_left_alone_for_a_while() {
    let o = Origin::start("o").await;
    o.set_headers(&[("cache-control", "max-age=60")]);
    // Accepts, and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let peer = silent.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut conns = Vec::new();
        while let Ok((c, _)) = silent.accept().await {
            conns.push(c);
        }
    });
    let gh = crate::common::cache::cached(
        &o,
        "",
        &format!("peers = [\"{peer}\"]\nsiblings = true\nsibling_timeout = \"2s\"\n"),
    )
    .await;
    let c = client();
    let started = std::time::Instant::now();
    assert_eq!(fetch(&c, &gh.url("/first"), &[]).await.x_cache, "MISS");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "the sibling was waited for"
    );
    let started = std::time::Instant::now();
    assert_eq!(fetch(&c, &gh.url("/second"), &[]).await.x_cache, "MISS");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "not asked again at once: {:?}",
        started.elapsed()
    );
    held.abort();
}
