//! Turns the file layer into a typed `Config`, collecting every error with its key path:
//! this file parses and walks the sections; each section's rules live in the file named after
//! it, and the shared value parsers (sizes, durations, addresses) in `values`.

mod access;
mod access_log;
mod cache;
mod client_address;
mod cluster;
mod compression;
mod listeners;
mod pools;
mod rate_limits;
mod readonly;
mod routes;
mod server;
#[cfg(test)]
mod tests;
mod tls;
mod values;

use super::error::{Collector, ConfigError, ConfigErrors, KeyPath, Locator, Seg};
use super::file::FileConfig;
use super::*;
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
    let rules = f.routes.iter_mut().flat_map(|r| r.access_rules.iter_mut());
    for r in f.access_rules.iter_mut().chain(rules) {
        fix(&mut r.deny_cidrs_file);
        fix(&mut r.allow_cidrs_file);
    }
    if let Some(cl) = f.cluster.as_mut() {
        fix(&mut cl.ca_file);
        fix(&mut cl.cert_file);
        fix(&mut cl.key_file);
        fix(&mut cl.password_file);
    }
    for t in &mut f.access_log.targets {
        fix(&mut t.path);
    }
    for l in &mut f.listeners {
        for cert in l.tls.iter_mut().flat_map(|t| t.certificates.iter_mut()) {
            fix(&mut cert.cert);
            fix(&mut cert.key);
            if let Some(o) = cert.ocsp.as_mut() {
                if let Some(path) = o
                    .strip_prefix("file:")
                    .filter(|p| Path::new(p).is_relative())
                {
                    *o = format!("file:{}", base.join(path).display());
                }
            }
        }
        if let Some(t) = l.tls.as_mut() {
            fix(&mut t.ticket_key_file);
            if let Some(a) = t.acme.as_mut() {
                fix(&mut a.storage);
                fix(&mut a.directory_ca);
            }
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
    let server = server::settings(f.server, &root.key("server"), c);
    let timeouts = server::timeouts(f.timeouts, &root.key("timeouts"), c);
    let limits = server::limits(f.limits, &root.key("limits"), c);
    let listeners = listeners::listeners(f.listeners, &server.state_dir, &root.key("listeners"), c);
    let pools = pools::pools(f.pools, &root.key("pools"), c);
    let mut rules = access::Builder::default();
    rules.named(f.access_rules, &root.key("access_rules"), c);
    let mut rates = rate_limits::Builder::default();
    rates.named(f.rate_limits, &root.key("rate_limits"), c);
    let compression = compression::global(f.compression.as_ref(), &root.key("compression"), c);
    let routes = routes::routes(
        f.routes,
        &pools,
        (&mut rules, &mut rates, &compression),
        &root.key("routes"),
        c,
    );
    let rate_limits = rates.finish(
        &f.access.rate_limits,
        &root.key("access").key("rate_limits"),
        c,
    );
    rate_limits::no_overlap(&rate_limits, &routes, &root.key("routes"), c);
    let access = rules.finish(f.access, &root.key("access"), c);
    let client_address = client_address::client_address(
        f.client_address,
        &listeners,
        &root.key("client_address"),
        &root.key("listeners"),
        c,
    );
    let admin = server::admin(f.admin, &root.key("admin"), c);
    let cache = cache::cache(f.cache, &root.key("cache"), c);
    let readonly = readonly::readonly(f.readonly, &root.key("readonly"), c);
    let access_log = access_log::access_log(f.access_log, &root.key("access_log"), c);
    let cluster = f
        .cluster
        .map(|s| cluster::cluster(s, &root.key("cluster"), c));
    for (pi, pool) in pools.iter().enumerate() {
        if !routes.iter().any(|r| r.pool == pi) {
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
        cluster,
        access,
        rate_limits,
        client_address,
        source: ConfigSource::default(),
        warnings: Vec::new(),
    }
}
