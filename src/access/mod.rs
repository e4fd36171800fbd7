//! Access rules: the compiled rules a config carries (`[[access_rules]]`, built by
//! `config::validate::access`) and the match of one request against an ordered list of them.
//! `proxy::access` runs the check for every request and gives the answer.
//!
//! Semantics: a rule refuses a request when every condition it sets holds (an empty rule
//! refuses everything); within one condition, any entry matching is enough. Rules are checked
//! in order and the first that refuses decides, its action answering (`status`, or a drop).
//! The address condition is either a deny list (the client is in it) or an allow list (the
//! client is *not* in it: "only these addresses"). Path conditions hold when they hold on
//! either reading of the path `crate::request_path` gives (as most servers read it, and as
//! Tomcat or IIS do); methods compare without case; a header condition also reads the name
//! with `_` for `-` (`User_Agent`), which CGI-style servers take as the same header. Everything is compiled at config load;
//! a check allocates nothing (but a path to normalize) and a CIDR list is a binary search.

mod cidr;

pub use cidr::{
    network, parse as parse_cidr, parse_file as parse_cidr_file, point as cidr_point, CidrSet,
};

use http::{HeaderMap, HeaderName, HeaderValue, Method};
use std::net::IpAddr;

/// What a refusing rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Answer with this status (403 unless set).
    Deny(u16),
    /// No answer: the HTTP/1 connection is closed (with a reset), an HTTP/2 stream is reset
    /// with CANCEL.
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

/// A header condition: it holds when any value of `name` matches, or of `alias`: the name
/// spelt with `_` for `-`, which CGI, PHP-FPM and WSGI servers read as the same header.
#[derive(Debug, Clone)]
pub struct HeaderMatch {
    pub name: HeaderName,
    pub alias: Option<HeaderName>,
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
    /// The path, without the query, as most servers read it (`request_path::normalized`).
    pub path: &'a str,
    /// The lenient reading, where it differs (`request_path::lenient`).
    pub lenient_path: Option<&'a str>,
    pub headers: &'a HeaderMap,
}

impl Rule {
    /// Whether the rule refuses `req`: every condition set holds. The cheap conditions are
    /// checked first, the regexes last.
    pub fn refuses(&self, req: &Request) -> bool {
        (self.methods.is_empty()
            || self
                .methods
                .iter()
                .any(|m| m.as_str().eq_ignore_ascii_case(req.method.as_str())))
            && self.addr.as_ref().is_none_or(|a| a.holds(req.client))
            && (self.path_holds(req.path) || req.lenient_path.is_some_and(|p| self.path_holds(p)))
            && self.header.as_ref().is_none_or(|h| h.holds(req.headers))
    }

    /// Whether the path conditions hold for one reading of the path.
    fn path_holds(&self, path: &str) -> bool {
        (self.path_prefixes.is_empty() || self.path_prefixes.iter().any(|p| path.starts_with(p)))
            && self.path_regex.as_ref().is_none_or(|r| r.is_match(path))
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
    pub fn new(name: HeaderName, value: ValueMatch) -> HeaderMatch {
        let underscored = name.as_str().replace('-', "_");
        let alias = (underscored != name.as_str())
            .then(|| HeaderName::from_bytes(underscored.as_bytes()).ok())
            .flatten();
        HeaderMatch { name, alias, value }
    }

    fn holds(&self, headers: &HeaderMap) -> bool {
        let alias = self.alias.as_ref().map(|a| headers.get_all(a).iter());
        let mut values = headers
            .get_all(&self.name)
            .iter()
            .chain(alias.into_iter().flatten());
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
            lenient_path: None,
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
        r.header = Some(HeaderMatch::new(
            HeaderName::from_static("user-agent"),
            ValueMatch::Regex(regex::bytes::Regex::new("(?i)sqlmap").unwrap()),
        ));
        assert!(check(
            &r,
            "::1",
            "GET",
            "/",
            &[("user-agent", "SQLMap/1.0")]
        ));
        assert!(!check(&r, "::1", "GET", "/", &[("user-agent", "curl")]));
        assert!(!check(&r, "::1", "GET", "/", &[]));
        r.header = Some(HeaderMatch::new(
            HeaderName::from_static("x-debug"),
            ValueMatch::Exact(HeaderValue::from_static("1")),
        ));
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
            lenient_path: None,
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
