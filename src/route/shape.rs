//! `throttle` and `cut_after`: a route's body sent at a bandwidth limit, or broken off after some bytes.
//!
//! [`Shaped`] wraps any body (whole bytes, a file from a folder, a timed stream) and is polled by the connection's
//! task like the body it wraps: nothing runs between its chunks, and dropping it (the client went away) drops the
//! inner body and its timer at once. It keeps the inner body's size hint, so a whole body keeps its
//! `content-length` and a cut one reads as a download that broke off.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use hyper::body::{Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use crate::config::ShapeConfig;
use crate::route::respond::Body;

/// The largest chunk a throttled body sends at once.
const MAX_CHUNK: u64 = 16 * 1024;
/// How many chunks per second a throttled body aims at (fewer when [`MAX_CHUNK`] makes them larger): small steps, so
/// the rate holds over any window a client measures.
const CHUNKS_PER_SECOND: u64 = 20;

/// Wraps `body` as `shape` says.
pub fn shape_body(body: Body, shape: ShapeConfig) -> Body {
    Body::stream(BoxBody::new(Shaped {
        inner: body,
        pending: Bytes::new(),
        shape,
        sent: 0,
        start: None,
        sleep: None,
        cut_flushed: false,
        done: false,
    }))
}

/// A body sent at most `throttle` bytes per second, and ended with an error after `cut_after` bytes.
#[derive(Debug)]
struct Shaped {
    inner: Body,
    /// What is left of the inner body's last chunk.
    pending: Bytes,
    shape: ShapeConfig,
    /// Bytes sent so far.
    sent: u64,
    /// When the first byte was ready: the rate counts from there.
    start: Option<Instant>,
    sleep: Option<Pin<Box<Sleep>>>,
    /// Whether the wait before the cut has started.
    cut_flushed: bool,
    done: bool,
}

/// How long a cut body waits before it ends the response, so that the bytes before the cut leave first.
const CUT_FLUSH: Duration = Duration::from_millis(20);

impl hyper::body::Body for Shaped {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        while this.pending.is_empty() {
            if this.done {
                return Poll::Ready(None);
            }
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    this.done = true;
                    this.sleep = None;
                    return Poll::Ready(None);
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => this.pending = data,
                    // Trailers pass as they are.
                    Err(frame) => return Poll::Ready(Some(Ok(frame))),
                },
            }
        }
        let mut len = this.pending.len() as u64;
        if let Some(limit) = this.shape.cut_after {
            if this.sent >= limit {
                // An error ends the response: hyper closes the HTTP/1.1 connection, or resets the HTTP/2 stream. It
                // drops what it has not written yet, so first a short wait in which it flushes the bytes before the
                // cut (it flushes whenever the body is pending).
                if !this.cut_flushed {
                    let sleep = this.sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep(CUT_FLUSH)));
                    sleep.as_mut().reset(Instant::now() + CUT_FLUSH);
                    this.cut_flushed = true;
                }
                if let Some(sleep) = &mut this.sleep
                    && sleep.as_mut().poll(cx).is_pending()
                {
                    return Poll::Pending;
                }
                this.pending = Bytes::new();
                this.done = true;
                return Poll::Ready(Some(Err(std::io::Error::other(format!(
                    "cut_after: the route breaks the body off after {limit} bytes"
                )))));
            }
            len = len.min(limit - this.sent);
        }
        if let Some(rate) = this.shape.throttle {
            len = len.min((rate / CHUNKS_PER_SECOND).clamp(1, MAX_CHUNK));
            let start = *this.start.get_or_insert_with(Instant::now);
            // The bytes sent so far may leave at `start + sent / rate`: the next chunk waits until then.
            let due = start + Duration::from_secs_f64(this.sent as f64 / rate as f64);
            if due > Instant::now() {
                match &mut this.sleep {
                    Some(sleep) => sleep.as_mut().reset(due),
                    None => this.sleep = Some(Box::pin(tokio::time::sleep_until(due))),
                }
                if let Some(sleep) = &mut this.sleep
                    && sleep.as_mut().poll(cx).is_pending()
                {
                    return Poll::Pending;
                }
            }
        }
        let chunk = this.pending.split_to(len as usize);
        this.sent += len;
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.done || (self.pending.is_empty() && self.inner.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
