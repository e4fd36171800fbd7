//! `[listeners.tls]` protocol settings on the wire: Mozilla's profiles, explicit suites and
//! groups, and session resumption by tickets (TLS 1.3 and 1.2) — after a reload, after
//! thousands of other clients, across two processes sharing a key file — or not at all.

use crate::common::certs::Ca;
use crate::common::certs::{boot_tls, tls_config, tls_config_in};
use crate::common::tls_client::{accept_any_config, get_on, AcceptAny, Tls};
use crate::common::*;
use rustls::client::Resumption;
use rustls::pki_types::ServerName;
use rustls::{HandshakeKind, ProtocolVersion};
use std::net::SocketAddr;
use std::sync::Arc;

/// A client config: `versions`, `groups` (None: ring's defaults), resumption on or off.
fn client(
    versions: &[&'static rustls::SupportedProtocolVersion],
    groups: Option<Vec<&'static dyn rustls::crypto::SupportedKxGroup>>,
    resume: bool,
) -> Arc<rustls::ClientConfig> {
    let mut provider = rustls::crypto::ring::default_provider();
    if let Some(g) = groups {
        provider.kx_groups = g;
    }
    let mut config = accept_any_config(provider, versions, &[b"http/1.1"]);
    if !resume {
        config.resumption = Resumption::disabled();
    }
    Arc::new(config)
}

async fn connect(addr: SocketAddr, config: &Arc<rustls::ClientConfig>) -> std::io::Result<Tls> {
    let name = ServerName::try_from("a.test").unwrap();
    crate::common::tls_client::connect(addr, name, config.clone()).await
}

/// Connects, makes one request (so TLS 1.3 tickets arrive) and says how the handshake went.
async fn visit(addr: SocketAddr, config: &Arc<rustls::ClientConfig>) -> HandshakeKind {
    let mut tls = connect(addr, config).await.expect("handshake");
    let kind = tls.get_ref().1.handshake_kind().expect("handshake done");
    assert!(get_on(&mut tls, "a.test").await.starts_with("HTTP/1.1 200"));
    kind
}

const TLS13: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];
const TLS12: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS12];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modern_refuses_tls12_and_intermediate_accepts_it() {
    let (ca, dir) = (Ca::new(), state_dir());
    let a = ca.issue(&dir, "a", &["a.test"]);
    let o = Origin::start("o").await;
    let (modern, intermediate) = (free_port(), free_port());
    let m = boot_tls(&tls_config(modern, &o, &[&a], "profile = \"modern\"", "")).await;
    let _i = boot_tls(&tls_config(intermediate, &o, &[&a], "", "")).await;
    assert!(connect(modern, &client(TLS12, None, false)).await.is_err());
    let tls = connect(modern, &client(TLS13, None, false)).await.unwrap();
    assert_eq!(
        tls.get_ref().1.protocol_version(),
        Some(ProtocolVersion::TLSv1_3)
    );
    let tls = connect(intermediate, &client(TLS12, None, false))
        .await
        .unwrap();
    assert_eq!(
        tls.get_ref().1.protocol_version(),
        Some(ProtocolVersion::TLSv1_2)
    );
    let (status, v) = admin_call(&m, "GET", "/api/tls", None).await;
    assert_eq!(status, 200, "{v}");
    let l = &v["listeners"][0];
    assert_eq!(l["profile"], "modern", "{v}");
    assert_eq!(l["versions"], serde_json::json!(["TLSv1.3"]), "{v}");
    assert_eq!(l["certificates"][0]["names"][0], "a.test", "{v}");
    assert!(
        l["ticket_keys"]
            .as_str()
            .unwrap()
            .starts_with("rotating every 12h"),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_configured_suites_and_groups_are_negotiated() {
    let (ca, dir) = (Ca::new(), state_dir());
    let a = ca.issue(&dir, "a", &["a.test"]); // an ECDSA P-256 key: ECDSA suites in TLS 1.2
    let o = Origin::start("o").await;
    let addr = free_port();
    let settings =
        "cipher_suites = [\"TLS_CHACHA20_POLY1305_SHA256\", \"ECDHE-ECDSA-AES256-GCM-SHA384\"]\n\
                    groups = [\"secp384r1\"]";
    let _gh = boot_tls(&tls_config(addr, &o, &[&a], settings, "")).await;
    let ring = rustls::crypto::ring::kx_group::X25519;
    let tls = connect(addr, &client(TLS13, None, false)).await.unwrap();
    let conn = tls.get_ref().1;
    assert_eq!(
        conn.negotiated_cipher_suite().unwrap().suite(),
        rustls::CipherSuite::TLS13_CHACHA20_POLY1305_SHA256
    );
    assert_eq!(
        conn.negotiated_key_exchange_group().unwrap().name(),
        rustls::NamedGroup::secp384r1
    );
    let tls = connect(addr, &client(TLS12, None, false)).await.unwrap();
    assert_eq!(
        tls.get_ref().1.negotiated_cipher_suite().unwrap().suite(),
        rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
    );
    // A client with X25519 only shares no group with this listener.
    assert!(connect(addr, &client(TLS13, Some(vec![ring]), false))
        .await
        .is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tickets_resume_after_a_reload_and_after_thousands_of_other_clients() {
    let (ca, dir) = (Ca::new(), state_dir());
    let a = ca.issue(&dir, "a", &["a.test"]);
    let o = Origin::start("o").await;
    let addr = free_port();
    let section = server_section();
    let path = dir.join("gatehouse.toml");
    let toml = tls_config_in(&section, addr, &o, &[&a], "session_cache = 0", "");
    std::fs::write(&path, &toml).unwrap();
    let gh = boot_config(gatehouse::Config::load(&path).unwrap()).await;
    for versions in [TLS13, TLS12] {
        let c = client(versions, None, true);
        assert_eq!(visit(addr, &c).await, HandshakeKind::Full);
        assert_eq!(
            visit(addr, &c).await,
            HandshakeKind::Resumed,
            "{versions:?}"
        );
    }

    let c13 = client(TLS13, None, true);
    assert_eq!(visit(addr, &c13).await, HandshakeKind::Full);
    // A reload (with a change) keeps the ticket keys.
    std::fs::write(
        &path,
        toml.replace("[[routes]]", "[[routes]]\nname = \"renamed\""),
    )
    .unwrap();
    let changes = gh.shared.reload_from(&path).unwrap();
    assert!(
        changes.reload.contains(&"routes".to_string()),
        "{changes:?}"
    );
    assert_eq!(visit(addr, &c13).await, HandshakeKind::Resumed);

    // 10 000 other clients, each a full handshake: tickets take no server memory.
    let c12 = client(TLS12, None, true);
    assert_eq!(visit(addr, &c12).await, HandshakeKind::Full);
    let others = client(TLS13, None, false);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let others = others.clone();
        tasks.spawn(async move {
            for _ in 0..625 {
                drop(connect(addr, &others).await.expect("handshake"));
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    assert_eq!(visit(addr, &c13).await, HandshakeKind::Resumed, "TLS 1.3");
    assert_eq!(visit(addr, &c12).await, HandshakeKind::Resumed, "TLS 1.2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_sharing_a_key_file_resume_each_others_sessions() {
    let (ca, dir) = (Ca::new(), state_dir());
    let a = ca.issue(&dir, "a", &["a.test"]);
    let o = Origin::start("o").await;
    let keys = dir.join("ticket-keys");
    let line = |seed: u8| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode([seed; 80]) + "\n"
    };
    std::fs::write(&keys, line(1) + &line(2)).unwrap();
    let shared = format!("ticket_key_file = {:?}", keys.display().to_string());
    let (n1, n2, alone) = (free_port(), free_port(), free_port());
    // Two gatehouse processes (the binary, as on two nodes), one key file.
    let mut nodes = Vec::new();
    for (i, addr) in [n1, n2].into_iter().enumerate() {
        let path = dir.join(format!("node{i}.toml"));
        std::fs::write(&path, tls_config(addr, &o, &[&a], &shared, "")).unwrap();
        let log = dir.join(format!("node{i}.log"));
        nodes.push(Reap(crate::common::process::spawn_gatehouse(
            &path, false, &log,
        )));
        crate::common::process::wait_listening(addr).await;
    }
    let _g3 = boot_tls(&tls_config(alone, &o, &[&a], "", "")).await;
    for versions in [TLS13, TLS12] {
        let c = client(versions, None, true);
        assert_eq!(visit(n1, &c).await, HandshakeKind::Full);
        assert_eq!(visit(n2, &c).await, HandshakeKind::Resumed, "{versions:?}");
        // A node with keys of its own cannot open the other nodes' tickets.
        let c = client(versions, None, true);
        assert_eq!(visit(n1, &c).await, HandshakeKind::Full);
        assert_eq!(visit(alone, &c).await, HandshakeKind::Full, "{versions:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_tickets_or_cache_nothing_resumes() {
    let (ca, dir) = (Ca::new(), state_dir());
    let a = ca.issue(&dir, "a", &["a.test"]);
    let o = Origin::start("o").await;
    let (none, cache_only) = (free_port(), free_port());
    let off = "session_tickets = false\nsession_cache = 0";
    let _g1 = boot_tls(&tls_config(none, &o, &[&a], off, "")).await;
    let _g2 = boot_tls(&tls_config(
        cache_only,
        &o,
        &[&a],
        "session_tickets = false",
        "",
    ))
    .await;
    for versions in [TLS13, TLS12] {
        let c = client(versions, None, true);
        assert_eq!(visit(none, &c).await, HandshakeKind::Full);
        assert_eq!(visit(none, &c).await, HandshakeKind::Full, "{versions:?}");
        // Without tickets, the session cache still resumes by id.
        let c = client(versions, None, true);
        assert_eq!(visit(cache_only, &c).await, HandshakeKind::Full);
        assert_eq!(
            visit(cache_only, &c).await,
            HandshakeKind::Resumed,
            "{versions:?}"
        );
    }
}

/// A CA, a leaf for a.test and OCSP responses for it, all made by openssl in `dir`.
struct OcspFixture {
    dir: std::path::PathBuf,
    openssl: std::path::PathBuf,
}

impl OcspFixture {
    fn new(openssl: std::path::PathBuf) -> OcspFixture {
        let f = OcspFixture {
            dir: state_dir(),
            openssl,
        };
        f.run("req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -subj /CN=ocsp-test-ca -days 3");
        f.run("req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout leaf.key -out leaf.csr -subj /CN=a.test -addext subjectAltName=DNS:a.test");
        f.run("x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out leaf.pem -days 3 -copy_extensions copy");
        f.run("ocsp -issuer ca.pem -cert leaf.pem -no_nonce -reqout req.der");
        f
    }

    fn run(&self, args: &str) -> String {
        let out = std::process::Command::new(&self.openssl)
            .args(args.split(' '))
            .current_dir(&self.dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "openssl {args}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A response saying the leaf is `status` ('V' good, 'R' revoked), valid `days`, in `file`.
    fn respond(&self, file: &str, status: char, days: u32) -> Vec<u8> {
        let serial = self.run("x509 -in leaf.pem -noout -serial");
        let serial = serial.trim().trim_start_matches("serial=");
        let revoked = if status == 'R' { "261101000000Z" } else { "" };
        std::fs::write(
            self.dir.join("index.txt"),
            format!("{status}\t301231000000Z\t{revoked}\t{serial}\tunknown\t/CN=a.test\n"),
        )
        .unwrap();
        self.run(&format!("ocsp -index index.txt -rsigner ca.pem -rkey ca.key -CA ca.pem -reqin req.der -respout {file} -ndays {days}"));
        std::fs::read(self.dir.join(file)).unwrap()
    }

    fn entry(&self, file: &str) -> String {
        let p = |f: &str| self.dir.join(f).display().to_string();
        format!(
            "[[listeners.tls.certificates]]\ncert = {:?}\nkey = {:?}\nocsp = \"file:{}\"\n",
            p("leaf.pem"),
            p("leaf.key"),
            p(file)
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ocsp_response_is_stapled_checked_and_reloaded() {
    let Some(openssl) = tool("openssl", &["/usr/bin/openssl"], "openssl") else {
        return; // skipped by the user, and recorded
    };
    let f = OcspFixture::new(openssl);
    let first = f.respond("first.der", 'V', 3);
    let o = Origin::start("o").await;
    let addr = free_port();
    let section = server_section();
    let config = |file: &str| {
        format!(
            "{section}[[listeners]]\nname = \"https\"\naddress = \"{addr}\"\n[listeners.tls]\n{}{}",
            f.entry(file),
            one_route(&[&o])
        )
    };
    let path = f.dir.join("gatehouse.toml");
    std::fs::write(&path, config("first.der")).unwrap();
    let gh = boot_config(gatehouse::Config::load(&path).unwrap()).await;
    let seen = Arc::new(AcceptAny::default());
    let mut c = (*client(TLS13, None, false)).clone();
    c.dangerous().set_certificate_verifier(seen.clone());
    let c = Arc::new(c);
    drop(connect(addr, &c).await.unwrap());
    assert_eq!(seen.stapled(), first, "the file's response is stapled");
    let (_, v) = admin_call(&gh, "GET", "/api/tls", None).await;
    let cert = &v["listeners"][0]["certificates"][0];
    assert!(
        cert["ocsp_file"].as_str().unwrap().ends_with("first.der"),
        "{v}"
    );
    assert!(cert["ocsp_next_update"].as_i64().unwrap() > 0, "{v}");
    let m = metrics_text(gh.shared.current().config.admin.address).await;
    assert!(
        m.contains("gatehouse_tls_ocsp_next_update_timestamp_seconds{"),
        "{m}"
    );

    // A fresh response and a reload: the next handshake staples it.
    let second = f.respond("second.der", 'V', 1);
    std::fs::write(&path, config("second.der")).unwrap();
    let out = check(&path);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success()
            && said.contains("certificates[0].ocsp")
            && said.contains("nextUpdate is in"),
        "a day left is a warning: {said}"
    );
    gh.shared.reload_from(&path).unwrap();
    drop(connect(addr, &c).await.unwrap());
    assert_eq!(seen.stapled(), second);

    // A revoked certificate's response, or no file at all: check refuses, with the key path.
    f.respond("revoked.der", 'R', 3);
    std::fs::write(&path, config("revoked.der")).unwrap();
    let out = check(&path);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && said.contains("certificates[0].ocsp") && said.contains("revoked"),
        "{said}"
    );
    std::fs::write(&path, config("missing.der")).unwrap();
    assert!(!check(&path).status.success());
    assert!(
        gh.shared.reload_from(&path).is_err(),
        "the running staple stays"
    );
}

/// Mozilla's "modern" profile checked the way a scanner does, with openssl's client: TLS 1.0,
/// 1.1 and 1.2 refused; TLS 1.3 with exactly its three suites; groups X25519, P-256, P-384 only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_openssl_scan_of_the_modern_profile_is_compliant() {
    let Some(openssl) = tool("openssl", &["/usr/bin/openssl"], "openssl") else {
        return; // skipped by the user, and recorded
    };
    let (ca, dir) = (Ca::new(), state_dir());
    let a = ca.issue(&dir, "a", &["a.test"]);
    let o = Origin::start("o").await;
    let addr = free_port();
    let _gh = boot_tls(&tls_config(addr, &o, &[&a], "profile = \"modern\"", "")).await;
    let connect = |args: &[&str]| -> Option<String> {
        let out = pipe_into(
            std::process::Command::new(&openssl)
                .args([
                    "s_client",
                    "-connect",
                    &addr.to_string(),
                    "-servername",
                    "a.test",
                ])
                .args(args),
            b"",
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let line = text.lines().find(|l| l.contains("Cipher is"))?.to_string();
        (!line.contains("(NONE)")).then_some(line)
    };
    let scan = tokio::task::block_in_place(|| {
        let mut accepted = Vec::new();
        for v in ["-tls1", "-tls1_1", "-tls1_2", "-tls1_3"] {
            if connect(&[v]).is_some() {
                accepted.push(v.to_string());
            }
        }
        for s in [
            "TLS_AES_128_GCM_SHA256",
            "TLS_AES_256_GCM_SHA384",
            "TLS_CHACHA20_POLY1305_SHA256",
            "TLS_AES_128_CCM_SHA256",
            "TLS_AES_128_CCM_8_SHA256",
        ] {
            if connect(&["-tls1_3", "-ciphersuites", s]).is_some() {
                accepted.push(s.to_string());
            }
        }
        for g in ["X25519", "P-256", "P-384", "P-521", "X448", "ffdhe2048"] {
            if connect(&["-tls1_3", "-groups", g]).is_some() {
                accepted.push(g.to_string());
            }
        }
        accepted
    });
    assert_eq!(
        scan,
        [
            "-tls1_3",
            "TLS_AES_128_GCM_SHA256",
            "TLS_AES_256_GCM_SHA384",
            "TLS_CHACHA20_POLY1305_SHA256",
            "X25519",
            "P-256",
            "P-384"
        ]
    );
}
