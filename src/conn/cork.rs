//! `CorkedStream`: an HTTP/2 connection's stream, whose writes leave together. The h2 crate
//! flushes each time its connection task runs, and that task runs right after each stream task
//! that queued a response (tokio's LIFO slot): one TLS record and one `sendto` per response.
//! Here, while other streams of the connection are in progress, the first flush with bytes
//! gathered is put off until the scheduler has run the other ready tasks and polled the I/O
//! driver (`yield_now`), so the responses of every stream ready by then are encrypted and sent
//! at once, as HAProxy's HTTP/2 mux sends what one pass of its event loop produced. A lone
//! stream's response is sent at once. (h2 flushes only once it has buffered every frame it
//! can, vendored patch 26, so the flush here is the end of a batch.)
//! Why: one TLS record and one system call per response cost more than the rest of an HTTP/2
//! response; what the cork saves is measured in `bench/results/2026-11-28-vm-h2.md`.

use super::gather::{pass_through_stream_traits, Gathered};
use pingora::protocols::Stream;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The most gathered before sending: one TLS record's plaintext.
const CORK_MAX: usize = 16 * 1024;

/// The client stream of an HTTP/2 connection, its writes gathered until a flush.
pub struct CorkedStream {
    inner: Stream,
    out: Gathered,
    /// The current flush has already let the other ready tasks run once.
    yielded: bool,
    /// Streams of this connection being served (`Streaming`).
    streams: Arc<AtomicUsize>,
}

/// One stream being served, counted while it lives.
pub struct Streaming(Arc<AtomicUsize>);

impl Streaming {
    pub fn new(streams: &Arc<AtomicUsize>) -> Streaming {
        streams.fetch_add(1, Relaxed);
        Streaming(streams.clone())
    }
}

impl Drop for Streaming {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

impl std::fmt::Debug for CorkedStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CorkedStream")
            .field("inner", &self.inner)
            .finish()
    }
}

impl CorkedStream {
    /// `streams`: how many of the connection's streams are being served.
    pub fn new(inner: Stream, streams: Arc<AtomicUsize>) -> CorkedStream {
        CorkedStream {
            inner,
            out: Gathered::new(CORK_MAX),
            yielded: false,
            streams,
        }
    }
}

impl AsyncRead for CorkedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for CorkedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let bufs = [io::IoSlice::new(buf)];
        this.out.poll_write(&mut this.inner, cx, &bufs, buf.len())
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let total = bufs.iter().map(|b| b.len()).sum();
        this.out.poll_write(&mut this.inner, cx, bufs, total)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.out.pending() && !this.yielded && this.streams.load(Relaxed) > 0 {
            // Once: the other tasks ready now, and those the I/O driver then finds ready
            // (streams whose server answered meanwhile), run first. `yield_now` hands the
            // waker to the scheduler, which wakes it only after that.
            this.yielded = true;
            let deferred = std::pin::pin!(tokio::task::yield_now());
            if deferred.poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
        std::task::ready!(this.out.poll_flush(&mut this.inner, cx))?;
        this.yielded = false;
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.out.poll_shutdown(&mut this.inner, cx)
    }
}

pass_through_stream_traits!(CorkedStream);

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::poll_fn;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A `CorkedStream` over a real loopback connection, the peer's end, and the stream count.
    async fn pair() -> (CorkedStream, tokio::net::TcpStream, Arc<AtomicUsize>) {
        let (inner, peer) = crate::conn::gather::loopback().await;
        let streams = Arc::new(AtomicUsize::new(0));
        (CorkedStream::new(inner, streams.clone()), peer, streams)
    }

    /// Whether the peer has bytes to read now (after a moment for loopback delivery).
    async fn peer_has_bytes(peer: &tokio::net::TcpStream) -> bool {
        tokio::time::sleep(Duration::from_millis(50)).await;
        peer.try_read(&mut [0u8; 1]).is_ok()
    }

    /// One poll of `flush`.
    async fn flush_once(stream: &mut CorkedStream) -> Poll<io::Result<()>> {
        poll_fn(|cx| Poll::Ready(Pin::new(&mut *stream).poll_flush(cx))).await
    }

    #[tokio::test]
    async fn with_other_streams_in_progress_the_first_flush_waits_one_turn() {
        let (mut stream, mut peer, streams) = pair().await;
        let other = Streaming::new(&streams);
        stream.write_all(b"first response ").await.unwrap();
        assert!(flush_once(&mut stream).await.is_pending(), "put off once");
        assert!(!peer_has_bytes(&peer).await, "nothing sent yet");
        stream.write_all(b"second response").await.unwrap();
        assert!(flush_once(&mut stream).await.is_ready(), "then sent");
        assert_eq!(stream.out.capacity(), 0, "no buffer kept once sent");
        let mut got = vec![0u8; 30];
        peer.read_exact(&mut got).await.unwrap();
        assert_eq!(got, b"first response second response");
        // The next flush is put off again, once.
        stream.write_all(b"third").await.unwrap();
        assert!(flush_once(&mut stream).await.is_pending());
        // The scheduler wakes the put-off flush by itself (`yield_now`'s deferred wake).
        tokio::time::timeout(Duration::from_secs(5), stream.flush())
            .await
            .expect("the deferred flush was woken")
            .unwrap();
        drop(other);
        assert_eq!(streams.load(Relaxed), 0);
    }

    #[tokio::test]
    async fn a_lone_stream_is_sent_at_once() {
        let (mut stream, mut peer, _streams) = pair().await;
        stream.write_all(b"only response").await.unwrap();
        assert!(!peer_has_bytes(&peer).await, "gathered until the flush");
        assert!(flush_once(&mut stream).await.is_ready());
        let mut got = vec![0u8; 13];
        peer.read_exact(&mut got).await.unwrap();
        assert_eq!(got, b"only response");
    }

    #[tokio::test]
    async fn large_writes_go_out_in_order_and_drop_sends_the_rest() {
        let (mut stream, mut peer, _streams) = pair().await;
        let big = vec![b'x'; CORK_MAX + 10];
        stream.write_all(b"head").await.unwrap();
        stream.write_all(&big).await.unwrap();
        stream.write_all(b"tail").await.unwrap();
        drop(stream);
        let mut got = Vec::new();
        peer.read_to_end(&mut got).await.unwrap();
        assert_eq!(got.len(), 4 + big.len() + 4);
        assert_eq!(&got[..4], b"head");
        assert!(got[4..4 + big.len()].iter().all(|b| *b == b'x'));
        assert_eq!(&got[4 + big.len()..], b"tail");
    }
}
