//! The command line: `gatehouse run|check -c FILE`, `gatehouse --version`.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "gatehouse",
    version,
    about = "Edge proxy: TLS, cache, read-only mode, balancing, admin API, timing logs"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run gatehouse in the foreground.
    Run {
        /// Configuration file.
        #[arg(
            short = 'c',
            long = "config",
            default_value = "/etc/gatehouse/gatehouse.toml"
        )]
        config: PathBuf,
        /// Take over the listening sockets of a running gatehouse (binary upgrade).
        #[arg(long)]
        upgrade: bool,
    },
    /// Validate a configuration file, print every problem, exit 1 if it is invalid.
    Check {
        #[arg(
            short = 'c',
            long = "config",
            default_value = "/etc/gatehouse/gatehouse.toml"
        )]
        config: PathBuf,
    },
}
