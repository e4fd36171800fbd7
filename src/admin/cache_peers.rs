//! What a node answers its peers (`cache::peers`): its hottest keys and a fresh object's
//! copy. Both need the admin token on every address: the fleet's secret.

use super::Reply;
use crate::cache::fills::{self, Answer};
use crate::cache::peers;
use crate::runtime::Runtime;
use http::StatusCode;
use std::time::Duration;

/// Keys listed at most.
const MAX_LIMIT: usize = 100_000;

/// The longest a sibling is kept waiting for a fill here.
const MAX_WAIT: Duration = Duration::from_secs(60);

/// `GET /api/cache/hot[?limit=N]`: `{"keys": [hex, ...]}`, most hit first.
pub fn hot(rt: &Runtime, query: &str) -> Reply {
    let limit = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("limit="))
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(1000)
        .min(MAX_LIMIT);
    let keys: Vec<String> = peers::hottest(&rt.cache.storage, limit)
        .iter()
        .map(peers::hex)
        .collect();
    Reply::ok(&serde_json::json!({ "keys": keys }))
}

/// `GET /api/cache/objects/{key}?layout=N[&rank=R[&wait=MS]]`: the object as a snapshot
/// record; 404 when this node has no fresh copy, 409 when its keys are made otherwise than
/// the asker's (another URL's object may be stored under the same key). A sibling of rank
/// `R` is told 202 when this node fills the URL and it should wait (`cache::fills`); asking
/// again with `wait`, it is answered when that fill is done.
pub async fn object(rt: &Runtime, key: &str, query: &str) -> Result<Vec<u8>, Reply> {
    let Some(key) = peers::from_hex(key) else {
        return Err(Reply::error(StatusCode::BAD_REQUEST, "not a cache key"));
    };
    let param = |name: &str| {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .and_then(|v| v.parse::<u64>().ok())
    };
    if param("layout") != Some(u64::from(rt.key_layout)) {
        return Err(Reply::error(
            StatusCode::CONFLICT,
            "another cache key layout (the routes' key rules differ)",
        ));
    }
    let none = || Reply::error(StatusCode::NOT_FOUND, "no fresh copy here");
    if let Some(record) = peers::object(&rt.cache.storage, &key) {
        return Ok(record);
    }
    let Some(asker) = param("rank") else {
        return Err(none());
    };
    let Answer::Filling(done) = rt.cache.fills.answer(&key, asker) else {
        return Err(none());
    };
    let Some(wait) = param("wait") else {
        return Err(Reply::error(
            StatusCode::ACCEPTED,
            "filling here: ask with wait",
        ));
    };
    fills::wait_done(done, Duration::from_millis(wait).min(MAX_WAIT)).await;
    peers::object(&rt.cache.storage, &key).ok_or_else(none)
}
