//! Where the server meets the access log, the journey trace and the metrics: the hooks it calls per connection
//! ([`Observer::accepted`], which wraps the socket in an [`ObservedStream`]) and per request ([`Probe`]).
//!
//! Metrics are always on and cost a few atomic operations per request. The access log and the trace are off by
//! default and then cost a branch: a [`Probe`] allocates and formats only when one of them is on, and an
//! [`ObservedStream`] passes reads and writes straight through when the trace is off.
//!
//! Layer: sees the route layer's answers; imports `route` and below, never the server that calls it.

pub(crate) mod access_log;
pub(crate) mod journal;
pub(crate) mod metrics;
pub(crate) mod trace;
pub(crate) mod websocket;

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime};

use http::{Method, Request, Response, Version};
use hyper::body::Body as _;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use access_log::{LogFormat, Record};
use metrics::{Metrics, OpenConnection, RouteSlot, Unrouted};
use trace::ConnTrace;

use crate::request::RequestView;
use crate::route::respond::Body;
use crate::route::{Answer, Router};

/// Per server: numbers the connections and knows whether to trace them.
#[derive(Debug)]
pub struct Observer {
    trace: bool,
    listener_fd: i32,
    next_conn: AtomicU64,
}

impl Observer {
    /// Prepares to observe the connections of `listener`; traces the listening socket and every connection when
    /// `trace` is on.
    pub fn new(listener: &TcpListener, trace: bool) -> Self {
        let listener_fd = raw_fd(listener);
        if trace {
            let addr = listener.local_addr().map_or_else(|_| "?".to_owned(), |a| a.to_string());
            trace::server_line(format_args!(
                "listening fd={listener_fd} addr={addr}: the kernel queues new connections on this socket; tokio's \
                 reactor (epoll) wakes the accept loop when it is readable"
            ));
        }
        Observer { trace, listener_fd, next_conn: AtomicU64::new(1) }
    }

    /// A connection was accepted: counts it as open until the returned stream is dropped, and starts its trace.
    pub fn accepted(&self, stream: TcpStream, peer: SocketAddr, metrics: &Metrics) -> ObservedStream {
        let open = metrics.connection_opened();
        let trace = self.trace.then(|| {
            let id = self.next_conn.fetch_add(1, Ordering::Relaxed);
            Arc::new(ConnTrace::accepted(id, raw_fd(&stream), peer, self.listener_fd))
        });
        ObservedStream { inner: stream, trace, started: false, _open: open }
    }
}

#[cfg(unix)]
fn raw_fd(s: &impl std::os::fd::AsRawFd) -> i32 {
    s.as_raw_fd()
}

#[cfg(not(unix))]
fn raw_fd<T>(_: &T) -> i32 {
    -1
}

/// A client connection's socket, traced when `--trace` is on.
///
/// In declaration order (`repr(C)`): the socket and the trace switch, which every read and write reads, first.
#[derive(Debug)]
#[repr(C)]
pub struct ObservedStream {
    inner: TcpStream,
    trace: Option<Arc<ConnTrace>>,
    started: bool,
    _open: OpenConnection,
}

impl ObservedStream {
    /// The TCP stream itself, for socket options (a `fault` route's reset sets a zero linger on it).
    pub fn tcp(&self) -> &TcpStream {
        &self.inner
    }

    /// The TCP stream to read and write directly when the trace is off: the connection's I/O then skips this layer
    /// (one branch per read or write instead of a call through it), so an untraced stream of small events pays for
    /// none of it. `None` when traced: go through [`ObservedStream`]'s own `AsyncRead`/`AsyncWrite`.
    #[inline]
    pub fn bare(&mut self) -> Option<&mut TcpStream> {
        if self.trace.is_none() { Some(&mut self.inner) } else { None }
    }

    /// The connection's handle for its requests' [`Probe`]s.
    pub fn conn(&self) -> Conn {
        Conn(self.trace.clone())
    }

    fn start(&mut self, trace: &ConnTrace) {
        if !self.started {
            self.started = true;
            trace.task_started();
        }
    }
}

impl Drop for ObservedStream {
    fn drop(&mut self) {
        if let Some(t) = &self.trace {
            t.closed();
        }
    }
}

impl AsyncRead for ObservedStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let Some(trace) = this.trace.clone() else { return Pin::new(&mut this.inner).poll_read(cx, buf) };
        this.start(&trace);
        let before = buf.filled().len();
        let asked = buf.remaining() > 0;
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        match &poll {
            Poll::Ready(Ok(())) if buf.filled().len() > before => trace.read(&buf.filled()[before..]),
            Poll::Ready(Ok(())) if asked => trace.read_eof(),
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(e)) => trace.io_error("read", e),
            Poll::Pending => trace.read_pending(),
        }
        poll
    }
}

