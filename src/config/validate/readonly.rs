//! `[readonly]`: the refusal page and what passes while read-only mode is on.

use super::super::defaults as d;
use super::super::error::{Collector, KeyPath};
use super::super::file;
use super::super::*;
use super::values::duration;

pub(super) fn readonly(f: file::ReadonlySection, p: &KeyPath, c: &mut Collector) -> ReadonlyConfig {
    let message = f.message.unwrap_or_else(|| d::READONLY_MESSAGE.into());
    let page = match &f.page {
        None => d::readonly_page(&message),
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
        retry_after: duration(
            f.retry_after,
            d::READONLY_RETRY_AFTER,
            &p.key("retry_after"),
            c,
        ),
        message,
        page,
        allow_paths: f.allow_paths,
        strip_cookies: f.strip_cookies.unwrap_or(false),
        ttl_floor: duration(f.ttl_floor, d::READONLY_TTL_FLOOR, &p.key("ttl_floor"), c),
    }
}
