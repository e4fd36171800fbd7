//! The per-request timing log: real syslog datagrams received and parsed field by field.

use crate::common::syslog::{json_record, json_sink, nothing_more, record_text};
use crate::common::*;
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;
use tokio::net::UdpSocket;

/// A parsed RFC 5424 message: header fields, structured data, message.
#[derive(Debug)]
struct Syslog5424 {
    pri: u16,
    hostname: String,
    app: String,
    sd: HashMap<String, HashMap<String, String>>,
    msg: String,
}

fn parse_5424(line: &str) -> Syslog5424 {
    let rest = line.strip_prefix('<').expect("starts with <PRI>");
    let (pri, rest) = rest.split_once(">1 ").expect("version 1");
    let mut parts = rest.splitn(6, ' ');
    let _time = parts.next().unwrap();
    let hostname = parts.next().unwrap().to_string();
    let app = parts.next().unwrap().to_string();
    let _procid = parts.next().unwrap();
    let _msgid = parts.next().unwrap();
    let mut sd_text = parts.next().unwrap().chars().peekable();
    let mut sd = HashMap::new();
    // [id k="v" k="v"][id2 ...] MSG
    while sd_text.peek() == Some(&'[') {
        sd_text.next();
        let id: String = sd_text
            .by_ref()
            .take_while(|c| *c != ' ' && *c != ']')
            .collect();
        let mut params = HashMap::new();
        loop {
            let name: String = sd_text.by_ref().take_while(|c| *c != '=').collect();
            assert_eq!(sd_text.next(), Some('"'));
            let mut value = String::new();
            while let Some(c) = sd_text.next() {
                match c {
                    '\\' => value.push(sd_text.next().unwrap()),
                    '"' => break,
                    c => value.push(c),
                }
            }
            params.insert(name.trim().to_string(), value);
            match sd_text.next() {
                Some(' ') => continue,
                Some(']') => break,
                other => panic!("bad SD at {other:?} in {line}"),
            }
        }
        sd.insert(id, params);
    }
    let msg: String = sd_text.collect();
    Syslog5424 {
        pri: pri.parse().unwrap(),
        hostname,
        app,
        sd,
        msg: msg.trim().to_string(),
    }
}

