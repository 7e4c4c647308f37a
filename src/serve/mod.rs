//! Serving: the listening socket, one task per connection, HTTP/1.1 and HTTP/2 on the same port, and shutdown.
//!
//! This is the journey of a request through Go's `net/http`, in Rust: the kernel's listening socket is polled by
//! tokio's reactor (epoll on Linux), each accepted connection gets its own task with its I/O stacked by [`io`], and
//! hyper reads each request head and calls the connection's [`service::Pipeline`], which answers it.
//!
//! Layer: joins everything below it (`admin`, `reload`, `observe`, `route`, `config`); only `mock` sits above.

mod error;
pub(crate) mod io;
mod service;
mod tls;

pub use error::ServeError;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::config::limits::{DEFAULT_MAX_HEADERS, MIN_MAX_HEADER_SIZE};
use crate::config::state::StateConfig;
use crate::config::tls::TlsConfig;
use crate::config::{Limits, ServerConfig};
use crate::observe::Observer;
use crate::observe::access_log::LogFormat;
use crate::reload::Live;

/// Tunables of the serving loop: the route file's limits, and what the command line adds.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ServeOptions {
    /// Limits and timeouts (`[server]` in the route file, or their defaults).
    pub limits: Limits,
    /// Whether `/__admin/` answers (when the route file's `[server] admin` does not turn it off).
    pub admin: bool,
    /// Write an access-log line per request to stderr, in this format (`--log-requests`).
    pub access_log: Option<LogFormat>,
    /// Trace each connection's and request's journey on stderr (`--trace`).
    pub trace: bool,
    /// The admin API's token (`Authorization: Bearer TOKEN`): `[server] admin_token`, or what the command line sets.
    /// None on loopback: no token is asked for. None off loopback: [`Server::serve`] makes one (see
    /// [`Server::require_admin_token`]).
    pub admin_token: Option<String>,
    /// Serve HTTPS (`[server] tls`, or `--tls` for a self-signed certificate); None serves cleartext HTTP.
    pub tls: Option<TlsConfig>,
    /// Keep the runtime state in this shared store (`[server] state`, or `HOTROUTE_STATE`); None keeps it in
    /// process.
    pub state: Option<StateConfig>,
}

impl ServeOptions {
    /// The options a route file's `[server]` table asks for: its limits, the admin API on, and the access log on if
    /// `log_requests`.
    pub fn from_config(server: &ServerConfig) -> Self {
        ServeOptions {
            limits: server.limits.clone(),
            admin: true,
            access_log: server.log_requests.then(LogFormat::default),
            trace: false,
            admin_token: server.admin_token.clone(),
            tls: server.tls.clone(),
            state: server.state.clone(),
        }
    }

    /// The options for these limits (admin on, access log and trace off).
    pub fn from_limits(limits: Limits) -> Self {
        ServeOptions { limits, admin: true, access_log: None, trace: false, admin_token: None, tls: None, state: None }
    }
}

/// A bound listening socket and the routes it will serve.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    live: Arc<Live>,
    options: ServeOptions,
    /// The TLS layer, once [`Server::prepare_tls`] built it.
    tls: Option<tls::Tls>,
    /// The self-signed certificate's PEM file, removed when serving ends.
    self_signed_pem: Option<PathBuf>,
}

impl Server {
    /// Binds `addr` (port 0 picks a free port). A taken port gives [`ServeError::AddrInUse`]. The server applies the
    /// route file's `[server]` settings ([`ServeOptions::from_config`]); [`Server::with_options`] replaces them.
    pub async fn bind(addr: SocketAddr, live: Arc<Live>) -> Result<Server, ServeError> {
        let listener = TcpListener::bind(addr).await.map_err(|source| bind_error(addr, source))?;
        let options = ServeOptions::from_config(live.router().server());
        Ok(Server { listener, live, options, tls: None, self_signed_pem: None })
    }

