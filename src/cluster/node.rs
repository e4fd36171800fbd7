//! This node's record under `nodes/`: its applied revision and health, on a lease it keeps
//! alive (every third of `node_ttl`). The record is rewritten when the applied revision or the
//! health changes, so `gatehouse ctl --wait` sees a write reach each node; a node that stops
//! revokes its lease and disappears at once, one that dies disappears after `node_ttl`.

use super::sync::{MAX_BACKOFF, MIN_BACKOFF};
use super::{within, Cluster, LocalNode, NodeRecord};
use crate::clock::unix_now;
use etcd_client::PutOptions;
use pingora::server::ShutdownWatch;
use std::sync::Arc;
use std::time::Duration;

pub(super) async fn run(
    cluster: Arc<Cluster>,
    node: Arc<dyn LocalNode>,
    mut shutdown: ShutdownWatch,
) {
    let mut backoff = MIN_BACKOFF;
    let mut lease = None;
    loop {
        let ended = tokio::select! {
            r = hold(&cluster, node.as_ref(), &mut lease, &mut backoff) => {
                let Err(e) = r;
                e
            }
            _ = shutdown.changed() => break,
        };
        tracing::debug!("cluster: node record: {ended}");
        lease = None;
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.changed() => break,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
    // Leave the cluster's view at once rather than after the lease runs out.
    if let (Some(id), Some(mut client)) = (lease, cluster.client()) {
        let _ = tokio::time::timeout(Duration::from_millis(500), client.lease_revoke(id)).await;
    }
}

/// Holds the record up until something fails; returns what did.
async fn hold(
    cluster: &Cluster,
    node: &dyn LocalNode,
    lease: &mut Option<i64>,
    backoff: &mut Duration,
) -> Result<std::convert::Infallible, String> {
    let mut client = cluster.connect().await?;
    let t = cluster.config.request_timeout;
    let ttl = cluster.config.node_ttl;
    let grant = client.lease_grant(ttl.as_secs() as i64, None);
    let id = within(t, "lease", grant).await?.id();
    *lease = Some(id);
    let (mut keeper, mut answers) =
        within(t, "lease keep-alive", client.lease_keep_alive(id)).await?;
    let mut applied = cluster.status.applied.subscribe();
    let mut tick = tokio::time::interval(ttl / 3);
    let mut written: Option<(i64, bool)> = None;
    let key = cluster.keys.node(&cluster.config.node);
    loop {
        let now = (*applied.borrow_and_update(), node.healthy());
        if written != Some(now) {
            let record = NodeRecord {
                node: cluster.config.node.clone(),
                applied_revision: now.0,
                healthy: now.1,
                admin: node.admin_address(),
                version: env!("CARGO_PKG_VERSION").into(),
                started_at: cluster.status.started_at,
                updated_at: unix_now(),
            };
            let value = serde_json::to_vec(&record).unwrap_or_default();
            let put = client.put(key.clone(), value, Some(PutOptions::new().with_lease(id)));
            within(t, "writing the node record", put).await?;
            written = Some(now);
            *backoff = MIN_BACKOFF;
        }
        tokio::select! {
            _ = applied.changed() => {}
            _ = tick.tick() => {
                keeper.keep_alive().await.map_err(|e| format!("lease keep-alive: {e}"))?;
                match within(t, "lease keep-alive", answers.message()).await? {
                    Some(a) if a.ttl() > 0 => {}
                    _ => return Err("the node's lease expired".into()),
                }
            }
        }
    }
}
