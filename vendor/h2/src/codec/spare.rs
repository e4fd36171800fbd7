//! gatehouse patches 21 and 23: the codec buffers a connection lets go while it has nothing to
//! read or write are kept here, one of each kind per thread, for the next connection of the
//! thread that needs one. Freeing and allocating them at every pause instead made the
//! allocator re-initialize a page each time. Only a buffer whose storage is its own (no frame
//! or value still shares it) is kept.

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
    fn slot(self) -> &'static std::thread::LocalKey<Cell<Option<BytesMut>>> {
        match self {
            Kind::Read => &READ,
            Kind::Write => &WRITE,
        }
    }
}

/// An empty buffer with room for `capacity` bytes: the thread's spare, else a new one.
pub(crate) fn take(kind: Kind, capacity: usize) -> BytesMut {
    match kind.slot().try_with(Cell::take) {
        Ok(Some(buf)) if buf.capacity() >= capacity => buf,
        _ => BytesMut::with_capacity(capacity),
    }
}

/// Lets go of `buf`, an empty buffer, if its storage is its own and holds `capacity` bytes:
/// it becomes the thread's spare (the previous one, if any, is freed) and `true` is returned.
/// Otherwise `buf` is left as it is (the frames sharing its storage keep it alive anyway).
pub(crate) fn give_back(kind: Kind, buf: &mut BytesMut, capacity: usize) -> bool {
    debug_assert!(buf.is_empty());
    if buf.capacity() == 0 || !buf.try_reclaim(capacity) {
        return false;
    }
    let spare = std::mem::take(buf);
    // During the thread's teardown the slot is gone: the buffer is simply freed.
    let _ = kind.slot().try_with(|slot| slot.set(Some(spare)));
    true
}
