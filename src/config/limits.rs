//! Limits and timeouts: what keeps a slow, broken or hostile client from holding the server, its memory or its
//! connections.
//!
//! Every limit has a default here and a `[server]` setting in the route file (see the README's "Limits" section).
//! The route file's values are checked when it loads ([`Limits`] in [`crate::config::ServerConfig`]) and reach the
//! serving loop through [`crate::ServeOptions::from_config`]. They take effect when the server starts; a reload that
//! changes them is used at the next start.
//!
//! What each limit guards, and who enforces it:
//! - request head: hyper (header-read timeout with a timer, header count, head size as its read buffer's size) and
//!   [`check_head`] (URI length, and header count on HTTP/2, where hyper has no count limit);
//! - request body: [`crate::server`]'s body reader (size while reading, a declared size before, and a deadline);
//! - connections: [`accept`] (the cap) and [`Guarded`] (idle and stalled-write timeouts on every socket).

use std::fmt;
use std::future::Future;
use std::io;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response, StatusCode};
use schemars::JsonSchema;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use toml::Spanned;

use crate::config::ServerSpec;
use crate::respond::{self, Body};

/// How many connections are served at once by default; more wait in the kernel's accept queue.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
/// How many request headers are accepted by default (hyper's own default); more get 431.
pub const DEFAULT_MAX_HEADERS: usize = 100;
/// The largest request head (request line and headers) by default, in bytes; a larger one gets 431.
pub const DEFAULT_MAX_HEADER_SIZE: usize = 64 * 1024;
/// The smallest head-size limit hyper accepts (its read buffer cannot be smaller).
pub const MIN_MAX_HEADER_SIZE: usize = 8 * 1024;
/// The longest request target (path and query) by default, in bytes; a longer one gets 414.
pub const DEFAULT_MAX_URI: usize = 8 * 1024;
/// How long a client may take to send a request body by default, from the end of its head; then 408.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a connection may stay silent by default (nothing arrives, nothing is written) before it is closed.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a response write may stay stalled by default (the client reads nothing) before the connection is closed.
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest template source (a templated `body`, or a templated `json` as JSON text) accepted at load, in bytes.
/// It bounds how deep the template's syntax tree can nest, and so the stack [`on_template_stack`] must provide.
pub const MAX_TEMPLATE_SOURCE: usize = 128 * 1024;
/// The stack templates are compiled and rendered on. MiniJinja recurses as deep as a template's expressions nest
/// (`- - - 1`, `a.b.c`, `elif` chains: up to one level per source byte when compiling) and as deep as the values it
/// builds nest (up to one level per instruction, which the fuel bounds). Measured in debug builds at about 1.4 KiB
/// per level, the worst case of either is below this size.
pub const TEMPLATE_STACK: usize = 256 << 20;
/// Template work runs in place when this much stack is left, else on a fresh [`TEMPLATE_STACK`].
const TEMPLATE_RED_ZONE: usize = 192 << 20;
/// The stack size of the binary's worker threads: enough that template work never needs a fresh stack.
pub const WORKER_STACK: usize = TEMPLATE_STACK + (8 << 20);

/// Runs template work (compiling or rendering) with [`TEMPLATE_STACK`] of stack, so that a deeply nested template
/// is an error instead of a stack overflow that would abort the whole server. On threads with that much stack left
/// (the binary's workers, see [`WORKER_STACK`]) it runs in place; elsewhere it gets a stack of its own for the call
/// (a map and unmap, some microseconds).
pub fn on_template_stack<R>(f: impl FnOnce() -> R) -> R {
    stacker::maybe_grow(TEMPLATE_RED_ZONE, TEMPLATE_STACK, f)
}

/// The limits of the `[server]` table, checked and with defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// `grace`: how long shutdown waits for requests in flight.
    pub grace: Duration,
    /// `header_read_timeout`: how long a client may take to send a request head.
    pub header_read_timeout: Duration,
    /// `body_timeout`: how long a client may take to send a request body.
    pub body_timeout: Duration,
    /// `idle_timeout`: how long a connection may stay silent.
    pub idle_timeout: Duration,
    /// `write_timeout`: how long a write may stay stalled.
    pub write_timeout: Duration,
    /// `max_body`: the largest request body, in bytes.
    pub max_body: usize,
    /// `max_headers`: the most request headers.
    pub max_headers: usize,
    /// `max_header_size`: the largest request head, in bytes.
    pub max_header_size: usize,
    /// `max_uri`: the longest request target, in bytes.
    pub max_uri: usize,
    /// `max_connections`: how many connections are served at once.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            grace: crate::server::DEFAULT_GRACE,
            header_read_timeout: crate::server::DEFAULT_HEADER_READ_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            max_body: crate::server::DEFAULT_MAX_BODY,
            max_headers: DEFAULT_MAX_HEADERS,
            max_header_size: DEFAULT_MAX_HEADER_SIZE,
            max_uri: DEFAULT_MAX_URI,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// A size as written in the route file: a number of bytes, or text like `"10MiB"`.
#[derive(Debug, Clone, JsonSchema)]
#[schemars(untagged)]
pub enum SizeSpec {
    /// A number of bytes.
    Bytes(u64),
    /// A size with a unit: `"512KiB"`, `"10MiB"`, `"1GiB"` (`KB`/`MB` are powers of 1000).
    Text(String),
}

impl<'de> Deserialize<'de> for SizeSpec {
    // Hand-written so that a wrong type gets a clear message instead of serde's "did not match any variant".
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = SizeSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a size like \"10MiB\" or a number of bytes")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(SizeSpec::Bytes(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                u64::try_from(v).map(SizeSpec::Bytes).map_err(|_| E::custom("a size cannot be negative"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(SizeSpec::Text(v.to_owned()))
            }
        }
        d.deserialize_any(V)
    }
}

