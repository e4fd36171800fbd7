//! Other nodes' caches (`[cache] peers`): what this node asks of them, and what it answers
//! them (through the admin API, `admin::cache_peers`), with the fleet's admin token.
//!
//! - A hot spare (`warm`) reads each peer's hottest keys every `warm_interval` and copies the
//!   fresh objects it lacks, from the peer, never from the servers: when the address moves
//!   to it, its cache already holds what the active node served most.
//! - Active nodes (`siblings`) ask the peers for a fresh copy before the servers on a miss,
//!   within `sibling_timeout`, as Squid's `cache_peer ... sibling`: N nodes do not each fetch
//!   the same object.
//!
//! Only stored objects cross: they were anonymous requests' answers the cache would serve to
//! anyone (private, personal and uncacheable answers are never stored). A copy is checked as
//! a server's answer would be: fresh, and of the request's Vary variant.

use super::snapshot;
use super::store::Entry;
use super::store::MokaStorage;
use super::Cache;
use crate::config::CachePeers;
use pingora::cache::key::HashBinary;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The keys of the `n` most hit fresh objects, most hit first.
pub fn hottest(storage: &MokaStorage, n: usize) -> Vec<HashBinary> {
    let now = SystemTime::now();
    let mut all: Vec<(u32, HashBinary)> = storage
        .entries
        .iter()
        .filter(|(_, e)| e.is_fresh(now) && e.hits() > 0)
        .map(|(k, e)| (e.hits(), *k))
        .collect();
    let most_hit_first = |e: &(u32, HashBinary)| std::cmp::Reverse(e.0);
    if all.len() > n {
        all.select_nth_unstable_by_key(n, most_hit_first);
        all.truncate(n);
    }
    all.sort_unstable_by_key(most_hit_first);
    all.into_iter().map(|(_, k)| k).collect()
}

/// A fresh object as a peer receives it (a snapshot record), if this node has one.
pub fn object(storage: &MokaStorage, key: &HashBinary) -> Option<Vec<u8>> {
    let entry = storage.entries.get(key)?;
    if !entry.is_fresh(SystemTime::now()) {
        return None;
    }
    let mut out = Vec::with_capacity(entry.body().len() + 1024);
    snapshot::encode(key, &entry, &mut out);
    Some(out)
}

pub fn hex(key: &HashBinary) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn from_hex(s: &str) -> Option<HashBinary> {
    let mut out = HashBinary::default();
    if s.len() != out.len() * 2 {
        return None;
    }
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// The response header with the answering node's clock (Unix nanoseconds): the times of the
/// object it sends are on that clock, and the asker moves them onto its own.
pub const CLOCK: &str = "x-gatehouse-clock";

pub fn unix_nanos(t: SystemTime) -> u64 {
    let nanos = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos();
    nanos.min(u128::from(u64::MAX)) as u64
}

/// A peer's answer.
struct Fetched {
    status: u16,
    body: Vec<u8>,
    /// How far this node's clock is ahead of the peer's, in nanoseconds, at most: the time
    /// the request was sent less the peer's clock in its answer (0 without one).
    ahead: i128,
}

impl Fetched {
    /// The object in a 200 answer, on this node's clock.
    fn object(self) -> Option<(HashBinary, Entry)> {
        if self.status != 200 {
            return None;
        }
        let (key, entry) = snapshot::decode(self.body.into())?;
        Some((key, entry.rebased(self.ahead)))
    }
}

/// `GET path` on a peer's admin API, or None (unreachable, too slow, over `max` bytes).
async fn get(peer: SocketAddr, path: &str, token: &str, max: usize) -> Option<Fetched> {
    let sent = unix_nanos(SystemTime::now());
    let mut conn = tokio::net::TcpStream::connect(peer).await.ok()?;
    let _ = conn.set_nodelay(true);
    let head = format!(
        "GET {path} HTTP/1.1\r\nHost: {peer}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    conn.write_all(head.as_bytes()).await.ok()?;
    let mut buf = Vec::with_capacity(16 * 1024);
    loop {
        let mut fields = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut fields);
        if let Ok(httparse::Status::Complete(at)) = resp.parse(&buf) {
            let field = |name: &str| {
                let h = resp
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case(name))?;
                std::str::from_utf8(h.value)
                    .ok()?
                    .trim()
                    .parse::<u64>()
                    .ok()
            };
            let length = usize::try_from(field("content-length")?).ok()?;
            if length > max {
                return None;
            }
            if buf.len() >= at + length {
                let ahead = field(CLOCK).map_or(0, |theirs| i128::from(sent) - i128::from(theirs));
                return Some(Fetched {
                    status: resp.code?,
                    body: buf[at..at + length].to_vec(),
                    ahead,
                });
            }
        }
        if buf.len() > max + 64 * 1024 || conn.read_buf(&mut buf).await.ok()? == 0 {
            return None;
        }
    }
}

