//! Builds pingora's `Server` from a validated `Config` and runs it: in the foreground for
//! `gatehouse run`, or on a thread with a handle (`Gatehouse`) that tests and embedders stop on
//! drop.

use crate::balance::{HealthService, Pools};
use crate::config::Config;
use crate::proxy::Proxy;
use crate::runtime::Shared;
use async_trait::async_trait;
use pingora::listeners::{L4BufferSettings, ListenerConfig};
use pingora::server::configuration::{Opt, ServerConf};
use pingora::server::{RunArgs, Server, ShutdownSignal, ShutdownSignalWatch};
use pingora::services::background::background_service;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// pingora's own cap on attempts per request; each pool's `retries` is enforced below it.
const MAX_ATTEMPTS: usize = 16;

/// Prepares the state directory and checks that every listener address can be bound, so an
/// operator gets "listeners[0].address: ..." rather than a panic deep in pingora.
pub fn preflight(config: &Config, upgrade: bool) -> Result<(), String> {
    let dir = &config.server.state_dir;
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("server.state_dir: cannot create {}: {e}", dir.display()))?;
    if upgrade {
        return Ok(()); // the old process holds the sockets and hands them over
    }
    for (i, l) in config.listeners.iter().enumerate() {
        std::net::TcpListener::bind(l.address).map_err(|e| {
            format!(
                "listeners[{i}].address: cannot listen on {}: {e}",
                l.address
            )
        })?;
    }
    if config.admin.enabled {
        let address = config.admin.address;
        std::net::TcpListener::bind(address)
            .map_err(|e| format!("admin.address: cannot listen on {address}: {e}"))?;
    }
    Ok(())
}

/// The proxy's listeners, as configured. A TLS listener whose settings cannot be built is left
/// out (logged); the others still start. Every connection passes `conn::Admission` before its
/// handshake (a `proxy_protocol` listener's PROXY header, the connection rate).
fn add_listeners<A>(
    proxy: &mut pingora::services::listening::Service<A>,
    config: &Config,
    shared: &Arc<Shared>,
) {
    for l in &config.listeners {
        let tcp = ListenerConfig::tcp(l.address.to_string());
        let admission = crate::conn::Admission {
            policy: shared.clone(),
            proxy_protocol: l.proxy_protocol,
        };
        let tcp = crate::pingora_ext::before_handshake(tcp, Arc::new(admission));
        match (&l.tls, shared.tls.get(&l.name)) {
            (Some(t), Some(state)) => {
                match crate::tls::listener_settings(state, t, &shared.metrics.tls_handshakes) {
                    // No read buffer under TLS: rustls keeps the records it reads in its own
                    // buffer, so pingora's (16 KiB per connection, idle or not) was a second
                    // copy. pingora's default is 64 KiB; nginx and HAProxy hold a few KiB.
                    // No write buffer: the writes are gathered above TLS, as on plain
                    // listeners (`conn::ClientStream`, `conn::CorkedStream`).
                    Ok(settings) => proxy.add_listener(
                        tcp.tls(settings)
                            .l4_buffer(L4BufferSettings::default().read(0).write(0)),
                    ),
                    Err(e) => tracing::error!("listener {}: TLS settings: {e}", l.name),
                }
            }
            // No write buffer either: `conn::ClientStream` gathers a response's writes in a
            // buffer it holds only while writing, so an idle connection keeps none.
            _ => proxy.add_listener(tcp.l4_buffer(L4BufferSettings::default().read(0).write(0))),
        }
    }
}

