//! Timed streams: a `stream` or `sse` route's body, sent one item at a time, each after its delay.
//!
//! The items are rendered (when they are templates) and framed when the request is answered; the body then only
//! waits on one timer and hands hyper one prepared chunk per item, so hyper writes it at once (an HTTP/1.1 chunk, an
//! HTTP/2 DATA frame). Nothing runs between items: the body is polled by the connection's task, and dropping it (the
//! client went away, the connection closed) drops its timer and its chunks with it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use crate::config::{BodyConfig, SseFields, StreamConfig};
use crate::route::reply::{CompileError, compile_error};
use crate::route::respond::Body;
use crate::route::template::{Compiled, Needs, Templates, Vars, context};
use crate::util::histogram::Histogram;

#[derive(Debug)]
enum ItemData {
    /// Ready to send (an SSE event already framed).
    Fixed(Bytes),
    /// Rendered per request, then framed. The flag: the source ends in a line break, which MiniJinja drops from
    /// the output but a chunk of a stream needs (a line of a log, an NDJSON record).
    Template(Compiled, bool),
}

#[derive(Debug)]
struct Item {
    delay: Duration,
    data: ItemData,
    event: Option<SseFields>,
}

/// A route's stream, ready to start for each request.
#[derive(Debug)]
pub(crate) struct StreamReply {
    items: Vec<Item>,
    /// Items to send in all (more than `items.len()` when it repeats).
    count: u64,
    needs: Needs,
    templated: bool,
}

impl StreamReply {
    /// Compiles the templated items under names starting with `name` (e.g. `routes.toml:12`).
    pub fn build(
        config: &StreamConfig,
        templates: &mut Templates,
        name: &str,
        text: &str,
    ) -> Result<StreamReply, CompileError> {
        let mut needs = Needs::default();
        let mut items = Vec::with_capacity(config.items.len());
        let key = if config.sse { "sse" } else { "stream" };
        for (i, item) in config.items.iter().enumerate() {
            let data = match &item.data {
                BodyConfig::Fixed(bytes) => ItemData::Fixed(match &item.event {
                    Some(fields) => frame_event(fields, &String::from_utf8_lossy(bytes)),
                    None => bytes.clone(),
                }),
                BodyConfig::Template { source, span } => {
                    let compiled = templates
                        .compile(format!("{name} {key}[{i}]"), source.clone())
                        .map_err(|e| compile_error(&e, span.clone(), text))?;
                    needs = needs.union(compiled.needs);
                    ItemData::Template(compiled, source.ends_with('\n'))
                }
            };
            items.push(Item { delay: item.delay, data, event: item.event.clone() });
        }
        let templated = items.iter().any(|i| matches!(i.data, ItemData::Template(..)));
        Ok(StreamReply { items, count: config.count, needs, templated })
    }

    /// The body for one request: the templates rendered now (in one trip to a render thread), the items sent as
    /// time passes. With `last_event_id` (an SSE client resuming), the items up to the one with that id are skipped.
    /// An error says what failed to render.
    pub fn body(
        &self,
        templates: &Templates,
        vars: &Vars<'_, '_>,
        rng_key: (u64, u64),
        last_event_id: Option<&str>,
    ) -> Result<Body, String> {
        let mut rendered = if self.templated {
            let jobs: Vec<Compiled> = self
                .items
                .iter()
                .filter_map(|i| match &i.data {
                    ItemData::Template(t, _) => Some(t.clone()),
                    ItemData::Fixed(_) => None,
                })
                .collect();
            match templates.render_answer(rng_key, context(vars, self.needs), jobs) {
                Ok(rendered) => rendered.into_iter(),
                Err(refused) => return Err(refused.0),
            }
        } else {
            Vec::new().into_iter()
        };
        let mut chunks = Vec::with_capacity(self.items.len());
        for (i, item) in self.items.iter().enumerate() {
            let bytes = match &item.data {
                ItemData::Fixed(bytes) => bytes.clone(),
                ItemData::Template(_, newline) => match rendered.next() {
                    Some(Ok(mut text)) => match &item.event {
                        Some(fields) => frame_event(fields, &text),
                        None => {
                            if *newline && !text.ends_with('\n') {
                                text.push('\n');
                            }
                            Bytes::from(text)
                        }
                    },
                    Some(Err(e)) => return Err(format!("item {i}: {e}")),
                    None => return Err(format!("item {i}: not rendered")),
                },
            };
            chunks.push((item.delay, bytes));
        }
        // Resume after the event the client saw last; an id the stream does not have starts from the beginning.
        let start = last_event_id
            .and_then(|id| self.items.iter().position(|i| i.event.as_ref().and_then(|e| e.id.as_deref()) == Some(id)))
            .map_or(0, |pos| pos + 1);
        let left = self.count.saturating_sub(start as u64);
        Ok(Body::stream(http_body_util::combinators::BoxBody::new(Timed::new(chunks, start, left))))
    }
}

