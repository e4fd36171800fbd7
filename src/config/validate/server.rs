//! `[server]`, `[timeouts]`, `[limits]` and `[admin]`: the process, its deadlines, what a
//! client may send, and the admin listener.

use super::super::defaults as d;
use super::super::error::{Collector, KeyPath};
use super::super::file;
use super::super::*;
use super::values::{duration, placeholder_addr, size, socket_addr};

pub(super) fn settings(s: file::ServerSection, p: &KeyPath, c: &mut Collector) -> ServerSettings {
    let threads = match s.threads {
        Some(0) => {
            c.error(&p.key("threads"), "must be at least 1");
            1
        }
        Some(n) if n > d::MAX_THREADS => {
            c.error(
                &p.key("threads"),
                format!("{n} is more than {}", d::MAX_THREADS),
            );
            d::MAX_THREADS
        }
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let state_dir = PathBuf::from(s.state_dir.unwrap_or_else(|| d::STATE_DIR.into()));
    let pid_file = s
        .pid_file
        .map(PathBuf::from)
        .unwrap_or_else(|| state_dir.join("gatehouse.pid"));
    let upgrade_socket = s
        .upgrade_socket
        .map(PathBuf::from)
        .unwrap_or_else(|| state_dir.join("upgrade.sock"));
    ServerSettings {
        threads,
        state_dir,
        pid_file,
        upgrade_socket,
        grace_period: duration(s.grace_period, d::GRACE_PERIOD, &p.key("grace_period"), c),
        shutdown_timeout: duration(
            s.shutdown_timeout,
            d::SHUTDOWN_TIMEOUT,
            &p.key("shutdown_timeout"),
            c,
        ),
        direct_exchange: s.direct_exchange.unwrap_or(true),
    }
}

pub(super) fn timeouts(t: file::TimeoutsSection, p: &KeyPath, c: &mut Collector) -> Timeouts {
    let mut nonzero = |v, default, key: &str| {
        let d = duration(v, default, &p.key(key), c);
        if d.is_zero() {
            c.error(&p.key(key), "must be greater than zero");
        }
        d
    };
    Timeouts {
        connect: nonzero(t.connect, d::CONNECT, "connect"),
        upstream_read: nonzero(t.upstream_read, d::UPSTREAM_READ, "upstream_read"),
        upstream_write: nonzero(t.upstream_write, d::UPSTREAM_WRITE, "upstream_write"),
        client_idle: nonzero(t.client_idle, d::CLIENT_IDLE, "client_idle"),
        client_header: nonzero(t.client_header, d::CLIENT_HEADER, "client_header"),
        client_handshake: nonzero(t.client_handshake, d::CLIENT_HANDSHAKE, "client_handshake"),
        client_send: nonzero(t.client_send, d::CLIENT_SEND, "client_send"),
    }
}

pub(super) fn admin(a: file::AdminSection, p: &KeyPath, c: &mut Collector) -> AdminConfig {
    let address = socket_addr(
        a.address.as_deref().unwrap_or(d::ADMIN_ADDRESS),
        &p.key("address"),
        c,
    )
    .unwrap_or_else(placeholder_addr);
    let token = match (a.token, a.token_file) {
        (Some(_), Some(_)) => {
            c.error(&p.key("token_file"), "set token or token_file, not both");
            None
        }
        (Some(t), None) => Some(t),
        (None, Some(f)) => match std::fs::read_to_string(&f) {
            Ok(t) if !t.trim().is_empty() => Some(t.trim().to_string()),
            Ok(_) => {
                c.error(&p.key("token_file"), format!("{f}: file is empty"));
                None
            }
            Err(e) => {
                c.error(&p.key("token_file"), format!("{f}: {e}"));
                None
            }
        },
        (None, None) => None,
    };
    if matches!(&token, Some(t) if t.len() < 16) {
        c.error(&p.key("token"), "too short: use at least 16 characters");
    }
    if !address.ip().is_loopback() && token.is_none() {
        c.error(
            &p.key("address"),
            format!("{address} is not a loopback address: set token or token_file, or bind to 127.0.0.1"),
        );
    }
    AdminConfig {
        enabled: a.enabled.unwrap_or(true),
        address,
        token,
    }
}

pub(super) fn limits(f: file::LimitsSection, p: &KeyPath, c: &mut Collector) -> Limits {
    let limits = Limits {
        max_header_bytes: size(
            f.max_header_bytes,
            d::MAX_HEADER_BYTES,
            &p.key("max_header_bytes"),
            c,
        ) as usize,
        max_headers: f.max_headers.unwrap_or(d::MAX_HEADERS),
        max_uri_length: size(
            f.max_uri_length,
            d::MAX_URI_LENGTH,
            &p.key("max_uri_length"),
            c,
        ) as usize,
        max_body_size: size(
            f.max_body_size,
            d::MAX_BODY_SIZE,
            &p.key("max_body_size"),
            c,
        ),
        keepalive_requests: f.keepalive_requests.unwrap_or(d::KEEPALIVE_REQUESTS),
        max_connections: f.max_connections.unwrap_or(d::MAX_CONNECTIONS),
        max_connections_per_client: f
            .max_connections_per_client
            .unwrap_or(d::MAX_CONNECTIONS_PER_CLIENT),
        max_silent_per_client: f.max_silent_per_client.unwrap_or(d::MAX_SILENT_PER_CLIENT),
        max_connection_rate_per_client: f.max_connection_rate_per_client.and_then(|r| {
            let p = p.key("max_connection_rate_per_client");
            let (count, window) = super::rate_limits::rate(Some(&r), &p, c)?;
            Some(crate::ratelimit::Rate::per(count, window))
        }),
    };
    if limits.max_connections == 0 {
        c.error(&p.key("max_connections"), "must be at least 1");
    }
    if limits.max_headers == 0 || limits.max_headers > 256 {
        c.error(&p.key("max_headers"), "must be between 1 and 256");
    }
    if limits.keepalive_requests == 0 {
        c.error(&p.key("keepalive_requests"), "must be at least 1");
    }
    limits
}
