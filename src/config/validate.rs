//! Turns the file layer into a typed `Config`, collecting every error with its key path.

use super::error::{Collector, ConfigError, ConfigErrors, KeyPath, Locator, Seg};
use super::file::{self, FileConfig};
use super::*;
use std::collections::HashSet;

const DEFAULT_STATE_DIR: &str = "/var/lib/gatehouse";
const DEFAULT_ADMIN: &str = "127.0.0.1:9901";

pub(super) fn from_toml(text: &str, source: &str, base: &Path) -> Result<Config, ConfigErrors> {
    let locator = Locator::new(text);
    let mut c = Collector::default();
    let mut unknown = Vec::new();
    let parsed: Result<FileConfig, _> = {
        let de = toml::Deserializer::new(text);
        let mut on_unknown = |p: serde_ignored::Path| unknown.push(ignored_path(&p));
        let de = serde_ignored::Deserializer::new(de, &mut on_unknown);
        serde_path_to_error::deserialize(de)
    };
    for path in &unknown {
        c.error(path, "unknown key");
    }
    let config = match parsed {
        Ok(mut file) => {
            resolve_paths(&mut file, base);
            Some(validate(file, &mut c))
        }
        Err(e) => {
            let path = error_path(e.path());
            let inner = e.into_inner();
            let line = inner.span().map(|s| locator.line_at(s.start));
            c.errors.push(ConfigError {
                path,
                line,
                message: inner.message().trim().to_string(),
                warning: false,
            });
            None
        }
    };
    for e in &mut c.errors {
        if e.line.is_none() {
            e.line = locator.line_of(&e.path);
        }
    }
    c.errors.sort_by_key(|e| e.line.unwrap_or(0));
    match config {
        Some(mut config) if !c.has_errors() => {
            config.warnings = c.errors;
            config.source.checksum = checksum(text);
            Ok(config)
        }
        _ => Err(ConfigErrors {
            source: source.to_string(),
            errors: c.errors,
        }),
    }
}

/// Makes every relative file path in the file relative to `base` (the file's directory).
fn resolve_paths(f: &mut FileConfig, base: &Path) {
    if base.as_os_str().is_empty() {
        return;
    }
    let fix = |p: &mut Option<String>| {
        if let Some(s) = p.as_mut() {
            if Path::new(s.as_str()).is_relative() {
                *s = base.join(s.as_str()).display().to_string();
            }
        }
    };
    fix(&mut f.server.state_dir);
    fix(&mut f.server.pid_file);
    fix(&mut f.server.upgrade_socket);
    fix(&mut f.admin.token_file);
    fix(&mut f.readonly.page);
    for t in &mut f.access_log.targets {
        fix(&mut t.path);
    }
    for l in &mut f.listeners {
        for cert in l.tls.iter_mut().flat_map(|t| t.certificates.iter_mut()) {
            fix(&mut cert.cert);
            fix(&mut cert.key);
        }
    }
}

/// FNV-1a 64 of the file text: stable across runs and machines, enough to tell configs apart.
fn checksum(text: &str) -> String {
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{hash:016x}")
}

fn ignored_path(p: &serde_ignored::Path) -> KeyPath {
    use serde_ignored::Path as P;
    match p {
        P::Root => KeyPath::root(),
        P::Seq { parent, index } => ignored_path(parent).index(*index),
        P::Map { parent, key } => ignored_path(parent).key(key),
        P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => {
            ignored_path(parent)
        }
    }
}

fn error_path(p: &serde_path_to_error::Path) -> KeyPath {
    use serde_path_to_error::Segment as S;
    let mut segs = Vec::new();
    for s in p.iter() {
        match s {
            S::Seq { index } => segs.push(Seg::Index(*index)),
            S::Map { key } => segs.push(Seg::Key(key.clone())),
            S::Enum { variant } => segs.push(Seg::Key(variant.clone())),
            S::Unknown => {}
        }
    }
    KeyPath(segs)
}

