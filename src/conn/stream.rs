//! `ClientStream`: the client's stream as pingora sees it, with the header deadline (a 408
//! written here when it passes) and the first bytes of a request, read while the connection
//! waited outside pingora, handed back to pingora's parser.

use super::{ConnState, HEADER_TIMEOUT};
use async_trait::async_trait;
use pingora::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, Ssl, UniqueID, UniqueIDType,
};
use pingora::protocols::{Stream, ALPN};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

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
    /// Bytes of the 408 answer written so far, once the deadline passed.
    answered: Option<usize>,
    /// The first bytes of a request, read by `wait_for_request` before pingora reads.
    stash: Vec<u8>,
    stash_pos: usize,
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
            answered: None,
            stash: Vec::new(),
            stash_pos: 0,
        }
    }

    /// Waits for the first bytes of the next request and keeps them for pingora. An idle
    /// connection then holds only this stream, not pingora's per-request session and future
    /// (tens of KiB); the header deadline starts with these bytes.
    pub(super) fn poll_next_request(&mut self, cx: &mut Context<'_>) -> Poll<Next> {
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

    fn arm(&mut self) {
        let at = Instant::now() + self.header_timeout;
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

impl AsyncWrite for ClientStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[async_trait]
impl Shutdown for ClientStream {
    async fn shutdown(&mut self) {
        self.inner.shutdown().await
    }
}

impl UniqueID for ClientStream {
    fn id(&self) -> UniqueIDType {
        self.inner.id()
    }
}

impl Ssl for ClientStream {
    fn get_ssl(&self) -> Option<&pingora::protocols::tls::TlsRef> {
        self.inner.get_ssl()
    }
    fn get_ssl_digest(&self) -> Option<Arc<pingora::protocols::tls::SslDigest>> {
        self.inner.get_ssl_digest()
    }
    fn selected_alpn_proto(&self) -> Option<ALPN> {
        self.inner.selected_alpn_proto()
    }
}

impl GetTimingDigest for ClientStream {
    fn get_timing_digest(&self) -> Vec<Option<pingora::protocols::TimingDigest>> {
        self.inner.get_timing_digest()
    }
    fn get_read_pending_time(&self) -> Duration {
        self.inner.get_read_pending_time()
    }
    fn get_write_pending_time(&self) -> Duration {
        self.inner.get_write_pending_time()
    }
}

impl GetProxyDigest for ClientStream {
    fn get_proxy_digest(&self) -> Option<Arc<pingora::protocols::raw_connect::ProxyDigest>> {
        self.inner.get_proxy_digest()
    }
}

impl GetSocketDigest for ClientStream {
    fn get_socket_digest(&self) -> Option<Arc<pingora::protocols::SocketDigest>> {
        self.inner.get_socket_digest()
    }
}

#[async_trait]
impl Peek for ClientStream {
    async fn try_peek(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        self.inner.try_peek(buf).await
    }
}
