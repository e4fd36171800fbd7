//! Rate limits (issue 32), from several client addresses (127.0.0.x): a client over its rate
//! gets 429 with `Retry-After` at the right count while another address passes, and its
//! bucket refills; the count survives a reload; a delay holds requests instead of refusing
//! them; dry-run counts and logs without refusing; header keys (a route's own limit) and the
//! close action; every outcome in the access log and the metrics under the limit's name. And
//! the connection rate per client address, refused before any request.

use crate::common::process::ConfigFile;
use crate::common::raw::Wire;
use crate::common::syslog::{json_record, json_sink};
use crate::common::*;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::net::TcpSocket;

/// `GET path` for `site.test` from `source` with `extra` header lines: the status and the
/// `Retry-After` value, or status 0 when the connection closed without an answer.
async fn get(source: [u8; 4], to: SocketAddr, extra: &str) -> (u16, Option<String>) {
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind(SocketAddr::from((source, 0))).unwrap();
    let mut wire = Wire::over(sock.connect(to).await.unwrap());
    let text = format!("GET /r HTTP/1.1\r\nHost: site.test\r\n{extra}\r\n");
    assert!(wire.send(text.as_bytes()).await);
    match wire.response(false, Duration::from_secs(10)).await {
        Ok(msg) => (msg.status(), msg.field("retry-after").map(str::to_string)),
        Err(e) if wire.closed && wire.buf.is_empty() => {
            assert!(e.starts_with("closed"), "{e}");
            (0, None)
        }
        Err(e) => panic!("{e}"),
    }
}

async fn statuses(n: usize, source: [u8; 4], to: SocketAddr, extra: &str) -> Vec<u16> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(get(source, to, extra).await.0);
    }
    out
}

