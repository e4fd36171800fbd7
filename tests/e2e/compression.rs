//! Compression at the edge (`src/compress`, `src/proxy/compression.rs`): what each client gets
//! is decoded here and compared byte for byte with the origin's body, for every coding,
//! whole and streamed, over HTTP/1.1 and HTTP/2; q-values; what is never compressed; ETag
//! weakening; a cached object compressed once and decoded for a client that takes none.

use crate::common::certs::{cert_entries, https_client, Ca};
use crate::common::syslog::{json_record, json_sink};
use crate::common::{
    boot, boot_config, client, free_port, metrics_text, server_section, state_dir,
};
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The origin's page: compressible text, not too repetitive.
fn page() -> Vec<u8> {
    (0..1500u32)
        .map(|i| {
            format!(
                "<tr><td>{i}</td><td>row {} of the table</td><td>{}</td></tr>\n",
                i * 7919 % 1000,
                i.wrapping_mul(2654435761) % 97
            )
        })
        .collect::<String>()
        .into_bytes()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// `body` decoded from `coding` ("" or identity: as it is).
fn decode(coding: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match coding {
        "" | "identity" => out.extend_from_slice(body),
        "gzip" => {
            flate2::read::MultiGzDecoder::new(body)
                .read_to_end(&mut out)
                .expect("gzip decodes");
        }
        "br" => {
            brotli::Decompressor::new(body, 4096)
                .read_to_end(&mut out)
                .expect("br decodes");
        }
        "zstd" => out = zstd::decode_all(body).expect("zstd decodes"),
        other => panic!("unexpected coding {other:?}"),
    }
    out
}

/// Each request's path and Accept-Encoding, as the origin saw them.
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// A raw HTTP/1.1 origin answering by path; it records each request's path and
/// Accept-Encoding.
struct Origin {
    addr: SocketAddr,
    seen: Seen,
}

impl Origin {
    async fn start() -> Origin {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        tokio::spawn(async move {
            while let Ok((conn, _)) = l.accept().await {
                tokio::spawn(serve(conn, s.clone()));
            }
        });
        Origin { addr, seen }
    }

    fn requests(&self, path: &str) -> Vec<Option<String>> {
        let seen = self.seen.lock().unwrap();
        seen.iter()
            .filter(|(p, _)| p == path)
            .map(|(_, ae)| ae.clone())
            .collect()
    }

    fn pool(&self) -> String {
        format!(
            "[pools.web.health]\nenabled = false\n[[pools.web.servers]]\nname = \"o\"\naddress = \"{}\"\n",
            self.addr
        )
    }
}

async fn serve(mut conn: tokio::net::TcpStream, seen: Seen) {
    let mut buf = Vec::new();
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            match conn.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        buf.drain(..head_end);
        let mut lines = head.lines();
        let mut start = lines.next().unwrap_or("").split(' ');
        let method = start.next().unwrap_or("").to_string();
        let path = start.next().unwrap_or("").to_string();
        let ae = lines.find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case("accept-encoding")
                .then(|| v.trim().to_string())
        });
        seen.lock().unwrap().push((path.clone(), ae));
        if answer(&mut conn, &method, &path).await.is_err() {
            return;
        }
    }
}

