//! The cache, one test per rule, with origins that count what reaches them.

use crate::common::cache::{cached, fetch};
use crate::common::*;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant, SystemTime};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_miss_then_a_hit_with_age() {
    let o = Origin::start("o").await;
    o.set_headers(&[("cache-control", "public, max-age=60")]);
    let gh = cached(&o, "", "").await;
    let c = client();
    let first = fetch(&c, &gh.url("/page"), &[]).await;
    assert_eq!((first.status, first.x_cache.as_str()), (200, "MISS"));
    let second = fetch(&c, &gh.url("/page"), &[]).await;
    assert_eq!(
        (second.x_cache.as_str(), second.body.as_str()),
        ("HIT", "o")
    );
    assert!(second.age.is_some(), "a hit carries Age");
    assert_eq!(o.hits(), 1);
    // Counted when pingora finishes the request, just after the client has its answer.
    let rt = gh.gh.shared.current();
    let counters = &rt.cache.counters;
    wait_until(|| counters.hits.load(Relaxed) == 1).await;
    assert_eq!(
        (counters.hits.load(Relaxed), counters.misses.load(Relaxed)),
        (1, 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookies_and_authorization_pass_unless_the_cookie_is_ignored() {
    let o = Origin::start("o").await;
    o.set_headers(&[("cache-control", "public, max-age=60")]);
    let gh = cached(&o, "ignore_cookies = [\"_ga\"]", "").await;
    let c = client();
    for headers in [[("cookie", "session=abc")], [("authorization", "Bearer x")]] {
        o.reset();
        for _ in 0..2 {
            assert_eq!(fetch(&c, &gh.url("/p"), &headers).await.x_cache, "PASS");
        }
        assert_eq!(o.hits(), 2, "{headers:?} passes to the server every time");
    }
    o.reset();
    assert_eq!(
        fetch(&c, &gh.url("/q"), &[("cookie", "_ga=1")])
            .await
            .x_cache,
        "MISS"
    );
    assert_eq!(
        fetch(&c, &gh.url("/q"), &[("cookie", "_ga=2")])
            .await
            .x_cache,
        "HIT"
    );
    assert_eq!(o.hits(), 1);
    assert!(
        o.seen()[0].headers.get("cookie").is_none(),
        "the ignored cookie was removed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn personal_or_forbidden_responses_are_not_stored() {
    let o = Origin::start("o").await;
    let gh = cached(&o, "default_ttl = \"60s\"", "").await;
    let c = client();
    for (i, headers) in [
        vec![("cache-control", "max-age=60"), ("set-cookie", "id=1")],
        vec![("cache-control", "private, max-age=60")],
        vec![("cache-control", "no-store")],
        vec![("cache-control", "no-cache, max-age=60")],
        vec![("cache-control", "max-age=60"), ("vary", "*")],
    ]
    .into_iter()
    .enumerate()
    {
        o.set_headers(&headers);
        o.reset();
        let url = gh.url(&format!("/r{i}"));
        fetch(&c, &url, &[]).await;
        let again = fetch(&c, &url, &[]).await;
        assert_ne!(again.x_cache, "HIT", "{headers:?}");
        assert_eq!(o.hits(), 2, "{headers:?} must not be stored");
    }
    // Set-Cookie never reaches a second client from the cache.
    let stored = gh.gh.shared.current().cache.usage().1;
    assert_eq!(stored, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_ttl_source_is_honoured() {
    let o = Origin::start("o").await;
    let gh = cached(&o, "max_ttl = \"2s\"", "").await;
    let c = client();
    let expires = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(60));
    let date = httpdate::fmt_http_date(SystemTime::now());
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, bool);
    let cases: Vec<Case> = vec![
        // s-maxage wins over max-age=0
        (
            "/smax",
            vec![("cache-control", "max-age=0, s-maxage=60")],
            true,
        ),
        ("/max", vec![("cache-control", "max-age=60")], true),
        (
            "/expires",
            vec![("expires", expires.as_str()), ("date", date.as_str())],
            true,
        ),
        // no freshness information and default_ttl 0: not stored
        ("/none", vec![], false),
    ];
    for (path, headers, stored) in &cases {
        o.set_headers(headers);
        fetch(&c, &gh.url(path), &[]).await;
        let again = fetch(&c, &gh.url(path), &[]).await;
        assert_eq!(again.x_cache == "HIT", *stored, "{path}");
    }
    // max_ttl = 2s caps max-age=60: expired after 2 s.
    tokio::time::sleep(Duration::from_millis(2300)).await;
    o.set_headers(&[("cache-control", "max-age=60")]);
    let hits = o.hits();
    let got = fetch(&c, &gh.url("/max"), &[]).await;
    assert_eq!(
        (got.status, got.x_cache.as_str(), got.body.as_str()),
        (200, "STALE", "o"),
        "no longer fresh: served in grace while it is fetched again"
    );
    wait_until(|| o.hits() == hits + 1).await;

    // default_ttl gives a TTL to responses without one.
    let o2 = Origin::start("o2").await;
    let gh2 = cached(&o2, "default_ttl = \"60s\"", "").await;
    fetch(&c, &gh2.url("/d"), &[]).await;
    assert_eq!(fetch(&c, &gh2.url("/d"), &[]).await.x_cache, "HIT");
    assert_eq!(o2.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn virtual_hosts_never_share_an_object_over_http2() {
    use crate::common::certs::{cert_entries, Ca};
    let (ca, dir) = (Ca::new(), state_dir());
    let leaf = ca.issue(&dir, "both", &["a.test", "b.test"]);
    let o = Origin::start("o").await;
    o.echo_host();
    o.set_headers(&[("cache-control", "max-age=60")]);
    let addr = free_port();
    let toml = format!(
        "{}[[listeners]]\naddress = \"{addr}\"\n[listeners.tls]\n{}\n{}",
        server_section(),
        cert_entries(&[&leaf]),
        one_route(&[&o])
    );
    let _gh = boot_config(gatehouse::Config::from_toml(&toml, "t").unwrap()).await;
    let c = crate::common::certs::https_client(&ca, &["a.test", "b.test"], addr, false);
    for _ in 0..2 {
        for host in ["a.test", "b.test"] {
            let r = c
                .get(format!("https://{host}:{}/same", addr.port()))
                .send()
                .await
                .unwrap();
            assert_eq!(r.version(), reqwest::Version::HTTP_2);
            let body = r.text().await.unwrap();
            assert_eq!(
                body,
                format!("o:{host}:{}", addr.port()),
                "{host} got another host's object"
            );
        }
    }
    assert_eq!(o.hits(), 2, "one object per host");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vary_makes_variants_and_accept_encoding_is_normalised() {
    let o = Origin::start("o").await;
    o.set_headers(&[("cache-control", "max-age=60"), ("vary", "Accept-Encoding")]);
    let gh = cached(&o, "", "").await;
    let c = client();
    let ae = |v: &'static str| [("accept-encoding", v)];
    assert_eq!(fetch(&c, &gh.url("/v"), &ae("gzip")).await.x_cache, "MISS");
    assert_eq!(fetch(&c, &gh.url("/v"), &ae("gzip")).await.x_cache, "HIT");
    assert_eq!(
        fetch(&c, &gh.url("/v"), &ae("gzip, deflate")).await.x_cache,
        "HIT"
    );
    assert_eq!(
        fetch(&c, &gh.url("/v"), &ae("br, gzip")).await.x_cache,
        "MISS"
    );
    assert_eq!(
        fetch(&c, &gh.url("/v"), &ae("gzip;q=0.5, br"))
            .await
            .x_cache,
        "HIT"
    );
    assert_eq!(o.hits(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_misses_make_one_server_request() {
    let o = Origin::start("o").await;
    o.set_headers(&[("cache-control", "max-age=60")]);
    o.set_mode(Mode::Delay(Duration::from_millis(300)));
    let gh = cached(&o, "", "").await;
    let c = client();
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (c, url) = (c.clone(), gh.url("/hot"));
        tasks.push(tokio::spawn(async move { fetch(&c, &url, &[]).await }));
    }
    for t in tasks {
        let got = t.await.unwrap();
        assert_eq!((got.status, got.body.as_str()), (200, "o"));
    }
    assert_eq!(o.hits(), 1);
    let coalesced = gh
        .gh
        .shared
        .current()
        .cache
        .counters
        .coalesced
        .load(Relaxed);
    assert!(coalesced >= 1, "waits on the lock are counted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uncacheable_key_does_not_serialize_requests() {
    let o = Origin::start("o").await;
    o.set_headers(&[("cache-control", "private")]);
    o.set_mode(Mode::Delay(Duration::from_millis(400)));
    let gh = cached(&o, "", "").await;
    let c = client();
    fetch(&c, &gh.url("/private"), &[]).await; // learns it is uncacheable
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (c, url) = (c.clone(), gh.url("/private"));
        tasks.push(tokio::spawn(async move { fetch(&c, &url, &[]).await }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().x_cache, "PASS");
    }
    // Serialized they would take 8 x 400 ms; in parallel about 400 ms.
    assert!(
        started.elapsed() < Duration::from_millis(2000),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(o.hits(), 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grace_serves_stale_at_once_while_one_refresh_happens() {
    let o = Origin::start("o").await;
    o.set_headers(&[("cache-control", "max-age=1")]);
    let gh = cached(&o, "grace = \"30s\"", "").await;
    let c = client();
    fetch(&c, &gh.url("/g"), &[]).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // The refresh takes 3 s at the origin: longer than any stale answer could take.
    o.set_mode(Mode::Delay(Duration::from_secs(3)));
    // The refreshed copy stays fresh, so however slow this machine is, a second refresh
    // could only come from a broken coalescing.
    o.set_headers(&[("cache-control", "max-age=60")]);
    let mut tasks = Vec::new();
    for _ in 0..5 {
        let (c, url) = (c.clone(), gh.url("/g"));
        tasks.push(tokio::spawn(async move { fetch(&c, &url, &[]).await }));
    }
    for t in tasks {
        let got = t.await.unwrap();
        assert_eq!((got.status, got.x_cache.as_str()), (200, "STALE"));
    }
    // Every stale answer is back while the refresh is not done (not started, or still at the
    // origin): none of them waited for the server.
    let (hits, in_flight) = (o.hits(), o.in_flight());
    assert!(
        hits == 1 || (hits, in_flight) == (2, 1),
        "stale answers waited for the refresh: origin hits {hits}, in flight {in_flight}"
    );
    wait_until(|| o.hits() == 2).await;
    // Until the refresh lands, answers stay STALE; then they are fresh HITs, and it was the
    // only refresh.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = fetch(&c, &gh.url("/g"), &[]).await.x_cache;
        if got == "HIT" {
            break;
        }
        assert_eq!(got, "STALE");
        assert!(Instant::now() < deadline, "the refresh never landed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(o.hits(), 2, "one background refresh");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_if_error_covers_a_500_and_a_pool_with_no_server() {
    let o = Origin::start("o").await;
    o.set_headers(&[("cache-control", "max-age=1")]);
    let gh = boot(&format!(
        "{}{}[[routes]]\npool = \"web\"\n[routes.cache]\ngrace = \"0s\"\nstale_if_error = \"60s\"\n",
        fast_health("web", 1, 1),
        servers("web", &[&o])
    ))
    .await;
    gh.wait_healthy(Duration::from_secs(5)).await;
    let c = client();
    assert_eq!(fetch(&c, &gh.url("/s"), &[]).await.body, "o");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // The server starts answering 500 (its health check fails too, a little later): the first
    // request sees the 500 itself, the next finds no usable server.
    o.set_mode(Mode::Status(500));
    let got = fetch(&c, &gh.url("/s"), &[]).await;
    assert_eq!(
        (got.status, got.body.as_str()),
        (200, "o"),
        "stale copy instead of the 500"
    );
    wait_until(|| !gh.server_healthy("web", "o")).await;
    let got = fetch(&c, &gh.url("/s"), &[]).await;
    assert_eq!(
        (got.status, got.body.as_str()),
        (200, "o"),
        "stale copy when no server is usable"
    );
    // Without a stored copy, the error shows.
    assert_eq!(fetch(&c, &gh.url("/never-stored"), &[]).await.status, 503);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_object_is_revalidated_with_a_304() {
    let o = Origin::start("o").await;
    o.set_headers(&[("cache-control", "max-age=1"), ("etag", "\"v1\"")]);
    let gh = cached(&o, "grace = \"0s\"", "").await;
    let c = client();
    assert_eq!(fetch(&c, &gh.url("/e"), &[]).await.x_cache, "MISS");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let got = fetch(&c, &gh.url("/e"), &[]).await;
    assert_eq!(
        (got.status, got.body.as_str(), got.x_cache.as_str()),
        (200, "o", "REVALIDATED")
    );
    assert_eq!(o.not_modified(), 1);
    let seen = o.seen();
    assert_eq!(seen[1].headers["if-none-match"], "\"v1\"");
    assert_eq!(
        fetch(&c, &gh.url("/e"), &[]).await.x_cache,
        "HIT",
        "the 304 refreshed it"
    );
    assert_eq!(o.hits(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn min_uses_stores_on_the_third_request() {
    let o = Origin::start("o").await;
    o.set_headers(&[("cache-control", "max-age=60")]);
    let gh = cached(&o, "min_uses = 3", "").await;
    let c = client();
    for _ in 0..3 {
        assert_ne!(fetch(&c, &gh.url("/m"), &[]).await.x_cache, "HIT");
    }
    assert_eq!(fetch(&c, &gh.url("/m"), &[]).await.x_cache, "HIT");
    assert_eq!(o.hits(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_byte_cap_holds_and_large_objects_stream_through() {
    let o = Origin::start("o").await;
    o.set_headers(&[("cache-control", "max-age=60")]);
    o.set_body_size(8 * 1024);
    let gh = cached(&o, "", "max_size = \"64k\"\nmax_object_size = \"16k\"").await;
    let c = client();
    for i in 0..80 {
        let got = fetch(&c, &gh.url(&format!("/obj{i}")), &[]).await;
        assert_eq!(got.body.len(), 8 * 1024);
    }
    let (bytes, objects) = gh.gh.shared.current().cache.usage();
    assert!(
        bytes <= 64 * 1024,
        "stored {bytes} bytes in {objects} objects"
    );
    assert!(objects >= 1);
    // An object over max_object_size streams through whole and is not stored.
    o.set_body_size(40 * 1024);
    o.reset();
    for _ in 0..2 {
        assert_eq!(fetch(&c, &gh.url("/big"), &[]).await.body.len(), 40 * 1024);
    }
    assert_eq!(o.hits(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_removes_every_variant_and_bans_match_prefixes_and_regexes() {
    let o = Origin::start("o").await;
    o.set_headers(&[("cache-control", "max-age=60"), ("vary", "Accept-Encoding")]);
    let gh = cached(&o, "", "").await;
    let c = client();
    let host = gh.addr.to_string();
    for path in ["/a", "/c/1", "/c/2", "/d/x.png", "/d/y.css"] {
        for ae in ["gzip", "br"] {
            fetch(&c, &gh.url(path), &[("accept-encoding", ae)]).await;
        }
    }
    let cache = gh.gh.shared.current().cache.clone();
    assert_eq!(cache.usage().1, 10);
    assert_eq!(cache.purge(&host, "/a"), 2, "both variants");
    assert_eq!(cache.ban_prefix(Some(&host), "/c/"), 4);
    assert_eq!(
        cache.ban_regex(Some("other.test"), &regex::Regex::new(r"\.png$").unwrap()),
        0
    );
    assert_eq!(
        cache.ban_regex(None, &regex::Regex::new(r"\.png$").unwrap()),
        2
    );
    assert_eq!(cache.usage().1, 2);
    assert_eq!(
        fetch(&c, &gh.url("/a"), &[("accept-encoding", "gzip")])
            .await
            .x_cache,
        "MISS"
    );
    assert_eq!(
        fetch(&c, &gh.url("/d/y.css"), &[("accept-encoding", "br")])
            .await
            .x_cache,
        "HIT"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_and_ban_through_the_admin_api() {
    let o = Origin::start("o").await;
    o.set_headers(&[("cache-control", "max-age=60")]);
    let gh = cached(&o, "", "").await;
    let c = client();
    for p in ["/a", "/img/1.png", "/img/2.png", "/x.css"] {
        fetch(&c, &gh.url(p), &[]).await;
    }
    let admin = gh.gh.shared.current().config.admin.address;
    let call = |action: &str, body: serde_json::Value| {
        let c = c.clone();
        let url = format!("http://{admin}/api/cache/{action}");
        async move {
            let r = c
                .post(url)
                .bearer_auth(TOKEN)
                .json(&body)
                .send()
                .await
                .unwrap();
            (
                r.status().as_u16(),
                r.json::<serde_json::Value>().await.unwrap(),
            )
        }
    };
    let host = gh.addr.to_string();
    assert_eq!(
        call("purge", serde_json::json!({"host": host, "path": "/a"})).await,
        (200, serde_json::json!({"removed": 1}))
    );
    assert_eq!(
        call("ban", serde_json::json!({"host": host, "prefix": "/img/"}))
            .await
            .1["removed"],
        2
    );
    assert_eq!(
        call("ban", serde_json::json!({"regex": "\\.css$"})).await.1["removed"],
        1
    );
    assert_eq!(call("ban", serde_json::json!({"regex": "("})).await.0, 400);
    assert_eq!(gh.gh.shared.current().cache.usage().1, 0);
    assert_eq!(fetch(&c, &gh.url("/a"), &[]).await.x_cache, "MISS");
}
