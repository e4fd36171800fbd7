//! `gatehouse ctl`: the admin API from the command line, for operators and deploy scripts.
//! Tables for people, `--json` for scripts, a non-zero exit status on any failure. Answers are
//! read through the API's own views (`admin::api`), so a renamed field fails to compile here
//! instead of printing "-".

pub mod check;
mod client;
mod fleet;

pub use client::{call, Answer, Target};

use crate::admin::api::{ConfigView, ErrorView, Invalidation, InvalidationView, PoolsView};
use crate::admin::api::{ReadonlySwitch, ReadonlyView, ReloadView, ServerActionView, ServerView};
use crate::cli::CtlAction;
use crate::config::Config;
use serde::de::DeserializeOwned;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

/// Options of `gatehouse ctl` before its action.
pub struct CtlArgs {
    pub config: std::path::PathBuf,
    pub admin: Option<SocketAddr>,
    pub token: Option<String>,
    pub json: bool,
    /// Change this node only (`?local=1`).
    pub local: bool,
}

/// Runs one `ctl` action; the exit status says whether the API accepted it.
pub fn run(args: CtlArgs, action: CtlAction) -> ExitCode {
    let Some(target) = target(&args.config, args.admin, args.token) else {
        return ExitCode::FAILURE;
    };
    let (method, mut path, body, timeout) = request(&action);
    if args.local && method == "POST" && path != "/api/reload" {
        path.push(if path.contains('?') { '&' } else { '?' });
        path.push_str("local=1");
    }
    let answer = match call(&target, method, &path, body.as_ref(), timeout) {
        Ok(answer) => answer,
        Err(e) => {
            eprintln!("gatehouse ctl: {e}");
            return ExitCode::FAILURE;
        }
    };
    let ok = (200..300).contains(&answer.status);
    let cluster_wait = fleet::written_revision(&answer.body).zip(fleet::wait_of(&action));
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&answer.body).unwrap_or_default()
        );
    } else if !ok {
        print_error(&answer);
    } else if let Err(e) = print_answer(&action, answer.body) {
        eprintln!("gatehouse ctl: unexpected answer from the admin API: {e}");
        return ExitCode::FAILURE;
    }
    if !ok {
        return ExitCode::FAILURE;
    }
    match cluster_wait {
        Some((revision, wait)) => fleet::wait_for_nodes(&target, &action, revision, wait),
        None => ExitCode::SUCCESS,
    }
}

/// The admin address and token: flags first, then the config file.
pub(crate) fn target(
    config: &Path,
    admin: Option<SocketAddr>,
    token: Option<String>,
) -> Option<Target> {
    let from_file = || Config::load(config).ok().map(|c| c.admin);
    let (address, token) = match (admin, from_file()) {
        (Some(a), file) => (a, token.or_else(|| file.and_then(|f| f.token))),
        (None, Some(f)) => (f.address, token.or(f.token)),
        (None, None) => {
            eprintln!(
                "gatehouse ctl: cannot read the admin address from {}: pass --admin ADDR",
                config.display()
            );
            return None;
        }
    };
    Some(Target { address, token })
}