fn validate(f: FileConfig, c: &mut Collector) -> Config {
    let root = KeyPath::root();
    let server = server_settings(f.server, &root.key("server"), c);
    let timeouts = timeouts(f.timeouts, &root.key("timeouts"), c);
    let listeners = listeners(f.listeners, &root.key("listeners"), c);
    let pools = pools(f.pools, &root.key("pools"), c);
    let routes = routes(f.routes, &pools, &root.key("routes"), c);
    let admin = admin(f.admin, &root.key("admin"), c);
    let cache = cache(f.cache, &root.key("cache"), c);
    let readonly = readonly(f.readonly, &root.key("readonly"), c);
    let access_log = access_log(f.access_log, &root.key("access_log"), c);
    let lp = root.key("limits");
    let limits = Limits {
        max_header_bytes: size(
            f.limits.max_header_bytes,
            32 << 10,
            &lp.key("max_header_bytes"),
            c,
        ) as usize,
        max_headers: f.limits.max_headers.unwrap_or(100),
        max_uri_length: size(
            f.limits.max_uri_length,
            8 << 10,
            &lp.key("max_uri_length"),
            c,
        ) as usize,
        max_body_size: size(
            f.limits.max_body_size,
            100 << 20,
            &lp.key("max_body_size"),
            c,
        ),
        keepalive_requests: f.limits.keepalive_requests.unwrap_or(1000),
        max_connections: f.limits.max_connections.unwrap_or(10_000),
        max_connections_per_client: f.limits.max_connections_per_client.unwrap_or(0),
    };
    if limits.max_connections == 0 {
        c.error(&lp.key("max_connections"), "must be at least 1");
    }
    if limits.max_headers == 0 || limits.max_headers > 256 {
        c.error(&lp.key("max_headers"), "must be between 1 and 256");
    }
    if limits.keepalive_requests == 0 {
        c.error(&lp.key("keepalive_requests"), "must be at least 1");
    }
    for pool in &pools {
        let pi = pools.iter().position(|p| p.name == pool.name);
        if !routes.iter().any(|r| Some(r.pool) == pi) {
            c.warn(
                &root.key("pools").key(&pool.name),
                "no route sends traffic to this pool",
            );
        }
    }
    Config {
        server,
        timeouts,
        listeners,
        pools,
        routes,
        admin,
        cache,
        readonly,
        access_log,
        limits,
        source: ConfigSource::default(),
        warnings: Vec::new(),
    }
}

fn header_names(list: &[String], p: &KeyPath, c: &mut Collector) -> Vec<http::HeaderName> {
    let mut out = Vec::new();
    for (i, h) in list.iter().enumerate() {
        match http::HeaderName::try_from(h.as_str()) {
            Ok(n) => out.push(n),
            Err(_) => c.error(&p.index(i), format!("not a header name: {h:?}")),
        }
    }
    out
}

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

fn access_log(f: file::AccessLogSection, p: &KeyPath, c: &mut Collector) -> AccessLogConfig {
    let request_id_header = f.request_id_header.unwrap_or_else(|| "X-Request-Id".into());
    let request_id_header =
        http::HeaderName::try_from(request_id_header.as_str()).unwrap_or_else(|_| {
            c.error(
                &p.key("request_id_header"),
                format!("not a header name: {request_id_header:?}"),
            );
            http::HeaderName::from_static("x-request-id")
        });
    let mut targets = Vec::new();
    for (i, t) in f.targets.into_iter().enumerate() {
        let tp = p.key("targets").index(i);
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
        let transport = match t.transport.as_deref().unwrap_or("udp") {
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
        let format = match t.format.as_deref().unwrap_or("rfc5424") {
            "rfc5424" => LogFormat::Rfc5424,
            "rfc3164" => LogFormat::Rfc3164,
            "json" => LogFormat::Json,
            other => {
                c.error(
                    &tp.key("format"),
                    format!("unknown format {other:?}: use \"rfc5424\", \"rfc3164\" or \"json\""),
                );
                LogFormat::Rfc5424
            }
        };
        let facility_name = t.facility.unwrap_or_else(|| "local0".into());
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
        let sample = t.sample.unwrap_or(1.0);
        if !(sample > 0.0 && sample <= 1.0) {
            c.error(&tp.key("sample"), format!("{sample} is not in (0, 1]"));
        }
        let Some(transport) = transport else { continue };
        targets.push(LogTarget {
            name,
            transport,
            format,
            facility,
            tag: t.tag.unwrap_or_else(|| "gatehouse".into()),
            hostname: t.hostname.unwrap_or_else(system_hostname),
            sample: sample.clamp(f64::MIN_POSITIVE, 1.0),
        });
    }
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
        queue_size: f.queue_size.unwrap_or(10_000).clamp(1, 1_000_000),
        targets,
    }
}

