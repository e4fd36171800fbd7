//! Slow start: a server made ready again takes a share growing from 0 to its weight's over
//! `slowstart`, in every balance mode, visible in `/api/pools` and `/metrics`.

use crate::common::*;
use std::time::{Duration, Instant};

/// Long enough that a loaded machine still reads the ramp and sends its first requests well
/// inside it.
const SPAN: Duration = Duration::from_secs(3);
const DRAIN: &str = "/api/pools/web/servers/b/drain";
const READY: &str = "/api/pools/web/servers/b/ready";

/// The most of the ramp that can have run by now, for a ramp begun after `asked`.
fn ramp_fraction(asked: Instant) -> f64 {
    (asked.elapsed().as_secs_f64() / SPAN.as_secs_f64()).min(1.0)
}

/// Sends requests one after another until `done(count)` (hash pools get a distinct key each)
/// and returns the share that went to server "b".
async fn share_of_b(gh: &Proxy, round: usize, done: impl Fn(usize) -> bool) -> f64 {
    let c = client();
    let (mut b, mut i) = (0, 0);
    while !done(i) {
        i += 1;
        let r = c
            .get(gh.url("/"))
            .header("x-key", format!("key-{round}-{i}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        if r.text().await.unwrap() == "b" {
            b += 1;
        }
    }
    b as f64 / i as f64
}

async fn server_b(gh: &Proxy) -> serde_json::Value {
    let (status, v) = gh
        .admin("GET", "/api/pools/web/servers/b", Some(TOKEN))
        .await;
    assert_eq!(status, 200, "{v}");
    v
}

async fn ramps_back_in(balance: &str) {
    let (a, b) = (Origin::start("a").await, Origin::start("b").await);
    let hash_key = if balance == "hash" {
        "hash_key = \"header:x-key\"\n"
    } else {
        ""
    };
    let body = format!(
        "[pools.web]\nbalance = \"{balance}\"\n{hash_key}slowstart = \"{}ms\"\n{}[[routes]]\npool = \"web\"\n",
        SPAN.as_millis(),
        unchecked_pool("web", &[&a, &b]),
    );
    let gh = boot(&body).await;
    // Both usable from the start: no ramp, an even split.
    assert_eq!(server_b(&gh).await["effective_weight"], 1.0);
    let even = share_of_b(&gh, 0, |n| n == 200).await;
    assert!(
        (0.35..=0.65).contains(&even),
        "{balance}: b's share at start {even}"
    );

    assert_eq!(gh.admin("POST", DRAIN, Some(TOKEN)).await.0, 200);
    // The ramp begins during the ready call: at any later moment it has run at most the time
    // since `asked`, whatever this machine's load; each reading is bounded by that.
    let asked = Instant::now();
    assert_eq!(gh.admin("POST", READY, Some(TOKEN)).await.0, 200);
    let back = Instant::now();
    let view = server_b(&gh).await;
    let ran = ramp_fraction(asked);
    let w = view["effective_weight"].as_f64().unwrap();
    assert!(
        w <= ran + 0.01,
        "{balance}: weight {w} after {ran} of the ramp: {view}"
    );
    assert!(ran < 1.0, "{balance}: the ramp was over before it was read");
    let left = view["slowstart_remaining_ms"].as_u64().unwrap();
    let ran_ms = SPAN.as_millis() as f64 * ran;
    assert!(
        left as f64 >= SPAN.as_millis() as f64 - ran_ms - 5.0,
        "{balance}: {left} ms left after {ran_ms} ms: {view}"
    );
    let m = metrics_text(gh.gh.shared.current().config.admin.address).await;
    let series = parse_metrics(&m);
    let key = "gatehouse_server_weight{pool=\"web\",server=\"b\"}";
    let ran = ramp_fraction(asked);
    assert!(
        series[key] <= ran + 0.01,
        "{balance}: {key} = {} at {ran}",
        series[key]
    );

    // The first quarter of the ramp.
    let early = share_of_b(&gh, 1, |n| n >= 100 && back.elapsed() >= SPAN / 4).await;
    // The most the ramp can have reached by the end of those requests, and the share that
    // gives b (its weight f against a's 1), plus room for sequence effects.
    let f = ramp_fraction(asked);
    let bound = f / (1.0 + f) + 0.08;
    assert!(
        early < bound,
        "{balance}: b took {early} of the requests in the first {f} of its ramp (bound {bound})"
    );
    assert!(
        f < 1.0,
        "{balance}: the ramp was over before 100 requests were sent"
    );
    assert!(
        early > 0.0,
        "{balance}: a ramp starts from 0 but grows: b got nothing"
    );

    tokio::time::sleep(SPAN.saturating_sub(back.elapsed()) + Duration::from_millis(200)).await;
    let view = server_b(&gh).await;
    assert_eq!(view["effective_weight"], 1.0, "{view}");
    assert!(view.get("slowstart_remaining_ms").is_none(), "{view}");
    let after = share_of_b(&gh, 2, |n| n == 200).await;
    assert!(
        (0.35..=0.65).contains(&after),
        "{balance}: b's share after the ramp {after}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_ramps_a_returning_server() {
    ramps_back_in("round_robin").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_conn_ramps_a_returning_server() {
    ramps_back_in("least_conn").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hash_ramps_a_returning_server() {
    ramps_back_in("hash").await;
}
