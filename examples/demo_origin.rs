//! A small demo origin: two "web servers" for gatehouse to proxy to in the README's first
//! command. Each answers a few pages that exercise the proxy: a cacheable home page, a slow
//! page, a private page with a cookie, a POST endpoint and a health check, all with an
//! `X-Runtime` timing header like a Rails app's.
//!
//! Usage: demo-origin [PORT ...]   (default: 8001 8002; each port is one server)

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::time::{Duration, Instant};

#[tokio::main]
async fn main() {
    let ports: Vec<u16> = std::env::args()
        .skip(1)
        .map(|a| {
            a.parse()
                .unwrap_or_else(|_| die(&format!("not a port: {a}")))
        })
        .collect();
    let ports = if ports.is_empty() {
        vec![8001, 8002]
    } else {
        ports
    };
    let mut tasks = Vec::new();
    for (i, port) in ports.into_iter().enumerate() {
        let name = format!("web{}", i + 1);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap_or_else(|e| die(&format!("cannot listen on 127.0.0.1:{port}: {e}")));
        eprintln!("demo-origin: {name} listening on http://127.0.0.1:{port}/");
        tasks.push(tokio::spawn(serve(listener, name)));
    }
    for t in tasks {
        let _ = t.await;
    }
}

fn die(msg: &str) -> ! {
    eprintln!("demo-origin: {msg}");
    std::process::exit(1)
}

async fn serve(listener: tokio::net::TcpListener, name: String) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let name = name.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| handle(req, name.clone()));
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

async fn handle(req: Request<Incoming>, name: String) -> Result<Response<Full<Bytes>>, Infallible> {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let mut builder = Response::builder().header("X-Served-By", &name);
    let body: String = match (method.as_str(), path.as_str()) {
        ("GET" | "HEAD", "/") => {
            builder = builder
                .header("Content-Type", "text/html; charset=utf-8")
                .header("Cache-Control", "public, max-age=10");
            format!(
                "<!doctype html><title>gatehouse demo</title><h1>Served by {name}</h1>\
                 <ul><li><a href=\"/slow?ms=1500\">/slow?ms=1500</a> a slow page\
                 <li><a href=\"/private\">/private</a> a page with a session cookie\
                 <li>POST /submit an endpoint that takes writes\
                 <li><a href=\"/health\">/health</a> the health check</ul>\n"
            )
        }
        ("GET" | "HEAD", "/slow") => {
            let ms = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("ms="))
                .and_then(|v| v.parse().ok())
                .unwrap_or(1000u64)
                .min(60_000);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            builder = builder.header("Cache-Control", "no-store");
            format!("{name}: slept {ms} ms\n")
        }
        ("GET" | "HEAD", "/private") => {
            builder = builder
                .header("Cache-Control", "private")
                .header("Set-Cookie", "session=demo; HttpOnly; Path=/");
            format!("{name}: a private page\n")
        }
        ("POST", "/submit") => {
            let len = req
                .into_body()
                .collect()
                .await
                .map_or(0, |b| b.to_bytes().len());
            builder = builder.header("Cache-Control", "no-store");
            format!("{name}: stored {len} bytes\n")
        }
        ("GET" | "HEAD", "/health") => "ok\n".to_string(),
        _ => {
            builder = builder.status(404);
            format!("{name}: no page at {path}\n")
        }
    };
    let runtime = format!("{:.6}", started.elapsed().as_secs_f64());
    let resp = builder
        .header("X-Runtime", runtime)
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::from_static(b"error\n"))));
    Ok(resp)
}
