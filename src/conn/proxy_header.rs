//! The PROXY protocol header (HAProxy's `send-proxy` / `send-proxy-v2`, spec
//! `doc/proxy-protocol.txt`), parsed from the first bytes of a connection: version 1 (one text
//! line, at most 107 bytes with its CRLF) and version 2 (a 16-byte binary head, then the
//! addresses and TLVs, at most `MAX_V2` bytes in all). Only what gatehouse needs is kept: the
//! header's length (the bytes after it belong to TLS or HTTP) and the source address, or none
//! when the connection's own peer stands (v1 `UNKNOWN`, v2 `LOCAL` or `AF_UNSPEC`). TLVs are
//! skipped. Pure: no I/O, no allocation.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// A version 1 header's most bytes, CRLF included (the spec's 107).
pub const MAX_V1: usize = 107;
/// A version 2 header's most bytes: the 16-byte head and up to 2 032 of addresses and TLVs
/// (the spec allows 64 KiB; senders put addresses and a few short TLVs there).
pub const MAX_V2: usize = 2048;
/// The most bytes read before the header is known to be complete or wrong.
pub const MAX_HEADER: usize = MAX_V2;

const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
const V1_PREFIX: &[u8; 6] = b"PROXY ";

/// What the bytes read so far make of a header.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A valid beginning: more bytes are needed.
    Incomplete,
    /// A whole header of `len` bytes; `source`: the client it names (none: keep the peer).
    Done {
        len: usize,
        source: Option<SocketAddr>,
    },
}

/// Parses the header at the start of `buf` (which may hold bytes past it).
pub fn parse(buf: &[u8]) -> Result<Parsed, &'static str> {
    if starts_as(buf, V2_SIGNATURE) {
        return if buf.len() < 16 {
            Ok(Parsed::Incomplete)
        } else {
            v2(buf)
        };
    }
    if starts_as(buf, V1_PREFIX) {
        return v1(buf);
    }
    Err("no PROXY protocol header")
}

/// Whether `buf` and `prefix` agree on their common length.
fn starts_as(buf: &[u8], prefix: &[u8]) -> bool {
    let n = buf.len().min(prefix.len());
    buf[..n] == prefix[..n]
}

fn v1(buf: &[u8]) -> Result<Parsed, &'static str> {
    let window = &buf[..buf.len().min(MAX_V1)];
    let Some(lf) = window.iter().position(|&b| b == b'\n') else {
        return if buf.len() >= MAX_V1 {
            Err("PROXY v1 header longer than 107 bytes")
        } else {
            Ok(Parsed::Incomplete)
        };
    };
    if lf == 0 || window[lf - 1] != b'\r' {
        return Err("PROXY v1 header without CRLF");
    }
    let line = std::str::from_utf8(&window[V1_PREFIX.len()..lf - 1])
        .map_err(|_| "PROXY v1 header not ASCII")?;
    let len = lf + 1;
    let mut fields = line.split(' ');
    let family = fields.next().unwrap_or("");
    if family == "UNKNOWN" {
        return Ok(Parsed::Done { len, source: None }); // the rest is ignored (spec 2.1)
    }
    let (src, dst, sport, dport) = match (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) {
        (Some(a), Some(b), Some(c), Some(d), None) => (a, b, c, d),
        _ => return Err("PROXY v1 header: wrong number of fields"),
    };
    let ip = |s: &str| -> Result<IpAddr, &'static str> {
        match family {
            "TCP4" => s.parse::<Ipv4Addr>().map(IpAddr::V4),
            "TCP6" => s.parse::<Ipv6Addr>().map(IpAddr::V6),
            _ => return Err("PROXY v1 header: unknown protocol family"),
        }
        .map_err(|_| "PROXY v1 header: bad address")
    };
    let (src, _) = (ip(src)?, ip(dst)?);
    let (sport, _) = (port(sport)?, port(dport)?);
    Ok(Parsed::Done {
        len,
        source: Some(SocketAddr::new(src, sport)),
    })
}

