//! `[cluster]`: the etcd cluster this node shares runtime state through, and who it is there.

use super::super::defaults as d;
use super::super::error::{Collector, KeyPath};
use super::super::file;
use super::super::*;
use super::values::{duration, valid_name};

pub(super) fn cluster(f: file::ClusterSection, p: &KeyPath, c: &mut Collector) -> ClusterConfig {
    let name = required_name(f.name, "name", p, c);
    let node = required_name(f.node, "node", p, c);
    endpoints(&f.etcd_endpoints, &p.key("etcd_endpoints"), c);
    let prefix = prefix(f.prefix, &p.key("prefix"), c);
    let https = f.etcd_endpoints.iter().any(|e| e.starts_with("https://"));
    let (ca_file, identity) = tls_files(https, f.ca_file, f.cert_file, f.key_file, p, c);
    let credentials = credentials(f.user, f.password_file, p, c);
    let node_ttl = duration(f.node_ttl, d::CLUSTER_NODE_TTL, &p.key("node_ttl"), c);
    if node_ttl < Duration::from_secs(3) {
        c.error(&p.key("node_ttl"), "must be at least 3s (an etcd lease)");
    }
    let mut positive = |v: Option<String>, default: &str, key: &str| {
        let d = duration(v, default, &p.key(key), c);
        if d.is_zero() {
            c.error(&p.key(key), "must be more than 0");
        }
        d
    };
    ClusterConfig {
        name,
        node,
        etcd_endpoints: f.etcd_endpoints,
        prefix,
        dial_timeout: positive(f.dial_timeout, d::CLUSTER_DIAL_TIMEOUT, "dial_timeout"),
        request_timeout: positive(
            f.request_timeout,
            d::CLUSTER_REQUEST_TIMEOUT,
            "request_timeout",
        ),
        node_ttl,
        ca_file,
        identity,
        credentials,
    }
}

/// `etcd_endpoints`: at least one, each `endpoint`.
fn endpoints(list: &[String], p: &KeyPath, c: &mut Collector) {
    if list.is_empty() {
        c.error(
            p,
            "list at least one etcd endpoint, e.g. [\"http://10.0.0.1:2379\"]",
        );
    }
    for (i, e) in list.iter().enumerate() {
        if let Err(why) = endpoint(e) {
            c.error(&p.index(i), format!("{e:?}: {why}"));
        }
    }
}

/// `prefix`: the key path every key of the cluster is under.
fn prefix(v: Option<String>, p: &KeyPath, c: &mut Collector) -> String {
    let prefix = v.unwrap_or_else(|| d::CLUSTER_PREFIX.into());
    if !prefix.starts_with('/') || prefix.ends_with('/') || prefix.contains("//") {
        c.error(
            p,
            format!("{prefix:?}: write a key path such as \"/gatehouse\" (leading '/', none at the end)"),
        );
    }
    prefix
}

/// The CA that signed etcd's certificates (needed with `https` endpoints), and this node's
/// client certificate and key: files that must be readable.
fn tls_files(
    https: bool,
    ca_file: Option<String>,
    cert_file: Option<String>,
    key_file: Option<String>,
    p: &KeyPath,
    c: &mut Collector,
) -> (Option<PathBuf>, Option<(PathBuf, PathBuf)>) {
    if https && ca_file.is_none() {
        c.error(
            &p.key("ca_file"),
            "https endpoints need ca_file: the CA that signed etcd's certificates",
        );
    }
    let readable = |key: &str, v: Option<String>, c: &mut Collector| {
        if let Some(path) = &v {
            if let Err(e) = std::fs::metadata(path) {
                c.error(&p.key(key), format!("{path}: {e}"));
            }
        }
        v.map(PathBuf::from)
    };
    let ca_file = readable("ca_file", ca_file, c);
    let identity = match (
        readable("cert_file", cert_file, c),
        readable("key_file", key_file, c),
    ) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        _ => {
            c.error(&p.key("cert_file"), "set cert_file and key_file together");
            None
        }
    };
    (ca_file, identity)
}

fn required_name(v: Option<String>, key: &str, p: &KeyPath, c: &mut Collector) -> String {
    match v {
        Some(n) if valid_name(&n) => n,
        Some(n) => {
            c.error(
                &p.key(key),
                format!("{n:?}: use letters, digits, '-', '_' and '.'"),
            );
            n
        }
        None => {
            c.error(&p.key(key), "required in [cluster]");
            String::new()
        }
    }
}

/// `http://host:port` or `https://host:port`, nothing else.
fn endpoint(e: &str) -> Result<(), &'static str> {
    let uri: http::Uri = e.parse().map_err(|_| "not a URL")?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err("must start with http:// or https://");
    }
    let authority = uri.authority().ok_or("no host")?;
    if authority.port_u16().is_none() {
        return Err("give the port, e.g. :2379");
    }
    if uri.path() != "/" && !uri.path().is_empty() {
        return Err("no path after host:port");
    }
    Ok(())
}

fn credentials(
    user: Option<String>,
    password_file: Option<String>,
    p: &KeyPath,
    c: &mut Collector,
) -> Option<(String, Secret)> {
    match (user, password_file) {
        (None, None) => None,
        (Some(user), Some(file)) => match std::fs::read_to_string(&file) {
            Ok(pw) => Some((user, Secret(pw.trim_end_matches(['\r', '\n']).into()))),
            Err(e) => {
                c.error(&p.key("password_file"), format!("{file}: {e}"));
                None
            }
        },
        _ => {
            c.error(&p.key("user"), "set user and password_file together");
            None
        }
    }
}
