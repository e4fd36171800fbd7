//! `[compression]` and `[routes.compression]`: what a route compresses, in which codings, at
//! which levels. A route's table overrides the global one field by field; a route without one
//! takes the global one. Written, either table is on unless it says `enabled = false`.

use super::super::error::{Collector, KeyPath};
use super::super::file::CompressionSection;
use crate::compress::{Encoding, Settings};

/// The global table, compiled: the base every route's table starts from, and whether routes
/// without their own compress.
pub(super) struct Global {
    base: Settings,
    enabled: bool,
}

pub(super) fn global(f: Option<&CompressionSection>, p: &KeyPath, c: &mut Collector) -> Global {
    let base = defaults();
    match f {
        None => Global {
            base,
            enabled: false,
        },
        Some(f) => Global {
            base: merged(base, f, p, c),
            enabled: f.enabled.unwrap_or(true),
        },
    }
}

/// A route's settings (None: it compresses nothing).
pub(super) fn route(
    f: Option<CompressionSection>,
    global: &Global,
    p: &KeyPath,
    c: &mut Collector,
) -> Option<Settings> {
    match f {
        None => global.enabled.then(|| global.base.clone()),
        Some(f) => {
            let settings = merged(global.base.clone(), &f, p, c);
            f.enabled.unwrap_or(true).then_some(settings)
        }
    }
}

fn defaults() -> Settings {
    Settings {
        types: Settings::DEFAULT_TYPES
            .iter()
            .map(|t| t.to_string())
            .collect(),
        min_size: 256,
        // nginx's common gzip_comp_level; brotli's and zstd's levels for on-the-fly use.
        levels: [6, 4, 3],
        preference: vec![Encoding::Zstd, Encoding::Br, Encoding::Gzip],
        cache_encoding: Encoding::Gzip,
    }
}

fn merged(mut s: Settings, f: &CompressionSection, p: &KeyPath, c: &mut Collector) -> Settings {
    if let Some(types) = &f.types {
        s.types = media_types(types, &p.key("types"), c);
    }
    if let Some(min) = f.min_size {
        s.min_size = min;
    }
    let levels = [
        (Encoding::Gzip, f.gzip_level, "gzip_level", 1..=9),
        (Encoding::Br, f.br_level, "br_level", 0..=11),
        // zstd's ultra levels (20-22) take hundreds of MB per coder: not for on-the-fly use.
        (Encoding::Zstd, f.zstd_level, "zstd_level", 1..=19),
    ];
    for (e, level, key, range) in levels {
        let Some(level) = level else { continue };
        if range.contains(&level) {
            s.levels[e.index()] = level;
        } else {
            let (lo, hi) = (range.start(), range.end());
            c.error(
                &p.key(key),
                format!("{level}: use a level from {lo} to {hi}"),
            );
        }
    }
    if let Some(list) = &f.preference {
        s.preference = preference(list, &p.key("preference"), c);
    }
    if let Some(name) = &f.cache_encoding {
        if let Some(e) = encoding(name, &p.key("cache_encoding"), c) {
            s.cache_encoding = e;
        }
    }
    s
}

fn encoding(name: &str, p: &KeyPath, c: &mut Collector) -> Option<Encoding> {
    let e = Encoding::from_token(name.as_bytes()).filter(|e| e.token() == name);
    if e.is_none() {
        c.error(p, format!("{name:?}: use \"gzip\", \"br\" or \"zstd\""));
    }
    e
}

fn preference(list: &[String], p: &KeyPath, c: &mut Collector) -> Vec<Encoding> {
    if list.is_empty() {
        c.error(p, "name at least one coding (or set enabled = false)");
    }
    let mut out = Vec::new();
    for (i, name) in list.iter().enumerate() {
        let Some(e) = encoding(name, &p.index(i), c) else {
            continue;
        };
        if out.contains(&e) {
            c.error(&p.index(i), format!("{name:?} is listed twice"));
        }
        out.push(e);
    }
    out
}

fn media_types(list: &[String], p: &KeyPath, c: &mut Collector) -> Vec<String> {
    let mut out = Vec::new();
    for (i, t) in list.iter().enumerate() {
        let t = t.trim().to_ascii_lowercase();
        let valid = t == "*"
            || t.split_once('/').is_some_and(|(kind, sub)| {
                !kind.is_empty() && !sub.is_empty() && !t.contains([';', ' '])
            });
        if valid {
            out.push(t);
        } else {
            c.error(
                &p.index(i),
                format!("{t:?} is not a media type (write \"text/html\", \"text/*\" or \"*\")"),
            );
        }
    }
    out
}