/// The peers that did not answer lately: not asked on a miss until `UNREACHABLE_FOR` has
/// passed, so a node that is down or blackholed does not add `sibling_timeout` to every miss.
#[derive(Default)]
pub struct Unreachable(Mutex<HashMap<SocketAddr, Instant>>);

const UNREACHABLE_FOR: Duration = Duration::from_secs(5);

impl Unreachable {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, Instant>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn skips(&self, peer: SocketAddr) -> bool {
        let mut down = self.lock();
        match down.get(&peer) {
            Some(&until) if Instant::now() < until => true,
            Some(_) => {
                down.remove(&peer);
                false
            }
            None => false,
        }
    }

    fn failed(&self, peer: SocketAddr) {
        if self
            .lock()
            .insert(peer, Instant::now() + UNREACHABLE_FOR)
            .is_none()
        {
            tracing::warn!(%peer, "cache peer did not answer: not asked for {UNREACHABLE_FOR:?}");
        }
    }
}

/// Asks the peers, in order, within `sibling_timeout` for all of them, for a fresh copy of
/// the URL whose primary key is `key`, of the request's variant (`variance`, computed from
/// the copy's own Vary); stores the first one found. Only the URL's own copy is taken: a
/// variant stored under another key is not asked for. A peer filling the URL for itself
/// (`cache::fills`) is waited for, within `sibling_wait`, and its copy taken.
pub async fn ask_siblings(
    cache: &Cache,
    peers: &CachePeers,
    token: &str,
    (key, layout): (HashBinary, u32),
    variance: impl Fn(&http::HeaderMap) -> Option<HashBinary>,
) -> bool {
    let path = format!("{}&rank={}", object_path(&key, layout), cache.fills.rank);
    let max = cache.config.max_object_size as usize + 64 * 1024;
    let take = |got: Fetched| {
        let Some((got, entry)) = got.object() else {
            return false;
        };
        let fresh = entry.is_fresh(SystemTime::now());
        let same = got == key && entry.primary == key;
        if !same || !fresh || variance(&entry.header().headers) != entry.variance() {
            return false;
        }
        cache.restore(key, entry)
    };
    let deadline = tokio::time::Instant::now() + peers.sibling_timeout;
    let ask = async {
        for &peer in &peers.peers {
            if cache.unreachable.skips(peer) {
                continue;
            }
            match tokio::time::timeout_at(deadline, get(peer, &path, token, max)).await {
                Ok(Some(got)) if got.status == 202 => return Asked::Filling(peer),
                Ok(Some(got)) => {
                    if take(got) {
                        return Asked::Copied;
                    }
                }
                Ok(None) => cache.unreachable.failed(peer),
                Err(_) => {
                    cache.unreachable.failed(peer);
                    return Asked::Nothing;
                }
            }
        }
        Asked::Nothing
    };
    let filling = match ask.await {
        Asked::Copied => return true,
        Asked::Filling(peer) => peer,
        Asked::Nothing => return false,
    };
    let wait = peers.sibling_wait;
    let path = format!("{path}&wait={}", wait.as_millis());
    // The peer answers when its fill is done: the wait, and the copy's transfer.
    let limit = wait + peers.sibling_timeout;
    match tokio::time::timeout(limit, get(filling, &path, token, max)).await {
        Ok(Some(got)) => take(got),
        _ => false,
    }
}

