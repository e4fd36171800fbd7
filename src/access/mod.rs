//! Access rules: the compiled rules a config carries (`[[access_rules]]`, built by
//! `config::validate::access`) and the match of one request against an ordered list of them.
//! `proxy::access` runs the check for every request and gives the answer.
//!
//! Semantics: a rule refuses a request when every condition it sets holds (an empty rule
//! refuses everything); within one condition, any entry matching is enough. Rules are checked
//! in order and the first that refuses decides, its action answering (`status`, or a drop).
//! The address condition is either a deny list (the client is in it) or an allow list (the
//! client is *not* in it: "only these addresses"). Path conditions read the path as servers
//! do (`path`: escapes decoded, dot segments resolved). Everything is compiled at config load;
//! a check allocates nothing (but a path to normalize) and a CIDR list is a binary search.

mod cidr;
mod path;

pub use cidr::{parse as parse_cidr, parse_file as parse_cidr_file, CidrSet};
pub use path::normalized as normalized_path;

use http::{HeaderMap, HeaderName, HeaderValue, Method};
use std::net::IpAddr;

/// What a refusing rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Answer with this status (403 unless set).
    Deny(u16),
    /// No answer: the HTTP/1 connection is closed (with a reset), an HTTP/2 stream is reset
    /// with REFUSED_STREAM.
    Drop,
}

/// The client-address condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddrMatch {
    /// Holds for clients inside the set.
    Deny(CidrSet),
    /// Holds for clients outside the set (and for a request without an IP peer).
    Allow(CidrSet),
}

/// A header condition: it holds when any value of `name` matches.
#[derive(Debug, Clone)]
pub struct HeaderMatch {
    pub name: HeaderName,
    pub value: ValueMatch,
}

#[derive(Debug, Clone)]
pub enum ValueMatch {
    /// The header is present.
    Present,
    Exact(HeaderValue),
    Regex(regex::bytes::Regex),
}

/// One compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub action: Action,
    pub addr: Option<AddrMatch>,
    pub methods: Vec<Method>,
    pub path_prefixes: Vec<String>,
    pub path_regex: Option<regex::Regex>,
    pub header: Option<HeaderMatch>,
}

/// What a rule reads of a request.
pub struct Request<'a> {
    /// The client's address (`proxy::forward::client_ip`).
    pub client: Option<IpAddr>,
    pub method: &'a Method,
    /// The path, without the query, normalized (`normalized_path`).
    pub path: &'a str,
    pub headers: &'a HeaderMap,
}

impl Rule {
    /// Whether the rule refuses `req`: every condition set holds. The cheap conditions are
    /// checked first, the regexes last.
    pub fn refuses(&self, req: &Request) -> bool {
        (self.methods.is_empty() || self.methods.contains(req.method))
            && (self.path_prefixes.is_empty()
                || self.path_prefixes.iter().any(|p| req.path.starts_with(p)))
            && self.addr.as_ref().is_none_or(|a| a.holds(req.client))
            && self.header.as_ref().is_none_or(|h| h.holds(req.headers))
            && self
                .path_regex
                .as_ref()
                .is_none_or(|r| r.is_match(req.path))
    }
}

impl AddrMatch {
    fn holds(&self, client: Option<IpAddr>) -> bool {
        match (self, client) {
            (AddrMatch::Deny(set), Some(ip)) => set.contains(ip),
            (AddrMatch::Deny(_), None) => false,
            (AddrMatch::Allow(set), Some(ip)) => !set.contains(ip),
            (AddrMatch::Allow(_), None) => true,
        }
    }
}

impl HeaderMatch {
    fn holds(&self, headers: &HeaderMap) -> bool {
        let mut values = headers.get_all(&self.name).iter();
        match &self.value {
            ValueMatch::Present => values.next().is_some(),
            ValueMatch::Exact(v) => values.any(|x| x == v),
            ValueMatch::Regex(r) => values.any(|x| r.is_match(x.as_bytes())),
        }
    }
}

