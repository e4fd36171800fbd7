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
use super::store::MokaStorage;
use super::Cache;
use crate::config::CachePeers;
use pingora::cache::key::HashBinary;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};
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

/// `GET path` on a peer's admin API: the status and body, or None (unreachable, too slow,
/// over `max` bytes).
async fn get(peer: SocketAddr, path: &str, token: &str, max: usize) -> Option<(u16, Vec<u8>)> {
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
            let status = resp.code?;
            let length = resp
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| {
                    std::str::from_utf8(h.value)
                        .ok()?
                        .trim()
                        .parse::<usize>()
                        .ok()
                })?;
            if length > max {
                return None;
            }
            if buf.len() >= at + length {
                return Some((status, buf[at..at + length].to_vec()));
            }
        }
        if buf.len() > max + 64 * 1024 || conn.read_buf(&mut buf).await.ok()? == 0 {
            return None;
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
    let take = |record: Vec<u8>| {
        let Some((got, entry)) = snapshot::decode(record.into()) else {
            return false;
        };
        let fresh = entry.is_fresh(SystemTime::now());
        let same = got == key && entry.primary == key;
        if !same || !fresh || variance(&entry.header().headers) != entry.variance() {
            return false;
        }
        cache.restore(key, entry)
    };
    let ask = async {
        for &peer in &peers.peers {
            let got = get(peer, &path, token, max).await;
            if let Some((202, _)) = got {
                return Asked::Filling(peer);
            }
            if got.is_some_and(|(status, record)| status == 200 && take(record)) {
                return Asked::Copied;
            }
        }
        Asked::Nothing
    };
    let filling = match tokio::time::timeout(peers.sibling_timeout, ask).await {
        Ok(Asked::Copied) => return true,
        Ok(Asked::Filling(peer)) => peer,
        _ => return false,
    };
    let wait = peers.sibling_wait;
    let path = format!("{path}&wait={}", wait.as_millis());
    // The peer answers when its fill is done: the wait, and the copy's transfer.
    let limit = wait + peers.sibling_timeout;
    match tokio::time::timeout(limit, get(filling, &path, token, max)).await {
        Ok(Some((200, record))) => take(record),
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
    let Ok(Some((200, body))) = listed.await else {
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
        let Ok(Some((200, record))) = got.await else {
            continue;
        };
        if let Some((k, entry)) = snapshot::decode(record.into()) {
            if k == key && entry.is_fresh(SystemTime::now()) && cache.restore(key, entry) {
                let warmed = &cache.counters.warmed;
                warmed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }
}