/// What the siblings said, in the time they had.
enum Asked {
    Copied,
    /// This one fills the URL now: its copy is waited for.
    Filling(SocketAddr),
    Nothing,
}

/// The admin API's path of an object, with the asking node's key layout: a peer whose keys
/// are made otherwise (`snapshot::layout`) answers 409, not another URL's object.
fn object_path(key: &HashBinary, layout: u32) -> String {
    format!("/api/cache/objects/{}?layout={layout}", hex(key))
}

/// One round of a hot spare's copying from `peer`: its hottest `n` keys, and the fresh
/// objects of them this node lacks.
pub async fn warm_from(cache: &Cache, peer: SocketAddr, token: &str, n: usize, layout: u32) {
    let path = format!("/api/cache/hot?limit={n}");
    let listed = tokio::time::timeout(Duration::from_secs(5), get(peer, &path, token, 4 << 20));
    let Ok(Some(Fetched {
        status: 200, body, ..
    })) = listed.await
    else {
        return;
    };
    #[derive(serde::Deserialize)]
    struct Hot {
        keys: Vec<String>,
    }
    let Ok(hot) = serde_json::from_slice::<Hot>(&body) else {
        return;
    };
    let max = cache.config.max_object_size as usize + 64 * 1024;
    let now = SystemTime::now();
    for key in hot.keys.iter().filter_map(|k| from_hex(k)) {
        if cache
            .storage
            .entries
            .get(&key)
            .is_some_and(|e| e.is_fresh(now))
        {
            continue;
        }
        let path = object_path(&key, layout);
        let got = tokio::time::timeout(Duration::from_secs(5), get(peer, &path, token, max));
        let Ok(Some(got)) = got.await else {
            continue;
        };
        if let Some((k, entry)) = got.object() {
            if k == key && entry.is_fresh(SystemTime::now()) && cache.restore(key, entry) {
                let warmed = &cache.counters.warmed;
                warmed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::store::EntryParts;

    /// An object made at `made` on a peer's clock, fresh for 60 s from then.
    fn made_at(made: SystemTime) -> Vec<u8> {
        let mut header = pingora::http::ResponseHeader::build(200, None).unwrap();
        header.append_header("cache-control", "max-age=60").unwrap();
        let entry = Entry::from_parts(EntryParts {
            header,
            fresh_until: made + Duration::from_secs(60),
            created: made,
            epoch: made,
            stale_while_revalidate: 0,
            stale_if_error: 0,
            variance: None,
            body: bytes::Bytes::from_static(b"x"),
            primary: [7; 16],
            origin: None,
            end_of_life: made + Duration::from_secs(120),
        });
        let mut out = Vec::new();
        snapshot::encode(&[7; 16], &entry, &mut out);
        out
    }

    #[test]
    fn a_peers_copy_is_read_on_this_nodes_clock() {
        let now = SystemTime::now();
        let hour = Duration::from_secs(3600);
        // A peer an hour ahead made it just now, by its clock.
        let (theirs, sent) = (now + hour, unix_nanos(now));
        let got = Fetched {
            status: 200,
            body: made_at(theirs),
            ahead: i128::from(sent) - i128::from(unix_nanos(theirs)),
        };
        let (_, entry) = got.object().unwrap();
        assert!(
            entry.age(now) < Duration::from_secs(1),
            "{:?}",
            entry.age(now)
        );
        assert!(entry.is_fresh(now + Duration::from_secs(59)));
        assert!(
            !entry.is_fresh(now + Duration::from_secs(61)),
            "not an hour more"
        );
        // An hour behind: its fresh copy is not taken for a stale one.
        let theirs = now - hour;
        let got = Fetched {
            status: 200,
            body: made_at(theirs),
            ahead: i128::from(sent) - i128::from(unix_nanos(theirs)),
        };
        assert!(got
            .object()
            .unwrap()
            .1
            .is_fresh(now + Duration::from_secs(30)));
        // Only a 200 carries an object.
        let got = Fetched {
            status: 404,
            body: made_at(now),
            ahead: 0,
        };
        assert!(got.object().is_none());
    }
}