/// The first rule of `list` (indices into `rules`) that refuses `req`: its index.
pub fn first_refusal(rules: &[Rule], list: &[usize], req: &Request) -> Option<usize> {
    list.iter().copied().find(|&i| rules[i].refuses(req))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule() -> Rule {
        Rule {
            name: "r".into(),
            action: Action::Deny(403),
            addr: None,
            methods: Vec::new(),
            path_prefixes: Vec::new(),
            path_regex: None,
            header: None,
        }
    }

    fn check(r: &Rule, client: &str, method: &str, path: &str, headers: &[(&str, &str)]) -> bool {
        let mut map = HeaderMap::new();
        for (n, v) in headers {
            map.append(
                HeaderName::from_bytes(n.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        r.refuses(&Request {
            client: Some(client.parse().unwrap()),
            method: &method,
            path,
            headers: &map,
        })
    }

    fn set(e: &str) -> CidrSet {
        CidrSet::new(vec![parse_cidr(e).unwrap()])
    }

    #[test]
    fn every_condition_set_must_hold() {
        let mut r = rule();
        assert!(
            check(&r, "10.0.0.1", "GET", "/", &[]),
            "an empty rule refuses all"
        );
        r.path_prefixes = vec!["/admin".into()];
        r.addr = Some(AddrMatch::Allow(set("10.0.0.0/8")));
        assert!(check(&r, "192.0.2.1", "GET", "/admin/x", &[]));
        assert!(
            !check(&r, "10.9.9.9", "GET", "/admin/x", &[]),
            "inside the allow list"
        );
        assert!(
            !check(&r, "192.0.2.1", "GET", "/public", &[]),
            "another path"
        );
        r.methods = vec![Method::POST];
        assert!(!check(&r, "192.0.2.1", "GET", "/admin/x", &[]));
        assert!(check(&r, "192.0.2.1", "POST", "/admin/x", &[]));
    }

    #[test]
    fn headers_and_regexes() {
        let mut r = rule();
        r.header = Some(HeaderMatch {
            name: HeaderName::from_static("user-agent"),
            value: ValueMatch::Regex(regex::bytes::Regex::new("(?i)sqlmap").unwrap()),
        });
        assert!(check(
            &r,
            "::1",
            "GET",
            "/",
            &[("user-agent", "SQLMap/1.0")]
        ));
        assert!(!check(&r, "::1", "GET", "/", &[("user-agent", "curl")]));
        assert!(!check(&r, "::1", "GET", "/", &[]));
        r.header = Some(HeaderMatch {
            name: HeaderName::from_static("x-debug"),
            value: ValueMatch::Exact(HeaderValue::from_static("1")),
        });
        assert!(check(
            &r,
            "::1",
            "GET",
            "/",
            &[("x-debug", "0"), ("x-debug", "1")]
        ));
        r.header = None;
        r.path_regex = Some(regex::Regex::new(r"\.(env|git)(/|$)").unwrap());
        assert!(check(&r, "::1", "GET", "/app/.env", &[]));
        assert!(!check(&r, "::1", "GET", "/environment", &[]));
    }

    #[test]
    fn the_first_refusing_rule_decides() {
        let mut a = rule();
        a.addr = Some(AddrMatch::Deny(set("10.0.0.0/8")));
        let mut b = rule();
        b.methods = vec![Method::TRACE];
        let rules = [a, b];
        let get = Method::GET;
        let headers = HeaderMap::new();
        let req = |ip: &str, method| Request {
            client: Some(ip.parse().unwrap()),
            method,
            path: "/",
            headers: &headers,
        };
        assert_eq!(
            first_refusal(&rules, &[0, 1], &req("10.0.0.1", &Method::TRACE)),
            Some(0)
        );
        assert_eq!(
            first_refusal(&rules, &[1, 0], &req("10.0.0.1", &Method::TRACE)),
            Some(1)
        );
        assert_eq!(first_refusal(&rules, &[0, 1], &req("11.0.0.1", &get)), None);
        assert_eq!(first_refusal(&rules, &[1], &req("10.0.0.1", &get)), None);
    }
}