fn readonly(f: file::ReadonlySection, p: &KeyPath, c: &mut Collector) -> ReadonlyConfig {
    let message = f.message.unwrap_or_else(|| {
        "This site is read-only for maintenance. Reading works; please try changes again later."
            .into()
    });
    let page = match &f.page {
        None => crate::readonly::default_page(&message),
        Some(path) => match std::fs::read(path) {
            Ok(b) => bytes::Bytes::from(b),
            Err(e) => {
                c.error(&p.key("page"), format!("{path}: {e}"));
                bytes::Bytes::new()
            }
        },
    };
    for (i, a) in f.allow_paths.iter().enumerate() {
        if !a.starts_with('/') {
            c.error(
                &p.key("allow_paths").index(i),
                format!("{a:?} must start with '/'"),
            );
        }
    }
    ReadonlyConfig {
        enabled: f.enabled.unwrap_or(false),
        retry_after: duration(f.retry_after, "2m", &p.key("retry_after"), c),
        message,
        page,
        allow_paths: f.allow_paths,
        strip_cookies: f.strip_cookies.unwrap_or(false),
        ttl_floor: duration(f.ttl_floor, "0s", &p.key("ttl_floor"), c),
    }
}

/// Parses a size: bytes, or "512k", "256m", "1g" (powers of 1024, optional "b"/"ib").
fn size(v: Option<file::Size>, default: u64, p: &KeyPath, c: &mut Collector) -> u64 {
    let text = match v {
        None => return default,
        Some(file::Size::Bytes(n)) => return n,
        Some(file::Size::Text(t)) => t,
    };
    let lower = text.trim().to_ascii_lowercase();
    let unit_start = lower
        .find(|ch: char| !ch.is_ascii_digit())
        .unwrap_or(lower.len());
    let (num, unit) = lower.split_at(unit_start);
    let mult = match unit.trim().trim_end_matches("ib").trim_end_matches('b') {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        _ => 0,
    };
    match num.parse::<u64>() {
        Ok(n) if mult > 0 => n.saturating_mul(mult),
        _ => {
            c.error(
                p,
                format!("not a size: {text:?} (write bytes, or e.g. \"512k\", \"256m\", \"1g\")"),
            );
            default
        }
    }
}

fn cache(f: file::CacheSection, p: &KeyPath, c: &mut Collector) -> CacheConfig {
    let max_size = size(f.max_size, 256 << 20, &p.key("max_size"), c);
    // Unset, it follows a small max_size down rather than contradicting it.
    let max_object_size = size(
        f.max_object_size,
        (8 << 20).min(max_size),
        &p.key("max_object_size"),
        c,
    );
    if max_object_size > max_size {
        c.error(&p.key("max_object_size"), "larger than max_size");
    }
    let status_header = match f.status_header.as_deref() {
        None => Some(http::HeaderName::from_static("x-cache")),
        Some("") => None,
        Some(h) => match http::HeaderName::try_from(h) {
            Ok(h) => Some(h),
            Err(_) => {
                c.error(&p.key("status_header"), format!("not a header name: {h:?}"));
                None
            }
        },
    };
    CacheConfig {
        enabled: f.enabled.unwrap_or(true),
        max_size,
        max_object_size,
        lock_timeout: duration(f.lock_timeout, "5s", &p.key("lock_timeout"), c),
        status_header,
    }
}

