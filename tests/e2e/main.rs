//! End-to-end tests: real origins on ephemeral ports, gatehouse booted from the library, real
//! HTTP over loopback. One module per concern; one binary so the suite links once.

#[path = "../common/mod.rs"]
mod common;

mod access;
mod access_paths;
mod accesslog;
mod accesslog_drops;
mod accesslog_restart;
mod acme;
mod admin;
mod balancing;
mod blocks;
mod cache;
mod cache_rfc;
mod changes;
mod cli;
mod client_address;
mod cluster;
mod compression;
mod deadlines;
mod differential;
mod direct;
mod errors;
mod fast_hit;
mod fuzz;
mod halog;
mod health;
mod hostile;
mod limits;
mod memory;
mod metrics;
mod probes;
mod proxying;
mod rate_limits;
mod readonly;
mod reload;
mod routing;
mod slowstart;
mod status_page;
mod tls;
mod tls_settings;
mod vip;
mod warm_cache;
mod wire;