const SIZE_HELP: &str = "write a size like \"10MiB\", \"512KiB\" or a number of bytes (KB and MB are powers of 1000)";
const DURATION_HELP: &str = "write a duration like \"10s\", \"500ms\" or \"2m\"";

/// Checks the limits of a `[server]` table; each problem goes to `error(span, message, help)` and leaves the default.
pub(crate) fn from_spec(spec: &ServerSpec, error: &mut dyn FnMut(Range<usize>, String, &str)) -> Limits {
    let d = Limits::default();
    let mut duration = |value: &Option<Spanned<String>>, key: &str, default: Duration| {
        let Some(v) = value else { return default };
        match humantime::parse_duration(v.get_ref().trim()) {
            Ok(t) if !t.is_zero() => t,
            Ok(_) => {
                error(v.span(), format!("`{key}` cannot be zero"), DURATION_HELP);
                default
            }
            Err(e) => {
                error(v.span(), format!("`{}` is not a duration for `{key}`: {e}", v.get_ref()), DURATION_HELP);
                default
            }
        }
    };
    let grace = duration(&spec.grace, "grace", d.grace);
    let header_read_timeout = duration(&spec.header_read_timeout, "header_read_timeout", d.header_read_timeout);
    let body_timeout = duration(&spec.body_timeout, "body_timeout", d.body_timeout);
    let idle_timeout = duration(&spec.idle_timeout, "idle_timeout", d.idle_timeout);
    let write_timeout = duration(&spec.write_timeout, "write_timeout", d.write_timeout);

    let mut size = |value: &Option<Spanned<SizeSpec>>, key: &str, default: usize, min: usize| {
        let Some(v) = value else { return default };
        let bytes = match v.get_ref() {
            SizeSpec::Bytes(n) => Ok(*n),
            SizeSpec::Text(t) => t.trim().parse::<bytesize::ByteSize>().map(|b| b.as_u64()),
        };
        match bytes.map(usize::try_from) {
            Ok(Ok(n)) if n >= min => n,
            Ok(Ok(n)) => {
                let message = format!("`{key}` is {n} bytes, below its minimum of {min}");
                error(v.span(), message, &format!("use at least {min} bytes"));
                default
            }
            Ok(Err(_)) => {
                error(v.span(), format!("`{key}` is too large for this machine"), SIZE_HELP);
                default
            }
            Err(e) => {
                let written = match v.get_ref() {
                    SizeSpec::Text(t) => t.clone(),
                    SizeSpec::Bytes(n) => n.to_string(),
                };
                error(v.span(), format!("`{written}` is not a size for `{key}`: {e}"), SIZE_HELP);
                default
            }
        }
    };
    let max_body = size(&spec.max_body, "max_body", d.max_body, 0);
    let max_header_size = size(&spec.max_header_size, "max_header_size", d.max_header_size, MIN_MAX_HEADER_SIZE);
    let max_uri = size(&spec.max_uri, "max_uri", d.max_uri, 1);

    let mut count = |value: &Option<Spanned<u64>>, key: &str, default: usize| {
        let Some(v) = value else { return default };
        match usize::try_from(*v.get_ref()) {
            Ok(n) if n >= 1 => n,
            _ => {
                error(v.span(), format!("`{key}` must be at least 1"), "use a positive whole number");
                default
            }
        }
    };
    let max_headers = count(&spec.max_headers, "max_headers", d.max_headers);
    let max_connections = count(&spec.max_connections, "max_connections", d.max_connections);

    Limits {
        grace,
        header_read_timeout,
        body_timeout,
        idle_timeout,
        write_timeout,
        max_body,
        max_headers,
        max_header_size,
        max_uri,
        max_connections,
    }
}

/// Refuses a request whose head is over a limit that hyper does not enforce itself: a request target over
/// `max_uri` (414), and more than `max_headers` headers on HTTP/2 (431; hyper counts them only on HTTP/1).
pub fn check_head<B>(req: &Request<B>, max_uri: usize, max_headers: usize) -> Option<Response<Body>> {
    let target = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if target > max_uri {
        let text = format!(
            "414 request target is {target} bytes, over the limit of {max_uri}\n\
             raise it with [server] max_uri in the route file\n"
        );
        return Some(respond::text(StatusCode::URI_TOO_LONG, text, req.method()));
    }
    if req.headers().len() > max_headers {
        let text = format!(
            "431 {} request headers, over the limit of {max_headers}\n\
             raise it with [server] max_headers in the route file\n",
            req.headers().len()
        );
        return Some(respond::text(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, text, req.method()));
    }
    None
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

    /// How many more connections would be accepted now.
    pub fn available(&self) -> usize {
        self.0.available_permits()
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

/// Raises this process's soft limit on open files to its hard limit, so that the connection cap, not the default
/// soft limit (often 1024), decides how many clients are served. Returns the soft limit now in force.
#[cfg(unix)]
pub fn raise_fd_limit() -> io::Result<u64> {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed, which lives on this stack frame.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return Err(io::Error::last_os_error());
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit { rlim_cur: lim.rlim_max, rlim_max: lim.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) != 0 {
                return Err(io::Error::last_os_error());
            }
            lim = raised;
        }
    }
    // rlim_t is u64 on Linux but not on every unix.
    #[allow(clippy::unnecessary_cast)]
    Ok(lim.rlim_cur as u64)
}

/// Does nothing where there is no such limit to raise.
#[cfg(not(unix))]
pub fn raise_fd_limit() -> io::Result<u64> {
    Ok(u64::MAX)
}
