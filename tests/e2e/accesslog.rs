//! The per-request timing log: real syslog datagrams received and parsed field by field.

use crate::common::*;
use std::collections::HashMap;
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

async fn receive(sock: &UdpSocket) -> String {
    let mut buf = vec![0u8; 65536];
    let n = tokio::time::timeout(Duration::from_secs(5), sock.recv(&mut buf))
        .await
        .expect("a record within 5 s")
        .unwrap();
    String::from_utf8(buf[..n].to_vec()).unwrap()
}

async fn nothing_more(sock: &UdpSocket) {
    let mut buf = vec![0u8; 65536];
    let more = tokio::time::timeout(Duration::from_millis(300), sock.recv(&mut buf)).await;
    assert!(
        more.is_err(),
        "one record per request: got another {:?}",
        more.map(|r| r.map(|n| String::from_utf8_lossy(&buf[..n]).into_owned()))
    );
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
    let rec = parse_5424(&receive(&sink).await);
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
    let rec = parse_5424(&receive(&sink).await);
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
    let rec = parse_5424(&receive(&sink).await);
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
    let rec = parse_5424(&receive(&sink).await);
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
    let sink = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let body = format!(
        "{}[[access_log.targets]]\naddress = \"{}\"\nformat = \"json\"\n{}[routes.cache]\nenabled = false\n",
        log_section(""),
        sink.local_addr().unwrap(),
        one_route(&[&o]));
    let gh = boot(&body).await;
    let c = client();
    let mut records = Vec::new();
    for _ in 0..2 {
        assert_eq!(get(&c, &gh.url("/slow")).await.0, 200);
        let v: serde_json::Value = serde_json::from_str(&receive(&sink).await).unwrap();
        records.push(v);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tcp_receiver_that_never_reads_costs_requests_nothing() {
    let o = Origin::start("o").await;
    // A receiver that accepts and never reads, with a tiny receive buffer.
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = sock.listen(8).unwrap();
    let addr = listener.local_addr().unwrap();
    let _held = tokio::spawn(async move {
        let mut conns = Vec::new();
        while let Ok((c, _)) = listener.accept().await {
            conns.push(c);
        }
    });
    let body = format!(
        "[access_log]\nqueue_size = 16\ncapture_request_headers = [\"X-Big\"]\n\
         [[access_log.targets]]\nname = \"stuck\"\ntransport = \"tcp\"\naddress = \"{addr}\"\n{}",
        one_route(&[&o])
    );
    let gh = boot(&body).await;
    let big = "b".repeat(8000);
    let mut tasks = Vec::new();
    for t in 0..8 {
        let (c, url, big) = (client(), gh.url(&format!("/t{t}")), big.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..150 {
                let started = std::time::Instant::now();
                let r = c.get(&url).header("x-big", &big).send().await.unwrap();
                assert_eq!(r.status(), 200);
                assert!(
                    started.elapsed() < Duration::from_secs(2),
                    "a request waited on logging"
                );
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let stats = gh.gh.shared.access_log.stats();
    let dropped = stats[0]
        .1
        .dropped
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(dropped > 0, "records were dropped and counted");
    assert_eq!(o.hits(), 1200);
}

/// A unix receiver that never reads fills its queue, after which every send fails at once
/// (EAGAIN); a path nobody listens on fails at once too. Requests never wait, and every record
/// is counted as sent or dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_datagram_receiver_that_never_reads_or_is_gone_costs_requests_nothing() {
    let o = Origin::start("o").await;
    let dir = state_dir();
    let stuck = dir.join("stuck.sock");
    let _never_read = std::os::unix::net::UnixDatagram::bind(&stuck).unwrap();
    let gone = dir.join("nobody.sock");
    let body = format!(
        "[[access_log.targets]]\nname = \"stuck\"\ntransport = \"unix\"\npath = {:?}\n\
         [[access_log.targets]]\nname = \"gone\"\ntransport = \"unix\"\npath = {:?}\n{}",
        stuck.display().to_string(),
        gone.display().to_string(),
        one_route(&[&o])
    );
    let gh = boot(&body).await;
    let mut tasks = Vec::new();
    for t in 0..4 {
        let (c, url) = (client(), gh.url(&format!("/d{t}")));
        tasks.push(tokio::spawn(async move {
            for _ in 0..250 {
                let started = std::time::Instant::now();
                assert_eq!(c.get(&url).send().await.unwrap().status(), 200);
                assert!(
                    started.elapsed() < Duration::from_secs(2),
                    "a request waited on logging"
                );
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    wait_until_counted(&gh, 1000).await;
    let stats = gh.gh.shared.access_log.stats();
    let load = |i: usize| {
        let s = stats[i].1;
        (
            s.sent.load(std::sync::atomic::Ordering::Relaxed),
            s.dropped.load(std::sync::atomic::Ordering::Relaxed),
        )
    };
    let (sent, dropped) = load(0);
    assert!(
        sent > 0,
        "the stuck receiver took some before its queue filled"
    );
    assert!(dropped > 0, "then every send failed, counted");
    assert_eq!(sent + dropped, 1000);
    assert_eq!(load(1), (0, 1000), "nobody listens: all dropped");
}

/// File records are written in batches; stopping gatehouse writes the last batch before the
/// stop returns, so a record accepted is a record kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_writes_the_last_batch_before_it_returns() {
    let o = Origin::start("o").await;
    let path = state_dir().join("access.log");
    let body = format!(
        "[[access_log.targets]]\ntransport = \"file\"\npath = {:?}\n{}",
        path.display().to_string(),
        one_route(&[&o])
    );
    let gh = boot(&body).await;
    let c = client();
    for i in 0..300 {
        assert_eq!(
            c.get(gh.url(&format!("/f{i}")))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
    tokio::task::spawn_blocking(move || drop(gh)).await.unwrap();
    let lines = std::fs::read_to_string(&path).unwrap().lines().count();
    assert_eq!(lines, 300);
}

/// Reads octet-counted syslog frames (RFC 6587) from one TCP connection until it closes or
/// `want` frames came; returns the messages.
async fn read_frames(conn: &mut tokio::net::TcpStream, want: usize) -> Vec<String> {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let mut frames = Vec::new();
    let mut chunk = [0u8; 65536];
    while frames.len() < want {
        let read = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut chunk)).await;
        let Ok(Ok(n)) = read else { break };
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        while let Some(space) = buf.iter().position(|b| *b == b' ') {
            let len: usize = std::str::from_utf8(&buf[..space]).unwrap().parse().unwrap();
            if buf.len() < space + 1 + len {
                break;
            }
            frames.push(String::from_utf8_lossy(&buf[space + 1..space + 1 + len]).into_owned());
            buf.drain(..space + 1 + len);
        }
    }
    frames
}

/// A TCP receiver that restarts: the writer notices the dead connection, reconnects with
/// backoff, and records flow again; every record is counted as sent or dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tcp_receiver_that_restarts_gets_records_again() {
    use std::sync::atomic::Ordering::Relaxed;
    let o = Origin::start("o").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let body = format!(
        "[[access_log.targets]]\ntransport = \"tcp\"\naddress = \"{addr}\"\n{}",
        one_route(&[&o])
    );
    let gh = boot(&body).await;
    let c = client();
    for i in 0..5 {
        c.get(gh.url(&format!("/before/{i}"))).send().await.unwrap();
    }
    let (mut conn, _) = listener.accept().await.unwrap();
    let first = read_frames(&mut conn, 5).await;
    assert_eq!(first.len(), 5);
    assert!(first[0].contains("path=\"/before/0\""), "{}", first[0]);
    drop(conn);
    drop(listener);
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let mut sent_requests = 5;
    let accepted = async {
        loop {
            if let Ok(Ok((conn, _))) =
                tokio::time::timeout(Duration::from_millis(100), listener.accept()).await
            {
                return conn;
            }
        }
    };
    tokio::pin!(accepted);
    let mut conn = loop {
        c.get(gh.url(&format!("/after/{sent_requests}")))
            .send()
            .await
            .unwrap();
        sent_requests += 1;
        tokio::select! {
            conn = &mut accepted => break conn,
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
        assert!(sent_requests < 200, "the writer never reconnected");
    };
    c.get(gh.url("/after/last")).send().await.unwrap();
    let again = read_frames(&mut conn, 1).await;
    assert!(!again.is_empty(), "records flow on the new connection");
    wait_until_counted(&gh, sent_requests as u64 + 1).await;
    let stats = gh.gh.shared.access_log.stats();
    let (sent, dropped) = (
        stats[0].1.sent.load(Relaxed),
        stats[0].1.dropped.load(Relaxed),
    );
    assert_eq!(
        sent + dropped,
        sent_requests as u64 + 1,
        "each record counted once"
    );
}

/// Waits until every target has counted `n` records as sent or dropped.
async fn wait_until_counted(gh: &Proxy, n: u64) {
    use std::sync::atomic::Ordering::Relaxed;
    for _ in 0..200 {
        let all = gh
            .gh
            .shared
            .access_log
            .stats()
            .iter()
            .all(|(_, s)| s.sent.load(Relaxed) + s.dropped.load(Relaxed) >= n);
        if all {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
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
    let port = {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap().port()
    };
    let out = dir.join("access.log");
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
    let mut child = std::process::Command::new(rsyslogd)
        .args(["-n", "-f"])
        .arg(&conf)
        .arg("-i")
        .arg(dir.join("rsyslogd.pid"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let _ = child.try_wait();
    let _guard = Reap(child);
    tokio::time::sleep(Duration::from_millis(500)).await;
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
    let mut text = String::new();
    for _ in 0..50 {
        text = std::fs::read_to_string(&out).unwrap_or_default();
        if text.lines().count() >= 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let lines: Vec<_> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
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
    let sink = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = free_port();
    let toml = format!(
        "{}[access_log]\n[[access_log.targets]]\naddress = \"{}\"\nformat = \"json\"\n\
         [[listeners]]\nname = \"https\"\naddress = \"{addr}\"\n[listeners.tls]\n{}\n{}",
        server_section(),
        sink.local_addr().unwrap(),
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
    let v: serde_json::Value = serde_json::from_str(&receive(&sink).await).unwrap();
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
