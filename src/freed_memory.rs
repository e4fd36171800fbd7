//! Memory freed by finished connections goes back to the OS while the process is quiet (issue
//! 37): the allocator's settings, a thread that returns what is due, and the collection each
//! worker thread makes of its own heap before it parks.
//!
//! mimalloc gives a freed page back only once its owner thread has collected it, and a thread
//! collects only on its allocation paths (or when asked, for itself: `mi_collect` sees the
//! calling thread's heap alone). A block freed on another thread than the one that allocated it
//! (a connection's task moved by work stealing, a buffer freed by the other side of a proxied
//! exchange) waits in its page until the owner allocates again: after a burst of closed
//! connections, more than half of what they held stayed resident for as long as the process
//! stayed idle (the figures are with vendored patch 33 in `vendor/PATCHES.md`).

use mimalloc::MiMalloc;
use std::cell::Cell;
use std::time::{Duration, Instant};

/// How often the allocator is asked to give back what is due.
const RETURN_FREED_EVERY: Duration = Duration::from_millis(500);

/// How long freed memory waits before it may be given back (mimalloc's `purge_delay`, 1 s by
/// default): with the half-second cycle above, memory a burst freed is back with the OS within
/// a second, so the RSS an operator reads is what the open connections hold.
const FREED_MEMORY_WAITS_MS: i32 = 250;

/// A worker thread collects its heap at most this often: a collection walks the heap's pages,
/// which a large cache makes many, and a thread closing connections one by one between short
/// idle spells would otherwise pay one per connection.
const COLLECT_AT_MOST_EVERY: Duration = Duration::from_millis(10);

thread_local! {
    /// Whether a connection closed on this thread since its heap was last collected.
    static OWED: Cell<bool> = const { Cell::new(false) };
    /// When this thread last collected its heap.
    static COLLECTED: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Called on the worker thread where a client connection ends: that thread's heap is collected
/// the next time it runs out of tasks.
pub fn connection_closed() {
    OWED.set(true);
}

/// Sets the allocator up and starts the thread that returns freed memory. Called once, before
/// the server builds its runtimes (their worker threads take the park hook when built).
pub fn return_to_the_os() {
    // An operator's own setting (mimalloc reads it at start) stays.
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        MiMalloc.set_purge_delay(FREED_MEMORY_WAITS_MS);
    }
    pingora_runtime::set_on_thread_park(collect_if_owed);
    let spawned = std::thread::Builder::new()
        .name("gatehouse-free".into())
        .spawn(|| loop {
            std::thread::sleep(RETURN_FREED_EVERY);
            // This thread's heap is empty; the call returns the pages every thread has handed
            // back and whose `purge_delay` has passed (vendored patches 24 and 31).
            MiMalloc.collect(false);
        });
    if let Err(e) = spawned {
        tracing::warn!("freed memory is returned only under load: {e}");
    }
}

/// A worker thread out of tasks collects its heap if a connection ended on it since the last
/// time (vendored pingora-runtime patch 33), and it has not collected in the last 10 ms: the
/// pages its closed connections emptied go back to the arena, where the thread above returns
/// them. Paid from idle time: a busy thread does not park, and a thread that parks with
/// nothing owed pays one thread-local read. What is owed within 10 ms of a collection waits
/// for the thread's next park after that.
fn collect_if_owed() {
    if !OWED.get() {
        return;
    }
    let now = Instant::now();
    if COLLECTED
        .get()
        .is_some_and(|t| now.duration_since(t) < COLLECT_AT_MOST_EVERY)
    {
        return;
    }
    OWED.set(false);
    COLLECTED.set(Some(now));
    MiMalloc.collect(false);
}
