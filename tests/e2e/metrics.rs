//! Prometheus metrics: exact values after a scripted set of requests, checked with a text
//! parser and `promtool check metrics` (package prometheus; GATEHOUSE_TEST_SKIP=promtool skips it).

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_have_the_exact_expected_values() {
    let (a, b) = (Origin::start("a").await, Origin::start("b").await);
    a.set_headers(&[("cache-control", "max-age=60")]);
    b.set_headers(&[("cache-control", "max-age=60")]);
    let body = format!(
        "[readonly]\nallow_paths = []\n{}[[routes]]\nname = \"site\"\npool = \"web\"\n\
         [[routes]]\nname = \"ro\"\nhosts = [\"ro.test\"]\npool = \"web\"\nreadonly = \"always\"\n",
        unchecked_pool("web", &[&a, &b])
    );
    let gh = boot(&body).await;
    let c = client();
    // 4 distinct pages (misses, 2 per server), then each again (hits), 2 refused writes,
    // 1 request with no route... every request has a route here, so: one 404 via host below.
    for round in 0..2 {
        for i in 0..4 {
            assert_eq!(
                get(&c, &gh.url(&format!("/p{i}"))).await.0,
                200,
                "round {round}"
            );
        }
    }
    for _ in 0..2 {
        let r = c
            .post(gh.url("/w"))
            .header("host", "ro.test")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 503);
    }
    gh.admin("POST", "/api/pools/web/servers/b/drain", Some(TOKEN))
        .await;

    let addr = gh.gh.shared.current().config.admin.address;
    // Requests are counted when pingora finishes them, just after the client has its answer.
    let mut text = String::new();
    for _ in 0..50 {
        text = metrics_text(addr).await;
        let done = parse_metrics(&text);
        let count = |k: &str| done.get(k).copied().unwrap_or(0.0);
        if count(r#"gatehouse_request_duration_seconds_count{route="site"}"#) == 8.0
            && count(r#"gatehouse_request_duration_seconds_count{route="ro"}"#) == 2.0
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let m = parse_metrics(&text);
    let v = |k: &str| *m.get(k).unwrap_or_else(|| panic!("no series {k}\n{text}"));
    assert_eq!(
        v(r#"gatehouse_requests_total{code="2xx",pool="web",route="site",server="a"}"#),
        2.0
    );
    assert_eq!(
        v(r#"gatehouse_requests_total{code="2xx",pool="web",route="site",server="b"}"#),
        2.0
    );
    assert_eq!(
        v(r#"gatehouse_requests_total{code="2xx",pool="web",route="site",server="-"}"#),
        4.0,
        "hits have no server"
    );
    assert_eq!(
        v(r#"gatehouse_requests_total{code="5xx",pool="web",route="ro",server="-"}"#),
        2.0
    );
    assert_eq!(
        v(r#"gatehouse_cache_requests_total{route="site",status="HIT"}"#),
        4.0
    );
    assert_eq!(
        v(r#"gatehouse_cache_requests_total{route="site",status="MISS"}"#),
        4.0
    );
    assert_eq!(v(r#"gatehouse_cache_events_total{event="hit"}"#), 4.0);
    assert_eq!(v(r#"gatehouse_cache_events_total{event="miss"}"#), 4.0);
    assert_eq!(v("gatehouse_cache_objects"), 4.0);
    assert!(v("gatehouse_cache_stored_bytes") > 0.0);
    assert_eq!(
        v(r#"gatehouse_request_duration_seconds_count{route="site"}"#),
        8.0
    );
    assert_eq!(
        v(r#"gatehouse_upstream_response_seconds_count{route="site"}"#),
        4.0
    );
    assert_eq!(
        v(r#"gatehouse_server_state{pool="web",server="b",state="drain"}"#),
        1.0
    );
    assert_eq!(
        v(r#"gatehouse_server_state{pool="web",server="a",state="ready"}"#),
        1.0
    );
    assert_eq!(v(r#"gatehouse_server_up{pool="web",server="a"}"#), 1.0);
    assert_eq!(
        v(r#"gatehouse_server_in_flight{pool="web",server="a"}"#),
        0.0
    );
    assert_eq!(
        v(r#"gatehouse_server_requests_total{pool="web",server="a"}"#),
        2.0
    );
    assert_eq!(v("gatehouse_readonly_refused_total"), 2.0);
    assert_eq!(v("gatehouse_readonly_mode"), 0.0);
    assert_eq!(v("gatehouse_worker_threads"), 2.0);
    assert!(v("gatehouse_config_load_timestamp_seconds") > 1.7e9);

    let Some(promtool) = tool(
        "promtool",
        &["/usr/bin/promtool", "/usr/local/bin/promtool"],
        "prometheus",
    ) else {
        return; // skipped by the user (the built-in parser above still checked), and recorded
    };
    let out = pipe_into(
        std::process::Command::new(promtool).args(["check", "metrics"]),
        text.as_bytes(),
    );
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_and_config_endpoint_answer() {
    let a = Origin::start("a").await;
    let gh = boot(&one_route(&[&a])).await;
    let addr = gh.gh.shared.current().config.admin.address;
    let page = client()
        .get(format!("http://{addr}/"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    let html = page.text().await.unwrap();
    assert!(html.contains("<title>gatehouse status</title>"));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no external assets"
    );
    let (status, config) = gh.admin("GET", "/api/config", None).await;
    assert_eq!(status, 200);
    assert_eq!(config["checksum"].as_str().unwrap().len(), 16);
}
