//! Config reload: a new generation is read, validated and swapped in whole, or refused whole
//! with every problem; changes that need sockets opened or closed are refused as "needs
//! upgrade" (`config::changes` sorts them). Certificates of running TLS listeners are swapped
//! in place.

use super::{build, Shared};
use crate::config::changes::{classify, Changes};
use crate::config::{Config, ConfigErrors};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

impl Shared {
    /// Swaps in a new, already validated config; servers that still exist keep their state and
    /// TLS listeners get the new certificates for their next handshakes.
    pub fn apply(&self, config: Config) {
        self.swap_certificates(&config);
        *self.state_file.lock().unwrap_or_else(|e| e.into_inner()) =
            config.server.state_dir.join("state.json");
        let generation = self.generations.fetch_add(1, Ordering::Relaxed) + 1;
        let current = self.current();
        let old = current.cache.clone();
        let cache = if old.config.same_storage(&config.cache) {
            old
        } else {
            old.replace(&config.cache)
        };
        let previous = (generation, Some(&*current));
        let runtime = build(config, &self.registry, cache, &self.metrics, previous);
        self.registry.retain(&runtime.config);
        self.runtime.store(Arc::new(runtime));
        // A server this config adds may have been drained by the cluster already.
        super::cluster_node::ClusterNode::apply_known(self);
    }
    /// Gives each running TLS listener the certificate set `config` names for it.
    pub fn swap_certificates(&self, config: &Config) {
        for l in &config.listeners {
            if let (Some(t), Some(state)) = (&l.tls, self.tls.get(&l.name)) {
                state.reload(t);
            }
        }
    }

    /// Reads, validates and applies a config file: all or nothing. On error the running config
    /// stays and every problem comes back.
    /// What changed comes back, with the settings that wait for a new process.
    pub fn reload_from(&self, path: &Path) -> Result<Changes, ConfigErrors> {
        let result = self.try_reload(path);
        match &result {
            Ok(changes) => {
                self.reloads_ok.fetch_add(1, Ordering::Relaxed);
                tracing::info!(file = %path.display(), changed = ?changes.reload, "config reloaded");
                if !changes.after_restart.is_empty() {
                    tracing::warn!(
                        "these settings apply only after a binary upgrade or restart: {}",
                        changes.after_restart.join("; ")
                    );
                }
            }
            Err(errors) => {
                self.reloads_failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!("config reload refused, the running config stays:\n{errors}");
            }
        }
        result
    }

    fn try_reload(&self, path: &Path) -> Result<Changes, ConfigErrors> {
        let config = Config::load(path)?;
        let changes = classify(&self.current().config, &config);
        let refusals = changes.refusals();
        if !refusals.is_empty() {
            return Err(ConfigErrors {
                source: path.display().to_string(),
                errors: refusals,
            });
        }
        self.apply(config);
        if let Err(e) = self.persist_state() {
            tracing::error!("{e}");
        }
        Ok(changes)
    }
}
