//! ACME end to end against pebble (Debian's `pebble`, the ACME test server, with its
//! `pebble-challtestsrv` as DNS server answering 127.0.0.1 for every name): certificates for
//! two names over http-01 and over tls-alpn-01, stored with mode 0600, renewed early, reused
//! by a restart while the ACME server is down, and kept while a due renewal fails.

use crate::common::certs::Ca;
use crate::common::*;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

struct Pebble {
    _pebble: Reap,
    _dns: Reap,
    directory: String,
    /// The root the ACME server's own HTTPS certificate chains to.
    ca_pem: PathBuf,
}

fn pem(der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        lines.join("\n")
    )
}

impl Pebble {
    /// Pebble validating http-01 on `http` and tls-alpn-01 on `tls` (127.0.0.1).
    fn start(dir: &Path, http: u16, tls: u16) -> Option<Pebble> {
        let pebble = tool("pebble", &["/usr/bin/pebble"], "pebble")?;
        let chall = tool("pebble", &["/usr/bin/pebble-challtestsrv"], "pebble")?;
        let ca = Ca::new();
        let leaf = ca.issue(dir, "pebble-https", &["localhost"]);
        let ca_pem = dir.join("pebble-https-ca.pem");
        std::fs::write(&ca_pem, pem(ca.der().as_ref())).unwrap();
        let (listen, mgmt, dns, dns_mgmt) = (free_port(), free_port(), free_port(), free_port());
        let cfg = dir.join("pebble.json");
        std::fs::write(
            &cfg,
            serde_json::json!({"pebble": {
                "listenAddress": listen.to_string(),
                "managementListenAddress": mgmt.to_string(),
                "certificate": leaf.cert, "privateKey": leaf.key,
                "httpPort": http, "tlsPort": tls,
                "ocspResponderURL": "", "externalAccountBindingRequired": false
            }})
            .to_string(),
        )
        .unwrap();
        let quiet = || std::process::Stdio::null();
        let dns_child = std::process::Command::new(chall)
            .args([
                "-dns01",
                &dns.to_string(),
                "-http01",
                "",
                "-https01",
                "",
                "-tlsalpn01",
                "",
            ])
            .args([
                "-management",
                &dns_mgmt.to_string(),
                "-defaultIPv4",
                "127.0.0.1",
                "-defaultIPv6",
                "",
            ])
            .stdout(quiet())
            .stderr(quiet())
            .spawn()
            .unwrap();
        let pebble_child = std::process::Command::new(pebble)
            .args([
                "-config",
                cfg.to_str().unwrap(),
                "-dnsserver",
                &dns.to_string(),
            ])
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .stdout(std::fs::File::create(dir.join("pebble.log")).unwrap())
            .stderr(std::fs::File::create(dir.join("pebble.err")).unwrap())
            .spawn()
            .unwrap();
        let p = Pebble {
            _pebble: Reap(pebble_child),
            _dns: Reap(dns_child),
            directory: format!("https://localhost:{}/dir", listen.port()),
            ca_pem,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(listen).is_err()
            || std::net::TcpStream::connect(dns_mgmt).is_err()
        {
            assert!(
                Instant::now() < deadline,
                "pebble or pebble-challtestsrv did not start (see {})",
                dir.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(p)
    }
}

/// The certificate served for `sni` on `addr`, if a handshake succeeds.
async fn served(addr: SocketAddr, sni: &str) -> Option<Vec<u8>> {
    let tls = crate::common::tls_client::handshake(addr, Some(sni), &[])
        .await
        .ok()?;
    Some(tls.get_ref().1.peer_certificates()?[0].as_ref().to_vec())
}

async fn wait_served(addr: SocketAddr, sni: &str, not: Option<&[u8]>) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        if let Some(der) = served(addr, sni).await {
            if not != Some(der.as_slice()) {
                return der;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no (new) certificate for {sni} within 40 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn names_of(der: &[u8]) -> (Vec<String>, String) {
    let (_, cert) = x509_parser::parse_x509_certificate(der).unwrap();
    let names = cert
        .subject_alternative_name()
        .unwrap()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    x509_parser::extensions::GeneralName::DNSName(d) => Some(d.to_string()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let mut names: Vec<String> = names;
    names.sort();
    (names, cert.issuer().to_string())
}

fn acme_config(
    dir: &Path,
    http: SocketAddr,
    tls: SocketAddr,
    o: &Origin,
    pebble: &Pebble,
    extra: &str,
) -> String {
    format!(
        "{}[[listeners]]\naddress = \"{http}\"\n[[listeners]]\nname = \"https\"\naddress = \"{tls}\"\n[listeners.tls]\n\
         [listeners.tls.acme]\ndirectory = \"{}\"\ncontact = [\"mailto:ops@example.com\"]\ndomains = [\"a.test\", \"b.test\"]\n\
         storage = {:?}\ndirectory_ca = {:?}\nretry = \"2s\"\n{extra}\n{}",
        server_section_in(dir),
        pebble.directory,
        dir.join("acme").display().to_string(),
        pebble.ca_pem.display().to_string(),
        one_route(&[o]),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http01_issues_for_two_names_renews_and_a_restart_reuses_the_stored_certificate() {
    let dir = state_dir();
    let (http, tls) = (free_port(), free_port());
    let Some(pebble) = Pebble::start(&dir, http.port(), tls.port()) else {
        return; // skipped by the user, and recorded
    };
    let o = Origin::start("o").await;
    // Renew as soon as `retry` allows (pebble's certificates last years): a renewal every 2 s.
    let toml = acme_config(&dir, http, tls, &o, &pebble, "renew_before = \"100000d\"");
    let gh = boot_config(gatehouse::Config::from_toml(&toml, "acme").unwrap()).await;

    let first = wait_served(tls, "a.test", None).await;
    let (names, issuer) = names_of(&first);
    assert_eq!(names, ["a.test", "b.test"], "issuer {issuer}");
    assert!(issuer.contains("Pebble"), "issued by pebble: {issuer}");
    assert_eq!(
        served(tls, "b.test").await.as_deref(),
        Some(first.as_slice())
    );
    for f in ["account.json", "a.test.pem", "a.test.key"] {
        let mode = std::fs::metadata(dir.join("acme").join(f))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{f}");
    }
    // Renewed early: a different certificate is served without a restart.
    let renewed = wait_served(tls, "a.test", Some(&first)).await;
    assert_eq!(names_of(&renewed).0, ["a.test", "b.test"]);
    let (_, v) = admin_call(&gh, "GET", "/api/tls", None).await;
    let acme = &v["listeners"][0]["acme"];
    assert!(acme["renewals"].as_u64().unwrap() >= 2, "{v}");
    let m = metrics_text(gh.shared.current().config.admin.address).await;
    let series = parse_metrics(&m);
    assert!(
        series["gatehouse_acme_orders_total{listener=\"https\",result=\"ok\"}"] >= 2.0,
        "{m}"
    );
    assert!(
        series["gatehouse_acme_certificate_expiry_timestamp_seconds{listener=\"https\"}"] > 0.0
    );
    tokio::task::block_in_place(|| drop(gh));

    // The ACME server goes away; a restart serves the stored certificate at once.
    drop(pebble);
    let stored = std::fs::read(dir.join("acme/a.test.pem")).unwrap();
    let gh =
        boot_config(gatehouse::Config::from_toml(&toml.replace("100000d", "1d"), "acme").unwrap())
            .await;
    let after = served(tls, "a.test")
        .await
        .expect("served at once from storage");
    let stored_leaf = {
        use rustls::pki_types::pem::PemObject;
        rustls::pki_types::CertificateDer::pem_slice_iter(&stored)
            .next()
            .unwrap()
            .unwrap()
    };
    assert_eq!(after, stored_leaf.as_ref());
    let (_, v) = admin_call(&gh, "GET", "/api/tls", None).await;
    assert_eq!(
        v["listeners"][0]["acme"]["renewals"], 0,
        "nothing was asked: {v}"
    );
    tokio::task::block_in_place(|| drop(gh));

    // Renewal due while the ACME server is down: the stored certificate keeps being served,
    // the failure is counted and shown, and the next attempt is planned.
    let gh = boot_config(gatehouse::Config::from_toml(&toml, "acme").unwrap()).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let v = loop {
        let (_, v) = admin_call(&gh, "GET", "/api/tls", None).await;
        if v["listeners"][0]["acme"]["failures"].as_u64().unwrap_or(0) >= 1 {
            break v;
        }
        assert!(Instant::now() < deadline, "no failed attempt reported: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let acme = &v["listeners"][0]["acme"];
    assert!(
        acme["last_error"].as_str().is_some_and(|e| !e.is_empty()),
        "{v}"
    );
    assert!(acme["not_after"].as_i64().unwrap() > 0, "{v}");
    assert_eq!(
        served(tls, "a.test").await.as_deref(),
        Some(stored_leaf.as_ref())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_alpn01_issues_for_two_names_on_a_tls_only_gatehouse() {
    let dir = state_dir();
    let tls = free_port();
    let Some(pebble) = Pebble::start(&dir, free_port().port(), tls.port()) else {
        return; // skipped by the user, and recorded
    };
    let o = Origin::start("o").await;
    let toml = format!(
        "{}[[listeners]]\nname = \"https\"\naddress = \"{tls}\"\n[listeners.tls]\n\
         [listeners.tls.acme]\ndirectory = \"{}\"\ndomains = [\"c.test\", \"d.test\"]\nchallenge = \"tls-alpn-01\"\n\
         storage = {:?}\ndirectory_ca = {:?}\nretry = \"2s\"\n{}",
        server_section_in(&dir),
        pebble.directory,
        dir.join("acme").display().to_string(),
        pebble.ca_pem.display().to_string(),
        one_route(&[&o]),
    );
    let _gh = boot_config(gatehouse::Config::from_toml(&toml, "acme").unwrap()).await;
    let cert = wait_served(tls, "d.test", None).await;
    let (names, issuer) = names_of(&cert);
    assert_eq!(names, ["c.test", "d.test"], "issuer {issuer}");
    assert!(issuer.contains("Pebble"), "{issuer}");
    // The validation certificates are gone once the order is done: a client offering
    // acme-tls/1 gets no certificate now.
    let handshake =
        crate::common::tls_client::handshake(tls, Some("c.test"), &[b"acme-tls/1"]).await;
    let alert = handshake.err().and_then(|e| {
        let e = e.into_inner()?.downcast::<rustls::Error>().ok()?;
        Some(*e)
    });
    assert_eq!(
        alert,
        Some(rustls::Error::AlertReceived(
            rustls::AlertDescription::AccessDenied
        )),
        "no challenge certificate outside an order: refused for want of a certificate"
    );
}
