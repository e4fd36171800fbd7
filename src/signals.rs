//! SIGHUP reloads the config file (all or nothing), and systemd readiness (`Type=notify`).
//!
//! pingora leaves SIGHUP at its default action, which kills the process: the handler is
//! registered first thing in `gatehouse run`, before the config is even read.

use crate::runtime::Shared;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

/// Where SIGHUP sends its reloads once the server is up; before that a SIGHUP is ignored.
static TARGET: OnceLock<(Arc<Shared>, PathBuf)> = OnceLock::new();

/// Installs the SIGHUP handler on a thread of its own; returns once it is in place.
pub fn install_sighup() -> Result<(), String> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("gatehouse-sighup".into())
        .spawn(move || {
            let tokio_rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(tokio_rt) => tokio_rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(e.to_string()));
                    return;
                }
            };
            tokio_rt.block_on(async move {
                use tokio::signal::unix::{signal, SignalKind};
                let mut hup = match signal(SignalKind::hangup()) {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                while hup.recv().await.is_some() {
                    match TARGET.get() {
                        Some((shared, path)) => {
                            tracing::info!("SIGHUP: reloading {}", path.display());
                            notify("RELOADING=1");
                            let _ = shared.reload_from(path);
                            notify("READY=1");
                        }
                        None => tracing::warn!("SIGHUP before startup finished: ignored"),
                    }
                }
            });
        })
        .map_err(|e| format!("cannot start the signal thread: {e}"))?;
    ready_rx
        .recv()
        .map_err(|_| "the signal thread died".to_string())?
        .map_err(|e| format!("cannot handle SIGHUP: {e}"))
}

/// Points SIGHUP at the running server and its config file.
pub fn reload_on_sighup(shared: Arc<Shared>, path: PathBuf) {
    let _ = TARGET.set((shared, path));
}

/// Tells systemd (`Type=notify`) about our state, when started by it.
pub fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(sock) = std::os::unix::net::UnixDatagram::unbound() else {
        return;
    };
    let path = PathBuf::from(path);
    // Abstract sockets ("@name") are not reachable through a path; skip them quietly.
    if !path.to_string_lossy().starts_with('@') {
        let _ = sock.send_to(state.as_bytes(), &path);
    }
}
