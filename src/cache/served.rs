//! A stored object as pingora-cache serves it: its body read in slices, a range as a slice.

use bytes::Bytes;
use pingora::cache::key::CacheKey;
use pingora::cache::storage::{HandleHit, Storage};
use pingora::cache::trace::SpanHandle;
use pingora::Result;
use std::any::Any;

pub(super) struct Hit {
    /// The whole stored body; `body` is what is left to read.
    pub full: Bytes,
    pub body: Option<Bytes>,
}

/// A stored body is written to the client in slices of this size (pingora's body buffer).
pub const BODY_SLICE: usize = 64 * 1024;

#[async_trait::async_trait]
impl HandleHit for Hit {
    /// The body in slices of `BODY_SLICE`: the client's write timeout applies to each write.
    async fn read_body(&mut self) -> Result<Option<Bytes>> {
        let Some(body) = self.body.as_mut() else {
            return Ok(None);
        };
        if body.len() <= BODY_SLICE {
            return Ok(self.body.take());
        }
        Ok(Some(body.split_to(BODY_SLICE)))
    }

    /// The body is one `Bytes` in memory: a range is a slice of it (206 answers from the cache).
    fn can_seek(&self) -> bool {
        true
    }

    fn seek(&mut self, start: usize, end: Option<usize>) -> Result<()> {
        let len = self.full.len();
        if start >= len {
            return pingora::Error::e_explain(
                pingora::ErrorType::InternalError,
                format!("seek start out of range {start} >= {len}"),
            );
        }
        let end = end.map_or(len, |e| e.min(len));
        self.body = Some(self.full.slice(start..end.max(start)));
        Ok(())
    }

    async fn finish(
        self: Box<Self>,
        _storage: &'static (dyn Storage + Sync),
        _key: &CacheKey,
        _trace: &SpanHandle,
    ) -> Result<()> {
        Ok(())
    }

    fn as_any(&self) -> &(dyn Any + Send + Sync) {
        self
    }

    fn as_any_mut(&mut self) -> &mut (dyn Any + Send + Sync) {
        self
    }
}
