//! What reaches the server: forwarded headers, and upstream connection reuse.

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_headers_reach_the_server() {
    let a = Origin::start("a").await;
    let gh = boot(&one_route(&[&a])).await;
    let c = client();
    let r = c
        .get(gh.url("/page?q=1"))
        .header("Host", "www.example.test")
        .header("X-Forwarded-For", "203.0.113.9")
        .header("X-Forwarded-Proto", "https")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let seen = a.seen();
    let h = &seen[0].headers;
    assert_eq!(h["x-forwarded-for"], "203.0.113.9, 127.0.0.1");
    assert_eq!(
        h["x-forwarded-proto"], "http",
        "a client cannot claim https"
    );
    assert_eq!(h["x-forwarded-host"], "www.example.test");
    assert_eq!(h["host"], "www.example.test");
    assert_eq!(seen[0].path, "/page");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_connections_are_reused() {
    let a = Origin::start("a").await;
    let gh = boot(&one_route(&[&a])).await;
    let c = client();
    for _ in 0..30 {
        assert_eq!(get(&c, &gh.url("/")).await.0, 200);
    }
    assert_eq!(a.hits(), 30);
    assert!(
        a.connections() <= 3,
        "{} connections for 30 requests",
        a.connections()
    );
}