fn route_cache(
    f: Option<file::RouteCacheSection>,
    p: &KeyPath,
    c: &mut Collector,
) -> Option<RouteCache> {
    let f = f.unwrap_or_default();
    if f.enabled == Some(false) {
        return None;
    }
    let max_ttl = duration(f.max_ttl, "1d", &p.key("max_ttl"), c);
    let override_ttl = f
        .override_ttl
        .map(|v| duration(Some(v), "0s", &p.key("override_ttl"), c));
    let min_uses = f.min_uses.unwrap_or(1);
    if min_uses == 0 {
        c.error(&p.key("min_uses"), "must be at least 1");
    }
    for (i, name) in f.ignore_cookies.iter().enumerate() {
        if name.is_empty() || name.bytes().any(|b| b <= b' ' || b"=;,".contains(&b)) {
            c.error(
                &p.key("ignore_cookies").index(i),
                format!("not a cookie name: {name:?}"),
            );
        }
    }
    Some(RouteCache {
        default_ttl: duration(f.default_ttl, "0s", &p.key("default_ttl"), c),
        max_ttl,
        override_ttl,
        grace: duration(f.grace, "10s", &p.key("grace"), c),
        stale_if_error: duration(f.stale_if_error, "1m", &p.key("stale_if_error"), c),
        keep: duration(f.keep, "1m", &p.key("keep"), c),
        min_uses: min_uses.max(1),
        min_uses_window: duration(f.min_uses_window, "10m", &p.key("min_uses_window"), c),
        ignore_query: f.ignore_query.unwrap_or(false),
        ignore_params: f.ignore_params,
        ignore_cookies: f.ignore_cookies,
    })
}

/// Parses `"2s"`, `"500ms"`, `"1m 30s"`; reports and falls back to `default` when invalid.
fn duration(v: Option<String>, default: &str, path: &KeyPath, c: &mut Collector) -> Duration {
    let fallback = humantime::parse_duration(default).unwrap_or_default();
    let Some(s) = v else { return fallback };
    match humantime::parse_duration(s.trim()) {
        Ok(d) => d,
        Err(_) => {
            c.error(
                path,
                format!("not a duration: {s:?} (write e.g. \"500ms\", \"2s\", \"1m\")"),
            );
            fallback
        }
    }
}

fn socket_addr(v: &str, path: &KeyPath, c: &mut Collector) -> Option<SocketAddr> {
    match v.trim().parse::<SocketAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            c.error(
                path,
                format!("not a socket address: {v:?} (write IP:PORT, e.g. \"10.0.0.1:80\" or \"[::1]:80\")"),
            );
            None
        }
    }
}

fn placeholder_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

