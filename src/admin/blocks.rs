//! `GET/POST /api/blocks` and `DELETE /api/blocks/{cidr}`: address blocks set at runtime
//! (`crate::blocks`). Clustered, a block goes to etcd on a lease and every node applies it;
//! alone (or `?local=1`), it is this node's, kept in the state file. Ending a block is writing
//! it again with its end now, so a cluster's nodes end it the same way they set it.

use super::api::{BlockRequest, BlocksView, Persisted};
use super::cluster::{written, Caller};
use super::Reply;
use crate::blocks::{canonical, Block};
use crate::clock::unix_now;
use crate::runtime::Shared;
use http::StatusCode;
use std::sync::atomic::Ordering::Relaxed;

/// The longest block: etcd leases are bounded, and a block meant to last is a config entry
/// (`[[access_rules]]` with `deny_cidrs`).
const LONGEST: std::time::Duration = std::time::Duration::from_secs(366 * 86_400);

fn view(
    shared: &Shared,
    persisted: Persisted,
    cluster: Option<super::api::ClusterWriteView>,
) -> BlocksView {
    BlocksView {
        blocks: shared.blocks.load().active(unix_now()),
        refused: shared.blocked.load(Relaxed),
        persisted,
        cluster,
    }
}

pub fn list(shared: &Shared) -> Reply {
    Reply::ok(&view(shared, Persisted::default(), None))
}

/// `{"cidr": "203.0.113.0/24", "for": "1h", "reason": "..."}`
pub async fn block(shared: &Shared, body: &[u8], caller: &Caller) -> Reply {
    let usage = "expected {\"cidr\": \"203.0.113.0/24\", \"for\": \"1h\", \"reason\": \"...\"}";
    let req: BlockRequest = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => return Reply::error(StatusCode::BAD_REQUEST, format!("{usage}: {e}")),
    };
    let cidr = match canonical(&req.cidr) {
        Ok(c) => c,
        Err(e) => return Reply::error(StatusCode::BAD_REQUEST, e),
    };
    let lasts = match humantime::parse_duration(req.duration.trim()) {
        Ok(d) if !d.is_zero() && d <= LONGEST => d,
        _ => {
            let msg = "for must be a duration such as \"1h\", at most a year";
            return Reply::error(StatusCode::BAD_REQUEST, msg);
        }
    };
    let now = unix_now();
    let block = Block {
        cidr,
        until: now.saturating_add(lasts.as_secs().max(1)),
        reason: req.reason.chars().take(256).collect(),
        by: caller.by.clone(),
        at: now,
    };
    tracing::warn!(block = %block.cidr, until = block.until, by = %block.by, reason = %block.reason, "address block set");
    apply(shared, block, caller).await
}

/// Ends the block of network `cidr` (404 when there is none).
pub async fn unblock(shared: &Shared, cidr: &str, caller: &Caller) -> Reply {
    let cidr = match canonical(cidr) {
        Ok(c) => c,
        Err(e) => return Reply::error(StatusCode::BAD_REQUEST, e),
    };
    let now = unix_now();
    let Some(mut block) = shared
        .blocks
        .load()
        .active(now)
        .into_iter()
        .find(|b| b.cidr == cidr)
    else {
        return Reply::error(StatusCode::NOT_FOUND, format!("no block of {cidr}"));
    };
    tracing::warn!(block = %block.cidr, by = %caller.by, "address block ended");
    (block.until, block.by, block.at) = (now, caller.by.clone(), now);
    apply(shared, block, caller).await
}

/// Sets (or, with `until` now, ends) `block` through the cluster, or here and in the state
/// file.
async fn apply(shared: &Shared, block: Block, caller: &Caller) -> Reply {
    match caller.cluster(shared) {
        Some(c) => match written(c, c.put_block(block).await).await {
            Ok(w) => Reply::ok(&view(shared, Persisted::default(), Some(w))),
            Err(reply) => reply,
        },
        None => {
            shared.change_blocks(|old| Some(old.with(block.clone(), unix_now())));
            let persisted = Persisted::from(shared.persist_state());
            Reply::ok(&view(shared, persisted, None))
        }
    }
}
