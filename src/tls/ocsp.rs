//! OCSP stapling: a certificate's OCSP response (RFC 6960), read from a file the operator keeps
//! fresh (e.g. `openssl ocsp ... -respout`), sent to clients in the handshake. It is read with
//! the certificate — at start and on every reload — and checked: a successful response whose
//! certificate status is "good", not past its `nextUpdate` (stapling a stale answer makes
//! strict clients fail). `nextUpdate` is shown in `/metrics`, and `check` warns two days ahead.
//!
//! The response is read with der-parser (x509-parser's DER reader): only the fields above are
//! looked at; the signature is the client's to verify.

use x509_parser::der_parser::ber::{BerObject, BerObjectContent};
use x509_parser::der_parser::der::parse_der;

/// A response ready to staple.
#[derive(Debug, Clone)]
pub struct Staple {
    pub der: Vec<u8>,
    /// Unix seconds; None when the responder gave no `nextUpdate`.
    pub next_update: Option<i64>,
}

/// Reads and checks the OCSP response in `path` (DER).
pub fn read(path: &str) -> Result<Staple, String> {
    let der = std::fs::read(path).map_err(|e| format!("{path}: cannot read: {e}"))?;
    let next_update = check(&der).map_err(|e| format!("{path}: {e}"))?;
    Ok(Staple { der, next_update })
}

fn seq<'a, 'b>(o: &'b BerObject<'a>, what: &str) -> Result<&'b Vec<BerObject<'a>>, String> {
    o.as_sequence()
        .map_err(|_| format!("not an OCSP response ({what} is not a sequence)"))
}

/// The inner object of an explicitly tagged `[n]` element.
fn explicit<'a>(o: &BerObject<'a>) -> Result<BerObject<'a>, String> {
    let inner = o
        .as_slice()
        .map_err(|_| "not an OCSP response (tagged field)".to_string())?;
    parse_der(inner)
        .map(|(_, v)| v)
        .map_err(|_| "not an OCSP response (tagged field)".into())
}

/// Checks status and certificate status; returns `nextUpdate` (Unix seconds) if present.
fn check(der: &[u8]) -> Result<Option<i64>, String> {
    let (_, top) = parse_der(der).map_err(|_| "not a DER OCSP response".to_string())?;
    let top = seq(&top, "OCSPResponse")?;
    let status = top
        .first()
        .and_then(|s| s.as_u32().ok())
        .ok_or("not an OCSP response (no responseStatus)")?;
    if status != 0 {
        return Err(format!(
            "the OCSP responder did not answer successfully (responseStatus {status})"
        ));
    }
    let bytes = explicit(top.get(1).ok_or("no responseBytes")?)?;
    let basic_der = seq(&bytes, "responseBytes")?
        .get(1)
        .and_then(|r| r.as_slice().ok())
        .ok_or("no BasicOCSPResponse")?;
    let (_, basic) = parse_der(basic_der).map_err(|_| "bad BasicOCSPResponse".to_string())?;
    let data = seq(&basic, "BasicOCSPResponse")?
        .first()
        .ok_or("no tbsResponseData")?;
    // version [0]?, responderID [1]|[2], producedAt, responses, extensions [1]?
    let responses = seq(data, "ResponseData")?
        .iter()
        .find(|o| matches!(o.content, BerObjectContent::Sequence(_)))
        .ok_or("no responses")?;
    let single = seq(responses, "responses")?
        .first()
        .ok_or("no SingleResponse")?;
    let fields = seq(single, "SingleResponse")?;
    // certID, certStatus, thisUpdate, nextUpdate [0]?
    match fields.get(1).map(|s| s.header.tag().0) {
        Some(0) => {}
        Some(1) => return Err("the certificate is revoked (OCSP certStatus revoked)".into()),
        _ => return Err("the OCSP certStatus is not \"good\"".into()),
    }
    let Some(next) = fields.get(3).filter(|f| f.header.tag().0 == 0) else {
        return Ok(None);
    };
    match explicit(next)?.content {
        BerObjectContent::GeneralizedTime(t) => Ok(Some(unix(&t)?)),
        _ => Err("nextUpdate is not a time".into()),
    }
}

fn unix(t: &x509_parser::der_parser::asn1_rs::ASN1DateTime) -> Result<i64, String> {
    let text = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    );
    humantime::parse_rfc3339(&text)
        .map(|st| crate::clock::unix_secs(st) as i64)
        .map_err(|_| format!("bad time {text}"))
}
