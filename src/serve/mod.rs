//! Serving: the listening socket, one task per connection, HTTP/1.1 and HTTP/2 on the same port, and shutdown.
//!
//! This is the journey the seed note walks through for Go, in Rust: the kernel's listening socket is polled by
//! tokio's reactor (epoll on Linux), each accepted connection gets its own task, hyper reads the request head and
//! calls [`handle`], which finds the route in the live router and writes the prepared response back.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Body as _;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::access_log::LogFormat;
use crate::admin;
use crate::error::ServeError;
use crate::fault;
use crate::limits::{self, Limits};
use crate::live::Live;
use crate::observe::{Observer, Probe};
use crate::respond::{self, Body};
use crate::router::RequestView;

/// How long shutdown waits for requests in flight before it closes their connections anyway.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10);

/// How long a client may take to send a request's head before the connection is closed.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest request body read by default (1 MiB).
pub const DEFAULT_MAX_BODY: usize = 1024 * 1024;

/// Tunables of the serving loop.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Shutdown grace period: in-flight requests get this long to finish.
    pub grace: Duration,
    /// HTTP/1 header-read timeout. Only active because the builder is given a timer (see [`Server::serve`]).
    pub header_read_timeout: Duration,
    /// Whether `/__admin/` answers (when the route file's `[server] admin` does not turn it off).
    pub admin: bool,
    /// The largest request body read, in bytes; a larger one gets 413.
    pub max_body: usize,
    /// Write an access-log line per request to stderr, in this format (`--log-requests`).
    pub access_log: Option<LogFormat>,
    /// Trace each connection's and request's journey on stderr (`--trace`).
    pub trace: bool,
    /// How long a client may take to send a request body; then 408.
    pub body_timeout: Duration,
    /// A connection on which nothing arrives (and nothing is written) for this long is closed.
    pub idle_timeout: Duration,
    /// A connection whose writes stay stalled this long (the client reads nothing) is closed.
    pub write_timeout: Duration,
    /// The most request headers; more get 431.
    pub max_headers: usize,
    /// The largest request head in bytes (at least 8 KiB); a larger one gets 431.
    pub max_header_size: usize,
    /// The longest request target (path and query) in bytes; a longer one gets 414.
    pub max_uri: usize,
    /// How many connections are served at once; more wait to be accepted.
    pub max_connections: usize,
}

impl ServeOptions {
    /// The options a route file's `[server]` table asks for (admin on; access log on if `log_requests`).
    pub fn from_config(server: &crate::config::ServerConfig) -> Self {
        let mut options = Self::from_limits(&server.limits);
        options.access_log = server.log_requests.then(LogFormat::default);
        options
    }

    /// The options for these limits (admin on, access log and trace off).
    pub fn from_limits(l: &Limits) -> Self {
        ServeOptions {
            grace: l.grace,
            header_read_timeout: l.header_read_timeout,
            admin: true,
            max_body: l.max_body,
            access_log: None,
            trace: false,
            body_timeout: l.body_timeout,
            idle_timeout: l.idle_timeout,
            write_timeout: l.write_timeout,
            max_headers: l.max_headers,
            max_header_size: l.max_header_size,
            max_uri: l.max_uri,
            max_connections: l.max_connections,
        }
    }
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions::from_limits(&Limits::default())
    }
}

/// A bound listening socket and the routes it will serve.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    live: Arc<Live>,
    options: ServeOptions,
}

impl Server {
    /// Binds `addr` (port 0 picks a free port). A taken port gives [`ServeError::AddrInUse`].
    pub async fn bind(addr: SocketAddr, live: Arc<Live>) -> Result<Server, ServeError> {
        let listener = TcpListener::bind(addr).await.map_err(|source| bind_error(addr, source))?;
        Ok(Server { listener, live, options: ServeOptions::default() })
    }

    /// Wraps a socket bound elsewhere (e.g. a std listener from a test harness).
    pub fn from_listener(listener: std::net::TcpListener, live: Arc<Live>) -> Result<Server, ServeError> {
        listener.set_nonblocking(true)?;
        Ok(Server { listener: TcpListener::from_std(listener)?, live, options: ServeOptions::default() })
    }

    /// Replaces the serving options.
    pub fn with_options(mut self, options: ServeOptions) -> Self {
        self.options = options;
        self
    }

