//! Backend pools: their servers, how one is chosen for a request, and their health.
//!
//! A `Pool` is built per config generation; each server's live state (`ServerState`) comes
//! from the `ServerRegistry`, so health, in-flight counts and admin state carry over a reload
//! for every server that still exists.

mod health;
mod idle;
mod select;
mod server;
mod slowstart;

pub use health::{HealthService, PoolSource, Pools};
pub use server::{AdminState, CheckResult, InflightGuard, ServerState, Transition};
pub use slowstart::FULL as FULL_SHARE;

use crate::config::{Balance, Config, HashKey, PoolConfig, ServerConfig};
use select::Selector;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// One server of a pool in the running config.
pub struct Server {
    pub config: ServerConfig,
    pub state: Arc<ServerState>,
}

impl Server {
    /// The configured weight times the slow-start ramp (the weight itself when not ramping).
    pub fn effective_weight(&self) -> f64 {
        f64::from(self.config.weight) * f64::from(self.state.ramp.factor()) / f64::from(FULL_SHARE)
    }
}

/// A pool in the running config.
pub struct Pool {
    pub config: PoolConfig,
    pub servers: Vec<Server>,
    primary: Selector,
    backup: Option<Selector>,
}

impl Pool {
    fn new(config: &PoolConfig, registry: &ServerRegistry) -> Pool {
        let servers: Vec<Server> = config
            .servers
            .iter()
            .map(|s| Server {
                config: s.clone(),
                state: registry.state(&config.name, s, config.health.is_some()),
            })
            .collect();
        let (backups, primaries): (Vec<usize>, Vec<usize>) =
            (0..servers.len()).partition(|&i| servers[i].config.backup);
        let build = |members: &[usize]| match &config.balance {
            Balance::RoundRobin => Selector::round_robin(&servers, members),
            Balance::LeastConn => Selector::least_conn(members),
            Balance::Hash(_) => Selector::hash(&servers, members),
        };
        let primary = build(&primaries);
        let backup = (!backups.is_empty()).then(|| build(&backups));
        Pool {
            config: config.clone(),
            servers,
            primary,
            backup,
        }
    }

    /// Chooses a usable server not in `tried`: primaries first, backups only when no primary is
    /// usable at all (HAProxy's rule).
    pub fn select(&self, key: Option<&[u8]>, tried: &[usize]) -> Option<usize> {
        let ok = |i: usize| self.servers[i].state.is_usable() && !tried.contains(&i);
        if let Some(i) = self.primary.pick(&self.servers, key, &ok) {
            return Some(i);
        }
        let any_primary_usable = self
            .servers
            .iter()
            .any(|s| !s.config.backup && s.state.is_usable());
        if any_primary_usable {
            // Every usable primary was already tried by this request.
            return None;
        }
        self.backup.as_ref()?.pick(&self.servers, key, &ok)
    }

    pub fn hash_key(&self) -> Option<&HashKey> {
        match &self.config.balance {
            Balance::Hash(k) => Some(k),
            _ => None,
        }
    }
}

/// Builds every pool of a config.
pub fn build_pools(config: &Config, registry: &ServerRegistry) -> Vec<Pool> {
    config
        .pools
        .iter()
        .map(|p| Pool::new(p, registry))
        .collect()
}

/// Live server states by (pool, server name): only touched when a config is built, never on
/// the request path.
#[derive(Default)]
pub struct ServerRegistry {
    states: Mutex<HashMap<ServerKey, (std::net::SocketAddr, Arc<ServerState>)>>,
}

/// (pool name, server name)
type ServerKey = (String, String);

impl ServerRegistry {
    fn state(&self, pool: &str, server: &ServerConfig, checked: bool) -> Arc<ServerState> {
        let state = self.known_or_new(pool, server, checked);
        state.ramp.set_span(server.slowstart);
        state
    }

    fn known_or_new(&self, pool: &str, server: &ServerConfig, checked: bool) -> Arc<ServerState> {
        let mut states = self.states.lock().unwrap_or_else(|e| e.into_inner());
        let key = (pool.to_string(), server.name.clone());
        match states.get(&key) {
            // Same name, same address, same checking: the same server, keep what we know.
            Some((addr, state)) if *addr == server.address && state.is_checked() == checked => {
                state.clone()
            }
            old => {
                let state = Arc::new(ServerState::new(checked));
                // The operator's word is kept by name, whatever else changed.
                if let Some((_, old)) = old {
                    state.set_admin_state(old.admin_state());
                }
                states.insert(key, (server.address, state.clone()));
                state
            }
        }
    }

    /// Every server's admin state that is not `ready`, as "pool/server" → state.
    pub fn admin_states(&self) -> std::collections::BTreeMap<String, AdminState> {
        let states = self.states.lock().unwrap_or_else(|e| e.into_inner());
        states
            .iter()
            .filter(|(_, (_, s))| s.admin_state() != AdminState::Ready)
            .map(|((pool, name), (_, s))| (format!("{pool}/{name}"), s.admin_state()))
            .collect()
    }

    /// Forgets servers no config lists any more.
    pub fn retain(&self, config: &Config) {
        let mut states = self.states.lock().unwrap_or_else(|e| e.into_inner());
        states.retain(|(pool, name), _| {
            config
                .pools
                .iter()
                .any(|p| &p.name == pool && p.servers.iter().any(|s| &s.name == name))
        });
    }
}
