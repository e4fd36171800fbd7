//! `ClientStream`: the client's stream as pingora sees it, with the header deadline (a 408
//! written here when it passes) and the first bytes of a request, read while the connection
//! waited outside pingora, handed back to pingora's parser.

use super::gather::{pass_through_stream_traits, Gathered};
use super::{ConnState, HEADER_TIMEOUT};
use pingora::protocols::Stream;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// As pingora's listener write buffer (`DEFAULT_L4_WRITE_BUFFER_SIZE`): one TCP segment.
const WRITE_BUFFER: usize = 1460;

const TIMEOUT_ANSWER: &[u8] = b"HTTP/1.1 408 Request Timeout\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 20\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n408 Request Timeout\n";

/// How waiting for a client's next request ended.
pub(super) enum Next {
    Request,
    Closed,
}

/// The client stream as pingora sees it: the real one, plus the header deadline.
pub struct ClientStream {
    inner: Stream,
    pub state: Arc<ConnState>,
    header_timeout: Duration,
    /// Allocated at the first request, then re-armed for each one.
    deadline: Option<Pin<Box<Sleep>>>,
    /// When the connection was opened: its first request's headers are due `header_timeout`
    /// after this, not after their first byte (nginx's client_header_timeout).
    opened: Option<Instant>,
    /// Bytes of the 408 answer written so far, once the deadline passed.
    answered: Option<usize>,
    /// The first bytes of a request, read by `wait_for_request` before pingora reads.
    stash: Vec<u8>,
    stash_pos: usize,
    /// Written, not yet sent: writes are gathered here (the listener's own write buffer is off,
    /// `launch.rs`), so that a response's header and first body bytes leave in one write, or
    /// under TLS in one `writev` of their records. Allocated for a response and released once it is sent: an idle
    /// connection holds no write buffer.
    out: Gathered,
}

impl std::fmt::Debug for ClientStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientStream")
            .field("inner", &self.inner)
            .finish()
    }
}

thread_local! {
    /// Where `wait_for_request` reads a request's first bytes before copying out what came.
    static SCRATCH: std::cell::RefCell<Box<[u8]>> =
        std::cell::RefCell::new(vec![0u8; 8192].into_boxed_slice());
}

impl ClientStream {
    pub(super) fn new(
        inner: Stream,
        state: Arc<ConnState>,
        header_timeout: Duration,
    ) -> ClientStream {
        ClientStream {
            inner,
            state,
            header_timeout,
            deadline: None,
            opened: Some(Instant::now()),
            answered: None,
            stash: Vec::new(),
            stash_pos: 0,
            out: Gathered::new(WRITE_BUFFER),
        }
    }

    /// Waits for the first bytes of the next request and keeps them for pingora. An idle
    /// connection then holds only this stream, not pingora's per-request session and future
    /// (tens of KiB); the header deadline starts with these bytes.
    pub(super) fn poll_next_request(&mut self, cx: &mut Context<'_>) -> Poll<Next> {
        if self.stash_pos < self.stash.len() {
            // A pipelined request, read with the previous one (`unread`).
            self.state.head_pending.store(true, Relaxed);
            self.arm();
            return Poll::Ready(Next::Request);
        }
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            let mut buf = ReadBuf::new(&mut scratch[..]);
            match Pin::new(&mut self.inner).poll_read(cx, &mut buf) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Ok(())) if !buf.filled().is_empty() => {
                    self.stash.clear();
                    self.stash.extend_from_slice(buf.filled());
                    self.stash_pos = 0;
                    self.state.head_pending.store(true, Relaxed);
                    self.arm();
                    Poll::Ready(Next::Request)
                }
                Poll::Ready(_) => Poll::Ready(Next::Closed),
            }
        })
    }

    /// Bytes read from the client past the end of a request (the start of the next, pipelined
    /// one): the next read returns them first.
    pub(super) fn unread(&mut self, bytes: &[u8]) {
        let mut stash = Vec::with_capacity(bytes.len() + self.stash.len() - self.stash_pos);
        stash.extend_from_slice(bytes);
        stash.extend_from_slice(&self.stash[self.stash_pos..]);
        self.stash = stash;
        self.stash_pos = 0;
    }

    fn arm(&mut self) {
        let from = self.opened.take().unwrap_or_else(Instant::now);
        let at = from + self.header_timeout;
        match &mut self.deadline {
            Some(sleep) => sleep.as_mut().reset(at),
            None => self.deadline = Some(Box::pin(tokio::time::sleep_until(at))),
        }
    }

    /// Writes the 408 (as far as the socket takes it), then fails the read.
    fn poll_timeout_answer(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut done = *self.answered.get_or_insert(0);
        while done < TIMEOUT_ANSWER.len() {
            match Pin::new(&mut self.inner).poll_write(cx, &TIMEOUT_ANSWER[done..]) {
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => break,
                Poll::Ready(Ok(n)) => done += n,
                Poll::Pending => {
                    self.answered = Some(done);
                    return Poll::Pending;
                }
            }
        }
        self.answered = Some(done);
        if Pin::new(&mut self.inner).poll_flush(cx).is_pending() {
            return Poll::Pending;
        }
        self.state.timed_out.store(true, Relaxed);
        Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, HEADER_TIMEOUT)))
    }
}

