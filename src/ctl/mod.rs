//! `gatehouse ctl`: the admin API from the command line, for operators and deploy scripts.
//! Tables for people, `--json` for scripts, a non-zero exit status on any failure. Calls are
//! built from the API's own endpoints (`admin::api::Endpoint`) and answers read as its views
//! (`view`), so a renamed path or field fails to compile here instead of printing "-".

pub mod check;
mod client;
mod cluster;
mod view;

pub use client::{call, Answer, Target};

use crate::admin::api::{duration_text, BlockRequest, Endpoint, ErrorView, Invalidation};
use crate::admin::api::{Query, ReadonlySwitch};
use crate::cli::{CtlAction, Switch};
use crate::config::Config;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;
use view::View;

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
    let request = request(&action);
    let query = Query {
        wait: request.wait,
        local: args.local && request.endpoint.clustered(),
    };
    let answer = match call(
        &target,
        &request.endpoint,
        &query,
        request.body.as_ref(),
        request.wait.unwrap_or_default(),
    ) {
        Ok(answer) => answer,
        Err(e) => {
            eprintln!("gatehouse ctl: {e}");
            return ExitCode::FAILURE;
        }
    };
    let ok = (200..300).contains(&answer.status);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&answer.body).unwrap_or_default()
        );
    } else if !ok {
        print_error(&answer);
    }
    if !ok {
        return ExitCode::FAILURE;
    }
    let view = match View::read(&request.endpoint, answer.body) {
        Ok(view) => view,
        // The JSON printed is the answer; only a cluster wait needs the view.
        Err(_) if args.json && cluster::wait_of(&action).is_none() => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gatehouse ctl: unexpected answer from the admin API: {e}");
            return ExitCode::FAILURE;
        }
    };
    let revision = view.written().map(|w| w.revision);
    if !args.json {
        view.print();
    }
    match revision.zip(cluster::wait_of(&action)) {
        Some((revision, wait)) => cluster::wait_for_nodes(&target, &action, revision, wait),
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

/// What `ctl` sends for an action. A drain or maint's `wait` is how long the API may take to
/// answer too.
struct Request<'a> {
    endpoint: Endpoint<'a>,
    wait: Option<Duration>,
    body: Option<Value>,
}

impl<'a> Request<'a> {
    fn to(endpoint: Endpoint<'a>) -> Self {
        Request {
            endpoint,
            wait: None,
            body: None,
        }
    }

    fn with_body(endpoint: Endpoint<'a>, body: impl serde::Serialize) -> Self {
        Request {
            body: serde_json::to_value(body).ok(),
            ..Request::to(endpoint)
        }
    }
}

fn request(action: &CtlAction) -> Request<'_> {
    match action {
        CtlAction::Status => Request::to(Endpoint::Pools),
        CtlAction::Reload => Request::to(Endpoint::Reload),
        CtlAction::Config => Request::to(Endpoint::Config),
        CtlAction::Cluster => Request::to(Endpoint::Cluster),
        CtlAction::Readonly {
            switch: Switch::Status,
            ..
        } => Request::to(Endpoint::Readonly),
        CtlAction::Readonly {
            switch,
            reason,
            duration,
            ..
        } => {
            let body = ReadonlySwitch {
                enabled: *switch == Switch::On,
                reason: reason.clone(),
                duration: duration.map(duration_text),
            };
            Request::with_body(Endpoint::SetReadonly, body)
        }
        CtlAction::Drain { pool, server, wait } => Request {
            wait: *wait,
            ..Request::to(Endpoint::drain(pool, server))
        },
        CtlAction::Maint { pool, server, wait } => Request {
            wait: *wait,
            ..Request::to(Endpoint::maint(pool, server))
        },
        CtlAction::Ready { pool, server, .. } => Request::to(Endpoint::ready(pool, server)),
        CtlAction::Purge { host, path, .. } => {
            Request::with_body(Endpoint::Purge, purge(host, path))
        }
        CtlAction::Ban {
            host,
            prefix,
            regex,
            ..
        } => Request::with_body(Endpoint::Ban, ban(host, prefix, regex)),
        CtlAction::Blocks => Request::to(Endpoint::Blocks),
        CtlAction::Block {
            cidr,
            duration,
            reason,
            ..
        } => {
            let body = BlockRequest {
                cidr: cidr.clone(),
                duration: duration_text(*duration),
                reason: reason.clone(),
            };
            Request::with_body(Endpoint::Block, body)
        }
        CtlAction::Unblock { cidr, .. } => Request::to(Endpoint::Unblock { cidr }),
    }
}

/// One URL, every variant.
fn purge(host: &str, path: &str) -> Invalidation {
    Invalidation {
        host: Some(host.into()),
        path: Some(path.into()),
        ..Invalidation::default()
    }
}

/// Under a prefix or matching a regex, on `host` ("*": every host).
fn ban(host: &str, prefix: &Option<String>, regex: &Option<String>) -> Invalidation {
    Invalidation {
        host: (host != "*").then(|| host.into()),
        prefix: prefix.clone(),
        regex: regex.clone(),
        ..Invalidation::default()
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
