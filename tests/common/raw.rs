//! Raw HTTP/1 on loopback, for tests that must control the bytes on the wire: a client
//! connection that writes exactly what it is given and parses responses by their framing (a
//! timeout on every read), and a scriptable origin that records each request it receives (head
//! and body) and answers with whatever its script says, byte for byte. The one raw client and
//! the one raw origin of the suite (`raw_origin.rs` is a script of this origin).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One HTTP/1 message as parsed from the wire.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Msg {
    /// The request line or the status line.
    pub start: String,
    /// Header fields in order, names spelled as sent.
    pub fields: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
    /// Status lines of informational (1xx) responses that came before this one.
    pub interim: Vec<String>,
    /// The body ended by its framing (false: cut short by the peer's close).
    pub complete: bool,
    /// The head as received (lossy text, through its empty line); a response's starts with
    /// the heads of the informational responses before it.
    pub head: String,
}

impl Msg {
    pub fn status(&self) -> u16 {
        self.start
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }

    pub fn method(&self) -> &str {
        self.start.split(' ').next().unwrap_or("")
    }

    pub fn target(&self) -> &str {
        self.start.split(' ').nth(1).unwrap_or("")
    }

    /// Every value of field `name` (any case), in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.fields
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn field(&self, name: &str) -> Option<&str> {
        self.all(name).first().copied()
    }

    fn has_token(&self, name: &str, token: &str) -> bool {
        self.all(name)
            .iter()
            .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    }
}

/// What the parser is reading.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Kind {
    Request,
    /// A response; `head`: to a HEAD request (no body whatever the fields say).
    Response {
        head: bool,
    },
}

/// Bytes for a message: lossy text, cut at 800 characters.
pub fn shown(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes);
    s.chars().take(800).collect()
}

type Head = (String, Vec<(String, String)>, usize);

