//! Cache hits served from the fast path (`proxy::hit`): the client must get what
//! pingora-cache's hit path gives (same status, fields, Age, X-Cache, body), for every kind of
//! request, whichever path serves it; and the hit is counted and logged as one.

use crate::common::raw::{header, Wire};
use crate::common::raw_origin::RawOrigin;
use crate::common::syslog::{json_record, json_sink};
use crate::common::*;
use std::sync::atomic::Ordering::Relaxed;

/// A response as the client saw it: status, header lines sorted (names lower-cased, Date's and
/// Age's values masked), body.
fn seen(status: u16, head: &str, body: &[u8]) -> String {
    let mut lines: Vec<String> = head
        .split("\r\n")
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(|l| match l.split_once(':') {
            Some(("date", _)) => "date:<masked>".into(),
            Some(("age", v)) => {
                let age: u64 = v.trim().parse().expect("Age is a number");
                assert!(age < 60, "Age counts from the store, not the origin's: {l}");
                "age:<masked>".into()
            }
            _ => l.to_string(),
        })
        .collect();
    lines.sort();
    format!(
        "{status} {} | {}",
        lines.join(" / "),
        String::from_utf8_lossy(body)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hits_from_the_own_loop_answer_what_pingoras_cache_answers() {
    let o = RawOrigin::start().await;
    let (sink, log) = json_sink().await;
    let own = proxy_with(&[o.addr], true, &log, 1, "").await;
    let theirs = proxy_with(&[o.addr], false, "", 1, "").await;
    let cases = [
        ("GET", "/cached", ""),
        ("GET", "/cached", ""),
        ("HEAD", "/cached", ""),
        // Conditions and ranges are pingora-cache's to answer, on both paths.
        ("GET", "/cached", "If-None-Match: \"v1\"\r\n"),
        ("GET", "/cached", "Range: bytes=1-2\r\n"),
        // Stored without a length, or varied: pingora-cache serves those hits.
        ("GET", "/cached-chunked", ""),
        ("GET", "/cached-chunked", ""),
        ("GET", "/cached-vary", "Accept-Encoding: gzip\r\n"),
        ("GET", "/cached-vary", "Accept-Encoding: gzip\r\n"),
        ("GET", "/cached", ""),
        // Preconditions the fast path evaluates as pingora's hit path does: a 200, then a 304.
        ("GET", "/cached", "If-None-Match: \"v2\"\r\n"),
        (
            "GET",
            "/cached",
            "If-Modified-Since: Thu, 01 Jan 2026 00:00:00 GMT\r\n",
        ),
        // Each variant stored once, then a hit; the first one still is.
        ("GET", "/cached-vary", "Accept-Encoding: br\r\n"),
        ("GET", "/cached-vary", "Accept-Encoding: br\r\n"),
        ("GET", "/cached-vary", ""),
        ("GET", "/cached-vary", ""),
        ("GET", "/cached-vary", "Accept-Encoding: gzip, deflate\r\n"),
    ];
    let mut answers = Vec::new();
    for gh in [&own, &theirs] {
        let mut c = Wire::connect(gh.addr).await;
        let mut got = Vec::new();
        for (method, path, extra) in cases {
            let (status, head, body) = c.round_trip(method, path, extra).await;
            got.push(seen(status, &head, &body));
        }
        answers.push(got);
    }
    assert_eq!(answers[0], answers[1], "both paths answer alike");
    let hit = &answers[0][1];
    for field in [
        "content-length: 5",
        "x-cache: hit",
        "age:<masked>",
        "etag: \"v1\"",
        "x-who: raw",
        "connection: keep-alive",
        "date:<masked>",
    ] {
        assert_eq!(
            hit.matches(field).count(),
            1,
            "one {field} in the hit: {hit}"
        );
    }
    assert!(hit.starts_with("200 ") && hit.ends_with("| hello"), "{hit}");
    assert!(answers[0][0].contains("x-cache: miss"), "{}", answers[0][0]);
    let head = &answers[0][2];
    assert!(
        head.contains("content-length: 5") && head.ends_with("| "),
        "{head}"
    );
    assert!(answers[0][3].starts_with("304 "), "{}", answers[0][3]);
    assert!(answers[0][4].starts_with("206 ") && answers[0][4].ends_with("| el"));
    assert!(answers[0][6].contains("x-cache: hit") && answers[0][6].ends_with("| abc"));
    assert!(answers[0][8].contains("x-cache: hit") && answers[0][8].ends_with("| gzip"));
    assert!(answers[0][10].starts_with("200 ") && answers[0][10].ends_with("| hello"));
    let not_modified = &answers[0][11];
    assert!(not_modified.starts_with("304 ") && not_modified.contains("x-cache: hit"));
    assert!(!not_modified.contains("content-length"), "{not_modified}");
    for (i, cache, body) in [
        (12, "miss", "br"),
        (13, "hit", "br"),
        (14, "miss", "none"),
        (15, "hit", "none"),
        // Normalized as gzip: the variant the first gzip request stored.
        (16, "hit", "gzip"),
    ] {
        let got = &answers[0][i];
        assert!(got.contains(&format!("x-cache: {cache}")), "{i}: {got}");
        assert!(got.ends_with(&format!("| {body}")), "{i}: {got}");
    }

    // Each object (each variant) reached the origin once per proxy; every other answer was a
    // hit.
    assert_eq!(o.heads().len(), 10, "{:?}", o.heads());
    for gh in [&own, &theirs] {
        let rt = gh.gh.shared.current();
        let counters = &rt.cache.counters;
        wait_until(|| counters.hits.load(Relaxed) == 12).await;
        assert_eq!(
            (counters.hits.load(Relaxed), counters.misses.load(Relaxed)),
            (12, 5)
        );
    }
    let records = records(&sink, cases.len()).await;
    let r = &records[1];
    assert_eq!(
        (
            r["cache"].as_str(),
            r["termination"].as_str(),
            r["status"].as_u64()
        ),
        (Some("HIT"), Some("cache"), Some(200)),
        "{r}"
    );
    assert_eq!(r["bytes_out"].as_u64(), Some(5), "{r}");
    assert!(r["server"].is_null(), "no server for a hit: {r}");
}

/// The next `n` access log records.
async fn records(sink: &tokio::net::UdpSocket, n: usize) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(json_record(sink).await);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purged_or_expired_object_is_not_served_from_the_own_loop() {
    let o = RawOrigin::start().await;
    let gh = proxy_with(&[o.addr], true, "", 1, "max_ttl = \"4s\"\ngrace = \"0s\"").await;
    let mut c = Wire::connect(gh.addr).await;
    let x_cache = |head: &str| header(head, "x-cache").unwrap_or_default().to_string();
    let (_, first, _) = c.round_trip("GET", "/cached", "").await;
    let (_, second, _) = c.round_trip("GET", "/cached", "").await;
    assert_eq!(
        (x_cache(&first), x_cache(&second)),
        ("miss".into(), "hit".into())
    );
    // Fresh for 4 s less the 2 s it was already old (its Age): past that, not a hit any more.
    tokio::time::sleep(std::time::Duration::from_millis(2200)).await;
    let (status, third, body) = c.round_trip("GET", "/cached", "").await;
    assert_eq!(status, 200);
    assert_ne!(x_cache(&third), "hit", "{third}");
    assert_eq!(body, b"hello");
    let rt = gh.gh.shared.current();
    assert_eq!(rt.cache.purge("site.test", "/cached"), 1);
    let (_, fourth, _) = c.round_trip("GET", "/cached", "").await;
    assert_eq!(x_cache(&fourth), "miss", "purged: {fourth}");
    assert_eq!(o.heads().len(), 3);
}

/// GET, GET, HEAD of one object over HTTP/2 through the fast path and through pingora's
/// (`direct_exchange` true, then false), `extra` appended to the config; each answer as
/// "METHOD status age=present [fields but date and age] body". The origin's hits follow.
async fn http2_hits_on_both_paths(extra: &str) -> (Vec<Vec<String>>, usize) {
    use crate::common::certs::Ca;
    let (ca, dir) = (Ca::new(), state_dir());
    let leaf = ca.issue(&dir, "a", &["a.test"]);
    let o = Origin::start("o").await;
    o.set_headers(&[
        ("cache-control", "max-age=60"),
        ("x-who", "origin"),
        ("etag", "\"v1\""),
        ("content-type", "text/plain"),
    ]);
    let mut answers = Vec::new();
    for direct in [true, false] {
        let addr = free_port();
        let section = server_section().replacen(
            "[server]\n",
            &format!("[server]\ndirect_exchange = {direct}\n"),
            1,
        );
        let toml =
            crate::common::certs::tls_config_in(&section, addr, &o, &[&leaf], "", "") + extra;
        let _gh = crate::common::certs::boot_tls(&toml).await;
        let c = crate::common::certs::https_client(&ca, &["a.test"], addr, false);
        let url = format!("https://a.test:{}/h2", addr.port());
        let mut got = Vec::new();
        // The last: a conditional GET the stored ETag matches (a 304).
        let methods = [
            http::Method::GET,
            http::Method::GET,
            http::Method::HEAD,
            http::Method::GET,
        ];
        for (i, method) in methods.into_iter().enumerate() {
            let mut req = c.request(method.clone(), &url);
            if i == 3 {
                req = req.header("if-none-match", "\"v1\"");
            }
            let r = req.send().await.unwrap();
            assert_eq!(r.version(), reqwest::Version::HTTP_2);
            let mut fields: Vec<String> = r
                .headers()
                .iter()
                .filter(|(n, _)| !matches!(n.as_str(), "date" | "age"))
                .map(|(n, v)| format!("{n}: {}", v.to_str().unwrap()))
                .collect();
            fields.sort();
            let age = r.headers().get("age").is_some();
            let status = r.status().as_u16();
            let body = r.text().await.unwrap();
            got.push(format!("{method} {status} age={age} {fields:?} {body}"));
        }
        answers.push(got);
    }
    (answers, o.hits())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_clients_get_the_same_hits_from_both_paths() {
    let (answers, hits) = http2_hits_on_both_paths("").await;
    assert_eq!(answers[0], answers[1], "both paths answer alike");
    assert!(answers[0][1].contains("\"x-cache: HIT\"") && answers[0][1].contains("age=true"));
    assert!(answers[0][1].contains("\"content-length: 1\"") && answers[0][1].ends_with(" o"));
    assert!(answers[0][2].starts_with("HEAD 200 age=true") && answers[0][2].ends_with("] "));
    // The 304 keeps the validators, not the representation's metadata.
    assert!(
        answers[0][3].starts_with("GET 304 age=true"),
        "{:?}",
        answers[0][3]
    );
    assert!(
        answers[0][3].contains("\"etag: \\\"v1\\\"\""),
        "{:?}",
        answers[0][3]
    );
    assert!(
        !answers[0][3].contains("content-type"),
        "{:?}",
        answers[0][3]
    );
    assert_eq!(hits, 2, "one miss per proxy");
    // Captured fields stripped from responses: the hit's Age too, as pingora's path strips it.
    let strip = "[access_log]\ncapture_response_headers = [\"Age\", \"X-Who\"]\n\
                 strip_captured_response_headers = true\n";
    let (answers, _) = http2_hits_on_both_paths(strip).await;
    assert_eq!(answers[0], answers[1], "both paths strip alike");
    assert!(answers[0][1].contains("\"x-cache: HIT\"") && answers[0][1].contains("age=false"));
    assert!(
        !answers[0].iter().any(|a| a.contains("x-who")),
        "{answers:?}"
    );
}