/// One server-sent event in the wire format: its fields, each line of its data as a `data:` line, a blank line.
pub(crate) fn frame_event(fields: &SseFields, data: &str) -> Bytes {
    let mut out = String::with_capacity(data.len() + 32);
    if let Some(comment) = &fields.comment {
        out.push_str(": ");
        out.push_str(comment);
        out.push('\n');
    }
    if let Some(event) = &fields.event {
        out.push_str("event: ");
        out.push_str(event);
        out.push('\n');
    }
    if let Some(id) = &fields.id {
        out.push_str("id: ");
        out.push_str(id);
        out.push('\n');
    }
    if let Some(retry) = fields.retry {
        out.push_str(&format!("retry: {retry}\n"));
    }
    if fields.has_data {
        // A line break in the data would end the field: each line gets its own `data:`, which the client joins
        // with `\n` again. CRLF, LF and CR all break lines in SSE.
        let data = data.replace("\r\n", "\n").replace('\r', "\n");
        for line in data.split('\n') {
            out.push_str("data: ");
            out.push_str(line);
            out.push('\n');
        }
    }
    out.push('\n');
    Bytes::from(out)
}

/// How late the chunks of timed streams (`stream` and `sse` items with a `delay`) left, against when each was due:
/// a histogram for the whole process, which `/__admin/metrics` shows as `hotroute_stream_lateness_seconds`, with
/// buckets from 0.5 ms to 1 s around the few milliseconds a timed stream should keep to. A chunk is due its delay
/// after the previous one was due, or after the previous one left if that was later (the stream's own rule: a late
/// stream goes on from where it is, with no burst). Measured when the chunk is handed to hyper, which writes it to
/// the socket in the same poll: the time it leaves the server. Process-wide because a stream outlives reloads and
/// knows no server; several `MockServer`s in one process add into it together.
pub static LATENESS: Histogram<12> =
    Histogram::new([0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, f64::INFINITY]);

pin_project_lite::pin_project! {
    /// The body of a stream: the chunks in turn, each when its delay has passed since the previous one was due.
    ///
    /// What a wake reads is in this one value (it is boxed once, as the response's body): the timer is held in place
    /// rather than in a box of its own, and the next chunk is kept beside it rather than read from `chunks` (a
    /// one-item stream, an SSE ticker, never reads `chunks` again). With 1,000 streams the streams' state does not
    /// stay in the CPU's caches between two events, and each allocation a wake goes through is a miss
    /// (BENCHMARKS.md, issue 16).
    #[derive(Debug)]
    struct Timed {
        // The fields a wake reads first, then the timer (tokio's entry, which the timer's driver reads and writes).
        // How many chunks are left to send.
        left: u64,
        // When the previous chunk was due: the next is due `delay` later, so that a long stream does not drift by
        // the time each poll takes.
        due: Instant,
        // The next chunk and its delay (a copy of `chunks[next]`).
        delay: Duration,
        bytes: Bytes,
        // The index of the next chunk.
        next: usize,
        armed: bool,
        // The timer, made at the first delay and reset for each later one.
        #[pin]
        sleep: Option<Sleep>,
        chunks: Arc<[(Duration, Bytes)]>,
    }
}

impl Timed {
    fn new(chunks: Vec<(Duration, Bytes)>, start: usize, left: u64) -> Timed {
        let next = if chunks.is_empty() { 0 } else { start % chunks.len() };
        let left = if chunks.is_empty() { 0 } else { left };
        let (delay, bytes) = chunks.get(next).cloned().unwrap_or_default();
        Timed { left, due: Instant::now(), delay, bytes, next, armed: false, sleep: None, chunks: chunks.into() }
    }
}

impl hyper::body::Body for Timed {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let mut this = self.project();
        loop {
            if *this.left == 0 {
                this.sleep.set(None);
                return Poll::Ready(None);
            }
            let delay = *this.delay;
            if !delay.is_zero() {
                if !*this.armed {
                    // A client that read slowly has made the stream late: send the next one now, and the later
                    // ones their delay after it, rather than a burst of every late item.
                    let now = Instant::now();
                    *this.due = (*this.due + delay).max(now);
                    match this.sleep.as_mut().as_pin_mut() {
                        Some(sleep) => sleep.reset(*this.due),
                        None => this.sleep.set(Some(tokio::time::sleep_until(*this.due))),
                    }
                    *this.armed = true;
                }
                if let Some(sleep) = this.sleep.as_mut().as_pin_mut()
                    && sleep.poll(cx).is_pending()
                {
                    return Poll::Pending;
                }
                *this.armed = false;
                LATENESS.observe(Instant::now().saturating_duration_since(*this.due));
            } else {
                *this.due = Instant::now();
            }
            let bytes = this.bytes.clone();
            *this.left -= 1;
            if this.chunks.len() > 1 {
                *this.next = (*this.next + 1) % this.chunks.len();
                (*this.delay, *this.bytes) = this.chunks[*this.next].clone();
            }
            // An empty chunk would read as the end of an HTTP/1.1 chunked body: nothing to send, go on.
            if !bytes.is_empty() {
                return Poll::Ready(Some(Ok(Frame::data(bytes))));
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}
