//! `[access_log]`: the timing log's captured headers, request id and targets.

use super::super::defaults as d;
use super::super::error::{Collector, KeyPath};
use super::super::file;
use super::super::*;
use super::values::{header_names, socket_addr};

const FACILITIES: [&str; 24] = [
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv",
    "ftp", "ntp", "audit", "alert", "clock", "local0", "local1", "local2", "local3", "local4",
    "local5", "local6", "local7",
];

fn system_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

pub(super) fn access_log(
    f: file::AccessLogSection,
    p: &KeyPath,
    c: &mut Collector,
) -> AccessLogConfig {
    let request_id_header = f
        .request_id_header
        .unwrap_or_else(|| d::REQUEST_ID_HEADER.into());
    let request_id_header =
        http::HeaderName::try_from(request_id_header.as_str()).unwrap_or_else(|_| {
            c.error(
                &p.key("request_id_header"),
                format!("not a header name: {request_id_header:?}"),
            );
            http::HeaderName::from_static(d::REQUEST_ID_HEADER)
        });
    let targets = f
        .targets
        .into_iter()
        .enumerate()
        .filter_map(|(i, t)| target(t, i, &p.key("targets").index(i), c))
        .collect();
    AccessLogConfig {
        enabled: f.enabled.unwrap_or(true),
        capture_request_headers: header_names(
            &f.capture_request_headers,
            &p.key("capture_request_headers"),
            c,
        ),
        capture_response_headers: header_names(
            &f.capture_response_headers,
            &p.key("capture_response_headers"),
            c,
        ),
        strip_captured_response_headers: f.strip_captured_response_headers.unwrap_or(false),
        request_id_header,
        queue_size: f
            .queue_size
            .unwrap_or(d::LOG_QUEUE_SIZE)
            .clamp(1, 1_000_000),
        targets,
    }
}

/// One `[[access_log.targets]]` entry; None (with errors) when it has no usable transport.
fn target(
    t: file::LogTargetSection,
    i: usize,
    tp: &KeyPath,
    c: &mut Collector,
) -> Option<LogTarget> {
    let name = t.name.unwrap_or_else(|| format!("target{i}"));
    let need_addr = |c: &mut Collector| match &t.address {
        Some(a) => socket_addr(a, &tp.key("address"), c),
        None => {
            c.error(&tp.key("address"), "missing: IP:PORT of the receiver");
            None
        }
    };
    let need_path = |c: &mut Collector| match &t.path {
        Some(path) => Some(PathBuf::from(path)),
        None => {
            c.error(&tp.key("path"), "missing: the socket or file path");
            None
        }
    };
    let transport = match t.transport.as_deref().unwrap_or(d::LOG_TRANSPORT) {
        "udp" => need_addr(c).map(LogTransport::Udp),
        "tcp" => need_addr(c).map(LogTransport::Tcp),
        "unix" => need_path(c).map(LogTransport::Unix),
        "file" => need_path(c).map(LogTransport::File),
        "stdout" => Some(LogTransport::Stdout),
        other => {
            c.error(&tp.key("transport"), format!("unknown transport {other:?}: use \"udp\", \"tcp\", \"unix\", \"file\" or \"stdout\""));
            None
        }
    };
    let format = match t.format.as_deref().unwrap_or(d::LOG_FORMAT) {
        "rfc5424" => LogFormat::Rfc5424,
        "rfc3164" => LogFormat::Rfc3164,
        "json" => LogFormat::Json,
        "haproxy" => LogFormat::Haproxy,
        other => {
            c.error(
                &tp.key("format"),
                format!("unknown format {other:?}: use \"rfc5424\", \"rfc3164\", \"json\" or \"haproxy\""),
            );
            LogFormat::Rfc5424
        }
    };
    let facility_name = t.facility.unwrap_or_else(|| d::LOG_FACILITY.into());
    let facility = match FACILITIES.iter().position(|f| *f == facility_name) {
        Some(n) => n as u8,
        None => {
            c.error(
                &tp.key("facility"),
                format!("unknown facility {facility_name:?} (e.g. \"local0\")"),
            );
            16
        }
    };
    let sample = t.sample.unwrap_or(d::LOG_SAMPLE);
    if !(sample > 0.0 && sample <= 1.0) {
        c.error(&tp.key("sample"), format!("{sample} is not in (0, 1]"));
    }
    Some(LogTarget {
        transport: transport?,
        name,
        format,
        facility,
        tag: t.tag.unwrap_or_else(|| d::LOG_TAG.into()),
        hostname: t.hostname.unwrap_or_else(system_hostname),
        sample: sample.clamp(f64::MIN_POSITIVE, 1.0),
    })
}
