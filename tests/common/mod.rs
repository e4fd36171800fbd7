//! Test harness: ephemeral ports, in-process origins, and gatehouse booted from the library on
//! a thread (stopped when the handle drops).

pub mod cache;
pub mod certs;
pub mod ctl;
pub mod etcd;
pub mod origin;
pub mod process;
pub mod raw;
pub mod raw_origin;
pub mod syslog;
pub mod tls_client;

pub use origin::{Mode, Origin};

use gatehouse::{Config, Gatehouse};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A port nobody listens on right now (bound then released), for a listener started later.
/// Taken below the kernel's ephemeral range: a port from `bind(:0)` is in that range, and an
/// outgoing connection of another test could take it as its source port before the listener
/// binds it ("address already in use"). Each call takes the next port of a sequence that
/// starts at a different place in each process.
pub fn free_port() -> SocketAddr {
    const FIRST: usize = 10_000;
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<usize>().ok())
        .unwrap_or(32_768);
    let span = ephemeral.saturating_sub(FIRST);
    assert!(
        span >= 1_000,
        "ephemeral ports start at {ephemeral}: no room below for tests"
    );
    let start = std::process::id() as usize * 7_919;
    for _ in 0..span {
        let port = FIRST + (start + NEXT.fetch_add(1, Ordering::Relaxed)) % span;
        if let Ok(l) = std::net::TcpListener::bind(("127.0.0.1", port as u16)) {
            return l.local_addr().unwrap();
        }
    }
    panic!("no free port in {FIRST}..{ephemeral}");
}

/// A fresh directory for one gatehouse's state.
pub fn state_dir() -> std::path::PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "gatehouse-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A running gatehouse and the address of its listener.
pub struct Proxy {
    pub gh: Gatehouse,
    pub addr: SocketAddr,
}

impl Proxy {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Where its admin API listens.
    pub fn admin_address(&self) -> SocketAddr {
        self.gh.shared.current().config.admin.address
    }

    /// Waits until every server of every pool with a health check is up (or `timeout`).
    pub async fn wait_healthy(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let rt = self.gh.shared.current();
            let all_up = rt
                .pools
                .iter()
                .all(|p| p.servers.iter().all(|s| s.state.is_healthy()));
            if all_up {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "servers not healthy within {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn server_healthy(&self, pool: &str, server: &str) -> bool {
        let rt = self.gh.shared.current();
        let p = rt.pools.iter().find(|p| p.config.name == pool).unwrap();
        let s = p.servers.iter().find(|s| s.config.name == server).unwrap();
        s.state.is_healthy()
    }

    /// Calls the admin API: status and JSON body.
    pub async fn admin(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
    ) -> (u16, serde_json::Value) {
        admin_call(&self.gh, method, path, token).await
    }

    pub fn in_flight(&self, pool: &str, server: &str) -> u64 {
        let rt = self.gh.shared.current();
        let p = rt.pools.iter().find(|p| p.config.name == pool).unwrap();
        let s = p.servers.iter().find(|s| s.config.name == server).unwrap();
        s.state.inflight()
    }
}

pub const TOKEN: &str = "test-token-0123456789";

/// The `[server]` and `[admin]` sections tests use: a fresh state directory, quick shutdown,
/// the admin API on a free port with `TOKEN`.
pub fn server_section() -> String {
    server_section_in(&state_dir())
}

/// Like `server_section`, with a given state directory (to restart on the same state).
pub fn server_section_in(dir: &std::path::Path) -> String {
    format!(
        "[server]\nthreads = 2\nstate_dir = {:?}\ngrace_period = \"0s\"\nshutdown_timeout = \"1s\"\n\n\
         [admin]\naddress = \"{}\"\ntoken = \"{TOKEN}\"\n\n",
        dir.display().to_string(),
        free_port()
    )
}

/// Boots gatehouse with `body` (pools, routes, timeouts...) plus a listener on a free port.
pub async fn boot(body: &str) -> Proxy {
    let addr = free_port();
    let toml = format!(
        "{}[[listeners]]\naddress = \"{addr}\"\n\n{body}",
        server_section()
    );
    Proxy {
        gh: boot_config(Config::from_toml(&toml, "test").unwrap_or_else(|e| panic!("{e}\n{toml}")))
            .await,
        addr,
    }
}

/// Boots gatehouse on a whole validated config.
pub async fn boot_config(config: Config) -> Gatehouse {
    gatehouse::telemetry::init_with_default("warn");
    tokio::task::spawn_blocking(move || Gatehouse::start(config))
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("gatehouse did not start: {e}"))
}

/// gatehouse with one pool of `origins` (no health checks) and one route; `cache`: the
/// route's `[routes.cache]` section.
pub async fn proxy_with(
    origins: &[SocketAddr],
    direct: bool,
    extra: &str,
    retries: u32,
    cache: &str,
) -> Proxy {
    let servers: String = origins
        .iter()
        .enumerate()
        .map(|(i, a)| format!("[[pools.web.servers]]\nname = \"s{i}\"\naddress = \"{a}\"\n"))
        .collect();
    let addr = free_port();
    let section = server_section().replacen(
        "[server]\n",
        &format!("[server]\ndirect_exchange = {direct}\n"),
        1,
    );
    let toml = format!(
        "{section}[[listeners]]\naddress = \"{addr}\"\n\n{extra}\n[pools.web]\nretries = {retries}\n\
         [pools.web.health]\nenabled = false\n{servers}[[routes]]\npool = \"web\"\n\
         [routes.cache]\n{cache}\n"
    );
    let config = gatehouse::config::Config::from_toml(&toml, "test").unwrap();
    assert_eq!(config.server.direct_exchange, direct);
    Proxy {
        gh: boot_config(config).await,
        addr,
    }
}

