//! What the two client stream wrappers (`stream::ClientStream`, `cork::CorkedStream`) share:
//! `Gathered`, the bytes written and not yet sent, in a buffer held only while there are some;
//! and `pass_through_stream_traits!`, pingora's stream traits answered by the wrapped stream.

use pingora::protocols::Stream;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::AsyncWrite;

/// Bytes written, not yet sent, up to `limit`: a write that does not fit sends what is
/// gathered first; one as large as the limit goes straight through (as tokio's `BufWriter`).
pub(super) struct Gathered {
    buf: Vec<u8>,
    sent: usize,
    limit: usize,
}

impl Gathered {
    pub fn new(limit: usize) -> Gathered {
        Gathered {
            buf: Vec::new(),
            sent: 0,
            limit,
        }
    }

    /// Bytes gathered and not yet sent.
    pub fn pending(&self) -> bool {
        self.sent < self.buf.len()
    }

    /// Sends what is gathered, as far as `inner` takes it.
    pub fn poll_send(&mut self, inner: &mut Stream, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.buf.len() {
            match Pin::new(&mut *inner).poll_write(cx, &self.buf[self.sent..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => self.sent += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        self.buf.clear();
        self.sent = 0;
        Poll::Ready(Ok(()))
    }

    /// Sends what is gathered and gives the buffer back (an idle connection holds none), then
    /// flushes `inner`.
    pub fn poll_flush(&mut self, inner: &mut Stream, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.poll_send(inner, cx))?;
        self.buf = Vec::new();
        Pin::new(&mut *inner).poll_flush(cx)
    }

    /// Sends what is gathered, then shuts `inner` down.
    pub fn poll_shutdown(
        &mut self,
        inner: &mut Stream,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        std::task::ready!(self.poll_send(inner, cx))?;
        Pin::new(&mut *inner).poll_shutdown(cx)
    }

    /// Gathers the bytes of `bufs` (`total` of them) or, when they are as large as the limit,
    /// writes them to `inner` directly; sends what was gathered first if they do not fit.
    pub fn poll_write(
        &mut self,
        inner: &mut Stream,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
        total: usize,
    ) -> Poll<io::Result<usize>> {
        if self.buf.len() + total > self.limit {
            std::task::ready!(self.poll_send(inner, cx))?;
        }
        if total >= self.limit {
            return Pin::new(&mut *inner).poll_write_vectored(cx, bufs);
        }
        if self.buf.capacity() == 0 {
            self.buf.reserve(self.limit.min(4096).max(total));
        }
        bufs.iter().for_each(|b| self.buf.extend_from_slice(b));
        Poll::Ready(Ok(total))
    }

    /// The buffer's capacity (tests: whether one is held).
    #[cfg(test)]
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }
}

/// Tests: a pingora stream over a real loopback connection, and the peer's end.
#[cfg(test)]
pub(super) async fn loopback() -> (Stream, tokio::net::TcpStream) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let peer = tokio::net::TcpStream::connect(listener.local_addr().unwrap());
    let (peer, accepted) = tokio::join!(peer, listener.accept());
    let l4: pingora::protocols::l4::stream::Stream = accepted.unwrap().0.into();
    (Box::new(l4), peer.unwrap())
}

/// pingora's stream traits for a wrapper with fields `inner: Stream` and `out: Gathered`,
/// answered by `inner`; shutting down (or dropping) it sends what is gathered first, as
/// pingora's own buffered stream does: a response cut by a failing server still reaches the
/// client as far as it got.
macro_rules! pass_through_stream_traits {
    ($wrapper:ty) => {
        impl Drop for $wrapper {
            fn drop(&mut self) {
                if self.out.pending() {
                    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
                    let _ = self.out.poll_send(&mut self.inner, &mut cx);
                }
            }
        }

        #[async_trait::async_trait]
        impl pingora::protocols::Shutdown for $wrapper {
            async fn shutdown(&mut self) {
                let (out, inner) = (&mut self.out, &mut self.inner);
                let _ = std::future::poll_fn(|cx| out.poll_send(inner, cx)).await;
                pingora::protocols::Shutdown::shutdown(&mut *self.inner).await
            }
        }

        impl pingora::protocols::UniqueID for $wrapper {
            fn id(&self) -> pingora::protocols::UniqueIDType {
                pingora::protocols::UniqueID::id(&*self.inner)
            }
        }

        impl pingora::protocols::Ssl for $wrapper {
            fn get_ssl(&self) -> Option<&pingora::protocols::tls::TlsRef> {
                pingora::protocols::Ssl::get_ssl(&*self.inner)
            }
            fn get_ssl_digest(&self) -> Option<std::sync::Arc<pingora::protocols::tls::SslDigest>> {
                pingora::protocols::Ssl::get_ssl_digest(&*self.inner)
            }
            fn selected_alpn_proto(&self) -> Option<pingora::protocols::ALPN> {
                pingora::protocols::Ssl::selected_alpn_proto(&*self.inner)
            }
        }

        impl pingora::protocols::GetTimingDigest for $wrapper {
            fn get_timing_digest(&self) -> Vec<Option<pingora::protocols::TimingDigest>> {
                pingora::protocols::GetTimingDigest::get_timing_digest(&*self.inner)
            }
            fn get_read_pending_time(&self) -> std::time::Duration {
                pingora::protocols::GetTimingDigest::get_read_pending_time(&*self.inner)
            }
            fn get_write_pending_time(&self) -> std::time::Duration {
                pingora::protocols::GetTimingDigest::get_write_pending_time(&*self.inner)
            }
        }

        impl pingora::protocols::GetProxyDigest for $wrapper {
            fn get_proxy_digest(
                &self,
            ) -> Option<std::sync::Arc<pingora::protocols::raw_connect::ProxyDigest>> {
                pingora::protocols::GetProxyDigest::get_proxy_digest(&*self.inner)
            }
        }

        impl pingora::protocols::GetSocketDigest for $wrapper {
            fn get_socket_digest(
                &self,
            ) -> Option<std::sync::Arc<pingora::protocols::SocketDigest>> {
                pingora::protocols::GetSocketDigest::get_socket_digest(&*self.inner)
            }
        }

        #[async_trait::async_trait]
        impl pingora::protocols::Peek for $wrapper {
            async fn try_peek(&mut self, buf: &mut [u8]) -> std::io::Result<bool> {
                pingora::protocols::Peek::try_peek(&mut *self.inner, buf).await
            }
        }
    };
}
pub(super) use pass_through_stream_traits;
