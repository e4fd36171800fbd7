//! Access rules (issue 32): deny and allow lists of addresses from several client addresses
//! (127.0.0.x), deny by method, path prefix, path regex and header, per-route rules, drops on
//! HTTP/1 and HTTP/2, a deny file re-read by a reload (and a broken one refused), the same
//! answers over HTTP/2 with TLS and on both request paths, and every refusal in the access log
//! and the metrics under its rule's name.

use crate::common::certs::{cert_entries, Ca};
use crate::common::process::ConfigFile;
use crate::common::raw::Wire;
use crate::common::syslog::{json_record, json_sink};
use crate::common::tls_client::h2_client;
use crate::common::*;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpSocket;

/// A connection to `to` from `source` (any 127.x address).
async fn wire_from(source: [u8; 4], to: SocketAddr) -> Wire {
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind(SocketAddr::from((source, 0))).unwrap();
    Wire::over(sock.connect(to).await.unwrap())
}

/// `METHOD path` for `host` from `source` with `extra` header lines: the status, or 0 when the
/// connection closed without an answer.
pub(crate) async fn ask(
    source: [u8; 4],
    to: SocketAddr,
    req: (&str, &str, &str),
    extra: &str,
) -> u16 {
    let (method, host, path) = req;
    let mut wire = wire_from(source, to).await;
    let text = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n");
    assert!(wire.send(text.as_bytes()).await);
    match wire
        .response(method == "HEAD", Duration::from_secs(5))
        .await
    {
        Ok(msg) => msg.status(),
        Err(e) if wire.closed && wire.buf.is_empty() => {
            assert!(e.starts_with("closed"), "{e}");
            0
        }
        Err(e) => panic!("{method} {path}: {e}"),
    }
}

async fn get_from(source: [u8; 4], to: SocketAddr, path: &str) -> u16 {
    ask(source, to, ("GET", "site.test", path), "").await
}