/// `[[pools.NAME.servers]]` entries for origins, named after them.
pub fn servers(pool: &str, origins: &[&Origin]) -> String {
    origins
        .iter()
        .map(|o| {
            format!(
                "[[pools.{pool}.servers]]\nname = \"{}\"\naddress = \"{}\"\n",
                o.name, o.addr
            )
        })
        .collect()
}

/// A pool without health checks: its servers take traffic at once.
pub fn unchecked_pool(pool: &str, origins: &[&Origin]) -> String {
    format!(
        "[pools.{pool}.health]\nenabled = false\n{}",
        servers(pool, origins)
    )
}

/// A fast health check section for tests.
pub fn fast_health(pool: &str, rise: u32, fall: u32) -> String {
    format!(
        "[pools.{pool}.health]\npath = \"/health\"\ninterval = \"100ms\"\ntimeout = \"100ms\"\nrise = {rise}\nfall = {fall}\n"
    )
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// GET `url`: status and body.
pub async fn get(c: &reqwest::Client, url: &str) -> (u16, String) {
    let r = c.get(url).send().await.expect("request failed");
    let status = r.status().as_u16();
    (status, r.text().await.unwrap_or_default())
}

/// GET with a Host header.
pub async fn get_host(c: &reqwest::Client, url: &str, host: &str) -> (u16, String) {
    let r = c
        .get(url)
        .header("Host", host)
        .send()
        .await
        .expect("request failed");
    let status = r.status().as_u16();
    (status, r.text().await.unwrap_or_default())
}

/// The Prometheus text an admin listener serves at `/metrics`.
pub async fn metrics_text(admin: SocketAddr) -> String {
    client()
        .get(format!("http://{admin}/metrics"))
        .send()
        .await
        .expect("metrics request failed")
        .text()
        .await
        .unwrap()
}

/// `name{labels}` → value, from the Prometheus text format.
pub fn parse_metrics(text: &str) -> std::collections::HashMap<String, f64> {
    let mut out = std::collections::HashMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let (series, value) = line.rsplit_once(' ').expect("series and value");
        out.insert(series.to_string(), value.parse().expect("a number"));
    }
    out
}

/// Waits until `f` holds, checking every 50 ms; fails after 5 s.
pub async fn wait_until(f: impl Fn() -> bool) {
    for _ in 0..100 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("condition not met within 5s");
}

/// Calls the admin API of `gh`: status and JSON body.
pub async fn admin_call(
    gh: &Gatehouse,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> (u16, serde_json::Value) {
    let addr = gh.shared.current().config.admin.address;
    let mut req = client().request(method.parse().unwrap(), format!("http://{addr}{path}"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.expect("admin request failed");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

/// A child process killed and reaped when dropped.
pub struct Reap(pub std::process::Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `gatehouse check -c path`.
pub fn check(path: &std::path::Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["check", "-c"])
        .arg(path)
        .output()
        .unwrap()
}

/// The usual one-pool setup: `origins` in an unchecked pool "web" and one route for every host
/// and path to it. Route options (`[routes.cache]` ...) may follow directly.
pub fn one_route(origins: &[&Origin]) -> String {
    format!(
        "{}[[routes]]\npool = \"web\"\n",
        unchecked_pool("web", origins)
    )
}

/// The path of a tool a test needs. Missing, the test fails naming the package, unless the
/// user skipped it explicitly with `GATEHOUSE_TEST_SKIP=name[,name...]`; a skip is recorded
/// in `target/tmp/skipped-tests`, which `make test` lists in one line at the end.
pub fn tool(name: &str, paths: &[&str], package: &str) -> Option<std::path::PathBuf> {
    let found = paths.iter().find(|p| std::path::Path::new(p).exists());
    let missing = format!(
        "this test needs {package} ({} missing): install it (apt-get install {package})",
        paths.join(" or ")
    );
    required(name, found.is_some(), &format!("needs {package}"), &missing)
        .then(|| found.unwrap().into())
}

/// Whether a test that needs `what` (named `name` in `GATEHOUSE_TEST_SKIP`) runs: true when
/// `have`; otherwise false when the user skipped `name` explicitly (recorded like a missing
/// tool), and a failure saying `missing` when not.
pub fn required(name: &str, have: bool, what: &str, missing: &str) -> bool {
    if have {
        return true;
    }
    let skips = std::env::var("GATEHOUSE_TEST_SKIP").unwrap_or_default();
    if skips.split(',').any(|s| s.trim() == name) {
        record_skip(
            &format!("{name} ({what})"),
            "SKIPPED by GATEHOUSE_TEST_SKIP",
        );
        return false;
    }
    panic!("{missing}, or skip it explicitly with GATEHOUSE_TEST_SKIP={name}");
}

/// Notes a skipped test in `target/tmp/skipped-tests` (which `make test` lists at the end) and
/// prints why.
pub fn record_skip(what: &str, why: &str) {
    let list = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("skipped-tests");
    let line = format!("{what}\n");
    let _ = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(list)
        .and_then(|mut f| std::io::Write::write_all(&mut f, line.as_bytes()));
    eprintln!("{why}: {what}");
}

/// Runs `cmd` with `input` on its stdin; its whole output.
pub fn pipe_into(cmd: &mut std::process::Command, input: &[u8]) -> std::process::Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}
