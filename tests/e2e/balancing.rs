//! Round robin (plain and weighted), least connections, consistent hashing, backups.

use crate::common::*;
use std::collections::HashMap;
use std::time::Duration;

const ROUTE: &str = "[[routes]]\npool = \"web\"\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_spreads_requests_evenly() {
    let (a, b) = (Origin::start("a").await, Origin::start("b").await);
    let gh = boot(&format!("{}{ROUTE}", unchecked_pool("web", &[&a, &b]))).await;
    let c = client();
    for _ in 0..100 {
        assert_eq!(get(&c, &gh.url("/")).await.0, 200);
    }
    assert_eq!((a.hits(), b.hits()), (50, 50));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weighted_round_robin_follows_weights() {
    let (a, b) = (Origin::start("a").await, Origin::start("b").await);
    let body = format!(
        "[pools.web.health]\nenabled = false\n\
         [[pools.web.servers]]\nname = \"a\"\naddress = \"{}\"\nweight = 3\n\
         [[pools.web.servers]]\nname = \"b\"\naddress = \"{}\"\nweight = 1\n{ROUTE}",
        a.addr, b.addr
    );
    let gh = boot(&body).await;
    let c = client();
    let mut order = String::new();
    for _ in 0..100 {
        order.push_str(&get(&c, &gh.url("/")).await.1);
    }
    assert_eq!((a.hits(), b.hits()), (75, 25));
    // Smooth: b is interleaved, never four a's in a row.
    assert!(!order.contains("aaaa"), "{order}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_conn_prefers_the_idle_server() {
    let (a, b) = (Origin::start("a").await, Origin::start("b").await);
    let body = format!(
        "[pools.web]\nbalance = \"least_conn\"\n{}{ROUTE}",
        unchecked_pool("web", &[&a, &b])
    );
    let gh = boot(&body).await;
    a.set_mode(Mode::Delay(Duration::from_secs(3)));
    let c = client();
    // Park slow requests on a: keep sending until one is in flight there.
    let mut parked = Vec::new();
    for i in 0..10 {
        // Distinct URLs: requests for one URL would queue behind its cache lock.
        let (c, url) = (c.clone(), gh.url(&format!("/slow{i}")));
        parked.push(tokio::spawn(async move {
            c.get(url).send().await.map(|r| r.status().as_u16())
        }));
        tokio::time::sleep(Duration::from_millis(50)).await;
        if gh.in_flight("web", "a") >= 1 {
            break;
        }
    }
    assert_eq!(
        gh.in_flight("web", "a"),
        1,
        "one slow request should be parked on a"
    );
    let before = (a.hits(), b.hits());
    for i in 0..20 {
        assert_eq!(
            get(&c, &gh.url(&format!("/fast{i}"))).await,
            (200, "b".into())
        );
    }
    assert_eq!((a.hits(), b.hits()), (before.0, before.1 + 20));
    for p in parked {
        assert_eq!(p.await.unwrap().unwrap(), 200);
    }
    // The guard drops when pingora finishes the request, just after the client has its answer.
    wait_until(|| gh.in_flight("web", "a") == 0).await;
}

async fn owners(c: &reqwest::Client, url: &str, keys: usize) -> HashMap<usize, String> {
    let mut m = HashMap::new();
    for k in 0..keys {
        let r = c
            .get(url)
            .header("X-Key", format!("user-{k}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        m.insert(k, r.text().await.unwrap());
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consistent_hash_keeps_keys_and_moves_few_when_a_server_leaves() {
    let o: Vec<Origin> = futures_join(["a", "b", "c", "d"]).await;
    let refs: Vec<&Origin> = o.iter().collect();
    let body = format!(
        "[pools.web]\nbalance = \"hash\"\nhash_key = \"header:X-Key\"\n{}{}{ROUTE}",
        fast_health("web", 1, 1),
        servers("web", &refs)
    );
    let gh = boot(&body).await;
    gh.wait_healthy(Duration::from_secs(5)).await;
    let c = client();
    let first = owners(&c, &gh.url("/"), 400).await;
    assert_eq!(
        first,
        owners(&c, &gh.url("/"), 400).await,
        "same key, same server"
    );
    let per_server = |m: &HashMap<usize, String>, s: &str| m.values().filter(|v| *v == s).count();
    for name in ["a", "b", "c", "d"] {
        assert!(
            per_server(&first, name) > 40,
            "{name} owns too few keys: {first:?}"
        );
    }
    // c leaves (its health check fails).
    o[2].set_mode(Mode::Status(500));
    for _ in 0..50 {
        if !gh.server_healthy("web", "c") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!gh.server_healthy("web", "c"));
    let after = owners(&c, &gh.url("/"), 400).await;
    let moved: Vec<_> = (0..400).filter(|k| first[k] != after[k]).collect();
    assert!(moved.iter().all(|k| first[k] == "c"), "only c's keys move");
    assert_eq!(moved.len(), per_server(&first, "c"));
    assert!(
        (40..=160).contains(&moved.len()),
        "about 1/4 of keys move: {}",
        moved.len()
    );
}

async fn futures_join<const N: usize>(names: [&str; N]) -> Vec<Origin> {
    let mut v = Vec::new();
    for n in names {
        v.push(Origin::start(n).await);
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_is_used_only_when_no_primary_is_usable() {
    let (a, b, spare) = (
        Origin::start("a").await,
        Origin::start("b").await,
        Origin::start("spare").await,
    );
    let body = format!(
        "{}{}[[pools.web.servers]]\nname = \"spare\"\naddress = \"{}\"\nbackup = true\n{ROUTE}",
        fast_health("web", 1, 1),
        servers("web", &[&a, &b]),
        spare.addr
    );
    let gh = boot(&body).await;
    gh.wait_healthy(Duration::from_secs(5)).await;
    let c = client();
    for _ in 0..20 {
        assert_eq!(get(&c, &gh.url("/")).await.0, 200);
    }
    assert_eq!(spare.hits(), 0);
    a.set_mode(Mode::Status(500));
    wait_until(|| !gh.server_healthy("web", "a")).await;
    for _ in 0..10 {
        assert_eq!(get(&c, &gh.url("/")).await, (200, "b".into()));
    }
    assert_eq!(spare.hits(), 0, "one primary left: backup still idle");
    b.set_mode(Mode::Status(500));
    wait_until(|| !gh.server_healthy("web", "b")).await;
    for _ in 0..10 {
        assert_eq!(get(&c, &gh.url("/")).await, (200, "spare".into()));
    }
    a.set_mode(Mode::Ok);
    wait_until(|| gh.server_healthy("web", "a")).await;
    let spare_hits = spare.hits();
    for _ in 0..10 {
        assert_eq!(get(&c, &gh.url("/")).await, (200, "a".into()));
    }
    assert_eq!(spare.hits(), spare_hits);
}
