//! The admin API client of `gatehouse ctl`.
//!
//! It is a few lines of HTTP/1.1 over a `TcpStream` (one request, `Connection: close`,
//! JSON both ways) rather than a client library: the API is ours and loopback-only by default,
//! and it keeps the binary free of a second HTTP stack.

use crate::admin::api::{Endpoint, Query};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Where the admin API is and how to authenticate.
pub struct Target {
    pub address: SocketAddr,
    pub token: Option<String>,
}

/// An API answer: status and parsed JSON body.
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

/// Sends one request to the admin API.
pub fn call(
    target: &Target,
    endpoint: &Endpoint,
    query: &Query,
    body: Option<&Value>,
    timeout: Duration,
) -> Result<Answer, String> {
    let (method, path) = (endpoint.method(), endpoint.uri(query));
    let addr = target.address;
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| format!("cannot reach the admin API at {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(timeout + Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let auth = target
        .token
        .as_deref()
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}X-Gatehouse-By: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        caller(),
        body.len()
    );
    stream
        .write_all(req.as_bytes())
        .map_err(|e| format!("admin API {addr}: {e}"))?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .map_err(|e| format!("admin API {addr}: no complete answer: {e}"))?;
    parse_response(&raw)
}

/// "user@host", recorded with the changes a cluster shares.
fn caller() -> String {
    let user = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "unknown".into());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let clean = |s: &str| -> String {
        s.trim()
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .take(64)
            .collect()
    };
    format!("{}@{} (gatehouse ctl)", clean(&user), clean(&host))
}

fn parse_response(raw: &[u8]) -> Result<Answer, String> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or("admin API: malformed answer")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("admin API: malformed status line")?;
    let body = serde_json::from_str(body.trim()).unwrap_or(Value::Null);
    Ok(Answer { status, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_json_answer() {
        let a =
            parse_response(b"HTTP/1.1 409 Conflict\r\nContent-Length: 2\r\n\r\n{\"in_flight\": 1}")
                .unwrap();
        assert_eq!(a.status, 409);
        assert_eq!(a.body["in_flight"], 1);
        assert!(parse_response(b"garbage").is_err());
    }
}
