//! `[pools.NAME]`: balance mode, retries, health checks and servers.

use super::super::defaults as d;
use super::super::error::{Collector, KeyPath};
use super::super::file;
use super::super::*;
use super::values::{duration, placeholder_addr, socket_addr, status_range, valid_name};
use std::collections::HashSet;

pub(super) fn pools(
    map: std::collections::BTreeMap<String, file::PoolSection>,
    p: &KeyPath,
    c: &mut Collector,
) -> Vec<PoolConfig> {
    if map.is_empty() {
        c.error(p, "at least one pool is needed (e.g. [pools.web])");
    }
    map.into_iter()
        .map(|(name, pool)| {
            let pp = p.key(&name);
            if !valid_name(&name) {
                c.error(&pp, "pool names use letters, digits, '-', '_' and '.'");
            }
            pool_config(name, pool, &pp, c)
        })
        .collect()
}

fn pool_config(name: String, f: file::PoolSection, p: &KeyPath, c: &mut Collector) -> PoolConfig {
    let hash_key = f
        .hash_key
        .as_deref()
        .map(|k| hash_key(k, &p.key("hash_key"), c));
    let balance = match f.balance.as_deref().unwrap_or(d::BALANCE) {
        "round_robin" => Balance::RoundRobin,
        "least_conn" => Balance::LeastConn,
        "hash" => match hash_key.clone() {
            Some(Some(k)) => Balance::Hash(k),
            Some(None) => Balance::Hash(HashKey::Path),
            None => {
                c.error(
                    &p.key("hash_key"),
                    "missing: balance = \"hash\" needs hash_key (\"path\", \"uri\", \"client_ip\" or \"header:NAME\")",
                );
                Balance::Hash(HashKey::Path)
            }
        },
        other => {
            c.error(
                &p.key("balance"),
                format!(
                    "unknown balance {other:?}: use \"round_robin\", \"least_conn\" or \"hash\""
                ),
            );
            Balance::RoundRobin
        }
    };
    if hash_key.is_some() && !matches!(balance, Balance::Hash(_)) && f.balance.is_some() {
        c.error(
            &p.key("hash_key"),
            "only used with balance = \"hash\": drop hash_key or set balance = \"hash\"",
        );
    }
    let retries = f.retries.unwrap_or(d::RETRIES);
    if retries > d::MAX_RETRIES {
        c.error(
            &p.key("retries"),
            format!("{retries} is more than {}", d::MAX_RETRIES),
        );
    }
    let health = health(f.health, &p.key("health"), c);
    let slowstart = duration(f.slowstart, d::SLOWSTART, &p.key("slowstart"), c);
    let servers = servers(f.servers, slowstart, &p.key("servers"), c);
    PoolConfig {
        name,
        balance,
        retries,
        slowstart,
        health,
        servers,
    }
}

fn hash_key(k: &str, p: &KeyPath, c: &mut Collector) -> Option<HashKey> {
    let key = match k {
        "path" => HashKey::Path,
        "uri" => HashKey::Uri,
        "client_ip" => HashKey::ClientIp,
        _ => match k.strip_prefix("header:").map(http::HeaderName::try_from) {
            Some(Ok(h)) => HashKey::Header(h),
            Some(Err(_)) => {
                c.error(p, format!("not a header name: {k:?}"));
                return None;
            }
            None => {
                c.error(
                    p,
                    format!("unknown hash key {k:?}: use \"path\", \"uri\", \"client_ip\" or \"header:NAME\""),
                );
                return None;
            }
        },
    };
    Some(key)
}

