//! `[[access_rules]]`, `[access]` and a route's `access` / `[[routes.access_rules]]`: each
//! rule compiled once (CIDR lists and their files into one `CidrSet`, regexes built), names
//! checked unique, references resolved to indices.

use super::super::error::{Collector, KeyPath};
use super::super::file::{AccessRuleSection, AccessSection};
use super::super::AccessConfig;
use crate::access::{self, Action, AddrMatch, HeaderMatch, Rule, ValueMatch};
use std::collections::{HashMap, HashSet};

/// Collects the rules of the whole file, in the order found.
#[derive(Default)]
pub(super) struct Builder {
    rules: Vec<Rule>,
    /// Every rule's name: unique across the file (the log and metrics name rules).
    names: HashMap<String, usize>,
    /// The names `[access]` and routes may refer to (top-level `[[access_rules]]`).
    named: HashMap<String, usize>,
    /// Named rules with errors (reported once: references to them are not errors too).
    broken: HashSet<String>,
}

impl Builder {
    /// The top-level `[[access_rules]]`.
    pub(super) fn named(&mut self, list: Vec<AccessRuleSection>, p: &KeyPath, c: &mut Collector) {
        for (i, r) in list.into_iter().enumerate() {
            let name = r.name.clone();
            match self.add(r, &p.index(i), c) {
                Some(idx) => drop(self.named.insert(self.rules[idx].name.clone(), idx)),
                None => self.broken.extend(name),
            }
        }
    }

    /// A route's rules: the named ones it refers to (`access`), then its own
    /// (`access_rules`).
    pub(super) fn route(
        &mut self,
        refs: &[String],
        own: Vec<AccessRuleSection>,
        rp: &KeyPath,
        c: &mut Collector,
    ) -> Vec<usize> {
        let mut out = self.resolve(refs, &rp.key("access"), c);
        for (i, r) in own.into_iter().enumerate() {
            out.extend(self.add(r, &rp.key("access_rules").index(i), c));
        }
        out
    }

    /// The config's rules and the global list (`[access] rules`).
    pub(super) fn finish(self, f: AccessSection, p: &KeyPath, c: &mut Collector) -> AccessConfig {
        let global = self.resolve(&f.rules, &p.key("rules"), c);
        AccessConfig {
            rules: self.rules,
            global,
        }
    }

    fn resolve(&self, refs: &[String], p: &KeyPath, c: &mut Collector) -> Vec<usize> {
        let mut out = Vec::new();
        for (i, name) in refs.iter().enumerate() {
            match self.named.get(name) {
                Some(&idx) => out.push(idx),
                None if self.broken.contains(name) => {}
                None => c.error(
                    &p.index(i),
                    format!("unknown access rule {name:?} (name one of the [[access_rules]])"),
                ),
            }
        }
        out
    }

    fn add(&mut self, r: AccessRuleSection, p: &KeyPath, c: &mut Collector) -> Option<usize> {
        let rule = rule(r, p, c)?;
        if self.names.contains_key(&rule.name) {
            c.error(
                &p.key("name"),
                format!("another access rule is already named {:?}", rule.name),
            );
            return None;
        }
        self.names.insert(rule.name.clone(), self.rules.len());
        self.rules.push(rule);
        Some(self.rules.len() - 1)
    }
}

/// One rule, compiled; None when it has errors (each reported).
fn rule(r: AccessRuleSection, p: &KeyPath, c: &mut Collector) -> Option<Rule> {
    let errors = c.errors.len();
    let name = r.name.clone().unwrap_or_default();
    if name.is_empty() || name.bytes().any(|b| !b.is_ascii_graphic()) {
        c.error(
            &p.key("name"),
            "every access rule needs a name (letters, digits, punctuation; no spaces): the log and metrics show it",
        );
    }
    let action = action(&r, p, c);
    let addr = addr(&r, p, c);
    let mut methods = Vec::new();
    for (i, m) in r.methods.iter().enumerate() {
        match http::Method::from_bytes(m.to_ascii_uppercase().as_bytes()) {
            Ok(m) => methods.push(m),
            Err(_) => c.error(&p.key("methods").index(i), format!("not a method: {m:?}")),
        }
    }
    for (i, prefix) in r.path_prefixes.iter().enumerate() {
        if !prefix.starts_with('/') {
            let at = p.key("path_prefixes").index(i);
            c.error(&at, format!("{prefix:?} must start with '/'"));
        }
    }
    let path_regex = r.path_regex.as_deref().and_then(|re| {
        regex::Regex::new(re)
            .map_err(|e| c.error(&p.key("path_regex"), format!("bad regex: {e}")))
            .ok()
    });
    let header = header(&r, p, c);
    if c.errors.len() != errors {
        return None;
    }
    Some(Rule {
        name,
        action: action?,
        addr,
        methods,
        path_prefixes: r.path_prefixes,
        path_regex,
        header,
    })
}