    /// Wraps a socket bound elsewhere (e.g. a std listener from a test harness).
    pub fn from_listener(listener: std::net::TcpListener, live: Arc<Live>) -> Result<Server, ServeError> {
        listener.set_nonblocking(true)?;
        let options = ServeOptions::from_config(live.router().server());
        Ok(Server { listener: TcpListener::from_std(listener)?, live, options, tls: None, self_signed_pem: None })
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

    /// Makes sure the admin API has a token when it must: when it is on and the address is not loopback, a server
    /// without one gets a random one. Returns the token made, if one was, for the caller to show (once) to whoever
    /// runs the server; [`Server::serve`] calls this and prints a token it makes on stderr.
    pub fn require_admin_token(&mut self) -> Result<Option<String>, ServeError> {
        if !self.options.admin || self.options.admin_token.is_some() || self.local_addr().ip().is_loopback() {
            return Ok(None);
        }
        let token = crate::admin::access::generate_token().map_err(|e| ServeError::Token { reason: e.to_string() })?;
        self.options.admin_token = Some(token.clone());
        Ok(Some(token))
    }

    /// `"https"` when the server speaks TLS, else `"http"`: the scheme of its URLs.
    pub fn scheme(&self) -> &'static str {
        if self.options.tls.is_some() { "https" } else { "http" }
    }

    /// Builds the TLS layer, when the options ask for TLS: reads the certificate and key files, or makes a
    /// self-signed certificate and writes its PEM to a file in the temporary folder. Returns that file's path, for
    /// the caller to show (clients trust the certificate with it). [`Server::serve`] calls this if the caller did
    /// not. Reads and writes files: call it before serving, not on a busy runtime.
    pub fn prepare_tls(&mut self) -> Result<Option<PathBuf>, ServeError> {
        let Some(config) = &self.options.tls else { return Ok(None) };
        if self.tls.is_some() {
            return Ok(None);
        }
        let pem = std::env::temp_dir().join(format!(
            "hotroute-{}-{}-self-signed.pem",
            std::process::id(),
            self.local_addr().port()
        ));
        let (tls, written) = tls::build(config, &pem)?;
        self.tls = Some(tls);
        self.self_signed_pem.clone_from(&written);
        Ok(written)
    }

