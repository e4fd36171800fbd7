//! The watcher: brings this node to the cluster's state and keeps it there.
//!
//! A session reads the whole `state/` prefix once (when it has no revision to resume from) and
//! applies it in one pass, then watches from the next revision. etcd's watch streams do not
//! reconnect by themselves: on any error the session ends, and the next one (after a backoff,
//! on whichever endpoint answers) resumes from the last revision seen, so no event is missed;
//! if that revision was compacted, it reads everything again. Every second it asks etcd to
//! confirm it is up to date (a progress request); three unanswered in a row end the session.
//! Nothing known is dropped while etcd is away: the node keeps its last state.

use super::{within, Change, Cluster, LocalNode};
use crate::balance::AdminState;
use etcd_client::{EventType, GetOptions, WatchOptions};
use pingora::server::ShutdownWatch;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

pub(super) const MIN_BACKOFF: Duration = Duration::from_millis(100);
pub(super) const MAX_BACKOFF: Duration = Duration::from_secs(2);
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

pub(super) async fn run(
    cluster: Arc<Cluster>,
    node: Arc<dyn LocalNode>,
    mut shutdown: ShutdownWatch,
) {
    let mut backoff = MIN_BACKOFF;
    let mut resume: Option<i64> = None;
    loop {
        let outcome = tokio::select! {
            r = watch(&cluster, node.as_ref(), &mut resume, &mut backoff) => {
                let Err(e) = r;
                e
            }
            _ = shutdown.changed() => return,
        };
        cluster.status.connected.store(false, Relaxed);
        cluster.status.set_error(Some(outcome));
        cluster.status.reconnects.fetch_add(1, Relaxed);
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.changed() => return,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One connection's worth of watching, until something fails; returns what did.
async fn watch(
    cluster: &Cluster,
    node: &dyn LocalNode,
    resume: &mut Option<i64>,
    backoff: &mut Duration,
) -> Result<std::convert::Infallible, String> {
    let mut client = cluster.connect().await?;
    let from = match *resume {
        Some(r) => r + 1,
        None => {
            let rev = full_read(cluster, node, &mut client).await?;
            *resume = Some(rev);
            *backoff = MIN_BACKOFF;
            rev + 1
        }
    };
    let options = WatchOptions::new()
        .with_prefix()
        .with_start_revision(from)
        .with_progress_notify();
    let create = client.watch(cluster.keys.state(), Some(options));
    let stream = within(cluster.config.request_timeout, "watch", create).await?;
    let (mut requests, mut responses) = stream.split();
    let mut tick = tokio::time::interval(PROGRESS_EVERY);
    let mut unanswered = 0u32;
    let watch_error = |e: etcd_client::Error| format!("watch: {e}");
    loop {
        tokio::select! {
            msg = responses.message() => {
                let msg = msg.map_err(watch_error)?.ok_or("watch: etcd closed the stream")?;
                unanswered = 0;
                on_message(cluster, node, &msg, from, resume, backoff)?;
                if msg.created() {
                    requests.request_progress().await.map_err(watch_error)?;
                }
            }
            _ = tick.tick() => {
                if unanswered >= 3 {
                    return Err("watch: etcd stopped answering progress requests".into());
                }
                unanswered += 1;
                requests.request_progress().await.map_err(watch_error)?;
            }
        }
    }
}

/// Handles one watch response; an error ends the session.
fn on_message(
    cluster: &Cluster,
    node: &dyn LocalNode,
    msg: &etcd_client::WatchResponse,
    from: i64,
    resume: &mut Option<i64>,
    backoff: &mut Duration,
) -> Result<(), String> {
    if msg.canceled() {
        if msg.compact_revision() > 0 {
            *resume = None;
            return Err(format!(
                "revision {from} was compacted (oldest kept {}): reading everything again",
                msg.compact_revision()
            ));
        }
        return Err(format!("watch cancelled by etcd: {}", msg.cancel_reason()));
    }
    if msg.created() {
        cluster.status.connected.store(true, Relaxed);
        cluster.status.set_error(None);
        *backoff = MIN_BACKOFF;
    } else if msg.events().is_empty() {
        // A progress notification: every event up to its revision was delivered.
        if let Some(h) = msg.header() {
            *resume = Some(resume.unwrap_or(0).max(h.revision()));
        }
        cluster.status.mark_synced();
    } else {
        apply_events(cluster, node, msg.events(), resume);
    }
    Ok(())
}

/// Reads the whole state and applies it in one pass; answers its revision.
async fn full_read(
    cluster: &Cluster,
    node: &dyn LocalNode,
    client: &mut etcd_client::Client,
) -> Result<i64, String> {
    let get = client.get(cluster.keys.state(), Some(GetOptions::new().with_prefix()));
    let resp = within(
        cluster.config.request_timeout,
        "reading the cluster state",
        get,
    )
    .await?;
    let revision = resp.header().map_or(0, |h| h.revision());
    // Invalidations made while this node was away. At the first read every one stored (they
    // are kept while an object they name could live): the cache may be restoring copies
    // made before them (a snapshot), which they must keep out (`cache::Cache::restore`).
    let seen = cluster.status.applied_revision();
    let mut servers = super::ServerStates::new();
    let mut readonly = None;
    let mut blocks = Vec::new();
    for kv in resp.kvs() {
        match cluster.keys.parse(kv.key(), Some(kv.value())) {
            Ok(Change::Server {
                pool,
                server,
                record,
            }) => {
                servers.insert(
                    (pool, server),
                    record.map_or(AdminState::Ready, |r| r.state),
                );
            }
            Ok(Change::Readonly(r)) => readonly = r.map(|r| r.state),
            Ok(Change::Block(b)) => blocks.push(b),
            Ok(Change::Invalidation(i)) if seen == 0 || kv.mod_revision() > seen => {
                let removed = node.invalidate(&i.what, i.at);
                cluster.status.record_removed(kv.mod_revision(), removed);
            }
            Ok(_) => {}
            Err(e) => cluster.status.set_error(Some(format!("skipped: {e}"))),
        }
    }
    cluster.remember(|known| known.clone_from(&servers));
    let mut changed = node.set_servers(&servers);
    changed |= node.set_readonly(readonly);
    changed |= node.set_blocks(blocks);
    if changed {
        node.persist();
    }
    cluster.status.full_reads.fetch_add(1, Relaxed);
    cluster.status.mark_synced();
    cluster.publish_applied(revision);
    tracing::info!(revision, changed, "cluster: read the whole state");
    Ok(revision)
}

fn apply_events(
    cluster: &Cluster,
    node: &dyn LocalNode,
    events: &[etcd_client::Event],
    resume: &mut Option<i64>,
) {
    let mut changed = false;
    let mut last = 0;
    for ev in events {
        let Some(kv) = ev.kv() else { continue };
        let revision = kv.mod_revision();
        let value = (ev.event_type() == EventType::Put).then(|| kv.value());
        match cluster.keys.parse(kv.key(), value) {
            Ok(change) => changed |= apply(cluster, node, change, revision),
            Err(e) => cluster.status.set_error(Some(format!("skipped: {e}"))),
        }
        last = last.max(revision);
    }
    if changed {
        node.persist();
    }
    *resume = Some(resume.unwrap_or(0).max(last));
    cluster.publish_applied(last);
}

/// Applies one change; true if the state file needs writing.
fn apply(cluster: &Cluster, node: &dyn LocalNode, change: Change, revision: i64) -> bool {
    match change {
        Change::Server {
            pool,
            server,
            record,
        } => {
            let state = record.as_ref().map_or(AdminState::Ready, |r| r.state);
            cluster.remember(|known| {
                known.insert((pool.clone(), server.clone()), state);
            });
            let changed = node.set_server(&pool, &server, state);
            if changed {
                tracing::info!(
                    pool,
                    server,
                    to = state.as_str(),
                    by = record.map(|r| r.by),
                    revision,
                    "cluster: admin state changed"
                );
            }
            changed
        }
        Change::Readonly(r) => node.set_readonly(r.map(|r| r.state)),
        Change::Invalidation(i) => {
            let removed = node.invalidate(&i.what, i.at);
            tracing::info!(what = ?i.what, by = i.by, removed, revision, "cluster: invalidation");
            cluster.status.record_removed(revision, removed);
            false
        }
        Change::Expired => false,
        Change::Block(b) => {
            tracing::info!(block = %b.cidr, until = b.until, by = %b.by, reason = %b.reason, revision, "cluster: address block");
            node.set_block(b)
        }
        Change::BlockGone(cidr) => node.remove_block(&cidr),
    }
}
