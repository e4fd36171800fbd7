//! The syslog and JSON access log formats: RFC 5424 (the record as structured data plus a
//! readable message), RFC 3164 (key=value message, its header shared with HAProxy's `httplog`
//! line, `httplog.rs`), JSON lines.

use super::record::Record;
use super::text;
use crate::config::LogTarget;
use std::fmt::Write;

/// Enterprise number reserved for documentation (RFC 5612), for our SD-IDs.
const PEN: &str = "32473";
const SEVERITY_INFO: u8 = 6;

/// This process's id, asked of the kernel once (a `getpid` per record showed in profiles).
fn pid() -> u32 {
    static PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *PID.get_or_init(std::process::id)
}

/// One field's value, borrowed from the record: formats write it straight into their output,
/// so a record costs one `String` however many fields it has.
#[derive(Clone, Copy)]
enum Val<'a> {
    Str(&'a str),
    Int(u64),
    /// Milliseconds, written with three decimals.
    Ms(f64),
    Addr(std::net::SocketAddr),
    Missing,
}

impl Val<'_> {
    fn opt(v: Option<&str>) -> Val<'_> {
        v.map_or(Val::Missing, Val::Str)
    }

    fn ms(v: Option<f64>) -> Val<'static> {
        v.map_or(Val::Missing, Val::Ms)
    }

    /// The value as text ("-" when missing), appended to `out` through `escape`.
    fn write_text(self, out: &mut String, escape: fn(&str, &mut String)) {
        match self {
            Val::Str(s) => escape(s, out),
            Val::Int(n) => text::int(out, n),
            Val::Ms(v) => text::fixed(out, v, 3),
            Val::Addr(a) => text::addr(out, a),
            Val::Missing => out.push('-'),
        }
    }
}

/// Visits the record's fields, in a fixed order.
fn each_field<'a>(r: &'a Record, mut f: impl FnMut(&'static str, Val<'a>)) {
    let tls = r.tls.as_ref();
    f("request_id", Val::Str(&r.request_id));
    f("client", r.client.map_or(Val::Missing, Val::Addr));
    f("listener", Val::Str(&r.listener));
    f("tls_version", Val::opt(tls.map(|t| t.version.as_str())));
    f("tls_cipher", Val::opt(tls.map(|t| t.cipher.as_str())));
    f("tls_sni", Val::opt(tls.and_then(|t| t.sni.as_deref())));
    f("alpn", Val::opt(tls.map(|t| t.alpn)));
    f(
        "tls_handshake_ms",
        Val::ms(tls.and_then(|t| t.handshake_ms)),
    );
    f("method", Val::Str(&r.method));
    f("authority", Val::Str(&r.authority));
    f("path", Val::Str(&r.path));
    f("http_version", Val::Str(r.http_version));
    f("status", Val::Int(r.status.into()));
    f("bytes_in", Val::Int(r.bytes_in));
    f("bytes_out", Val::Int(r.bytes_out));
    f("route", Val::opt(r.route.as_deref()));
    f("pool", Val::opt(r.pool.as_deref()));
    f("server", Val::opt(r.server.as_deref()));
    f("cache", Val::opt(r.cache));
    let coded = r.compression.as_ref();
    f("encoding", Val::opt(coded.map(|c| c.encoding)));
    f("encoding_op", Val::opt(coded.map(|c| c.op)));
    let bytes = |n: Option<u64>| n.map_or(Val::Missing, Val::Int);
    f("bytes_before", bytes(coded.map(|c| c.bytes_before)));
    f("bytes_after", bytes(coded.map(|c| c.bytes_after)));
    let readonly = if r.readonly_refused {
        "refused"
    } else if r.readonly {
        "on"
    } else {
        "off"
    };
    f("readonly", Val::Str(readonly));
    f("t_conn_age_ms", Val::ms(r.t_conn_age_ms));
    f("t_queue_ms", Val::ms(r.t_queue_ms));
    f("t_connect_ms", Val::ms(r.t_connect_ms));
    f("t_response_ms", Val::ms(r.t_response_ms));
    f("t_total_ms", Val::Ms(r.t_total_ms));
    f("retries", Val::Int(r.retries.into()));
    f("termination", Val::Str(r.termination.as_str()));
    f("error", Val::opt(r.error.as_deref()));
}

