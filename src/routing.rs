//! Routing: which route (and so which pool) a request's host and path select.
//!
//! Built once per config from `Config::routes`. A lookup is one hash probe for the exact host,
//! one per parent domain for wildcards, and a walk of that host's few path prefixes, longest
//! first. Host matching is case-insensitive and ignores the port.

use crate::config::{HostPattern, RouteConfig};
use std::collections::HashMap;

#[derive(Debug, Clone)]
struct Entry {
    prefix: String,
    route: usize,
}

/// Host + path prefix → route index.
#[derive(Debug, Default)]
pub struct Router {
    exact: HashMap<String, Vec<Entry>>,
    /// Keyed by the suffix with its leading dot: `*.example.com` → `.example.com`.
    wildcard: HashMap<String, Vec<Entry>>,
    any: Vec<Entry>,
}

impl Router {
    pub fn new(routes: &[RouteConfig]) -> Router {
        let mut r = Router::default();
        for (ix, route) in routes.iter().enumerate() {
            let entry = Entry {
                prefix: route.path_prefix.clone(),
                route: ix,
            };
            if route.hosts.is_empty() {
                r.any.push(entry.clone());
            }
            for host in &route.hosts {
                let list = match host {
                    HostPattern::Exact(h) => r.exact.entry(h.clone()).or_default(),
                    HostPattern::Wildcard(s) => r.wildcard.entry(s.clone()).or_default(),
                };
                list.push(entry.clone());
            }
        }
        let longest_first =
            |v: &mut Vec<Entry>| v.sort_by_key(|e| std::cmp::Reverse(e.prefix.len()));
        r.exact.values_mut().for_each(longest_first);
        r.wildcard.values_mut().for_each(longest_first);
        longest_first(&mut r.any);
        r
    }

    /// The route for `host` (as sent: may carry a port and upper case) and `path`.
    /// The route of a request: its host (port and a trailing dot ignored, no case) and its
    /// path as most servers read it (`request_path::normalized`: `//api` and `/%61pi` are
    /// `/api`), so a route's rules are not dodged by spelling its prefix another way (a path
    /// lenient servers read as another route's is refused by `proxy::recv`).
    pub fn route(&self, host: Option<&str>, path: &str) -> Option<usize> {
        let path = crate::request_path::normalized(path);
        let path: &str = &path;
        if let Some(host) = host.map(normalize_host) {
            let host: &str = &host;
            if let Some(found) = self.exact.get(host).and_then(|e| by_prefix(e, path)) {
                return Some(found);
            }
            if !self.wildcard.is_empty() {
                let mut rest = host;
                while let Some(dot) = rest.find('.') {
                    let suffix = &rest[dot..];
                    if let Some(found) = self.wildcard.get(suffix).and_then(|e| by_prefix(e, path))
                    {
                        return Some(found);
                    }
                    rest = &rest[dot + 1..];
                }
            }
        }
        by_prefix(&self.any, path)
    }
}

fn by_prefix(entries: &[Entry], path: &str) -> Option<usize> {
    entries
        .iter()
        .find(|e| path.starts_with(e.prefix.as_str()))
        .map(|e| e.route)
}

/// `host` without its `:port` (IPv6 literals keep their brackets).
pub fn host_without_port(host: &str) -> &str {
    if host.starts_with('[') {
        host.find(']').map_or(host, |end| &host[..=end])
    } else {
        // The first colon, as nginx cuts it: `a.test:80:80` is `a.test`, the server nginx
        // (and most frameworks) would choose, not a host no route names.
        host.split_once(':').map_or(host, |(h, _port)| h)
    }
}

/// Strips the port and a trailing dot; lower-cases only when needed (no allocation otherwise).
fn normalize_host(host: &str) -> std::borrow::Cow<'_, str> {
    let host = host_without_port(host);
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(host.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(hosts: &[&str], prefix: &str) -> RouteConfig {
        RouteConfig {
            name: String::new(),
            hosts: hosts
                .iter()
                .map(|h| match h.strip_prefix('*') {
                    Some(s) => HostPattern::Wildcard(s.to_string()),
                    None => HostPattern::Exact(h.to_string()),
                })
                .collect(),
            path_prefix: prefix.to_string(),
            pool: 0,
            cache: None,
            readonly: crate::config::RouteReadonly::Inherit,
            allow_upgrade: false,
            access: Vec::new(),
            rate_limits: Vec::new(),
            compression: None,
        }
    }

    #[test]
    fn exact_then_wildcard_then_any_longest_prefix_first() {
        let r = Router::new(&[
            route(&["a.example.com"], "/"),
            route(&["a.example.com"], "/api"),
            route(&["*.example.com"], "/"),
            route(&[], "/"),
        ]);
        assert_eq!(r.route(Some("a.example.com"), "/x"), Some(0));
        assert_eq!(r.route(Some("A.Example.com:8080"), "/api/v1"), Some(1));
        assert_eq!(r.route(Some("b.example.com"), "/api"), Some(2));
        assert_eq!(r.route(Some("deep.b.example.com."), "/"), Some(2));
        assert_eq!(r.route(Some("example.com"), "/"), Some(3));
        assert_eq!(r.route(None, "/"), Some(3));
    }

    #[test]
    fn no_default_means_none() {
        let r = Router::new(&[route(&["a.test"], "/")]);
        assert_eq!(r.route(Some("b.test"), "/"), None);
        assert_eq!(r.route(Some("[::1]:80"), "/"), None);
    }
}
