//! The body of every response hotroute sends: whole bytes (prepared answers, templates, the admin API) or a stream
//! (files, and whatever must not be held in memory at once).
//!
//! Whole bytes are the hot path, so they stay a plain [`Full`]: a variant check is all the enum adds. A stream is
//! boxed once per response; its chunks are produced as the client reads them, so memory stays at one chunk per
//! response whatever the size of what is sent.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::Full;
use http_body_util::combinators::BoxBody;
use hyper::body::{Frame, SizeHint};

/// A response body: whole bytes, or a stream of chunks.
#[derive(Debug)]
pub enum Body {
    /// The whole body, in memory.
    Full(Full<Bytes>),
    /// Chunks produced as the client reads them. An error ends the response (the connection is closed).
    Stream(BoxBody<Bytes, std::io::Error>),
}

impl Body {
    /// A body of these bytes.
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        Body::Full(Full::new(bytes.into()))
    }

    /// A streamed body.
    pub fn stream(body: BoxBody<Bytes, std::io::Error>) -> Self {
        Body::Stream(body)
    }
}

impl Default for Body {
    fn default() -> Self {
        Body::full(Bytes::new())
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.get_mut() {
            Body::Full(full) => Pin::new(full).poll_frame(cx).map_err(|never| match never {}),
            Body::Stream(stream) => Pin::new(stream).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Full(full) => full.is_end_stream(),
            Body::Stream(stream) => stream.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Full(full) => full.size_hint(),
            Body::Stream(stream) => stream.size_hint(),
        }
    }
}