async fn answer(conn: &mut tokio::net::TcpStream, method: &str, path: &str) -> std::io::Result<()> {
    let body = page();
    let (fields, body): (String, Vec<u8>) = if path.starts_with("/c/") {
        let tag = path.trim_start_matches("/c/");
        let f = format!("Content-Type: text/html; charset=utf-8\r\nCache-Control: max-age=60\r\nETag: \"{tag}\"\r\n");
        (f, body)
    } else if path == "/stream" {
        let head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nCache-Control: no-store\r\nTransfer-Encoding: chunked\r\n\r\n";
        conn.write_all(head.as_bytes()).await?;
        for part in body.chunks(body.len() / 4 + 1) {
            let chunk = format!("{:x}\r\n", part.len());
            conn.write_all(chunk.as_bytes()).await?;
            conn.write_all(part).await?;
            conn.write_all(b"\r\n").await?;
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        return conn.write_all(b"0\r\n\r\n").await;
    } else {
        let no_store = "Cache-Control: no-store\r\n";
        match path {
            "/nt" => ("Content-Type: text/html\r\nCache-Control: no-store, no-transform\r\n".into(), body),
            "/partial" => (
                format!("Content-Type: text/html\r\n{no_store}Content-Range: bytes 0-{}/{}\r\n", body.len() - 1, body.len() * 2),
                body,
            ),
            "/cgz" => (
                "Content-Type: text/html\r\nCache-Control: max-age=60, no-transform\r\nContent-Encoding: gzip\r\n".into(),
                gzip(&body),
            ),
            "/gz" => (format!("Content-Type: text/html\r\n{no_store}Content-Encoding: gzip\r\nVary: Accept-Encoding\r\n"), gzip(&body)),
            "/png" => (format!("Content-Type: image/png\r\n{no_store}"), body),
            "/small" => (format!("Content-Type: text/html\r\n{no_store}"), body[..100].to_vec()),
            _ => (format!("Content-Type: text/html\r\n{no_store}ETag: \"p1\"\r\n"), body),
        }
    };
    let status = if path == "/partial" {
        "206 Partial Content"
    } else {
        "200 OK"
    };
    let head = format!(
        "HTTP/1.1 {status}\r\n{fields}Content-Length: {}\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).await?;
    if method != "HEAD" {
        conn.write_all(&body).await?;
    }
    Ok(())
}

/// What a response was: status, the fields asked for, the body decoded from its coding.
struct Got {
    status: u16,
    coding: String,
    vary: String,
    etag: String,
    raw: Vec<u8>,
    body: Vec<u8>,
}

async fn get(c: &reqwest::Client, url: &str, fields: &[(&str, &str)]) -> Got {
    let mut req = c.get(url);
    for (n, v) in fields {
        req = req.header(*n, *v);
    }
    let r = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let field = |n: &str| {
        r.headers()
            .get_all(n)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (status, coding, vary, etag) = (
        r.status().as_u16(),
        field("content-encoding"),
        field("vary"),
        field("etag"),
    );
    let raw = r.bytes().await.unwrap().to_vec();
    let body = decode(&coding, &raw);
    Got {
        status,
        coding,
        vary,
        etag,
        raw,
        body,
    }
}

fn route(cache: bool, compression: &str) -> String {
    let cache = if cache { "[routes.cache]\n" } else { "" };
    format!("[[routes]]\npool = \"web\"\n{cache}[routes.compression]\n{compression}\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_coding_round_trips_whole_and_streamed() {
    let o = Origin::start().await;
    let gh = boot(&format!("{}{}", o.pool(), route(false, ""))).await;
    let c = client();
    for coding in ["gzip", "br", "zstd"] {
        for path in ["/p/page", "/stream"] {
            let g = get(&c, &gh.url(path), &[("accept-encoding", coding)]).await;
            assert_eq!(g.status, 200);
            assert_eq!(g.coding, coding, "{path}");
            assert!(
                g.body == page(),
                "{coding} {path}: the body differs once decoded"
            );
            assert!(
                g.raw.len() * 3 < page().len(),
                "{coding} {path}: {} bytes",
                g.raw.len()
            );
            assert!(
                g.vary.to_ascii_lowercase().contains("accept-encoding"),
                "{path}: {}",
                g.vary
            );
        }
    }
    // A strong tag is weakened: the bytes differ.
    let g = get(&c, &gh.url("/p/page"), &[("accept-encoding", "gzip")]).await;
    assert_eq!(g.etag, "W/\"p1\"");
    let g = get(&c, &gh.url("/p/page"), &[]).await;
    assert_eq!((g.coding.as_str(), g.etag.as_str()), ("", "\"p1\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn q_values_choose_the_coding() {
    let o = Origin::start().await;
    let gh = boot(&format!("{}{}", o.pool(), route(false, ""))).await;
    let c = client();
    let cases = [
        ("gzip;q=0.5, br;q=0.9", "/p/q", "br"),
        ("br;q=0, gzip", "/p/q", "gzip"),
        ("gzip, deflate, br, zstd", "/p/q", "zstd"),
        ("*", "/p/q", "zstd"),
        ("*;q=0.5, zstd;q=0", "/p/q", "br"),
        ("gzip;q=0.5, identity", "/p/q", ""),
        ("identity", "/p/q", ""),
        ("deflate", "/p/q", ""),
        ("gzip;q=0", "/p/q", ""),
        ("gzip;q=bad", "/p/q", ""),
        // Under min_size: as it is, unless identity is refused.
        ("gzip", "/small", ""),
        ("gzip, identity;q=0", "/small", "gzip"),
    ];
    for (ae, path, want) in cases {
        let g = get(&c, &gh.url(path), &[("accept-encoding", ae)]).await;
        assert_eq!(g.coding, want, "Accept-Encoding: {ae} on {path}");
        let full = page();
        let origin = if path == "/small" {
            &full[..100]
        } else {
            &full[..]
        };
        assert!(g.body == origin, "{ae}: the body differs");
    }
    let g = get(&c, &gh.url("/p/q"), &[]).await;
    assert_eq!(g.coding, "", "no Accept-Encoding, no coding");
    assert!(
        g.vary.contains("Accept-Encoding"),
        "it could have been: {}",
        g.vary
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_is_never_compressed() {
    let o = Origin::start().await;
    let gh = boot(&format!(
        "{}{}",
        o.pool(),
        route(false, "preference = [\"br\", \"gzip\"]")
    ))
    .await;
    let c = client();
    let ae = [("accept-encoding", "gzip, br")];
    for path in ["/nt", "/partial", "/png"] {
        let g = get(&c, &gh.url(path), &ae).await;
        assert_eq!(g.coding, "", "{path} was compressed");
        assert!(g.raw == page(), "{path} changed");
    }
    // Already coded by the server: passed as it is to a client that takes it...
    let g = get(&c, &gh.url("/gz"), &ae).await;
    assert_eq!(g.coding, "gzip");
    assert!(
        g.raw == gzip(&page()),
        "the server's gzip bytes were changed"
    );
    // ... and decoded for one that does not.
    let g = get(&c, &gh.url("/gz"), &[("accept-encoding", "br")]).await;
    assert_eq!(g.coding, "");
    assert!(g.raw == page(), "not decoded for a client without gzip");
    // HEAD: the GET's fields, no body.
    let r = c
        .head(gh.url("/p/head"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-encoding"], "gzip");
    assert!(r.bytes().await.unwrap().is_empty());
    // A route without compression changes nothing.
    let plain = boot(&format!("{}[[routes]]\npool = \"web\"\n", o.pool())).await;
    let g = get(&c, &plain.url("/p/plain"), &ae).await;
    assert_eq!((g.coding.as_str(), g.vary.as_str()), ("", ""));
}

/// The count of `series` lines in gatehouse's metrics whose labels include all of `labels`.
async fn metric(admin: SocketAddr, series: &str, labels: &[&str]) -> f64 {
    let text = metrics_text(admin).await;
    text.lines()
        .filter(|l| l.starts_with(&format!("{series}{{")))
        .filter(|l| labels.iter().all(|want| l.contains(want)))
        .map(|l| l.rsplit_once(' ').unwrap().1.parse::<f64>().unwrap())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_object_is_compressed_once_and_decoded_for_identity() {
    let o = Origin::start().await;
    let (log, target) = json_sink().await;
    let toml = format!("{}{}{target}", o.pool(), route(true, ""));
    let gh = boot(&toml).await;
    let c = client();
    let url = gh.url("/c/once");
    let first = get(&c, &url, &[("accept-encoding", "br, zstd")]).await;
    assert!(first.body == page());
    let record = json_record(&log).await;
    assert_eq!(record["cache"], "MISS");
    assert_eq!(record["encoding"], "gzip", "{record}");
    assert_eq!(record["encoding_op"], "decompress", "{record}");
    assert_eq!(record["bytes_after"], page().len() as u64, "{record}");
    let mut stored = Vec::new();
    for ae in [
        "gzip",
        "gzip, br",
        "br;q=1, gzip;q=0.5, zstd",
        "GZIP",
        "x-gzip",
    ] {
        for _ in 0..4 {
            let g = get(&c, &url, &[("accept-encoding", ae)]).await;
            assert_eq!(g.coding, "gzip", "{ae}");
            assert!(g.body == page(), "{ae}: the stored body decodes to another");
            assert_eq!(g.etag, "W/\"once\"");
            stored = g.raw;
            let record = json_record(&log).await;
            assert_eq!(record["cache"], "HIT", "{record}");
        }
    }
    assert_eq!(
        o.requests("/c/once"),
        [Some("gzip".to_string())],
        "one fetch, asking for gzip"
    );
    let admin = gh.admin_address();
    let compressed = ["encoding=\"gzip\"", "op=\"compress\""];
    assert_eq!(
        metric(admin, "gatehouse_compression_responses_total", &compressed).await,
        1.0
    );
    // Clients that take no gzip get it decoded, from the same stored copy.
    for fields in [
        &[][..],
        &[("accept-encoding", "br")][..],
        &[("accept-encoding", "identity")][..],
    ] {
        let g = get(&c, &url, fields).await;
        assert_eq!((g.status, g.coding.as_str()), (200, ""), "{fields:?}");
        assert!(g.raw == page(), "{fields:?}: decoded differently");
        assert!(g.vary.contains("Accept-Encoding"));
    }
    assert_eq!(o.requests("/c/once").len(), 1);
    assert_eq!(
        metric(admin, "gatehouse_compression_responses_total", &compressed).await,
        1.0
    );
    let decoded = ["encoding=\"gzip\"", "op=\"decompress\""];
    assert_eq!(
        metric(admin, "gatehouse_compression_responses_total", &decoded).await,
        4.0
    );
    let bytes_out = ["encoding=\"gzip\"", "op=\"compress\"", "side=\"out\""];
    let out = metric(admin, "gatehouse_compression_bytes_total", &bytes_out).await;
    assert_eq!(out, stored.len() as f64);
    // A conditional request against the weakened tag, from the cache.
    let r = c
        .get(&url)
        .header("accept-encoding", "gzip")
        .header("if-none-match", "W/\"once\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    // A range of the stored coding, for a client taking gzip; the whole, decoded, otherwise.
    let r = c
        .get(&url)
        .header("accept-encoding", "gzip")
        .header("range", "bytes=10-99")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.bytes().await.unwrap()[..], stored[10..100]);
    let r = c
        .get(&url)
        .header("range", "bytes=10-99")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("content-encoding").is_none());
    assert!(r.bytes().await.unwrap()[..] == page()[..]);
    assert_eq!(o.requests("/c/once").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_clients_get_the_same() {
    let (ca, dir) = (Ca::new(), state_dir());
    let leaf = ca.issue(&dir, "a", &["a.test"]);
    let o = Origin::start().await;
    let addr = free_port();
    let toml = format!(
        "{}[[listeners]]\naddress = \"{addr}\"\n[listeners.tls]\n{}\n{}{}",
        server_section(),
        cert_entries(&[&leaf]),
        o.pool(),
        route(true, "cache_encoding = \"br\"")
    );
    let _gh = boot_config(gatehouse::Config::from_toml(&toml, "t").unwrap()).await;
    let c = https_client(&ca, &["a.test"], addr, false);
    let url = |p: &str| format!("https://a.test:{}{p}", addr.port());
    for coding in ["gzip", "br", "zstd"] {
        for path in ["/p/h2", "/stream", "/c/h2"] {
            let r = c
                .get(url(path))
                .header("accept-encoding", coding)
                .send()
                .await
                .unwrap();
            assert_eq!(r.version(), reqwest::Version::HTTP_2);
            let got = r
                .headers()
                .get("content-encoding")
                .map(|v| v.to_str().unwrap().to_string());
            let raw = r.bytes().await.unwrap();
            // The cached object is stored in br: gzip and zstd clients get it decoded.
            let want = match (path, coding) {
                ("/c/h2", "br") => Some("br"),
                ("/c/h2", _) => None,
                _ => Some(coding),
            };
            assert_eq!(got.as_deref(), want, "{path} {coding}");
            assert!(
                decode(got.as_deref().unwrap_or(""), &raw) == page(),
                "{path} {coding}"
            );
        }
    }
    assert_eq!(o.requests("/c/h2").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_compression_settings_name_their_key() {
    let bad = [
        ("gzip_level = 12", "routes[0].compression.gzip_level"),
        (
            "preference = [\"gzip\", \"lz4\"]",
            "routes[0].compression.preference[1]",
        ),
        ("preference = []", "routes[0].compression.preference"),
        (
            "cache_encoding = \"deflate\"",
            "routes[0].compression.cache_encoding",
        ),
        ("types = [\"html\"]", "routes[0].compression.types[0]"),
    ];
    for (line, key) in bad {
        let toml = format!(
            "[[listeners]]\naddress = \"127.0.0.1:1\"\n[[pools.web.servers]]\nname = \"o\"\naddress = \"127.0.0.1:2\"\n{}",
            route(false, line)
        );
        let err = gatehouse::Config::from_toml(&toml, "t")
            .expect_err(line)
            .to_string();
        assert!(err.contains(key), "{line}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_coding_is_never_sent_to_a_client_refusing_it() {
    // The server codes what gatehouse asks for, no-transform or not: one stored copy.
    let o = Origin::start().await;
    let gh = boot(&format!("{}{}", o.pool(), route(true, ""))).await;
    let c = client();
    let g = get(&c, &gh.url("/cgz"), &[("accept-encoding", "gzip")]).await;
    assert_eq!(g.coding, "gzip");
    assert!(g.vary.contains("Accept-Encoding"), "{}", g.vary);
    for fields in [&[][..], &[("accept-encoding", "identity")][..]] {
        let g = get(&c, &gh.url("/cgz"), fields).await;
        assert_eq!(g.coding, "", "{fields:?}");
        assert!(g.raw == page());
    }
    assert_eq!(o.requests("/cgz").len(), 1);
}
