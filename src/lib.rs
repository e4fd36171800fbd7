//! gatehouse: one binary doing the work of an edge tier's three daemons: TLS termination,
//! caching, read-only mode, load balancing with health checks, an admin API and per-request
//! timing logs, on pingora.
//!
//! `main` parses the command line; everything else lives here so that tests boot the real
//! server (`Gatehouse::start`) on ephemeral ports.

pub mod access;
pub mod accesslog;
pub mod acme;
pub mod admin;
pub mod balance;
pub mod blocks;
pub mod cache;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod compress;
pub mod config;
pub mod conn;
pub mod ctl;
pub mod freed_memory;
pub mod hop_by_hop;
pub mod launch;
pub mod limits;
pub mod metrics;
pub mod pingora_ext;
pub mod proxy;
pub mod ratelimit;
pub mod readonly;
pub mod request_path;
pub mod respond;
pub mod routing;
pub mod runtime;
pub mod signals;
pub mod statefile;
pub mod telemetry;
pub mod tls;

pub use config::Config;
pub use launch::Gatehouse;