impl AsyncWrite for ObservedStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let Some(trace) = this.trace.clone() else { return Pin::new(&mut this.inner).poll_write(cx, buf) };
        this.start(&trace);
        wrote(&trace, Pin::new(&mut this.inner).poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let Some(trace) = this.trace.clone() else { return Pin::new(&mut this.inner).poll_write_vectored(cx, bufs) };
        this.start(&trace);
        wrote(&trace, Pin::new(&mut this.inner).poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_shutdown(cx);
        if let (Some(trace), Poll::Ready(_)) = (&this.trace, &poll) {
            trace.shutdown();
        }
        poll
    }
}

fn wrote(trace: &ConnTrace, poll: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
    match &poll {
        Poll::Ready(Ok(n)) => trace.wrote(*n),
        Poll::Ready(Err(e)) => trace.io_error("write", e),
        Poll::Pending => {}
    }
    poll
}

/// A connection's observation handle, cloned into each request's service call (a copy of `None` when untraced).
#[derive(Debug, Clone, Default)]
pub struct Conn(Option<Arc<ConnTrace>>);

/// One request under observation, from its head being read to its response being handed to hyper.
///
/// The server makes one per request ([`Probe::start`]), tells it which route answered ([`Probe::answered`]) and
/// gives it the response ([`Probe::finish`]), which counts, logs and traces it: the one place the metrics, the
/// journal, the access log and the trace learn about a request.
#[derive(Debug)]
pub struct Probe<'a> {
    metrics: &'a Metrics,
    journal: &'a journal::Journal,
    head_at: Instant,
    unrouted: Unrouted,
    route: Option<Arc<RouteSlot>>,
    /// When the request is proxied: where to, and its journal entry.
    proxied: Option<Proxied>,
    /// Only when the access log or the trace is on: what they need beyond the metrics.
    detail: Option<Box<Detail>>,
    /// For a WebSocket upgrade: where its conversation logs its messages.
    websocket: Option<Arc<websocket::WsLog>>,
}

/// A proxied request as its probe knows it.
#[derive(Debug)]
struct Proxied {
    /// The upstream's URL.
    url: Arc<str>,
    /// The journal entry's id and the status recorded in it (when the journal is on).
    entry: Option<(u64, http::StatusCode)>,
}

#[derive(Debug)]
struct Detail {
    time: SystemTime,
    peer: SocketAddr,
    method: Method,
    target: String,
    version: Version,
    request_headers: http::HeaderMap,
    log: Option<LogFormat>,
    trace: Option<(Arc<ConnTrace>, u64)>,
    routed_at: Option<Instant>,
    template: bool,
}

impl<'a> Probe<'a> {
    /// Starts observing `req`, whose head hyper has just read; `admin` says whether the admin API answers it.
    pub fn start<B>(
        metrics: &'a Metrics,
        journal: &'a journal::Journal,
        access_log: Option<LogFormat>,
        conn: &Conn,
        peer: SocketAddr,
        req: &Request<B>,
        admin: bool,
    ) -> Self {
        let head_at = Instant::now();
        let path = req.uri().path();
        let unrouted = if admin { Unrouted::Admin } else { Unrouted::NoRoute };
        let detail = (access_log.is_some() || conn.0.is_some()).then(|| {
            let target = req.uri().path_and_query().map_or(path, |pq| pq.as_str()).to_owned();
            let trace = conn.0.as_ref().map(|t| {
                let n = t.head(req.method(), &target, req.version(), req.headers());
                (t.clone(), n)
            });
            // Only the trace needs the headers (to tell keep-alive from close).
            let request_headers = if trace.is_some() { req.headers().clone() } else { http::HeaderMap::new() };
            Box::new(Detail {
                time: SystemTime::now(),
                peer,
                method: req.method().clone(),
                target,
                version: req.version(),
                request_headers,
                log: access_log,
                trace,
                routed_at: None,
                template: false,
            })
        });
        Probe { metrics, journal, head_at, unrouted, route: None, proxied: None, detail, websocket: None }
    }

    /// The body is read and the request is about to be routed (for the trace's timing; a branch when untraced).
    pub fn routing(&mut self) {
        if let Some(d) = self.detail.as_mut().filter(|d| d.trace.is_some()) {
            d.routed_at = Some(Instant::now());
        }
    }

    /// `router` answered `req` with `answer`: remembers the route for the metrics and the log, and traces what
    /// really answered (the route, or why none did and what came nearest).
    pub fn answered(&mut self, router: &Router, req: &RequestView<'_>, answer: &Answer<'_>) {
        self.answered_checked(router, req, answer, None);
    }