    /// The address actually bound (the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound TCP listener has an address")
    }

    /// Serves until `shutdown` completes, then stops accepting, lets requests in flight finish for up to the grace
    /// period, and returns.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> Result<(), ServeError> {
        let Server { listener, live, options } = self;
        let mut builder = auto::Builder::new(TokioExecutor::new());
        // hyper's header-read timeout does nothing without a timer: set one, or slow clients hold connections forever.
        let mut http1 = builder.http1();
        http1
            .timer(TokioTimer::new())
            .header_read_timeout(options.header_read_timeout)
            // The read buffer's size bounds the request head (hyper-util's builder has no max_header_size).
            .max_buf_size(options.max_header_size.max(limits::MIN_MAX_HEADER_SIZE));
        // hyper parses headers on the heap once max_headers is set: only set it when it is not hyper's own default.
        if options.max_headers != limits::DEFAULT_MAX_HEADERS {
            http1.max_headers(options.max_headers);
        }
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(options.max_header_size).unwrap_or(u32::MAX));
        let cap = limits::ConnectionCap::new(options.max_connections);
        let builder = Arc::new(builder);
        let graceful = GracefulShutdown::new();
        let mut connections = JoinSet::new();
        let observer = Observer::new(&listener, &options);
        let options = Arc::new(options);
        tokio::pin!(shutdown);

        loop {
            let (stream, peer, permit) = tokio::select! {
                accepted = limits::accept(&listener, &cap) => match accepted {
                    Ok(conn) => conn,
                    Err(e) => {
                        // Out of file descriptors and similar: wait a little instead of spinning.
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            while connections.try_join_next().is_some() {}
            // Small responses go out at once instead of waiting for Nagle's algorithm.
            let _ = stream.set_nodelay(true);
            tracing::trace!(%peer, "connection accepted");
            let stream = observer.accepted(stream, peer, &live);
            let (builder, live, options, conn) = (builder.clone(), live.clone(), options.clone(), stream.conn());
            let watcher = graceful.watcher();
            connections.spawn(async move {
                let _permit = permit;
                // A route's `fault` arms the trigger; the connection's I/O then breaks the connection as asked.
                let trigger = fault::Trigger::default();
                let stream = fault::FaultIo::new(stream, trigger.clone());
                let io = TokioIo::new(limits::Guarded::new(stream, options.idle_timeout, options.write_timeout));
                let service = service_fn(move |req| {
                    let (live, options, conn, trigger) = (live.clone(), options.clone(), conn.clone(), trigger.clone());
                    async move {
                        let mut probe = Probe::start(&live, &options, &conn, peer, &req);
                        let response = handle(&live, &options, peer, req, &mut probe).await;
                        trigger.check(probe.finish(response))
                    }
                });
                let conn = builder.serve_connection(io, service);
                if let Err(e) = watcher.watch(conn).await {
                    tracing::debug!(%peer, "connection ended with an error: {e}");
                }
            });
        }

        drop(listener);
        tracing::info!("shutting down: waiting up to {:?} for {} open connection(s)", options.grace, graceful.count());
        if tokio::time::timeout(options.grace, graceful.shutdown()).await.is_err() {
            tracing::warn!("grace period over: closing the connections that are still open");
        }
        connections.shutdown().await;
        Ok(())
    }
}

/// Answers one request from the live routes (or the admin API), telling `probe` how it was routed.
pub async fn handle(
    live: &Live,
    options: &ServeOptions,
    peer: SocketAddr,
    req: Request<Incoming>,
    probe: &mut Probe<'_>,
) -> Response<Body> {
    if let Some(refused) = limits::check_head(&req, options.max_uri, options.max_headers) {
        return refused;
    }
    let path = req.uri().path();
    // `[server] admin = false` in the route file turns the admin API off too, from the next reload on.
    // The path is checked first so that ordinary requests load the router only once.
    if admin::is_admin_path(path) && options.admin && live.router().server().admin {
        return admin::handle(live, req).await;
    }
    let (parts, body) = req.into_parts();
    let body = match read_body(body, options.max_body, options.body_timeout).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let router = live.router();
    let view = RequestView { method: &parts.method, uri: &parts.uri, headers: &parts.headers, body: &body, peer };
    probe.routing(&router, &view);
    let answer = router.respond(&view);
    live.journal().record(live, &router, &view, &answer);
    probe.answered(&router, &answer);
    match answer.pending {
        None => answer.response,
        Some(pending) => {
            // A delay or a file read: let go of the router before awaiting.
            let response = answer.response;
            drop(router);
            pending.finish(response).await
        }
    }
}

/// Reads the whole request body, refusing one over `limit` bytes with a 413: before reading when the declared
/// length is too big, and while reading when the client sends more than it declared (or declared nothing). A body
/// not complete within `timeout` gets a 408.
async fn read_body(body: Incoming, limit: usize, timeout: Duration) -> Result<Bytes, Response<Body>> {
    if body.is_end_stream() {
        return Ok(Bytes::new());
    }
    let too_large = || {
        let text = format!(
            "413 request body over the limit of {limit} bytes\nraise it with [server] max_body in the route file\n"
        );
        respond::text(StatusCode::PAYLOAD_TOO_LARGE, text, &http::Method::POST)
    };
    if body.size_hint().lower() > limit as u64 {
        return Err(too_large());
    }
    let Ok(collected) = tokio::time::timeout(timeout, Limited::new(body, limit).collect()).await else {
        let text = format!(
            "408 the request body did not arrive within {timeout:?}\nraise it with [server] body_timeout in the route file\n"
        );
        return Err(respond::text(StatusCode::REQUEST_TIMEOUT, text, &http::Method::POST));
    };
    match collected {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => Err(too_large()),
        Err(e) => Err(respond::text(
            StatusCode::BAD_REQUEST,
            format!("400 cannot read the request body: {e}\n"),
            &http::Method::POST,
        )),
    }
}

fn bind_error(addr: SocketAddr, source: std::io::Error) -> ServeError {
    if source.kind() == std::io::ErrorKind::AddrInUse {
        ServeError::AddrInUse { addr: addr.to_string() }
    } else {
        ServeError::Bind { addr: addr.to_string(), source }
    }
}
