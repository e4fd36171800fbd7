//! Entry point: command line → load and validate → run; every error becomes a message on
//! stderr and exit status 1.

mod cli;

use clap::Parser;
use gatehouse::config::Config;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli.command {
        cli::Command::Check { config } => match Config::load(&config) {
            Ok(c) => {
                for w in &c.warnings {
                    eprintln!("{}: {w}", config.display());
                }
                let servers: usize = c.pools.iter().map(|p| p.servers.len()).sum();
                println!(
                    "{}: ok: {} listener(s), {} pool(s) with {} server(s), {} route(s)",
                    config.display(),
                    c.listeners.len(),
                    c.pools.len(),
                    servers,
                    c.routes.len()
                );
                ExitCode::SUCCESS
            }
            Err(errors) => {
                eprint!("{errors}");
                ExitCode::FAILURE
            }
        },
        cli::Command::Ctl {
            config,
            admin,
            token,
            json,
            action,
        } => ctl(&config, admin, token, json, action),
        cli::Command::Run { config, upgrade } => {
            // First of all: SIGHUP must never kill the process (pingora leaves it default).
            if let Err(e) = gatehouse::signals::install_sighup() {
                eprintln!("gatehouse: {e}");
                return ExitCode::FAILURE;
            }
            gatehouse::telemetry::init();
            let c = match Config::load(&config) {
                Ok(c) => c,
                Err(errors) => {
                    eprint!("{errors}");
                    return ExitCode::FAILURE;
                }
            };
            for w in &c.warnings {
                tracing::warn!("{}: {w}", config.display());
            }
            match gatehouse::launch::run_foreground(c, &config, upgrade) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("gatehouse: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn ctl(
    config: &std::path::Path,
    admin: Option<std::net::SocketAddr>,
    token: Option<String>,
    json: bool,
    action: cli::CtlAction,
) -> ExitCode {
    use gatehouse::ctl::{call, print_server_row, print_status, Target};
    let from_file = || Config::load(config).ok().map(|c| c.admin);
    let (address, token) = match (admin, from_file()) {
        (Some(a), file) => (a, token.or_else(|| file.and_then(|f| f.token))),
        (None, Some(f)) => (f.address, token.or(f.token)),
        (None, None) => {
            eprintln!(
                "gatehouse ctl: cannot read the admin address from {}: pass --admin ADDR",
                config.display()
            );
            return ExitCode::FAILURE;
        }
    };
    let target = Target { address, token };
    let mut body = None;
    let (method, path, wait) = match &action {
        cli::CtlAction::Status => ("GET", "/api/pools".to_string(), None),
        cli::CtlAction::Reload => ("POST", "/api/reload".to_string(), None),
        cli::CtlAction::Readonly { switch, .. } if switch == "status" => {
            ("GET", "/api/readonly".to_string(), None)
        }
        cli::CtlAction::Readonly {
            switch,
            reason,
            duration,
        } => {
            body = Some(serde_json::json!({
                "enabled": switch == "on",
                "reason": reason,
                "for": duration,
            }));
            ("POST", "/api/readonly".to_string(), None)
        }
        cli::CtlAction::Drain { pool, server, wait }
        | cli::CtlAction::Maint { pool, server, wait } => {
            let verb = if matches!(action, cli::CtlAction::Drain { .. }) {
                "drain"
            } else {
                "maint"
            };
            let q = wait
                .as_ref()
                .map(|w| format!("?wait={w}"))
                .unwrap_or_default();
            (
                "POST",
                format!("/api/pools/{pool}/servers/{server}/{verb}{q}"),
                wait.clone(),
            )
        }
        cli::CtlAction::Ready { pool, server } => (
            "POST",
            format!("/api/pools/{pool}/servers/{server}/ready"),
            None,
        ),
    };
    let timeout = wait
        .and_then(|w: String| humantime::parse_duration(&w).ok())
        .unwrap_or_default();
    match call(&target, method, &path, body.as_ref(), timeout) {
        Ok(answer) => {
            let ok = (200..300).contains(&answer.status);
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&answer.body).unwrap_or_default()
                );
            } else if !ok {
                eprintln!(
                    "gatehouse ctl: {} ({})",
                    answer.body["error"].as_str().unwrap_or("request failed"),
                    answer.status
                );
                for e in answer.body["errors"].as_array().into_iter().flatten() {
                    eprintln!("  {}", e.as_str().unwrap_or_default());
                }
            } else if matches!(action, cli::CtlAction::Reload) {
                println!(
                    "reloaded {} (checksum {})",
                    answer.body["file"].as_str().unwrap_or("-"),
                    answer.body["checksum"].as_str().unwrap_or("-")
                );
            } else if matches!(action, cli::CtlAction::Status) {
                print_status(&answer.body);
            } else if matches!(action, cli::CtlAction::Readonly { .. }) {
                let b = &answer.body;
                println!(
                    "read-only: {}{}{}",
                    if b["active"].as_bool() == Some(true) {
                        "ON"
                    } else {
                        "off"
                    },
                    b["reason"]
                        .as_str()
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default(),
                    b["until"]
                        .as_u64()
                        .map(|u| format!(", until unix time {u}"))
                        .unwrap_or_default(),
                );
            } else {
                print_server_row(&answer.body);
                if let Some(ms) = answer.body["waited_ms"].as_u64() {
                    println!("drained after {ms} ms");
                }
            }
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("gatehouse ctl: {e}");
            ExitCode::FAILURE
        }
    }
}
