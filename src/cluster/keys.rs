//! The cluster's keys in etcd and what their values hold (JSON), under `{prefix}/{name}/`:
//!
//! ```text
//! state/servers/{pool}/{server}   {"state": "drain", "by": "...", "at": 1732700000}
//! state/readonly                  {"enabled": true, "reason": "...", "since": .., "until": .., "by": ".."}
//! state/invalidations/{id}        {"action": "ban_prefix", "host": null, "prefix": "/img/", ...}  (leased)
//! state/blocks/{network}          {"cidr": "203.0.113.0/24", "until": .., "reason": "..", "by": ".."}  (leased)
//! nodes/{node}                    {"node": "lb1", "applied_revision": 42, ...}              (leased)
//! ```
//! Nodes watch `state/` only: their own records under `nodes/` never feed back into what they
//! apply.

use crate::balance::AdminState;
use crate::cache::Invalidation;
use crate::readonly::ReadonlyState;
use serde::{Deserialize, Serialize};

/// A server's admin state as the cluster decided it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerRecord {
    pub state: AdminState,
    /// Who asked (the `X-Gatehouse-By` header of the API call, or the node's id).
    pub by: String,
    /// Unix seconds.
    pub at: u64,
}

/// The read-only switch as the cluster decided it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadonlyRecord {
    #[serde(flatten)]
    pub state: ReadonlyState,
    pub by: String,
}

/// A purge or ban every node applies once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvalidationRecord {
    #[serde(flatten)]
    pub what: Invalidation,
    pub by: String,
    pub at: u64,
}

/// What a node tells the others about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    pub node: String,
    /// The etcd revision of the cluster state this node has applied.
    pub applied_revision: i64,
    /// Whether it serves (not stopping).
    pub healthy: bool,
    /// Its admin API address.
    pub admin: String,
    pub version: String,
    /// Unix seconds.
    pub started_at: u64,
    pub updated_at: u64,
}

/// One change of the shared state, as read from a key.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// None: the key was deleted (the server is ready).
    Server {
        pool: String,
        server: String,
        record: Option<ServerRecord>,
    },
    /// None: deleted (the config's default applies).
    Readonly(Option<ReadonlyRecord>),
    Invalidation(InvalidationRecord),
    /// A deleted invalidation (its lease ran out): nothing to do.
    Expired,
    /// An address block set (or ended: `until` passed).
    Block(crate::blocks::Block),
    /// A block's key deleted (its lease ran out): the network it blocked.
    BlockGone(String),
}

/// Key names of one cluster.
#[derive(Debug, Clone)]
pub struct Keys {
    root: String,
}

impl Keys {
    pub fn new(prefix: &str, cluster: &str) -> Keys {
        Keys {
            root: format!("{prefix}/{cluster}/"),
        }
    }

    pub fn state(&self) -> String {
        format!("{}state/", self.root)
    }

    pub fn server(&self, pool: &str, server: &str) -> String {
        format!("{}state/servers/{pool}/{server}", self.root)
    }

    pub fn readonly(&self) -> String {
        format!("{}state/readonly", self.root)
    }

    pub fn invalidation(&self, id: &str) -> String {
        format!("{}state/invalidations/{id}", self.root)
    }

    pub fn block(&self, cidr: &str) -> String {
        format!("{}state/blocks/{}", self.root, crate::blocks::id(cidr))
    }

    pub fn nodes(&self) -> String {
        format!("{}nodes/", self.root)
    }

    pub fn node(&self, node: &str) -> String {
        format!("{}nodes/{node}", self.root)
    }

    /// Reads a key under `state/` and its value (None: deleted).
    pub fn parse(&self, key: &[u8], value: Option<&[u8]>) -> Result<Change, String> {
        let key = std::str::from_utf8(key).map_err(|_| "a key that is not UTF-8".to_string())?;
        let rest = key
            .strip_prefix(self.root.as_str())
            .and_then(|k| k.strip_prefix("state/"))
            .ok_or_else(|| format!("{key}: not a cluster state key"))?;
        let json = |what: &str| -> Result<serde_json::Value, String> {
            let v = value.unwrap_or_default();
            serde_json::from_slice(v).map_err(|e| format!("{key}: not a {what} record: {e}"))
        };
        match rest.split('/').collect::<Vec<_>>().as_slice() {
            ["servers", pool, server] => Ok(Change::Server {
                pool: pool.to_string(),
                server: server.to_string(),
                record: match value {
                    None => None,
                    Some(_) => Some(from_value(json("server")?, key)?),
                },
            }),
            ["readonly"] => Ok(Change::Readonly(match value {
                None => None,
                Some(_) => Some(from_value(json("read-only")?, key)?),
            })),
            ["invalidations", _] => match value {
                None => Ok(Change::Expired),
                Some(_) => from_value(json("invalidation")?, key).map(Change::Invalidation),
            },
            ["blocks", id] => match value {
                None => Ok(Change::BlockGone(id.replace('_', "/"))),
                Some(_) => from_value(json("block")?, key).map(Change::Block),
            },
            _ => Err(format!("{key}: unknown cluster state key")),
        }
    }
}

fn from_value<T: serde::de::DeserializeOwned>(
    v: serde_json::Value,
    key: &str,
) -> Result<T, String> {
    serde_json::from_value(v).map_err(|e| format!("{key}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_read_back_as_changes() {
        let k = Keys::new("/gatehouse", "front");
        assert_eq!(k.server("web", "a"), "/gatehouse/front/state/servers/web/a");
        let rec = ServerRecord {
            state: AdminState::Drain,
            by: "deploy".into(),
            at: 1,
        };
        let v = serde_json::to_vec(&rec).unwrap();
        assert_eq!(
            k.parse(k.server("web", "a").as_bytes(), Some(&v)).unwrap(),
            Change::Server {
                pool: "web".into(),
                server: "a".into(),
                record: Some(rec)
            }
        );
        assert_eq!(
            k.parse(k.readonly().as_bytes(), None).unwrap(),
            Change::Readonly(None)
        );
        assert_eq!(
            k.parse(k.invalidation("7").as_bytes(), None).unwrap(),
            Change::Expired
        );
        let err = k
            .parse(k.readonly().as_bytes(), Some(b"{nope"))
            .unwrap_err();
        assert!(err.contains("not a read-only record"), "{err}");
        assert!(k.parse(b"/gatehouse/other/state/readonly", None).is_err());
    }
}