/// A JSON string literal (quotes included).
fn json_string(v: &str, out: &mut String) {
    out.push('"');
    let mut rest = v;
    while let Some(i) = rest.find(|c: char| c == '"' || c == '\\' || (c as u32) < 0x20) {
        out.push_str(&rest[..i]);
        let c = rest[i..].chars().next().unwrap_or(' ');
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
        }
        rest = &rest[i + 1..];
    }
    out.push_str(rest);
    out.push('"');
}

/// JSON lines: numbers as numbers and missing values as null, so the lines load into a
/// database as they are.
pub(super) fn json(r: &Record) -> String {
    let mut out = String::with_capacity(768);
    out.push_str("{\"time\":");
    match r.time {
        Some(t) => {
            out.push('"');
            text::rfc3339_micros(&mut out, t);
            out.push('"');
        }
        None => out.push_str("null"),
    }
    each_field(r, |k, v| {
        out.push_str(",\"");
        out.push_str(k);
        out.push_str("\":");
        match v {
            Val::Missing => out.push_str("null"),
            Val::Str(s) => json_string(s, &mut out),
            Val::Addr(a) => {
                out.push('"');
                text::addr(&mut out, a);
                out.push('"');
            }
            Val::Int(_) | Val::Ms(_) => v.write_text(&mut out, |s, o| o.push_str(s)),
        }
    });
    for (name, list) in [
        ("request_headers", &r.request_headers),
        ("response_headers", &r.response_headers),
    ] {
        let _ = write!(out, ",\"{name}\":{{");
        for (i, (k, v)) in list.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            json_string(k.as_str(), &mut out);
            out.push(':');
            json_string(v, &mut out);
        }
        out.push('}');
    }
    out.push('}');
    out
}

/// RFC 5424 PARAM-VALUE escaping: `"`, `\` and `]`.
fn sd_escape(v: &str, out: &mut String) {
    let mut rest = v;
    while let Some(i) = rest.find(['"', '\\', ']']) {
        out.push_str(&rest[..i]);
        out.push('\\');
        out.push_str(&rest[i..i + 1]);
        rest = &rest[i + 1..];
    }
    out.push_str(rest);
}

fn sd_param(out: &mut String, k: &str, v: Val<'_>) {
    out.push(' ');
    out.push_str(k);
    out.push_str("=\"");
    v.write_text(out, sd_escape);
    out.push('"');
}

fn sd_headers(out: &mut String, id: &str, list: &[(http::HeaderName, String)]) {
    if list.is_empty() {
        return;
    }
    let _ = write!(out, "[{id}@{PEN}");
    for (k, v) in list {
        sd_param(out, k.as_str(), Val::Str(v));
    }
    out.push(']');
}

/// Printable US-ASCII without spaces, as RFC 5424 header fields require; "-" when empty.
fn header_field(v: &str, max: usize, out: &mut String) {
    let before = out.len();
    out.extend(v.chars().filter(|c| c.is_ascii_graphic()).take(max));
    if out.len() == before {
        out.push('-');
    }
}

pub(super) fn rfc5424(t: &LogTarget, r: &Record) -> String {
    let pri = u16::from(t.facility) * 8 + u16::from(SEVERITY_INFO);
    let mut out = String::with_capacity(1024);
    out.push('<');
    text::int(&mut out, pri);
    out.push_str(">1 ");
    match r.time {
        Some(t) => text::rfc3339_micros(&mut out, t),
        None => out.push('-'),
    }
    out.push(' ');
    header_field(&t.hostname, 255, &mut out);
    out.push(' ');
    header_field(&t.tag, 48, &mut out);
    out.push(' ');
    text::int(&mut out, pid());
    out.push_str(" access [gatehouse@");
    out.push_str(PEN);
    each_field(r, |k, v| sd_param(&mut out, k, v));
    out.push(']');
    sd_headers(&mut out, "req", &r.request_headers);
    sd_headers(&mut out, "resp", &r.response_headers);
    // A one-line summary for people reading the message part.
    for part in [" ", &r.method, " ", &r.authority, &r.path, " "] {
        out.push_str(part);
    }
    text::int(&mut out, r.status);
    out.push(' ');
    out.push_str(r.termination.as_str());
    out.push(' ');
    text::fixed(&mut out, r.t_total_ms, 1);
    out.push_str("ms server=");
    out.push_str(r.server.as_deref().unwrap_or("-"));
    out.push_str(" cache=");
    out.push_str(r.cache.unwrap_or("-"));
    out
}

