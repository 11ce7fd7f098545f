//! One connection's clock: whether it has a request in flight, a request's headers arriving, or
//! nothing to do, and when each of those must end.
//!
//! hyper's own `header_read_timeout` starts as soon as an HTTP/1.1 connection waits for its next
//! request, so it also closes an idle keep-alive connection at the header timeout. Behind a load
//! balancer that keeps idle connections longer (the ALB: 60 s) the balancer then sends a request
//! on a connection the service has just closed, and its client gets a 502. Here the header clock
//! starts with the first byte of a request, and a connection with nothing to do is closed only
//! after the idle timeout.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

/// `head_since_ms` when no request's headers are arriving.
const NO_HEAD: u64 = u64::MAX;

/// What one connection is doing.
#[derive(Debug)]
pub(crate) struct Activity {
    opened: Instant,
    in_flight: AtomicUsize,
    /// Milliseconds after `opened` when the last request finished.
    idle_since_ms: AtomicU64,
    /// Milliseconds after `opened` when the first byte of the next request arrived.
    head_since_ms: AtomicU64,
    /// Whether any byte has arrived yet.
    spoken: AtomicBool,
    /// An HTTP/2 connection: frames between requests (pings, settings) start no header clock.
    http2: AtomicBool,
    changed: Notify,
}

/// Why a connection's time ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expiry {
    /// No request in flight and none begun for the idle timeout.
    Idle,
    /// A request's headers did not all arrive within the header timeout.
    Headers,
}

impl Activity {
    pub(crate) fn new() -> Self {
        Self {
            opened: Instant::now(),
            in_flight: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(0),
            head_since_ms: AtomicU64::new(NO_HEAD),
            spoken: AtomicBool::new(false),
            http2: AtomicBool::new(false),
            changed: Notify::new(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX - 1)
    }

    /// A request's headers are complete and its handler runs.
    pub(crate) fn begin(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.head_since_ms.store(NO_HEAD, Ordering::Release);
        self.changed.notify_one();
    }

    /// A request's handler has answered (or was abandoned).
    pub(crate) fn end(&self) {
        self.idle_since_ms.store(self.now_ms(), Ordering::Release);
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.changed.notify_one();
    }

    fn arrived(&self, bytes: &[u8]) {
        if !self.spoken.swap(true, Ordering::AcqRel) && bytes.starts_with(b"PRI * HTTP/2.0") {
            self.http2.store(true, Ordering::Release);
        }
        if self.in_flight.load(Ordering::Acquire) == 0
            && !self.http2.load(Ordering::Acquire)
            && self.head_since_ms.compare_exchange(NO_HEAD, self.now_ms(), Ordering::AcqRel, Ordering::Acquire).is_ok()
        {
            self.changed.notify_one();
        }
    }

    /// Resolves when the connection has had nothing in flight for `idle`, or when a request's
    /// headers have been arriving for longer than `headers`.
    pub(crate) async fn expired(&self, idle: Duration, headers: Duration) -> Expiry {
        loop {
            let deadline = if self.in_flight.load(Ordering::Acquire) > 0 {
                None
            } else {
                match self.head_since_ms.load(Ordering::Acquire) {
                    NO_HEAD => {
                        let since = self.idle_since_ms.load(Ordering::Acquire);
                        Some((self.opened + Duration::from_millis(since) + idle, Expiry::Idle))
                    }
                    since => Some((self.opened + Duration::from_millis(since) + headers, Expiry::Headers)),
                }
            };
            match deadline {
                Some((at, why)) if Instant::now() >= at => return why,
                Some((at, _)) => tokio::select! {
                    () = tokio::time::sleep_until(at.into()) => {}
                    () = self.changed.notified() => {}
                },
                None => self.changed.notified().await,
            }
        }
    }
}

/// A connection's socket that tells its [`Activity`] when bytes arrive.
#[derive(Debug)]
pub(crate) struct Watched<T> {
    inner: T,
    activity: Arc<Activity>,
}

impl<T> Watched<T> {
    pub(crate) fn new(inner: T, activity: Arc<Activity>) -> Self {
        Self { inner, activity }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.arrived(&buf.filled()[before..]);
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
