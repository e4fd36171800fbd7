//! Config reload: a new generation is read, validated and swapped in whole, or refused whole
//! with every problem; changes that need sockets opened or closed are refused as "needs
//! upgrade". Certificates of running TLS listeners are swapped in place.

use super::{build, Shared};
use crate::cache::Cache;
use crate::config::{Config, ConfigError, ConfigErrors, KeyPath};
use crate::tls::CertSet;
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
        let old = self.current().cache;
        let cache = if old.config == config.cache {
            old
        } else {
            // A resized cache is a new cache: free the old one's objects (the small structure
            // itself stays, as pingora holds storage as &'static).
            old.storage.entries.invalidate_all();
            Cache::new(&config.cache)
        };
        let runtime = build(config, &self.registry, cache, &self.metrics, generation);
        self.registry.retain(&runtime.config);
        self.runtime.store(Arc::new(runtime));
    }
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
    pub fn reload_from(&self, path: &Path) -> Result<(), ConfigErrors> {
        let result = self.try_reload(path);
        match &result {
            Ok(()) => {
                self.reloads_ok.fetch_add(1, Ordering::Relaxed);
                tracing::info!(file = %path.display(), "config reloaded");
            }
            Err(errors) => {
                self.reloads_failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!("config reload refused, the running config stays:\n{errors}");
            }
        }
        result
    }

    fn try_reload(&self, path: &Path) -> Result<(), ConfigErrors> {
        let config = Config::load(path)?;
        let needs_upgrade = needs_new_sockets(&self.current().config, &config);
        if !needs_upgrade.is_empty() {
            return Err(ConfigErrors {
                source: path.display().to_string(),
                errors: needs_upgrade,
            });
        }
        self.apply(config);
        if let Err(e) = self.persist_state() {
            tracing::error!("{e}");
        }
        Ok(())
    }
}

/// Changes a reload cannot apply because they need sockets opened or closed: those take a
/// binary upgrade (`run --upgrade`), never half of a reload.
pub fn needs_new_sockets(old: &Config, new: &Config) -> Vec<ConfigError> {
    let mut out = Vec::new();
    let mut push = |path: KeyPath, message: String| {
        out.push(ConfigError {
            path,
            line: None,
            message,
            warning: false,
        })
    };
    let shape = |c: &Config| -> Vec<(String, std::net::SocketAddr, bool)> {
        c.listeners
            .iter()
            .map(|l| (l.name.clone(), l.address, l.tls.is_some()))
            .collect()
    };
    if shape(old) != shape(new) {
        push(
            KeyPath::root().key("listeners"),
            "needs upgrade: listeners were added, removed or changed address or TLS; \
             run a binary upgrade (gatehouse run --upgrade) to apply"
                .into(),
        );
    }
    if old.access_log.targets != new.access_log.targets {
        push(
            KeyPath::root().key("access_log").key("targets"),
            "needs upgrade: access log targets changed; run a binary upgrade to apply".into(),
        );
    }
    if (old.admin.enabled, old.admin.address) != (new.admin.enabled, new.admin.address) {
        push(
            KeyPath::root().key("admin").key("address"),
            "needs upgrade: the admin listener changed; run a binary upgrade to apply".into(),
        );
    }
    out
}