fn health(h: Option<file::HealthSection>, p: &KeyPath, c: &mut Collector) -> Option<HealthConfig> {
    let h = h.unwrap_or_default();
    if h.enabled == Some(false) {
        return None;
    }
    let path = h.path.unwrap_or_else(|| d::HEALTH_PATH.into());
    if !path.starts_with('/') || path.bytes().any(|b| b <= b' ' || b == 0x7f) {
        c.error(
            &p.key("path"),
            format!("not a request path: {path:?} (must start with '/', no spaces)"),
        );
    }
    let interval = duration(h.interval, d::HEALTH_INTERVAL, &p.key("interval"), c);
    let timeout = duration(h.timeout, d::HEALTH_TIMEOUT, &p.key("timeout"), c);
    if interval.is_zero() {
        c.error(&p.key("interval"), "must be greater than zero");
    }
    if timeout.is_zero() || timeout > interval {
        c.error(
            &p.key("timeout"),
            "must be greater than zero and at most the interval",
        );
    }
    let rise = h.rise.unwrap_or(d::HEALTH_RISE);
    let fall = h.fall.unwrap_or(d::HEALTH_FALL);
    for (key, v) in [("rise", rise), ("fall", fall)] {
        if v == 0 || v > 100 {
            c.error(&p.key(key), format!("{v} is not between 1 and 100"));
        }
    }
    let expect = h
        .expect_status
        .unwrap_or_else(|| d::HEALTH_EXPECT_STATUS.into());
    let expect_status = status_range(&expect).unwrap_or_else(|| {
        c.error(
            &p.key("expect_status"),
            format!("not a status or range: {expect:?} (write e.g. \"200\" or \"200-399\")"),
        );
        200..=399
    });
    Some(HealthConfig {
        path,
        host: h.host.unwrap_or_default(),
        interval,
        timeout,
        rise,
        fall,
        expect_status,
    })
}

fn servers(
    list: Vec<file::ServerEntry>,
    pool_slowstart: Duration,
    p: &KeyPath,
    c: &mut Collector,
) -> Vec<ServerConfig> {
    if list.is_empty() {
        c.error(
            p,
            "a pool needs at least one server ([[pools.NAME.servers]])",
        );
    }
    let mut names = HashSet::new();
    let mut addrs = HashSet::new();
    let mut out = Vec::new();
    for (i, s) in list.into_iter().enumerate() {
        let sp = p.index(i);
        let address = address(s.address.as_deref(), &mut addrs, &sp, c);
        let name = server_name(s.name, s.address, i, &mut names, &sp, c);
        let weight = weight(s.weight, &sp, c);
        out.push(ServerConfig {
            name,
            address: address.unwrap_or_else(placeholder_addr),
            weight,
            backup: s.backup.unwrap_or(false),
            slowstart: match s.slowstart {
                Some(v) => duration(Some(v), "0s", &sp.key("slowstart"), c),
                None => pool_slowstart,
            },
        });
    }
    if !out.is_empty() && out.iter().all(|s| s.backup) {
        c.error(
            p,
            "every server is a backup: at least one must be a primary",
        );
    }
    out
}

/// A server's `address`: required, and once per pool (`seen`).
fn address(
    a: Option<&str>,
    seen: &mut HashSet<SocketAddr>,
    p: &KeyPath,
    c: &mut Collector,
) -> Option<SocketAddr> {
    let address = match a {
        Some(a) => socket_addr(a, &p.key("address"), c),
        None => {
            c.error(
                &p.key("address"),
                "missing (e.g. address = \"10.0.0.1:80\")",
            );
            None
        }
    };
    if let Some(a) = address {
        if !seen.insert(a) {
            c.error(
                &p.key("address"),
                format!("{a} is listed twice in this pool"),
            );
        }
    }
    address
}

/// A server's `name`, else its address as written, else `server{i}`; once per pool (`seen`).
fn server_name(
    name: Option<String>,
    address: Option<String>,
    i: usize,
    seen: &mut HashSet<String>,
    p: &KeyPath,
    c: &mut Collector,
) -> String {
    let name = name.or(address).unwrap_or_else(|| format!("server{i}"));
    if !valid_name(&name.replace([':', '[', ']'], "")) {
        c.error(
            &p.key("name"),
            format!("{name:?}: use letters, digits, '-', '_' and '.'"),
        );
    }
    if !seen.insert(name.clone()) {
        c.error(
            &p.key("name"),
            format!("duplicate server name {name:?} in this pool"),
        );
    }
    name
}

/// A server's `weight`, held within 1 to 256 after saying so.
fn weight(w: Option<u32>, p: &KeyPath, c: &mut Collector) -> u32 {
    let weight = w.unwrap_or(d::SERVER_WEIGHT);
    if !(1..=d::MAX_SERVER_WEIGHT).contains(&weight) {
        c.error(
            &p.key("weight"),
            format!("{weight} is not between 1 and 256 (to stop traffic, put the server in maint)"),
        );
    }
    weight.clamp(1, d::MAX_SERVER_WEIGHT)
}
