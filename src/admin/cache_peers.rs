//! What a node answers its peers (`cache::peers`): its hottest keys and a fresh object's
//! copy. Both need the admin token on every address: the fleet's secret.

use super::Reply;
use crate::cache::peers;
use crate::runtime::Runtime;
use http::StatusCode;

/// Keys listed at most.
const MAX_LIMIT: usize = 100_000;

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

/// `GET /api/cache/objects/{key}?layout=N`: the object as a snapshot record; 404 when this
/// node has no fresh copy, 409 when its keys are made otherwise than the asker's (another
/// URL's object may be stored under the same key).
pub fn object(rt: &Runtime, key: &str, query: &str) -> Result<Vec<u8>, Reply> {
    let Some(key) = peers::from_hex(key) else {
        return Err(Reply::error(StatusCode::BAD_REQUEST, "not a cache key"));
    };
    let theirs = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("layout="))
        .and_then(|v| v.parse::<u32>().ok());
    if theirs != Some(crate::cache::snapshot::layout(&rt.config)) {
        return Err(Reply::error(
            StatusCode::CONFLICT,
            "another cache key layout (the routes' key rules differ)",
        ));
    }
    peers::object(&rt.cache.storage, &key)
        .ok_or_else(|| Reply::error(StatusCode::NOT_FOUND, "no fresh copy here"))
}
