//! The I/O under each connection, in the order it is stacked (see [`wrap`]): the TCP stream, observed by
//! [`crate::observe`] (connection metrics, `--trace`); a [`FaultIo`] that carries out a route's `fault`; a
//! [`Guarded`] with the idle and write watchdogs. And the accept side: the connection cap.
//!
//! Faults: a route with `fault = "reset" | "close" | "garbage"` still goes through the router like any other (it is
//! counted, journaled and delayed); its response carries the [`Fault`] as an extension. The connection's service sees
//! it, arms the connection's [`Trigger`] and fails the request, so hyper drops the connection without writing an
//! answer. [`FaultIo`] then refuses all further reads and writes and, when hyper drops it, does what the fault asks
//! before the socket closes: a zero linger (the kernel then sends a TCP RST instead of a FIN), bytes that are not
//! HTTP, or nothing (a plain close).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use http::Response;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

use crate::config::Fault;
use crate::observe::ObservedStream;

/// Stacks a connection's I/O: faults over the observed socket, the watchdogs over both.
pub(crate) fn wrap(
    stream: ObservedStream,
    trigger: Trigger,
    idle_timeout: Duration,
    write_timeout: Duration,
) -> Guarded<FaultIo> {
    Guarded::new(FaultIo::new(stream, trigger), idle_timeout, write_timeout)
}

/// The bytes a `garbage` fault sends: not an HTTP status line, with a NUL and bytes that are not UTF-8.
pub const GARBAGE: &[u8] = b"\x00\xff\xfe garbage from hotroute: this is not HTTP \x13\x37\r\n\r\n";

/// The error a connection's service returns for a faulty route; hyper then drops the connection unanswered.
#[derive(Debug, thiserror::Error)]
#[error("fault injected by the route: {0}")]
pub struct FaultError(pub Fault);

/// One connection's fault switch, shared by its service (which arms it) and its I/O (which acts on it).
#[derive(Debug, Clone, Default)]
pub struct Trigger(Arc<AtomicU8>);

impl Trigger {
    fn arm(&self, fault: Fault) {
        self.0.store(fault.code(), Ordering::Release);
    }

    fn armed(&self) -> Option<Fault> {
        Fault::from_code(self.0.load(Ordering::Acquire))
    }

    /// Passes `response` on, or, when it carries a [`Fault`], arms the connection and fails the request.
    pub fn check<B>(&self, mut response: Response<B>) -> Result<Response<B>, FaultError> {
        match response.extensions_mut().remove::<Fault>() {
            None => Ok(response),
            Some(fault) => {
                self.arm(fault);
                Err(FaultError(fault))
            }
        }
    }
}

/// A connection's TCP stream, which carries out an armed fault when the connection is dropped.
#[derive(Debug)]
pub struct FaultIo {
    inner: ObservedStream,
    trigger: Trigger,
}

impl FaultIo {
    /// Wraps an accepted connection.
    pub fn new(inner: ObservedStream, trigger: Trigger) -> Self {
        FaultIo { inner, trigger }
    }

    fn refused(&self) -> Option<io::Error> {
        self.trigger.armed().map(|f| io::Error::other(FaultError(f)))
    }
}

impl Drop for FaultIo {
    fn drop(&mut self) {
        match self.trigger.armed() {
            None | Some(Fault::Close) => {}
            Some(Fault::Reset) => {
                if let Err(e) = self.inner.tcp().set_zero_linger() {
                    tracing::debug!("cannot set a zero linger for a reset fault: {e}");
                }
            }
            Some(Fault::Garbage) => {
                // A few dozen bytes fit in the socket's send buffer, so a non-blocking write is enough here, where
                // nothing can be awaited.
                if let Err(e) = self.inner.tcp().try_write(GARBAGE) {
                    tracing::debug!("cannot send garbage for a garbage fault: {e}");
                }
            }
        }
    }
}

