//! Active health checks: one background service checks every server of every pool, each on its
//! pool's interval, with pingora's `HttpHealthCheck` doing the HTTP exchange and HAProxy's
//! rise/fall rule (in `ServerState`) deciding up and down.
//!
//! The service follows config reloads: when the running config changes, checkers of servers
//! that are gone or whose check changed stop, and new ones start. It reads the running pools
//! through a `PoolSource`, so it knows nothing of what holds them.

use super::{ServerState, Transition};
use crate::config::HealthConfig;
use async_trait::async_trait;
use pingora::lb::health_check::{HealthCheck, HttpHealthCheck};
use pingora::lb::Backend;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// How often the service looks for a new config generation.
const RECONCILE_EVERY: Duration = Duration::from_millis(250);

/// The pools of the running config generation.
pub type Pools = Arc<dyn AsRef<[super::Pool]> + Send + Sync>;

/// Gives the current config generation's number and its pools.
pub type PoolSource = Box<dyn Fn() -> (u64, Pools) + Send + Sync>;

pub struct HealthService {
    current: PoolSource,
}

impl HealthService {
    pub fn new(current: PoolSource) -> Self {
        HealthService { current }
    }
}

/// What identifies one checker: if any of it changes, the checker is replaced.
#[derive(PartialEq, Eq, Hash, Clone)]
struct CheckKey {
    pool: String,
    server: String,
    address: SocketAddr,
    check: String,
}

#[async_trait]
impl BackgroundService for HealthService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut tasks: HashMap<CheckKey, JoinHandle<()>> = HashMap::new();
        let mut seen_generation = None;
        loop {
            let (generation, pools) = (self.current)();
            if seen_generation != Some(generation) {
                seen_generation = Some(generation);
                let mut wanted = HashMap::new();
                for pool in (*pools).as_ref() {
                    let Some(hc) = &pool.config.health else {
                        continue;
                    };
                    for s in &pool.servers {
                        let key = CheckKey {
                            pool: pool.config.name.clone(),
                            server: s.config.name.clone(),
                            address: s.config.address,
                            check: format!("{hc:?}"),
                        };
                        wanted.insert(key, (hc.clone(), s.state.clone()));
                    }
                }
                tasks.retain(|k, t| {
                    let keep = wanted.contains_key(k);
                    if !keep {
                        t.abort();
                    }
                    keep
                });
                for (key, (hc, state)) in wanted {
                    if let std::collections::hash_map::Entry::Vacant(slot) = tasks.entry(key) {
                        let task = tokio::spawn(check_loop(slot.key().clone(), hc, state));
                        slot.insert(task);
                    }
                }
            }
            tokio::select! {
                _ = shutdown.changed() => break,
                _ = tokio::time::sleep(RECONCILE_EVERY) => {}
            }
        }
        for t in tasks.values() {
            t.abort();
        }
    }
}

async fn check_loop(key: CheckKey, hc: HealthConfig, state: Arc<ServerState>) {
    let checker = build_checker(&hc, key.address);
    let backend = Backend {
        addr: pingora::protocols::l4::socket::SocketAddr::Inet(key.address),
        weight: 1,
        ext: Default::default(),
    };
    let mut ticker = tokio::time::interval(hc.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if state.admin_state() == super::AdminState::Maint {
            continue; // checks are paused in maint
        }
        let result = match tokio::time::timeout(hc.timeout, checker.check(&backend)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {:?}", hc.timeout)),
        };
        state.set_last_check(super::CheckResult {
            ok: result.is_ok(),
            at: std::time::SystemTime::now(),
            detail: result.as_ref().err().cloned().unwrap_or_default(),
        });
        match state.record_check(result.is_ok(), hc.rise, hc.fall) {
            Transition::Up => tracing::info!(
                pool = %key.pool, server = %key.server, address = %key.address,
                "server is UP: health check passed"
            ),
            Transition::Down => tracing::warn!(
                pool = %key.pool, server = %key.server, address = %key.address,
                reason = %result.as_ref().err().map_or("", |s| s.as_str()),
                "server is DOWN after {} failed health checks", hc.fall
            ),
            Transition::None => {}
        }
    }
}

fn build_checker(hc: &HealthConfig, address: SocketAddr) -> HttpHealthCheck {
    let host = if hc.host.is_empty() {
        address.to_string()
    } else {
        hc.host.clone()
    };
    let mut checker = HttpHealthCheck::new(&host, false);
    if let Ok(mut req) = pingora::http::RequestHeader::build("GET", hc.path.as_bytes(), None) {
        let _ = req.insert_header("Host", host.as_str());
        let _ = req.insert_header("User-Agent", "gatehouse-health-check");
        let _ = req.insert_header("Connection", "close");
        checker.req = req;
    }
    checker.peer_template.options.connection_timeout = Some(hc.timeout);
    checker.peer_template.options.read_timeout = Some(hc.timeout);
    checker.peer_template.options.write_timeout = Some(hc.timeout);
    let expect = hc.expect_status.clone();
    checker.validator = Some(Box::new(move |resp: &pingora::http::ResponseHeader| {
        let code = resp.status.as_u16();
        if expect.contains(&code) {
            Ok(())
        } else {
            pingora::Error::e_explain(
                pingora::ErrorType::CustomCode("unexpected status", code),
                format!(
                    "status {code} is outside {}-{}",
                    expect.start(),
                    expect.end()
                ),
            )
        }
    }));
    checker
}
