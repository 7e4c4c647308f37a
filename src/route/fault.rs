//! Faults: routes that break the connection on purpose, so that clients' error handling can be tested.
//!
//! A route with `fault = "reset" | "close" | "garbage"` still goes through the router like any other (it is counted,
//! journaled and delayed); its response carries the [`Fault`] as an extension. The connection's service sees it,
//! arms the connection's [`Trigger`] and fails the request, so hyper drops the connection without writing an answer.
//! The connection's I/O is a [`FaultIo`], which refuses all further reads and writes once armed and, when hyper drops
//! it, does what the fault asks before the socket closes: a zero linger (the kernel then sends a TCP RST instead of a
//! FIN), bytes that are not HTTP, or nothing (a plain close).

use std::fmt;
use std::io;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll};

use crate::observe::ObservedStream;
use http::Response;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// What a faulty route does to the connection instead of answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// Abort the connection with a TCP reset (RST): the client sees "connection reset by peer".
    Reset,
    /// Close the connection without an answer: the client sees the connection end before a response.
    Close,
    /// Send bytes that are not HTTP, then close: the client sees a response it cannot parse.
    Garbage,
}

/// The bytes a `garbage` fault sends: not an HTTP status line, with a NUL and bytes that are not UTF-8.
pub const GARBAGE: &[u8] = b"\x00\xff\xfe garbage from hotroute: this is not HTTP \x13\x37\r\n\r\n";

impl Fault {
    /// The name used in the route file.
    pub fn name(self) -> &'static str {
        match self {
            Fault::Reset => "reset",
            Fault::Close => "close",
            Fault::Garbage => "garbage",
        }
    }

    fn code(self) -> u8 {
        match self {
            Fault::Reset => 1,
            Fault::Close => 2,
            Fault::Garbage => 3,
        }
    }

    fn from_code(code: u8) -> Option<Fault> {
        match code {
            1 => Some(Fault::Reset),
            2 => Some(Fault::Close),
            3 => Some(Fault::Garbage),
            _ => None,
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Fault {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "reset" => Ok(Fault::Reset),
            "close" => Ok(Fault::Close),
            "garbage" => Ok(Fault::Garbage),
            _ => Err(()),
        }
    }
}

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
