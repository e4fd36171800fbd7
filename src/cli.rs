//! The command line: `gatehouse run|check|ctl|completions|man`, `gatehouse --version`.

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

const DEFAULT_CONFIG: &str = "/etc/gatehouse/gatehouse.toml";

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
        #[arg(short = 'c', long = "config", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Take over the listening sockets of a running gatehouse (binary upgrade).
        #[arg(long)]
        upgrade: bool,
    },
    /// Validate a configuration file, print every problem, exit 1 if it is invalid; with
    /// --running, also say what a reload of it would do to the running gatehouse (exit 2 if it
    /// needs a binary upgrade or a restart).
    Check {
        #[arg(short = 'c', long = "config", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Ask the running gatehouse (admin API) which changes a reload applies, which need a
        /// binary upgrade, which a restart.
        #[arg(long)]
        running: bool,
        /// Admin API address (default: the checked file's).
        #[arg(long, requires = "running")]
        admin: Option<std::net::SocketAddr>,
        /// Admin token (default: the checked file's; also GATEHOUSE_TOKEN).
        #[arg(long, env = "GATEHOUSE_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// Print the API's JSON answer.
        #[arg(long, requires = "running")]
        json: bool,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish or powershell) to stdout.
    Completions { shell: clap_complete::Shell },
    /// Print the manual page gatehouse(1) (roff) to stdout (`gatehouse man | man -l -`), or
    /// write it and one page per subcommand (gatehouse-ctl(1)...) into --dir.
    Man {
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Call the admin API: status, drain, maint, ready, reload, readonly, purge, ban, config,
    /// cluster, block, unblock, blocks.
    Ctl {
        /// Configuration file to take the admin address and token from.
        #[arg(short = 'c', long = "config", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Admin API address (overrides the config file).
        #[arg(long)]
        admin: Option<std::net::SocketAddr>,
        /// Admin token (overrides the config file; also GATEHOUSE_TOKEN).
        #[arg(long, env = "GATEHOUSE_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// Print the API's JSON instead of a table.
        #[arg(long, global = true)]
        json: bool,
        /// In a cluster: change this node only, not every node through etcd.
        #[arg(long, global = true)]
        local: bool,
        #[command(subcommand)]
        action: CtlAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum CtlAction {
    /// Every pool and server with state, health and in-flight requests.
    Status,
    /// Stop new requests to a server; with --wait, return once its in-flight requests are done.
    Drain {
        pool: String,
        server: String,
        /// Wait up to this long for in-flight requests (e.g. 30s), and in a cluster for every
        /// node to apply the drain and finish its requests; exit 1 if some remain.
        #[arg(long, value_parser = humantime::parse_duration)]
        wait: Option<Duration>,
    },
    /// Take a server out entirely (no traffic, no health checks).
    Maint {
        pool: String,
        server: String,
        #[arg(long, value_parser = humantime::parse_duration)]
        wait: Option<Duration>,
    },
    /// Put a server back; it takes traffic once its health check passes.
    Ready {
        pool: String,
        server: String,
        /// In a cluster: wait up to this long (default 5s) for every node to apply it.
        #[arg(long, num_args = 0..=1, default_missing_value = "5s", value_parser = humantime::parse_duration)]
        wait: Option<Duration>,
    },
    /// Reload the config file (all or nothing; the errors are printed on refusal).
    Reload,
    /// Remove one URL from the cache, every Vary variant (PATH with its query, as requested).
    Purge {
        host: String,
        path: String,
        /// In a cluster: wait up to this long (default 5s) for every node to apply it.
        #[arg(long, num_args = 0..=1, default_missing_value = "5s", value_parser = humantime::parse_duration)]
        wait: Option<Duration>,
    },
    /// Remove the cached objects of HOST ("*": every host) under a path prefix or matching a
    /// regular expression on path and query.
    Ban {
        host: String,
        #[arg(long, conflicts_with = "regex", required_unless_present = "regex")]
        prefix: Option<String>,
        #[arg(long)]
        regex: Option<String>,
        /// In a cluster: wait up to this long (default 5s) for every node to apply it.
        #[arg(long, num_args = 0..=1, default_missing_value = "5s", value_parser = humantime::parse_duration)]
        wait: Option<Duration>,
    },
    /// The running config: file, checksum, load time, generation, warnings.
    Config,
    /// Read-only mode: `on` or `off`, or `status`.
    Readonly {
        switch: Switch,
        /// Why (shown by the admin status).
        #[arg(long)]
        reason: Option<String>,
        /// Turn itself off after this long (e.g. 2h).
        #[arg(long = "for", value_parser = humantime::parse_duration)]
        duration: Option<Duration>,
        /// In a cluster: wait up to this long (default 5s) for every node to apply it.
        #[arg(long, num_args = 0..=1, default_missing_value = "5s", value_parser = humantime::parse_duration)]
        wait: Option<Duration>,
    },
    /// The cluster: this node's link to etcd, its applied revision, and every node.
    Cluster,
    /// Refuse every request from an address or network (403), on every node of a cluster,
    /// for a while.
    Block {
        /// An address or network: 203.0.113.0/24, 2001:db8::/32, 192.0.2.7.
        cidr: String,
        /// How long (e.g. 1h).
        #[arg(long = "for", value_parser = humantime::parse_duration)]
        duration: Duration,
        /// Why (listed with the block).
        #[arg(long, default_value = "")]
        reason: String,
        /// In a cluster: wait up to this long (default 5s) for every node to apply it.
        #[arg(long, num_args = 0..=1, default_missing_value = "5s", value_parser = humantime::parse_duration)]
        wait: Option<Duration>,
    },
    /// End a block before its time.
    Unblock {
        cidr: String,
        /// In a cluster: wait up to this long (default 5s) for every node to apply it.
        #[arg(long, num_args = 0..=1, default_missing_value = "5s", value_parser = humantime::parse_duration)]
        wait: Option<Duration>,
    },
    /// The address blocks in force.
    Blocks,
}

/// `ctl readonly`'s switch. (No doc on the values: `--help` lists them bare.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Switch {
    On,
    Off,
    Status,
}

/// Writes the completion script for `shell` (clap_complete, from the same definitions).
pub fn completions(shell: clap_complete::Shell, out: &mut dyn std::io::Write) {
    use clap::CommandFactory;
    clap_complete::generate(shell, &mut Cli::command(), "gatehouse", out);
}

/// Writes the manual page gatehouse(1) in roff to `out`, or every page (one per subcommand,
/// gatehouse-ctl-drain(1)...) into `dir` (clap_mangen, from the same definitions).
pub fn man(dir: Option<&std::path::Path>, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    use clap::CommandFactory;
    match dir {
        Some(dir) => clap_mangen::generate_to(Cli::command(), dir),
        None => clap_mangen::Man::new(Cli::command()).render(out),
    }
}
