//! `[[rate_limits]]`, `[access] rate_limits` and a route's `rate_limits`: each limit compiled
//! once (its key, rate, burst and action), names checked unique, references resolved to
//! indices.

use super::super::error::{Collector, KeyPath};
use super::super::file::{RateLimitEntry, RateLimitSection};
use super::super::RateLimitConfig;
use super::values::duration;
use crate::ratelimit::{Action, Key, Limit, Rate};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// Keys a limit counts at once unless `max_keys` says otherwise (a few MB per limit).
const DEFAULT_MAX_KEYS: usize = 100_000;

/// Collects the limits of the whole file, in the order found.
#[derive(Default)]
pub(super) struct Builder {
    limits: Vec<Limit>,
    /// Every limit's name: unique across the file (the log and metrics name limits).
    names: HashSet<String>,
    /// The names `[access]` and routes may refer to (top-level `[[rate_limits]]`).
    named: HashMap<String, usize>,
    /// Named limits with errors (reported once: references to them are not errors too).
    broken: HashSet<String>,
}

impl Builder {
    /// The top-level `[[rate_limits]]`.
    pub(super) fn named(&mut self, list: Vec<RateLimitSection>, p: &KeyPath, c: &mut Collector) {
        for (i, l) in list.into_iter().enumerate() {
            let name = l.name.clone();
            match self.add(l, &p.index(i), c) {
                Some(idx) => drop(self.named.insert(self.limits[idx].name.clone(), idx)),
                None => self.broken.extend(name),
            }
        }
    }

    /// A route's `rate_limits`: named ones and its own, in order.
    pub(super) fn route(
        &mut self,
        list: Vec<RateLimitEntry>,
        p: &KeyPath,
        c: &mut Collector,
    ) -> Vec<usize> {
        let mut out = Vec::new();
        for (i, entry) in list.into_iter().enumerate() {
            out.extend(match entry {
                RateLimitEntry::Named(name) => self.resolve(&name, &p.index(i), c),
                RateLimitEntry::Own(l) => self.add(l, &p.index(i), c),
            });
        }
        let mut seen = HashSet::new();
        for &l in &out {
            if !seen.insert(l) {
                let name = &self.limits[l].name;
                c.error(
                    p,
                    format!("rate limit {name:?} listed twice: a request would be counted twice"),
                );
            }
        }
        out
    }

    /// The config's limits and the global list (`[access] rate_limits`).
    pub(super) fn finish(
        self,
        global: &[String],
        p: &KeyPath,
        c: &mut Collector,
    ) -> RateLimitConfig {
        let global = global
            .iter()
            .enumerate()
            .filter_map(|(i, name)| self.resolve(name, &p.index(i), c))
            .collect();
        RateLimitConfig {
            limits: self.limits,
            global,
        }
    }

    fn resolve(&self, name: &str, p: &KeyPath, c: &mut Collector) -> Option<usize> {
        let found = self.named.get(name).copied();
        if found.is_none() && !self.broken.contains(name) {
            c.error(
                p,
                format!("unknown rate limit {name:?} (name one of the [[rate_limits]])"),
            );
        }
        found
    }

    fn add(&mut self, l: RateLimitSection, p: &KeyPath, c: &mut Collector) -> Option<usize> {
        let limit = limit(l, p, c)?;
        if !self.names.insert(limit.name.clone()) {
            c.error(
                &p.key("name"),
                format!("another rate limit is already named {:?}", limit.name),
            );
            return None;
        }
        self.limits.push(limit);
        Some(self.limits.len() - 1)
    }
}

/// A route's limits that `[access] rate_limits` lists too: an error each, since a request
/// would be counted twice.
pub(super) fn no_overlap(
    limits: &RateLimitConfig,
    routes: &[super::super::RouteConfig],
    p: &KeyPath,
    c: &mut Collector,
) {
    for (i, r) in routes.iter().enumerate() {
        for l in r.rate_limits.iter().filter(|l| limits.global.contains(l)) {
            let name = &limits.limits[*l].name;
            c.error(
                &p.index(i).key("rate_limits"),
                format!("rate limit {name:?} is in [access] rate_limits too: a request would be counted twice"),
            );
        }
    }
}

