//! Accept-Encoding (RFC 9110 §12.5.3): the q-value a client gives each coding gatehouse
//! writes, identity and `*`, and the choice among the codings a route offers.

use super::Encoding;

/// A request's Accept-Encoding, reduced to what gatehouse can act on. q-values are kept in
/// thousandths (`q=0.5` is 500); `None` where the field does not name the coding.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Accepted {
    /// Whether the request has the field at all.
    present: bool,
    codings: [Option<u16>; 3],
    identity: Option<u16>,
    any: Option<u16>,
}

impl Accepted {
    /// Parses every Accept-Encoding line of a request. A member with a malformed q-value is
    /// ignored (as if not sent); unknown codings are skipped.
    pub fn parse<'a>(values: impl Iterator<Item = &'a [u8]>) -> Accepted {
        let mut out = Accepted::default();
        for value in values {
            out.present = true;
            for member in value.split(|b| *b == b',') {
                let mut parts = member.split(|b| *b == b';');
                let coding = parts.next().unwrap_or_default().trim_ascii();
                if coding.is_empty() {
                    continue;
                }
                let Some(q) = quality(parts) else { continue };
                let slot = if coding == b"*" {
                    &mut out.any
                } else if coding.eq_ignore_ascii_case(b"identity") {
                    &mut out.identity
                } else if let Some(e) = Encoding::from_token(coding) {
                    &mut out.codings[e.index()]
                } else {
                    continue;
                };
                // Named twice: the higher counts.
                *slot = Some(slot.map_or(q, |old| old.max(q)));
            }
        }
        out
    }

    /// The q-value the client gives `e`: as named, else as `*`, else 0. Without the field a
    /// client is sent no coding it did not ask for (as nginx and HAProxy do).
    pub fn q(&self, e: Encoding) -> u16 {
        if !self.present {
            return 0;
        }
        self.codings[e.index()].or(self.any).unwrap_or(0)
    }

    pub fn accepts(&self, e: Encoding) -> bool {
        self.q(e) > 0
    }

    /// Whether an unencoded response is acceptable: unless `identity;q=0`, or `*;q=0` without
    /// identity named.
    pub fn identity_ok(&self) -> bool {
        match (self.identity, self.any) {
            (Some(q), _) => q > 0,
            (None, Some(0)) => false,
            _ => true,
        }
    }

    /// The coding to compress in, from `offered` (best first): the highest q-value, ties to
    /// the earlier. None when the client accepts none of them, or names identity with a
    /// higher q-value than the best of them.
    pub fn best(&self, offered: &[Encoding]) -> Option<Encoding> {
        let mut best: Option<(Encoding, u16)> = None;
        for &e in offered {
            let q = self.q(e);
            if q > 0 && best.is_none_or(|(_, bq)| q > bq) {
                best = Some((e, q));
            }
        }
        let (e, q) = best?;
        match self.identity {
            Some(iq) if iq > q => None,
            _ => Some(e),
        }
    }
}

/// The q-value among a member's parameters (1 when none); None when malformed.
fn quality<'a>(params: impl Iterator<Item = &'a [u8]>) -> Option<u16> {
    let mut q = 1000;
    for p in params {
        let p = p.trim_ascii();
        let Some(v) = p.strip_prefix(b"q=").or_else(|| p.strip_prefix(b"Q=")) else {
            continue; // other parameters mean nothing here
        };
        q = parse_q(v)?;
    }
    Some(q)
}

/// `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )`, in thousandths.
fn parse_q(v: &[u8]) -> Option<u16> {
    let (int, frac) = match v.iter().position(|b| *b == b'.') {
        Some(i) => (&v[..i], &v[i + 1..]),
        None => (v, &[][..]),
    };
    if frac.len() > 3 || !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut thousandths = 0u16;
    for i in 0..3 {
        thousandths = thousandths * 10 + frac.get(i).map_or(0, |d| u16::from(d - b'0'));
    }
    match int {
        b"0" => Some(thousandths),
        b"1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Encoding::*;

    const PREF: [Encoding; 3] = [Zstd, Br, Gzip];

    fn parse(v: &str) -> Accepted {
        Accepted::parse(std::iter::once(v.as_bytes()))
    }

    #[test]
    fn no_field_accepts_identity_only() {
        let a = Accepted::parse(std::iter::empty());
        assert_eq!(a.best(&PREF), None);
        assert!(a.identity_ok());
        assert!(!a.accepts(Gzip));
    }

    #[test]
    fn q_values_choose_then_preference_breaks_ties() {
        assert_eq!(parse("gzip, deflate, br, zstd").best(&PREF), Some(Zstd));
        assert_eq!(parse("gzip;q=1, br;q=0.8").best(&PREF), Some(Gzip));
        assert_eq!(parse("gzip;q=0.5, br;q=0.5").best(&PREF), Some(Br));
        assert_eq!(parse("br;q=0, gzip").best(&PREF), Some(Gzip));
        assert_eq!(parse("*").best(&PREF), Some(Zstd));
        assert_eq!(parse("*, zstd;q=0").best(&PREF), Some(Br));
        assert_eq!(parse("deflate").best(&PREF), None);
        assert_eq!(parse("").best(&PREF), None);
        assert_eq!(parse("GZIP").best(&[Br, Gzip]), Some(Gzip));
        assert_eq!(parse("x-gzip").best(&PREF), Some(Gzip));
        // Only what the route offers.
        assert_eq!(parse("br, zstd").best(&[Gzip]), None);
    }

    #[test]
    fn identity_preferred_or_refused() {
        assert_eq!(parse("gzip;q=0.5, identity").best(&PREF), None);
        assert!(!parse("gzip, identity;q=0").identity_ok());
        assert!(!parse("*;q=0").identity_ok());
        assert!(parse("*;q=0, identity").identity_ok());
        assert!(parse("gzip").identity_ok());
    }

    #[test]
    fn malformed_q_values_drop_the_member() {
        assert_eq!(parse("gzip;q=2, br;q=0.1234").best(&PREF), None);
        assert_eq!(parse("gzip;q=abc, br;q=0.001").best(&PREF), Some(Br));
        assert_eq!(parse("gzip;q=1.000").best(&PREF), Some(Gzip));
        assert_eq!(parse("gzip;q=1.5").best(&PREF), None);
        assert_eq!(parse("gzip; Q=0.7 ").q(Gzip), 700);
    }
}
