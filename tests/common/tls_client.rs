//! TLS clients that accept any certificate, for tests that look at *which* certificate was
//! served (or what was stapled to it), not whether a client would trust it; and one HTTP/1
//! request over such a connection. A client that verifies is `certs::https_client`.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme, SupportedProtocolVersion};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Accepts any certificate, and keeps the OCSP response stapled to the last one.
#[derive(Debug, Default)]
pub struct AcceptAny {
    stapled: Mutex<Vec<u8>>,
}

impl AcceptAny {
    /// The OCSP response the server stapled in the last handshake (empty: none).
    pub fn stapled(&self) -> Vec<u8> {
        self.stapled.lock().unwrap().clone()
    }
}

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        ocsp: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        *self.stapled.lock().unwrap() = ocsp.to_vec();
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A client config on `provider` for `versions`, offering `alpn`, accepting any certificate.
pub fn accept_any_config(
    provider: rustls::crypto::CryptoProvider,
    versions: &[&'static SupportedProtocolVersion],
    alpn: &[&[u8]],
) -> rustls::ClientConfig {
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(versions)
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAny::default()))
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config
}

pub type Tls = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

/// Connects to `addr` and handshakes as `name` with `config`.
pub async fn connect(
    addr: SocketAddr,
    name: ServerName<'static>,
    config: Arc<rustls::ClientConfig>,
) -> std::io::Result<Tls> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
}

/// Handshakes with `sni` (None: an IP name, so no SNI is sent) and offers `alpn`: ring's
/// provider, rustls's default versions.
pub async fn handshake(
    addr: SocketAddr,
    sni: Option<&str>,
    alpn: &[&[u8]],
) -> std::io::Result<Tls> {
    let config = accept_any_config(
        rustls::crypto::ring::default_provider(),
        rustls::DEFAULT_VERSIONS,
        alpn,
    );
    let name = match sni {
        Some(n) => ServerName::try_from(n.to_string()).unwrap(),
        None => ServerName::IpAddress(addr.ip().into()),
    };
    connect(addr, name, Arc::new(config)).await
}

/// `GET /` for `host` over `tls`: what came back, read until it ends with the origin's body
/// (`o`).
pub async fn get_on(tls: &mut Tls, host: &str) -> String {
    let req = format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
    tls.write_all(req.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let mut got = Vec::new();
    while !got.ends_with(b"o") {
        let n = tls.read(&mut buf).await.unwrap();
        assert!(
            n > 0,
            "connection closed: {}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// An HTTP/2 client over TLS (ALPN h2, SNI `a.test`) to `tls`, its connection driven on a task
/// of its own.
pub async fn h2_client(tls: std::net::SocketAddr) -> h2::client::SendRequest<bytes::Bytes> {
    let stream = handshake(tls, Some("a.test"), &[b"h2"]).await.unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (send, conn) = h2::client::handshake(stream).await.unwrap();
    tokio::spawn(conn);
    send
}
