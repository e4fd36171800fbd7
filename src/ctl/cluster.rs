//! `gatehouse ctl` in a cluster: after a change written through etcd, `--wait` polls the node's
//! `/api/cluster` until every live node reports the change's revision, and names the nodes that
//! lag when time runs out. A drain or maint with `--wait` then waits, node by node through each
//! one's admin API, for the server's in-flight requests to end everywhere.

use super::client::{call, Target};
use crate::admin::api::{ClusterView, Endpoint, NodeView, Query, ServerView};
use crate::cli::CtlAction;
use serde::de::DeserializeOwned;
use std::process::ExitCode;
use std::time::{Duration, Instant};

const POLL: Duration = Duration::from_millis(25);

/// How long `--wait` allows, for the actions that change state.
pub fn wait_of(action: &CtlAction) -> Option<Duration> {
    match action {
        CtlAction::Drain { wait, .. }
        | CtlAction::Maint { wait, .. }
        | CtlAction::Ready { wait, .. }
        | CtlAction::Purge { wait, .. }
        | CtlAction::Ban { wait, .. }
        | CtlAction::Readonly { wait, .. }
        | CtlAction::Block { wait, .. }
        | CtlAction::Unblock { wait, .. } => *wait,
        _ => None,
    }
}

/// A GET's answer as its view; None unless the API answered 200 with that view.
fn get<T: DeserializeOwned>(target: &Target, endpoint: Endpoint) -> Option<T> {
    call(target, &endpoint, &Query::default(), None, Duration::ZERO)
        .ok()
        .filter(|a| a.status == 200)
        .and_then(|a| serde_json::from_value(a.body).ok())
}

/// Waits for every live node to apply `revision` (and, for a drain, to finish its requests).
pub fn wait_for_nodes(
    target: &Target,
    action: &CtlAction,
    revision: i64,
    wait: Duration,
) -> ExitCode {
    let started = Instant::now();
    let deadline = started + wait;
    let Some(nodes) = applied_everywhere(target, revision, deadline) else {
        return ExitCode::FAILURE;
    };
    let names: Vec<&str> = nodes.iter().map(|n| n.node.as_str()).collect();
    eprintln!(
        "applied on every node ({}) in {} ms",
        names.join(", "),
        started.elapsed().as_millis()
    );
    let (CtlAction::Drain { pool, server, .. } | CtlAction::Maint { pool, server, .. }) = action
    else {
        return ExitCode::SUCCESS;
    };
    for n in &nodes {
        if let Err(e) = idle_on(target, n, pool, server, deadline) {
            eprintln!("gatehouse ctl: node {}: {e}", n.node);
            return ExitCode::FAILURE;
        }
    }
    eprintln!(
        "{pool}/{server}: nothing in flight on any node after {} ms",
        started.elapsed().as_millis()
    );
    ExitCode::SUCCESS
}

/// Polls `/api/cluster` until every node reports `revision`; None (said why) at `deadline`.
fn applied_everywhere(target: &Target, revision: i64, deadline: Instant) -> Option<Vec<NodeView>> {
    let started = Instant::now();
    loop {
        let view: Option<ClusterView> = get(target, Endpoint::Cluster);
        let lagging: Vec<String> = view.as_ref().map_or(Vec::new(), |v| {
            v.nodes
                .iter()
                .filter(|n| n.applied_revision < revision)
                .map(|n| format!("{} (at revision {})", n.node, n.applied_revision))
                .collect()
        });
        match view {
            Some(v) if lagging.is_empty() && !v.nodes.is_empty() => return Some(v.nodes),
            _ if Instant::now() >= deadline => {
                let why = if lagging.is_empty() {
                    "the cluster's nodes could not be read".to_string()
                } else {
                    format!("not applied on: {}", lagging.join(", "))
                };
                eprintln!(
                    "gatehouse ctl: revision {revision} not on every node after {} ms: {why}",
                    started.elapsed().as_millis()
                );
                return None;
            }
            _ => std::thread::sleep(POLL),
        }
    }
}

/// Polls node `n`'s admin API until nothing is in flight to `pool/server`.
fn idle_on(
    target: &Target,
    n: &NodeView,
    pool: &str,
    server: &str,
    deadline: Instant,
) -> Result<(), String> {
    let address = n
        .admin
        .parse()
        .map_err(|_| format!("admin address {:?} unusable", n.admin))?;
    let there = Target {
        address,
        token: target.token.clone(),
    };
    loop {
        let in_flight =
            get::<ServerView>(&there, Endpoint::Server { pool, server }).map(|s| s.in_flight);
        match in_flight {
            Some(0) => return Ok(()),
            _ if Instant::now() >= deadline => {
                let left = in_flight.map_or("unknown".into(), |n| n.to_string());
                return Err(format!(
                    "{left} request(s) to {pool}/{server} still in flight"
                ));
            }
            _ => std::thread::sleep(POLL),
        }
    }
}

/// `gatehouse ctl cluster`.
pub fn print_cluster(v: ClusterView) {
    println!(
        "cluster {} · node {} · etcd {} · {}",
        v.cluster,
        v.node,
        v.endpoints.join(","),
        if v.connected {
            "connected"
        } else {
            "DISCONNECTED"
        }
    );
    println!(
        "applied revision {}{}",
        v.applied_revision,
        v.sync_age_ms
            .map(|ms| format!(", confirmed {ms} ms ago"))
            .unwrap_or_default()
    );
    if let Some(e) = &v.last_error {
        println!("last error: {e}");
    }
    if let Some(e) = &v.nodes_error {
        println!("nodes unknown: {e}");
    }
    println!(
        "{:<16} {:>9} {:<8} {:<22}",
        "NODE", "REVISION", "HEALTH", "ADMIN"
    );
    for n in &v.nodes {
        println!(
            "{:<16} {:>9} {:<8} {:<22}",
            n.node,
            n.applied_revision,
            if n.healthy { "ok" } else { "stopping" },
            n.admin
        );
    }
}
