//! The real client address (issue 32): PROXY protocol v1 and v2 headers (real bytes) from a
//! trusted and an untrusted source, a missing or malformed header, the header before a TLS
//! ClientHello, haproxy's `send-proxy` and `send-proxy-v2` in front, and X-Forwarded-For
//! believed from trusted proxies only. The address found is checked where it is used: an
//! access rule, the access log's client, and the X-Forwarded-For the origin receives.

use crate::common::certs::{cert_entries, Ca};
use crate::common::raw::Wire;
use crate::common::syslog::{json_record, json_sink};
use crate::common::*;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

async fn tcp_from(source: [u8; 4], to: SocketAddr) -> TcpStream {
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind(SocketAddr::from((source, 0))).unwrap();
    sock.connect(to).await.unwrap()
}

/// `prefix` (a PROXY header, or nothing) then `GET /` with `extra` header lines, from
/// `source`: the status, or 0 when the connection closed without an answer.
async fn get(source: [u8; 4], to: SocketAddr, prefix: &[u8], extra: &str) -> u16 {
    let mut wire = Wire::over(tcp_from(source, to).await);
    let req = format!("GET / HTTP/1.1\r\nHost: site.test\r\n{extra}\r\n");
    let _ = wire.send(&[prefix, req.as_bytes()].concat()).await;
    match wire.response(false, Duration::from_secs(5)).await {
        Ok(msg) => msg.status(),
        Err(e) if wire.closed && wire.buf.is_empty() => {
            assert!(e.starts_with("closed"), "{e}");
            0
        }
        Err(e) => panic!("GET /: {e}"),
    }
}

/// A PROXY v2 header (PROXY command, TCP over IPv4) naming `src` as the client.
fn v2(src: SocketAddr) -> Vec<u8> {
    let SocketAddr::V4(src) = src else {
        panic!("IPv4 only")
    };
    let mut h = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c".to_vec();
    h.extend_from_slice(&src.ip().octets());
    h.extend_from_slice(&[127, 0, 0, 1]);
    h.extend_from_slice(&src.port().to_be_bytes());
    h.extend_from_slice(&443u16.to_be_bytes());
    h
}

/// The X-Forwarded-For the origin saw on its last request.
fn last_xff(o: &Origin) -> String {
    let seen = o.seen();
    let last = seen.last().expect("a request reached the origin");
    let xff = last
        .headers
        .get("x-forwarded-for")
        .expect("X-Forwarded-For");
    xff.to_str().unwrap().to_string()
}

/// `gatehouse_client_misbehaviour_total` for `reason`.
async fn misbehaviour(gh: &Proxy, reason: &str) -> f64 {
    let text = metrics_text(gh.admin_address()).await;
    let series = format!("gatehouse_client_misbehaviour_total{{reason=\"{reason}\"}}");
    parse_metrics(&text).get(&series).copied().unwrap_or(0.0)
}

/// A `proxy_protocol` listener (`pp`) trusting 127.0.0.2 (and `trusted`), with `extra`.
async fn with_proxy_listener(o: &Origin, trusted: &str, extra: &str) -> (Proxy, SocketAddr) {
    let pp = free_port();
    let body = format!(
        "[[listeners]]\nname = \"pp\"\naddress = \"{pp}\"\nproxy_protocol = true\n\
         [client_address]\ntrusted_proxies = [\"127.0.0.2/32\"{trusted}]\n{extra}{}",
        one_route(&[o])
    );
    (boot(&body).await, pp)
}

