//! The cache against RFC 9111's shared-cache MUSTs, RFC 9213's targeted fields and RFC 9110's
//! ranges: one test per behaviour, origins setting the headers, the shipped defaults where the
//! rule is about them (grace 10s, stale_if_error 1m, default_ttl 0s).

use crate::common::cache::{cached, fetch};
use crate::common::*;
use std::time::{Duration, SystemTime};

fn http_date(t: SystemTime) -> String {
    httpdate::fmt_http_date(t)
}

/// GETs `path` twice with `headers` set on the origin; how many reached the origin.
async fn origin_hits_for_two_gets(
    o: &Origin,
    gh: &Proxy,
    path: &str,
    headers: &[(&str, &str)],
) -> usize {
    o.set_headers(headers);
    let before = o.hits();
    let c = client();
    fetch(&c, &gh.url(path), &[]).await;
    fetch(&c, &gh.url(path), &[]).await;
    o.hits() - before
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_already_stale_on_arrival_is_not_served_fresh() {
    let o = Origin::start("o").await;
    let gh = cached(&o, "", "").await;
    let now = SystemTime::now();
    let date = http_date(now);
    let in_100s = http_date(now + Duration::from_secs(100));
    // Age beyond max-age: stale on arrival.
    let aged = [("cache-control", "max-age=3600"), ("age", "7200")];
    assert_eq!(origin_hits_for_two_gets(&o, &gh, "/aged", &aged).await, 2);
    // Expires − Date smaller than the received Age.
    let exp = [
        ("date", date.as_str()),
        ("expires", in_100s.as_str()),
        ("age", "200"),
    ];
    assert_eq!(
        origin_hits_for_two_gets(&o, &gh, "/expires-aged", &exp).await,
        2
    );
    // Expires − Date counts, whatever the Date skew: an hour-old Date, Expires 100 s after it,
    // Age 200: a lifetime of 100 s is below the age on arrival (200 s by Age, an hour by Date).
    let skewed_date = now - Duration::from_secs(3600);
    let (d, e) = (
        http_date(skewed_date),
        http_date(skewed_date + Duration::from_secs(100)),
    );
    let skew = [
        ("date", d.as_str()),
        ("expires", e.as_str()),
        ("age", "200"),
    ];
    assert_eq!(origin_hits_for_two_gets(&o, &gh, "/skewed", &skew).await, 2);
    // A Date an hour ahead of our clock: Expires 100 s after it is far in our future, yet
    // Expires − Date (100 s) is below the received Age (200 s).
    let ahead = now + Duration::from_secs(3600);
    let (d, e) = (
        http_date(ahead),
        http_date(ahead + Duration::from_secs(100)),
    );
    let skew = [
        ("date", d.as_str()),
        ("expires", e.as_str()),
        ("age", "200"),
    ];
    assert_eq!(origin_hits_for_two_gets(&o, &gh, "/ahead", &skew).await, 2);
    // Expires not after Date: stale.
    let same = [("date", date.as_str()), ("expires", date.as_str())];
    assert_eq!(
        origin_hits_for_two_gets(&o, &gh, "/expires-equal", &same).await,
        2
    );
    let before = http_date(now - Duration::from_secs(10));
    let earlier = [("date", date.as_str()), ("expires", before.as_str())];
    assert_eq!(
        origin_hits_for_two_gets(&o, &gh, "/expires-earlier", &earlier).await,
        2
    );
    // And the control: a fresh one is stored.
    let fresh = [("date", date.as_str()), ("expires", in_100s.as_str())];
    assert_eq!(origin_hits_for_two_gets(&o, &gh, "/fresh", &fresh).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hits_keep_the_stored_date_and_count_the_received_age() {
    let o = Origin::start("o").await;
    let date = http_date(SystemTime::now() - Duration::from_secs(5));
    o.set_headers(&[
        ("cache-control", "max-age=600"),
        ("age", "100"),
        ("date", &date),
    ]);
    let gh = cached(&o, "", "").await;
    let c = client();
    assert_eq!(fetch(&c, &gh.url("/a"), &[]).await.x_cache, "MISS");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = c.get(gh.url("/a")).send().await.unwrap();
    assert_eq!(r.headers()["x-cache"], "HIT");
    let age: u64 = r.headers()["age"].to_str().unwrap().parse().unwrap();
    assert!(
        (101..=103).contains(&age),
        "received 100 + resident time, got {age}"
    );
    assert_eq!(
        r.headers()["date"].to_str().unwrap(),
        date,
        "Date is the stored one"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fields_named_in_connection_and_hop_by_hop_fields_are_never_stored() {
    let o = Origin::start("o").await;
    o.set_headers(&[
        ("cache-control", "max-age=60"),
        ("connection", "X-Foo"),
        ("x-foo", "secret-for-this-hop"),
        ("keep-alive", "timeout=5"),
        ("x-kept", "yes"),
    ]);
    let gh = cached(&o, "", "").await;
    let c = client();
    fetch(&c, &gh.url("/c"), &[]).await;
    let r = c.get(gh.url("/c")).send().await.unwrap();
    assert_eq!(r.headers()["x-cache"], "HIT");
    assert!(
        r.headers().get("x-foo").is_none(),
        "named in Connection: not stored"
    );
    assert!(r.headers().get("keep-alive").is_none());
    assert_eq!(r.headers()["x-kept"], "yes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_304_replaces_the_stored_fields() {
    let o = Origin::start("o").await;
    o.set_headers(&[
        ("cache-control", "max-age=1"),
        ("etag", "\"v1\""),
        ("test-header", "old"),
        ("x-test-header", "old"),
        ("content-foo", "old"),
        ("x-content-foo", "old"),
    ]);
    let gh = cached(&o, "grace = \"0s\"", "").await;
    let c = client();
    assert_eq!(fetch(&c, &gh.url("/r"), &[]).await.x_cache, "MISS");
    o.set_headers(&[
        ("cache-control", "max-age=60"),
        ("etag", "\"v1\""),
        ("test-header", "new"),
        ("x-test-header", "new"),
        ("content-foo", "new"),
        ("x-content-foo", "new"),
    ]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let revalidated = c.get(gh.url("/r")).send().await.unwrap();
    assert_eq!(o.not_modified(), 1, "revalidated with a 304");
    for r in [revalidated, c.get(gh.url("/r")).send().await.unwrap()] {
        for name in [
            "test-header",
            "x-test-header",
            "content-foo",
            "x-content-foo",
        ] {
            assert_eq!(r.headers()[name], "new", "{name}");
        }
        assert_eq!(r.text().await.unwrap(), "o", "the stored body stays");
    }
    assert_eq!(o.not_modified(), 1, "the updated object is fresh for 60 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn successful_writes_invalidate_the_uri_its_locations_and_every_variant() {
    let o = Origin::start("o").await;
    o.set_headers(&[("cache-control", "max-age=60"), ("vary", "Accept-Encoding")]);
    let gh = cached(&o, "", "").await;
    let c = client();
    let warm = |paths: &'static [&'static str]| {
        let (c, gh_url) = (c.clone(), gh.url(""));
        async move {
            for p in paths {
                for enc in ["gzip", "identity"] {
                    c.get(format!("{gh_url}{p}"))
                        .header("accept-encoding", enc)
                        .send()
                        .await
                        .unwrap();
                }
            }
        }
    };
    let is_hit = |p: &'static str, enc: &'static str| {
        let (c, url) = (c.clone(), gh.url(p));
        async move {
            let r = c
                .get(url)
                .header("accept-encoding", enc)
                .send()
                .await
                .unwrap();
            r.headers()["x-cache"] == "HIT"
        }
    };
    warm(&["/doc", "/moved", "/located", "/kept"]).await;
    assert!(is_hit("/doc", "gzip").await && is_hit("/kept", "gzip").await);
    // POST /doc answered 201 with a Location and a Content-Location of this origin.
    o.set_headers(&[("location", "/moved"), ("content-location", "/located")]);
    let r = c.post(gh.url("/doc")).body("x").send().await.unwrap();
    assert_eq!(r.status(), 200);
    for (p, enc) in [
        ("/doc", "gzip"),
        ("/doc", "identity"),
        ("/moved", "gzip"),
        ("/located", "identity"),
    ] {
        assert!(!is_hit(p, enc).await, "{p} {enc} was invalidated");
    }
    assert!(is_hit("/kept", "identity").await, "other URLs stay");
    // An unknown method is unsafe too; an error answer invalidates nothing.
    o.set_headers(&[("cache-control", "max-age=60"), ("vary", "Accept-Encoding")]);
    warm(&["/doc"]).await;
    o.set_mode(Mode::Status(500));
    c.delete(gh.url("/doc")).send().await.unwrap();
    o.set_mode(Mode::Ok);
    assert!(is_hit("/doc", "gzip").await, "a 500 invalidates nothing");
    let m_search = reqwest::Method::from_bytes(b"M-SEARCH").unwrap();
    c.request(m_search, gh.url("/doc")).send().await.unwrap();
    assert!(!is_hit("/doc", "identity").await, "M-SEARCH invalidated it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cdn_cache_control_and_the_targeted_field_come_first() {
    let o = Origin::start("o").await;
    let gh = cached(&o, "", "").await;
    let cdn_over_no_store = [
        ("cdn-cache-control", "max-age=60"),
        ("cache-control", "no-store"),
    ];
    assert_eq!(
        origin_hits_for_two_gets(&o, &gh, "/cdn", &cdn_over_no_store).await,
        1
    );
    let cdn_private = [
        ("cdn-cache-control", "private"),
        ("cache-control", "max-age=60"),
    ];
    assert_eq!(
        origin_hits_for_two_gets(&o, &gh, "/cdn-private", &cdn_private).await,
        2
    );
    let targeted = [
        ("gatehouse-cache-control", "no-store"),
        ("cdn-cache-control", "max-age=60"),
        ("cache-control", "max-age=60"),
    ];
    assert_eq!(
        origin_hits_for_two_gets(&o, &gh, "/ours", &targeted).await,
        2
    );
    let ours_fresh = [
        ("gatehouse-cache-control", "max-age=60"),
        ("cache-control", "private"),
    ];
    assert_eq!(
        origin_hits_for_two_gets(&o, &gh, "/ours-fresh", &ours_fresh).await,
        1
    );
    for path in ["/ours", "/ours-fresh"] {
        let r = client().get(gh.url(path)).send().await.unwrap();
        assert!(
            r.headers().get("gatehouse-cache-control").is_none(),
            "{path}: not forwarded"
        );
        assert!(
            r.headers().get("cache-control").is_some(),
            "Cache-Control is forwarded"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_is_never_served_where_the_response_forbids_it() {
    let o = Origin::start("o").await;
    let gh = cached(&o, "", "").await; // shipped defaults: grace 10s, stale_if_error 1m
    let c = client();
    for (path, cc) in [
        ("/must", "max-age=1, must-revalidate"),
        ("/proxy", "max-age=1, proxy-revalidate"),
        ("/shared", "s-maxage=1"),
    ] {
        o.set_mode(Mode::Ok);
        o.set_headers(&[("cache-control", cc)]);
        assert_eq!(fetch(&c, &gh.url(path), &[]).await.x_cache, "MISS");
        tokio::time::sleep(Duration::from_millis(2100)).await;
        o.set_mode(Mode::Status(500));
        let got = fetch(&c, &gh.url(path), &[]).await;
        assert_eq!(got.status, 500, "{cc}: no stale copy for an error");
        assert_ne!(got.x_cache, "STALE", "{cc}");
        o.set_mode(Mode::Ok);
        let before = o.hits();
        let got = fetch(&c, &gh.url(path), &[]).await;
        assert_ne!(got.x_cache, "STALE", "{cc}: no grace either");
        assert_eq!(o.hits(), before + 1, "{cc}: fetched before answering");
    }
    // The response's own windows replace the route's: stale-while-revalidate=0 means no grace.
    o.set_headers(&[(
        "cache-control",
        "max-age=1, stale-while-revalidate=0, stale-if-error=30",
    )]);
    fetch(&c, &gh.url("/own"), &[]).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_ne!(fetch(&c, &gh.url("/own"), &[]).await.x_cache, "STALE");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    o.set_mode(Mode::Status(503));
    let got = fetch(&c, &gh.url("/own"), &[]).await;
    assert_eq!(
        (got.status, got.x_cache.as_str()),
        (200, "STALE"),
        "stale-if-error=30 allows it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_control_is_read_the_restrictive_way() {
    let o = Origin::start("o").await;
    let gh = cached(&o, "grace = \"0s\"", "").await;
    // A max-age inside another directive's quoted string is not a max-age (default_ttl 0).
    let quoted = [("cache-control", "community=\"max-age=600\"")];
    assert_eq!(
        origin_hits_for_two_gets(&o, &gh, "/quoted", &quoted).await,
        2
    );
    // Duplicated max-age: the smaller counts.
    o.set_headers(&[("cache-control", "max-age=600, max-age=1")]);
    let c = client();
    fetch(&c, &gh.url("/dup"), &[]).await;
    assert_eq!(fetch(&c, &gh.url("/dup"), &[]).await.x_cache, "HIT");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_ne!(
        fetch(&c, &gh.url("/dup"), &[]).await.x_cache,
        "HIT",
        "max-age=1 won"
    );
    // Conflicting: max-age and no-cache: not stored.
    let conflict = [
        ("cache-control", "max-age=600"),
        ("cache-control", "no-cache"),
    ];
    assert_eq!(
        origin_hits_for_two_gets(&o, &gh, "/conflict", &conflict).await,
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_ranges_are_served_from_a_stored_response() {
    let o = Origin::start("o").await;
    o.set_headers(&[("cache-control", "max-age=60")]);
    o.set_body_size(100);
    let gh = cached(&o, "", "").await;
    let c = client();
    assert_eq!(fetch(&c, &gh.url("/big"), &[]).await.body.len(), 100);
    let r = c
        .get(gh.url("/big"))
        .header("range", "bytes=0-3")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()["x-cache"], "HIT");
    assert_eq!(r.headers()["content-range"], "bytes 0-3/100");
    assert_eq!(r.text().await.unwrap(), "o...");
    let r = c
        .get(gh.url("/big"))
        .header("range", "bytes=-5")
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status().as_u16(), r.text().await.unwrap().len()),
        (206, 5)
    );
    let r = c
        .get(gh.url("/big"))
        .header("range", "bytes=500-")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 416);
    assert_eq!(r.headers()["content-range"], "bytes */100");
    let r = c
        .get(gh.url("/big"))
        .header("range", "bytes=0-1,5-6")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "several ranges: the whole response");
    assert_eq!(r.text().await.unwrap().len(), 100);
    assert_eq!(o.hits(), 1, "all from the stored response");
}

/// RFC 9111 §5.1: of an `Age` list (one line or several), the first member counts, so
/// `7200, 0` is two hours old and stale on arrival under `max-age=3600`; an invalid first
/// member is ignored (the HTTP caching test suite's `age-parse-*`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_member_of_a_listed_age_counts() {
    let o = Origin::start("o").await;
    let gh = cached(&o, "", "").await;
    let date = http_date(SystemTime::now());
    for (path, ages, reaching_origin) in [
        ("/suffix", &["7200, 0"][..], 2),
        ("/suffix-twoline", &["7200", "0"][..], 2),
        ("/prefix", &["0, 7200"][..], 1),
        ("/prefix-twoline", &["0", "7200"][..], 1),
        ("/dup-0", &["0, 0"][..], 1),
        ("/nonnumeric", &["abc"][..], 1),
        ("/negative", &["-7200"][..], 1),
        ("/float", &["7200.0"][..], 1),
        ("/large", &["2147483648"][..], 2),
    ] {
        let mut headers = vec![("date", date.as_str()), ("cache-control", "max-age=3600")];
        headers.extend(ages.iter().map(|a| ("age", *a)));
        assert_eq!(
            origin_hits_for_two_gets(&o, &gh, path, &headers).await,
            reaching_origin,
            "Age {ages:?}"
        );
    }
}

/// RFC 9213 §2.1: a targeted field that is not a valid Structured Field Dictionary (RFC 8941),
/// or whose `max-age` is not an Integer, is ignored whole: `Cache-Control: no-store` then
/// rules. A valid one still wins over it (the HTTP caching test suite's `cdn-cc-invalid-*`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_targeted_field_is_ignored_whole() {
    let o = Origin::start("o").await;
    let gh = cached(&o, "", "").await;
    for (path, field, value, reaching_origin) in [
        (
            "/unknown-type",
            "cdn-cache-control",
            "max-age=10000, &&&&&",
            2,
        ),
        ("/wrong-type", "cdn-cache-control", "max-age=\"10000\"", 2),
        ("/negative", "cdn-cache-control", "max-age=-1", 2),
        ("/ours-wrong", "gatehouse-cache-control", "s-maxage=1.5", 2),
        ("/valid", "cdn-cache-control", "foobar, max-age=10000", 1),
        (
            "/ours-valid",
            "gatehouse-cache-control",
            "max-age=60;x=1",
            1,
        ),
    ] {
        let headers = [(field, value), ("cache-control", "no-store")];
        assert_eq!(
            origin_hits_for_two_gets(&o, &gh, path, &headers).await,
            reaching_origin,
            "{field}: {value}"
        );
    }
}
