//! Writes of the admin API when clustered: the change goes to etcd, and the caller then waits
//! for this node's watcher to apply it (`Cluster::wait_applied`), so a change takes effect the
//! same way on every node, the writer included. A write that fails or times out has an unknown
//! outcome: etcd may still commit it once it has a quorum again, so it is never reported as
//! "not done", and never applied here alone.

use super::{within, Cluster, InvalidationRecord, NodeRecord, ReadonlyRecord, ServerRecord};
use crate::balance::AdminState;
use crate::cache::Invalidation;
use crate::clock::unix_now;
use crate::readonly::ReadonlyState;
use etcd_client::{GetOptions, PutOptions};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// A write that etcd did not confirm.
#[derive(Debug, Clone)]
pub struct WriteError(pub String);

/// The longest one attempt of a write may take.
const ATTEMPT: Duration = Duration::from_secs(1);

/// Makes invalidation keys unique within a node.
static SEQUENCE: AtomicU64 = AtomicU64::new(0);

impl Cluster {
    /// Puts `value` at `key` (on a lease of `ttl` when given); answers the write's revision.
    /// A failed attempt is tried again until `request_timeout`, and an attempt gets at most
    /// `ATTEMPT` (a proposal a member forwarded to a leader that died waits for etcd's own 5 s
    /// timeout; the next attempt reaches the new leader). Every key written here may be
    /// written twice without harm.
    async fn put(
        &self,
        key: String,
        value: Vec<u8>,
        ttl: Option<Duration>,
    ) -> Result<i64, WriteError> {
        let client = self.connect().await.map_err(WriteError)?;
        let t = self.config.request_timeout;
        let last = std::sync::Mutex::new(String::new());
        let attempts = async {
            loop {
                let attempt = put_once(client.clone(), &key, &value, ttl);
                match within(ATTEMPT, "etcd", attempt).await {
                    Ok(revision) => return revision,
                    Err(e) => {
                        tracing::debug!("cluster write of {key}: {e}; trying again");
                        *last.lock().unwrap_or_else(|e| e.into_inner()) = e;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        };
        let result = match tokio::time::timeout(t, attempts).await {
            Ok(revision) => Ok(revision),
            Err(_) => {
                let last = last.into_inner().unwrap_or_else(|e| e.into_inner());
                let last = if last.is_empty() {
                    "no answer".into()
                } else {
                    last
                };
                Err(WriteError(format!(
                    "etcd did not confirm within {t:?} (last: {last})"
                )))
            }
        };
        match &result {
            Ok(_) => self.status.writes_ok.fetch_add(1, Relaxed),
            Err(_) => self.status.writes_failed.fetch_add(1, Relaxed),
        };
        result
    }

    pub async fn put_server(
        &self,
        pool: &str,
        server: &str,
        state: AdminState,
        by: &str,
    ) -> Result<i64, WriteError> {
        let record = ServerRecord {
            state,
            by: by.into(),
            at: unix_now(),
        };
        let value = serde_json::to_vec(&record).unwrap_or_default();
        self.put(self.keys.server(pool, server), value, None).await
    }

    pub async fn put_readonly(&self, state: ReadonlyState, by: &str) -> Result<i64, WriteError> {
        let record = ReadonlyRecord {
            state,
            by: by.into(),
        };
        let value = serde_json::to_vec(&record).unwrap_or_default();
        self.put(self.keys.readonly(), value, None).await
    }

    /// Shares a purge or ban; it lives in etcd for `lifetime` (the longest an object it could
    /// match may still be served), then its lease removes it.
    pub async fn put_invalidation(
        &self,
        what: Invalidation,
        lifetime: Duration,
        by: &str,
    ) -> Result<i64, WriteError> {
        let id = format!(
            "{}-{}-{}",
            self.config.node,
            crate::clock::unix_now_ms(),
            SEQUENCE.fetch_add(1, Relaxed)
        );
        let record = InvalidationRecord {
            what,
            by: by.into(),
            at: unix_now(),
        };
        let value = serde_json::to_vec(&record).unwrap_or_default();
        let ttl = lifetime.max(Duration::from_secs(60));
        self.put(self.keys.invalidation(&id), value, Some(ttl))
            .await
    }

    /// Shares an address block; its lease ends a minute after the block does (every node
    /// ends it at `until` itself). Ending a block early is a put with `until` now.
    pub async fn put_block(&self, block: crate::blocks::Block) -> Result<i64, WriteError> {
        let left = block.until.saturating_sub(unix_now());
        let ttl = Duration::from_secs(left + 60);
        let value = serde_json::to_vec(&block).unwrap_or_default();
        self.put(self.keys.block(&block.cidr), value, Some(ttl))
            .await
    }

    /// The nodes' records, read from the member that answers (a serializable read, so a lone
    /// member still answers while etcd has no quorum). One attempt of at most `ATTEMPT`: the
    /// status page and `ctl --wait` ask often and would rather hear "unknown" at once.
    pub async fn nodes(&self) -> Result<Vec<NodeRecord>, String> {
        let mut client = self.connect().await?;
        let t = ATTEMPT.min(self.config.request_timeout);
        let options = GetOptions::new().with_prefix().with_serializable();
        let resp = within(t, "etcd", client.get(self.keys.nodes(), Some(options))).await?;
        let mut nodes: Vec<NodeRecord> = resp
            .kvs()
            .iter()
            .filter_map(|kv| serde_json::from_slice(kv.value()).ok())
            .collect();
        nodes.sort_by(|a, b| a.node.cmp(&b.node));
        Ok(nodes)
    }
}

async fn put_once(
    mut client: etcd_client::Client,
    key: &str,
    value: &[u8],
    ttl: Option<Duration>,
) -> Result<i64, String> {
    let options = match ttl {
        Some(ttl) => {
            let secs = ttl.as_secs().max(1) as i64;
            let lease = client
                .lease_grant(secs, None)
                .await
                .map_err(|e| e.to_string())?;
            Some(PutOptions::new().with_lease(lease.id()))
        }
        None => None,
    };
    let resp = client
        .put(key, value, options)
        .await
        .map_err(|e| e.to_string())?;
    Ok(resp.header().map_or(0, |h| h.revision()))
}
