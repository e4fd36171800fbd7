//! One ACME order: the account (stored, or created and stored), the order for the configured
//! names, each authorization answered by http-01 (the proxy serves the token) or tls-alpn-01
//! (the listener's resolver serves a challenge certificate to the validator), then the key and
//! CSR (made by instant-acme with rcgen), the certificate, and both saved.

use super::store::{self, Stored};
use super::Challenges;
use crate::tls::settings::AcmeSettings;
use crate::tls::ListenerTls;
use instant_acme::{
    Account, AuthorizationStatus, ChallengeType, Identifier, NewAccount, NewOrder, OrderStatus,
    RetryPolicy,
};
use pingora::tls::sign::CertifiedKey;
use rustls_pki_types::PrivateKeyDer;
use std::sync::Arc;
use std::time::Duration;

fn err(what: &str) -> impl Fn(instant_acme::Error) -> String + '_ {
    move |e| format!("{what}: {e}")
}

async fn account(s: &AcmeSettings) -> Result<Account, String> {
    let builder = match &s.directory_ca {
        Some(ca) => Account::builder_with_root(ca),
        None => Account::builder(),
    }
    .map_err(err("ACME client"))?;
    if let Some(creds) = store::account(s)? {
        return builder
            .from_credentials(creds)
            .await
            .map_err(err("ACME account"));
    }
    let contact: Vec<&str> = s.contact.iter().map(String::as_str).collect();
    let new = NewAccount {
        contact: &contact,
        terms_of_service_agreed: true,
        only_return_existing: false,
    };
    let (account, creds) = builder
        .create(&new, s.directory.clone(), None)
        .await
        .map_err(err("ACME account creation"))?;
    store::save_account(s, &creds)?;
    Ok(account)
}

/// A tls-alpn-01 challenge certificate (RFC 8737): self-signed for `name`, carrying the key
/// authorization's digest in the critical acmeIdentifier extension.
fn alpn_certificate(name: &str, digest: &[u8]) -> Result<Arc<CertifiedKey>, String> {
    let key = rcgen14::KeyPair::generate().map_err(|e| e.to_string())?;
    let mut params =
        rcgen14::CertificateParams::new(vec![name.to_string()]).map_err(|e| e.to_string())?;
    params.custom_extensions = vec![rcgen14::CustomExtension::new_acme_identifier(digest)];
    let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
    let der = PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let signing =
        rustls::crypto::ring::sign::any_supported_type(&der).map_err(|e| e.to_string())?;
    Ok(Arc::new(CertifiedKey::new(
        vec![cert.der().clone()],
        signing,
    )))
}

pub async fn obtain(
    s: &AcmeSettings,
    challenges: &Challenges,
    tls: &ListenerTls,
) -> Result<Stored, String> {
    let account = account(s).await?;
    let ids: Vec<Identifier> = s
        .domains
        .iter()
        .map(|d| Identifier::Dns(d.clone()))
        .collect();
    let mut order = account
        .new_order(&NewOrder::new(&ids))
        .await
        .map_err(err("new order"))?;
    let (mut tokens, mut names) = (Vec::new(), Vec::new());
    let mut authorizations = order.authorizations();
    while let Some(a) = authorizations.next().await {
        let mut authz = a.map_err(err("authorization"))?;
        match authz.status {
            AuthorizationStatus::Pending => {}
            AuthorizationStatus::Valid => continue,
            other => return Err(format!("authorization is {other:?}")),
        }
        let kind = match s.challenge {
            "tls-alpn-01" => ChallengeType::TlsAlpn01,
            _ => ChallengeType::Http01,
        };
        let mut ch = authz
            .challenge(kind.clone())
            .ok_or_else(|| format!("the ACME server offers no {} challenge", s.challenge))?;
        if kind == ChallengeType::TlsAlpn01 {
            let name = ch.identifier().to_string();
            let cert = alpn_certificate(&name, ch.key_authorization().digest().as_ref())?;
            tls.resolver.set_alpn_challenge(&name, Some(cert));
            names.push(name);
        } else {
            challenges.insert(&ch.token, ch.key_authorization().as_str());
            tokens.push(ch.token.clone());
        }
        ch.set_ready().await.map_err(err("challenge"))?;
    }
    let retry = RetryPolicy::new()
        .initial_delay(Duration::from_millis(250))
        .timeout(Duration::from_secs(60));
    let status = order.poll_ready(&retry).await.map_err(err("order"));
    for t in &tokens {
        challenges.remove(t);
    }
    for n in &names {
        tls.resolver.set_alpn_challenge(n, None);
    }
    match status? {
        OrderStatus::Ready => {}
        other => {
            return Err(format!(
                "the order is {other:?}, not ready (a challenge failed)"
            ))
        }
    }
    let key_pem = order.finalize().await.map_err(err("finalize"))?;
    let chain_pem = order
        .poll_certificate(&retry)
        .await
        .map_err(err("certificate"))?;
    store::save(s, &chain_pem, &key_pem)
}