fn action(r: &AccessRuleSection, p: &KeyPath, c: &mut Collector) -> Option<Action> {
    match (r.action.as_deref(), r.status) {
        (None | Some("deny"), status) => {
            let status = status.unwrap_or(403);
            // A refusal: 2xx and 3xx would tell clients something else (and 204 or 304 cannot
            // carry the answer's body).
            if !(400..=599).contains(&status) {
                c.error(
                    &p.key("status"),
                    format!("{status} is not a status from 400 to 599"),
                );
                return None;
            }
            Some(Action::Deny(status))
        }
        (Some("drop"), Some(_)) => {
            c.error(
                &p.key("status"),
                "a rule with action = \"drop\" sends no answer: remove status",
            );
            None
        }
        (Some("drop"), None) => Some(Action::Drop),
        (Some(other), _) => {
            c.error(
                &p.key("action"),
                format!("{other:?}: use \"deny\" or \"drop\""),
            );
            None
        }
    }
}

/// The address condition: a deny list or an allow list (inline entries and a file), not both.
fn addr(r: &AccessRuleSection, p: &KeyPath, c: &mut Collector) -> Option<AddrMatch> {
    let deny = !r.deny_cidrs.is_empty() || r.deny_cidrs_file.is_some();
    let allow = !r.allow_cidrs.is_empty() || r.allow_cidrs_file.is_some();
    if deny && allow {
        c.error(
            &p.key("allow_cidrs"),
            "a rule has a deny list or an allow list, not both: write two rules",
        );
        return None;
    }
    let (key, list, file) = if deny {
        ("deny_cidrs", &r.deny_cidrs, &r.deny_cidrs_file)
    } else if allow {
        ("allow_cidrs", &r.allow_cidrs, &r.allow_cidrs_file)
    } else {
        return None;
    };
    let mut ranges = Vec::with_capacity(list.len());
    for (i, entry) in list.iter().enumerate() {
        match access::parse_cidr(entry.trim()) {
            Ok(range) => ranges.push(range),
            Err(e) => c.error(&p.key(key).index(i), e),
        }
    }
    if let Some(path) = file {
        let file_key = p.key(&format!("{key}_file"));
        match std::fs::read_to_string(path) {
            Ok(text) => {
                if let Err(e) = access::parse_cidr_file(&text, &mut ranges) {
                    c.error(&file_key, format!("{path}: {e}"));
                }
            }
            Err(e) => c.error(&file_key, format!("{path}: {e}")),
        }
    }
    let set = access::CidrSet::new(ranges);
    Some(if deny {
        AddrMatch::Deny(set)
    } else {
        AddrMatch::Allow(set)
    })
}

fn header(r: &AccessRuleSection, p: &KeyPath, c: &mut Collector) -> Option<HeaderMatch> {
    let Some(name) = &r.header else {
        if r.header_value.is_some() || r.header_regex.is_some() {
            c.error(
                &p.key("header"),
                "missing: the header that header_value or header_regex reads",
            );
        }
        return None;
    };
    let Ok(name) = http::HeaderName::from_bytes(name.as_bytes()) else {
        c.error(&p.key("header"), format!("not a header name: {name:?}"));
        return None;
    };
    let value = match (&r.header_value, &r.header_regex) {
        (Some(_), Some(_)) => {
            c.error(
                &p.key("header_regex"),
                "set header_value or header_regex, not both",
            );
            return None;
        }
        (Some(v), None) => match http::HeaderValue::from_str(v) {
            Ok(v) => ValueMatch::Exact(v),
            Err(_) => {
                c.error(&p.key("header_value"), format!("not a header value: {v:?}"));
                return None;
            }
        },
        (None, Some(re)) => match regex::bytes::Regex::new(re) {
            Ok(re) => ValueMatch::Regex(re),
            Err(e) => {
                c.error(&p.key("header_regex"), format!("bad regex: {e}"));
                return None;
            }
        },
        (None, None) => ValueMatch::Present,
    };
    Some(HeaderMatch::new(name, value))
}
