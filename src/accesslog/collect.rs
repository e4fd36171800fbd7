//! Builds the access log record of a finished request from pingora's session and our context.

use super::record::{Record, TlsRecord};
use crate::proxy::{request_host, termination, Ctx};
use crate::tls::TlsFacts;
use pingora::proxy::Session;
use pingora::Error;
use std::time::{Instant, SystemTime};

pub fn record(session: &Session, e: Option<&Error>, ctx: &Ctx) -> Record {
    let now = Instant::now();
    let ms = |from: Instant, to: Instant| to.saturating_duration_since(from).as_secs_f64() * 1000.0;
    let rt = &ctx.rt;
    let req = session.req_header();
    let digest = session.digest();
    let tls = digest
        .and_then(|d| d.ssl_digest.as_ref())
        .map(|ssl| TlsRecord {
            sni: ssl.extension.get::<TlsFacts>().and_then(|f| f.sni.clone()),
            version: ssl.version.to_string(),
            cipher: ssl.cipher.to_string(),
            alpn: if session.as_downstream().is_http2() {
                "h2"
            } else {
                "http/1.1"
            },
            handshake_ms: digest.and_then(|d| {
                d.timing_digest
                    .iter()
                    .rev()
                    .flatten()
                    .find_map(|t| t.establishment_duration)
                    .map(|d| d.as_secs_f64() * 1000.0)
            }),
        });
    let conn_age = digest
        .and_then(|d| d.timing_digest.first().cloned().flatten())
        .and_then(|t| SystemTime::now().duration_since(t.established_ts).ok())
        .map(|d| (d.as_secs_f64() * 1000.0 - ms(ctx.started, now)).max(0.0));
    let log = &rt.config.access_log;
    let request_headers = log
        .capture_request_headers
        .iter()
        .filter_map(|name| {
            let v = req.headers.get(name)?;
            Some((
                name.clone(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            ))
        })
        .collect();
    let route = ctx.route.map(|r| &rt.config.routes[r]);
    let pool = ctx.pool.map(|p| &rt.pools[p]);
    let server = pool
        .zip(ctx.server)
        .map(|(p, s)| p.servers[s].config.name.clone());
    let cache = ctx
        .cache_attempted
        .then(|| crate::cache::Status::from_phase(session.cache.phase()));
    let served_from_cache = matches!(
        cache,
        Some(crate::cache::Status::Hit | crate::cache::Status::Stale)
    );
    let termination = match e {
        _ if ctx.local_answer => "local",
        _ if served_from_cache => "cache",
        None => "done",
        Some(e) => termination(e),
    };
    Record {
        time: Some(SystemTime::now()),
        request_id: ctx
            .request_id
            .as_ref()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default(),
        client: session.client_addr().and_then(|a| a.as_inet()).copied(),
        listener: ctx
            .listener
            .map(|l| rt.config.listeners[l].name.clone())
            .unwrap_or_default(),
        tls,
        method: req.method.to_string(),
        authority: request_host(req).unwrap_or("-").to_string(),
        path: req
            .uri
            .path_and_query()
            .map_or_else(|| "/".into(), |pq| pq.as_str().to_string()),
        http_version: match req.version {
            http::Version::HTTP_10 => "HTTP/1.0",
            http::Version::HTTP_2 => "HTTP/2.0",
            _ => "HTTP/1.1",
        },
        status: session.response_written().map_or(0, |r| r.status.as_u16()),
        bytes_in: session.as_downstream().body_bytes_read() as u64,
        bytes_out: session.as_downstream().body_bytes_sent() as u64,
        route: route.map(|r| r.name.clone()),
        pool: pool.map(|p| p.config.name.clone()),
        server,
        cache: cache.map(|c| c.as_str()),
        readonly: ctx.readonly,
        readonly_refused: ctx.readonly_refused,
        t_conn_age_ms: conn_age,
        t_queue_ms: ctx.t_first_peer.map(|t| ms(ctx.started, t)),
        t_connect_ms: ctx.connect_ms,
        t_response_ms: ctx.response_ms,
        t_total_ms: ms(ctx.started, now),
        retries: ctx.attempts.saturating_sub(1),
        termination,
        error: ctx
            .refused
            .map(str::to_string)
            .or_else(|| e.map(|e| e.etype().as_str().to_string())),
        request_headers,
        response_headers: ctx.captured.clone(),
    }
}
