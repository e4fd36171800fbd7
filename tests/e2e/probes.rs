//! Gatehouse's own probes are not clients: the readiness probe's connection to a TLS listener
//! (connected and closed, never a handshake) is neither counted as a failed TLS handshake nor
//! reported as client noise.

use crate::common::certs::tls_config;
use crate::common::certs::Ca;
use crate::common::*;
use gatehouse::Config;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Failed TLS handshakes counted by a gatehouse process, all reasons together.
async fn failed_handshakes(admin: std::net::SocketAddr) -> f64 {
    parse_metrics(&metrics_text(admin).await)
        .iter()
        .filter(|(series, _)| series.starts_with("gatehouse_tls_handshake_failures_total"))
        .map(|(_, n)| n)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readiness_probe_is_not_client_noise() {
    let o = Origin::start("o").await;
    let dir = state_dir();
    let leaf = Ca::new().issue(&dir, "leaf", &["a.test"]);
    let addr = free_port();
    let config = dir.join("gatehouse.toml");
    std::fs::write(&config, tls_config(addr, &o, &[&leaf], "", "")).unwrap();
    let admin = Config::load(&config).unwrap().admin.address;
    // systemd's notify socket: READY=1 comes once the probe has reached every listener.
    let notify = dir.join("notify.sock");
    let ready = tokio::net::UnixDatagram::bind(&notify).unwrap();
    let log = dir.join("stderr.log");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["run", "-c"])
        .arg(&config)
        .env_remove("RUST_LOG")
        .env("NOTIFY_SOCKET", &notify)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let _child = Reap(child);
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(30), ready.recv(&mut buf))
        .await
        .expect("READY=1 within 30 s")
        .unwrap();
    assert_eq!(&buf[..n], b"READY=1");
    // The probe closed its connections before READY; their handshakes end at once.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(failed_handshakes(admin).await, 0.0, "the probe was counted");
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert!(!stderr.contains("client noise"), "{stderr}");

    // A client that does the same is counted, and reported: the probe's exemption is its own.
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.shutdown().await.unwrap();
    let _ = s.read(&mut buf).await;
    let mut counted = 0.0;
    for _ in 0..100 {
        counted = failed_handshakes(admin).await;
        if counted >= 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(counted, 1.0);
    let stderr = std::fs::read_to_string(&log).unwrap();
    let summaries = stderr.matches("client noise since the last report").count();
    assert_eq!(summaries, 1, "{stderr}");
}