/// `gatehouse_access_refused_total` of `rule` (0 when absent).
pub(crate) async fn refused(gh: &Proxy, rule: &str) -> f64 {
    let text = metrics_text(gh.admin_address()).await;
    let series = format!("gatehouse_access_refused_total{{rule=\"{rule}\"}}");
    parse_metrics(&text).get(&series).copied().unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_address_gets_403_others_pass_and_the_refusal_is_logged_and_counted() {
    let o = Origin::start("o").await;
    let (log, targets) = json_sink().await;
    let gh = boot(&format!(
        "[access_log]\n{targets}[access]\nrules = [\"blocked\"]\n[[access_rules]]\nname = \"blocked\"\n\
         deny_cidrs = [\"127.0.0.2/32\", \"2001:db8::/32\"]\n{}",
        one_route(&[&o])
    ))
    .await;
    assert_eq!(get_from([127, 0, 0, 2], gh.addr, "/x").await, 403);
    let rec = json_record(&log).await;
    assert_eq!(rec["status"], 403, "{rec}");
    assert_eq!(rec["termination"], "denied", "{rec}");
    assert_eq!(rec["error"], "access_rule:blocked", "{rec}");
    assert_eq!(
        rec["client"].as_str().unwrap().split(':').next(),
        Some("127.0.0.2")
    );
    assert_eq!(get_from([127, 0, 0, 3], gh.addr, "/x").await, 200);
    assert_eq!(json_record(&log).await["termination"], "done");
    assert_eq!(o.hits(), 1, "the refused request never reached a server");
    assert_eq!(refused(&gh, "blocked").await, 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allow_list_admits_only_its_addresses_with_the_status_it_sets() {
    let o = Origin::start("o").await;
    let gh = boot(&format!(
        "[access]\nrules = [\"office\"]\n[[access_rules]]\nname = \"office\"\n\
         allow_cidrs = [\"127.0.0.3\", \"127.0.1.0/24\"]\nstatus = 451\n{}",
        one_route(&[&o])
    ))
    .await;
    assert_eq!(get_from([127, 0, 0, 3], gh.addr, "/").await, 200);
    assert_eq!(get_from([127, 0, 1, 9], gh.addr, "/").await, 200);
    assert_eq!(get_from([127, 0, 0, 2], gh.addr, "/").await, 451);
    assert_eq!(get_from([127, 0, 0, 1], gh.addr, "/").await, 451);
    assert_eq!(o.hits(), 2);
    assert_eq!(refused(&gh, "office").await, 2.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn methods_path_prefixes_regexes_and_headers_are_refused_in_order() {
    let o = Origin::start("o").await;
    let rules = "[access]\nrules = [\"methods\", \"admin\", \"dotfiles\", \"scanner\", \"debug\"]\n\
        [[access_rules]]\nname = \"methods\"\nmethods = [\"TRACE\", \"delete\"]\nstatus = 405\n\
        [[access_rules]]\nname = \"admin\"\npath_prefixes = [\"/admin\", \"/internal/\"]\n\
        [[access_rules]]\nname = \"dotfiles\"\npath_regex = '/\\.(env|git)(/|$)'\nstatus = 404\n\
        [[access_rules]]\nname = \"scanner\"\nheader = \"User-Agent\"\nheader_regex = \"(?i)sqlmap|nikto\"\n\
        [[access_rules]]\nname = \"debug\"\nheader = \"X-Debug\"\nheader_value = \"on\"\n";
    let gh = boot(&format!("{rules}{}", one_route(&[&o]))).await;
    let at = |method, path| (method, "site.test", path);
    let from = [127, 0, 0, 1];
    let cases: &[((&str, &str, &str), &str, u16)] = &[
        (at("TRACE", "/"), "", 405),
        (at("DELETE", "/admin"), "", 405), // the first refusing rule decides
        (at("GET", "/admin/users"), "", 403),
        (at("GET", "/internal/x"), "", 403),
        (at("GET", "/app/.git/config"), "", 404),
        (at("GET", "/.env"), "", 404),
        (at("GET", "/x"), "User-Agent: sqlmap/1.7\r\n", 403),
        (at("GET", "/x"), "X-Debug: on\r\n", 403),
        (
            at("GET", "/x"),
            "X-Debug: off\r\nUser-Agent: curl/8\r\n",
            200,
        ),
        (at("GET", "/environment"), "", 200),
        (at("GET", "/internal"), "", 200),
        (at("POST", "/admins-guide"), "", 403),
        (at("PUT", "/x"), "", 200),
    ];
    for (req, extra, want) in cases {
        assert_eq!(
            ask(from, gh.addr, *req, extra).await,
            *want,
            "{req:?} {extra:?}"
        );
    }
    assert_eq!(o.hits(), 4);
    assert_eq!(refused(&gh, "methods").await, 2.0);
    assert_eq!(refused(&gh, "dotfiles").await, 2.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_rules_apply_only_on_their_route() {
    let o = Origin::start("o").await;
    let gh = boot(&format!(
        "{}[[access_rules]]\nname = \"office\"\nallow_cidrs = [\"127.0.0.3\"]\n\
         [[routes]]\nhosts = [\"api.test\"]\npool = \"web\"\naccess = [\"office\"]\n\
         [[routes.access_rules]]\nname = \"api-no-writes\"\nmethods = [\"POST\"]\naction = \"deny\"\nstatus = 409\n\
         [[routes]]\npool = \"web\"\n",
        unchecked_pool("web", &[&o])
    ))
    .await;
    let api = |method| (method, "api.test", "/v1");
    let other = |method| (method, "www.test", "/v1");
    assert_eq!(ask([127, 0, 0, 2], gh.addr, api("GET"), "").await, 403);
    assert_eq!(ask([127, 0, 0, 3], gh.addr, api("GET"), "").await, 200);
    assert_eq!(ask([127, 0, 0, 3], gh.addr, api("POST"), "").await, 409);
    assert_eq!(ask([127, 0, 0, 2], gh.addr, other("GET"), "").await, 200);
    assert_eq!(ask([127, 0, 0, 2], gh.addr, other("POST"), "").await, 200);
    assert_eq!(o.hits(), 3);
    assert_eq!(refused(&gh, "api-no-writes").await, 1.0);
}

/// One plain and one TLS listener (HTTP/2 by ALPN) in front of `o`, with `rules`.
pub(crate) async fn plain_and_tls(o: &Origin, rules: &str, extra: &str) -> (Proxy, SocketAddr) {
    let (ca, dir) = (Ca::new(), state_dir());
    let leaf = ca.issue(&dir, "a", &["a.test"]);
    let tls = free_port();
    let body = format!(
        "[[listeners]]\nname = \"tls\"\naddress = \"{tls}\"\n[listeners.tls]\n{}\n{extra}{rules}{}",
        cert_entries(&[&leaf]),
        one_route(&[o])
    );
    (boot(&body).await, tls)
}

/// `METHOD path` with `headers` on an HTTP/2 connection: the status, or the stream's reset.
pub(crate) async fn h2_ask(
    send: &mut h2::client::SendRequest<bytes::Bytes>,
    tls: SocketAddr,
    (method, path): (&str, &str),
    headers: &[(&str, &str)],
) -> Result<u16, h2::Reason> {
    let mut req = http::Request::builder()
        .method(method)
        .uri(format!("https://site.test:{}{path}", tls.port()));
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    let (resp, _) = send.send_request(req.body(()).unwrap(), true).unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(5), resp).await;
    match resp.expect("an answer or a reset within 5 s") {
        Ok(r) => Ok(r.status().as_u16()),
        Err(e) => Err(e
            .reason()
            .unwrap_or_else(|| panic!("not a stream reset: {e}"))),
    }
}

const DROP: &str = "[access]\nrules = [\"probe\", \"forbidden\"]\n\
    [[access_rules]]\nname = \"probe\"\npath_prefixes = [\"/wp-login\"]\naction = \"drop\"\n\
    [[access_rules]]\nname = \"forbidden\"\npath_regex = \"^/secret\"\nheader = \"X-Key\"\nheader_value = \"k\"\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drop_closes_without_an_answer_on_http1_and_refuses_the_stream_on_http2() {
    let o = Origin::start("o").await;
    let (log, targets) = json_sink().await;
    let (gh, tls) = plain_and_tls(&o, DROP, &format!("[access_log]\n{targets}")).await;
    // HTTP/1: the connection closes, nothing written.
    let mut wire = Wire::connect(gh.addr).await;
    assert!(
        wire.send(b"GET /wp-login.php HTTP/1.1\r\nHost: a\r\n\r\n")
            .await
    );
    assert!(!wire.open_after(Duration::from_secs(3)).await, "closed");
    assert!(
        wire.buf.is_empty(),
        "no answer: {:?}",
        String::from_utf8_lossy(&wire.buf)
    );
    let rec = json_record(&log).await;
    assert_eq!(
        (&rec["termination"], &rec["error"]),
        (&"denied".into(), &"access_rule:probe".into())
    );
    assert_eq!(rec["status"], 0, "{rec}");
    // HTTP/2: that stream is reset with CANCEL (not REFUSED_STREAM, which invites a retry);
    // the connection serves the next one.
    let mut h2 = h2_client(tls).await;
    let dropped = h2_ask(&mut h2, tls, ("GET", "/wp-login.php"), &[]).await;
    assert_eq!(dropped, Err(h2::Reason::CANCEL));
    assert_eq!(json_record(&log).await["error"], "access_rule:probe");
    assert_eq!(h2_ask(&mut h2, tls, ("GET", "/fine"), &[]).await, Ok(200));
    assert_eq!(o.hits(), 1);
    assert_eq!(refused(&gh, "probe").await, 2.0);
}

/// Request header fields of a case.
type Headers<'a> = &'a [(&'a str, &'a str)];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_over_tls_gets_the_same_answers_as_http1() {
    let o = Origin::start("o").await;
    let (gh, tls) = plain_and_tls(&o, DROP, "").await;
    let mut h2 = h2_client(tls).await;
    let cases: &[(&str, &str, Headers)] = &[
        ("GET", "/", &[]),
        ("GET", "/secret/a", &[("x-key", "k")]),
        ("GET", "/secret/a", &[("x-key", "other")]),
        ("POST", "/secret", &[("x-key", "k")]),
        ("HEAD", "/secretary", &[("x-key", "k")]),
        ("GET", "/wp-login.php", &[]),
        ("DELETE", "/wp-login", &[("x-key", "k")]),
        ("GET", "/public/wp-login", &[]),
    ];
    for (method, path, headers) in cases {
        let extra: String = headers
            .iter()
            .map(|(n, v)| format!("{n}: {v}\r\n"))
            .collect();
        let h1 = ask([127, 0, 0, 1], gh.addr, (method, "site.test", path), &extra).await;
        let h2 = h2_ask(&mut h2, tls, (method, path), headers).await;
        let h2 = h2.unwrap_or_else(|reason| {
            assert_eq!(reason, h2::Reason::CANCEL);
            0 // a drop, as HTTP/1's closed connection
        });
        assert_eq!(
            h1, h2,
            "{method} {path} {headers:?}: HTTP/1 {h1}, HTTP/2 {h2}"
        );
    }
    assert_eq!(refused(&gh, "forbidden").await, 6.0);
    assert_eq!(refused(&gh, "probe").await, 4.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fast_path_and_pingoras_path_answer_alike_and_before_the_cache() {
    let o = Origin::start("o").await;
    o.set_headers(&[("cache-control", "max-age=60")]);
    for direct in [true, false] {
        let rules = "[access]\nrules = [\"blocked\"]\n[[access_rules]]\nname = \"blocked\"\n\
            deny_cidrs = [\"127.0.0.2\"]\n";
        let gh = proxy_with(&[o.addr], direct, rules, 0, "enabled = true").await;
        // A fresh object in the cache, fetched by an address the rule lets through.
        let path = format!("/cached-{direct}");
        assert_eq!(get_from([127, 0, 0, 3], gh.addr, &path).await, 200);
        assert_eq!(get_from([127, 0, 0, 3], gh.addr, &path).await, 200);
        let hits = o.hits();
        // GET (the fast path's, with a hit waiting) and POST (pingora's): both refused.
        assert_eq!(
            get_from([127, 0, 0, 2], gh.addr, &path).await,
            403,
            "direct {direct}"
        );
        let post = ("POST", "site.test", path.as_str());
        assert_eq!(
            ask([127, 0, 0, 2], gh.addr, post, "").await,
            403,
            "direct {direct}"
        );
        let head = ("HEAD", "site.test", "/other");
        assert_eq!(
            ask([127, 0, 0, 2], gh.addr, head, "").await,
            403,
            "direct {direct}"
        );
        assert_eq!(o.hits(), hits, "no refused request reached the server");
        assert_eq!(refused(&gh, "blocked").await, 3.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deny_file_is_reread_by_a_reload_and_a_broken_one_keeps_the_running_rules() {
    let o = Origin::start("o").await;
    let cf = ConfigFile::new();
    let list = cf.path.with_file_name("blocked.lst");
    std::fs::write(&list, "# scanners\n127.0.0.2\n").unwrap();
    cf.write(&format!(
        "[access]\nrules = [\"blocklist\"]\n[[access_rules]]\nname = \"blocklist\"\n\
         deny_cidrs_file = \"blocked.lst\"\n{}",
        crate::common::process::pool_of(&[&o], "")
    ));
    let gh = boot_config(gatehouse::Config::load(&cf.path).unwrap()).await;
    let at = cf.listen;
    assert_eq!(
        (
            get_from([127, 0, 0, 2], at, "/").await,
            get_from([127, 0, 0, 3], at, "/").await
        ),
        (403, 200)
    );
    std::fs::write(&list, "127.0.0.3/32  # moved\n::ffff:127.0.0.4\n").unwrap();
    let reload = || admin_call(&gh, "POST", "/api/reload", Some(TOKEN));
    let (status, body) = reload().await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(get_from([127, 0, 0, 2], at, "/").await, 200);
    assert_eq!(get_from([127, 0, 0, 3], at, "/").await, 403);
    assert_eq!(
        get_from([127, 0, 0, 4], at, "/").await,
        403,
        "IPv4-mapped entry"
    );
    // A broken file: the reload is refused naming the key, the file and its line.
    std::fs::write(&list, "127.0.0.5\n127.0.0.300\n").unwrap();
    let (status, body) = reload().await;
    assert_eq!(status, 422, "{body}");
    let errors = body["errors"].to_string();
    assert!(
        errors.contains("access_rules[0].deny_cidrs_file"),
        "{errors}"
    );
    assert!(
        errors.contains("blocked.lst: line 2: not an address or CIDR"),
        "{errors}"
    );
    assert_eq!(
        get_from([127, 0, 0, 3], at, "/").await,
        403,
        "the running rules stay"
    );
    assert_eq!(get_from([127, 0, 0, 5], at, "/").await, 200);
    std::fs::remove_file(&list).unwrap();
    let (status, body) = reload().await;
    assert_eq!(status, 422, "{body}");
    assert!(body["errors"].to_string().contains("blocked.lst"), "{body}");
    assert_eq!(get_from([127, 0, 0, 3], at, "/").await, 403);
}
