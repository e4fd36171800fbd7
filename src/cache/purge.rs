//! Operator invalidations (Varnish's purge and ban) as values: the admin API parses one, a
//! node applies it, and a cluster stores it in etcd for the other nodes to apply the same way.

use super::Cache;
use crate::config::RouteConfig;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// One purge or ban.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Invalidation {
    /// One URL (path with its query, as requested), every Vary variant.
    Purge { host: String, path: String },
    /// Every object of `host` (any host when None) whose path starts with `prefix`.
    BanPrefix {
        host: Option<String>,
        prefix: String,
    },
    /// Every object of `host` (any host when None) whose path and query match `regex`.
    BanRegex { host: Option<String>, regex: String },
}

impl Invalidation {
    /// Checks what can be wrong before it is applied or shared (a regex that does not compile).
    pub fn check(&self) -> Result<(), String> {
        match self {
            Invalidation::BanRegex { regex, .. } => regex::Regex::new(regex)
                .map(|_| ())
                .map_err(|e| format!("bad regex: {e}")),
            Invalidation::BanPrefix { prefix, .. } if !prefix.starts_with('/') => {
                Err(format!("prefix {prefix:?} must start with '/'"))
            }
            _ => Ok(()),
        }
    }
}

impl Cache {
    /// Removes what `inv` names; answers how many objects went.
    pub fn apply(&self, inv: &Invalidation) -> Result<usize, String> {
        self.apply_at(inv, std::time::SystemTime::now())
    }

    /// `apply`, for an invalidation made at `at` (a cluster's, applied later here): copies
    /// made before `at` that it names are not stored again (`Cache::restore`).
    pub fn apply_at(&self, inv: &Invalidation, at: std::time::SystemTime) -> Result<usize, String> {
        inv.check()?;
        self.tombstones.invalidated(at, inv);
        Ok(match inv {
            Invalidation::Purge { host, path } => self.purge(host, path),
            Invalidation::BanPrefix { host, prefix } => self.ban_prefix(host.as_deref(), prefix),
            Invalidation::BanRegex { host, regex } => {
                let re = regex::Regex::new(regex).map_err(|e| e.to_string())?;
                self.ban_regex(host.as_deref(), &re)
            }
        })
    }
}

/// How long an object stored now could still be served under `routes`: its longest freshness
/// plus its longest stale use. A shared ban need not outlive it (no object it matched is left).
pub fn longest_life(routes: &[RouteConfig]) -> Duration {
    routes
        .iter()
        .filter_map(|r| r.cache.as_ref())
        .map(|c| {
            let fresh = c.override_ttl.unwrap_or(c.max_ttl).max(c.default_ttl);
            fresh + c.grace.max(c.stale_if_error).max(c.keep)
        })
        .max()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalidations_read_as_the_api_writes_them() {
        let ban: Invalidation =
            serde_json::from_str(r#"{"action":"ban_prefix","host":null,"prefix":"/img/"}"#)
                .unwrap();
        assert_eq!(
            ban,
            Invalidation::BanPrefix {
                host: None,
                prefix: "/img/".into()
            }
        );
        let bad = Invalidation::BanRegex {
            host: None,
            regex: "(".into(),
        };
        assert!(bad.check().unwrap_err().contains("bad regex"));
    }
}
