//! Micro-benchmarks of per-request work that gatehouse owns (not pingora's): cache key
//! building, a cache lookup in the moka storage, route matching, and formatting one access log
//! record in each format. `cargo bench --bench micro`.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use gatehouse::accesslog::{format, AccessLog, Record, Termination};
use gatehouse::cache::Cache;
use gatehouse::config::Config;
use pingora::cache::CacheMeta;
use pingora::http::ResponseHeader;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, SystemTime};

const CONFIG: &str = r#"
[server]
state_dir = "/tmp/gatehouse-micro"
[[listeners]]
address = "127.0.0.1:1"
[[pools.web.servers]]
address = "127.0.0.1:2"
[[pools.api.servers]]
address = "127.0.0.1:3"
[[routes]]
name = "api"
hosts = ["api.example.com"]
path_prefix = "/v1/"
pool = "api"
[[routes]]
name = "static"
hosts = ["*.example.com"]
path_prefix = "/static/"
pool = "web"
[routes.cache]
enabled = true
ignore_params = ["utm_source", "utm_medium"]
[[routes]]
name = "site"
hosts = ["www.example.com", "example.com"]
pool = "web"
[routes.cache]
enabled = true
[[routes]]
name = "default"
pool = "web"
[[access_log.targets]]
transport = "stdout"
format = "json"
[[access_log.targets]]
transport = "stdout"
format = "rfc5424"
[[access_log.targets]]
transport = "stdout"
format = "rfc3164"
"#;

/// Runs a future that never waits (the moka storage answers at once).
fn now<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("the storage is expected to answer without waiting"),
    }
}

fn config() -> Config {
    Config::from_toml(CONFIG, "micro").expect("bench config")
}

fn cache_key(c: &mut Criterion) {
    let config = config();
    let rules = config.routes[1].cache.clone().expect("cache rules");
    let uri: http::Uri = "/static/app.css?v=3&utm_source=x&b=2".parse().unwrap();
    c.bench_function("cache key: build (query, ignored params)", |b| {
        b.iter(|| {
            Cache::key(
                false,
                black_box("cdn.example.com:443"),
                black_box(&uri),
                &rules,
            )
        })
    });
}

fn cache_lookup(c: &mut Criterion) {
    let config = config();
    let rules = config.routes[2].cache.clone().expect("cache rules");
    let cache = Cache::new(&config.cache);
    let now_t = SystemTime::now();
    // 10 000 objects of 1 KiB, then look up one that is there and one that is not.
    for i in 0..10_000 {
        let uri: http::Uri = format!("/page/{i}").parse().unwrap();
        let key = Cache::key(false, "www.example.com", &uri, &rules);
        let mut header = ResponseHeader::build(200, None).unwrap();
        header.insert_header("content-type", "text/html").unwrap();
        header
            .insert_header("cache-control", "public, max-age=3600")
            .unwrap();
        header.insert_header("content-length", "1024").unwrap();
        let meta = CacheMeta::new(now_t + Duration::from_secs(3600), now_t, 0, 0, header);
        let mut miss = cache.storage.clone().miss_handler(&key, &meta);
        now(miss.write_body(bytes::Bytes::from(vec![b'a'; 1024]), true)).unwrap();
        now(miss.finish()).unwrap();
    }
    cache.storage.entries.run_pending_tasks();
    let hit_uri: http::Uri = "/page/4242".parse().unwrap();
    let hit = Cache::key(false, "www.example.com", &hit_uri, &rules);
    let miss_uri: http::Uri = "/page/absent".parse().unwrap();
    let miss = Cache::key(false, "www.example.com", &miss_uri, &rules);
    assert!(cache.storage.lookup(&hit).is_some());
    c.bench_function("cache lookup: hit (meta rebuilt, body shared)", |b| {
        b.iter(|| cache.storage.lookup(black_box(&hit)).is_some())
    });
    c.bench_function("cache lookup: miss", |b| {
        b.iter(|| cache.storage.lookup(black_box(&miss)).is_none())
    });
}

fn route_match(c: &mut Criterion) {
    let config = config();
    let router = gatehouse::routing::Router::new(&config.routes);
    c.bench_function("route: exact host, longest prefix", |b| {
        b.iter(|| router.route(black_box(Some("api.example.com")), black_box("/v1/users/7")))
    });
    c.bench_function("route: wildcard host with port", |b| {
        b.iter(|| {
            router.route(
                black_box(Some("cdn.example.com:8443")),
                black_box("/static/x.js"),
            )
        })
    });
    c.bench_function("route: unknown host to default", |b| {
        b.iter(|| router.route(black_box(Some("other.test")), black_box("/")))
    });
}

fn record() -> Record {
    Record {
        time: Some(SystemTime::now()),
        request_id: "5f0c6a9e1b2d3c4e00000042".into(),
        client: Some("203.0.113.7:51234".parse().unwrap()),
        listener: "https".into(),
        method: "GET".into(),
        authority: "www.example.com".into(),
        path: "/questions/12345/how-do-i?sort=votes".into(),
        http_version: "HTTP/1.1",
        status: 200,
        bytes_in: 0,
        bytes_out: 18_234,
        route: Some("site".into()),
        pool: Some("web".into()),
        server: Some("web3".into()),
        cache: Some("MISS"),
        t_conn_age_ms: Some(12.5),
        t_queue_ms: Some(0.04),
        t_connect_ms: Some(0.0),
        t_response_ms: Some(23.7),
        t_total_ms: 24.1,
        termination: Termination::Done,
        request_headers: vec![(
            http::header::USER_AGENT,
            "Mozilla/5.0 (X11; Linux x86_64)".into(),
        )],
        response_headers: vec![(http::HeaderName::from_static("x-runtime"), "0.0231".into())],
        ..Record::default()
    }
}

fn log_format(c: &mut Criterion) {
    let config = config();
    let record = record();
    for target in &config.access_log.targets {
        let name = format!("log record: {:?}", target.format);
        c.bench_function(&name, |b| b.iter(|| format(target, black_box(&record))));
    }
}

/// The whole hand-off a request pays: sampling, formatting and the non-blocking send of a UDP
/// record (to a bound socket that is not read: the kernel drops what overflows), and the
/// append of a record to a file target's batch.
fn log_handoff(c: &mut Criterion) {
    let sink = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let dir = std::env::temp_dir().join(format!("gatehouse-micro-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("access.log");
    for (name, target) in [
        (
            "log push: udp rfc5424",
            format!("address = \"{}\"", sink.local_addr().unwrap()),
        ),
        (
            "log push: file json (batched)",
            format!(
                "transport = \"file\"\nformat = \"json\"\npath = {:?}",
                file.display().to_string()
            ),
        ),
    ] {
        let toml = format!(
            "[[listeners]]\naddress = \"127.0.0.1:1\"\n[pools.p]\n[[pools.p.servers]]\naddress = \"127.0.0.1:2\"\n\
             [[routes]]\npool = \"p\"\n[access_log]\nqueue_size = 1000000\n[[access_log.targets]]\n{target}\n"
        );
        let config = Config::from_toml(&toml, "bench").unwrap();
        let log = AccessLog::new(&config.access_log);
        c.bench_function(name, |b| b.iter(|| log.push(black_box(record()))));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group! {
    name = micro;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = cache_key, cache_lookup, route_match, log_format, log_handoff
}
criterion_main!(micro);
