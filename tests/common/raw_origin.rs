//! A raw origin with a fixed answer for each path, one for every response framing and fault
//! the proxy must relay (`/cl`, `/chunked`, `/close`, `/early`, `/cut`, `/hang`...), plus
//! cacheable ones; every request head it receives is on record. A script of `ScriptOrigin`.

use super::raw::{Act, Msg, ScriptOrigin};
use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

/// A raw HTTP/1.1 origin: answers by path (see `answer`), records each request head.
pub struct RawOrigin {
    pub addr: SocketAddr,
    origin: ScriptOrigin,
    /// Close each connection after one response (without saying so), like a server whose
    /// keep-alive timeout is shorter than the proxy's.
    close_after_each: Arc<AtomicBool>,
}

/// Body bytes of `/big`: many reads' worth.
pub const BIG: usize = 300_000;

fn answer(method: &str, path: &str) -> (Cow<'static, str>, bool) {
    if path == "/big" {
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {BIG}\r\n\r\n");
        return (Cow::Owned(head + &"x".repeat(BIG)), false);
    }
    let (resp, close) = match path {
        "/cl" => ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Who: raw\r\n\r\nhello", false),
        "/chunked" => (
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
            false,
        ),
        "/close" => ("HTTP/1.1 200 OK\r\nX-Who: raw\r\n\r\nuntil-close", true),
        "/early" => (
            "HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            false,
        ),
        "/empty" => ("HTTP/1.1 204 No Content\r\nX-Who: raw\r\n\r\n", false),
        "/switch" => (
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n",
            false,
        ),
        // Headers and the first chunk, then the server is gone.
        "/cut" => (
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
            true,
        ),
        "/hang" => ("", false),
        // The server closes after this response.
        "/cl-close" => (
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
            true,
        ),
        // More bytes than the body: the connection cannot be trusted with another request.
        "/extra" => ("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokSURPLUS", false),
        // Gone before the announced body is whole.
        "/cut-length" => ("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhello", true),
        // A folded header line (obsolete syntax a strict parser refuses).
        "/fold" => (
            "HTTP/1.1 200 OK\r\nX-Folded: a\r\n b\r\nContent-Length: 2\r\n\r\nok",
            false,
        ),
        // Stored by a caching route: framed by length, with fields a hit must not repeat.
        "/cached" => (
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nCache-Control: max-age=60\r\nETag: \"v1\"\r\n\
             Last-Modified: Wed, 01 Jan 2025 00:00:00 GMT\r\nX-Who: raw\r\nAge: 2\r\n\
             Connection: keep-alive\r\n\r\nhello",
            false,
        ),
        "/cached-chunked" => (
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nCache-Control: max-age=60\r\n\r\n\
             3\r\nabc\r\n0\r\n\r\n",
            false,
        ),
        _ => ("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", false),
    };
    if method == "HEAD" && path == "/cl" {
        return (
            Cow::Borrowed("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Who: raw\r\n\r\n"),
            false,
        );
    }
    (Cow::Borrowed(resp), close)
}

/// A stored response that varies by Accept-Encoding: its body is the request's (`none`).
fn varied(head: &str) -> String {
    let asked = head
        .lines()
        .find_map(|l| l.strip_prefix("Accept-Encoding: "))
        .unwrap_or("none");
    format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nCache-Control: max-age=60\r\n\
         Vary: Accept-Encoding\r\n\r\n{asked}",
        asked.len()
    )
}

/// What the origin does with `req`: its answer, then a close if the answer says so; `/hang`
/// holds the connection 5 s without a word.
fn script(req: &Msg, close_each: &AtomicBool) -> Vec<Act> {
    let (method, path) = (req.method(), req.target());
    let (resp, close) = match path {
        "/cached-vary" => (Cow::Owned(varied(&req.head)), false),
        _ => answer(method, path),
    };
    if resp.is_empty() {
        return vec![Act::Sleep(Duration::from_secs(5)), Act::Close];
    }
    let mut acts = vec![Act::Write(resp.as_bytes().to_vec())];
    if close || close_each.load(SeqCst) {
        acts.push(Act::Close);
    }
    acts
}

impl RawOrigin {
    pub async fn start() -> RawOrigin {
        let close_after_each = Arc::new(AtomicBool::new(false));
        let close_each = close_after_each.clone();
        let origin = ScriptOrigin::start(move |req| script(req, &close_each)).await;
        RawOrigin {
            addr: origin.addr,
            origin,
            close_after_each,
        }
    }

    /// Request heads received, `\r\n` as `\n`.
    pub fn heads(&self) -> Vec<String> {
        self.origin
            .seen()
            .iter()
            .map(|m| m.head.replace("\r\n", "\n"))
            .collect()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.origin.connections()
    }

    /// From now on, close (or not) each connection after one response.
    pub fn close_after_each(&self, close: bool) {
        self.close_after_each.store(close, SeqCst);
    }
}
