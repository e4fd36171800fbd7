//! gatehouse patches 21 and 23: the codec buffers a connection lets go while it has nothing to
//! read or write are kept here, one of each kind per thread, for the next connection of the
//! thread that needs one. Freeing and allocating them at every pause instead made the
//! allocator re-initialize a page each time (gatehouse's `vendor/PATCHES.md`, patch 21).

use bytes::BytesMut;
use std::cell::Cell;

thread_local! {
    static READ: Cell<Option<BytesMut>> = const { Cell::new(None) };
    static WRITE: Cell<Option<BytesMut>> = const { Cell::new(None) };
}

/// Which buffer: each kind has its own slot and size.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Kind {
    Read,
    Write,
}

impl Kind {
    fn with<R>(self, f: impl FnOnce(&Cell<Option<BytesMut>>) -> R) -> R {
        match self {
            Kind::Read => READ.with(f),
            Kind::Write => WRITE.with(f),
        }
    }
}

/// An empty buffer with room for at least `capacity` bytes: the thread's spare if it has (or
/// can take back, once the frames read into it are gone) that much room, else a new one.
pub(crate) fn take(kind: Kind, capacity: usize) -> BytesMut {
    if let Some(mut buf) = kind.with(Cell::take) {
        if buf.capacity() >= capacity || buf.try_reclaim(capacity) {
            return buf;
        }
    }
    BytesMut::with_capacity(capacity)
}

/// Gives an empty buffer back: it becomes the thread's spare (the previous one, if any, is
/// freed).
pub(crate) fn give_back(kind: Kind, mut buf: BytesMut) {
    buf.clear();
    if buf.capacity() != 0 {
        kind.with(|slot| slot.set(Some(buf)));
    }
}