    /// Puts the runtime state in the shared store the options name, if any (and if the routes have none yet). Does
    /// not wait for the store: a replica starts, and answers plain routes, while Redis is still coming up; a check
    /// in the background logs at once if it cannot be reached. [`Server::serve`] calls this.
    pub fn connect_state(&mut self) -> Result<(), ServeError> {
        let Some(config) = &self.options.state else { return Ok(()) };
        if self.live.state().is_some() {
            return Ok(());
        }
        let store =
            crate::route::state::RemoteState::new(config).map_err(|e| ServeError::State { reason: e.to_string() })?;
        tracing::info!("runtime state shared through {} (key prefix `{}:`)", store.url(), config.prefix);
        // Replicas in a Deployment share a port: the host name (the pod's name) tells them apart.
        let host = std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()).unwrap_or_else(|| "localhost".into());
        self.live.install_state(Arc::clone(&store), format!("{host}:{}", self.local_addr().port()));
        tokio::spawn(async move { store.ping().await });
        Ok(())
    }

    /// The admin API's token, if it has one.
    pub fn admin_token(&self) -> Option<&str> {
        self.options.admin_token.as_deref()
    }

    /// Serves until `shutdown` completes, then stops accepting, lets requests in flight finish for up to the grace
    /// period, and returns.
    pub async fn serve(mut self, shutdown: impl Future<Output = ()>) -> Result<(), ServeError> {
        if let Some(token) = self.require_admin_token()? {
            eprintln!("admin API token (send it as `Authorization: Bearer TOKEN`): {token}");
        }
        let bound = self.local_addr();
        if self.options.admin && self.live.router().server().admin && !bound.ip().is_loopback() {
            tracing::warn!(
                "the admin API (/__admin/) is on and {bound} is reachable from other machines: it answers only with \
                 the admin token; turn it off with [server] admin = false if nothing needs it"
            );
        }
        if let Some(pem) = self.prepare_tls()? {
            eprintln!("self-signed certificate for localhost, 127.0.0.1 and ::1 written to {}", pem.display());
        }
        self.connect_state()?;
        let Server { listener, live, options, tls, self_signed_pem } = self;
        let limits = &options.limits;
        let mut builder = auto::Builder::new(TokioExecutor::new());
        // hyper's header-read timeout does nothing without a timer: set one, or slow clients hold connections forever.
        let mut http1 = builder.http1();
        http1
            // The header-read timeout rides on each connection's own watchdog (see `io::HeadTimer`).
            .timer(io::HeadTimer)
            .header_read_timeout(limits.header_read_timeout)
            // The read buffer's size bounds the request head (hyper-util's builder has no max_header_size).
            .max_buf_size(limits.max_header_size.max(MIN_MAX_HEADER_SIZE));
        // hyper parses headers on the heap once max_headers is set: only set it when it is not hyper's own default.
        if limits.max_headers != DEFAULT_MAX_HEADERS {
            http1.max_headers(limits.max_headers);
        }
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(limits.max_header_size).unwrap_or(u32::MAX))
            .max_concurrent_streams(u32::try_from(limits.max_concurrent_streams).unwrap_or(u32::MAX))
            // RFC 8441: WebSockets over HTTP/2, by extended CONNECT (see `service`).
            .enable_connect_protocol();
        let cap = io::ConnectionCap::new(limits.max_connections);
        let (idle_timeout, write_timeout, grace) = (limits.idle_timeout, limits.write_timeout, limits.grace);
        let header_read_timeout = limits.header_read_timeout;
        let builder = Arc::new(builder);
        let mut connections = JoinSet::new();
        let observer = Observer::new(&listener, options.trace);
        let access = crate::admin::Access::new(options.admin_token.clone(), bound);
        let served = Arc::new(service::Served::new(live, options, access));
        tokio::pin!(shutdown);

        loop {
            let (stream, peer, permit, activity) = tokio::select! {
                accepted = io::accept(&listener, &cap) => match accepted {
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
            let mut stream = observer.accepted(stream, peer, served.live().metrics());
            // A route's `fault` arms the trigger; the connection's I/O then breaks the connection as asked.
            let trigger = io::Trigger::new(&activity);
            let permit = Arc::new(permit);
            let pipeline =
                service::Pipeline::new(served.clone(), stream.conn(), trigger, peer, activity.clone(), permit.clone());
            let builder = builder.clone();
            let tls = tls.clone();
            if let Some(tls) = &tls {
                // A reload that read other certificate files: new handshakes use them.
                tls.refresh(served.live().router().server().tls.as_ref());
            }
            connections.spawn(async move {
                let _permit = permit;
                let service = service_fn(move |req| pipeline.call(req));
                let served = match tls {
                    None => {
                        let io = TokioIo::new(io::wrap(stream, activity.clone(), idle_timeout, write_timeout));
                        io::Graceful::new(builder.serve_connection_with_upgrades(io, service), activity).await
                    }
                    Some(tls) => {
                        // The handshake is bounded like a request head: a client that connects and says nothing,
                        // or stalls mid-handshake, is closed after header_read_timeout.
                        if let tls::Sniffed::Refused = tls::sniff(&mut stream, peer, header_read_timeout).await {
                            return;
                        }
                        let io = io::wrap(stream, activity.clone(), idle_timeout, write_timeout);
                        let Some(io) = tls.accept(io, peer, header_read_timeout).await else { return };
                        let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
                        io::Graceful::new(conn, activity).await
                    }
                };
                if let Err(e) = served {
                    tracing::debug!(%peer, "connection ended with an error: {e}");
                }
            });
        }

        drop(listener);
        served.shut_down();
        tracing::info!("shutting down: waiting up to {grace:?} for {} open connection(s)", connections.len());
        cap.shut_down_all();
        let drained = async { while connections.join_next().await.is_some() {} };
        if tokio::time::timeout(grace, drained).await.is_err() {
            tracing::warn!("grace period over: closing the connections that are still open");
        }
        // A task busy in synchronous work (a long render) ends only when that work yields: do not wait for it.
        connections.abort_all();
        let _ = tokio::time::timeout(Duration::from_millis(100), async {
            while connections.join_next().await.is_some() {}
        })
        .await;
        connections.detach_all();
        if let Some(pem) = self_signed_pem {
            // Made for this run only: a later run makes a new one.
            let _ = std::fs::remove_file(pem);
        }
        Ok(())
    }
}

fn bind_error(addr: SocketAddr, source: std::io::Error) -> ServeError {
    if source.kind() == std::io::ErrorKind::AddrInUse {
        ServeError::AddrInUse { addr: addr.to_string() }
    } else {
        ServeError::Bind { addr: addr.to_string(), source }
    }
}
