//! One ACME order: the account (stored, or created and stored), the order for the configured
//! names, each authorization answered by http-01, then the key and CSR (made by instant-acme
//! with rcgen), the certificate, and both saved.

use super::store::{self, Stored};
use super::Challenges;
use crate::tls::settings::AcmeSettings;
use crate::tls::ListenerTls;
use instant_acme::{
    Account, AuthorizationStatus, ChallengeType, Identifier, NewAccount, NewOrder, OrderStatus,
    RetryPolicy,
};
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

pub async fn obtain(
    s: &AcmeSettings,
    challenges: &Challenges,
    _tls: &ListenerTls,
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
    let mut tokens = Vec::new();
    let mut authorizations = order.authorizations();
    while let Some(a) = authorizations.next().await {
        let mut authz = a.map_err(err("authorization"))?;
        match authz.status {
            AuthorizationStatus::Pending => {}
            AuthorizationStatus::Valid => continue,
            other => return Err(format!("authorization is {other:?}")),
        }
        let mut ch = authz
            .challenge(ChallengeType::Http01)
            .ok_or("the ACME server offers no http-01 challenge")?;
        challenges.insert(&ch.token, ch.key_authorization().as_str());
        tokens.push(ch.token.clone());
        ch.set_ready().await.map_err(err("challenge"))?;
    }
    let retry = RetryPolicy::new()
        .initial_delay(Duration::from_millis(250))
        .timeout(Duration::from_secs(60));
    let status = order.poll_ready(&retry).await.map_err(err("order"));
    for t in &tokens {
        challenges.remove(t);
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