fn server_settings(s: file::ServerSection, p: &KeyPath, c: &mut Collector) -> ServerSettings {
    let threads = match s.threads {
        Some(0) => {
            c.error(&p.key("threads"), "must be at least 1");
            1
        }
        Some(n) if n > 256 => {
            c.error(&p.key("threads"), format!("{n} is more than 256"));
            256
        }
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let state_dir = PathBuf::from(s.state_dir.unwrap_or_else(|| DEFAULT_STATE_DIR.into()));
    let pid_file = s
        .pid_file
        .map(PathBuf::from)
        .unwrap_or_else(|| state_dir.join("gatehouse.pid"));
    let upgrade_socket = s
        .upgrade_socket
        .map(PathBuf::from)
        .unwrap_or_else(|| state_dir.join("upgrade.sock"));
    ServerSettings {
        threads,
        state_dir,
        pid_file,
        upgrade_socket,
        grace_period: duration(s.grace_period, "5s", &p.key("grace_period"), c),
        shutdown_timeout: duration(s.shutdown_timeout, "5s", &p.key("shutdown_timeout"), c),
    }
}

fn timeouts(t: file::TimeoutsSection, p: &KeyPath, c: &mut Collector) -> Timeouts {
    let mut nonzero = |v, default, key: &str| {
        let d = duration(v, default, &p.key(key), c);
        if d.is_zero() {
            c.error(&p.key(key), "must be greater than zero");
        }
        d
    };
    Timeouts {
        connect: nonzero(t.connect, "3s", "connect"),
        upstream_read: nonzero(t.upstream_read, "60s", "upstream_read"),
        upstream_write: nonzero(t.upstream_write, "60s", "upstream_write"),
        client_idle: nonzero(t.client_idle, "60s", "client_idle"),
        client_header: nonzero(t.client_header, "10s", "client_header"),
    }
}

fn listeners(list: Vec<file::ListenerSection>, p: &KeyPath, c: &mut Collector) -> Vec<Listener> {
    if list.is_empty() {
        c.error(p, "at least one [[listeners]] entry is needed");
    }
    let mut seen_addr = HashSet::new();
    let mut seen_name = HashSet::new();
    let mut out = Vec::new();
    for (i, l) in list.into_iter().enumerate() {
        let lp = p.index(i);
        let Some(addr_s) = l.address else {
            c.error(
                &lp.key("address"),
                "missing (e.g. address = \"0.0.0.0:80\")",
            );
            continue;
        };
        let Some(address) = socket_addr(&addr_s, &lp.key("address"), c) else {
            continue;
        };
        if !seen_addr.insert(address) {
            c.error(
                &lp.key("address"),
                format!("{address} is used by another listener"),
            );
        }
        let name = l.name.unwrap_or_else(|| address.to_string());
        if !seen_name.insert(name.clone()) {
            c.error(&lp.key("name"), format!("duplicate listener name {name:?}"));
        }
        let tls = l.tls.map(|t| tls_listener(t, &lp.key("tls"), c));
        let redirect_to_https = l.redirect_to_https.unwrap_or(false);
        if redirect_to_https && tls.is_some() {
            c.error(
                &lp.key("redirect_to_https"),
                "only for plain-HTTP listeners: this one has tls",
            );
        }
        let hsts = l.hsts.and_then(|v| {
            if tls.is_none() {
                c.error(&lp.key("hsts"), "only sent over HTTPS: set it on a listener with tls");
            }
            match http::HeaderValue::from_str(&v) {
                Ok(h) if v.contains("max-age=") => Some(h),
                _ => {
                    c.error(&lp.key("hsts"), format!("not a Strict-Transport-Security value: {v:?} (e.g. \"max-age=31536000; includeSubDomains\")"));
                    None
                }
            }
        });
        out.push(Listener {
            name,
            address,
            tls,
            redirect_to_https,
            hsts,
        });
    }
    if out.iter().any(|l| l.redirect_to_https) && !out.iter().any(|l| l.tls.is_some()) {
        c.error(p, "redirect_to_https is set but no listener has tls");
    }
    out
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn tls_listener(t: file::TlsSection, p: &KeyPath, c: &mut Collector) -> TlsListener {
    let warn_days = t.expiry_warning_days.unwrap_or(14);
    if t.certificates.is_empty() {
        c.error(
            &p.key("certificates"),
            "a TLS listener needs at least one [[listeners.tls.certificates]] (cert and key)",
        );
    }
    let now = now_unix();
    let mut certificates = Vec::new();
    let mut default = None;
    for (i, entry) in t.certificates.into_iter().enumerate() {
        let cp = p.key("certificates").index(i);
        let (Some(cert), Some(key)) = (&entry.cert, &entry.key) else {
            if entry.cert.is_none() {
                c.error(&cp.key("cert"), "missing: the certificate chain PEM file");
            }
            if entry.key.is_none() {
                c.error(&cp.key("key"), "missing: the private key PEM file");
            }
            continue;
        };
        match crate::tls::load_cert(cert, key, warn_days, now) {
            Ok((loaded, problems)) => {
                for (k, w) in problems.warnings {
                    c.warn(&cp.key(k), w);
                }
                if entry.default == Some(true) {
                    if default.is_some() {
                        c.error(
                            &cp.key("default"),
                            "only one certificate can be the default",
                        );
                    }
                    default = Some(certificates.len());
                }
                certificates.push(Arc::new(loaded));
            }
            Err(problems) => {
                for (k, e) in problems.errors {
                    c.error(&cp.key(k), e);
                }
            }
        }
    }
    let strict = t.strict_sni.unwrap_or(false);
    if strict && default.is_some() {
        c.error(
            &p.key("strict_sni"),
            "strict SNI has no default certificate: drop `default = true` or strict_sni",
        );
    }
    let default = if strict {
        None
    } else {
        Some(default.unwrap_or(0))
    };
    TlsListener {
        certificates,
        default,
        h2: t.h2.unwrap_or(true),
    }
}

fn pools(
    map: std::collections::BTreeMap<String, file::PoolSection>,
    p: &KeyPath,
    c: &mut Collector,
) -> Vec<PoolConfig> {
    if map.is_empty() {
        c.error(p, "at least one pool is needed (e.g. [pools.web])");
    }
    map.into_iter()
        .map(|(name, pool)| {
            let pp = p.key(&name);
            if !valid_name(&name) {
                c.error(&pp, "pool names use letters, digits, '-', '_' and '.'");
            }
            pool_config(name, pool, &pp, c)
        })
        .collect()
}

fn pool_config(name: String, f: file::PoolSection, p: &KeyPath, c: &mut Collector) -> PoolConfig {
    let hash_key = f
        .hash_key
        .as_deref()
        .map(|k| hash_key(k, &p.key("hash_key"), c));
    let balance = match f.balance.as_deref().unwrap_or("round_robin") {
        "round_robin" => Balance::RoundRobin,
        "least_conn" => Balance::LeastConn,
        "hash" => match hash_key.clone() {
            Some(Some(k)) => Balance::Hash(k),
            Some(None) => Balance::Hash(HashKey::Path),
            None => {
                c.error(
                    &p.key("hash_key"),
                    "missing: balance = \"hash\" needs hash_key (\"path\", \"uri\", \"client_ip\" or \"header:NAME\")",
                );
                Balance::Hash(HashKey::Path)
            }
        },
        other => {
            c.error(
                &p.key("balance"),
                format!(
                    "unknown balance {other:?}: use \"round_robin\", \"least_conn\" or \"hash\""
                ),
            );
            Balance::RoundRobin
        }
    };
    if hash_key.is_some() && !matches!(balance, Balance::Hash(_)) && f.balance.is_some() {
        c.error(
            &p.key("hash_key"),
            "only used with balance = \"hash\": drop hash_key or set balance = \"hash\"",
        );
    }
    let retries = f.retries.unwrap_or(1);
    if retries > 10 {
        c.error(&p.key("retries"), format!("{retries} is more than 10"));
    }
    let health = health(f.health, &p.key("health"), c);
    let servers = servers(f.servers, &p.key("servers"), c);
    PoolConfig {
        name,
        balance,
        retries,
        health,
        servers,
    }
}

fn hash_key(k: &str, p: &KeyPath, c: &mut Collector) -> Option<HashKey> {
    let key = match k {
        "path" => HashKey::Path,
        "uri" => HashKey::Uri,
        "client_ip" => HashKey::ClientIp,
        _ => match k.strip_prefix("header:").map(http::HeaderName::try_from) {
            Some(Ok(h)) => HashKey::Header(h),
            Some(Err(_)) => {
                c.error(p, format!("not a header name: {k:?}"));
                return None;
            }
            None => {
                c.error(
                    p,
                    format!("unknown hash key {k:?}: use \"path\", \"uri\", \"client_ip\" or \"header:NAME\""),
                );
                return None;
            }
        },
    };
    Some(key)
}

fn health(h: Option<file::HealthSection>, p: &KeyPath, c: &mut Collector) -> Option<HealthConfig> {
    let h = h.unwrap_or_default();
    if h.enabled == Some(false) {
        return None;
    }
    let path = h.path.unwrap_or_else(|| "/".into());
    if !path.starts_with('/') || path.bytes().any(|b| b <= b' ' || b == 0x7f) {
        c.error(
            &p.key("path"),
            format!("not a request path: {path:?} (must start with '/', no spaces)"),
        );
    }
    let interval = duration(h.interval, "2s", &p.key("interval"), c);
    let timeout = duration(h.timeout, "1s", &p.key("timeout"), c);
    if interval.is_zero() {
        c.error(&p.key("interval"), "must be greater than zero");
    }
    if timeout.is_zero() || timeout > interval {
        c.error(
            &p.key("timeout"),
            "must be greater than zero and at most the interval",
        );
    }
    let rise = h.rise.unwrap_or(2);
    let fall = h.fall.unwrap_or(3);
    for (key, v) in [("rise", rise), ("fall", fall)] {
        if v == 0 || v > 100 {
            c.error(&p.key(key), format!("{v} is not between 1 and 100"));
        }
    }
    let expect = h.expect_status.unwrap_or_else(|| "200-399".into());
    let expect_status = status_range(&expect).unwrap_or_else(|| {
        c.error(
            &p.key("expect_status"),
            format!("not a status or range: {expect:?} (write e.g. \"200\" or \"200-399\")"),
        );
        200..=399
    });
    Some(HealthConfig {
        path,
        host: h.host.unwrap_or_default(),
        interval,
        timeout,
        rise,
        fall,
        expect_status,
    })
}

fn status_range(s: &str) -> Option<RangeInclusive<u16>> {
    let (lo, hi) = s.split_once('-').unwrap_or((s, s));
    let (lo, hi): (u16, u16) = (lo.trim().parse().ok()?, hi.trim().parse().ok()?);
    ((100..=599).contains(&lo) && (lo..=599).contains(&hi)).then_some(lo..=hi)
}

fn servers(list: Vec<file::ServerEntry>, p: &KeyPath, c: &mut Collector) -> Vec<ServerConfig> {
    if list.is_empty() {
        c.error(
            p,
            "a pool needs at least one server ([[pools.NAME.servers]])",
        );
    }
    let mut names = HashSet::new();
    let mut addrs = HashSet::new();
    let mut out = Vec::new();
    for (i, s) in list.into_iter().enumerate() {
        let sp = p.index(i);
        let address = match &s.address {
            Some(a) => socket_addr(a, &sp.key("address"), c),
            None => {
                c.error(
                    &sp.key("address"),
                    "missing (e.g. address = \"10.0.0.1:80\")",
                );
                None
            }
        };
        if let Some(a) = address {
            if !addrs.insert(a) {
                c.error(
                    &sp.key("address"),
                    format!("{a} is listed twice in this pool"),
                );
            }
        }
        let name = s
            .name
            .or_else(|| s.address.clone())
            .unwrap_or_else(|| format!("server{i}"));
        if !valid_name(&name.replace([':', '[', ']'], "")) {
            c.error(
                &sp.key("name"),
                format!("{name:?}: use letters, digits, '-', '_' and '.'"),
            );
        }
        if !names.insert(name.clone()) {
            c.error(
                &sp.key("name"),
                format!("duplicate server name {name:?} in this pool"),
            );
        }
        let weight = s.weight.unwrap_or(1);
        if !(1..=256).contains(&weight) {
            c.error(
                &sp.key("weight"),
                format!(
                    "{weight} is not between 1 and 256 (to stop traffic, put the server in maint)"
                ),
            );
        }
        out.push(ServerConfig {
            name,
            address: address.unwrap_or_else(placeholder_addr),
            weight: weight.clamp(1, 256),
            backup: s.backup.unwrap_or(false),
        });
    }
    if !out.is_empty() && out.iter().all(|s| s.backup) {
        c.error(
            p,
            "every server is a backup: at least one must be a primary",
        );
    }
    out
}

fn routes(
    list: Vec<file::RouteSection>,
    pools: &[PoolConfig],
    p: &KeyPath,
    c: &mut Collector,
) -> Vec<RouteConfig> {
    if list.is_empty() {
        c.error(p, "at least one [[routes]] entry is needed");
    }
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (i, r) in list.into_iter().enumerate() {
        let rp = p.index(i);
        let name = r.name.unwrap_or_else(|| format!("route{i}"));
        let path_prefix = r.path_prefix.unwrap_or_else(|| "/".into());
        if !path_prefix.starts_with('/') {
            c.error(
                &rp.key("path_prefix"),
                format!("{path_prefix:?} must start with '/'"),
            );
        }
        let mut hosts = Vec::new();
        for (j, h) in r.hosts.iter().enumerate() {
            match host_pattern(h) {
                Some(pat) => {
                    if !seen.insert((Some(pat.clone()), path_prefix.clone())) {
                        c.error(&rp.key("hosts").index(j), format!("{h:?} with path_prefix {path_prefix:?} is already routed by an earlier route"));
                    }
                    hosts.push(pat)
                }
                None => c.error(
                    &rp.key("hosts").index(j),
                    format!("not a host name: {h:?} (write \"example.com\" or \"*.example.com\", no port)"),
                ),
            }
        }
        if r.hosts.is_empty() && !seen.insert((None, path_prefix.clone())) {
            c.error(
                &rp.key("path_prefix"),
                format!("a route for any host with path_prefix {path_prefix:?} already exists"),
            );
        }
        let pool = match r.pool {
            None => {
                c.error(
                    &rp.key("pool"),
                    "missing: name the pool this route sends to",
                );
                0
            }
            Some(name) => match pools.iter().position(|pl| pl.name == name) {
                Some(ix) => ix,
                None => {
                    let known: Vec<_> = pools.iter().map(|p| p.name.as_str()).collect();
                    c.error(
                        &rp.key("pool"),
                        format!("unknown pool {name:?} (pools are: {})", known.join(", ")),
                    );
                    0
                }
            },
        };
        let cache = route_cache(r.cache, &rp.key("cache"), c);
        let readonly = match r.readonly.as_deref() {
            None | Some("inherit") => RouteReadonly::Inherit,
            Some("always") => RouteReadonly::Always,
            Some("never") => RouteReadonly::Never,
            Some(other) => {
                c.error(
                    &rp.key("readonly"),
                    format!("{other:?}: use \"inherit\", \"always\" or \"never\""),
                );
                RouteReadonly::Inherit
            }
        };
        out.push(RouteConfig {
            name,
            hosts,
            path_prefix,
            pool,
            cache,
            readonly,
            allow_upgrade: r.allow_upgrade.unwrap_or(false),
        });
    }
    out
}

fn host_pattern(h: &str) -> Option<HostPattern> {
    let h = h.trim().to_ascii_lowercase();
    let (wild, name) = match h.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, h.as_str()),
    };
    let ok = !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if !ok {
        return None;
    }
    Some(if wild {
        HostPattern::Wildcard(format!(".{name}"))
    } else {
        HostPattern::Exact(name.to_string())
    })
}

