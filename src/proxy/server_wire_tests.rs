//! `server_wire`'s framing against pingora's HTTP/1 client: for generated response heads,
//! bodies and trailing bytes, whenever `framing` takes a response (the direct exchange relays
//! it), pingora's client reading the same bytes must see the same status, the same body, and the same verdict on
//! reusing the connection (bytes past the framing close it on both).

use super::*;
use pingora::http::RequestHeader;
use pingora::protocols::http::v1::client::HttpSession as ServerConn;
use pingora::protocols::http::HttpTask;
use proptest::prelude::*;
use tokio::io::AsyncWriteExt;

/// A generated response: the bytes the server sends, and whether the request was HEAD.
#[derive(Debug, Clone)]
struct Case {
    head: String,
    body: Vec<u8>,
    is_head: bool,
}

fn field() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "0",
            "2",
            "5",
            "7",
            "05",
            "+5",
            "-1",
            "",
            "5, 5",
            "99999999999999999999",
            "0x5"
        ])
        .prop_map(|v| format!("Content-Length: {v}")),
        Just("content-length: 5".to_string()),
        Just("Transfer-Encoding: chunked".to_string()),
        prop::sample::select(vec![
            "close",
            "keep-alive",
            "Close, x",
            "upgrade",
            "x, CLOSE"
        ])
        .prop_map(|v| format!("Connection: {v}")),
        Just("X-Other: 1".to_string()),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    let status = prop::sample::select(vec![200u16, 201, 204, 206, 301, 304, 404, 500, 599]);
    (
        status,
        prop::bool::weighted(0.8),
        prop::sample::select(vec!["HTTP/1.1", "HTTP/1.1", "HTTP/1.1", "HTTP/1.0"]),
        prop::collection::vec(field(), 0..4),
        // Mostly bodies as long as a generated Content-Length, or none.
        prop_oneof![
            Just(Vec::new()),
            Just(b"OK".to_vec()),
            Just(b"hello".to_vec()),
            Just(b"1234567".to_vec()),
            prop::collection::vec(any::<u8>(), 0..12),
        ],
        prop::bool::weighted(0.3),
    )
        .prop_map(|(status, canonical, version, fields, body, is_head)| {
            let code = http::StatusCode::from_u16(status).unwrap();
            let reason = match canonical {
                true => code.canonical_reason().unwrap_or("Other"),
                false => "Fine",
            };
            let mut head = format!("{version} {status} {reason}\r\n");
            for f in fields {
                head.push_str(&f);
                head.push_str("\r\n");
            }
            head.push_str("\r\n");
            Case {
                head,
                body,
                is_head,
            }
        })
}

/// What pingora's client makes of the bytes: status, body, whether the connection is kept;
/// `None` when it fails (a body cut short).
async fn pingora_reads(case: &Case) -> Option<(u16, Vec<u8>, bool)> {
    let (stream, mut peer) = crate::conn::test_loopback().await;
    let mut conn = ServerConn::new(stream);
    conn.read_timeout = Some(Duration::from_secs(2));
    let method = if case.is_head { "HEAD" } else { "GET" };
    let req = RequestHeader::build_no_case(method, b"/", Some(0)).unwrap();
    let mut bytes = case.head.as_bytes().to_vec();
    bytes.extend_from_slice(&case.body);
    crate::pingora_ext::exchange_taken_over(&mut conn, req, &bytes);
    // The server has nothing more to say: a read past what came ends the connection.
    peer.shutdown().await.unwrap();
    let mut status = None;
    let mut body = Vec::new();
    loop {
        match conn.read_response_task().await.ok()? {
            HttpTask::Header(resp, end) => {
                status = Some(resp.status.as_u16());
                if end {
                    break;
                }
            }
            HttpTask::Body(b, end) => {
                body.extend_from_slice(&b.unwrap_or_default());
                if end {
                    break;
                }
            }
            _ => break,
        }
    }
    conn.respect_keepalive();
    let kept = conn.reuse().await.is_some();
    Some((status?, body, kept))
}

#[test]
fn framing_agrees_with_pingoras_client() {
    let config = ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let compared = std::cell::Cell::new(0);
    let result = proptest::test_runner::TestRunner::new(config).run(&case(), |case| {
        let mut lines = [httparse::EMPTY_HEADER; MAX_LINES];
        let mut resp = httparse::Response::new(&mut lines);
        let Ok(httparse::Status::Complete(_)) = resp.parse(case.head.as_bytes()) else {
            return Ok(()); // left to pingora's client by `parse`
        };
        let Some(f) = framing(&resp, case.is_head) else {
            return Ok(()); // likewise
        };
        compared.set(compared.get() + 1);
        let pingora = rt.block_on(pingora_reads(&case));
        let available = case.body.len() as u64;
        // The relay: `f.body` bytes if they all came, the connection kept only when nothing
        // follows them and the server keeps it.
        let relay = (available >= f.body).then(|| {
            let body = case.body[..f.body as usize].to_vec();
            (f.status.as_u16(), body, f.keepalive && available == f.body)
        });
        // One difference, intended: a `close` option in any Connection field closes the
        // relayed connection; pingora's client reads only some of several Connection fields
        // and may keep it. The relay may close where pingora keeps, never the reverse.
        let close_named = case.head.lines().any(|l| {
            l.to_ascii_lowercase().starts_with("connection:")
                && l.to_ascii_lowercase().contains("close")
        });
        let relay = match (relay, &pingora) {
            (Some((s, b, false)), Some((_, _, true))) if close_named => Some((s, b, true)),
            (relay, _) => relay,
        };
        prop_assert_eq!(relay, pingora, "{:?}", case);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let compared = compared.get();
    assert!(
        compared >= 32,
        "only {compared} generated responses were relayed ones"
    );
}
