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

/// How often the allocator is asked to give back what it has freed.
const RETURN_FREED_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// How long freed memory waits before it may be given back (mimalloc's `purge_delay`, 1 s by
/// default): with the half-second cycle above, memory a burst freed is back with the OS within
/// a second, so the RSS an operator reads is what the open connections hold.
const FREED_MEMORY_WAITS_MS: i32 = 250;

/// A thread that asks mimalloc every half second to return freed memory to the OS (vendored
/// patches 24 and 31). mimalloc returns it once `purge_delay` has passed since it was freed,
/// but only from its allocation paths: a process that goes quiet after a burst kept all of it
/// (issue 37; the figures are in `bench/results/2026-12-07-vm-memory.md` and
/// `2026-12-07-vm-idle-h2.md`). An empty check when nothing is due.
fn return_freed_memory() {
    // An operator's own setting (mimalloc reads it at start) stays.
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        ALLOCATOR.set_purge_delay(FREED_MEMORY_WAITS_MS);
    }
    let spawned = std::thread::Builder::new()
        .name("gatehouse-free".into())
        .spawn(|| loop {
            std::thread::sleep(RETURN_FREED_EVERY);
            ALLOCATOR.collect(false);
        });
    if let Err(e) = spawned {
        tracing::warn!("freed memory is returned only under load: {e}");
    }
}

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
            return_freed_memory();
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