/// `gatehouse_rate_limited_total` of `limit` and `outcome` (0 when absent).
async fn counted(gh: &gatehouse::Gatehouse, limit: &str, outcome: &str) -> f64 {
    let text = metrics_text(gh.shared.current().config.admin.address).await;
    let series = format!("gatehouse_rate_limited_total{{limit=\"{limit}\",outcome=\"{outcome}\"}}");
    parse_metrics(&text).get(&series).copied().unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_its_rate_a_client_gets_429_others_pass_and_the_bucket_refills() {
    let o = Origin::start("o").await;
    let (log, targets) = json_sink().await;
    let cf = ConfigFile::new();
    // 5 at once, then one every 2 s.
    let config = format!(
        "[access_log]\n{targets}[access]\nrate_limits = [\"per-client\"]\n\
         [[rate_limits]]\nname = \"per-client\"\nrate = \"5/10s\"\n{}",
        crate::common::process::pool_of(&[&o], "")
    );
    cf.write(&config);
    let gh = boot_config(gatehouse::Config::load(&cf.path).unwrap()).await;
    let at = cf.listen;
    let a = [127, 0, 0, 2];
    assert_eq!(statuses(5, a, at, "").await, [200; 5]);
    for _ in 0..5 {
        assert_eq!(json_record(&log).await["termination"], "done");
    }
    let (status, retry) = get(a, at, "").await;
    assert_eq!(status, 429);
    let retry: u64 = retry.expect("Retry-After").parse().unwrap();
    assert!((1..=2).contains(&retry), "Retry-After: {retry}");
    let rec = json_record(&log).await;
    assert_eq!(rec["status"], 429, "{rec}");
    assert_eq!(rec["termination"], "denied", "{rec}");
    assert_eq!(rec["error"], "rate_limit:per-client", "{rec}");
    assert_eq!(o.hits(), 5, "the refused request reached no server");
    // Another address has its own bucket.
    assert_eq!(get([127, 0, 0, 3], at, "").await.0, 200);
    // A reload keeps the count of an unchanged limit.
    let reload = || admin_call(&gh, "POST", "/api/reload", Some(TOKEN));
    assert_eq!(reload().await.0, 200);
    assert_eq!(get(a, at, "").await.0, 429);
    assert_eq!(counted(&gh, "per-client", "refused").await, 2.0);
    // Refused requests did not count: one interval later, exactly one more passes.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(statuses(2, a, at, "").await, [200, 429]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delay_holds_requests_instead_of_refusing_them() {
    let o = Origin::start("o").await;
    let gh = boot(&format!(
        "[access]\nrate_limits = [\"paced\"]\n[[rate_limits]]\nname = \"paced\"\n\
         rate = \"4/1s\"\nburst = 2\naction = \"delay\"\nmax_delay = \"1s\"\n{}",
        one_route(&[&o])
    ))
    .await;
    // 2 at once, then one every 250 ms: the 5th waits 750 ms, the 7th would wait 1.25 s.
    let started = Instant::now();
    let tasks: Vec<_> = (0..5)
        .map(|_| tokio::spawn(get([127, 0, 0, 2], gh.addr, "")))
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().0, 200);
    }
    assert!(
        started.elapsed() >= Duration::from_millis(700),
        "the 5th request was held: {:?}",
        started.elapsed()
    );
    assert_eq!(counted(&gh.gh, "paced", "delayed").await, 3.0);
    // Eight more at once: the bucket is 1.25 s ahead, so the later ones would wait over a
    // second, and are refused.
    let tasks: Vec<_> = (0..8)
        .map(|_| tokio::spawn(get([127, 0, 0, 2], gh.addr, "")))
        .collect();
    let mut more = Vec::new();
    for t in tasks {
        more.push(t.await.unwrap().0);
    }
    assert!(more.contains(&429), "beyond max_delay: refused ({more:?})");
    assert_eq!(get([127, 0, 0, 3], gh.addr, "").await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_counts_and_logs_without_refusing() {
    let o = Origin::start("o").await;
    let (log, targets) = json_sink().await;
    let gh = boot(&format!(
        "[access_log]\n{targets}[access]\nrate_limits = [\"trial\"]\n[[rate_limits]]\n\
         name = \"trial\"\nrate = \"2/10s\"\ndry_run = true\n{}",
        one_route(&[&o])
    ))
    .await;
    assert_eq!(statuses(5, [127, 0, 0, 2], gh.addr, "").await, [200; 5]);
    assert_eq!(o.hits(), 5);
    assert_eq!(counted(&gh.gh, "trial", "dry_run").await, 3.0);
    assert_eq!(counted(&gh.gh, "trial", "refused").await, 0.0);
    let mut errors = Vec::new();
    for _ in 0..5 {
        errors.push(json_record(&log).await["error"].clone());
    }
    let noted = errors
        .iter()
        .filter(|e| *e == "rate_limit_dry_run:trial")
        .count();
    assert_eq!(noted, 3, "{errors:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_routes_own_limit_keys_on_a_header_and_can_close() {
    let o = Origin::start("o").await;
    let gh = boot(&format!(
        "{}[[routes]]\npool = \"web\"\n\
         [[routes.rate_limits]]\nname = \"per-key\"\nkey = \"header:X-Api-Key\"\nrate = \"2/10s\"\n\
         [[routes.rate_limits]]\nname = \"per-client\"\nrate = \"6/10s\"\naction = \"close\"\n",
        unchecked_pool("web", &[&o])
    ))
    .await;
    let a = [127, 0, 0, 2];
    let key = |k| format!("X-Api-Key: {k}\r\n");
    assert_eq!(statuses(3, a, gh.addr, &key("one")).await, [200, 200, 429]);
    assert_eq!(statuses(2, a, gh.addr, &key("two")).await, [200, 200]);
    // Without the header, only the per-client limit counts: 4 of its 6 are spent (the 429
    // above was counted by neither: the first limit refused it, the second never saw it).
    assert_eq!(statuses(3, a, gh.addr, "").await, [200, 200, 0]);
    assert_eq!(counted(&gh.gh, "per-client", "closed").await, 1.0);
    assert_eq!(counted(&gh.gh, "per-key", "refused").await, 1.0);
    assert_eq!(get([127, 0, 0, 3], gh.addr, "").await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_connections_over_the_connection_rate_are_closed_before_any_request() {
    let o = Origin::start("o").await;
    let gh = boot(&format!(
        "[limits]\nmax_connection_rate_per_client = \"3/10s\"\n{}",
        one_route(&[&o])
    ))
    .await;
    let a = [127, 0, 0, 2];
    assert_eq!(statuses(4, a, gh.addr, "").await, [200, 200, 200, 0]);
    assert_eq!(get([127, 0, 0, 3], gh.addr, "").await.0, 200);
    // Requests on a connection already open are not new connections.
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind(SocketAddr::from(([127, 0, 0, 3], 0))).unwrap();
    let mut wire = Wire::over(sock.connect(gh.addr).await.unwrap());
    for _ in 0..5 {
        assert!(
            wire.send(b"GET /k HTTP/1.1\r\nHost: site.test\r\n\r\n")
                .await
        );
        let msg = wire.response(false, Duration::from_secs(5)).await.unwrap();
        assert_eq!(msg.status(), 200);
    }
    let text = metrics_text(gh.admin_address()).await;
    let refused = parse_metrics(&text)
        .get("gatehouse_client_refusals_total{reason=\"connection_rate\"}")
        .copied();
    assert_eq!(refused, Some(1.0), "{text}");
    assert_eq!(o.hits(), 4 + 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_streams_and_http1_requests_count_alike() {
    use crate::access::{h2_ask, plain_and_tls};
    let o = Origin::start("o").await;
    let limits = "[access]\nrate_limits = [\"per-key\", \"closing\"]\n\
         [[rate_limits]]\nname = \"per-key\"\nkey = \"header:X-Api-Key\"\nrate = \"3/10s\"\n\
         [[rate_limits]]\nname = \"closing\"\nkey = \"header:X-Other\"\nrate = \"1/10s\"\naction = \"close\"\n";
    let (gh, tls) = plain_and_tls(&o, limits, "").await;
    let mut h2 = crate::common::tls_client::h2_client(tls).await;
    let key = [("x-api-key", "k")];
    assert_eq!(
        get([127, 0, 0, 2], gh.addr, "X-Api-Key: k\r\n").await.0,
        200
    );
    assert_eq!(h2_ask(&mut h2, tls, ("GET", "/"), &key).await, Ok(200));
    assert_eq!(h2_ask(&mut h2, tls, ("GET", "/"), &key).await, Ok(200));
    // One bucket for both protocols: the fourth request is over, on either.
    assert_eq!(h2_ask(&mut h2, tls, ("GET", "/"), &key).await, Ok(429));
    assert_eq!(
        get([127, 0, 0, 2], gh.addr, "X-Api-Key: k\r\n").await.0,
        429
    );
    // `close` on HTTP/2 resets the stream (CANCEL); the connection serves on.
    let other = [("x-other", "o")];
    assert_eq!(h2_ask(&mut h2, tls, ("GET", "/"), &other).await, Ok(200));
    assert_eq!(
        h2_ask(&mut h2, tls, ("GET", "/"), &other).await,
        Err(h2::Reason::CANCEL)
    );
    assert_eq!(h2_ask(&mut h2, tls, ("GET", "/"), &[]).await, Ok(200));
}
