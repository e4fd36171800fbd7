//! `StreamSet`: the streams of one HTTP/2 connection, served inside the connection's own task,
//! as HAProxy's HTTP/2 mux serves them from its connection, rather than on a tokio task each.
//! One pass of the connection's task polls the streams that are ready (their responses join
//! the frames h2 then writes), then the accept loop (which reads the client's frames, starts
//! new streams and flushes), then the streams it has just started.
//!
//! Why: a task per stream cost, per request, its spawn (the future copied into the task's
//! cell), its scheduling and teardown, and the wake-up that handed each response from the
//! stream's task to the connection's, often on the other worker thread. What that saves is
//! measured in `bench/results/2026-12-07-vm-h2-streams.md`.
//!
//! A stream that panics ends alone, as its own task did: the panic is caught at the stream
//! (`catch_unwind`), logged, and the stream's guard dropped; its siblings go on.

use futures_util::stream::{FuturesUnordered, StreamExt};
use futures_util::task::AtomicWaker;
use futures_util::FutureExt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

type StreamFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// The streams in progress on one connection. Pushed to by the accept loop's callback and
/// polled by `serve`, both within the connection's task: the lock is never contended, and
/// never held across an await (only within one poll).
pub struct StreamSet<'a> {
    running: Mutex<FuturesUnordered<StreamFuture<'a>>>,
}

impl<'a> StreamSet<'a> {
    pub fn new() -> StreamSet<'a> {
        StreamSet {
            running: Mutex::new(FuturesUnordered::new()),
        }
    }

    /// Starts serving `stream`: it is first polled in the pass of the connection's task that
    /// accepted it.
    pub fn push(&self, stream: impl Future<Output = ()> + Send + 'a) {
        let caught = AssertUnwindSafe(stream).catch_unwind().map(|ended| {
            if ended.is_err() {
                tracing::error!("an HTTP/2 stream panicked: that stream is dropped");
            }
        });
        self.lock().push(Box::pin(caught));
    }

    /// Drives the connection's accept loop (which `push`es the streams it accepts) with the
    /// streams in progress, until the loop has ended and its last stream is done. The loop is
    /// polled only when it was woken (its own waker, `LoopWaker`): a stream woken by its
    /// server does not poll the connection's frames, timers and shutdown signal for nothing.
    ///
    /// Not an `async fn`: one would hold `accept` twice, as its argument and as its pinned
    /// local (rust-lang/rust#62958), for the whole life of every HTTP/2 connection.
    #[allow(clippy::manual_async_fn)] // deliberately not an `async fn`: see above
    pub fn serve<'s, F: Future<Output = ()> + 's>(
        &'s self,
        accept: F,
    ) -> impl Future<Output = ()> + use<'s, 'a, F> {
        async move {
            let mut accept = std::pin::pin!(accept);
            let mut accepting = true;
            let woken = Arc::new(LoopWaker::default());
            let waker = Waker::from(woken.clone());
            std::future::poll_fn(|cx| {
                // Every pass: a wake takes the waker it registered.
                woken.task.register(cx.waker());
                let mut idle = self.poll_streams(cx);
                if accepting && woken.flag.swap(false, Relaxed) {
                    let mut loop_cx = Context::from_waker(&waker);
                    accepting = accept.as_mut().poll(&mut loop_cx).is_pending();
                    // The streams the loop has just accepted, and those it woke.
                    idle = self.poll_streams(cx);
                }
                if idle && !accepting {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            })
            .await;
        }
    }

    /// Polls every stream ready now; true when none is left in progress.
    fn poll_streams(&self, cx: &mut Context<'_>) -> bool {
        let mut running = self.lock();
        loop {
            match running.poll_next_unpin(cx) {
                Poll::Ready(Some(())) => continue,
                Poll::Ready(None) => return true,
                // None ready, or the set has yielded after a pass (it wakes itself then).
                Poll::Pending => return false,
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, FuturesUnordered<StreamFuture<'a>>> {
        // A poisoned lock is a panic caught elsewhere mid-poll; the set itself is consistent.
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The accept loop's waker: marks the loop as due for a poll, then wakes the connection's task.
struct LoopWaker {
    flag: AtomicBool,
    task: AtomicWaker,
}

impl Default for LoopWaker {
    fn default() -> LoopWaker {
        LoopWaker {
            flag: AtomicBool::new(true), // the first pass polls the loop
            task: AtomicWaker::new(),
        }
    }
}

impl Wake for LoopWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.flag.store(true, Relaxed);
        self.task.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    #[tokio::test]
    async fn streams_pushed_by_the_loop_run_to_their_end_after_it() {
        let done = AtomicUsize::new(0);
        let set = StreamSet::new();
        let accept = async {
            for delay in [30u64, 10, 20] {
                let done = &done;
                set.push(async move {
                    tokio::time::sleep(Duration::from_millis(delay)).await;
                    done.fetch_add(1, Relaxed);
                });
                tokio::task::yield_now().await;
            }
            // The loop ends before its streams do.
        };
        tokio::time::timeout(Duration::from_secs(5), set.serve(accept))
            .await
            .expect("serve ends once the last stream is done");
        assert_eq!(done.load(Relaxed), 3, "every stream ran to its end");
    }

    #[tokio::test]
    async fn a_panicking_stream_ends_alone() {
        let done = AtomicUsize::new(0);
        let set = StreamSet::new();
        let accept = async {
            set.push(async { panic!("a stream's bug") });
            set.push(async {
                tokio::time::sleep(Duration::from_millis(10)).await;
                done.fetch_add(1, Relaxed);
            });
        };
        tokio::time::timeout(Duration::from_secs(5), set.serve(accept))
            .await
            .expect("serve ends");
        assert_eq!(
            done.load(Relaxed),
            1,
            "the sibling of the panicking stream finished"
        );
    }

    #[tokio::test]
    async fn serve_waits_for_the_loop_while_no_stream_is_running() {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let ended = AtomicUsize::new(0);
        let set = StreamSet::new();
        let accept = async {
            let _ = rx.await;
            ended.fetch_add(1, Relaxed);
        };
        let serving = set.serve(accept);
        let mut serving = std::pin::pin!(serving);
        let early = tokio::time::timeout(Duration::from_millis(50), serving.as_mut()).await;
        assert!(early.is_err(), "an empty set does not end the connection");
        tx.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), serving)
            .await
            .expect("ends with the loop");
        assert_eq!(ended.load(Relaxed), 1);
    }
}