impl AsyncRead for FaultIo {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if let Some(e) = self.refused() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for FaultIo {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if let Some(e) = self.refused() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if let Some(e) = self.refused() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(e) = self.refused() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(e) = self.refused() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// The connection cap: a connection is accepted only when one of `max_connections` slots is free. Over the cap, new
/// connections wait in the kernel's accept queue (they are neither refused nor answered until a slot frees), and the
/// connections already served are not slowed.
#[derive(Debug, Clone)]
pub struct ConnectionCap(Arc<Semaphore>);

impl ConnectionCap {
    /// A cap of `max` connections at once.
    pub fn new(max: usize) -> Self {
        ConnectionCap(Arc::new(Semaphore::new(max.clamp(1, Semaphore::MAX_PERMITS))))
    }
}

/// Waits for a free slot under `cap`, then for a connection. The slot is held by the returned permit: keep it for as
/// long as the connection is served. Cancel-safe (a slot taken by a cancelled call is given back).
pub async fn accept(
    listener: &TcpListener,
    cap: &ConnectionCap,
) -> io::Result<(TcpStream, std::net::SocketAddr, OwnedSemaphorePermit)> {
    let permit = cap.0.clone().acquire_owned().await.expect("the connection semaphore is never closed");
    let (stream, peer) = listener.accept().await?;
    Ok((stream, peer, permit))
}

/// A socket with two watchdogs: a read that waits longer than the idle timeout (nothing arrives: a client that
/// connects and says nothing, an idle HTTP/2 connection, a stalled body) and a write that waits longer than the write
/// timeout (a client that does not read its response) fail with [`io::ErrorKind::TimedOut`], and hyper closes the
/// connection. A write that goes through also restarts the idle timeout: a client that sends nothing while it reads
/// a long response is busy, not idle.
///
/// hyper has neither on its own: its header-read timeout starts only once it knows the connection is HTTP/1, and it
/// has no write timeout at all.
#[derive(Debug)]
pub struct Guarded<S> {
    io: S,
    read: Watchdog,
    write: Watchdog,
}

impl<S> Guarded<S> {
    /// Wraps `io`. Must be called inside a tokio runtime (the watchdogs are tokio timers).
    pub fn new(io: S, idle_timeout: Duration, write_timeout: Duration) -> Self {
        Guarded {
            io,
            read: Watchdog::new(idle_timeout, "nothing arrived"),
            write: Watchdog::new(write_timeout, "the client read nothing"),
        }
    }
}

impl<S> Guarded<S> {
    fn wrote(&mut self, polled: &Poll<io::Result<usize>>) {
        if matches!(polled, Poll::Ready(Ok(n)) if *n > 0) {
            self.read.restart();
        }
    }
}

/// A deadline that starts when an operation first waits, and is cleared when one completes.
#[derive(Debug)]
struct Watchdog {
    after: Duration,
    what: &'static str,
    sleep: Pin<Box<Sleep>>,
    armed: bool,
}

impl Watchdog {
    fn new(after: Duration, what: &'static str) -> Self {
        Watchdog { after, what, sleep: Box::pin(tokio::time::sleep(after)), armed: false }
    }

    /// Forgets the running deadline: the next wait starts a new one.
    fn restart(&mut self) {
        self.armed = false;
    }

    /// Passes a completed operation through (and clears the deadline); a waiting one fails once it has waited too long.
    fn check<T>(&mut self, cx: &mut Context<'_>, polled: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if polled.is_ready() {
            self.armed = false;
            return polled;
        }
        if !self.armed {
            self.sleep.as_mut().reset(Instant::now() + self.after);
            self.armed = true;
        }
        match self.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.armed = false;
                let message = format!("{} for {:?}: closing the connection", self.what, self.after);
                Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, message)))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        this.read.check(cx, polled)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write(cx, buf);
        this.wrote(&polled);
        this.write.check(cx, polled)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.wrote(&polled);
        this.write.check(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_flush(cx);
        this.write.check(cx, polled)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_shutdown(cx);
        this.write.check(cx, polled)
    }
}
