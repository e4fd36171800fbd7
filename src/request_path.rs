//! A request's path as servers read it, for every decision made on a path before it is
//! forwarded (routing, access rules, read-only mode's allowed paths), so that `/%61dmin`,
//! `//admin` and `/x/../admin` are all `/admin` to them, as nginx matches its locations:
//! percent-escapes decoded once, repeated slashes merged, `.` and `..` segments resolved
//! (RFC 3986 §5.2.4). A path with none of these is used as it is, without an allocation.
//!
//! `lenient` is the reading of the servers that see more in a path: Tomcat, Jetty and Spring
//! drop a segment's `;parameters` (`/x/..;/admin` is `/admin` to them), IIS and ASP.NET take
//! `\` for `/`. Deny decisions hold when either reading matches; allow decisions only when
//! both do. The path forwarded is the client's, unchanged.

use std::borrow::Cow;

/// `path` (without its query) in the form rules match.
pub fn normalized(path: &str) -> Cow<'_, str> {
    if !needs_work(path.as_bytes()) {
        return Cow::Borrowed(path);
    }
    let decoded = decode(path.as_bytes());
    let text = String::from_utf8_lossy(&decoded);
    Cow::Owned(resolve(&text))
}

/// Whether `path` has an escape, an empty segment or a dot segment.
fn needs_work(path: &[u8]) -> bool {
    let mut prev = b'/';
    for (i, &b) in path.iter().enumerate() {
        match b {
            b'%' => return true,
            b'/' if prev == b'/' && i > 0 => return true,
            b'.' if prev == b'/' => {
                let rest = &path[i + 1..];
                let seg_end = rest.first().is_none_or(|&c| c == b'/');
                let dot_dot = rest.first() == Some(&b'.') && rest.get(1).is_none_or(|&c| c == b'/');
                if seg_end || dot_dot {
                    return true;
                }
            }
            _ => {}
        }
        prev = b;
    }
    false
}

/// The lenient reading of `path` (see the module doc), when it differs from `normalized`'s:
/// only for a path with a `;` or a `\\`, escaped or not.
pub fn lenient(path: &str) -> Option<String> {
    let raw = path.as_bytes();
    if !raw.iter().any(|&b| matches!(b, b';' | b'\\' | b'%')) {
        return None;
    }
    let escaped = |c: &[u8]| {
        raw.windows(3)
            .any(|w| w[0] == b'%' && w[1..].eq_ignore_ascii_case(c))
    };
    if !raw.iter().any(|&b| b == b';' || b == b'\\') && !escaped(b"3b") && !escaped(b"5c") {
        return None;
    }
    let mut decoded = decode(raw);
    for b in decoded.iter_mut() {
        if *b == b'\\' {
            *b = b'/';
        }
    }
    let text = String::from_utf8_lossy(&decoded);
    let stripped: Vec<&str> = text
        .split('/')
        .map(|seg| seg.split(';').next().unwrap_or(""))
        .collect();
    Some(resolve(&stripped.join("/")))
}

/// Each valid `%XX` as its byte; anything else as it is.
fn decode(path: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len());
    let mut i = 0;
    while i < path.len() {
        let b = path[i];
        if b == b'%' {
            // Two hex digits, no sign (`from_str_radix` alone takes `%+e`, which nginx refuses).
            let hex = path
                .get(i + 1..i + 3)
                .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                .and_then(|h| std::str::from_utf8(h).ok());
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    out
}

/// Empty and `.` segments dropped, `..` taking the one before it away (never above the
/// root); a trailing slash kept.
fn resolve(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    let mut trailing = false;
    for seg in path.split('/') {
        match seg {
            "" => {}
            "." => trailing = true,
            ".." => {
                segments.pop();
                trailing = true;
            }
            s => {
                segments.push(s);
                trailing = false;
            }
        }
    }
    trailing |= path.ends_with('/');
    let mut out = String::with_capacity(path.len() + 1);
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    if trailing || segments.is_empty() {
        out.push('/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{lenient, normalized};
    use std::borrow::Cow;

    #[test]
    fn plain_paths_are_borrowed() {
        for p in [
            "/",
            "/admin",
            "/a/b.css",
            "/.well-known/x",
            "/a/.env",
            "/a..b/c",
            "*",
        ] {
            assert!(matches!(normalized(p), Cow::Borrowed(_)), "{p}");
        }
    }

    #[test]
    fn what_servers_read_as_the_same_path() {
        let cases = [
            ("/%61dmin", "/admin"),
            ("/%2561dmin", "/%61dmin"),
            ("//admin", "/admin"),
            ("/x/../admin", "/admin"),
            ("/./admin/", "/admin/"),
            ("/admin/.", "/admin/"),
            ("/a/b/..", "/a/"),
            ("/../../admin", "/admin"),
            ("/x%2F..%2Fadmin", "/admin"),
            ("/%zz/%4", "/%zz/%4"),
            ("/%+e", "/%+e"),
            ("/caf%C3%A9", "/café"),
            ("/%ff", "/\u{fffd}"),
            ("//", "/"),
            ("/..", "/"),
        ];
        for (raw, want) in cases {
            assert_eq!(normalized(raw), want, "{raw}");
        }
    }

    #[test]
    fn the_lenient_reading_drops_parameters_and_takes_backslashes_for_slashes() {
        let cases = [
            ("/x/..;/admin", Some("/admin")),
            ("/.;/admin", Some("/admin")),
            ("/.git;/config", Some("/.git/config")),
            ("/admin;jsessionid=1/x", Some("/admin/x")),
            ("/x\\..\\admin", Some("/admin")),
            ("/%5cadmin", Some("/admin")),
            ("/x/..%3B/admin", Some("/admin")),
            ("/admin", None),
            ("/x/../admin", None),
        ];
        for (raw, want) in cases {
            assert_eq!(lenient(raw).as_deref(), want, "{raw}");
        }
    }
}