fn log_section(targets: &str) -> String {
    format!(
        "[access_log]\ncapture_request_headers = [\"User-Agent\"]\ncapture_response_headers = [\"X-Runtime\"]\n{targets}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_rfc5424_record_per_request_for_each_outcome() {
    let o = Origin::start("o").await;
    o.set_headers(&[("cache-control", "max-age=60")]);
    let sink = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let body = format!(
        "{}[[access_log.targets]]\ntransport = \"udp\"\naddress = \"{}\"\nformat = \"rfc5424\"\nfacility = \"local3\"\ntag = \"edge\"\nhostname = \"gh1\"\n\
         {}[pools.dead.health]\nenabled = false\n[pools.dead]\nretries = 0\n[[pools.dead.servers]]\naddress = \"{}\"\n\
         [[routes]]\nhosts = [\"dead.test\"]\npool = \"dead\"\n\
         [[routes]]\nhosts = [\"ro.test\"]\npool = \"web\"\nreadonly = \"always\"\n\
         [[routes]]\npool = \"web\"\n",
        log_section(""),
        sink.local_addr().unwrap(),
        unchecked_pool("web", &[&o]),
        free_port()
    );
    let gh = boot(&body).await;
    let c = client();

    // A proxied request (a miss), then a cache hit.
    let r = c
        .get(gh.url("/page?x=1"))
        .header("user-agent", "probe/1.0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let rec = parse_5424(&record_text(&sink).await);
    nothing_more(&sink).await;
    assert_eq!(rec.pri, 19 * 8 + 6);
    assert_eq!((rec.hostname.as_str(), rec.app.as_str()), ("gh1", "edge"));
    let f = &rec.sd["gatehouse@32473"];
    assert_eq!(f["method"], "GET");
    assert_eq!(f["path"], "/page?x=1");
    assert_eq!(f["status"], "200");
    assert_eq!(f["server"], "o");
    assert_eq!(f["pool"], "web");
    assert_eq!(f["cache"], "MISS");
    assert_eq!(f["termination"], "done");
    assert_eq!(f["http_version"], "HTTP/1.1");
    assert!(f["client"].starts_with("127.0.0.1:"));
    assert_eq!(f["request_id"].len(), 24, "a generated id");
    assert!(f["bytes_out"].parse::<u64>().unwrap() >= 1);
    assert_eq!(rec.sd["req@32473"]["user-agent"], "probe/1.0");
    assert_eq!(
        rec.sd["resp@32473"]["x-runtime"], "0.001",
        "captured server timing header"
    );
    assert!(
        rec.msg.contains("GET") && rec.msg.contains("200"),
        "{}",
        rec.msg
    );
    let seen_id = o.seen()[0].headers["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(
        f["request_id"], seen_id,
        "the id the server got is the id logged"
    );

    c.get(gh.url("/page?x=1"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    let rec = parse_5424(&record_text(&sink).await);
    let f = &rec.sd["gatehouse@32473"];
    assert_eq!(
        (f["cache"].as_str(), f["termination"].as_str()),
        ("HIT", "cache")
    );
    assert_eq!(
        (f["server"].as_str(), f["t_connect_ms"].as_str()),
        ("-", "-")
    );
    assert_eq!(f["request_id"], "abc-123", "an incoming id is kept");
    nothing_more(&sink).await;

    // A local 503 (read-only refusal).
    let r = c
        .post(gh.url("/form"))
        .header("host", "ro.test")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let rec = parse_5424(&record_text(&sink).await);
    let f = &rec.sd["gatehouse@32473"];
    assert_eq!(
        (f["status"].as_str(), f["termination"].as_str()),
        ("503", "local")
    );
    assert_eq!(f["readonly"], "refused");
    nothing_more(&sink).await;

    // A 502: the only server refuses connections.
    let r = c
        .get(gh.url("/x"))
        .header("host", "dead.test")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    let rec = parse_5424(&record_text(&sink).await);
    let f = &rec.sd["gatehouse@32473"];
    assert_eq!(
        (f["status"].as_str(), f["termination"].as_str()),
        ("502", "connect_error")
    );
    assert_eq!(f["pool"], "dead");
    nothing_more(&sink).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timers_are_consistent_and_a_reused_connection_connects_in_zero() {
    let o = Origin::start("o").await;
    o.set_mode(Mode::Delay(Duration::from_millis(200)));
    let (sink, target) = json_sink().await;
    let body = format!(
        "{}{target}{}[routes.cache]\nenabled = false\n",
        log_section(""),
        one_route(&[&o])
    );
    let gh = boot(&body).await;
    let c = client();
    let mut records = Vec::new();
    for _ in 0..2 {
        assert_eq!(get(&c, &gh.url("/slow")).await.0, 200);
        records.push(json_record(&sink).await);
    }
    let num =
        |v: &serde_json::Value, k: &str| v[k].as_f64().unwrap_or_else(|| panic!("{k} in {v}"));
    for r in &records {
        assert_eq!(r["status"], 200, "numbers are numbers: {r}");
        assert!(r["tls_version"].is_null(), "\"-\" is null: {r}");
        assert!(num(r, "t_response_ms") >= 200.0, "{r}");
        let phases = num(r, "t_queue_ms") + num(r, "t_connect_ms") + num(r, "t_response_ms");
        assert!(num(r, "t_total_ms") >= phases, "{r}");
    }
    assert!(
        num(&records[0], "t_connect_ms") > 0.0,
        "a new connection takes time"
    );
    assert_eq!(
        num(&records[1], "t_connect_ms"),
        0.0,
        "a reused connection connects in 0"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc3164_over_a_unix_socket_and_captured_headers_can_be_stripped() {
    let o = Origin::start("o").await;
    let dir = state_dir();
    let path = dir.join("log.sock");
    let sink = tokio::net::UnixDatagram::bind(&path).unwrap();
    let body = format!(
        "[access_log]\ncapture_response_headers = [\"X-Runtime\"]\nstrip_captured_response_headers = true\n\
         [[access_log.targets]]\ntransport = \"unix\"\npath = {:?}\nformat = \"rfc3164\"\nhostname = \"gh2\"\n{}[[routes]]\npool = \"web\"\n",
        path.display().to_string(),
        unchecked_pool("web", &[&o])
    );
    let gh = boot(&body).await;
    let r = client().get(gh.url("/u")).send().await.unwrap();
    assert!(
        r.headers().get("x-runtime").is_none(),
        "stripped from the client response"
    );
    let mut buf = vec![0u8; 65536];
    let n = tokio::time::timeout(Duration::from_secs(5), sink.recv(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let line = String::from_utf8_lossy(&buf[..n]).into_owned();
    // <PRI>Mmm dd hh:mm:ss HOST TAG[PID]: MSG
    let (pri, rest) = line.strip_prefix('<').unwrap().split_once('>').unwrap();
    assert_eq!(pri, "134");
    let month = &rest[..3];
    assert!(
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
            .contains(&month)
    );
    assert_eq!(&rest[6..7], " ");
    assert_eq!(&rest[9..10], ":");
    let after_time = &rest[16..];
    assert!(after_time.starts_with("gh2 gatehouse["), "{line}");
    let msg = after_time.split_once("]: ").unwrap().1;
    assert!(
        msg.contains("status=200") && msg.contains("path=/u"),
        "{msg}"
    );
    assert!(msg.contains("hdr.x-runtime=0.001"), "still logged: {msg}");
}

/// Starts rsyslogd writing what it receives on UDP `port` to `out` ("app-name SD message"
/// lines), and waits until it is ready: a probe message it received is in `out`.
async fn start_rsyslog(bin: &Path, dir: &Path, port: u16, out: &Path) -> Reap {
    let conf = dir.join("rsyslog.conf");
    std::fs::write(
        &conf,
        format!(
            "global(workDirectory=\"{dir}\")\n\
             module(load=\"imudp\")\n\
             input(type=\"imudp\" address=\"127.0.0.1\" port=\"{port}\" ruleset=\"gh\")\n\
             template(name=\"raw\" type=\"string\" string=\"%app-name% %structured-data% %msg%\\n\")\n\
             ruleset(name=\"gh\") {{ action(type=\"omfile\" file=\"{out}\" template=\"raw\") }}\n",
            dir = dir.display(),
            out = out.display()
        ),
    )
    .unwrap();
    let errors = dir.join("rsyslogd.err");
    let child = std::process::Command::new(bin)
        .args(["-n", "-f"])
        .arg(&conf)
        .arg("-i")
        .arg(dir.join("rsyslogd.pid"))
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&errors).unwrap())
        .spawn()
        .unwrap();
    let mut rsyslog = Reap(child);
    let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(out).is_ok_and(|t| t.contains("probe")) {
        if let Some(status) = rsyslog.0.try_wait().unwrap() {
            let why = std::fs::read_to_string(&errors).unwrap_or_default();
            panic!("rsyslogd exited ({status}): {why}");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "rsyslogd wrote nothing it received in 20 s"
        );
        let _ = probe.send_to(b"<14>1 - - probe - - - ready", ("127.0.0.1", port));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    rsyslog
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_to_end_through_a_real_rsyslog() {
    let Some(rsyslogd) = tool(
        "rsyslog",
        &["/usr/sbin/rsyslogd", "/sbin/rsyslogd"],
        "rsyslog",
    ) else {
        return; // skipped by the user, and recorded
    };
    let dir = state_dir();
    // Below the ephemeral range, so no other test's socket takes it before rsyslog binds it.
    let port = free_port().port();
    let out = dir.join("access.log");
    let _rsyslog = start_rsyslog(&rsyslogd, &dir, port, &out).await;
    let o = Origin::start("o").await;
    let body = format!(
        "[[access_log.targets]]\naddress = \"127.0.0.1:{port}\"\ntag = \"gatehouse\"\n{}",
        one_route(&[&o])
    );
    let gh = boot(&body).await;
    let c = client();
    for i in 0..5 {
        assert_eq!(get(&c, &gh.url(&format!("/rsyslog/{i}"))).await.0, 200);
    }
    let records = || {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        text.lines()
            .filter(|l| !l.starts_with("probe "))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while records().len() < 5 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let lines = records();
    assert_eq!(lines.len(), 5, "{lines:#?}");
    for (i, l) in lines.iter().enumerate() {
        assert!(l.starts_with("gatehouse [gatehouse@32473 "), "{l}");
        assert!(l.contains(&format!("path=\"/rsyslog/{i}\"")), "{l}");
        assert!(l.contains("status=\"200\""), "{l}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_facts_are_logged() {
    use crate::common::certs::{cert_entries, Ca};
    let (ca, dir) = (Ca::new(), state_dir());
    let leaf = ca.issue(&dir, "a", &["a.test"]);
    let o = Origin::start("o").await;
    let (sink, target) = json_sink().await;
    let addr = free_port();
    let toml = format!(
        "{}[access_log]\n{target}\
         [[listeners]]\nname = \"https\"\naddress = \"{addr}\"\n[listeners.tls]\n{}\n{}",
        server_section(),
        cert_entries(&[&leaf]),
        one_route(&[&o])
    );
    let _gh = boot_config(gatehouse::Config::from_toml(&toml, "t").unwrap()).await;
    let c = crate::common::certs::https_client(&ca, &["a.test"], addr, false);
    let r = c
        .get(format!("https://a.test:{}/t", addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    let v = json_record(&sink).await;
    assert_eq!(v["tls_sni"], "a.test");
    assert_eq!(v["alpn"], "h2");
    assert_eq!(v["http_version"], "HTTP/2.0");
    assert_eq!(v["listener"], "https");
    assert!(
        v["tls_version"].as_str().unwrap().contains("1_3")
            || v["tls_version"].as_str().unwrap().contains("1.3"),
        "{v}"
    );
    assert!(!v["tls_cipher"].as_str().unwrap().is_empty());
    assert!(v["tls_handshake_ms"].as_f64().unwrap() > 0.0, "{v}");
}
