//! Retry on connect refusal, and the 502 / 503 / 504 answers.

use crate::common::*;
use std::time::Duration;

fn pool_with_dead_server(live: &Origin, retries: u32) -> String {
    format!(
        "[pools.web]\nretries = {retries}\n[pools.web.health]\nenabled = false\n\
         [[pools.web.servers]]\nname = \"dead\"\naddress = \"{}\"\n\
         [[pools.web.servers]]\nname = \"live\"\naddress = \"{}\"\n\
         [[routes]]\npool = \"web\"\n",
        free_port(),
        live.addr
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_refusal_is_retried_on_another_server() {
    let live = Origin::start("live").await;
    let gh = boot(&pool_with_dead_server(&live, 1)).await;
    let c = client();
    for _ in 0..20 {
        assert_eq!(get(&c, &gh.url("/")).await, (200, "live".into()));
    }
    // A POST is retried too: nothing reached the refusing server.
    let r = c.post(gh.url("/submit")).body("x").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(live.hits(), 21);
    let rt = gh.gh.shared.current();
    let dead = &rt.pools[0].servers[0];
    assert!(dead.state.connect_failures() >= 10);
    assert_eq!(
        dead.state.inflight(),
        0,
        "guard released on the failed attempt"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_retries_a_refused_connect_is_a_502() {
    let live = Origin::start("live").await;
    let gh = boot(&pool_with_dead_server(&live, 0)).await;
    let c = client();
    let mut statuses = Vec::new();
    for _ in 0..10 {
        statuses.push(get(&c, &gh.url("/")).await);
    }
    let bad: Vec<_> = statuses.iter().filter(|s| s.0 == 502).collect();
    assert_eq!(bad.len(), 5, "{statuses:?}");
    assert!(bad[0].1.contains("no server answered"), "{}", bad[0].1);
    assert_eq!(live.hits(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_server_refusing_is_a_502() {
    let body = format!(
        "[pools.web.health]\nenabled = false\n\
         [[pools.web.servers]]\naddress = \"{}\"\n[[pools.web.servers]]\naddress = \"{}\"\n\
         [[routes]]\npool = \"web\"\n",
        free_port(),
        free_port()
    );
    let gh = boot(&body).await;
    let (status, text) = get(&client(), &gh.url("/")).await;
    assert_eq!(status, 502);
    assert!(text.contains("no server answered"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_usable_server_is_a_503() {
    let a = Origin::start("a").await;
    let body = format!(
        "{}{}[[routes]]\npool = \"web\"\n",
        fast_health("web", 1, 1),
        servers("web", &[&a])
    );
    let gh = boot(&body).await;
    gh.wait_healthy(Duration::from_secs(5)).await;
    a.set_mode(Mode::Status(500));
    wait_until(|| !gh.server_healthy("web", "a")).await;
    a.reset();
    let (status, text) = get(&client(), &gh.url("/")).await;
    assert_eq!(status, 503);
    assert!(text.contains("no server is available"), "{text}");
    assert_eq!(a.hits(), 0, "a down server is not asked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_does_not_answer_in_time_is_a_504() {
    let a = Origin::start("a").await;
    a.set_mode(Mode::Hang);
    let body = format!(
        "[timeouts]\nupstream_read = \"300ms\"\n{}",
        one_route(&[&a])
    );
    let gh = boot(&body).await;
    let started = std::time::Instant::now();
    let (status, text) = get(&client(), &gh.url("/")).await;
    assert_eq!(status, 504);
    assert!(text.contains("did not answer in time"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(a.hits(), 1, "a timed-out request is not retried elsewhere");
    assert_eq!(gh.in_flight("web", "a"), 0);
}