fn admin(a: file::AdminSection, p: &KeyPath, c: &mut Collector) -> AdminConfig {
    let address = socket_addr(
        a.address.as_deref().unwrap_or(DEFAULT_ADMIN),
        &p.key("address"),
        c,
    )
    .unwrap_or_else(placeholder_addr);
    let token = match (a.token, a.token_file) {
        (Some(_), Some(_)) => {
            c.error(&p.key("token_file"), "set token or token_file, not both");
            None
        }
        (Some(t), None) => Some(t),
        (None, Some(f)) => match std::fs::read_to_string(&f) {
            Ok(t) if !t.trim().is_empty() => Some(t.trim().to_string()),
            Ok(_) => {
                c.error(&p.key("token_file"), format!("{f}: file is empty"));
                None
            }
            Err(e) => {
                c.error(&p.key("token_file"), format!("{f}: {e}"));
                None
            }
        },
        (None, None) => None,
    };
    if matches!(&token, Some(t) if t.len() < 16) {
        c.error(&p.key("token"), "too short: use at least 16 characters");
    }
    if !address.ip().is_loopback() && token.is_none() {
        c.error(
            &p.key("address"),
            format!("{address} is not a loopback address: set token or token_file, or bind to 127.0.0.1"),
        );
    }
    AdminConfig {
        enabled: a.enabled.unwrap_or(true),
        address,
        token,
    }
}