/// `<PRI>Mmm dd hh:mm:ss host tag[pid]:`, the RFC 3164 header (also HAProxy's own).
pub(super) fn rfc3164_header(t: &LogTarget, r: &Record, capacity: usize) -> String {
    let pri = u16::from(t.facility) * 8 + u16::from(SEVERITY_INFO);
    let mut out = String::with_capacity(capacity);
    out.push('<');
    text::int(&mut out, pri);
    out.push('>');
    match r.time {
        Some(t) => text::bsd(&mut out, t),
        None => out.push_str("Jan  1 00:00:00"),
    }
    out.push(' ');
    header_field(&t.hostname, 255, &mut out);
    out.push(' ');
    header_field(&t.tag, 32, &mut out);
    out.push('[');
    text::int(&mut out, pid());
    out.push_str("]:");
    out
}

pub(super) fn rfc3164(t: &LogTarget, r: &Record) -> String {
    let mut out = rfc3164_header(t, r, 768);
    each_field(r, |k, v| {
        out.push(' ');
        out.push_str(k);
        out.push('=');
        v.write_text(&mut out, quote);
    });
    for (k, v) in r.request_headers.iter().chain(&r.response_headers) {
        let _ = write!(out, " hdr.{}=", k.as_str());
        quote(v, &mut out);
    }
    out
}

/// A value in a key=value message: bare, or quoted when empty or holding a space, `"` or `=`.
fn quote(v: &str, out: &mut String) {
    if v.is_empty() || v.contains([' ', '"', '=']) {
        out.push('"');
        for ch in v.chars() {
            if matches!(ch, '\\' | '"') {
                out.push('\\');
            }
            out.push(ch);
        }
        out.push('"');
    } else {
        out.push_str(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accesslog::Termination;
    use crate::config::{LogFormat, LogTransport};

    fn target(format: LogFormat) -> LogTarget {
        LogTarget {
            name: "t".into(),
            transport: LogTransport::Stdout,
            format,
            facility: 16,
            tag: "gatehouse".into(),
            hostname: "edge1".into(),
            sample: 1.0,
        }
    }

    #[test]
    fn rfc5424_escapes_and_frames() {
        let r = Record {
            time: Some(std::time::UNIX_EPOCH),
            method: "GET".into(),
            path: "/a\"]b".into(),
            status: 200,
            termination: Termination::Done,
            response_headers: vec![(http::HeaderName::from_static("x-runtime"), "0.1".into())],
            compression: None,
            ..Default::default()
        };
        let line = rfc5424(&target(LogFormat::Rfc5424), &r);
        assert!(
            line.starts_with("<134>1 1970-01-01T00:00:00.000000Z edge1 gatehouse "),
            "{line}"
        );
        assert!(line.contains(r#"path="/a\"\]b""#), "{line}");
        assert!(line.contains(r#"[resp@32473 x-runtime="0.1"]"#), "{line}");
        let line = rfc3164(&target(LogFormat::Rfc3164), &r);
        assert!(
            line.starts_with("<134>Jan  1 00:00:00 edge1 gatehouse["),
            "{line}"
        );
        assert!(line.contains("status=200"), "{line}");
        assert!(
            line.contains(r#"path="/a\"]b""#) || line.contains("path=/a\"]b"),
            "{line}"
        );
    }

    #[test]
    fn json_is_valid_and_typed() {
        let r = Record {
            time: Some(std::time::UNIX_EPOCH),
            client: Some("192.0.2.1:5000".parse().unwrap()),
            method: "GET".into(),
            path: "/q?\"x\"\n\u{1}".into(),
            status: 503,
            t_total_ms: 1.5,
            termination: Termination::Local,
            request_headers: vec![(http::header::USER_AGENT, "a \"b\"".into())],
            ..Default::default()
        };
        let line = json(&r);
        let v: serde_json::Value = serde_json::from_str(&line).expect(&line);
        assert_eq!(v["time"], "1970-01-01T00:00:00.000000Z");
        assert_eq!(v["client"], "192.0.2.1:5000");
        assert_eq!(v["path"], "/q?\"x\"\n\u{1}");
        assert_eq!(v["status"], 503);
        assert_eq!(v["t_total_ms"], 1.5);
        assert_eq!(v["route"], serde_json::Value::Null);
        assert_eq!(v["request_headers"]["user-agent"], "a \"b\"");
    }
}
