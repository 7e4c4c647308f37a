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
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            grace: DEFAULT_GRACE,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            admin: true,
            max_body: DEFAULT_MAX_BODY,
            access_log: None,
            trace: false,
        }
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
        builder.http1().timer(TokioTimer::new()).header_read_timeout(options.header_read_timeout);
        builder.http2().timer(TokioTimer::new());
        let builder = Arc::new(builder);
        let graceful = GracefulShutdown::new();
        let mut connections = JoinSet::new();
        let observer = Observer::new(&listener, &options);
        let options = Arc::new(options);
        tokio::pin!(shutdown);

        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
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
                // A route's `fault` arms the trigger; the connection's I/O then breaks the connection as asked.
                let trigger = fault::Trigger::default();
                let io = TokioIo::new(fault::FaultIo::new(stream, trigger.clone()));
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
    let path = req.uri().path();
    // `[server] admin = false` in the route file turns the admin API off too, from the next reload on.
    // The path is checked first so that ordinary requests load the router only once.
    if admin::is_admin_path(path) && options.admin && live.router().server().admin {
        return admin::handle(live, req).await;
    }
    let (parts, body) = req.into_parts();
    let body = match read_body(body, options.max_body).await {
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
/// length is too big, and while reading when the client sends more than it declared (or declared nothing).
async fn read_body(body: Incoming, limit: usize) -> Result<Bytes, Response<Body>> {
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
    match Limited::new(body, limit).collect().await {
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