/// One limit, compiled; None when it has errors (each reported).
fn limit(l: RateLimitSection, p: &KeyPath, c: &mut Collector) -> Option<Limit> {
    let errors = c.errors.len();
    for key in l.unknown.keys() {
        c.error(&p.key(key), "unknown key");
    }
    let name = l.name.clone().unwrap_or_default();
    if name.is_empty() || name.bytes().any(|b| !b.is_ascii_graphic()) {
        c.error(
            &p.key("name"),
            "every rate limit needs a name (letters, digits, punctuation; no spaces): the log and metrics show it",
        );
    }
    let key = key(&l, p, c);
    let (count, window) = rate(l.rate.as_deref(), &p.key("rate"), c)?;
    let burst = l.burst.unwrap_or(count);
    if burst == 0 {
        c.error(
            &p.key("burst"),
            "at least 1: how many requests may come at once",
        );
    }
    let action = action(&l, p, c);
    let max_keys = l.max_keys.unwrap_or(DEFAULT_MAX_KEYS);
    if max_keys == 0 {
        c.error(&p.key("max_keys"), "at least 1");
    }
    if c.errors.len() != errors {
        return None;
    }
    Some(Limit {
        name,
        key: key?,
        rate_text: l.rate.unwrap_or_default(),
        rate: Rate {
            burst,
            ..Rate::per(count, window)
        },
        action: action?,
        status: l.status.unwrap_or(429),
        dry_run: l.dry_run.unwrap_or(false),
        max_keys,
    })
}

fn key(l: &RateLimitSection, p: &KeyPath, c: &mut Collector) -> Option<Key> {
    let key = l.key.as_deref().unwrap_or("client");
    // A host usually has a whole /64 to itself: counting single IPv6 addresses would let one
    // client be 2^64 of them.
    let (v4, v6) = (l.ipv4_prefix.unwrap_or(32), l.ipv6_prefix.unwrap_or(64));
    if v4 > 32 {
        c.error(
            &p.key("ipv4_prefix"),
            format!("{v4} is not a prefix length (0 to 32)"),
        );
    }
    if v6 > 128 {
        c.error(
            &p.key("ipv6_prefix"),
            format!("{v6} is not a prefix length (0 to 128)"),
        );
    }
    let not_client = || l.ipv4_prefix.is_some() || l.ipv6_prefix.is_some();
    let parsed = match key.split_once(':') {
        None if key == "client" => return Some(Key::Client { v4, v6 }),
        Some(("header", name)) => http::HeaderName::from_bytes(name.trim().as_bytes())
            .ok()
            .map(Key::Header),
        Some(("cookie", name)) => {
            let name = name.trim();
            let token = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && !b"=;,\"".contains(&b));
            token.then(|| Key::Cookie(name.to_string()))
        }
        _ => None,
    };
    if parsed.is_none() {
        c.error(
            &p.key("key"),
            format!("{key:?} is not a key: write \"client\", \"header:NAME\" or \"cookie:NAME\""),
        );
    } else if not_client() {
        c.error(
            &p.key("key"),
            "ipv4_prefix and ipv6_prefix apply to key = \"client\" only",
        );
    }
    parsed
}

/// `"100/10s"`: a count of requests per window (`"5/m"` and `"5/1m"` alike).
pub(super) fn rate(v: Option<&str>, p: &KeyPath, c: &mut Collector) -> Option<(u64, Duration)> {
    let Some(v) = v else {
        c.error(
            p,
            "missing: the rate, as requests per window (e.g. \"100/10s\")",
        );
        return None;
    };
    let parsed = v.split_once('/').and_then(|(n, w)| {
        let n: u64 = n.trim().parse().ok().filter(|&n| n > 0)?;
        let w = w.trim();
        let w = if w.starts_with(|ch: char| ch.is_ascii_digit()) {
            w.to_string()
        } else {
            format!("1{w}")
        };
        let window = humantime::parse_duration(&w)
            .ok()
            .filter(|d| !d.is_zero())?;
        Some((n, window))
    });
    if parsed.is_none() {
        c.error(
            p,
            format!("not a rate: {v:?} (write requests per window, e.g. \"100/10s\", \"5/1m\")"),
        );
    }
    parsed
}

fn action(l: &RateLimitSection, p: &KeyPath, c: &mut Collector) -> Option<Action> {
    let status = l.status.unwrap_or(429);
    if !(400..=599).contains(&status) {
        c.error(
            &p.key("status"),
            format!("{status} is not a status from 400 to 599"),
        );
        return None;
    }
    let max_delay = l.max_delay.clone();
    match l.action.as_deref().unwrap_or("deny") {
        "deny" | "close" if max_delay.is_some() => {
            c.error(&p.key("max_delay"), "only with action = \"delay\"");
            None
        }
        "deny" => Some(Action::Deny),
        "close" if l.status.is_some() => {
            c.error(
                &p.key("status"),
                "action = \"close\" answers nothing: no status",
            );
            None
        }
        "close" => Some(Action::Close),
        "delay" => {
            let d = duration(max_delay, "1s", &p.key("max_delay"), c);
            Some(Action::Delay(d))
        }
        other => {
            c.error(
                &p.key("action"),
                format!("{other:?} is not an action: write \"deny\", \"delay\" or \"close\""),
            );
            None
        }
    }
}
