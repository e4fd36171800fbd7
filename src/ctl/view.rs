//! An answer of the admin API read as the view its endpoint gives (`admin::api`), and printed
//! for people: a renamed field fails here instead of printing "-".

use super::cluster;
use crate::admin::api::ServerView;
use crate::admin::api::{BlocksView, PoolsView, ReadonlyView, ReloadView, ServerActionView};
use crate::admin::api::{ClusterView, ClusterWriteView, ConfigView, Endpoint, InvalidationView};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The answers of the endpoints `ctl` calls.
pub enum View {
    Pools(PoolsView),
    ServerAction(ServerActionView),
    Reload(ReloadView),
    Readonly(ReadonlyView),
    Invalidation(InvalidationView),
    Config(ConfigView),
    Cluster(ClusterView),
    Blocks(BlocksView),
}

impl View {
    /// Reads `body` as the view `endpoint` answers with.
    pub fn read(endpoint: &Endpoint, body: Value) -> Result<View, String> {
        Ok(match endpoint {
            Endpoint::Pools => View::Pools(typed(body)?),
            Endpoint::ServerAction { .. } => View::ServerAction(typed(body)?),
            Endpoint::Reload => View::Reload(typed(body)?),
            Endpoint::Readonly | Endpoint::SetReadonly => View::Readonly(typed(body)?),
            Endpoint::Purge | Endpoint::Ban => View::Invalidation(typed(body)?),
            Endpoint::Config => View::Config(typed(body)?),
            Endpoint::Cluster => View::Cluster(typed(body)?),
            Endpoint::Blocks | Endpoint::Block | Endpoint::Unblock { .. } => {
                View::Blocks(typed(body)?)
            }
            other => return Err(format!("ctl does not call {}", other.path())),
        })
    }

    /// The change the API wrote to the cluster, if it went through etcd.
    pub fn written(&self) -> Option<&ClusterWriteView> {
        match self {
            View::ServerAction(a) => a.cluster.as_ref(),
            View::Readonly(r) => r.cluster.as_ref(),
            View::Invalidation(i) => i.cluster.as_ref(),
            View::Blocks(b) => b.cluster.as_ref(),
            _ => None,
        }
    }

    pub fn print(self) {
        match self {
            View::Reload(r) => {
                println!("reloaded {} (checksum {})", r.file, r.checksum);
                if !r.changed.is_empty() {
                    println!("applied: {}", r.changed.join(", "));
                }
                for s in &r.after_restart {
                    println!("applies only after a binary upgrade or restart: {s}");
                }
            }
            View::Pools(p) => {
                print_header();
                for s in p.pools.iter().flat_map(|p| &p.servers) {
                    print_server_row(s);
                }
            }
            View::Readonly(r) => print_readonly(r),
            View::Invalidation(r) => match r.removed {
                Some(n) => println!("removed {n} object(s)"),
                None => println!("sent to the cluster"),
            },
            View::Config(c) => print_config(c),
            View::Cluster(c) => cluster::print_cluster(c),
            View::Blocks(b) => print_blocks(b),
            View::ServerAction(a) => {
                print_server_row(&a.server);
                if let Some(ms) = a.waited_ms {
                    println!("drained after {ms} ms");
                }
                if let Some(w) = a.persisted.warning {
                    eprintln!("gatehouse ctl: warning: {w}");
                }
            }
        }
    }
}

fn print_blocks(b: BlocksView) {
    if b.blocks.is_empty() {
        println!(
            "no address blocks ({} request(s) refused since start)",
            b.refused
        );
    }
    let now = crate::clock::unix_now();
    for x in &b.blocks {
        let left =
            humantime::format_duration(std::time::Duration::from_secs(x.until.saturating_sub(now)));
        println!(
            "{:<24} {:<12} by {:<16} {}",
            x.cidr,
            left.to_string(),
            x.by,
            x.reason
        );
    }
    if let Some(w) = b.persisted.warning {
        eprintln!("gatehouse ctl: warning: {w}");
    }
}

fn typed<T: DeserializeOwned>(body: Value) -> Result<T, String> {
    serde_json::from_value(body).map_err(|e| e.to_string())
}

fn print_readonly(r: ReadonlyView) {
    println!(
        "read-only: {}{}{}",
        if r.active { "ON" } else { "off" },
        r.reason.map(|r| format!(" ({r})")).unwrap_or_default(),
        r.until
            .map(|u| format!(", until unix time {u}"))
            .unwrap_or_default(),
    );
}

fn print_config(c: ConfigView) {
    println!("file:       {}", c.file.as_deref().unwrap_or("-"));
    println!("checksum:   {}", c.checksum);
    println!("loaded at:  unix time {}", c.loaded_at);
    println!("generation: {}", c.generation);
    for w in &c.warnings {
        println!("warning:    {w}");
    }
}

fn print_header() {
    println!(
        "{:<12} {:<16} {:<22} {:<6} {:<9} {:>9} {:>10}",
        "POOL", "SERVER", "ADDRESS", "STATE", "HEALTH", "IN-FLIGHT", "REQUESTS"
    );
}

fn print_server_row(s: &ServerView) {
    println!(
        "{:<12} {:<16} {:<22} {:<6} {:<9} {:>9} {:>10}",
        s.pool, s.name, s.address, s.state, s.health, s.in_flight, s.requests,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The revision a clustered write answers with is read from the typed view.
    #[test]
    fn a_clustered_write_names_its_revision() {
        let body = serde_json::json!({
            "removed": null,
            "cluster": {"revision": 42, "applied_here": true},
        });
        let view = View::read(&Endpoint::Ban, body).unwrap();
        assert_eq!(view.written().map(|w| w.revision), Some(42));
        let local = serde_json::json!({"removed": 3});
        let view = View::read(&Endpoint::Purge, local).unwrap();
        assert!(view.written().is_none());
        assert!(View::read(&Endpoint::Purge, serde_json::json!({"removed": "3"})).is_err());
    }
}
