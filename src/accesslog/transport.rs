//! Where records go: UDP and unix datagrams (one record each), TCP with octet-counted framing
//! (RFC 6587) and reconnection with backoff, stdout or a file (one line each). A writer owns its
//! socket and reads its target's queue; a slow or absent receiver only ever fills the queue.

use super::format::format;
use super::record::Record;
use super::TargetStats;
use crate::config::{LogTarget, LogTransport};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc::Receiver;

const MAX_BACKOFF: Duration = Duration::from_secs(10);

pub async fn run(target: LogTarget, mut rx: Receiver<Arc<Record>>, stats: Arc<TargetStats>) {
    match target.transport.clone() {
        LogTransport::Udp(addr) => {
            let bind = if addr.is_ipv4() {
                "0.0.0.0:0"
            } else {
                "[::]:0"
            };
            let Ok(sock) = tokio::net::UdpSocket::bind(bind).await else {
                tracing::error!(target = %target.name, "access log: cannot open a UDP socket");
                return;
            };
            while let Some(r) = rx.recv().await {
                let line = format(&target, &r);
                count(&stats, sock.send_to(line.as_bytes(), addr).await.is_ok());
            }
        }
        LogTransport::Unix(path) => {
            let Ok(sock) = tokio::net::UnixDatagram::unbound() else {
                tracing::error!(target = %target.name, "access log: cannot open a unix socket");
                return;
            };
            while let Some(r) = rx.recv().await {
                let line = format(&target, &r);
                count(&stats, sock.send_to(line.as_bytes(), &path).await.is_ok());
            }
        }
        LogTransport::Tcp(addr) => tcp(target, addr, rx, stats).await,
        LogTransport::Stdout => {
            let mut out = tokio::io::stdout();
            while let Some(r) = rx.recv().await {
                let line = format(&target, &r) + "\n";
                count(&stats, out.write_all(line.as_bytes()).await.is_ok());
            }
        }
        LogTransport::File(path) => {
            let file = tokio::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .await;
            let Ok(mut file) = file else {
                tracing::error!(target = %target.name, path = %path.display(), "access log: cannot open file");
                return;
            };
            while let Some(r) = rx.recv().await {
                let line = format(&target, &r) + "\n";
                count(&stats, file.write_all(line.as_bytes()).await.is_ok());
            }
        }
    }
}

fn count(stats: &TargetStats, sent: bool) {
    if sent {
        stats.sent.fetch_add(1, Relaxed);
    } else {
        stats.dropped.fetch_add(1, Relaxed);
    }
}

async fn tcp(
    target: LogTarget,
    addr: std::net::SocketAddr,
    mut rx: Receiver<Arc<Record>>,
    stats: Arc<TargetStats>,
) {
    let mut backoff = Duration::from_millis(100);
    let mut conn: Option<tokio::net::TcpStream> = None;
    while let Some(r) = rx.recv().await {
        if conn.is_none() {
            match tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr))
                .await
            {
                Ok(Ok(s)) => {
                    backoff = Duration::from_millis(100);
                    conn = Some(s);
                }
                _ => {
                    // Drop this record, wait, and drop what queued meanwhile beyond capacity.
                    stats.dropped.fetch_add(1, Relaxed);
                    tracing::warn!(target = %target.name, %addr, "access log: TCP receiver unreachable; retrying in {backoff:?}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            }
        }
        let msg = format(&target, &r);
        let framed = format!("{} {msg}", msg.len());
        let ok = match conn.as_mut() {
            Some(s) => s.write_all(framed.as_bytes()).await.is_ok(),
            None => false,
        };
        if !ok {
            conn = None;
        }
        count(&stats, ok);
    }
}
