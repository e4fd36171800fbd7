//! Cache-Control directives as a shared cache must read them (RFC 9111 §5.2, RFC 9213 for
//! `CDN-Cache-Control` and other targeted fields): every occurrence of a directive is kept, so
//! a duplicated or conflicting directive takes its most restrictive reading (the smallest
//! delta-seconds; an invalid one counts as 0), and a directive name inside a quoted string is
//! never mistaken for a directive.
//!
//! Written here rather than taken from pingora's `CacheControl`: that one keeps only the last
//! occurrence of each directive, so `max-age=60, max-age=10` reads as 60.

use http::HeaderValue;

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
