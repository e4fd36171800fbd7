//! The running state shared by every request: the current config generation (`Runtime`) behind
//! one `ArcSwap`, loaded once per request so a request never sees two configs, and beside it the
//! state that outlives a config (server states in the `ServerRegistry`).

use crate::balance::{build_pools, Pool, ServerRegistry};
use crate::config::Config;
use crate::routing::Router;
use arc_swap::ArcSwap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// One config generation with its derived tables.
pub struct Runtime {
    pub config: Arc<Config>,
    pub router: Router,
    pub pools: Vec<Pool>,
    /// Increases with every swap; lets background services notice a new config.
    pub generation: u64,
}

/// Everything shared between requests, services and (later) the admin API.
pub struct Shared {
    runtime: ArcSwap<Runtime>,
    pub registry: ServerRegistry,
    generations: AtomicU64,
}

impl Shared {
    pub fn new(config: Config) -> Arc<Shared> {
        let registry = ServerRegistry::default();
        let runtime = build(config, &registry, 0);
        Arc::new(Shared {
            runtime: ArcSwap::from_pointee(runtime),
            registry,
            generations: AtomicU64::new(0),
        })
    }

    /// The config generation in force now.
    pub fn current(&self) -> Arc<Runtime> {
        self.runtime.load_full()
    }

    /// Swaps in a new, already validated config; servers that still exist keep their state.
    pub fn apply(&self, config: Config) {
        let generation = self.generations.fetch_add(1, Ordering::Relaxed) + 1;
        let runtime = build(config, &self.registry, generation);
        self.registry.retain(&runtime.config);
        self.runtime.store(Arc::new(runtime));
    }
}

fn build(config: Config, registry: &ServerRegistry, generation: u64) -> Runtime {
    Runtime {
        router: Router::new(&config.routes),
        pools: build_pools(&config, registry),
        config: Arc::new(config),
        generation,
    }
}
