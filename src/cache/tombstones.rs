//! What this node invalidated, and when: a copy made before an invalidation that names it is
//! never stored again, whether it comes back from a snapshot or from a peer that has not
//! applied the invalidation yet (`Cache::restore`).

use super::purge::Invalidation;
use super::store::Entry;
use pingora::cache::key::HashBinary;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::SystemTime;

/// Invalidations remembered; past this, copies older than the oldest forgotten one are all
/// refused (`floor`).
const KEPT: usize = 10_000;

enum Matcher {
    Invalidation(Invalidation, Option<regex::Regex>),
    /// A URL's every variant (an unsafe request's invalidation, RFC 9111 §4.4).
    Primary(HashBinary),
}

#[derive(Default)]
pub struct Tombstones {
    log: Mutex<Log>,
}

#[derive(Default)]
struct Log {
    kept: VecDeque<(SystemTime, Matcher)>,
    floor: Option<SystemTime>,
}

impl Tombstones {
    pub fn invalidated(&self, at: SystemTime, inv: &Invalidation) {
        let re = match inv {
            Invalidation::BanRegex { regex, .. } => regex::Regex::new(regex).ok(),
            _ => None,
        };
        self.push(at, Matcher::Invalidation(inv.clone(), re));
    }

    pub fn invalidated_primary(&self, primary: HashBinary) {
        self.push(SystemTime::now(), Matcher::Primary(primary));
    }

    fn push(&self, at: SystemTime, m: Matcher) {
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        if log.kept.len() >= KEPT {
            if let Some((t, _)) = log.kept.pop_front() {
                log.floor = Some(log.floor.map_or(t, |f| f.max(t)));
            }
        }
        log.kept.push_back((at, m));
    }

    /// Whether `entry` was made before an invalidation that names it.
    pub fn refuse(&self, entry: &Entry) -> bool {
        let made = entry.created();
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        if log.floor.is_some_and(|f| made <= f) {
            return true;
        }
        log.kept
            .iter()
            .filter(|(at, _)| made <= *at)
            .any(|(_, m)| names(m, entry))
    }
}

fn names(m: &Matcher, entry: &Entry) -> bool {
    let origin = entry.origin.as_ref();
    let host_is = |h: &Option<String>, o: &super::store::KeyOrigin| {
        h.as_deref().is_none_or(|h| *o.host == *super::key::host(h))
    };
    match m {
        Matcher::Primary(p) => entry.primary == *p,
        // An object whose URL is not known cannot be told apart: refused.
        Matcher::Invalidation(..) if origin.is_none() => true,
        Matcher::Invalidation(Invalidation::Purge { host, path }, _) => {
            origin.is_some_and(|o| *o.host == *super::key::host(host) && *o.path == **path)
        }
        Matcher::Invalidation(Invalidation::BanPrefix { host, prefix }, _) => {
            origin.is_some_and(|o| host_is(host, o) && o.path.starts_with(prefix.as_str()))
        }
        Matcher::Invalidation(Invalidation::BanRegex { host, .. }, re) => origin
            .is_some_and(|o| host_is(host, o) && re.as_ref().is_none_or(|re| re.is_match(&o.path))),
    }
}
