//! Request-rate limits: the compiled limits a config carries (`[[rate_limits]]`, built by
//! `config::validate::rate_limits`), the key a request is counted under, and the tables that
//! count (`table`, one per limit, kept across reloads while the limit is unchanged).
//! `proxy::rate_limit` runs the check for every request and gives the answer.
//!
//! Semantics, as nginx's `limit_req`: `rate = "100/10s"` lets a key make one request every
//! 100 ms on average, `burst` of them at once (by default as many as the rate's count, so a
//! client may spend a whole window's worth at once, as HAProxy's `http_req_rate(10s) gt 100`
//! would let it); what goes over is refused (`deny`, 429 and `Retry-After` unless set), held
//! until it conforms if that takes at most `max_delay` (`delay`, nginx's burst without
//! `nodelay`), or its connection closed (`close`). `dry_run` counts as the limit would, and logs
//! what it would refuse or delay, and lets it through at once. A request without the key (no such header or cookie) is not
//! counted, as nginx does for an empty key.

mod table;

pub use table::{Rate, Table, Verdict};

use http::{HeaderMap, HeaderName};
use std::hash::{BuildHasher, Hash, Hasher};
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// What a request is counted under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    /// The client's address (`proxy::forward::client_ip`), cut to its first bits: IPv4 and IPv6
    /// prefix lengths (32 and 128: the address itself).
    Client { v4: u8, v6: u8 },
    /// A request header's value (its first one).
    Header(HeaderName),
    /// A cookie's value.
    Cookie(String),
}

/// What happens to a request over the rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Answered with the limit's status (429) and `Retry-After`.
    Deny,
    /// Held until it conforms when that takes at most this long; refused otherwise.
    Delay(Duration),
    /// The HTTP/1 connection closed with a reset, an HTTP/2 stream reset with CANCEL.
    Close,
}

/// One compiled limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limit {
    pub name: String,
    pub key: Key,
    /// As written (`"100/10s"`), for the status page and logs.
    pub rate_text: String,
    pub rate: Rate,
    pub action: Action,
    /// The status of a refusal (429).
    pub status: u16,
    pub dry_run: bool,
    /// The most keys its table counts at once.
    pub max_keys: usize,
}

/// What a limit reads of a request.
pub struct Request<'a> {
    pub client: Option<IpAddr>,
    pub headers: &'a HeaderMap,
}

impl Limit {
    /// The hash `req` is counted under, or None when the request has no such key.
    pub fn key_hash(&self, req: &Request, hasher: &impl BuildHasher) -> Option<u64> {
        let mut h = hasher.build_hasher();
        match &self.key {
            Key::Client { v4, v6 } => match req.client? {
                IpAddr::V4(a) => (u32::from(a) & mask32(*v4)).hash(&mut h),
                IpAddr::V6(a) => (u128::from(a) & mask128(*v6)).hash(&mut h),
            },
            Key::Header(name) => value(req.headers.get(name)?.as_bytes())?.hash(&mut h),
            Key::Cookie(name) => value(cookie(req.headers, name)?)?.hash(&mut h),
        }
        Some(h.finish())
    }

    /// The largest delay a request may be given (in dry-run mode too: counted as the limit
    /// would count, and reported as what it would have done).
    pub fn max_delay(&self) -> Duration {
        match self.action {
            Action::Delay(d) => d,
            _ => Duration::ZERO,
        }
    }

    /// Whether another limit counts the same way, so its table can be kept (a reload).
    pub fn counts_like(&self, other: &Limit) -> bool {
        self.name == other.name
            && self.key == other.key
            && self.rate == other.rate
            && self.max_keys == other.max_keys
    }
}

fn mask32(bits: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(bits.min(32)))
        .unwrap_or(0)
}

fn mask128(bits: u8) -> u128 {
    u128::MAX
        .checked_shl(128 - u32::from(bits.min(128)))
        .unwrap_or(0)
}

/// The value of the first cookie `name` in the request's `Cookie` fields (RFC 6265 §5.4: `;`
/// separated pairs; HTTP/2 clients may send several fields), its name read without the spaces
/// around it, as most frameworks read it.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a [u8]> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b';'))
        .find_map(|pair| {
            let eq = pair.iter().position(|&b| b == b'=')?;
            (pair[..eq].trim_ascii() == name.as_bytes()).then(|| &pair[eq + 1..])
        })
}

