//! A set of IPv4 and IPv6 networks for access rules: parsed once at config load (inline
//! entries and list files, `ipnet` for the CIDR syntax), kept as sorted, merged, disjoint
//! ranges in one 128-bit space (IPv4 as its IPv4-mapped IPv6 form), and looked up by binary
//! search: O(log n), no allocation, whatever the length of the list.

use std::net::{IpAddr, Ipv6Addr};

#[derive(Clone, Default, PartialEq, Eq)]
pub struct CidrSet {
    /// Inclusive ranges, sorted, merged: no two overlap or touch.
    ranges: Vec<(u128, u128)>,
}

impl std::fmt::Debug for CidrSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Compared by `config::changes` through its Debug text: every range shows.
        f.debug_list()
            .entries(self.ranges.iter().map(|(a, b)| (ip(*a), ip(*b))))
            .finish()
    }
}

/// An address as a point of the 128-bit space: IPv4 (and IPv4-mapped IPv6, `::ffff:a.b.c.d`)
/// as the mapped form, so `10.0.0.1` and `::ffff:10.0.0.1` are the same point.
pub fn point(addr: IpAddr) -> u128 {
    match addr.to_canonical() {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn ip(p: u128) -> IpAddr {
    Ipv6Addr::from(p).to_canonical()
}

/// The network an entry names: `10.0.0.0/8`, or a bare address as a /32 or /128.
pub fn network(entry: &str) -> Result<ipnet::IpNet, String> {
    match entry.parse::<ipnet::IpNet>() {
        Ok(n) => Ok(n),
        Err(_) => match entry.parse::<IpAddr>() {
            Ok(a) => Ok(ipnet::IpNet::from(a)),
            Err(_) => Err(format!("not an address or CIDR: {entry:?}")),
        },
    }
}

/// One entry: `10.0.0.0/8`, `2001:db8::/32`, or a bare address (one host). Host bits set
/// below the prefix (`10.1.2.3/8`) are ignored, as HAProxy and nginx do.
pub fn parse(entry: &str) -> Result<(u128, u128), String> {
    Ok(match network(entry)? {
        ipnet::IpNet::V4(n) => {
            let base = u128::from(n.network().to_ipv6_mapped());
            let host_bits = 32 - u32::from(n.prefix_len());
            (base, base + ((1u128 << host_bits) - 1))
        }
        ipnet::IpNet::V6(n) => {
            let host_bits = 128 - u32::from(n.prefix_len());
            let mask = if host_bits == 128 {
                u128::MAX
            } else {
                (1u128 << host_bits) - 1
            };
            let base = u128::from(n.network());
            (base, base | mask)
        }
    })
}

/// The entries of a list file: one per line, `#` starts a comment, blank lines skipped (the
/// format of HAProxy's `-f` files). Errors name the line.
pub fn parse_file(text: &str, out: &mut Vec<(u128, u128)>) -> Result<(), String> {
    for (n, line) in text.lines().enumerate() {
        let entry = line.split('#').next().unwrap_or("").trim();
        if entry.is_empty() {
            continue;
        }
        out.push(parse(entry).map_err(|e| format!("line {}: {e}", n + 1))?);
    }
    Ok(())
}

impl CidrSet {
    /// The set of `ranges` (in any order, overlapping or not).
    pub fn new(mut ranges: Vec<(u128, u128)>) -> CidrSet {
        ranges.sort_unstable();
        let mut merged: Vec<(u128, u128)> = Vec::with_capacity(ranges.len());
        for (a, b) in ranges {
            match merged.last_mut() {
                Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        merged.shrink_to_fit();
        CidrSet { ranges: merged }
    }

    pub fn contains(&self, addr: IpAddr) -> bool {
        let p = point(addr);
        // The first range starting after `p`; the one before it is the only candidate.
        let i = self.ranges.partition_point(|r| r.0 <= p);
        i > 0 && self.ranges[i - 1].1 >= p
    }

    /// Disjoint ranges after merging.
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(entries: &[&str]) -> CidrSet {
        CidrSet::new(entries.iter().map(|e| parse(e).unwrap()).collect())
    }

    fn has(s: &CidrSet, a: &str) -> bool {
        s.contains(a.parse().unwrap())
    }

    #[test]
    fn ipv4_ipv6_and_mapped_addresses() {
        let s = set(&["10.0.0.0/8", "192.0.2.7", "2001:db8::/32", "0.0.0.0/32"]);
        assert!(has(&s, "10.255.1.2") && has(&s, "10.0.0.0"));
        assert!(!has(&s, "11.0.0.0") && !has(&s, "9.255.255.255"));
        assert!(has(&s, "192.0.2.7") && !has(&s, "192.0.2.8"));
        assert!(
            has(&s, "::ffff:10.1.2.3"),
            "IPv4-mapped IPv6 is the IPv4 address"
        );
        assert!(has(&s, "2001:db8:ffff::1") && !has(&s, "2001:db9::1"));
        assert!(
            !has(&s, "::a00:1"),
            "IPv4-compatible ::10.0.0.1 is not 10.0.0.1"
        );
        assert!(has(&s, "0.0.0.0") && !has(&s, "::"));
    }

    #[test]
    fn overlapping_and_adjacent_entries_merge() {
        let s = set(&["10.0.0.0/24", "10.0.1.0/24", "10.0.0.128/25", "::/0"]);
        assert_eq!(s.len(), 1, "everything is inside ::/0: {s:?}");
        let s = set(&["10.0.0.0/24", "10.0.1.0/24", "10.0.3.0/24"]);
        assert_eq!(s.len(), 2);
        assert!(has(&s, "10.0.1.255") && !has(&s, "10.0.2.0") && has(&s, "10.0.3.9"));
        assert!(set(&["0.0.0.0/0"]).contains("255.255.255.255".parse().unwrap()));
        assert!(!set(&[]).contains("1.2.3.4".parse().unwrap()));
    }

    #[test]
    fn files_and_bad_entries() {
        let mut out = Vec::new();
        parse_file(
            "# blocked\n\n203.0.113.0/24  # scanner\n  2001:db8::1\n",
            &mut out,
        )
        .unwrap();
        assert_eq!(out.len(), 2);
        let err = parse_file("10.0.0.0/8\n10.0.0.0/33\n", &mut out).unwrap_err();
        assert!(err.starts_with("line 2: not an address or CIDR"), "{err}");
        assert!(parse("example.com").is_err());
        assert_eq!(parse("10.1.2.3/8"), parse("10.0.0.0/8"));
    }
}
