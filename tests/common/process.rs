//! gatehouse as its own process, as an operator runs it: a config file on fixed ports, the
//! binary started on it, and a load loop of clients through it.

use super::{client, free_port, server_section_in, state_dir, unchecked_pool, Origin};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

/// A config file whose pool is `servers` (no health checks), on fixed listener/admin ports.
pub struct ConfigFile {
    pub path: PathBuf,
    /// The `[server]` and `[admin]` sections every `write` starts with.
    pub section: String,
    pub listen: std::net::SocketAddr,
}

impl ConfigFile {
    pub fn new() -> ConfigFile {
        let dir = state_dir();
        ConfigFile {
            path: dir.join("gatehouse.toml"),
            section: server_section_in(&dir),
            listen: free_port(),
        }
    }

    pub fn write(&self, body: &str) {
        std::fs::write(
            &self.path,
            format!(
                "{}[[listeners]]\naddress = \"{}\"\n{body}",
                self.section, self.listen
            ),
        )
        .unwrap();
    }

    /// The admin address the file names.
    pub fn admin(&self) -> std::net::SocketAddr {
        gatehouse::Config::load(&self.path).unwrap().admin.address
    }
}

/// One unchecked pool "web" of `origins`, `extra`, and one route to it.
pub fn pool_of(origins: &[&Origin], extra: &str) -> String {
    format!(
        "{}{extra}[[routes]]\npool = \"web\"\n",
        unchecked_pool("web", origins)
    )
}

/// A bounded load loop: `workers` clients sending GETs until stopped; counts ok and failed.
pub struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    pub fn start(addr: std::net::SocketAddr, workers: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let tasks = (0..workers)
            .map(|w| {
                let (stop, ok, failed, c) = (stop.clone(), ok.clone(), failed.clone(), client());
                tokio::spawn(async move {
                    let mut i = 0;
                    while !stop.load(SeqCst) && i < 100_000 {
                        i += 1;
                        match c.get(format!("http://{addr}/load/{w}/{i}")).send().await {
                            Ok(r) if r.status() == 200 => ok.fetch_add(1, SeqCst),
                            other => {
                                eprintln!(
                                    "failed request at {:?}: {:?}",
                                    std::time::SystemTime::now(),
                                    other.map(|r| r.status())
                                );
                                failed.fetch_add(1, SeqCst)
                            }
                        };
                    }
                })
            })
            .collect();
        Load {
            stop,
            ok,
            failed,
            tasks,
        }
    }

    /// Requests answered 200 so far.
    pub fn ok(&self) -> usize {
        self.ok.load(SeqCst)
    }

    /// Stops the clients: (ok, failed).
    pub async fn finish(self) -> (usize, usize) {
        self.stop.store(true, SeqCst);
        for t in self.tasks {
            t.await.unwrap();
        }
        (self.ok.load(SeqCst), self.failed.load(SeqCst))
    }
}

/// `gatehouse run -c config` (with `--upgrade`: taking over a running one's sockets), its
/// stderr in `log`.
pub fn spawn_gatehouse(config: &Path, upgrade: bool, log: &Path) -> std::process::Child {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"));
    cmd.args(["run", "-c"]).arg(config);
    if upgrade {
        cmd.arg("--upgrade");
    }
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .env("RUST_LOG", "warn")
        .spawn()
        .unwrap()
}

/// Waits (up to 5 s) until something accepts connections on `addr`.
pub async fn wait_listening(addr: std::net::SocketAddr) {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{addr} never listened");
}

/// Sends `sig` ("-TERM", "-QUIT"...) to a child process.
pub fn signal(child: &std::process::Child, sig: &str) {
    let status = std::process::Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits for a child process to exit by itself; false on timeout.
pub async fn exits(child: &mut super::Reap, within: Duration) -> bool {
    let deadline = std::time::Instant::now() + within;
    while std::time::Instant::now() < deadline {
        if child.0.try_wait().unwrap().is_some() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}