/// A key's value as applications read it: without surrounding spaces and quotes; None when
/// nothing is left (no key, as nginx takes an empty one).
fn value(v: &[u8]) -> Option<&[u8]> {
    let v = v.trim_ascii();
    let v = v
        .strip_prefix(b"\"")
        .and_then(|x| x.strip_suffix(b"\""))
        .unwrap_or(v);
    (!v.is_empty()).then_some(v)
}

/// Nanoseconds on the tables' clock (monotonic, from the first call).
pub fn now_ns() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// The tables of `limits`, in order: a limit that counts as one of `previous` did keeps its
/// table (a reload forgets no client's count), any other starts empty.
/// (`previous`: the running limits and their tables, in the same order).
pub fn tables(limits: &[Limit], previous: (&[Limit], &[Arc<Table>])) -> Vec<Arc<Table>> {
    limits
        .iter()
        .map(|l| {
            let kept = previous
                .0
                .iter()
                .zip(previous.1)
                .find(|(p, _)| p.counts_like(l));
            kept.map(|(_, t)| t.clone())
                .unwrap_or_else(|| Arc::new(Table::new(l.max_keys)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::RandomState;

    fn limit(key: Key) -> Limit {
        Limit {
            name: "l".into(),
            key,
            rate_text: "1/1s".into(),
            rate: Rate {
                interval_ns: 1,
                burst: 1,
            },
            action: Action::Deny,
            status: 429,
            dry_run: false,
            max_keys: 10,
        }
    }

    fn hash(l: &Limit, client: &str, headers: &[(&str, &str)], s: &RandomState) -> Option<u64> {
        let mut map = HeaderMap::new();
        for (n, v) in headers {
            map.append(
                HeaderName::from_bytes(n.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        l.key_hash(
            &Request {
                client: Some(client.parse().unwrap()),
                headers: &map,
            },
            s,
        )
    }

    #[test]
    fn client_prefixes_group_addresses() {
        let s = RandomState::new();
        let l = limit(Key::Client { v4: 24, v6: 64 });
        assert_eq!(
            hash(&l, "192.0.2.1", &[], &s),
            hash(&l, "192.0.2.200", &[], &s)
        );
        assert_ne!(
            hash(&l, "192.0.2.1", &[], &s),
            hash(&l, "192.0.3.1", &[], &s)
        );
        assert_eq!(
            hash(&l, "2001:db8::1", &[], &s),
            hash(&l, "2001:db8::ffff:1", &[], &s)
        );
        assert_ne!(
            hash(&l, "2001:db8::1", &[], &s),
            hash(&l, "2001:db8:0:1::1", &[], &s)
        );
        let exact = limit(Key::Client { v4: 32, v6: 128 });
        assert_ne!(
            hash(&exact, "192.0.2.1", &[], &s),
            hash(&exact, "192.0.2.2", &[], &s)
        );
        let all = limit(Key::Client { v4: 0, v6: 0 });
        assert_eq!(
            hash(&all, "192.0.2.1", &[], &s),
            hash(&all, "198.51.100.7", &[], &s)
        );
    }

    #[test]
    fn headers_and_cookies_key_or_leave_uncounted() {
        let s = RandomState::new();
        let h = limit(Key::Header(HeaderName::from_static("x-api-key")));
        let a = hash(&h, "::1", &[("x-api-key", "a")], &s);
        assert!(a.is_some());
        assert_eq!(a, hash(&h, "::2", &[("x-api-key", "a")], &s));
        assert_ne!(a, hash(&h, "::1", &[("x-api-key", "b")], &s));
        assert_eq!(hash(&h, "::1", &[], &s), None);
        let c = limit(Key::Cookie("sid".into()));
        let one = hash(&c, "::1", &[("cookie", "a=1; sid=xyz; b=2")], &s);
        assert!(one.is_some());
        assert_eq!(
            one,
            hash(&c, "::9", &[("cookie", "a=1"), ("cookie", "sid=xyz")], &s)
        );
        assert_ne!(one, hash(&c, "::1", &[("cookie", "sid=other")], &s));
        assert_eq!(hash(&c, "::1", &[("cookie", "sidx=1; xsid=2")], &s), None);
        // Read as applications read it: spaces around the name, quotes, the first of two.
        assert_eq!(one, hash(&c, "::1", &[("cookie", "a=1;sid =xyz")], &s));
        assert_eq!(
            one,
            hash(&c, "::1", &[("cookie", "sid=\"xyz\"; sid=other")], &s)
        );
        assert_eq!(
            hash(&c, "::1", &[("cookie", "sid=; a=1")], &s),
            None,
            "empty"
        );
        assert_eq!(hash(&h, "::1", &[("x-api-key", "  ")], &s), None, "empty");
    }
}
