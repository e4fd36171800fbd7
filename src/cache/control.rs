//! Cache-Control directives as a shared cache must read them.
//!
//! `Cache-Control` (RFC 9111 §5.2): every occurrence of a directive is kept, so a duplicated or
//! conflicting directive takes its most restrictive reading (the smallest delta-seconds; an
//! invalid one counts as 0), and a directive name inside a quoted string is never mistaken for
//! a directive. Written here rather than taken from pingora's `CacheControl`: that one keeps
//! only the last occurrence of each directive, so `max-age=60, max-age=10` reads as 60.
//!
//! Targeted fields (`CDN-Cache-Control`, gatehouse's own; RFC 9213 §2.1) are Structured Field
//! Dictionaries (RFC 8941), parsed by the `sfv` crate (the parser pingora already uses). A
//! field that does not parse, or whose delta-seconds directive (`max-age`, `s-maxage`,
//! `stale-while-revalidate`, `stale-if-error`) is not a non-negative Integer, is ignored
//! whole, as if absent: the cache falls back to the next field, as RFC 9213 asks. Parameters
//! are ignored; a member given twice counts once, its last value (the Dictionary's rule).

use http::HeaderValue;

/// The directives whose argument is delta-seconds: an Integer in a targeted field.
const DELTA_SECONDS: [&str; 4] = [
    "max-age",
    "s-maxage",
    "stale-while-revalidate",
    "stale-if-error",
];

/// The directives of one field (all its lines), in order, names lowercased, values unquoted.
#[derive(Debug, Default)]
pub struct Directives {
    list: Vec<(String, Option<String>)>,
}

impl Directives {
    /// The directives of the field `name` in `headers`; None when the field is absent.
    pub fn of(headers: &http::HeaderMap, name: &str) -> Option<Directives> {
        let mut values = headers.get_all(name).iter().peekable();
        values.peek()?;
        let mut d = Directives::default();
        for v in values {
            d.parse_line(v);
        }
        Some(d)
    }

    /// The directives of the targeted field `name`; None when it is absent, or not a valid
    /// Dictionary with the right types (then it is ignored, as if absent).
    pub fn targeted(headers: &http::HeaderMap, name: &str) -> Option<Directives> {
        let mut joined = Vec::new();
        for (i, line) in headers.get_all(name).iter().enumerate() {
            if i > 0 {
                joined.extend_from_slice(b", ");
            }
            joined.extend_from_slice(line.as_bytes());
        }
        if joined.is_empty() {
            return None;
        }
        let dictionary = sfv::Parser::parse_dictionary(&joined).ok()?;
        let mut d = Directives::default();
        for (name, member) in dictionary {
            let sfv::ListEntry::Item(item) = member else {
                return None; // no cache directive takes an inner list
            };
            let value = match item.bare_item {
                sfv::BareItem::Integer(n) if n >= 0 => Some(n.to_string()),
                _ if DELTA_SECONDS.contains(&name.as_str()) => return None,
                sfv::BareItem::Boolean(true) => None,
                sfv::BareItem::Boolean(false) => continue, // `?0`: not given
                sfv::BareItem::String(s) | sfv::BareItem::Token(s) => Some(s),
                _ => Some(String::new()),
            };
            d.list.push((name, value));
        }
        Some(d)
    }

    fn parse_line(&mut self, line: &HeaderValue) {
        let text = String::from_utf8_lossy(line.as_bytes());
        let mut item = String::new();
        let mut quoted = false;
        let mut escaped = false;
        for ch in text.chars().chain(std::iter::once(',')) {
            if quoted {
                item.push(ch);
                if escaped {
                    escaped = false;
                } else if ch == '\\' {
                    escaped = true;
                } else if ch == '"' {
                    quoted = false;
                }
            } else if ch == ',' {
                self.push_item(&item);
                item.clear();
            } else {
                quoted = ch == '"';
                item.push(ch);
            }
        }
    }

    fn push_item(&mut self, item: &str) {
        let item = item.trim();
        if item.is_empty() {
            return;
        }
        let (name, value) = match item.split_once('=') {
            Some((n, v)) => (n.trim(), Some(unquote(v.trim()))),
            None => (item, None),
        };
        self.list.push((name.to_ascii_lowercase(), value));
    }