/// A v1 port: decimal digits only, no leading zero (spec 2.1), at most 65535.
fn port(s: &str) -> Result<u16, &'static str> {
    let bad = s.is_empty()
        || s.len() > 5
        || !s.bytes().all(|b| b.is_ascii_digit())
        || (s.len() > 1 && s.starts_with('0'));
    if bad {
        return Err("PROXY v1 header: bad port");
    }
    s.parse().map_err(|_| "PROXY v1 header: bad port")
}

fn v2(buf: &[u8]) -> Result<Parsed, &'static str> {
    let (version, command) = (buf[12] >> 4, buf[12] & 0x0f);
    if version != 2 {
        return Err("PROXY v2 header: unknown version");
    }
    let len = 16 + usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    if len > MAX_V2 {
        return Err("PROXY v2 header longer than 2048 bytes");
    }
    let local = match command {
        0 => true,
        1 => false,
        _ => return Err("PROXY v2 header: unknown command"),
    };
    if buf.len() < len {
        return Ok(Parsed::Incomplete);
    }
    let body = &buf[16..len];
    // LOCAL (a health check of the proxy itself): the addresses are ignored (spec 2.2).
    let source = match (local, buf[13]) {
        (true, _) | (false, 0x00) => None,
        (false, 0x11) => {
            let a = body
                .get(..12)
                .ok_or("PROXY v2 header: short IPv4 addresses")?;
            let ip = Ipv4Addr::new(a[0], a[1], a[2], a[3]);
            Some(SocketAddr::new(ip.into(), u16::from_be_bytes([a[8], a[9]])))
        }
        (false, 0x21) => {
            let a = body
                .get(..36)
                .ok_or("PROXY v2 header: short IPv6 addresses")?;
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&a[..16]);
            let ip = Ipv6Addr::from(octets);
            Some(SocketAddr::new(
                ip.into(),
                u16::from_be_bytes([a[32], a[33]]),
            ))
        }
        _ => return Err("PROXY v2 header: address family not TCP over IPv4 or IPv6"),
    };
    Ok(Parsed::Done { len, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(len: usize, source: &str) -> Result<Parsed, &'static str> {
        Ok(Parsed::Done {
            len,
            source: Some(source.parse().unwrap()),
        })
    }

    #[test]
    fn v1_tcp4_tcp6_and_unknown() {
        let h = b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n";
        assert_eq!(parse(h), done(h.len(), "192.0.2.1:56324"));
        let mut with_tls = h.to_vec();
        with_tls.extend_from_slice(b"\x16\x03\x01");
        assert_eq!(parse(&with_tls), done(h.len(), "192.0.2.1:56324"));
        let h = b"PROXY TCP6 2001:db8::1 2001:db8::2 1 80\r\nGET";
        assert_eq!(parse(h), done(h.len() - 3, "[2001:db8::1]:1"));
        let h = b"PROXY UNKNOWN ffff::1 whatever\r\n";
        let unknown = Parsed::Done {
            len: h.len(),
            source: None,
        };
        assert_eq!(parse(h), Ok(unknown));
    }

    #[test]
    fn v1_truncated_is_incomplete_until_107_bytes() {
        let h = b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n";
        for n in 0..h.len() {
            assert_eq!(parse(&h[..n]), Ok(Parsed::Incomplete), "{n} bytes");
        }
        let long = [b"PROXY TCP4 ".as_slice(), &[b'1'; 200]].concat();
        assert!(parse(&long[..106]).is_ok());
        assert!(parse(&long[..107]).is_err());
        // A CRLF only past the 107th byte: too long.
        let mut late = long[..110].to_vec();
        late.extend_from_slice(b"\r\n");
        assert!(parse(&late).is_err());
    }

    #[test]
    fn v1_hostile_lines_are_refused() {
        for bad in [
            b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\n".as_slice(), // no CR
            b"PROXY TCP4 192.0.2.1 198.51.100.2 56324\r\n",
            b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443 1\r\n",
            b"PROXY TCP4 2001:db8::1 198.51.100.2 1 2\r\n", // family and address disagree
            b"PROXY TCP6 192.0.2.1 198.51.100.2 1 2\r\n",
            b"PROXY TCP5 192.0.2.1 198.51.100.2 1 2\r\n",
            b"PROXY TCP4 192.0.2.300 198.51.100.2 1 2\r\n",
            b"PROXY TCP4 192.0.2.1 198.51.100.2 65536 2\r\n",
            b"PROXY TCP4 192.0.2.1 198.51.100.2 080 2\r\n",
            b"PROXY TCP4 192.0.2.1 198.51.100.2 +80 2\r\n",
            b"PROXY TCP4  192.0.2.1 198.51.100.2 1 2\r\n",
            b"PROXY TCP4 192.0.2.1 198.51.100.2 1 \xff\r\n",
            b"GET / HTTP/1.1\r\n",
            b"proxy TCP4 192.0.2.1 198.51.100.2 1 2\r\n",
            b"\x16\x03\x01\x02\x00",
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    fn v2_header(command: u8, family: u8, body: &[u8]) -> Vec<u8> {
        let mut h = V2_SIGNATURE.to_vec();
        h.extend_from_slice(&[0x20 | command, family]);
        h.extend_from_slice(&(body.len() as u16).to_be_bytes());
        h.extend_from_slice(body);
        h
    }

    #[test]
    fn v2_tcp4_tcp6_local_and_tlvs() {
        let mut a4 = vec![192, 0, 2, 1, 198, 51, 100, 2];
        a4.extend_from_slice(&56324u16.to_be_bytes());
        a4.extend_from_slice(&443u16.to_be_bytes());
        let h = v2_header(1, 0x11, &a4);
        assert_eq!(parse(&h), done(28, "192.0.2.1:56324"));
        // TLVs after the addresses are skipped; bytes after the header are not taken.
        let mut with_tlv = a4.clone();
        with_tlv.extend_from_slice(&[0x04, 0x00, 0x01, 0x00]); // PP2_TYPE_NOOP
        let mut h = v2_header(1, 0x11, &with_tlv);
        h.extend_from_slice(b"GET / HTTP/1.1\r\n");
        assert_eq!(parse(&h), done(32, "192.0.2.1:56324"));
        let mut a6 = "2001:db8::7".parse::<Ipv6Addr>().unwrap().octets().to_vec();
        a6.extend_from_slice(&[0; 16]);
        a6.extend_from_slice(&[0, 80, 1, 187]);
        assert_eq!(
            parse(&v2_header(1, 0x21, &a6)),
            done(52, "[2001:db8::7]:80")
        );
        // LOCAL: addresses ignored, whatever the family says.
        let local = Parsed::Done {
            len: 28,
            source: None,
        };
        assert_eq!(parse(&v2_header(0, 0x11, &a4)), Ok(local));
        let unspec = Parsed::Done {
            len: 16,
            source: None,
        };
        assert_eq!(parse(&v2_header(1, 0x00, &[])), Ok(unspec));
    }

    #[test]
    fn v2_truncated_oversize_and_hostile() {
        let a4 = [192, 0, 2, 1, 198, 51, 100, 2, 0, 1, 0, 2];
        let h = v2_header(1, 0x11, &a4);
        for n in 0..h.len() {
            assert_eq!(parse(&h[..n]), Ok(Parsed::Incomplete), "{n} bytes");
        }
        let oversize = v2_header(1, 0x11, &[0; MAX_V2 - 15]);
        assert!(parse(&oversize[..16]).is_err(), "refused from its head");
        assert!(parse(&v2_header(1, 0x11, &[0; MAX_V2 - 16])).is_ok());
        let mut bad_signature = h.clone();
        bad_signature[11] = b'X';
        assert!(parse(&bad_signature).is_err());
        let mut bad_version = h.clone();
        bad_version[12] = 0x11;
        assert!(parse(&bad_version).is_err());
        assert!(parse(&v2_header(2, 0x11, &a4)).is_err(), "unknown command");
        for family in [0x12, 0x22, 0x31, 0x32, 0x41, 0xff] {
            assert!(parse(&v2_header(1, family, &a4)).is_err(), "{family:#x}");
        }
        assert!(parse(&v2_header(1, 0x11, &a4[..11])).is_err(), "short");
        assert!(parse(&v2_header(1, 0x21, &[0; 35])).is_err(), "short");
    }
}
