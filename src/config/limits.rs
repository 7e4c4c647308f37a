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
//!   the serving layer's head check (URI length, and header count on HTTP/2, where hyper has no count limit);
//! - request body: the serving layer's body reader (size while reading, a declared size before, and a deadline);
//! - request bodies held at once: the serving layer's body budget (`max_body_buffers`);
//! - connections: the serving layer's accept loop (the cap, which closes the longest-idle connection to admit a new
//!   one) and its I/O watchdogs (idle, stalled-write and stalled-response timeouts); HTTP/2 streams: hyper
//!   (`max_concurrent_streams`).
//!
//! The checking lives here, with the route file; the enforcing lives in `crate::serve`.

use std::fmt;
use std::ops::Range;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use toml::Spanned;

use crate::config::ServerSpec;

/// How long shutdown waits for requests in flight by default before it closes their connections anyway.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10);
/// How long a client may take to send a request's head by default before the connection is closed.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest request body read by default (1 MiB).
pub const DEFAULT_MAX_BODY: usize = 1024 * 1024;

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
/// How many streams (requests at once) one HTTP/2 connection may open by default. hyper's own default is 200; each
/// stream may hold a response, so fewer bound what one connection can make the server hold.
pub const DEFAULT_MAX_CONCURRENT_STREAMS: usize = 100;
/// How many bytes of request bodies all connections together may hold while they are read, by default (256 MiB);
/// Bytes the journal may hold for its recorded requests (heads and bodies together) unless `[server] journal_bytes`
/// says otherwise: the oldest are dropped first, so that a client filling the journal with large bodies cannot
/// grow the server past this (32 MiB).
pub const DEFAULT_JOURNAL_BYTES: usize = 32 * 1024 * 1024;

/// a body that would go over gets 503 with `retry-after`.
pub const DEFAULT_MAX_BODY_BUFFERS: usize = 256 * 1024 * 1024;
/// How long a connection may stay idle (no request in flight, whatever bytes it sends) by default before it is closed.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a response write may stay stalled by default (the client reads nothing) before the connection is closed.
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest WebSocket message (and frame) a client may send by default (1 MiB); a larger one closes with 1009.
pub const DEFAULT_MAX_WS_MESSAGE: usize = 1024 * 1024;
/// How many messages a client may send on one WebSocket connection by default; more close it with 1008.
pub const DEFAULT_MAX_WS_MESSAGES: usize = 100_000;

/// The largest template source (a templated `body`, or a templated `json` as JSON text) accepted at load, in bytes.
/// It bounds how deep the template's syntax tree can nest, and so the stack that templates run on must provide.
pub const MAX_TEMPLATE_SOURCE: usize = 128 * 1024;

/// The limits of the `[server]` table, checked and with defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
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
    /// `max_route_file`: the largest route file, included file or body file read, in bytes.
    pub max_route_file: u64,
    /// `max_concurrent_streams`: how many requests one HTTP/2 connection may have open at once.
    pub max_concurrent_streams: usize,
    /// `max_body_buffers`: how many bytes of request bodies all connections together may hold.
    pub max_body_buffers: usize,
    /// `journal_bytes`: how many bytes of recorded requests the journal may hold.
    pub journal_bytes: usize,
    /// `max_ws_message`: the largest WebSocket message a client may send, in bytes.
    pub max_ws_message: usize,
    /// `max_ws_messages`: how many messages a client may send on one WebSocket connection.
    pub max_ws_messages: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            grace: DEFAULT_GRACE,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            max_body: DEFAULT_MAX_BODY,
            max_headers: DEFAULT_MAX_HEADERS,
            max_header_size: DEFAULT_MAX_HEADER_SIZE,
            max_uri: DEFAULT_MAX_URI,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_route_file: crate::config::inputs::DEFAULT_MAX_ROUTE_FILE,
            max_concurrent_streams: DEFAULT_MAX_CONCURRENT_STREAMS,
            max_body_buffers: DEFAULT_MAX_BODY_BUFFERS,
            journal_bytes: DEFAULT_JOURNAL_BYTES,
            max_ws_message: DEFAULT_MAX_WS_MESSAGE,
            max_ws_messages: DEFAULT_MAX_WS_MESSAGES,
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
    let max_route_file = size(&spec.max_route_file, "max_route_file", d.max_route_file as usize, 1) as u64;
    let max_body_buffers = size(&spec.max_body_buffers, "max_body_buffers", d.max_body_buffers, 1);
    let journal_bytes = size(&spec.journal_bytes, "journal_bytes", d.journal_bytes, 64 * 1024);
    let max_ws_message = size(&spec.max_ws_message, "max_ws_message", d.max_ws_message, 1);

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
    let max_concurrent_streams =
        count(&spec.max_concurrent_streams, "max_concurrent_streams", d.max_concurrent_streams);
    let max_ws_messages = count(&spec.max_ws_messages, "max_ws_messages", d.max_ws_messages);

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
        max_route_file,
        max_concurrent_streams,
        max_body_buffers,
        journal_bytes,
        max_ws_message,
        max_ws_messages,
    }
}
