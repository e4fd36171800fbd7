//! Access log formats: RFC 5424 (the record as structured data plus a readable message),
//! RFC 3164 (key=value message), and JSON lines.

use super::record::Record;
use crate::config::{LogFormat, LogTarget};
use std::fmt::Write;

/// Enterprise number reserved for documentation (RFC 5612), for our SD-IDs.
const PEN: &str = "32473";
const SEVERITY_INFO: u8 = 6;
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// One record as bytes for `target` (no trailing newline: transports frame it).
pub fn format(target: &LogTarget, r: &Record) -> String {
    match target.format {
        LogFormat::Json => json(r).to_string(),
        LogFormat::Rfc5424 => rfc5424(target, r),
        LogFormat::Rfc3164 => rfc3164(target, r),
    }
}

fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:.3}"))
}

/// The record as (name, value) pairs, in a fixed order.
fn fields(r: &Record) -> Vec<(&'static str, String)> {
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let tls = r.tls.as_ref();
    vec![
        ("request_id", r.request_id.clone()),
        (
            "client",
            r.client.map_or_else(|| "-".into(), |a| a.to_string()),
        ),
        ("listener", r.listener.clone()),
        ("tls_version", tls.map_or("-".into(), |t| t.version.clone())),
        ("tls_cipher", tls.map_or("-".into(), |t| t.cipher.clone())),
        (
            "tls_sni",
            tls.and_then(|t| t.sni.clone())
                .unwrap_or_else(|| "-".into()),
        ),
        ("alpn", tls.map_or("-".into(), |t| t.alpn.to_string())),
        ("tls_handshake_ms", ms(tls.and_then(|t| t.handshake_ms))),
        ("method", r.method.clone()),
        ("authority", r.authority.clone()),
        ("path", r.path.clone()),
        ("http_version", r.http_version.to_string()),
        ("status", r.status.to_string()),
        ("bytes_in", r.bytes_in.to_string()),
        ("bytes_out", r.bytes_out.to_string()),
        ("route", opt(&r.route)),
        ("pool", opt(&r.pool)),
        ("server", opt(&r.server)),
        ("cache", r.cache.unwrap_or("-").to_string()),
        (
            "readonly",
            if r.readonly_refused {
                "refused"
            } else if r.readonly {
                "on"
            } else {
                "off"
            }
            .into(),
        ),
        ("t_conn_age_ms", ms(r.t_conn_age_ms)),
        ("t_queue_ms", ms(r.t_queue_ms)),
        ("t_connect_ms", ms(r.t_connect_ms)),
        ("t_response_ms", ms(r.t_response_ms)),
        ("t_total_ms", format!("{:.3}", r.t_total_ms)),
        ("retries", r.retries.to_string()),
        ("termination", r.termination.to_string()),
        ("error", opt(&r.error)),
    ]
}

pub fn json(r: &Record) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    m.insert(
        "time".into(),
        r.time.map_or(serde_json::Value::Null, |t| {
            humantime::format_rfc3339_micros(t).to_string().into()
        }),
    );
    for (k, v) in fields(r) {
        // Numbers as numbers and "-" as null, so the lines load into a database as they are.
        let numeric =
            k == "status" || k == "retries" || k.starts_with("bytes_") || k.ends_with("_ms");
        let value = if v == "-" {
            serde_json::Value::Null
        } else if numeric {
            v.parse::<u64>()
                .map(serde_json::Value::from)
                .or_else(|_| v.parse::<f64>().map(serde_json::Value::from))
                .unwrap_or_else(|_| v.clone().into())
        } else {
            v.into()
        };
        m.insert(k.into(), value);
    }
    let headers = |list: &[(http::HeaderName, String)]| {
        serde_json::Value::Object(
            list.iter()
                .map(|(k, v)| (k.as_str().to_string(), v.clone().into()))
                .collect(),
        )
    };
    m.insert("request_headers".into(), headers(&r.request_headers));
    m.insert("response_headers".into(), headers(&r.response_headers));
    serde_json::Value::Object(m)
}

