//! The client behind trusted proxies (nginx's `set_real_ip_from` + `real_ip_header` +
//! `real_ip_recursive on`): when the connection's peer (the PROXY protocol's address, if the
//! listener has one) is in `client_address.trusted_proxies`, the forwarding header
//! (`X-Forwarded-For`, or `Forwarded`'s `for=`) is walked from the right, each trusted hop
//! skipped, and the first untrusted address is the client; every hop trusted: the leftmost.
//! An entry that is not an address (`unknown`, an obfuscated name, garbage) ends the walk at
//! the trusted hop that sent it. From an untrusted peer, or with no trusted proxies, the header
//! is not looked at: the peer is the client, at the cost of one comparison per request. Nor
//! on a `proxy_protocol` listener: the PROXY header named the client there, and a header that
//! came through a layer-4 balancer is the client's own.

use crate::config::{ClientAddressConfig, RealIpHeader};
use http::header::{HeaderMap, HeaderName, FORWARDED};
use std::net::{IpAddr, SocketAddr};

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The client a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    /// Its address; the port is the header's when it gave one, else 0.
    pub addr: SocketAddr,
    /// How many X-Forwarded-For entries, from the right, the walk took (the client's own
    /// included): those are not passed on as earlier hops. 0: the peer is the client.
    pub consumed: usize,
}

/// The client of a request from `peer`, accepted at `local`, carrying `headers`.
pub fn find(
    peer: SocketAddr,
    local: Option<SocketAddr>,
    headers: &HeaderMap,
    ca: &ClientAddressConfig,
) -> Found {
    let mut found = Found {
        addr: peer,
        consumed: 0,
    };
    let trusted = &ca.trusted_proxies;
    if trusted.is_empty() || ca.header == RealIpHeader::None || !trusted.contains(peer.ip()) {
        return found;
    }
    // On a PROXY listener the PROXY header named the client (or said it could not, `UNKNOWN`,
    // `LOCAL`): a forwarding header that came through a layer-4 balancer is the client's own.
    if local.is_some_and(|l| ca.on_proxy_listener(l)) {
        return found;
    }
    let xff = ca.header == RealIpHeader::XForwardedFor;
    let name = if xff { X_FORWARDED_FOR } else { FORWARDED };
    for entry in headers.get_all(name).iter().rev().flat_map(|v| {
        let text = v.to_str().unwrap_or("\u{0}"); // not text: one entry that is no address
        text.rsplit(',')
    }) {
        let addr = if xff {
            address(entry)
        } else {
            forwarded_for(entry)
        };
        let Some(addr) = addr else {
            break;
        };
        found.addr = addr;
        if xff {
            found.consumed += 1;
        }
        if !trusted.contains(addr.ip()) {
            break;
        }
    }
    found
}

/// The X-Forwarded-For entries before the `consumed` rightmost, as one value: what a server is
/// told came before the client gatehouse found.
pub fn earlier_hops(headers: &HeaderMap, consumed: usize) -> Option<String> {
    let entries = || {
        headers
            .get_all(X_FORWARDED_FOR)
            .iter()
            .flat_map(|v| v.to_str().unwrap_or("").split(','))
    };
    let keep = entries().count().saturating_sub(consumed);
    let mut out = String::new();
    for entry in entries().take(keep) {
        if !out.is_empty() {
            out.push_str(", ");
        }
        out.push_str(entry.trim());
    }
    (!out.is_empty()).then_some(out)
}

/// One address as forwarding headers write it: `192.0.2.1`, `2001:db8::1`, `192.0.2.1:80`,
/// `[2001:db8::1]:80`, `[2001:db8::1]` (optional whitespace around).
fn address(entry: &str) -> Option<SocketAddr> {
    let entry = entry.trim_matches(|c| c == ' ' || c == '\t');
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(SocketAddr::new(ip.to_canonical(), 0));
    }
    if let Ok(a) = entry.parse::<SocketAddr>() {
        return Some(SocketAddr::new(a.ip().to_canonical(), a.port()));
    }
    let v6 = entry.strip_prefix('[')?.strip_suffix(']')?;
    v6.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 0))
}