/// Builds the pingora server with gatehouse's services: the proxy on every listener and the
/// health checker.
pub fn build_server(config: &Config, shared: Arc<Shared>, upgrade: bool) -> Server {
    let mut conf = ServerConf {
        threads: config.server.threads,
        pid_file: config.server.pid_file.display().to_string(),
        upgrade_sock: config.server.upgrade_socket.display().to_string(),
        grace_period_seconds: Some(crate::clock::ceil_secs(config.server.grace_period)),
        graceful_shutdown_timeout_seconds: Some(crate::clock::ceil_secs(
            config.server.shutdown_timeout,
        )),
        max_retries: MAX_ATTEMPTS,
        ..ServerConf::default()
    };
    conf.daemon = false;
    let opt = Opt {
        upgrade,
        ..Opt::default()
    };
    let mut server = Server::new_with_opt_and_conf(opt, conf);
    server.bootstrap();

    let proxy = Proxy::new(shared.clone());
    let fast = Arc::new(proxy.sibling());
    let mut http = pingora::proxy::http_proxy(&server.configuration, proxy);
    let mut options = pingora::apps::HttpServerOptions::default();
    // pingora counts reuses after the first request; nginx's keepalive_requests counts requests.
    options.keepalive_request_limit = Some(config.limits.keepalive_requests.saturating_sub(1));
    // An HTTP/2 connection with no stream open is idle, like a kept-alive HTTP/1 one.
    options.h2_idle_timeout = Some(config.timeouts.client_idle);
    http.server_options = Some(options);
    let app = crate::conn::ClientApp {
        app: Arc::new(http),
        fast: Some(fast),
        tracker: shared.conns.clone(),
        policy: shared.clone(),
    };
    let mut proxy = pingora::services::listening::Service::new("gatehouse proxy".to_string(), app);
    add_listeners(&mut proxy, config, &shared);
    server.add_service(proxy);
    if config.admin.enabled {
        let mut admin = pingora::services::listening::Service::new(
            "gatehouse admin".to_string(),
            crate::admin::AdminApp::new(shared.clone()),
        );
        admin.add_tcp(&config.admin.address.to_string());
        admin.threads = Some(1);
        server.add_service(admin);
    }
    if let Some(acme) = acme_service(config, &shared) {
        server.add_service(background_service("gatehouse acme", acme));
    }
    if let Some(cluster) = shared.cluster.clone() {
        let node = Arc::new(crate::runtime::ClusterNode(shared.clone()));
        server.add_service(background_service(
            "gatehouse cluster",
            crate::cluster::ClusterService::new(cluster, node),
        ));
    }
    let pools = shared.clone();
    server.add_service(background_service(
        "gatehouse health checks",
        HealthService::new(Box::new(move || {
            let rt = pools.current();
            (rt.generation, rt as Pools)
        })),
    ));
    server
}

/// Every address gatehouse listens on, and whether its probe is client noise to forget (TLS: a
/// handshake that never started; PROXY protocol: no header): the proxy's listeners and,
/// when enabled, the admin API's. Ready means all of them: a deploy script's first call goes
/// to the admin API.
fn listening_addresses(config: &Config) -> Vec<(SocketAddr, bool)> {
    let proxy = config
        .listeners
        .iter()
        .map(|l| (l.address, l.tls.is_some() || l.proxy_protocol));
    let admin = config
        .admin
        .enabled
        .then_some((config.admin.address, false));
    proxy.chain(admin).collect()
}

