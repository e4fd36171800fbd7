//! Per HTTP/2 connection: how many of its streams the client cancelled before their answer, so
//! that a client resetting stream after stream (Rapid Reset, CVE-2023-44487) is disconnected
//! once it has cancelled `THRESHOLD` of them and more than half of all it opened, as HAProxy's
//! glitch threshold does. The h2 crate already refuses streams reset before they are accepted
//! (20 per connection); this counts the ones reset after, each of which may have reached a
//! server. The proxy reports a cancelled request (`stream_cancelled`) from the stream's task,
//! which runs in the scope of its connection's counter (a task-local).

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use tokio::sync::Notify;

/// Cancelled streams a connection may have before the share of them is judged.
const THRESHOLD: usize = 32;

tokio::task_local! {
    static CONNECTION: Arc<Glitches>;
}

/// One HTTP/2 connection's streams and the client's cancellations of them.
#[derive(Default)]
pub struct Glitches {
    streams: AtomicUsize,
    cancelled: AtomicUsize,
    over: Notify,
}

impl Glitches {
    /// Counts a stream and runs its task in this connection's scope.
    pub fn serve<F: Future>(self: &Arc<Self>, task: F) -> impl Future<Output = F::Output> {
        self.streams.fetch_add(1, Relaxed);
        CONNECTION.scope(self.clone(), task)
    }

    /// Resolves once the client has cancelled too many of its streams.
    pub async fn exceeded(&self) {
        self.over.notified().await;
    }

    fn cancelled(&self) {
        let cancelled = self.cancelled.fetch_add(1, Relaxed) + 1;
        if cancelled >= THRESHOLD && cancelled * 2 > self.streams.load(Relaxed) {
            self.over.notify_one();
        }
    }
}

/// The request being served was cancelled by its client; counted against its HTTP/2
/// connection, if it has one.
pub fn stream_cancelled() {
    let _ = CONNECTION.try_with(|g| g.cancelled());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_connection_is_over_once_most_of_many_streams_are_cancelled() {
        let g = Arc::new(Glitches::default());
        for i in 0..THRESHOLD * 2 {
            g.serve(async move {
                if i % 4 == 0 {
                    stream_cancelled(); // a quarter: normal clients give up sometimes
                }
            })
            .await;
        }
        let over = tokio::time::timeout(std::time::Duration::from_millis(20), g.exceeded());
        assert!(over.await.is_err(), "a quarter cancelled is not a flood");
        for _ in 0..THRESHOLD * 2 {
            g.serve(async { stream_cancelled() }).await;
        }
        let over = tokio::time::timeout(std::time::Duration::from_millis(20), g.exceeded());
        assert!(over.await.is_ok(), "most streams cancelled is");
        stream_cancelled(); // outside any connection: nothing to count, no panic
    }
}
