//! `gatehouse check -c FILE [--running]`: validates a config file and, with `--running`, asks
//! the running gatehouse (its admin API) what a reload of the file would do there: which
//! changes a reload applies, which wait for a binary upgrade or restart, and which a reload
//! refuses because they need an upgrade or a restart.
//!
//! Exit status: 0 valid (and, with `--running`, a reload applies it all), 2 valid but a binary
//! upgrade or restart is needed, 1 invalid or the API could not answer.

use super::{call, target};
use crate::admin::api::{ConfigCheck, ConfigCheckView, Endpoint, Query};
use crate::config::Config;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

/// With `--running`: where the admin API is (else taken from the checked file) and its token.
pub struct Running {
    pub admin: Option<SocketAddr>,
    pub token: Option<String>,
    pub json: bool,
}

pub fn run(file: &Path, running: Option<Running>) -> ExitCode {
    let config = match Config::load(file) {
        Ok(c) => c,
        Err(errors) => {
            eprint!("{errors}");
            return ExitCode::FAILURE;
        }
    };
    for w in &config.warnings {
        eprintln!("{}: {w}", file.display());
    }
    let servers: usize = config.pools.iter().map(|p| p.servers.len()).sum();
    println!(
        "{}: ok: {} listener(s), {} pool(s) with {} server(s), {} route(s)",
        file.display(),
        config.listeners.len(),
        config.pools.len(),
        servers,
        config.routes.len()
    );
    match running {
        None => ExitCode::SUCCESS,
        Some(r) => against_running(file, r),
    }
}

fn against_running(file: &Path, r: Running) -> ExitCode {
    let Some(target) = target(file, r.admin, r.token) else {
        return ExitCode::FAILURE;
    };
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("gatehouse check: cannot read {}: {e}", file.display());
            return ExitCode::FAILURE;
        }
    };
    let absolute = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
    let body = serde_json::to_value(ConfigCheck {
        file: absolute.display().to_string(),
        text,
    })
    .ok();
    let answer = match call(
        &target,
        &Endpoint::ConfigCheck,
        &Query::default(),
        body.as_ref(),
        Duration::from_secs(10),
    ) {
        Ok(a) if a.status == 200 => a,
        Ok(a) => {
            eprintln!(
                "gatehouse check: the admin API answered {}: {}",
                a.status, a.body
            );
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("gatehouse check: {e}");
            return ExitCode::FAILURE;
        }
    };
    if r.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&answer.body).unwrap_or_default()
        );
    }
    let view: ConfigCheckView = match serde_json::from_value(answer.body) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("gatehouse check: unexpected answer from the admin API: {e}");
            return ExitCode::FAILURE;
        }
    };
    if !r.json {
        print_verdict(&target.address, &view);
    }
    if !view.valid {
        ExitCode::FAILURE
    } else if view.upgrade.is_empty() && view.restart.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}

fn print_verdict(admin: &SocketAddr, v: &ConfigCheckView) {
    let short = v.running_checksum.get(..12).unwrap_or(&v.running_checksum);
    println!("against the running gatehouse at {admin} (config {short}):");
    if !v.valid {
        println!("  the running process finds it invalid:");
        for e in &v.errors {
            println!("    {e}");
        }
        return;
    }
    if v.same_as_running {
        println!("  the same file is running: nothing to do");
        return;
    }
    let lists = [
        ("a reload applies", &v.reload),
        (
            "a reload accepts, applied after a binary upgrade or restart",
            &v.after_restart,
        ),
        ("needs a binary upgrade (a reload refuses)", &v.upgrade),
        ("needs a restart (a reload refuses)", &v.restart),
    ];
    for (title, items) in lists {
        if !items.is_empty() {
            println!("  {title}:");
            for i in items.iter() {
                println!("    {i}");
            }
        }
    }
    let verdict = if !v.restart.is_empty() {
        "restart"
    } else if !v.upgrade.is_empty() {
        "binary upgrade (gatehouse run --upgrade)"
    } else if v.reload.is_empty() && v.after_restart.is_empty() {
        "nothing to do (only comments or formatting changed)"
    } else {
        "reload"
    };
    println!("verdict: {verdict}");
}