/// Waits until every address accepts TCP connections; the first one that did not, on timeout.
/// The probe connects and closes: on a TLS or PROXY protocol listener that is a handshake
/// that never started, so its source address is registered as gatehouse's own
/// (`telemetry::self_probe`) first.
fn wait_listening(addrs: &[(SocketAddr, bool)], timeout: Duration) -> Result<(), SocketAddr> {
    let deadline = std::time::Instant::now() + timeout;
    for &(addr, tls) in addrs {
        loop {
            if let Ok(probe) = std::net::TcpStream::connect(addr) {
                if let (true, Ok(from)) = (tls, probe.local_addr()) {
                    crate::telemetry::self_probe(from);
                }
                break;
            }
            if std::time::Instant::now() > deadline {
                return Err(addr);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    Ok(())
}

/// Runs gatehouse in the foreground until SIGTERM (graceful), SIGINT (fast) or SIGQUIT
/// (hand-off to an upgrading process). SIGHUP reloads `config_path`.
pub fn run_foreground(
    config: Config,
    config_path: &std::path::Path,
    upgrade: bool,
) -> Result<(), String> {
    preflight(&config, upgrade)?;
    let pid_file = config.server.pid_file.clone();
    if let Err(e) = std::fs::write(&pid_file, format!("{}\n", std::process::id())) {
        tracing::warn!("cannot write pid file {}: {e}", pid_file.display());
    }
    let shared = Shared::new(config);
    read_cache_snapshot(&shared, upgrade);
    crate::runtime::keep_warm(Arc::downgrade(&shared));
    crate::signals::reload_on_sighup(shared.clone(), config_path.to_path_buf());
    let server = build_server(&shared.current().config, shared.clone(), upgrade);
    let listeners = listening_addresses(&shared.current().config);
    std::thread::spawn(move || {
        // systemd readiness: once every listener, the admin one too, accepts connections.
        if wait_listening(&listeners, Duration::from_secs(30)).is_ok() {
            crate::signals::notify("READY=1");
        }
    });
    tracing::info!(
        listeners = ?shared.current().config.listeners.iter().map(|l| l.address).collect::<Vec<_>>(),
        "gatehouse starting"
    );
    server.run(RunArgs {
        shutdown_signal: Box::new(UnixSignals(shared.clone())),
    });
    // Every request has finished: write the records still batched.
    shared.access_log.close();
    let writer = SNAPSHOT_WRITER
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    if let Some(w) = writer {
        w.join();
    }
    Ok(())
}

/// The cache snapshot's writer, started at a graceful stop or hand-off; the process waits for
/// it (it stops by itself at `shutdown_timeout`) before exiting.
static SNAPSHOT_WRITER: std::sync::Mutex<Option<SnapshotWriter>> = std::sync::Mutex::new(None);

/// Reads the cache snapshot, if the config keeps one, in the background. After a binary
/// upgrade the old process writes it before it hands over: waited for, up to a minute.
fn read_cache_snapshot(shared: &Arc<Shared>, upgrade: bool) {
    let rt = shared.current();
    let config = &rt.config;
    let path = crate::cache::snapshot::path(&config.server.state_dir);
    if !config.cache.enabled || !config.cache.snapshot {
        // Not read: never read later, by a start that would bring back what changed since.
        let _ = std::fs::remove_file(&path);
        return;
    }
    // The old process writes it when told to hand over, which may come a while after this
    // process started (it waits for the sockets meanwhile).
    let wait = if upgrade {
        config.server.shutdown_timeout.max(Duration::from_secs(60))
    } else {
        Duration::ZERO
    };
    crate::cache::snapshot::load_in_background(rt.cache.clone(), path, rt.key_layout, wait);
}

/// Starts writing the cache snapshot (graceful stop, hand-off), if the config keeps one: the
/// writer's thread.
fn write_cache_snapshot(shared: &Arc<Shared>) -> Option<SnapshotWriter> {
    let rt = shared.current();
    let config = &rt.config;
    if !config.cache.enabled || !config.cache.snapshot {
        return None;
    }
    let (cache, path) = (
        rt.cache.clone(),
        crate::cache::snapshot::path(&config.server.state_dir),
    );
    let layout = rt.key_layout;
    let deadline = std::time::Instant::now() + config.server.shutdown_timeout;
    let writer = std::thread::spawn(move || {
        match crate::cache::snapshot::write(&cache.storage, &path, layout, deadline) {
            Ok(done) => {
                tracing::info!(
                    objects = done.objects,
                    bytes = done.bytes,
                    ms = done.millis,
                    "cache snapshot written"
                );
                cache.counters.snapshot.written(done);
            }
            Err(e) => tracing::warn!("cache snapshot {} not written: {e}", path.display()),
        }
    });
    Some(SnapshotWriter {
        thread: writer,
        // Its records stop at `deadline`; the file's flush to disk gets a few seconds more.
        waited_until: deadline + Duration::from_secs(5),
    })
}

/// The cache snapshot's writer thread, and how long the process waits for it: a disk that
/// hangs on the final flush does not keep a stopping process alive (the file, renamed into
/// place only once flushed, is then simply not there).
struct SnapshotWriter {
    thread: std::thread::JoinHandle<()>,
    waited_until: std::time::Instant,
}

impl SnapshotWriter {
    fn join(self) {
        while !self.thread.is_finished() {
            if std::time::Instant::now() >= self.waited_until {
                tracing::warn!(
                    "cache snapshot still being written at its deadline: not waited for"
                );
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.thread.join();
    }
}

/// pingora's signals (SIGTERM graceful, SIGINT fast, SIGQUIT upgrade hand-off), plus: on a
/// graceful stop or hand-off, responses start closing their connections at once. pingora drops
/// idle kept-alive connections when it finally shuts down; by then their clients have already
/// been told to reconnect, so no request is caught sending on a connection being dropped.
struct UnixSignals(Arc<Shared>);

#[async_trait]
impl ShutdownSignalWatch for UnixSignals {
    async fn recv(&self) -> ShutdownSignal {
        let signal = pingora::server::UnixShutdownSignalWatch.recv().await;
        if !matches!(signal, ShutdownSignal::FastShutdown) {
            self.0
                .closing
                .store(true, std::sync::atomic::Ordering::Relaxed);
            crate::signals::notify("STOPPING=1");
            let writer = write_cache_snapshot(&self.0);
            let upgrade = matches!(signal, ShutdownSignal::GracefulUpgrade);
            match (upgrade, writer) {
                // Written before the sockets go: the new process reads it before it serves
                // much (the old one keeps serving meanwhile, within shutdown_timeout).
                (true, Some(w)) => {
                    let _ = tokio::task::spawn_blocking(move || w.join()).await;
                }
                (_, Some(w)) => {
                    *SNAPSHOT_WRITER.lock().unwrap_or_else(|e| e.into_inner()) = Some(w);
                }
                (_, None) => {}
            }
        }
        tracing::info!(?signal, "stopping");
        signal
    }
}

/// A running gatehouse on its own thread; dropping it stops the server.
pub struct Gatehouse {
    pub shared: Arc<Shared>,
    stop: tokio::sync::watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

struct StopOnSignal(tokio::sync::watch::Receiver<bool>);

#[async_trait]
impl ShutdownSignalWatch for StopOnSignal {
    async fn recv(&self) -> ShutdownSignal {
        let mut rx = self.0.clone();
        let _ = rx.wait_for(|stop| *stop).await;
        ShutdownSignal::FastShutdown
    }
}

impl Gatehouse {
    /// Starts gatehouse on a thread and returns once its listeners, the admin API's too, accept
    /// connections.
    pub fn start(config: Config) -> Result<Gatehouse, String> {
        preflight(&config, false)?;
        let listeners = listening_addresses(&config);
        let shared = Shared::new(config);
        crate::runtime::keep_warm(Arc::downgrade(&shared));
        let (stop, rx) = tokio::sync::watch::channel(false);
        let for_thread = shared.clone();
        let thread = std::thread::Builder::new()
            .name("gatehouse".into())
            .spawn(move || {
                let config = for_thread.current().config.clone();
                let server = build_server(&config, for_thread.clone(), false);
                server.run(RunArgs {
                    shutdown_signal: Box::new(StopOnSignal(rx)),
                });
                for_thread.access_log.close();
            })
            .map_err(|e| format!("cannot start server thread: {e}"))?;
        let gh = Gatehouse {
            shared,
            stop,
            thread: Some(thread),
        };
        wait_listening(&listeners, Duration::from_secs(10))
            .map_err(|addr| format!("gatehouse did not start listening on {addr}"))?;
        Ok(gh)
    }
}

impl Drop for Gatehouse {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The ACME jobs of the listeners with `[listeners.tls.acme]`, if any.
fn acme_service(config: &Config, shared: &Arc<Shared>) -> Option<crate::acme::AcmeService> {
    let jobs: Vec<crate::acme::AcmeJob> = config
        .listeners
        .iter()
        .filter_map(|l| {
            Some(crate::acme::AcmeJob {
                listener: l.name.clone(),
                settings: l.tls.as_ref()?.acme.clone()?,
                tls: shared.tls.get(&l.name)?.clone(),
                state: shared.acme.get(&l.name)?.clone(),
            })
        })
        .collect();
    (!jobs.is_empty()).then(|| crate::acme::AcmeService::new(jobs, shared.challenges.clone()))
}
