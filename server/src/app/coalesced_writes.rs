//! One socket write for the responses that finish together. hyper's HTTP/2 connection task
//! writes whatever frames it holds each time it runs, and it runs as soon as any one stream
//! hands it a response: tokio runs a task woken by the running one next, so under load the
//! connection wrote each response in a `writev` of its own while the other streams' answers
//! were already queued behind it. On loopback and in virtual machines that syscall (with the
//! receiver's TCP processing it triggers) was a fifth of a call's server CPU.
//!
//! [`CoalescedWrites`] wraps an accepted socket: the first write after each flush yields the
//! connection task once (it wakes itself and answers `Pending`), so the tasks already runnable,
//! the other streams among them, run first and their frames join the same write. A lone call
//! waits one pass of the scheduler, no timer and no byte count. Reads are untouched.
//!
//! Under TLS the socket sits beneath rustls, which takes the plaintext into its own buffer when
//! the socket defers and writes it out in the same pass when asked to flush: nothing would be
//! joined, so TLS connections are accepted with coalescing off.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll},
};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::server::Connected;

/// An accepted connection whose writes wait one scheduler pass after each flush.
#[derive(Debug)]
pub struct CoalescedWrites<T> {
    inner: T,
    /// Whether writes wait (off: every write goes straight through).
    coalesce: bool,
    /// The connection task has yielded once since the last flush; its writes go through.
    yielded: bool,
}

impl<T> CoalescedWrites<T> {
    /// Wraps `inner`; with `coalesce` off it only passes calls through.
    pub fn new(inner: T, coalesce: bool) -> Self {
        Self {
            inner,
            coalesce,
            yielded: false,
        }
    }

    /// `Ready` once the connection task has let the others run since the last flush.
    fn let_others_run(&mut self, cx: &Context<'_>) -> Poll<()> {
        if self.yielded || !self.coalesce {
            return Poll::Ready(());
        }
        self.yielded = true;
        // Woken by itself, a tokio task goes to the back of the run queue.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl<T: Connected> Connected for CoalescedWrites<T> {
    type ConnectInfo = T::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for CoalescedWrites<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for CoalescedWrites<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        std::task::ready!(self.let_others_run(cx));
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        std::task::ready!(self.let_others_run(cx));
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let flushed = Pin::new(&mut self.inner).poll_flush(cx);
        if flushed.is_ready() {
            self.yielded = false;
        }
        flushed
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };

    use futures::TryStreamExt as _;
    use tokio::{net::TcpStream, runtime::Runtime};
    use tonic::transport::{
        Channel, Server,
        server::{TcpConnectInfo, TcpIncoming},
    };
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

    use super::*;

    /// A socket that counts the writes reaching it.
    struct CountedWrites {
        inner: TcpStream,
        writes: Arc<AtomicUsize>,
    }

    impl CountedWrites {
        fn counted<T>(&self, written: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
            if matches!(written, Poll::Ready(Ok(_))) {
                self.writes.fetch_add(1, Ordering::Relaxed);
            }
            written
        }
    }

    impl Connected for CountedWrites {
        type ConnectInfo = TcpConnectInfo;

        fn connect_info(&self) -> TcpConnectInfo {
            self.inner.connect_info()
        }
    }

    impl AsyncRead for CountedWrites {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_read(cx, buf)
        }
    }

    impl AsyncWrite for CountedWrites {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let written = Pin::new(&mut self.inner).poll_write(cx, buf);
            self.counted(written)
        }

        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            bufs: &[io::IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            let written = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
            self.counted(written)
        }

        fn is_write_vectored(&self) -> bool {
            self.inner.is_write_vectored()
        }

        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_flush(cx)
        }

        fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_shutdown(cx)
        }
    }

    /// The socket writes a tonic server (health service, one worker thread, as under load)
    /// makes to answer `bursts` bursts of `calls` concurrent health checks on one connection.
    fn server_writes(coalesce: bool, bursts: usize, calls: usize) -> usize {
        let writes = Arc::new(AtomicUsize::new(0));
        let server = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = server
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let incoming = {
            let _entered = server.enter();
            let counted = writes.clone();
            TcpIncoming::from(listener)
                .with_nodelay(Some(true))
                .map_ok(move |inner| {
                    let writes = counted.clone();
                    CoalescedWrites::new(CountedWrites { inner, writes }, coalesce)
                })
        };
        let (_reporter, health) = tonic_health::server::health_reporter();
        server.spawn(
            Server::builder()
                .add_service(health)
                .serve_with_incoming(incoming),
        );
        let client = Runtime::new().unwrap();
        client.block_on(async {
            let channel = Channel::from_shared(format!("http://{addr}"))
                .unwrap()
                .connect()
                .await
                .unwrap();
            for _ in 0..bursts {
                let checks = (0..calls).map(|_| {
                    let mut health = HealthClient::new(channel.clone());
                    async move { health.check(HealthCheckRequest::default()).await }
                });
                for answer in futures::future::join_all(checks).await {
                    answer.unwrap();
                }
            }
        });
        server.shutdown_background();
        writes.load(Ordering::Relaxed)
    }

    #[test]
    fn responses_finished_together_leave_in_one_write() {
        let (bursts, calls) = (20, 32);
        let coalesced = server_writes(true, bursts, calls);
        let one_by_one = server_writes(false, bursts, calls);
        eprintln!(
            "{} calls: {coalesced} writes coalesced, {one_by_one} without",
            bursts * calls
        );
        assert!(coalesced * 4 <= bursts * calls, "{coalesced} writes");
        assert!(one_by_one * 2 >= bursts * calls, "{one_by_one} writes");
    }
}