const BLOCK_66: &str = "[access]\nrules = [\"b\"]\n[[access_rules]]\nname = \"b\"\n\
                        deny_cidrs = [\"192.0.2.66/32\"]\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_v1_and_v2_from_a_trusted_source_name_the_client() {
    let o = Origin::start("o").await;
    let (log, targets) = json_sink().await;
    let extra = format!("[access_log]\n{targets}{BLOCK_66}");
    let (gh, pp) = with_proxy_listener(&o, "", &extra).await;
    let v1 = b"PROXY TCP4 192.0.2.10 127.0.0.1 5555 80\r\n";
    assert_eq!(get([127, 0, 0, 2], pp, v1, "").await, 200);
    assert_eq!(last_xff(&o), "192.0.2.10");
    assert_eq!(json_record(&log).await["client"], "192.0.2.10:5555");
    let header = v2("192.0.2.11:6666".parse().unwrap());
    assert_eq!(get([127, 0, 0, 2], pp, &header, "").await, 200);
    assert_eq!(last_xff(&o), "192.0.2.11");
    assert_eq!(json_record(&log).await["client"], "192.0.2.11:6666");
    // The access rule judges the address from the header, not the proxy's.
    let blocked = b"PROXY TCP4 192.0.2.66 127.0.0.1 5555 80\r\n";
    assert_eq!(get([127, 0, 0, 2], pp, blocked, "").await, 403);
    let header = v2("192.0.2.66:1".parse().unwrap());
    assert_eq!(get([127, 0, 0, 2], pp, &header, "").await, 403);
    // UNKNOWN (v1) keeps the proxy's own address.
    assert_eq!(get([127, 0, 0, 2], pp, b"PROXY UNKNOWN\r\n", "").await, 200);
    assert_eq!(last_xff(&o), "127.0.0.2");
    // On a PROXY listener a forwarding header came through a layer-4 balancer: the client's
    // own word, never believed, whether the header named the client or said UNKNOWN.
    let forged = "X-Forwarded-For: 192.0.2.66\r\n";
    assert_eq!(get([127, 0, 0, 2], pp, v1, forged).await, 200);
    assert_eq!(last_xff(&o), "192.0.2.66, 192.0.2.10");
    let unknown = b"PROXY UNKNOWN\r\n";
    assert_eq!(get([127, 0, 0, 2], pp, unknown, forged).await, 200);
    assert_eq!(last_xff(&o), "192.0.2.66, 127.0.0.2");
    assert_eq!(o.hits(), 5);
    // The plain listener without proxy_protocol is unaffected.
    assert_eq!(get([127, 0, 0, 3], gh.addr, b"", "").await, 200);
    assert_eq!(last_xff(&o), "127.0.0.3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_sources_and_missing_or_malformed_headers_are_refused() {
    let o = Origin::start("o").await;
    let (gh, pp) = with_proxy_listener(&o, "", "").await;
    let untrusted = misbehaviour(&gh, "proxy_untrusted").await;
    let malformed = misbehaviour(&gh, "proxy_header").await;
    let v1 = b"PROXY TCP4 192.0.2.10 127.0.0.1 5555 80\r\n";
    // From outside trusted_proxies: refused, header or not.
    assert_eq!(get([127, 0, 0, 3], pp, v1, "").await, 0);
    let header = v2("192.0.2.10:1".parse().unwrap());
    assert_eq!(get([127, 0, 0, 3], pp, &header, "").await, 0);
    assert_eq!(misbehaviour(&gh, "proxy_untrusted").await - untrusted, 2.0);
    // From a trusted proxy without a header, or with a malformed one.
    assert_eq!(get([127, 0, 0, 2], pp, b"", "").await, 0);
    let no_crlf = b"PROXY TCP4 192.0.2.10 127.0.0.1 5555 80\n";
    assert_eq!(get([127, 0, 0, 2], pp, no_crlf, "").await, 0);
    let mut bad_family = v2("192.0.2.10:1".parse().unwrap());
    bad_family[13] = 0x31; // AF_UNIX
    assert_eq!(get([127, 0, 0, 2], pp, &bad_family, "").await, 0);
    assert_eq!(misbehaviour(&gh, "proxy_header").await - malformed, 3.0);
    assert_eq!(o.hits(), 0, "nothing reached the origin");
    // A header cut short is waited for within client_handshake, then closed.
    let mut tcp = tcp_from([127, 0, 0, 2], pp).await;
    tcp.write_all(b"PROXY TCP4 192.0.2.10").await.unwrap();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(15), tcp.read(&mut buf)).await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "{read:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_the_header_comes_before_the_client_hello() {
    let o = Origin::start("o").await;
    let (ca, dir) = (Ca::new(), state_dir());
    let leaf = ca.issue(&dir, "a", &["a.test"]);
    let tls = free_port();
    let body = format!(
        "[[listeners]]\nname = \"tls\"\naddress = \"{tls}\"\nproxy_protocol = true\n\
         [listeners.tls]\n{}\n[client_address]\ntrusted_proxies = [\"127.0.0.2\"]\n{}",
        cert_entries(&[&leaf]),
        one_route(&[&o])
    );
    let _gh = boot(&body).await;
    for header in [
        b"PROXY TCP4 192.0.2.20 127.0.0.1 5555 443\r\n".to_vec(),
        v2("192.0.2.21:7".parse().unwrap()),
    ] {
        let mut tcp = tcp_from([127, 0, 0, 2], tls).await;
        tcp.write_all(&header).await.unwrap();
        let config = crate::common::tls_client::accept_any_config(
            rustls::crypto::ring::default_provider(),
            rustls::DEFAULT_VERSIONS,
            &[b"http/1.1"],
        );
        let name = rustls::pki_types::ServerName::try_from("a.test").unwrap();
        let mut stream = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
            .connect(name, tcp)
            .await
            .expect("TLS after the PROXY header");
        let answer = crate::common::tls_client::get_on(&mut stream, "a.test").await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
    let seen: Vec<String> = o
        .seen()
        .iter()
        .map(|s| s.headers["x-forwarded-for"].to_str().unwrap().to_string())
        .collect();
    assert_eq!(seen, ["192.0.2.20", "192.0.2.21"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_x_forwarded_for_is_believed_only_from_a_trusted_proxy() {
    let o = Origin::start("o").await;
    let (log, targets) = json_sink().await;
    let gh = boot(&format!(
        "[access_log]\n{targets}[client_address]\ntrusted_proxies = [\"127.0.0.2\", \"10.0.0.0/8\"]\n\
         {BLOCK_66}{}",
        one_route(&[&o])
    ))
    .await;
    // An untrusted client's header is not believed: it stays what it claimed, left of the
    // client's own address (the last entry, the one servers should read).
    let forged = "X-Forwarded-For: 192.0.2.66\r\n";
    assert_eq!(get([127, 0, 0, 3], gh.addr, b"", forged).await, 200);
    assert_eq!(last_xff(&o), "192.0.2.66, 127.0.0.3");
    assert_eq!(
        json_record(&log).await["client"].as_str().unwrap()[..10],
        *"127.0.0.3:"
    );
    // From a trusted proxy: walked from the right past trusted hops.
    let chain = "X-Forwarded-For: 6.6.6.6, 192.0.2.66, 10.1.1.1\r\n";
    assert_eq!(get([127, 0, 0, 2], gh.addr, b"", chain).await, 403);
    assert_eq!(json_record(&log).await["client"], "192.0.2.66:0");
    let chain = "X-Forwarded-For: 6.6.6.6, 192.0.2.9, 10.1.1.1\r\n";
    assert_eq!(get([127, 0, 0, 2], gh.addr, b"", chain).await, 200);
    assert_eq!(json_record(&log).await["client"], "192.0.2.9:0");
    assert_eq!(
        last_xff(&o),
        "6.6.6.6, 192.0.2.9",
        "the trusted hops are not passed on"
    );
    // A trusted proxy without the header is the client.
    assert_eq!(get([127, 0, 0, 2], gh.addr, b"", "").await, 200);
    assert_eq!(last_xff(&o), "127.0.0.2");
}

/// haproxy's configuration: two TCP frontends in front of `pp`, one with `send-proxy`, one
/// with `send-proxy-v2`.
fn haproxy_config(v1: SocketAddr, v2: SocketAddr, pp: SocketAddr) -> String {
    format!(
        "global\n  maxconn 64\ndefaults\n  mode tcp\n  timeout connect 2s\n  timeout client 10s\n  \
         timeout server 10s\nfrontend v1\n  bind {v1}\n  default_backend b1\nbackend b1\n  \
         server gh {pp} send-proxy\nfrontend v2\n  bind {v2}\n  default_backend b2\n\
         backend b2\n  server gh {pp} send-proxy-v2\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_send_proxy_v1_and_v2_in_front() {
    let haproxy = [
        "/usr/sbin/haproxy",
        "/usr/bin/haproxy",
        "/usr/local/sbin/haproxy",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists())
    .expect("haproxy is not installed: install the Debian package `haproxy`");
    let o = Origin::start("o").await;
    let (gh, pp) = with_proxy_listener(&o, ", \"127.0.0.1\"", BLOCK_66).await;
    let (v1, v2) = (free_port(), free_port());
    let dir = state_dir();
    let cfg = dir.join("haproxy.cfg");
    std::fs::write(&cfg, haproxy_config(v1, v2, pp)).unwrap();
    let child = std::process::Command::new(haproxy)
        .arg("-db")
        .arg("-f")
        .arg(&cfg)
        .spawn()
        .unwrap();
    let _haproxy = Killed(child);
    for front in [v1, v2] {
        let mut up = false;
        for _ in 0..100 {
            if TcpStream::connect(front).await.is_ok() {
                up = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(up, "haproxy did not listen on {front}");
    }
    let untrusted = misbehaviour(&gh, "proxy_untrusted").await;
    for (front, source) in [(v1, [127, 0, 0, 3]), (v2, [127, 0, 0, 4])] {
        assert_eq!(get(source, front, b"", "").await, 200, "through {front}");
        let client = std::net::Ipv4Addr::from(source).to_string();
        assert_eq!(last_xff(&o), client, "through {front}");
    }
    // A direct connection from the client, bypassing haproxy, is refused.
    assert_eq!(get([127, 0, 0, 3], pp, b"", "").await, 0);
    assert_eq!(misbehaviour(&gh, "proxy_untrusted").await - untrusted, 1.0);
}

/// A child process killed (and reaped) when dropped, the test passing or not.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
