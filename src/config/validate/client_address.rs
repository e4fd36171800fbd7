//! `[client_address]` (the trusted proxies and the header they name the client in) and the
//! listeners' `proxy_protocol`, which needs trusted proxies to be of any use.

use super::super::defaults as d;
use super::super::error::{Collector, KeyPath};
use super::super::file;
use super::super::*;
use crate::access;

pub(super) fn client_address(
    f: file::ClientAddressSection,
    listeners: &[Listener],
    p: &KeyPath,
    listeners_key: &KeyPath,
    c: &mut Collector,
) -> ClientAddressConfig {
    let mut ranges = Vec::with_capacity(f.trusted_proxies.len());
    for (i, entry) in f.trusted_proxies.iter().enumerate() {
        match access::parse_cidr(entry.trim()) {
            Ok(range) => ranges.push(range),
            Err(e) => c.error(&p.key("trusted_proxies").index(i), e),
        }
    }
    let header = f.header.as_deref().unwrap_or(d::REAL_IP_HEADER);
    let header = match header.to_ascii_lowercase().as_str() {
        "x-forwarded-for" => RealIpHeader::XForwardedFor,
        "forwarded" => RealIpHeader::Forwarded,
        "none" => RealIpHeader::None,
        _ => {
            c.error(
                &p.key("header"),
                format!(
                    "unknown header {header:?}: use \"X-Forwarded-For\", \"Forwarded\" or \"none\""
                ),
            );
            RealIpHeader::default()
        }
    };
    if ranges.is_empty() {
        for (i, l) in listeners.iter().enumerate() {
            if l.proxy_protocol {
                c.error(
                    &listeners_key.index(i).key("proxy_protocol"),
                    "needs client_address.trusted_proxies: the addresses allowed to send the PROXY header",
                );
            }
        }
    }
    ClientAddressConfig {
        trusted_proxies: access::CidrSet::new(ranges),
        header,
        proxy_listeners: listeners
            .iter()
            .filter(|l| l.proxy_protocol)
            .map(|l| l.address)
            .collect(),
    }
}