    /// Like [`Probe::answered`], journaling what the OpenAPI checks found wrong with the request.
    pub fn answered_checked(
        &mut self,
        router: &Router,
        req: &RequestView<'_>,
        answer: &Answer<'_>,
        openapi: Option<std::sync::Arc<serde_json::Value>>,
    ) {
        let recorded = self.journal.record_checked(router, req, answer, openapi);
        self.websocket = recorded.websocket;
        if let Some(to) = &answer.proxy {
            let entry = recorded.id.map(|id| (id, answer.response.status()));
            self.proxied = Some(Proxied { url: to.upstream.url().clone(), entry });
            if answer.route.is_none() {
                self.unrouted = Unrouted::Proxy;
            }
        }
        if let Some(route) = answer.route {
            self.route = Some(self.metrics.route(route));
        }
        let Some(d) = self.detail.as_mut() else { return };
        d.template = answer.route.is_some_and(|r| r.is_scripted());
        let Some((t, n)) = &d.trace else { return };
        if let Some(log) = &self.websocket {
            let _ = log.trace.set((t.clone(), *n));
        }
        if !req.body.is_empty() {
            t.line(Some(*n), format_args!("request body read: {} bytes", req.body.len()));
        }
        t.line(Some(*n), format_args!("{}", trace::describe_answer(router, req, answer)));
    }

    /// For a WebSocket upgrade, the log its conversation reports to (the journal entry's, and the trace's).
    pub fn websocket(&self) -> Option<Arc<websocket::WsLog>> {
        self.websocket.clone()
    }

    /// The response is ready: counts it, logs it, traces it. By reference: a response moved in and out is copied
    /// twice (about 150 bytes each way) on every request.
    pub fn finish(mut self, response: &Response<Body>) {
        let elapsed = self.head_at.elapsed();
        // A route's fault sends no HTTP answer: it counts and logs as status 0, not as the status it would have had.
        let fault = response.extensions().get::<crate::config::Fault>().copied();
        let status = if fault.is_some() { 0 } else { response.status().as_u16() };
        self.metrics.record(self.route.as_deref().ok_or(self.unrouted), status, elapsed);
        if let Some(Proxied { entry, .. }) = &self.proxied {
            self.metrics.count_proxied();
            // Recorded before the upstream answered: corrected when the answer's status differs (a 200, the usual
            // answer, is what was recorded, and takes no second lock of the journal).
            if let Some((id, at)) = entry
                && *at != response.status()
            {
                self.journal.set_status(*id, response.status());
            }
        }
        let proxy = self.proxied.as_ref().map(|p| p.url.as_ref());
        let Some(d) = self.detail.take() else { return };
        let bytes = response.body().size_hint().exact().unwrap_or(0);
        let route = match (&self.route, self.unrouted) {
            (Some(slot), _) => Some(slot.location()),
            (None, Unrouted::Admin) => Some("admin"),
            (None, Unrouted::Proxy) => Some("proxy"),
            (None, Unrouted::NoRoute) => None,
        };
        if let Some(format) = d.log {
            let record = Record {
                time: d.time,
                peer: d.peer,
                method: d.method.as_str(),
                path: &d.target,
                status,
                bytes,
                duration: elapsed,
                route,
                proxy,
            };
            record.write(format);
        }
        if let Some((t, n)) = &d.trace {
            let ms = elapsed.as_secs_f64() * 1000.0;
            let work = d.routed_at.map(|r| r.elapsed().as_secs_f64() * 1000.0);
            let proxied = proxy.map(|url| format!("the answer of the upstream {url} (proxied)"));
            let what = match (route, self.unrouted, d.template) {
                _ if proxied.is_some() => proxied.as_deref().unwrap_or_default(),
                (Some(_), Unrouted::NoRoute, true) => "scripted response (template, sequence, delay, fault or folder)",
                (Some(_), Unrouted::NoRoute, false) => "prepared static response",
                (_, Unrouted::Admin, _) => "admin API answer",
                (_, Unrouted::Proxy, _) => "proxied answer",
                (None, _, _) => "hotroute's own answer",
            };
            let work = work.map_or_else(String::new, |w| format!(" (routing and response {w:.3}ms)"));
            t.line(
                Some(*n),
                format_args!(
                    "response ready: {}, {bytes} body bytes, {what}, {ms:.3}ms after the head{work}",
                    fault.map_or_else(|| response.status().to_string(), |f| format!("fault:{}", f.name()))
                ),
            );
            if d.version == Version::HTTP_2 {
                t.line(Some(*n), format_args!("handed to hyper's h2 stream; it goes out as HEADERS and DATA frames"));
            } else {
                let keep = trace::keep_alive(d.version, &d.request_headers, response.headers());
                t.response_ready(*n, response.status(), self.head_at, keep);
            }
        }
    }
}

impl Drop for Probe<'_> {
    fn drop(&mut self) {
        // Still holding the detail means finish() never ran: the request's future was dropped mid-way.
        if let Some((t, n)) = self.detail.as_ref().and_then(|d| d.trace.as_ref()) {
            t.line(Some(*n), format_args!("request abandoned before its response was ready (the connection ended)"));
        }
    }
}
