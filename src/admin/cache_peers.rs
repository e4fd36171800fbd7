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

/// `GET /api/cache/objects/{key}`: the object as a snapshot record; 404 when this node has no
/// fresh copy.
pub fn object(rt: &Runtime, key: &str) -> Result<Vec<u8>, Reply> {
    let Some(key) = peers::from_hex(key) else {
        return Err(Reply::error(StatusCode::BAD_REQUEST, "not a cache key"));
    };
    peers::object(&rt.cache.storage, &key)
        .ok_or_else(|| Reply::error(StatusCode::NOT_FOUND, "no fresh copy here"))
}
