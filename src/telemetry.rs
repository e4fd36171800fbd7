//! Process logging: `tracing` to stderr, with pingora's `log` records bridged in so its own
//! errors (listener failures, upstream errors) are not lost. `RUST_LOG` overrides the level.

/// Installs the logger once at level "info"; later calls (tests boot several servers) do nothing.
pub fn init() {
    init_with_default("info");
}

/// Installs the logger with `level` unless `RUST_LOG` says otherwise.
pub fn init_with_default(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
