//! Address blocks set at runtime (`POST /api/blocks`, `gatehouse ctl block`): the list every
//! request's client is checked against first, before the access rules. Each block has an
//! expiry; with `[cluster]` the blocks are shared through etcd (each on a lease that ends with
//! it) and every node applies them, otherwise they are kept in the state file. A block is
//! named by its network (`203.0.113.0/24`): blocking it again replaces it.
//!
//! The check is one lookup in a sorted range table (`access::CidrSet`) of every block, expired
//! or not, and only for a client inside it a walk of the list (ranges parsed once) for the
//! block that holds it and has not expired: expiry needs no timer, and a request from an
//! unblocked client pays one binary search (none while the list is empty). Changes replace the
//! whole list (`ArcSwap::rcu`, so two at once both land): blocks are set by people and
//! scripts, a few a second at most.

use crate::access::{parse_cidr, CidrSet};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// One block, as the API, the state file and etcd hold it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    /// The network, canonical (`203.0.113.0/24`, `2001:db8::/32`, `192.0.2.7/32`).
    pub cidr: String,
    /// Unix seconds when it ends.
    pub until: u64,
    #[serde(default)]
    pub reason: String,
    /// Who set it (the `X-Gatehouse-By` header of the call).
    #[serde(default)]
    pub by: String,
    /// Unix seconds when it was set.
    #[serde(default)]
    pub at: u64,
}

/// The network a caller names (`203.0.113.7/24`, `2001:db8::1`), canonical: host bits cleared,
/// a bare address as a /32 or /128.
pub fn canonical(cidr: &str) -> Result<String, String> {
    Ok(crate::access::network(cidr.trim())?.trunc().to_string())
}

/// The key of a block in etcd and in API paths: its network with `_` for `/`.
pub fn id(cidr: &str) -> String {
    cidr.replace('/', "_")
}

/// The blocks in force, with their lookup table.
#[derive(Debug, Default)]
pub struct Blocks {
    /// Sorted by network, one per network, each with its range.
    list: Vec<(Block, (u128, u128))>,
    set: CidrSet,
}

impl Blocks {
    /// The blocks of `list` that have not ended at `now` (one per network: the last wins, so
    /// an ended block replacing a running one ends it).
    pub fn new(list: impl IntoIterator<Item = Block>, now: u64) -> Blocks {
        let mut by_network = std::collections::BTreeMap::new();
        for b in list {
            by_network.insert(b.cidr.clone(), b);
        }
        let list: Vec<(Block, (u128, u128))> = by_network
            .into_values()
            .filter(|b| b.until > now)
            .filter_map(|b| parse_cidr(&b.cidr).ok().map(|r| (b, r)))
            .collect();
        let set = CidrSet::new(list.iter().map(|(_, r)| *r).collect());
        Blocks { list, set }
    }

    /// No block at all (expired ones included until the list next changes).
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The block that holds `client` at `now`, if any.
    pub fn matching(&self, client: IpAddr, now: u64) -> Option<&Block> {
        if self.set.is_empty() || !self.set.contains(client) {
            return None;
        }
        let point = crate::access::cidr_point(client);
        self.list
            .iter()
            .find(|(b, (lo, hi))| b.until > now && (*lo..=*hi).contains(&point))
            .map(|(b, _)| b)
    }

    /// The blocks that have not ended at `now`.
    pub fn active(&self, now: u64) -> Vec<Block> {
        self.blocks().filter(|b| b.until > now).cloned().collect()
    }

    fn blocks(&self) -> impl Iterator<Item = &Block> {
        self.list.iter().map(|(b, _)| b)
    }

    /// These blocks with `block` added (or replacing the one of its network).
    pub fn with(&self, block: Block, now: u64) -> Blocks {
        Blocks::new(self.blocks().cloned().chain([block]), now)
    }

    /// These blocks without the one of network `cidr`; None when there was none.
    pub fn without(&self, cidr: &str, now: u64) -> Option<Blocks> {
        let found = self.blocks().any(|b| b.cidr == cidr && b.until > now);
        found.then(|| Blocks::new(self.blocks().filter(|b| b.cidr != cidr).cloned(), now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(cidr: &str, until: u64) -> Block {
        Block {
            cidr: canonical(cidr).unwrap(),
            until,
            reason: String::new(),
            by: String::new(),
            at: 0,
        }
    }

    #[test]
    fn networks_are_named_canonically() {
        assert_eq!(canonical("203.0.113.77/24").unwrap(), "203.0.113.0/24");
        assert_eq!(canonical(" 192.0.2.7 ").unwrap(), "192.0.2.7/32");
        assert_eq!(canonical("2001:db8::1/32").unwrap(), "2001:db8::/32");
        assert!(canonical("10.0.0.300/8").is_err());
        assert_eq!(id("203.0.113.0/24"), "203.0.113.0_24");
    }

    #[test]
    fn a_client_inside_an_unexpired_block_matches() {
        let b = Blocks::new([block("203.0.113.0/24", 100), block("192.0.2.7", 50)], 10);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            b.matching(ip("203.0.113.9"), 10).unwrap().cidr,
            "203.0.113.0/24"
        );
        assert_eq!(
            b.matching(ip("::ffff:203.0.113.9"), 10).unwrap().cidr,
            "203.0.113.0/24"
        );
        assert!(b.matching(ip("203.0.114.1"), 10).is_none());
        assert!(b.matching(ip("192.0.2.7"), 49).is_some());
        assert!(b.matching(ip("192.0.2.7"), 50).is_none(), "ended");
        assert_eq!(b.active(60).len(), 1);
        let replaced = b.with(block("192.0.2.7", 500), 60);
        assert!(replaced.matching(ip("192.0.2.7"), 400).is_some());
        assert_eq!(replaced.active(60).len(), 2);
        let removed = replaced.without("203.0.113.0/24", 60).unwrap();
        assert!(removed.matching(ip("203.0.113.9"), 60).is_none());
        assert!(removed.without("203.0.113.0/24", 60).is_none());
        assert!(Blocks::new([block("10.0.0.0/8", 5)], 10)
            .active(10)
            .is_empty());
    }
}