fn parse_head(buf: &[u8], kind: Kind) -> Result<Option<Head>, String> {
    let mut slots = [httparse::EMPTY_HEADER; 96];
    let (start, used, n) = match kind {
        Kind::Request => {
            let mut r = httparse::Request::new(&mut slots);
            let n = match r.parse(buf).map_err(|e| format!("bad request: {e}"))? {
                httparse::Status::Complete(n) => n,
                httparse::Status::Partial => return Ok(None),
            };
            let start = format!(
                "{} {} HTTP/1.{}",
                r.method.unwrap_or(""),
                r.path.unwrap_or(""),
                r.version.unwrap_or(1)
            );
            (start, r.headers.len(), n)
        }
        Kind::Response { .. } => {
            let mut r = httparse::Response::new(&mut slots);
            let n = match r.parse(buf).map_err(|e| format!("bad response: {e}"))? {
                httparse::Status::Complete(n) => n,
                httparse::Status::Partial => return Ok(None),
            };
            let start = format!(
                "HTTP/1.{} {} {}",
                r.version.unwrap_or(1),
                r.code.unwrap_or(0),
                r.reason.unwrap_or("")
            );
            (start, r.headers.len(), n)
        }
    };
    let fields = slots[..used]
        .iter()
        .map(|h| {
            (
                h.name.to_string(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    Ok(Some((start, fields, n)))
}

/// A de-chunked body and the bytes it took, or None while incomplete.
fn chunked(mut rest: &[u8]) -> Result<Option<(Vec<u8>, usize)>, String> {
    let total = rest.len();
    let mut out = Vec::new();
    loop {
        let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let line = std::str::from_utf8(&rest[..eol]).map_err(|_| "chunk size not text")?;
        let hex = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(hex, 16).map_err(|_| format!("chunk size {line:?}"))?;
        rest = &rest[eol + 2..];
        if size == 0 {
            // Trailer fields, then an empty line.
            loop {
                let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") else {
                    return Ok(None);
                };
                rest = &rest[eol + 2..];
                if eol == 0 {
                    return Ok(Some((out, total - rest.len())));
                }
            }
        }
        if rest.len() < size + 2 {
            return Ok(None);
        }
        out.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

/// One whole message at the start of `buf` and the bytes it took; None while incomplete.
/// `closed`: the peer closed, so a close-delimited body (or a cut one) ends here.
pub fn parse(buf: &[u8], kind: Kind, closed: bool) -> Result<Option<(Msg, usize)>, String> {
    let Some((start, fields, n)) = parse_head(buf, kind)? else {
        return Ok(None);
    };
    let mut msg = Msg {
        start,
        fields,
        complete: true,
        head: String::from_utf8_lossy(&buf[..n]).into_owned(),
        ..Msg::default()
    };
    let status = msg.status();
    let bodiless = match kind {
        Kind::Request => false,
        Kind::Response { head } => {
            head || (100..200).contains(&status) || [204, 304].contains(&status)
        }
    };
    let rest = &buf[n..];
    if bodiless {
        return Ok(Some((msg, n)));
    }
    if msg.has_token("transfer-encoding", "chunked") {
        if let Some((body, used)) = chunked(rest)? {
            msg.body = body;
            return Ok(Some((msg, n + used)));
        }
    } else if let Some(cl) = msg.field("content-length") {
        let cl: usize = cl
            .trim()
            .parse()
            .map_err(|_| format!("content-length {cl:?}"))?;
        if rest.len() >= cl {
            msg.body = rest[..cl].to_vec();
            return Ok(Some((msg, n + cl)));
        }
    } else if kind == Kind::Request {
        return Ok(Some((msg, n)));
    } else if closed {
        msg.body = rest.to_vec();
        return Ok(Some((msg, buf.len())));
    }
    if !closed {
        return Ok(None);
    }
    msg.body = rest.to_vec();
    msg.complete = false;
    Ok(Some((msg, buf.len())))
}

/// A raw client connection.
pub struct Wire {
    pub tcp: TcpStream,
    pub buf: Vec<u8>,
    pub closed: bool,
}

impl Wire {
    pub async fn connect(addr: SocketAddr) -> Wire {
        let tcp = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr))
            .await
            .expect("connected within 5 s")
            .expect("connected");
        Wire::over(tcp)
    }

    /// A raw client on a connection made elsewhere (from a chosen source address, say).
    pub fn over(tcp: TcpStream) -> Wire {
        Wire {
            tcp,
            buf: Vec::new(),
            closed: false,
        }
    }

    /// Sends `METHOD path` for `site.test` with `extra` header lines (each ending in CRLF) and
    /// reads the response, each read within 5 s: status, the head as received lower-cased
    /// (informational heads first; read fields with `header`), body.
    pub async fn round_trip(
        &mut self,
        method: &str,
        path: &str,
        extra: &str,
    ) -> (u16, String, Vec<u8>) {
        let req = format!("{method} {path} HTTP/1.1\r\nHost: site.test\r\n{extra}\r\n");
        assert!(self.send(req.as_bytes()).await, "{method} {path} sent");
        let msg = self
            .response(method == "HEAD", Duration::from_secs(5))
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        (msg.status(), msg.head.to_ascii_lowercase(), msg.body)
    }

    /// Writes `bytes` in one write; false if the peer is gone.
    pub async fn send(&mut self, bytes: &[u8]) -> bool {
        self.tcp.write_all(bytes).await.is_ok()
    }

    /// Reads more within `wait`: false on timeout; sets `closed` at end of stream.
    async fn fill(&mut self, wait: Duration) -> bool {
        let mut chunk = [0u8; 16384];
        match tokio::time::timeout(wait, self.tcp.read(&mut chunk)).await {
            Err(_) => false,
            Ok(Ok(0)) | Ok(Err(_)) => {
                self.closed = true;
                true
            }
            Ok(Ok(n)) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    /// The next final response (1xx before it listed in `interim`), each read within `wait`;
    /// an error says what was seen.
    pub async fn response(&mut self, head: bool, wait: Duration) -> Result<Msg, String> {
        let (mut interim, mut heads) = (Vec::new(), String::new());
        loop {
            let kind = Kind::Response { head };
            match parse(&self.buf, kind, self.closed).map_err(|e| self.seen(&e))? {
                Some((msg, n)) if (100..200).contains(&msg.status()) && msg.status() != 101 => {
                    interim.push(msg.start);
                    heads.push_str(&msg.head);
                    self.buf.drain(..n);
                    continue;
                }
                Some((mut msg, n)) => {
                    self.buf.drain(..n);
                    msg.interim = interim;
                    msg.head.insert_str(0, &heads);
                    return Ok(msg);
                }
                None if self.closed => return Err(self.seen("closed")),
                None => {}
            }
            if !self.fill(wait).await {
                return Err(self.seen(&format!("no response within {wait:?}")));
            }
        }
    }

    fn seen(&self, what: &str) -> String {
        format!("{what}; bytes unread: {:?}", shown(&self.buf))
    }

    /// Whether the connection is still open after `wait` (bytes arriving meanwhile are kept).
    pub async fn open_after(&mut self, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        while !self.closed {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() || !self.fill(left).await {
                break;
            }
        }
        !self.closed
    }
}

/// The value of field `name` (lower-case) in a head `Wire::round_trip` gave: the first line
/// that names it, informational heads included.
pub fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.split("\r\n")
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
}

/// What the origin does, in order, after receiving a request.
#[derive(Clone, Debug)]
pub enum Act {
    Write(Vec<u8>),
    Sleep(Duration),
    /// Close the connection (FIN).
    Close,
}

pub type Script = Arc<dyn Fn(&Msg) -> Vec<Act> + Send + Sync>;

/// A raw origin: every request (head and body) is recorded, then answered by the script.
/// `100 Continue` is sent for a request that expects it before its body is read.
pub struct ScriptOrigin {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Msg>>>,
    connections: Arc<AtomicUsize>,
}

impl ScriptOrigin {
    pub async fn start(script: impl Fn(&Msg) -> Vec<Act> + Send + Sync + 'static) -> Self {
        Self::start_with(None, Arc::new(script)).await
    }

    /// `idle_reset`: a connection idle that long between requests is reset.
    pub async fn start_with(idle_reset: Option<Duration>, script: Script) -> Self {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let o = ScriptOrigin {
            addr: l.local_addr().unwrap(),
            seen: Arc::default(),
            connections: Arc::default(),
        };
        let (seen, conns) = (o.seen.clone(), o.connections.clone());
        tokio::spawn(async move {
            while let Ok((tcp, _)) = l.accept().await {
                conns.fetch_add(1, SeqCst);
                tokio::spawn(serve(tcp, seen.clone(), script.clone(), idle_reset));
            }
        });
        o
    }

    /// Requests received so far.
    pub fn seen(&self) -> Vec<Msg> {
        self.seen.lock().unwrap().clone()
    }

    /// Requests received so far, forgotten.
    pub fn take(&self) -> Vec<Msg> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }

    pub fn connections(&self) -> usize {
        self.connections.load(SeqCst)
    }
}

async fn serve(
    mut tcp: TcpStream,
    seen: Arc<Mutex<Vec<Msg>>>,
    script: Script,
    idle_reset: Option<Duration>,
) {
    let (mut buf, mut chunk) = (Vec::new(), vec![0u8; 16384]);
    let mut continued = false;
    loop {
        match parse(&buf, Kind::Request, false) {
            Err(_) => return,
            Ok(Some((req, n))) => {
                buf.drain(..n);
                continued = false;
                seen.lock().unwrap().push(req.clone());
                for act in script(&req) {
                    match act {
                        Act::Write(b) => {
                            if tcp.write_all(&b).await.is_err() {
                                return;
                            }
                        }
                        Act::Sleep(d) => tokio::time::sleep(d).await,
                        Act::Close => return,
                    }
                }
                continue;
            }
            Ok(None) => {}
        }
        // A request that expects 100-continue and whose body does not follow within 300 ms
        // gets its 100 (a proxy may wait for it before sending the body).
        let waiting = !continued && expects_continue(&buf);
        let wait = match idle_reset.filter(|_| buf.is_empty()) {
            _ if waiting => Some(Duration::from_millis(300)),
            idle => idle,
        };
        let read = tcp.read(&mut chunk);
        let got = match wait {
            Some(wait) => match tokio::time::timeout(wait, read).await {
                Ok(r) => r,
                Err(_) if waiting => {
                    continued = true;
                    if tcp
                        .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                        .await
                        .is_err()
                    {
                        return;
                    }
                    continue;
                }
                Err(_) => {
                    let _ = tcp.set_zero_linger();
                    return;
                }
            },
            None => read.await,
        };
        match got {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn expects_continue(buf: &[u8]) -> bool {
    matches!(parse_head(buf, Kind::Request), Ok(Some((_, fields, _)))
        if fields.iter().any(|(n, v)| n.eq_ignore_ascii_case("expect")
            && v.eq_ignore_ascii_case("100-continue")))
}