impl AsyncRead for ClientStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.answered.is_some() {
            return this.poll_timeout_answer(cx);
        }
        // The deadline is armed whenever headers are pending (`poll_next_request` does both).
        if this.state.head_pending.load(Relaxed) {
            if let Some(sleep) = &mut this.deadline {
                if sleep.as_mut().poll(cx).is_ready() {
                    return this.poll_timeout_answer(cx);
                }
            }
        }
        if this.stash_pos < this.stash.len() {
            let n = buf.remaining().min(this.stash.len() - this.stash_pos);
            buf.put_slice(&this.stash[this.stash_pos..this.stash_pos + n]);
            this.stash_pos += n;
            if this.stash_pos == this.stash.len() {
                this.stash = Vec::new(); // an idle connection keeps no buffer
                this.stash_pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

/// Gathered writes (`Gathered`).
impl AsyncWrite for ClientStream {
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
        this.out.poll_flush(&mut this.inner, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.out.poll_shutdown(&mut this.inner, cx)
    }
}

pass_through_stream_traits!(ClientStream);

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A `ClientStream` over a real loopback connection, and the peer's end.
    async fn pair() -> (ClientStream, tokio::net::TcpStream) {
        let (inner, peer) = crate::conn::gather::loopback().await;
        let state = Arc::new(ConnState::default());
        let stream = ClientStream::new(inner, state, Duration::from_secs(5));
        (stream, peer)
    }

    /// Whether the peer has bytes to read now (after a moment for loopback delivery).
    async fn peer_has_bytes(peer: &tokio::net::TcpStream) -> bool {
        tokio::time::sleep(Duration::from_millis(50)).await;
        peer.try_read(&mut [0u8; 1]).is_ok()
    }

    #[tokio::test]
    async fn writes_are_gathered_until_flushed_and_the_buffer_is_released() {
        let (mut stream, mut peer) = pair().await;
        stream.write_all(b"HTTP/1.1 200 OK\r\n").await.unwrap();
        stream
            .write_all(b"Content-Length: 5\r\n\r\n")
            .await
            .unwrap();
        stream.write_all(b"hello").await.unwrap();
        assert!(
            !peer_has_bytes(&peer).await,
            "nothing sent before the flush"
        );
        assert!(stream.out.capacity() > 0);
        stream.flush().await.unwrap();
        assert_eq!(stream.out.capacity(), 0, "no buffer kept once sent");
        let mut got = vec![0u8; 43];
        peer.read_exact(&mut got).await.unwrap();
        assert_eq!(got, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
    }

    #[tokio::test]
    async fn a_write_larger_than_the_buffer_goes_out_in_order() {
        let (mut stream, mut peer) = pair().await;
        let big = vec![b'x'; 5000];
        stream.write_all(b"head\r\n").await.unwrap();
        stream.write_all(&big).await.unwrap();
        stream.write_all(b"tail").await.unwrap();
        stream.flush().await.unwrap();
        let mut got = vec![0u8; 6 + 5000 + 4];
        peer.read_exact(&mut got).await.unwrap();
        assert_eq!(&got[..6], b"head\r\n");
        assert!(got[6..5006].iter().all(|b| *b == b'x'));
        assert_eq!(&got[5006..], b"tail");
    }

    #[tokio::test]
    async fn what_is_gathered_is_sent_when_the_stream_is_dropped() {
        let (mut stream, mut peer) = pair().await;
        stream.write_all(b"HTTP/1.1 200 OK\r\n").await.unwrap();
        drop(stream);
        let mut got = Vec::new();
        peer.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"HTTP/1.1 200 OK\r\n");
    }
}
