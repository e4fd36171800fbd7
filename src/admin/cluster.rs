//! The admin API's side of a cluster: `GET /api/cluster`, `GET /health` (for keepalived), and
//! the write-through each state-changing handler goes through when the node is clustered.
//!
//! A clustered write goes to etcd and is answered once this node's watcher has applied it; if
//! etcd does not confirm it, the answer is 503 "outcome unknown" (a timed-out write may still
//! commit), never a silent change of this node alone. `?local=1` changes this node only.

use super::api::{ClusterView, ClusterWriteView, HealthView};
use super::Reply;
use crate::cluster::{Cluster, WriteError};
use crate::runtime::{Runtime, Shared};
use http::StatusCode;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

/// Who made an API call, and whether it asked for this node alone.
pub struct Caller {
    /// `X-Gatehouse-By`, recorded with cluster changes ("admin-api" when absent).
    pub by: String,
    pub local: bool,
}

impl Caller {
    pub fn new(by: Option<&str>, query: &str) -> Caller {
        let by = by
            .map(|b| b.trim().chars().take(128).collect::<String>())
            .filter(|b| !b.is_empty())
            .unwrap_or_else(|| "admin-api".into());
        let local = query
            .split('&')
            .any(|kv| matches!(kv, "local" | "local=1" | "local=true"));
        Caller { by, local }
    }

    /// The cluster a change goes through: None when not clustered or asked for `local`.
    pub fn cluster<'a>(&self, shared: &'a Shared) -> Option<&'a Arc<Cluster>> {
        shared.cluster.as_ref().filter(|_| !self.local)
    }
}

/// The answer to a write sent to etcd: its revision once applied here, or the 503.
pub async fn written(
    cluster: &Cluster,
    write: Result<i64, WriteError>,
) -> Result<ClusterWriteView, Reply> {
    match write {
        Ok(revision) => Ok(ClusterWriteView {
            revision,
            applied_here: cluster
                .wait_applied(revision, cluster.config.request_timeout)
                .await,
        }),
        Err(WriteError(e)) => Err(Reply::error_with(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "outcome unknown: {e}. etcd did not confirm the change; it may still apply once etcd has a quorum again. \
                 Check with `gatehouse ctl cluster`, repeat it (it is idempotent), or change this node alone with --local"
            ),
            &serde_json::json!({"outcome": "unknown"}),
        )),
    }
}

/// `GET /api/cluster`.
pub async fn view(shared: &Shared) -> Reply {
    let Some(cluster) = &shared.cluster else {
        return Reply::error(
            StatusCode::NOT_FOUND,
            "this node is not in a cluster (no [cluster] section)",
        );
    };
    let st = &cluster.status;
    let (nodes, nodes_error) = match cluster.nodes().await {
        Ok(n) => (n, None),
        Err(e) => (Vec::new(), Some(e)),
    };
    Reply::ok(&ClusterView {
        cluster: cluster.config.name.clone(),
        node: cluster.config.node.clone(),
        endpoints: cluster.config.etcd_endpoints.clone(),
        connected: st.connected.load(Relaxed),
        applied_revision: st.applied_revision(),
        sync_age_ms: st.sync_age_ms(),
        last_error: st.last_error(),
        reconnects: st.reconnects.load(Relaxed),
        full_reads: st.full_reads.load(Relaxed),
        nodes,
        nodes_error,
    })
}

/// `GET /health`: 200 while this node serves, 503 once it is stopping. It never asks etcd (an
/// etcd outage must not move the service address), and servers being down does not fail it:
/// the spare has the same servers, and failing both nodes would leave the address nowhere.
pub fn health(shared: &Shared, rt: &Runtime) -> Reply {
    let pools = rt.pools.len();
    let pools_usable = rt
        .pools
        .iter()
        .filter(|p| p.servers.iter().any(|s| s.state.is_usable()))
        .count();
    let (healthy, status) = if shared.closing.load(Relaxed) {
        (false, "stopping")
    } else {
        (true, "ok")
    };
    let mut reply = Reply::ok(&HealthView {
        healthy,
        status: status.into(),
        pools_usable,
        pools,
    });
    if !healthy {
        reply.status = StatusCode::SERVICE_UNAVAILABLE;
    }
    reply
}
