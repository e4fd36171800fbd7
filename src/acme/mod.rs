//! Certificates that renew themselves: ACME (RFC 8555) through `instant-acme`, for TLS
//! listeners with `[listeners.tls.acme]`.
//!
//! - `store`: the account key and certificates on disk (mode 0600), reused across restarts;
//! - `order`: one order, from account to certificate, answering the challenges;
//! - `challenges`: the http-01 answers the proxy serves on `/.well-known/acme-challenge/`;
//! - here: the background service — at start, the stored certificate (or a new one when
//!   missing or due), then a renewal once two thirds of its lifetime have passed (or
//!   `renew_before` its expiry), retrying with a doubling wait on failure while the current
//!   certificate keeps being served; each certificate is swapped in without a restart.

mod challenges;
mod order;
mod store;

pub use challenges::Challenges;

use crate::tls::settings::AcmeSettings;
use crate::tls::ListenerTls;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What an operator sees of one listener's ACME certificate.
#[derive(Debug, Default)]
pub struct AcmeState {
    /// Unix seconds of the certificate being served (0: none yet).
    pub not_after: AtomicI64,
    /// Unix seconds of the next attempt planned.
    pub next_attempt: AtomicI64,
    pub renewals: AtomicU64,
    pub failures: AtomicU64,
    pub last_error: Mutex<Option<String>>,
}

/// One listener's ACME job.
pub struct AcmeJob {
    pub listener: String,
    pub settings: AcmeSettings,
    pub tls: Arc<ListenerTls>,
    pub state: Arc<AcmeState>,
}

/// When the certificate valid from `not_before` to `not_after` is due for renewal.
fn due(settings: &AcmeSettings, not_before: i64, not_after: i64) -> i64 {
    match settings.renew_before {
        Some(before) => not_after - before.as_secs() as i64,
        None => not_before + (not_after - not_before) * 2 / 3,
    }
}

impl AcmeJob {
    /// Runs until the process stops: load, obtain or renew, sleep, again.
    pub async fn run(self, challenges: Arc<Challenges>) {
        let mut wait = self.settings.retry;
        let mut current = match store::load(&self.settings) {
            Ok(Some(c)) => {
                tracing::info!(listener = %self.listener, "ACME certificate from storage");
                self.install(&c);
                Some(c)
            }
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(listener = %self.listener, "ACME storage: {e}");
                None
            }
        };
        // Never two orders closer than `retry`, whatever renew_before says.
        let mut earliest = 0i64;
        loop {
            let now = crate::clock::unix_now() as i64;
            let due_at = current
                .as_ref()
                .map_or(now, |c| due(&self.settings, c.not_before, c.cert.not_after))
                .max(earliest);
            if due_at > now {
                self.state.next_attempt.store(due_at, Relaxed);
                let sleep = Duration::from_secs((due_at - now) as u64);
                tokio::time::sleep(sleep.min(Duration::from_secs(3600))).await;
                continue;
            }
            match order::obtain(&self.settings, &challenges, &self.tls).await {
                Ok(fresh) => {
                    tracing::info!(listener = %self.listener, domains = ?self.settings.domains, "ACME certificate obtained");
                    self.install(&fresh);
                    self.state.renewals.fetch_add(1, Relaxed);
                    *self
                        .state
                        .last_error
                        .lock()
                        .unwrap_or_else(|e| e.into_inner()) = None;
                    current = Some(fresh);
                    wait = self.settings.retry;
                    earliest = now + wait.as_secs().max(1) as i64;
                }
                Err(e) => {
                    tracing::warn!(listener = %self.listener, "ACME order failed, retrying in {}: {e}", humantime::format_duration(wait));
                    // The error and the next attempt first: whoever sees the count sees why.
                    *self
                        .state
                        .last_error
                        .lock()
                        .unwrap_or_else(|e| e.into_inner()) = Some(e);
                    self.state
                        .next_attempt
                        .store(now + wait.as_secs() as i64, Relaxed);
                    self.state.failures.fetch_add(1, Relaxed);
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(3600));
                }
            }
        }
    }

    fn install(&self, c: &store::Stored) {
        self.tls.set_acme_cert(c.cert.clone());
        self.state.not_after.store(c.cert.not_after, Relaxed);
    }
}

/// Runs every ACME job of the process until it stops.
pub struct AcmeService {
    jobs: Mutex<Vec<AcmeJob>>,
    challenges: Arc<Challenges>,
}

impl AcmeService {
    pub fn new(jobs: Vec<AcmeJob>, challenges: Arc<Challenges>) -> AcmeService {
        AcmeService {
            jobs: Mutex::new(jobs),
            challenges,
        }
    }
}

#[async_trait::async_trait]
impl pingora::services::background::BackgroundService for AcmeService {
    async fn start(&self, mut shutdown: pingora::server::ShutdownWatch) {
        let jobs = std::mem::take(&mut *self.jobs.lock().unwrap_or_else(|e| e.into_inner()));
        let tasks: Vec<_> = jobs
            .into_iter()
            .map(|j| tokio::spawn(j.run(self.challenges.clone())))
            .collect();
        let _ = shutdown.changed().await;
        for t in tasks {
            t.abort();
        }
    }
}