/// Method, path, body and how long the answer may take.
fn request(action: &CtlAction) -> (&'static str, String, Option<serde_json::Value>, Duration) {
    let server_path =
        |pool: &str, server: &str, verb: &str| format!("/api/pools/{pool}/servers/{server}/{verb}");
    match action {
        CtlAction::Status => ("GET", "/api/pools".into(), None, Duration::ZERO),
        CtlAction::Reload => ("POST", "/api/reload".into(), None, Duration::ZERO),
        CtlAction::Readonly { switch, .. } if switch == "status" => {
            ("GET", "/api/readonly".into(), None, Duration::ZERO)
        }
        CtlAction::Readonly {
            switch,
            reason,
            duration,
            ..
        } => {
            let body = ReadonlySwitch {
                enabled: switch == "on",
                reason: reason.clone(),
                duration: duration.clone(),
            };
            let body = serde_json::to_value(body).ok();
            ("POST", "/api/readonly".into(), body, Duration::ZERO)
        }
        CtlAction::Drain { pool, server, wait } | CtlAction::Maint { pool, server, wait } => {
            let verb = if matches!(action, CtlAction::Drain { .. }) {
                "drain"
            } else {
                "maint"
            };
            let mut path = server_path(pool, server, verb);
            if let Some(w) = wait {
                path.push_str(&format!("?wait={w}"));
            }
            let timeout = wait
                .as_deref()
                .and_then(|w| humantime::parse_duration(w).ok())
                .unwrap_or_default();
            ("POST", path, None, timeout)
        }
        CtlAction::Ready { pool, server, .. } => (
            "POST",
            server_path(pool, server, "ready"),
            None,
            Duration::ZERO,
        ),
        CtlAction::Purge { host, path, .. } => {
            let body = Invalidation {
                host: Some(host.clone()),
                path: Some(path.clone()),
                ..Invalidation::default()
            };
            let body = serde_json::to_value(body).ok();
            ("POST", "/api/cache/purge".into(), body, Duration::ZERO)
        }
        CtlAction::Ban {
            host,
            prefix,
            regex,
            ..
        } => {
            let body = Invalidation {
                host: (host != "*").then(|| host.clone()),
                prefix: prefix.clone(),
                regex: regex.clone(),
                ..Invalidation::default()
            };
            let body = serde_json::to_value(body).ok();
            ("POST", "/api/cache/ban".into(), body, Duration::ZERO)
        }
        CtlAction::Config => ("GET", "/api/config".into(), None, Duration::ZERO),
        CtlAction::Cluster => ("GET", "/api/cluster".into(), None, Duration::ZERO),
    }
}

fn print_error(answer: &Answer) {
    let error: Option<ErrorView> = serde_json::from_value(answer.body.clone()).ok();
    let message = error
        .as_ref()
        .map_or("request failed", |e| e.error.as_str());
    eprintln!("gatehouse ctl: {message} ({})", answer.status);
    for e in error.iter().flat_map(|e| &e.errors) {
        eprintln!("  {e}");
    }
}

fn view<T: DeserializeOwned>(body: serde_json::Value) -> Result<T, String> {
    serde_json::from_value(body).map_err(|e| e.to_string())
}

fn print_answer(action: &CtlAction, body: serde_json::Value) -> Result<(), String> {
    match action {
        CtlAction::Reload => {
            let r: ReloadView = view(body)?;
            println!("reloaded {} (checksum {})", r.file, r.checksum);
            if !r.changed.is_empty() {
                println!("applied: {}", r.changed.join(", "));
            }
            for s in &r.after_restart {
                println!("applies only after a binary upgrade or restart: {s}");
            }
        }
        CtlAction::Status => {
            let p: PoolsView = view(body)?;
            print_header();
            for s in p.pools.iter().flat_map(|p| &p.servers) {
                print_server_row(s);
            }
        }
        CtlAction::Readonly { .. } => {
            let r: ReadonlyView = view(body)?;
            println!(
                "read-only: {}{}{}",
                if r.active { "ON" } else { "off" },
                r.reason.map(|r| format!(" ({r})")).unwrap_or_default(),
                r.until
                    .map(|u| format!(", until unix time {u}"))
                    .unwrap_or_default(),
            );
        }
        CtlAction::Purge { .. } | CtlAction::Ban { .. } => {
            let r: InvalidationView = view(body)?;
            match r.removed {
                Some(n) => println!("removed {n} object(s)"),
                None => println!("sent to the cluster"),
            }
        }
        CtlAction::Config => {
            let c: ConfigView = view(body)?;
            println!("file:       {}", c.file.as_deref().unwrap_or("-"));
            println!("checksum:   {}", c.checksum);
            println!("loaded at:  unix time {}", c.loaded_at);
            println!("generation: {}", c.generation);
            for w in &c.warnings {
                println!("warning:    {w}");
            }
        }
        CtlAction::Cluster => fleet::print_cluster(view(body)?),
        CtlAction::Drain { .. } | CtlAction::Maint { .. } | CtlAction::Ready { .. } => {
            let a: ServerActionView = view(body)?;
            print_server_row(&a.server);
            if let Some(ms) = a.waited_ms {
                println!("drained after {ms} ms");
            }
            if let Some(w) = a.persisted.warning {
                eprintln!("gatehouse ctl: warning: {w}");
            }
        }
    }
    Ok(())
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
