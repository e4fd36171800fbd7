//! `takes_header` against the request as httparse reads it: for generated HTTP/1 request heads,
//! the direct exchange takes exactly the plain GET/HEAD requests RFC 9112 lets it carry without a
//! body, an upgrade or connection options (origin-form target, one Host without userinfo).

use super::*;
use proptest::prelude::*;

fn line() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "Host: a",
        "host: b.example:8080",
        "Host: u@a",
        "Connection: keep-alive",
        "connection: Keep-Alive, close",
        "Connection: close, upgrade",
        "Connection: x-custom",
        "Content-Length: 0",
        "Transfer-Encoding: chunked",
        "Expect: 100-continue",
        "Upgrade: websocket",
        "TE: trailers",
        "Trailer: x",
        "HTTP2-Settings: AAMAAABkAAQAAP__",
        "Accept: */*",
        "Cookie: a=1",
    ])
    .prop_map(str::to_string)
}

fn head() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["GET", "GET", "HEAD", "POST", "OPTIONS", "get"]),
        prop::sample::select(vec!["/", "/a?b=1", "/", "http://a/x", "*"]),
        prop::sample::select(vec!["HTTP/1.1", "HTTP/1.1", "HTTP/1.0"]),
        prop::collection::vec(line(), 0..4),
        prop::bool::weighted(0.7),
    )
        .prop_map(|(method, target, version, lines, host)| {
            let mut head = format!("{method} {target} {version}\r\n");
            if host {
                head.push_str("Host: a\r\n");
            }
            for l in lines {
                head.push_str(&l);
                head.push_str("\r\n");
            }
            head + "\r\n"
        })
}

/// What the direct exchange may carry, from httparse's reading of the head.
fn carriable(req: &httparse::Request) -> bool {
    let field = |name: &'static str| {
        req.headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| std::str::from_utf8(h.value).unwrap().to_ascii_lowercase())
    };
    let options_only = field("connection").all(|v| {
        v.split(',')
            .all(|t| matches!(t.trim(), "keep-alive" | "close"))
    });
    let hosts: Vec<String> = field("host").collect();
    let excluded = [
        "upgrade",
        "te",
        "trailer",
        "transfer-encoding",
        "expect",
        "content-length",
        "http2-settings",
    ];
    matches!(req.method, Some("GET" | "HEAD"))
        && req.version == Some(1)
        && req.path.is_some_and(|p| p.starts_with('/'))
        && hosts.len() == 1
        && !hosts[0].contains('@')
        && options_only
        && excluded.iter().all(|n| field(n).next().is_none())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn takes_header_takes_what_it_may_carry(head in head()) {
        let mut lines = [httparse::EMPTY_HEADER; 16];
        let mut parsed = httparse::Request::new(&mut lines);
        prop_assert!(matches!(parsed.parse(head.as_bytes()), Ok(httparse::Status::Complete(_))));
        let mut req = RequestHeader::build_no_case(
            parsed.method.unwrap(),
            parsed.path.unwrap().as_bytes(),
            Some(parsed.headers.len()),
        )
        .unwrap();
        if parsed.version == Some(0) {
            req.set_version(http::Version::HTTP_10);
        }
        for h in parsed.headers.iter() {
            req.append_header(h.name.to_string(), h.value).unwrap();
        }
        prop_assert_eq!(takes_header(&req), carriable(&parsed), "{}", head);
    }
}