/// The `for=` address of one `Forwarded` element (RFC 7239 §4: `for=192.0.2.60;proto=http`,
/// `for="[2001:db8::17]:4711"`).
fn forwarded_for(element: &str) -> Option<SocketAddr> {
    element.split(';').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("for") {
            return None;
        }
        let value = value.trim();
        let value = match value.strip_prefix('"') {
            Some(quoted) => quoted.strip_suffix('"')?,
            None => value,
        };
        address(value)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::{parse_cidr, CidrSet};

    fn config(trusted: &[&str], header: RealIpHeader) -> ClientAddressConfig {
        ClientAddressConfig {
            trusted_proxies: CidrSet::new(trusted.iter().map(|t| parse_cidr(t).unwrap()).collect()),
            header,
            proxy_listeners: Vec::new(),
        }
    }

    fn headers(name: http::HeaderName, values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(name.clone(), v.parse().unwrap());
        }
        h
    }

    fn ip(found: Found) -> String {
        found.addr.ip().to_string()
    }

    const PROXY: &str = "10.0.0.5:4000";

    #[test]
    fn xff_walked_from_the_right_only_from_trusted_peers() {
        let ca = config(&["10.0.0.0/8"], RealIpHeader::XForwardedFor);
        let h = headers(X_FORWARDED_FOR, &["6.6.6.6, 203.0.113.9, 10.1.1.1"]);
        let found = find(PROXY.parse().unwrap(), None, &h, &ca);
        assert_eq!(ip(found), "203.0.113.9", "forged leftmost entry ignored");
        assert_eq!(found.consumed, 2);
        assert_eq!(earlier_hops(&h, found.consumed).as_deref(), Some("6.6.6.6"));
        // From an untrusted peer the header is not believed.
        let found = find("198.51.100.1:1".parse().unwrap(), None, &h, &ca);
        assert_eq!((ip(found), found.consumed), ("198.51.100.1".into(), 0));
        // No trusted proxies: nothing is believed.
        let none = config(&[], RealIpHeader::XForwardedFor);
        assert_eq!(
            ip(find(PROXY.parse().unwrap(), None, &h, &none)),
            "10.0.0.5"
        );
        let off = config(&["10.0.0.0/8"], RealIpHeader::None);
        assert_eq!(ip(find(PROXY.parse().unwrap(), None, &h, &off)), "10.0.0.5");
    }

    #[test]
    fn xff_edge_cases() {
        let ca = config(
            &["10.0.0.0/8", "2001:db8::/32"],
            RealIpHeader::XForwardedFor,
        );
        let peer: SocketAddr = PROXY.parse().unwrap();
        let find_in = |values: &[&str]| find(peer, None, &headers(X_FORWARDED_FOR, values), &ca);
        // Several lines are one list, in order.
        assert_eq!(
            ip(find_in(&["192.0.2.1", "192.0.2.2, 10.9.9.9"])),
            "192.0.2.2"
        );
        // Every hop trusted: the leftmost.
        assert_eq!(ip(find_in(&["10.1.1.1, 10.2.2.2"])), "10.1.1.1");
        // Garbage ends the walk at the trusted hop that sent it.
        assert_eq!(ip(find_in(&["192.0.2.1, unknown, 10.2.2.2"])), "10.2.2.2");
        assert_eq!(ip(find_in(&["garbage"])), "10.0.0.5");
        assert_eq!(ip(find_in(&[])), "10.0.0.5");
        // Ports and brackets; IPv4-mapped IPv6 as IPv4.
        let found = find_in(&["[2001:db9::1]:8080"]);
        assert_eq!(found.addr, "[2001:db9::1]:8080".parse().unwrap());
        assert_eq!(ip(find_in(&["192.0.2.7:5555"])), "192.0.2.7");
        assert_eq!(ip(find_in(&["::ffff:192.0.2.8"])), "192.0.2.8");
        assert_eq!(ip(find_in(&["[2001:db9::2]"])), "2001:db9::2");
        assert_eq!(ip(find_in(&[" 192.0.2.9 ,10.0.0.1"])), "192.0.2.9");
    }

    #[test]
    fn forwarded_for_parameters() {
        let ca = config(&["10.0.0.0/8"], RealIpHeader::Forwarded);
        let peer: SocketAddr = PROXY.parse().unwrap();
        let h = headers(
            FORWARDED,
            &["for=6.6.6.6, for=\"[2001:db8:cafe::17]:4711\";proto=https, For=10.3.3.3;by=10.0.0.1"],
        );
        let found = find(peer, None, &h, &ca);
        assert_eq!(found.addr, "[2001:db8:cafe::17]:4711".parse().unwrap());
        assert_eq!(
            found.consumed, 0,
            "X-Forwarded-For entries are not consumed"
        );
        let h = headers(FORWARDED, &["for=_hidden, for=10.3.3.3"]);
        assert_eq!(ip(find(peer, None, &h, &ca)), "10.3.3.3");
        let h = headers(FORWARDED, &["proto=http"]);
        assert_eq!(ip(find(peer, None, &h, &ca)), "10.0.0.5");
        // X-Forwarded-For is not read in Forwarded mode.
        let h = headers(X_FORWARDED_FOR, &["192.0.2.1"]);
        assert_eq!(ip(find(peer, None, &h, &ca)), "10.0.0.5");
    }
}