/// RFC 5424 PARAM-VALUE escaping: `"`, `\` and `]`.
fn sd_escape(v: &str, out: &mut String) {
    for ch in v.chars() {
        if matches!(ch, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(ch);
    }
}

fn sd_element(out: &mut String, id: &str, pairs: impl IntoIterator<Item = (String, String)>) {
    let _ = write!(out, "[{id}@{PEN}");
    for (k, v) in pairs {
        let _ = write!(out, " {k}=\"");
        sd_escape(&v, out);
        out.push('"');
    }
    out.push(']');
}

/// A one-line summary for people reading the message part.
fn summary(r: &Record) -> String {
    format!(
        "{} {}{} {} {} {:.1}ms server={} cache={}",
        r.method,
        r.authority,
        r.path,
        r.status,
        r.termination,
        r.t_total_ms,
        r.server.as_deref().unwrap_or("-"),
        r.cache.unwrap_or("-")
    )
}

/// Printable US-ASCII without spaces, as RFC 5424 header fields require; "-" when empty.
fn header_field(v: &str, max: usize) -> String {
    let s: String = v
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(max)
        .collect();
    if s.is_empty() {
        "-".into()
    } else {
        s
    }
}

fn rfc5424(t: &LogTarget, r: &Record) -> String {
    let pri = u16::from(t.facility) * 8 + u16::from(SEVERITY_INFO);
    let time = r.time.map_or_else(
        || "-".into(),
        |t| humantime::format_rfc3339_micros(t).to_string(),
    );
    let mut out = format!(
        "<{pri}>1 {time} {} {} {} access ",
        header_field(&t.hostname, 255),
        header_field(&t.tag, 48),
        std::process::id()
    );
    sd_element(
        &mut out,
        "gatehouse",
        fields(r).into_iter().map(|(k, v)| (k.to_string(), v)),
    );
    if !r.request_headers.is_empty() {
        sd_element(
            &mut out,
            "req",
            r.request_headers
                .iter()
                .map(|(k, v)| (k.as_str().to_string(), v.clone())),
        );
    }
    if !r.response_headers.is_empty() {
        sd_element(
            &mut out,
            "resp",
            r.response_headers
                .iter()
                .map(|(k, v)| (k.as_str().to_string(), v.clone())),
        );
    }
    out.push(' ');
    out.push_str(&summary(r));
    out
}

fn rfc3164(t: &LogTarget, r: &Record) -> String {
    let pri = u16::from(t.facility) * 8 + u16::from(SEVERITY_INFO);
    // "Mmm dd hh:mm:ss" from the RFC 3339 form (UTC).
    let stamp = r
        .time
        .map(|t| humantime::format_rfc3339_seconds(t).to_string());
    let stamp = stamp.as_deref().and_then(|s| {
        let month: usize = s.get(5..7)?.parse().ok()?;
        let day: u32 = s.get(8..10)?.parse().ok()?;
        Some(format!(
            "{} {day:>2} {}",
            MONTHS.get(month - 1)?,
            s.get(11..19)?
        ))
    });
    let mut out = format!(
        "<{pri}>{} {} {}[{}]: ",
        stamp.unwrap_or_else(|| "Jan  1 00:00:00".into()),
        header_field(&t.hostname, 255),
        header_field(&t.tag, 32),
        std::process::id()
    );
    for (k, v) in fields(r) {
        let _ = write!(out, "{k}={} ", quote(&v));
    }
    for (k, v) in r.request_headers.iter().chain(&r.response_headers) {
        let _ = write!(out, "hdr.{}={} ", k.as_str(), quote(v));
    }
    out.pop();
    out
}

fn quote(v: &str) -> String {
    if v.is_empty() || v.contains([' ', '"', '=']) {
        format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LogTransport;

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
            termination: "done",
            response_headers: vec![(http::HeaderName::from_static("x-runtime"), "0.1".into())],
            ..Default::default()
        };
        let line = format(&target(LogFormat::Rfc5424), &r);
        assert!(
            line.starts_with("<134>1 1970-01-01T00:00:00.000000Z edge1 gatehouse "),
            "{line}"
        );
        assert!(line.contains(r#"path="/a\"\]b""#), "{line}");
        assert!(line.contains(r#"[resp@32473 x-runtime="0.1"]"#), "{line}");
        let line = format(&target(LogFormat::Rfc3164), &r);
        assert!(
            line.starts_with("<134>Jan  1 00:00:00 edge1 gatehouse["),
            "{line}"
        );
        assert!(line.contains("status=200"), "{line}");
    }
}