    pub fn has(&self, name: &str) -> bool {
        self.list.iter().any(|(n, _)| n == name)
    }

    /// The delta-seconds of `name`: the smallest over its occurrences, 0 for an invalid value
    /// or one without a value (the most restrictive reading). None when absent.
    pub fn seconds(&self, name: &str) -> Option<u32> {
        self.list
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| {
                v.as_deref()
                    .and_then(|v| v.parse::<u64>().ok())
                    .map_or(0, |s| u32::try_from(s).unwrap_or(u32::MAX))
            })
            .min()
    }
}

/// A quoted-string's content (backslash escapes removed), or the token as it is.
fn unquote(v: &str) -> String {
    let Some(inner) = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) else {
        return v.to_string();
    };
    let mut out = String::with_capacity(inner.len());
    let mut escaped = false;
    for ch in inner.chars() {
        if escaped || ch != '\\' {
            out.push(ch);
            escaped = false;
        } else {
            escaped = true;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(lines: &[&str]) -> Directives {
        let mut h = http::HeaderMap::new();
        for l in lines {
            h.append("cache-control", HeaderValue::from_str(l).unwrap());
        }
        Directives::of(&h, "cache-control").unwrap()
    }

    #[test]
    fn quoted_strings_hide_directives() {
        let d = parse(&[r#"community="max-age=3600, public", no-transform"#]);
        assert_eq!(d.seconds("max-age"), None);
        assert!(!d.has("public"));
        assert!(d.has("no-transform"));
        let d = parse(&[r#"x="a \"quoted\" max-age=9", max-age=5"#]);
        assert_eq!(d.seconds("max-age"), Some(5));
    }

    fn targeted(lines: &[&str]) -> Option<Directives> {
        let mut h = http::HeaderMap::new();
        for l in lines {
            h.append("cdn-cache-control", HeaderValue::from_str(l).unwrap());
        }
        Directives::targeted(&h, "cdn-cache-control")
    }

    #[test]
    fn a_targeted_field_is_a_structured_dictionary_or_ignored() {
        let d = targeted(&["max-age=60, private=\"set-cookie\"", "must-revalidate"]).unwrap();
        assert_eq!(d.seconds("max-age"), Some(60));
        assert!(d.has("private") && d.has("must-revalidate"));
        let d = targeted(&[" foobar, max-age=99999999999;x=1 "]).unwrap();
        assert_eq!(d.seconds("max-age"), Some(u32::MAX), "parameters ignored");
        assert_eq!(
            targeted(&["max-age=60, max-age=10"])
                .unwrap()
                .seconds("max-age"),
            Some(10)
        );
        assert!(!targeted(&["no-store=?0"]).unwrap().has("no-store"));
        for invalid in [
            "max-age=10000, &&&&&",
            "max-age=\"10000\"",
            "max-age=-1",
            "max-age=1.5",
            "s-maxage",
            "max-age =100",
            "max-age= 100",
            "MaX-aGe=3600",
            "no-store=(a b)",
        ] {
            assert!(targeted(&[invalid]).is_none(), "{invalid} is ignored");
        }
        assert!(
            targeted(&["max-age=60", "&"]).is_none(),
            "one bad line spoils the field"
        );
        assert!(targeted(&[]).is_none());
    }

    #[test]
    fn duplicates_take_the_most_restrictive_reading() {
        assert_eq!(
            parse(&["max-age=60, max-age=10"]).seconds("max-age"),
            Some(10)
        );
        assert_eq!(
            parse(&["max-age=60", "max-age=10"]).seconds("max-age"),
            Some(10)
        );
        assert_eq!(
            parse(&["max-age=60, max-age=soon"]).seconds("max-age"),
            Some(0)
        );
        assert_eq!(parse(&["Max-Age=\"30\""]).seconds("max-age"), Some(30));
        assert_eq!(parse(&["max-age"]).seconds("max-age"), Some(0));
        assert_eq!(parse(&["public"]).seconds("max-age"), None);
    }
}
