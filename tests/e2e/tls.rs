//! TLS termination: certificates by SNI, strict SNI, ALPN h2/http1.1, old protocol versions
//! refused, certificate swap on reload, `check` on certificate problems, redirect and HSTS.

use crate::common::certs::{boot_tls, cert_entries, tls_config, tls_config_in, Ca, Leaf};
use crate::common::tls_client::{get_on, handshake, Tls};
use crate::common::*;
use gatehouse::Config;
use rustls::pki_types::CertificateDer;
use std::net::SocketAddr;
use std::path::Path;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn served(tls: &Tls) -> CertificateDer<'static> {
    tls.get_ref().1.peer_certificates().unwrap()[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_certificate_matches_the_sni() {
    let (ca, dir) = (Ca::new(), state_dir());
    let a = ca.issue(&dir, "a", &["a.test"]);
    let b = ca.issue(&dir, "b", &["b.test", "www.b.test"]);
    let w = ca.issue(&dir, "w", &["*.w.test"]);
    let o = Origin::start("o").await;
    let addr = free_port();
    let _gh = boot_tls(&tls_config(addr, &o, &[&a, &b, &w], "", "")).await;
    let h1: &[&[u8]] = &[b"http/1.1"];
    for (sni, want) in [
        (Some("a.test"), &a),
        (Some("B.TEST"), &b),
        (Some("www.b.test"), &b),
        (Some("x.w.test"), &w),
        (Some("deep.x.w.test"), &a), // a wildcard covers one label only: default
        (Some("unknown.test"), &a),
        (None, &a),
    ] {
        let tls = handshake(addr, sni, h1).await.unwrap();
        assert!(served(&tls) == want.der, "wrong certificate for {sni:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_sni_refuses_unknown_and_missing_names() {
    let (ca, dir) = (Ca::new(), state_dir());
    let a = ca.issue(&dir, "a", &["a.test"]);
    let o = Origin::start("o").await;
    let addr = free_port();
    let _gh = boot_tls(&tls_config(addr, &o, &[&a], "strict_sni = true", "")).await;
    let h1: &[&[u8]] = &[b"http/1.1"];
    assert!(handshake(addr, Some("a.test"), h1).await.is_ok());
    assert!(handshake(addr, Some("unknown.test"), h1).await.is_err());
    assert!(handshake(addr, None, h1).await.is_err());
}

fn https_client(ca: &Ca, addr: SocketAddr, http1_only: bool) -> reqwest::Client {
    crate::common::certs::https_client(ca, &["a.test"], addr, http1_only)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_by_alpn_and_http11_over_tls_both_work() {
    let (ca, dir) = (Ca::new(), state_dir());
    let a = ca.issue(&dir, "a", &["a.test"]);
    let o = Origin::start("o").await;
    let addr = free_port();
    let _gh = boot_tls(&tls_config(addr, &o, &[&a], "", "")).await;
    let url = format!("https://a.test:{}/page?x=1", addr.port());

    let tls = handshake(addr, Some("a.test"), &[b"h2", b"http/1.1"])
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));

    let r = https_client(&ca, addr, false)
        .get(&url)
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "o");
    let r = https_client(&ca, addr, true)
        .get(&url)
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_11);
    assert_eq!(r.status(), 200);

    let seen = o.seen();
    assert_eq!(seen.len(), 2);
    for s in &seen {
        assert_eq!(s.path, "/page");
        assert_eq!(s.headers["x-forwarded-proto"], "https");
        assert_eq!(
            s.headers["host"],
            format!("a.test:{}", addr.port()),
            "HTTP/2 :authority becomes Host"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_can_be_switched_off() {
    let (ca, dir) = (Ca::new(), state_dir());
    let a = ca.issue(&dir, "a", &["a.test"]);
    let o = Origin::start("o").await;
    let addr = free_port();
    let _gh = boot_tls(&tls_config(addr, &o, &[&a], "h2 = false", "")).await;
    let tls = handshake(addr, Some("a.test"), &[b"h2", b"http/1.1"])
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let r = https_client(&ca, addr, false)
        .get(format!("https://a.test:{}/", addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_11);
}

/// A minimal ClientHello offering only `version` (0x0301 = TLS 1.0, 0x0302 = TLS 1.1).
fn legacy_client_hello(version: u16) -> Vec<u8> {
    let [v0, v1] = version.to_be_bytes();
    let mut body = vec![v0, v1];
    body.extend_from_slice(&[7u8; 32]); // random
    body.push(0); // session id
    body.extend_from_slice(&[0, 4, 0x00, 0x2f, 0xc0, 0x13]); // two CBC suites of that era
    body.extend_from_slice(&[1, 0]); // compression: null
    let mut hs = vec![1, 0, 0, body.len() as u8];
    hs.extend_from_slice(&body);
    let mut rec = vec![0x16, 0x03, 0x01, 0, hs.len() as u8];
    rec.extend_from_slice(&hs);
    rec
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_1_0_and_1_1_client_hellos_are_refused() {
    let (ca, dir) = (Ca::new(), state_dir());
    let a = ca.issue(&dir, "a", &["a.test"]);
    let o = Origin::start("o").await;
    let addr = free_port();
    let _gh = boot_tls(&tls_config(addr, &o, &[&a], "", "")).await;
    for version in [0x0301u16, 0x0302] {
        let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        tcp.write_all(&legacy_client_hello(version)).await.unwrap();
        let mut buf = vec![0u8; 64];
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), tcp.read(&mut buf))
            .await
            .expect("the server should answer or close")
            .unwrap_or(0);
        // An alert (0x15) or a closed connection; never a ServerHello (0x16).
        assert!(
            n == 0 || buf[0] == 0x15,
            "version {version:#x}: got {:?}",
            &buf[..n]
        );
    }
    // A modern client still gets through on the same listener.
    assert!(handshake(addr, Some("a.test"), &[b"http/1.1"])
        .await
        .is_ok());
}

fn write_config(path: &Path, toml: &str) {
    std::fs::write(path, toml).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_swap_reaches_new_handshakes_and_a_bad_one_is_refused() {
    let (ca, dir) = (Ca::new(), state_dir());
    let old = ca.issue(&dir, "old", &["a.test"]);
    let new = ca.issue(&dir, "new", &["a.test"]);
    let other = ca.issue(&dir, "other", &["a.test"]);
    let o = Origin::start("o").await;
    let addr = free_port();
    let path = dir.join("gatehouse.toml");
    let section = server_section();
    write_config(&path, &tls_config_in(&section, addr, &o, &[&old], "", ""));
    let gh = boot_config(Config::load(&path).unwrap()).await;
    let h1: &[&[u8]] = &[b"http/1.1"];

    let mut open = handshake(addr, Some("a.test"), h1).await.unwrap();
    assert!(served(&open) == old.der);
    assert!(get_on(&mut open, "a.test")
        .await
        .starts_with("HTTP/1.1 200"));

    write_config(&path, &tls_config_in(&section, addr, &o, &[&new], "", ""));
    gh.shared.reload_from(&path).expect("a valid swap");
    assert!(served(&handshake(addr, Some("a.test"), h1).await.unwrap()) == new.der);
    // The connection opened before the swap keeps working.
    assert!(get_on(&mut open, "a.test")
        .await
        .starts_with("HTTP/1.1 200"));

    // The new certificate with another certificate's key: refused, `new` stays.
    let bad = Leaf {
        cert: other.cert.clone(),
        key: new.key.clone(),
        der: other.der.clone(),
    };
    write_config(&path, &tls_config_in(&section, addr, &o, &[&bad], "", ""));
    let errors = gh.shared.reload_from(&path).unwrap_err().to_string();
    assert!(
        errors.contains("listeners[0].tls.certificates[0].key"),
        "{errors}"
    );
    assert!(
        errors.contains("does not belong to the certificate"),
        "{errors}"
    );
    assert!(served(&handshake(addr, Some("a.test"), h1).await.unwrap()) == new.der);
}

#[test]
fn check_lists_every_certificate_problem_at_once() {
    let (ca, dir) = (Ca::new(), state_dir());
    let good = ca.issue(&dir, "good", &["a.test"]);
    let expired = ca.issue_with(&dir, "expired", &["b.test"], -400, 30);
    let nameless = ca.issue(&dir, "nameless", &[]);
    let soon = ca.issue_with(&dir, "soon", &["c.test"], -80, 85);
    let entry = |cert: &Path, key: &Path| {
        format!(
            "[[listeners.tls.certificates]]\ncert = {:?}\nkey = {:?}\n",
            cert.display().to_string(),
            key.display().to_string()
        )
    };
    let toml = format!(
        "[[listeners]]\naddress = \"127.0.0.1:8443\"\n[listeners.tls]\n{}{}{}{}{}\
         [pools.web.health]\nenabled = false\n[[pools.web.servers]]\naddress = \"127.0.0.1:8001\"\n[[routes]]\npool = \"web\"\n",
        entry(&dir.join("missing.pem"), &good.key),
        entry(&good.cert, &expired.key),
        entry(&expired.cert, &expired.key),
        entry(&nameless.cert, &nameless.key),
        entry(&soon.cert, &soon.key),
    );
    let path = dir.join("certs.toml");
    std::fs::write(&path, toml).unwrap();
    let out = check(&path);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "listeners[0].tls.certificates[0].cert: ",
        "missing.pem: cannot read",
        "listeners[0].tls.certificates[1].key: ",
        "does not belong to the certificate",
        "listeners[0].tls.certificates[2].cert: ",
        "expired on",
        "listeners[0].tls.certificates[3].cert: ",
        "no DNS names",
        "warning: listeners[0].tls.certificates[4].cert: ",
        "the certificate expires in ",
        "4 errors",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_redirects_to_https_and_https_sends_hsts() {
    let (ca, dir) = (Ca::new(), state_dir());
    let a = ca.issue(&dir, "a", &["a.test"]);
    let o = Origin::start("o").await;
    let (plain, tls) = (free_port(), free_port());
    let toml = format!(
        "{}[[listeners]]\naddress = \"{plain}\"\nredirect_to_https = true\n\
         [[listeners]]\naddress = \"{tls}\"\nhsts = \"max-age=31536000\"\n[listeners.tls]\n{}\n{}",
        server_section(),
        cert_entries(&[&a]),
        one_route(&[&o]),
    );
    let _gh = boot_tls(&toml).await;
    let c = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = c
        .get(format!("http://{plain}/shop/cart?id=7"))
        .header("Host", "a.test:80")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 301);
    assert_eq!(
        r.headers()["location"],
        format!("https://a.test:{}/shop/cart?id=7", tls.port())
    );
    assert!(
        r.headers().get("strict-transport-security").is_none(),
        "no HSTS over plain HTTP"
    );
    assert_eq!(o.hits(), 0);
    // ACME challenges stay on plain HTTP.
    let r = c
        .get(format!("http://{plain}/.well-known/acme-challenge/tok"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let r = https_client(&ca, tls, false)
        .get(format!("https://a.test:{}/", tls.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["strict-transport-security"], "max-age=31536000");
    // Gatehouse's own answers on that listener carry it too (here a 414).
    let hits = o.hits();
    let long = "a".repeat(20_000);
    let r = https_client(&ca, tls, false)
        .get(format!("https://a.test:{}/{long}", tls.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 414);
    assert_eq!(r.headers()["strict-transport-security"], "max-age=31536000");
    assert_eq!(o.hits(), hits, "the 414 was gatehouse's own");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_http2_connection_is_closed_after_client_idle() {
    use std::time::Duration;
    let (ca, dir) = (Ca::new(), state_dir());
    let a = ca.issue(&dir, "a", &["a.test"]);
    let o = Origin::start("o").await;
    let addr = free_port();
    let section = format!("[timeouts]\nclient_idle = \"1s\"\n{}", server_section());
    let _gh = boot_tls(&tls_config_in(&section, addr, &o, &[&a], "", "")).await;
    let mut tls = handshake(addr, Some("a.test"), &[b"h2"]).await.unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    // The client preface and an empty SETTINGS frame, then nothing.
    tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut buf = [0u8; 4096];
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match tls.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {} // the server's SETTINGS and its ack
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "an idle h2 connection stays open past 5 s");
    let idle = started.elapsed();
    assert!(idle >= Duration::from_millis(800), "closed after {idle:?}");
}

/// Failed handshakes (here: clients that connect and close) are counted by reason in /metrics,
/// and the process log gets at most one summary line for them, not an ERROR line each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_handshakes_are_counted_not_logged_one_by_one() {
    let o = Origin::start("o").await;
    let dir = state_dir();
    let leaf = Ca::new().issue(&dir, "leaf", &["a.test"]);
    let addr = free_port();
    let config = dir.join("gatehouse.toml");
    std::fs::write(&config, tls_config(addr, &o, &[&leaf], "", "")).unwrap();
    let log = dir.join("stderr.log");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["run", "-c"])
        .arg(&config)
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let _child = Reap(child);
    let mut up = false;
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(up, "gatehouse listens");
    for _ in 0..20 {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.shutdown().await.unwrap();
        let mut buf = [0u8; 16];
        let _ = s.read(&mut buf).await;
    }
    let admin = Config::load(&config).unwrap().admin.address;
    let mut counted = 0.0;
    for _ in 0..100 {
        let text = metrics_text(admin).await;
        counted = parse_metrics(&text)
            .get(r#"gatehouse_tls_handshake_failures_total{reason="eof"}"#)
            .copied()
            .unwrap_or(0.0);
        if counted >= 20.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(counted >= 20.0, "counted {counted}");
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert!(!stderr.contains("Downstream handshake error"), "{stderr}");
    let summaries = stderr.matches("client noise since the last report").count();
    assert!(summaries <= 1, "{stderr}");
}
