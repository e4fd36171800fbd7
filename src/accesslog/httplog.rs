//! HAProxy's `option httplog` line, so the tools HAProxy operators read logs with (`halog`,
//! goaccess's HAProxy format) read gatehouse's:
//!
//! ```text
//! <134>Nov 27 10:00:00 edge1 gatehouse[812]: 192.0.2.7:51234 [27/Nov/2026:10:00:00.120] https
//!   web/app1 0/0/1/12/14 200 2750 - - ---- 0/0/0/0/0 0/0 {example.com} {0.012} "GET / HTTP/1.1"
//! ```
//!
//! Fields, in HAProxy's terms: client, accept date (the request's start, UTC), frontend (the
//! listener), backend/server (the pool and server; `<CACHE>` for a cache hit, `<NOSRV>` when no
//! server was used; the listener as backend when no pool was chosen), TR/Tw/Tc/Tr/Ta in whole
//! milliseconds (-1 for a phase never reached; TR is 0: pingora reads request headers before
//! gatehouse sees the request), status, body bytes sent, two cookie fields ("-"), the
//! termination state (two letters, then "--" for persistence cookies), the connection
//! counters (not tracked per request: 0, retries real), queues (0/0: gatehouse does not
//! queue), captured request and response headers in braces, and the quoted request line.
//! Non-printable characters, `"` and `#` (and `{|}` inside captures) are written `#XX`.

use super::format::rfc3164_header;
use super::record::{Record, Termination};
use super::text;
use crate::config::LogTarget;
use std::time::Duration;

pub fn format(t: &LogTarget, r: &Record) -> String {
    let mut out = rfc3164_header(t, r, 512);
    out.push(' ');
    match r.client {
        Some(a) => text::addr(&mut out, a),
        None => out.push_str("-:0"),
    }
    out.push_str(" [");
    let accepted = r
        .time
        .map(|end| end - Duration::from_secs_f64(r.t_total_ms.max(0.0) / 1000.0));
    text::haproxy_date(&mut out, accepted.unwrap_or(std::time::UNIX_EPOCH));
    out.push_str("] ");
    out.push_str(&r.listener);
    out.push(' ');
    out.push_str(r.pool.as_deref().unwrap_or(&r.listener));
    out.push('/');
    let server = match (&r.server, r.termination) {
        (Some(s), _) => s.as_str(),
        (None, Termination::Cache) => "<CACHE>",
        (None, _) => "<NOSRV>",
    };
    out.push_str(server);
    out.push_str(" 0/");
    let reached = r.t_connect_ms.is_some();
    timer(&mut out, r.t_queue_ms.filter(|_| reached));
    out.push('/');
    timer(&mut out, r.t_connect_ms);
    out.push('/');
    timer(&mut out, r.t_response_ms);
    out.push('/');
    timer(&mut out, Some(r.t_total_ms));
    out.push(' ');
    if r.status == 0 {
        out.push_str("-1");
    } else {
        text::int(&mut out, r.status);
    }
    out.push(' ');
    text::int(&mut out, r.bytes_out);
    out.push_str(" - - ");
    out.push_str(state(r.termination));
    out.push_str("-- 0/0/0/0/");
    text::int(&mut out, r.retries);
    out.push_str(" 0/0");
    captures(&mut out, &r.request_headers);
    captures(&mut out, &r.response_headers);
    out.push_str(" \"");
    for part in [r.method.as_str(), " ", &r.path, " ", r.http_version] {
        encode(&mut out, part, b"\"#");
    }
    out.push('"');
    out
}

/// Milliseconds rounded to whole numbers, -1 when the phase was never reached.
fn timer(out: &mut String, ms: Option<f64>) {
    match ms {
        Some(v) => text::int(out, v.max(0.0).round() as u64),
        None => out.push_str("-1"),
    }
}

/// HAProxy's first two termination-state letters: who ended the session (`C`lient,
/// `S`erver, `P`roxy, `L`ocal, `I`nternal; lower case for a timeout) and in which phase
/// (`R`equest, `C`onnect, `H`eaders, `D`ata), `--` for a normal end.
fn state(t: Termination) -> &'static str {
    match t {
        Termination::Done | Termination::Cache => "--",
        Termination::Local => "LR",
        Termination::Denied => "PR",
        Termination::ClientAbort => "CD",
        Termination::ClientTimeout => "cR",
        Termination::ConnectError | Termination::NoServer => "SC",
        Termination::ServerTimeout => "sH",
        Termination::ServerError => "SH",
        Termination::InternalError => "PH",
    }
}

/// ` {v1|v2}` when headers were captured (HAProxy prints the block only when captures exist).
fn captures(out: &mut String, list: &[(http::HeaderName, String)]) {
    if list.is_empty() {
        return;
    }
    out.push_str(" {");
    for (i, (_, v)) in list.iter().enumerate() {
        if i > 0 {
            out.push('|');
        }
        encode(out, v, b"\"#{|}");
    }
    out.push('}');
}

/// `v` with control characters, DEL and `special` written as `#XX`, as HAProxy logs them.
fn encode(out: &mut String, v: &str, special: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for ch in v.chars() {
        let b = u32::from(ch);
        if b < 0x20 || b == 0x7f || (b < 0x80 && special.contains(&(b as u8))) {
            out.push('#');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        } else {
            out.push(ch);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{LogFormat, LogTransport};
    use std::time::UNIX_EPOCH;

    #[test]
    fn writes_haproxys_httplog_fields() {
        let target = LogTarget {
            name: "t".into(),
            transport: LogTransport::Stdout,
            format: LogFormat::Haproxy,
            facility: 16,
            tag: "gatehouse".into(),
            hostname: "edge1".into(),
            sample: 1.0,
        };
        let r = Record {
            time: Some(UNIX_EPOCH + Duration::from_millis(86_400_000 + 1_500)),
            client: Some("192.0.2.7:51234".parse().unwrap()),
            listener: "https".into(),
            pool: Some("web".into()),
            server: Some("app1".into()),
            method: "GET".into(),
            path: "/a\"b".into(),
            http_version: "HTTP/1.1",
            status: 200,
            bytes_out: 2750,
            t_queue_ms: Some(0.2),
            t_connect_ms: Some(1.4),
            t_response_ms: Some(11.6),
            t_total_ms: 1_000.0,
            request_headers: vec![(http::header::HOST, "example.com".into())],
            response_headers: vec![(http::header::SERVER, "x|y".into())],
            compression: None,
            ..Default::default()
        };
        assert_eq!(
            format(&target, &r),
            "<134>Jan  2 00:00:01 edge1 gatehouse[".to_string()
                + &std::process::id().to_string()
                + "]: 192.0.2.7:51234 [02/Jan/1970:00:00:00.500] https web/app1 0/0/1/12/1000 \
                   200 2750 - - ---- 0/0/0/0/0 0/0 {example.com} {x#7Cy} \"GET /a#22b HTTP/1.1\""
        );
        let hit = Record {
            termination: Termination::Cache,
            pool: None,
            server: None,
            t_connect_ms: None,
            t_response_ms: None,
            request_headers: vec![],
            response_headers: vec![],
            compression: None,
            status: 0,
            ..r
        };
        let line = format(&target, &hit);
        assert!(
            line.contains(" https https/<CACHE> 0/-1/-1/-1/1000 -1 2750 - - ---- "),
            "{line}"
        );
        assert!(line.ends_with(" 0/0 \"GET /a#22b HTTP/1.1\""), "{line}");
    }
}
