//! Entry point: command line → load and validate → run; every error becomes a message on
//! stderr and exit status 1.

use clap::Parser;
use gatehouse::cli;
use gatehouse::config::Config;
use std::process::ExitCode;

/// mimalloc rather than glibc's malloc: pingora allocates and frees dozens of buffers and boxes
/// per request (sessions, header maps, 64 KiB body buffers), and glibc's allocator was the
/// largest single cost of a pass-through request in profiles
/// (`bench/results/2026-11-27-vm-direct.md`).
///
/// Without transparent huge pages (the `no_thp` build feature, and the process flag set first
/// thing in `main` for hosts where THP is `always`): mimalloc asked for them on its arenas, so
/// the kernel backed each touched 2 MiB at once; half of the RSS at start was huge pages, and
/// memory freed after a burst could not be given back in smaller parts (issue 37,
/// `bench/results/2026-12-07-vm-memory.md`). nginx, HAProxy and Redis run without them for the
/// same reason.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Failure (a kernel without PR_SET_THP_DISABLE) only leaves the system's THP policy.
    let _ = nix::sys::prctl::set_thp_disable(true);
    let cli = cli::Cli::parse();
    match cli.command {
        cli::Command::Check {
            config,
            running,
            admin,
            token,
            json,
        } => gatehouse::ctl::check::run(
            &config,
            running.then_some(gatehouse::ctl::check::Running { admin, token, json }),
        ),
        cli::Command::Completions { shell } => {
            cli::completions(shell, &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        cli::Command::Man { dir } => match cli::man(dir.as_deref(), &mut std::io::stdout()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("gatehouse: {e}");
                ExitCode::FAILURE
            }
        },
        cli::Command::Ctl {
            config,
            admin,
            token,
            json,
            local,
            action,
        } => gatehouse::ctl::run(
            gatehouse::ctl::CtlArgs {
                config,
                admin,
                token,
                json,
                local,
            },
            action,
        ),
        cli::Command::Run { config, upgrade } => {
            // First of all: SIGHUP must never kill the process (pingora leaves it default).
            if let Err(e) = gatehouse::signals::install_sighup() {
                eprintln!("gatehouse: {e}");
                return ExitCode::FAILURE;
            }
            gatehouse::telemetry::init();
            gatehouse::freed_memory::return_to_the_os();
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
