//! The http-01 answers under way: token → key authorization, served by the proxy at
//! `/.well-known/acme-challenge/TOKEN` on any listener before routing (so neither a
//! redirect to https nor a missing route gets in the way).

use std::collections::HashMap;
use std::sync::RwLock;

#[derive(Debug, Default)]
pub struct Challenges {
    http01: RwLock<HashMap<String, String>>,
}

pub const HTTP01_PREFIX: &str = "/.well-known/acme-challenge/";

impl Challenges {
    pub fn insert(&self, token: &str, key_authorization: &str) {
        let mut map = self.http01.write().unwrap_or_else(|e| e.into_inner());
        map.insert(token.to_string(), key_authorization.to_string());
    }

    pub fn remove(&self, token: &str) {
        let mut map = self.http01.write().unwrap_or_else(|e| e.into_inner());
        map.remove(token);
    }

    /// The answer for a request path, if it is a challenge under way.
    pub fn http01(&self, path: &str) -> Option<String> {
        let token = path.strip_prefix(HTTP01_PREFIX)?;
        let map = self.http01.read().unwrap_or_else(|e| e.into_inner());
        map.get(token).cloned()
    }
}
