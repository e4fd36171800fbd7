//! The end of every request: its metrics and cache counters (`account`), and the timing
//! record handed to the access log (`record`), built from pingora's session and the context.

use super::caching;
use super::ctx::{Ctx, Outcome};
use super::failure;
use super::forward::request_host;
use crate::accesslog::{CompressionRecord, Record, Termination, TlsRecord};
use crate::cache;
use crate::clock::{ms, ms_between};
use crate::tls::TlsFacts;
use pingora::http::RequestHeader;
use pingora::proxy::Session;
use pingora::Error;
use std::time::{Instant, SystemTime};

/// Per-request bookkeeping once the response is done (or failed): cache counters and
/// metrics, all pre-resolved atomics.
pub fn account(session: &Session, ctx: &Ctx) {
    super::compression::account(ctx);
    let cache_status = caching::status(session, ctx);
    if let Some(status) = cache_status {
        ctx.rt
            .cache
            .record(status, session.cache.lock_duration().is_some());
    }
    let metrics = &ctx.rt.route_metrics;
    let no_route = metrics.len() - 1;
    let route = ctx.routed.map_or(no_route, |r| r.route.min(no_route));
    metrics[route].observe(
        ctx.upstream.server,
        session.response_written().map_or(0, |r| r.status.as_u16()),
        cache_status,
        ctx.timings.started.elapsed().as_secs_f64(),
        ctx.timings.response_ms.map(|ms| ms / 1000.0),
    );
}

fn tls_record(session: &Session) -> Option<TlsRecord> {
    let digest = session.digest()?;
    let ssl = digest.ssl_digest.as_ref()?;
    Some(TlsRecord {
        sni: ssl.extension.get::<TlsFacts>().and_then(|f| f.sni.clone()),
        version: ssl.version.to_string(),
        cipher: ssl.cipher.to_string(),
        alpn: if session.as_downstream().is_http2() {
            "h2"
        } else {
            "http/1.1"
        },
        handshake_ms: digest
            .timing_digest
            .iter()
            .rev()
            .flatten()
            .find_map(|t| t.establishment_duration)
            .map(ms),
    })
}

fn termination(session: &Session, e: Option<&Error>, ctx: &Ctx) -> Termination {
    let from_cache = matches!(
        caching::status(session, ctx),
        Some(cache::Status::Hit | cache::Status::Stale)
    );
    match e {
        _ if matches!(
            ctx.outcome,
            Outcome::Denied(_) | Outcome::RateLimited(_) | Outcome::Blocked
        ) =>
        {
            Termination::Denied
        }
        _ if ctx.outcome.is_local() => Termination::Local,
        _ if from_cache => Termination::Cache,
        None => Termination::Done,
        Some(e) => failure::termination(e),
    }
}

/// The timing record of a finished request.
pub fn record(session: &Session, e: Option<&Error>, ctx: &Ctx) -> Record {
    let now = Instant::now();
    let t = &ctx.timings;
    let rt = &ctx.rt;
    let req = session.req_header();
    let route = ctx.routed.map(|r| &rt.config.routes[r.route]);
    let pool = ctx.routed.map(|r| &rt.pools[r.pool]);
    let server = pool
        .zip(ctx.upstream.server)
        .map(|(p, s)| p.servers[s].config.name.clone());
    Record {
        time: Some(SystemTime::now()),
        request_id: ctx
            .request_id
            .as_ref()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default(),
        client: super::forward::client(session, &rt.config.client_address).map(|f| f.addr),
        listener: ctx
            .listener
            .map(|l| rt.config.listeners[l].name.clone())
            .unwrap_or_default(),
        tls: tls_record(session),
        method: req.method.to_string(),
        authority: request_host(req).unwrap_or("-").to_string(),
        path: req
            .uri
            .path_and_query()
            .map_or_else(|| "/".into(), |pq| pq.as_str().to_string()),
        http_version: http_version(req.version),
        status: session.response_written().map_or(0, |r| r.status.as_u16()),
        bytes_in: session.as_downstream().body_bytes_read() as u64,
        bytes_out: session.as_downstream().body_bytes_sent() as u64,
        route: route.map(|r| r.name.clone()),
        pool: pool.map(|p| p.config.name.clone()),
        server,
        cache: caching::status(session, ctx).map(|c| c.as_str()),
        readonly: ctx.readonly,
        readonly_refused: ctx.outcome == Outcome::ReadonlyRefused,
        t_conn_age_ms: conn_age(session, t.started, now),
        t_queue_ms: t.first_peer.map(|p| ms_between(t.started, p)),
        t_connect_ms: t.connect_ms,
        t_response_ms: t.response_ms,
        t_total_ms: ms_between(t.started, now),
        retries: ctx.upstream.attempts.saturating_sub(1),
        termination: termination(session, e, ctx),
        error: error(e, ctx),
        request_headers: captured(&rt.config.access_log.capture_request_headers, req),
        response_headers: ctx.captured.clone(),
        compression: ctx.coders.logged().map(|c| CompressionRecord {
            encoding: c.encoding.token(),
            op: c.op.name(),
            bytes_before: c.bytes_in,
            bytes_after: c.bytes_out,
        }),
    }
}

/// Why gatehouse refused the request (an access rule: `access_rule:NAME`, a rate limit:
/// `rate_limit:NAME`), or what failed; else a dry-run limit it went over
/// (`rate_limit_dry_run:NAME`).
fn error(e: Option<&Error>, ctx: &Ctx) -> Option<String> {
    let config = &ctx.rt.config;
    match ctx.outcome {
        Outcome::Denied(rule) => {
            return Some(format!("access_rule:{}", config.access.rules[rule].name))
        }
        Outcome::RateLimited(l) => {
            return Some(format!("rate_limit:{}", config.rate_limits.limits[l].name))
        }
        Outcome::Blocked => return Some(format!("block:{}", ctx.blocked_by.as_deref()?)),
        _ => {}
    }
    ctx.outcome
        .reason()
        .map(str::to_string)
        .or_else(|| e.map(|e| e.etype().as_str().to_string()))
        .or_else(|| {
            let l = ctx.over_dry_run?;
            Some(format!(
                "rate_limit_dry_run:{}",
                config.rate_limits.limits[l].name
            ))
        })
}

/// How long the client's connection had been open when this request started.
fn conn_age(session: &Session, started: Instant, now: Instant) -> Option<f64> {
    session
        .digest()
        .and_then(|d| d.timing_digest.first().cloned().flatten())
        .and_then(|t| SystemTime::now().duration_since(t.established_ts).ok())
        .map(|d| (ms(d) - ms_between(started, now)).max(0.0))
}

/// The request fields the access log captures (`capture_request_headers`), those present.
fn captured(names: &[http::HeaderName], req: &RequestHeader) -> Vec<(http::HeaderName, String)> {
    names
        .iter()
        .filter_map(|name| {
            let v = req.headers.get(name)?;
            Some((
                name.clone(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            ))
        })
        .collect()
}

fn http_version(v: http::Version) -> &'static str {
    match v {
        http::Version::HTTP_10 => "HTTP/1.0",
        http::Version::HTTP_2 => "HTTP/2.0",
        _ => "HTTP/1.1",
    }
}
