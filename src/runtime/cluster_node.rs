//! The node as the cluster sees it (`cluster::LocalNode`): what the cluster's watcher applies
//! lands in the same server states, read-only switch and cache the admin API changes.

use super::Shared;
use crate::balance::AdminState;
use crate::cache::Invalidation;
use crate::clock::unix_now;
use crate::cluster::{LocalNode, ServerStates};
use crate::readonly::ReadonlyState;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

pub struct ClusterNode(pub Arc<Shared>);

impl ClusterNode {
    /// Gives every server of the running config the state the cluster holds for it (after a
    /// reload: a server the cluster drained before this node's config had it).
    pub fn apply_known(shared: &Shared) {
        if let Some(known) = shared.cluster.as_ref().and_then(|c| c.known_servers()) {
            set_states(shared, &known);
        }
    }
}

/// Sets every server of the running config to its state in `known` (no entry: ready); true if
/// any changed.
fn set_states(shared: &Shared, known: &ServerStates) -> bool {
    let mut changed = false;
    for pool in &shared.current().pools {
        for s in &pool.servers {
            let key = (pool.config.name.clone(), s.config.name.clone());
            let state = known.get(&key).copied().unwrap_or(AdminState::Ready);
            changed |= s.state.set_admin_state(state) != state;
        }
    }
    changed
}

impl LocalNode for ClusterNode {
    fn set_blocks(&self, blocks: Vec<crate::blocks::Block>) -> bool {
        let new = |_: &crate::blocks::Blocks| {
            Some(crate::blocks::Blocks::new(
                blocks.iter().cloned(),
                unix_now(),
            ))
        };
        self.0.change_blocks(new)
    }

    fn set_block(&self, block: crate::blocks::Block) -> bool {
        self.0
            .change_blocks(|old| Some(old.with(block.clone(), unix_now())))
    }

    fn remove_block(&self, cidr: &str) -> bool {
        self.0.change_blocks(|old| old.without(cidr, unix_now()))
    }

    fn set_servers(&self, known: &ServerStates) -> bool {
        set_states(&self.0, known)
    }

    fn set_server(&self, pool: &str, server: &str, state: AdminState) -> bool {
        let rt = self.0.current();
        let found = rt
            .pools
            .iter()
            .filter(|p| p.config.name == pool)
            .flat_map(|p| &p.servers)
            .find(|s| s.config.name == server);
        match found {
            Some(s) => s.state.set_admin_state(state) != state,
            None => false,
        }
    }

    fn set_readonly(&self, state: Option<ReadonlyState>) -> bool {
        let current = self.0.readonly.load();
        let wanted = match state {
            Some(s) => s,
            None => {
                let enabled = self.0.current().config.readonly.enabled;
                if current.enabled == enabled && current.reason.is_none() && current.until.is_none()
                {
                    return false;
                }
                ReadonlyState {
                    enabled,
                    since: unix_now(),
                    ..Default::default()
                }
            }
        };
        if **current == wanted {
            return false;
        }
        tracing::warn!(enabled = wanted.enabled, reason = ?wanted.reason, until = ?wanted.until, "read-only mode switched by the cluster");
        self.0.readonly.store(Arc::new(wanted));
        true
    }

    fn invalidate(&self, what: &Invalidation, at: u64) -> usize {
        // Whole seconds: the next one, so a copy made in the same second counts as before.
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(at + 1);
        match self.0.current().cache.apply_at(what, at) {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!("cluster invalidation not applied: {e}");
                0
            }
        }
    }

    fn persist(&self) {
        if let Err(e) = self.0.persist_state() {
            tracing::error!("{e}");
        }
    }

    fn healthy(&self) -> bool {
        !self.0.closing.load(Relaxed)
    }

    fn admin_address(&self) -> String {
        self.0.current().config.admin.address.to_string()
    }
}
