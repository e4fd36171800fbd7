//! The running state shared by every request: the current config generation (`Runtime`) behind
//! one `ArcSwap`, loaded once per request so a request never sees two configs, and beside it the
//! state that outlives a config (server states in the `ServerRegistry`).

use crate::balance::{build_pools, Pool, ServerRegistry};
use crate::config::Config;
use crate::routing::Router;
use crate::tls::{CertSet, SniResolver};
use arc_swap::ArcSwap;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// One config generation with its derived tables.
pub struct Runtime {
    pub config: Arc<Config>,
    pub router: Router,
    pub pools: Vec<Pool>,
    /// Increases with every swap; lets background services notice a new config.
    pub generation: u64,
    /// Listener index by the exact local address a connection arrived on.
    listener_by_addr: HashMap<SocketAddr, usize>,
    /// Listener index by port, for listeners bound to 0.0.0.0 or [::].
    listener_by_port: HashMap<u16, usize>,
}

impl Runtime {
    /// The listener a connection with local address `local` was accepted on.
    pub fn listener_for(&self, local: SocketAddr) -> Option<usize> {
        self.listener_by_addr
            .get(&local)
            .or_else(|| self.listener_by_port.get(&local.port()))
            .copied()
    }
}

/// Everything shared between requests, services and (later) the admin API.
pub struct Shared {
    runtime: ArcSwap<Runtime>,
    pub registry: ServerRegistry,
    generations: AtomicU64,
    /// Certificate resolvers of the TLS listeners, by listener name (listeners live as long as
    /// the process; their certificates are swapped on reload).
    pub tls: HashMap<String, std::sync::Arc<SniResolver>>,
}

impl Shared {
    pub fn new(config: Config) -> Arc<Shared> {
        let registry = ServerRegistry::default();
        let tls = config
            .listeners
            .iter()
            .filter_map(|l| {
                let t = l.tls.as_ref()?;
                Some((
                    l.name.clone(),
                    SniResolver::new(CertSet::new(&t.certificates, t.default)),
                ))
            })
            .collect();
        let runtime = build(config, &registry, 0);
        Arc::new(Shared {
            runtime: ArcSwap::from_pointee(runtime),
            registry,
            generations: AtomicU64::new(0),
            tls,
        })
    }

    /// The config generation in force now.
    pub fn current(&self) -> Arc<Runtime> {
        self.runtime.load_full()
    }

    /// Swaps in a new, already validated config; servers that still exist keep their state and
    /// TLS listeners get the new certificates for their next handshakes.
    pub fn apply(&self, config: Config) {
        self.swap_certificates(&config);
        let generation = self.generations.fetch_add(1, Ordering::Relaxed) + 1;
        let runtime = build(config, &self.registry, generation);
        self.registry.retain(&runtime.config);
        self.runtime.store(Arc::new(runtime));
    }
}

impl Shared {
    /// Gives each running TLS listener the certificate set `config` names for it.
    pub fn swap_certificates(&self, config: &Config) {
        for l in &config.listeners {
            if let (Some(t), Some(resolver)) = (&l.tls, self.tls.get(&l.name)) {
                resolver.swap(CertSet::new(&t.certificates, t.default));
            }
        }
    }

    /// Reads, validates and applies a config file: all or nothing. On error the running config
    /// stays and every problem comes back.
    pub fn reload_from(&self, path: &std::path::Path) -> Result<(), crate::config::ConfigErrors> {
        let config = Config::load(path)?;
        self.apply(config);
        Ok(())
    }
}

fn build(config: Config, registry: &ServerRegistry, generation: u64) -> Runtime {
    let mut listener_by_addr = HashMap::new();
    let mut listener_by_port = HashMap::new();
    for (i, l) in config.listeners.iter().enumerate() {
        listener_by_addr.insert(l.address, i);
        if l.address.ip().is_unspecified() {
            listener_by_port.insert(l.address.port(), i);
        }
    }
    Runtime {
        listener_by_addr,
        listener_by_port,
        router: Router::new(&config.routes),
        pools: build_pools(&config, registry),
        config: Arc::new(config),
        generation,
    }
}
