//! The route file: what serde reads from `routes.toml`, and the checks that turn it into a [`Config`].
//!
//! The structs named `*Spec` mirror the file one to one (they also generate the JSON Schema that editors use).
//! [`load_file`] and [`load_str`] parse them, check every value, read body files, and return a [`Config`] whose
//! values are already typed (methods, status codes, header values). Every problem becomes a
//! [`LoadError`] that points at the file, line and column.
//!
//! Layer: the route file and nothing of the runtime; imports only `util`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderName};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use schemars::JsonSchema;
use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use toml::Spanned;

use error::LineIndex;
use inputs::Inputs;
use limits::SizeSpec;

pub(crate) mod admin;
pub(crate) mod error;
mod include;
pub(crate) mod inputs;
pub(crate) mod json_template;
pub(crate) mod limits;
mod model;
pub(crate) mod openapi;
pub mod proxy;
pub mod resource;
pub mod state;
pub mod tls;

mod script;
mod shape;
mod stream;
mod websocket;
pub use error::{LoadError, LoadErrors};
pub use limits::Limits;
pub use model::{Chance, Condition, CorsConfig, Fault, GraphqlMatch, MatchConfig, REGEX_SIZE_LIMIT, compile_regex};
pub use openapi::ValidateMode;
pub use script::{
    CorsSpec, HeaderTemplate, MatchSpec, NotFoundSpec, ReplyConfig, SCENARIO_START, ScenarioConfig, ScriptConfig,
    SequenceItemSpec,
};
pub use shape::ShapeConfig;
pub use stream::{RepeatSpec, SseEventSpec, SseFields, StreamConfig, StreamItemSpec};
pub use websocket::{MAX_CLOSE_REASON, WebSocketConfig, WebSocketSpec, WsClose, WsMatch, WsPayload, WsSend};

/// The address served when neither the file nor the command line names one (port 3000, as the Go example this
/// project grew from).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:3000";

/// How many requests the journal keeps unless `[server] journal` says otherwise.
pub const DEFAULT_JOURNAL: usize = 1000;

/// The largest `[server] journal` size accepted, so that a typo cannot ask for gigabytes.
pub const MAX_JOURNAL: usize = 1_000_000;

/// The admin API's prefix; routes may not live under it.
pub const ADMIN_PREFIX: &str = "/__admin";

/// A route file as written.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "hotroute route file", description = "Routes served by hotroute; see its README.")]
pub struct RouteFileSpec {
    /// Other route files whose routes are added after this file's, in order: paths or glob patterns relative to this
    /// file's folder, e.g. `["routes.d/*.toml"]`. Included files hold only `[[route]]` tables.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub include: Vec<Spanned<String>>,
    /// Settings for the whole server.
    #[serde(default)]
    #[schemars(with = "Option<ServerSpec>")]
    pub server: Option<Spanned<ServerSpec>>,
    /// The routes, tried in file order.
    #[serde(default)]
    #[schemars(with = "Vec<RouteSpec>")]
    pub route: Vec<Spanned<RouteSpec>>,
    /// Fake REST collections (json-server style): `[[resource]] path = "/users"`, `data = "users.json"`.
    #[serde(default)]
    #[schemars(with = "Vec<resource::ResourceSpec>")]
    pub resource: Vec<Spanned<resource::ResourceSpec>>,
}

/// The `[server]` table.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerSpec {
    /// Address to listen on, `IP:PORT`. Default `127.0.0.1:3000`. `--listen` and `--port` override it.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub listen: Option<Spanned<String>>,
    /// Headers added to every response (a route's own headers win).
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub headers: BTreeMap<Spanned<String>, Spanned<String>>,
    /// Whether the admin API under `/__admin/` answers (default true). Takes effect on reload.
    #[serde(default)]
    pub admin: Option<bool>,
    /// How many requests the journal keeps for the admin API and tests (default 1000; 0 turns it off).
    #[serde(default)]
    #[schemars(with = "Option<u32>", range(max = 1_000_000))]
    pub journal: Option<Spanned<i64>>,
    /// Write one access-log line per request to stderr (like `--log-requests`). Default false. Read at start.
    #[serde(default)]
    pub log_requests: bool,
    /// The admin API's token, sent as `Authorization: Bearer TOKEN` (`--admin-token` and `HOTROUTE_ADMIN_TOKEN`
    /// win). Required off loopback: without one, a random token is made at start and printed on stderr. Read at start.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub admin_token: Option<Spanned<String>>,
    /// Request headers whose values the journal stores as `<redacted>` (default `authorization`,
    /// `proxy-authorization`, `cookie`, `set-cookie`, `x-api-key`; `[]` keeps every value).
    #[serde(default)]
    #[schemars(with = "Option<Vec<String>>")]
    pub journal_redact: Option<Vec<Spanned<String>>>,
    /// Serve HTTPS: `"self-signed"`, or `{ cert = "cert.pem", key = "key.pem" }` (PEM files relative to the route
    /// file; add `client_ca = "ca.pem"` for mutual TLS). Read at start.
    #[serde(default)]
    #[schemars(with = "Option<tls::TlsSpec>")]
    pub tls: Option<Spanned<tls::TlsSpec>>,
    /// Forward every request no route answers to this upstream, `"http(s)://host[:port][/base]"`, or a table with
    /// `url` and `preserve_host`, `timeout`, `ca`, `insecure`, `record`.
    #[serde(default)]
    #[schemars(with = "Option<proxy::ProxySpec>")]
    pub proxy: Option<Spanned<proxy::ProxySpec>>,
    /// `true`, or a table of `origins`, `methods`, `headers`, `expose_headers`, `credentials`, `max_age`: answer CORS
    /// preflight requests and add the CORS headers to every response.
    #[serde(default)]
    #[schemars(with = "Option<CorsSpec>")]
    pub cors: Option<Spanned<CorsSpec>>,
    /// The answer when no route matches, instead of the near-miss 404.
    #[serde(default)]
    #[schemars(with = "Option<NotFoundSpec>")]
    pub not_found: Option<Spanned<NotFoundSpec>>,
    /// Seed for the template helpers `uuid()`, `random_int()` and `fake()`: the same seed gives the same data.
    #[serde(default)]
    #[schemars(with = "Option<u64>")]
    pub seed: Option<Spanned<i64>>,
    /// Keep the state replicas share (sequence positions, `count`, scenarios, resources, the journal) in Redis or Valkey:
    /// `"redis://HOST:PORT/DB"`, or `rediss://` for TLS. `HOTROUTE_STATE` wins over it. Read at start.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub state: Option<Spanned<String>>,
    /// The prefix of every key hotroute writes in the state store (default `"hotroute"`). Read at start.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub state_prefix: Option<Spanned<String>>,
    /// How long a stateful request waits for the state store before answering 503 (default 500 ms). Read at start.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub state_timeout: Option<Spanned<String>>,
    /// With a `rediss://` `state`: the PEM file (relative to this file) of the CA that signed the store's
    /// certificate, trusted instead of the system's roots. `HOTROUTE_STATE_CA` wins over it. Read at start.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub state_ca: Option<Spanned<String>>,
    /// An OpenAPI 3.0 or 3.1 document (JSON or YAML, relative to this file) whose operations are served after this
    /// file's routes, as `hotroute import openapi` would write them; watched and reloaded like the route file.
    /// `--openapi FILE` wins over it.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub openapi: Option<Spanned<String>>,
    /// Check each request against its operation in `openapi`: `"enforce"` answers 422 (400 for a body that is not
    /// JSON) listing every problem, `"warn"` logs and journals them and answers as usual, `"off"` (the default).
    #[serde(default)]
    pub openapi_validate: Option<ValidateMode>,
    // Limits and timeouts, checked by `crate::limits` (see the README's "Limits" section for defaults).
    /// Largest request body, e.g. `"10MiB"` or a number of bytes (default 1 MiB); a larger one gets 413.
    #[serde(default)]
    #[schemars(with = "Option<SizeSpec>")]
    pub max_body: Option<Spanned<SizeSpec>>,
    /// Largest request head (request line and headers), at least `"8KiB"` (default 64 KiB); a larger one gets 431.
    #[serde(default)]
    #[schemars(with = "Option<SizeSpec>")]
    pub max_header_size: Option<Spanned<SizeSpec>>,
    /// Most request headers (default 100); more get 431.
    #[serde(default)]
    #[schemars(with = "Option<u64>", range(min = 1))]
    pub max_headers: Option<Spanned<u64>>,
    /// Longest request target, path and query (default 8 KiB); a longer one gets 414.
    #[serde(default)]
    #[schemars(with = "Option<SizeSpec>")]
    pub max_uri: Option<Spanned<SizeSpec>>,
    /// Connections served at once (default 4096); more wait to be accepted.
    #[serde(default)]
    #[schemars(with = "Option<u64>", range(min = 1))]
    pub max_connections: Option<Spanned<u64>>,
    /// Largest route file, included file or body file read, e.g. `"64MiB"` (default 64 MiB); a larger one is a load
    /// error. The route file itself is read with the limit of the routes in service (64 MiB at start).
    #[serde(default)]
    #[schemars(with = "Option<SizeSpec>")]
    pub max_route_file: Option<Spanned<SizeSpec>>,
    /// Requests one HTTP/2 connection may have open at once (default 100).
    #[serde(default)]
    #[schemars(with = "Option<u64>", range(min = 1))]
    pub max_concurrent_streams: Option<Spanned<u64>>,
    /// Bytes of request bodies all connections together may hold while they are read (default 256 MiB); a body
    /// that would go over gets 503 with `retry-after`.
    #[serde(default)]
    #[schemars(with = "Option<SizeSpec>")]
    pub max_body_buffers: Option<Spanned<SizeSpec>>,
    /// Bytes of recorded requests (heads and bodies) the journal may hold (default 32 MiB); the oldest are dropped
    /// first.
    #[serde(default)]
    #[schemars(with = "Option<SizeSpec>")]
    pub journal_bytes: Option<Spanned<SizeSpec>>,
    /// Largest WebSocket message (or frame) a client may send, e.g. `"64KiB"` (default 1 MiB); a larger one closes
    /// the connection with code 1009.
    #[serde(default)]
    #[schemars(with = "Option<SizeSpec>")]
    pub max_ws_message: Option<Spanned<SizeSpec>>,
    /// Most messages a client may send on one WebSocket connection (default 100000); then it is closed with 1008.
    #[serde(default)]
    #[schemars(with = "Option<u64>", range(min = 1))]
    pub max_ws_messages: Option<Spanned<u64>>,
    /// Time a client has to send a request head, e.g. `"10s"` (default 10 s).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub header_read_timeout: Option<Spanned<String>>,
    /// Time a client has to send a request body (default 30 s); then 408.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub body_timeout: Option<Spanned<String>>,
    /// A connection with no request in flight for this long is closed, whatever bytes (HTTP/2 PINGs) it sends
    /// (default 60 s).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub idle_timeout: Option<Spanned<String>>,
    /// A connection whose client reads nothing of a response for this long is closed (default 30 s).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub write_timeout: Option<Spanned<String>>,
    /// On shutdown, how long requests in flight may take to finish (default 10 s).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub grace: Option<Spanned<String>>,
    /// Keep runtime state (sequence positions, `count`, scenario states, resource data, the journal) per value of
    /// this request key, so that parallel tests sharing one server do not see each other: `"header:x-test-id"`,
    /// `"query:NAME"` or `"cookie:NAME"`. Requests without it share the default partition.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub isolate: Option<Spanned<String>>,
}

/// One `[[route]]`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    /// URL path, matchit syntax: `/users/{id}`, `/files/{*rest}`. Must start with `/`.
    #[schemars(with = "String")]
    pub path: Spanned<String>,
    /// A method or a list of methods (default `GET`); `ANY` matches every method.
    #[serde(default)]
    #[schemars(with = "Option<MethodsSpec>")]
    pub method: Option<Spanned<MethodsSpec>>,
    /// Response status code (default 200); with `template = true`, a template that renders one, e.g.
    /// `"{{ 201 if json else 400 }}"`.
    #[serde(default)]
    #[schemars(with = "Option<StatusSpec>")]
    pub status: Option<Spanned<StatusSpec>>,
    /// Response headers.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub headers: BTreeMap<Spanned<String>, Spanned<String>>,
    /// Text body, sent as `text/plain; charset=utf-8` unless a content-type header is given.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub body: Option<Spanned<String>>,
    /// Any TOML value, sent as JSON with `application/json`.
    #[serde(default)]
    #[schemars(with = "Option<serde_json::Value>")]
    pub json: Option<Spanned<toml::Value>>,
    /// A file, relative to the route file's folder, read when the routes load; content-type from its extension.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub file: Option<Spanned<String>>,
    /// Render `body`, every string of `json`, the `file` contents and header values as MiniJinja templates on each
    /// request (`{{ path.id }}` and more).
    #[serde(default)]
    pub template: bool,
    /// Extra conditions a request must meet; routes sharing a method and path are tried in file order.
    #[serde(default, rename = "match")]
    #[schemars(with = "Option<MatchSpec>")]
    pub matcher: Option<Spanned<MatchSpec>>,
    /// Answers given in turn: the n-th request gets the n-th; the last repeats (see `repeat`).
    #[serde(default)]
    #[schemars(with = "Option<Vec<SequenceItemSpec>>")]
    pub sequence: Option<Spanned<Vec<Spanned<SequenceItemSpec>>>>,
    /// After the last answer of a `sequence`: `"last"` repeats it (the default), `"cycle"` starts over. For a
    /// `stream` or `sse`: `true` starts the items over after the last, up to `count` items.
    #[serde(default)]
    #[schemars(with = "Option<RepeatSpec>")]
    pub repeat: Option<Spanned<RepeatSpec>>,
    /// A body sent in timed chunks: each item's `data` after its `delay`, e.g.
    /// `[{ data = "tick\n", delay = "1s" }]`.
    #[serde(default)]
    #[schemars(with = "Option<Vec<StreamItemSpec>>")]
    pub stream: Option<Spanned<Vec<Spanned<StreamItemSpec>>>>,
    /// Server-sent events (`text/event-stream`), each after its `delay`, e.g.
    /// `[{ event = "message", data = "hi", id = "1", delay = "50ms" }]`.
    #[serde(default)]
    #[schemars(with = "Option<Vec<SseEventSpec>>")]
    pub sse: Option<Spanned<Vec<Spanned<SseEventSpec>>>>,
    /// With `repeat = true` on a `stream` or `sse`: how many items to send in all.
    #[serde(default)]
    #[schemars(with = "Option<u64>", range(min = 1, max = 10000000))]
    pub count: Option<Spanned<i64>>,
    /// Wait this long before answering, e.g. `"300ms"` or `"2s"`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub delay: Option<Spanned<String>>,
    /// Break the connection instead of answering: `"reset"`, `"close"` or `"garbage"`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub fault: Option<Spanned<String>>,
    /// Send the body at most this fast, e.g. `"64KiB/s"`: in small chunks, paced (any body: text, file, folder,
    /// stream).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub throttle: Option<Spanned<String>>,
    /// Drop the connection after this many bytes of the body, e.g. `"10KiB"`: a download that breaks off.
    #[serde(default)]
    #[schemars(with = "Option<SizeSpec>")]
    pub cut_after: Option<Spanned<SizeSpec>>,
    /// Serve the files under this folder (relative to the route file's); the path's `{*rest}` names the file.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub dir: Option<Spanned<String>>,
    /// With `dir`: the file (relative to the folder) that answers paths with no file of their own, e.g.
    /// `"index.html"` for a single-page app whose client-side router owns those paths.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub fallback: Option<Spanned<String>>,
    /// The scenario this route reads or moves (see `state` and `next_state`); every scenario starts in `"started"`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub scenario: Option<Spanned<String>>,
    /// With `scenario`: the state the scenario must be in for this route to match.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub state: Option<Spanned<String>>,
    /// With `scenario`: the state the scenario moves to when this route answers.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub next_state: Option<Spanned<String>>,
    /// Accept a WebSocket upgrade and talk in messages: `on_connect`, `on_message` rules, `echo`, `close_after`.
    #[serde(default)]
    #[schemars(with = "Option<WebSocketSpec>")]
    pub websocket: Option<Spanned<WebSocketSpec>>,
    /// Forward the request to this upstream, `"http(s)://host[:port][/base]"` (path and query kept), or a table with
    /// `url` and `path` (a rewrite, e.g. `"/v2/{rest}"`), `preserve_host`, `timeout`, `ca`, `insecure`.
    #[serde(default)]
    #[schemars(with = "Option<proxy::ProxySpec>")]
    pub proxy: Option<Spanned<proxy::ProxySpec>>,
}

/// `method = "GET"` or `method = ["GET", "POST"]`.
#[derive(Debug, Clone, JsonSchema)]
#[schemars(untagged)]
pub enum MethodsSpec {
    /// One method.
    One(String),
    /// Several methods.
    Many(Vec<String>),
}

impl<'de> Deserialize<'de> for MethodsSpec {
    // Hand-written so that a wrong type gets a clear message instead of serde's "did not match any variant".
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MethodsSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a method name like \"GET\" or a list of them like [\"GET\", \"POST\"]")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(MethodsSpec::One(v.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(m) = seq.next_element::<String>()? {
                    out.push(m);
                }
                Ok(MethodsSpec::Many(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// A route file's text, kept so that later stages can point into it.
#[derive(Debug, Clone)]
pub struct Source {
    /// Where it was read from (as given, for messages).
    pub path: PathBuf,
    /// Its full text.
    pub text: String,
}

/// Where a route is defined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// Index into [`Config::sources`].
    pub source: usize,
    /// Byte span of the whole `[[route]]` table.
    pub span: Range<usize>,
    /// 1-based line of the `[[route]]` header.
    pub line: usize,
}

/// Which methods a route answers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Methods {
    /// Every method (`"ANY"`).
    Any,
    /// These methods. `GET` implies `HEAD`.
    List(Vec<Method>),
}

impl Methods {
    /// The method names, `["ANY"]` for all.
    pub fn names(&self) -> Vec<String> {
        match self {
            Methods::Any => vec!["ANY".to_owned()],
            Methods::List(list) => list.iter().map(|m| m.as_str().to_owned()).collect(),
        }
    }

    /// The methods as a JSON list, `["ANY"]` for all.
    pub fn to_json(&self) -> serde_json::Value {
        self.names().into()
    }
}

impl Methods {
    /// Whether a request with `method` is answered by this route.
    pub fn allows(&self, method: &Method) -> bool {
        match self {
            Methods::Any => true,
            Methods::List(list) => list.iter().any(|m| m == method || (method == Method::HEAD && m == Method::GET)),
        }
    }
}

impl fmt::Display for Methods {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Methods::Any => f.write_str("ANY"),
            Methods::List(list) => {
                let names: Vec<&str> = list.iter().map(Method::as_str).collect();
                f.write_str(&names.join(","))
            }
        }
    }
}

/// What a route sends as its body.
#[derive(Debug, Clone)]
pub enum BodyConfig {
    /// Fixed bytes, prepared once.
    Fixed(Bytes),
    /// A MiniJinja template source, rendered per request; `span` points at it for error messages.
    Template {
        /// The template text.
        source: String,
        /// Where it is in the route file.
        span: Range<usize>,
    },
}

/// A checked route, ready for the router.
#[derive(Debug, Clone)]
pub struct RouteConfig {
    /// Where it is defined.
    pub origin: Origin,
    /// The URL pattern (matchit syntax).
    pub path: String,
    /// Byte span of the `path` value.
    pub path_span: Range<usize>,
    /// Methods answered.
    pub methods: Methods,
    /// Response status.
    pub status: StatusCode,
    /// Response headers, server-wide ones merged in, content-type set.
    pub headers: HeaderMap,
    /// Response body.
    pub body: BodyConfig,
    /// Matching, templated headers, sequences, delays, faults and static folders.
    pub script: ScriptConfig,
}

/// Server-wide settings from `[server]`.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Whether the admin API under `/__admin/` answers.
    pub admin: bool,
    /// How many requests the journal keeps (see [`crate::observe::journal`]).
    pub journal: usize,
    /// Whether to write an access-log line per request.
    pub log_requests: bool,
    /// The admin API's token from `[server] admin_token`, if any.
    pub admin_token: Option<String>,
    /// The request headers (lower case) whose values the journal redacts.
    pub journal_redact: std::sync::Arc<[http::HeaderName]>,
    /// CORS, when on.
    pub cors: Option<crate::config::CorsConfig>,
    /// The answer when no route matches (none: the near-miss 404).
    pub not_found: Option<ReplyConfig>,
    /// Seed for the template helpers.
    pub seed: Option<u64>,
    /// Limits and timeouts.
    pub limits: Limits,
    /// `[server] headers`: already in every route's headers; the pipeline adds them to hotroute's own answers too
    /// (404, 405, admin, limits), where no route's headers are.
    pub headers: HeaderMap,
    /// `[server] tls`: serve HTTPS, when set.
    pub tls: Option<tls::TlsConfig>,
    /// `[server] state`: the shared state store, when set.
    pub state: Option<state::StateConfig>,
    /// `[server] proxy`: where requests no route answers go, when set.
    pub proxy: Option<Arc<proxy::ProxyConfig>>,
    /// `[server] isolate`: where a request names its state partition, when set.
    pub isolate: Option<resource::IsolateKey>,
    /// `[server] openapi`: the OpenAPI document served after the routes (resolved against the route file's folder).
    pub openapi: Option<PathBuf>,
    /// `[server] openapi_validate`.
    pub openapi_validate: ValidateMode,
}

impl ServerConfig {
    /// The settings read only when the server starts that differ between `self` (in service) and `new` (just
    /// loaded), by their `[server]` key: a reload cannot apply them, and says so instead of ignoring them silently.
    pub fn start_only_changes(&self, new: &ServerConfig) -> Vec<&'static str> {
        let (a, b) = (&self.limits, &new.limits);
        [
            ("listen", self.listen != new.listen),
            (
                "tls",
                match (&self.tls, &new.tls) {
                    (Some(a), Some(b)) => a.needs_restart(b),
                    (a, b) => a.is_some() != b.is_some(),
                },
            ),
            ("log_requests", self.log_requests != new.log_requests),
            ("state", self.state != new.state),
            ("grace", a.grace != b.grace),
            ("header_read_timeout", a.header_read_timeout != b.header_read_timeout),
            ("body_timeout", a.body_timeout != b.body_timeout),
            ("idle_timeout", a.idle_timeout != b.idle_timeout),
            ("write_timeout", a.write_timeout != b.write_timeout),
            ("max_body", a.max_body != b.max_body),
            ("max_headers", a.max_headers != b.max_headers),
            ("max_header_size", a.max_header_size != b.max_header_size),
            ("max_uri", a.max_uri != b.max_uri),
            ("max_connections", a.max_connections != b.max_connections),
            ("max_ws_message", a.max_ws_message != b.max_ws_message),
            ("max_ws_messages", a.max_ws_messages != b.max_ws_messages),
        ]
        .into_iter()
        .filter_map(|(key, changed)| changed.then_some(key))
        .collect()
    }
}

/// A route's `status`: a number, or (with `template = true`) a template that renders one.
#[derive(Debug, Clone, PartialEq, Eq, JsonSchema)]
#[schemars(untagged)]
pub enum StatusSpec {
    /// A status code, e.g. `201`.
    Code(i64),
    /// A template rendering a status code, e.g. `"{{ 201 if json else 400 }}"`.
    Template(String),
}

impl<'de> Deserialize<'de> for StatusSpec {
    // Hand-written so that a wrong type gets a clear message instead of serde's "did not match any variant".
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = StatusSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a status code like 201, or a template with `template = true`")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(StatusSpec::Code(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(StatusSpec::Code(i64::try_from(v).unwrap_or(i64::MAX)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(StatusSpec::Template(v.to_owned()))
            }
        }
        d.deserialize_any(V)
    }
}

/// A checked route file: settings, routes in file order, and what it was read from.
#[derive(Debug, Clone)]
pub struct Config {
    /// The route file first, then any files it pulls in.
    pub sources: Vec<Source>,
    /// `[server]` settings.
    pub server: ServerConfig,
    /// The routes, in file order.
    pub routes: Vec<RouteConfig>,
    /// Files whose content the routes depend on (body files), for the watcher.
    pub body_files: Vec<PathBuf>,
    /// The `[[resource]]` collections, in file order.
    pub resources: Vec<resource::ResourceConfig>,
}

impl Config {
    /// An error pointing at `span` of source `source`.
    pub fn error_at(
        &self,
        source: usize,
        span: Range<usize>,
        message: impl Into<String>,
        help: Option<&str>,
    ) -> LoadError {
        let s = &self.sources[source];
        LoadError::at(&s.path, &s.text, span, message, help)
    }
}

/// Reads and checks the route file at `path`. Body files are resolved against its folder.
pub fn load_file(path: &Path) -> Result<Config, LoadErrors> {
    let (config, errors) = check_file(path)?;
    if !errors.is_empty() {
        return Err(LoadErrors(errors));
    }
    Ok(config)
}

fn read_route_file(path: &Path, inputs: &mut Inputs) -> Result<String, LoadError> {
    let bytes = inputs.read(path).map_err(|e| {
        if path.is_dir() {
            let inside = path.join("routes.toml");
            let help = format!("name the route file inside it, e.g. `{}`", inside.display());
            let message = format!("`{}` is a folder, not a route file", path.display());
            return LoadError::file(path, message, &help);
        }
        let help = if e.kind() == std::io::ErrorKind::FileTooLarge {
            "make the file smaller, or raise `max_route_file` in [server]"
        } else if e.kind() == std::io::ErrorKind::NotFound {
            "create it (see the README for an example), or name another file: `hotroute path/to/routes.toml`"
        } else {
            "check that it is a readable UTF-8 text file"
        };
        LoadError::file(path, format!("cannot read route file `{}`: {e}", path.display()), help)
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let text = String::from_utf8_lossy(e.as_bytes());
        let message = format!("route file `{}` is not UTF-8 text", path.display());
        LoadError::at(path, &text, at..at + 1, message, Some("save the file as UTF-8"))
    });
    // The byte-order mark some editors write (Windows Notepad) is no text: left in, it would count as a column of
    // line 1 and shift the caret under an error there by one.
    text.map(|mut text| {
        if text.starts_with('\u{feff}') {
            text.drain(..'\u{feff}'.len_utf8());
        }
        text
    })
}

/// The folder that relative paths in the route file at `path` are resolved against.
pub fn base_dir_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Checks route-file `text` as if read from `name`; body files are resolved against `base_dir`.
pub fn load_str(text: &str, name: &Path, base_dir: &Path) -> Result<Config, LoadErrors> {
    let (config, errors) = check_str(text, name, base_dir)?;
    if !errors.is_empty() {
        return Err(LoadErrors(errors));
    }
    Ok(config)
}

/// Reads the route file at `path` like [`load_file`], but returns the good routes along with the problems found in
/// the others, so that later checks can run on them too and the user sees every problem at once.
pub(crate) fn check_file(path: &Path) -> Result<(Config, Vec<LoadError>), LoadErrors> {
    check_file_tracked(path, &mut Inputs::default())
}

/// Like [`check_file`], recording in `inputs` every file read (also when the load fails), for the watcher.
pub(crate) fn check_file_tracked(path: &Path, inputs: &mut Inputs) -> Result<(Config, Vec<LoadError>), LoadErrors> {
    let text = read_route_file(path, inputs)?;
    check_text(&text, path, &base_dir_of(path), inputs)
}

/// Like [`load_str`], returning the good routes along with the problems found in the others.
pub(crate) fn check_str(text: &str, name: &Path, base_dir: &Path) -> Result<(Config, Vec<LoadError>), LoadErrors> {
    check_text(text, name, base_dir, &mut Inputs::default())
}

fn check_text(
    text: &str,
    name: &Path,
    base_dir: &Path,
    inputs: &mut Inputs,
) -> Result<(Config, Vec<LoadError>), LoadErrors> {
    let source = Source { path: name.to_path_buf(), text: text.to_owned() };
    let spec = parse(&source)?;
    let mut checker = Checker {
        source: &source,
        source_index: 0,
        base_dir,
        errors: Vec::new(),
        body_files: Vec::new(),
        inputs: &mut *inputs,
        lines: LineIndex::new(text),
    };
    let server = checker.server(spec.server.as_ref());
    let mut routes: Vec<RouteConfig> = spec.route.iter().filter_map(|r| checker.route(r, &server.1)).collect();
    let resources = spec.resource.iter().filter_map(|r| checker.resource(r)).collect();
    let Checker { mut errors, mut body_files, .. } = checker;
    let mut sources = vec![source];
    include::add_included(
        &spec.include,
        base_dir,
        &server.1,
        include::Merged {
            sources: &mut sources,
            routes: &mut routes,
            errors: &mut errors,
            body_files: &mut body_files,
        },
        inputs,
    );
    Ok((Config { sources, server: server.0, routes, body_files, resources }, errors))
}

fn parse(source: &Source) -> Result<RouteFileSpec, LoadError> {
    toml::from_str(&source.text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        let raw = e.message().trim_end().to_owned();
        let (message, help) = common_mistake(&raw, &source.text, span.clone())
            .unwrap_or_else(|| (raw.clone(), toml_help(&raw).to_owned()));
        LoadError::at(&source.path, &source.text, span, message, Some(&help))
    })
}

/// Words for the mistakes people make most, where the TOML parser's own message would leave them guessing:
/// `[route]` for `[[route]]`, a quoted number, a misspelt key, `include` below a table. None for anything else.
fn common_mistake(raw: &str, text: &str, span: Range<usize>) -> Option<(String, String)> {
    let at = text.get(span.clone()).unwrap_or("");
    if let Some(rest) = raw.strip_prefix("unknown field `") {
        let (key, expected) = rest.split_once('`')?;
        let known: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
        if key == "include" {
            return Some((
                "`include` is inside a table here, so it is read as one of that table's keys".to_owned(),
                "move `include` above the first table (`[server]` or `[[route]]`): keys below a table header belong \
                 to that table"
                    .to_owned(),
            ));
        }
        let message = format!("unknown field `{key}`");
        let help = match crate::util::text::did_you_mean(key, known.iter().copied()) {
            Some(k) => format!("did you mean `{k}`?"),
            None => {
                format!("the keys here are {}", known.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", "))
            }
        };
        return Some((message, help));
    }
    if raw.starts_with("invalid type: map, expected a sequence") && at.trim_start().starts_with('[') {
        let name = at.trim().trim_matches(['[', ']']).trim();
        return Some((
            format!("`[{name}]` is a single table, but each {name} is an entry in a list"),
            format!("write `[[{name}]]` (double brackets) for each {name}"),
        ));
    }
    if let Some(rest) = raw.strip_prefix("invalid type: string \"") {
        let (value, expected) = rest.split_once("\", expected ")?;
        let numeric = ["u8", "u16", "u32", "u64", "i64", "an integer", "integer"].contains(&expected);
        if numeric && value.trim().parse::<i64>().is_ok() {
            let line_start = text[..span.start.min(text.len())].rfind('\n').map_or(0, |i| i + 1);
            let key = text[line_start..span.start.min(text.len())].trim().trim_end_matches('=').trim();
            let key = if key.is_empty() { "this value" } else { key };
            return Some((
                format!("{key} is a number, not a string: `{key} = {}`", value.trim()),
                "remove the quotes".to_owned(),
            ));
        }
    }
    // The reverse: `query = { page = 2 }`, `headers = { x-retry = 3 }`, `body = true`: a number or boolean where text
    // goes, which serde words as "invalid type: integer `2`, expected a string".
    if let Some(rest) = raw.strip_prefix("invalid type: ")
        && let Some((kind, rest)) = rest.split_once(" `")
        && let Some((literal, "expected a string")) = rest.split_once("`, ")
        && let Some(kind) = match kind {
            "integer" | "floating point" => Some("a number"),
            "boolean" => Some("a boolean"),
            _ => None,
        }
    {
        let before = text.get(..span.start)?.trim_end().strip_suffix('=')?.trim_end();
        let key = match before.strip_suffix(['"', '\'']) {
            // A quoted key may hold spaces: `"x retry" = 3`.
            Some(open) => open.rfind(['"', '\'']).map_or(open, |i| &open[i + 1..]),
            None => before.rsplit(|c: char| c.is_whitespace() || c == '{' || c == ',').next()?,
        };
        // A duration or a rate is a string with a unit: the quoted number alone would be refused next.
        let unit = match key {
            "delay" | "grace" | "timeout" => Some(("a duration", "ms\"` or `\"{literal}s")),
            k if k.ends_with("_timeout") => Some(("a duration", "ms\"` or `\"{literal}s")),
            "throttle" => Some(("a rate", "KiB/s")),
            _ => None,
        };
        let bare = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        let key = if bare { key.to_owned() } else { toml::Value::String(key.to_owned()).to_string() };
        return Some(match unit {
            Some((what, unit)) => (
                format!("`{key} = {literal}` is {kind}, but `{key}` is {what}: text with its unit"),
                format!(
                    "write it in quotes with its unit, e.g. `{key} = \"{literal}{}\"`",
                    unit.replace("{literal}", literal)
                ),
            ),
            None => (
                format!("`{key} = {literal}` is {kind}, but `{key}` takes text"),
                format!("add quotes: `{key} = \"{literal}\"`"),
            ),
        });
    }
    None
}

fn toml_help(message: &str) -> &'static str {
    if message.starts_with("unknown field") {
        "remove or rename this key; `hotroute schema` lists every key a route file may hold"
    } else if message.contains("missing field") {
        "add the missing key to this table"
    } else if message.contains("invalid type") {
        "change the value to the type the message names"
    } else {
        "fix the TOML syntax here; the rest of the file was not read"
    }
}

/// A segment written in another router's parameter syntax (`:id`, `*`, `*rest`), and hotroute's way to write it
/// (`{id}`, `{*rest}`).
fn foreign_param(path: &str) -> Option<(&str, String)> {
    let ident = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    path.split('/').find_map(|seg| {
        if let Some(name) = seg.strip_prefix(':').filter(|n| ident(n)) {
            Some((seg, format!("{{{name}}}")))
        } else if seg == "*" {
            Some((seg, "{*rest}".to_owned()))
        } else {
            seg.strip_prefix('*').filter(|n| ident(n)).map(|name| (seg, format!("{{*{name}}}")))
        }
    })
}

/// Why no client could ever send a request for `path`, and what to write instead: a query or fragment written in
/// the path (the router sees the path alone, and clients never send a fragment), or a `.`/`..` segment (clients
/// remove those before sending, RFC 3986 section 5.2.4). Such a route would load and never answer.
fn unreachable_path(path: &str) -> Option<(String, String)> {
    if let Some(at) = path.find(['?', '#']) {
        let (before, after) = path.split_at(at);
        if after.starts_with('#') {
            return Some((
                format!("route path `{path}` has a fragment `{after}`, which clients never send to the server"),
                format!("remove it: \"{before}\""),
            ));
        }
        let query = after[1..].split('#').next().unwrap_or_default();
        let pairs: Option<Vec<String>> = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| p.split_once('=').map(|(k, v)| format!("{} = {}", toml_key(k), toml_quoted(v))))
            .collect();
        let help = match pairs {
            Some(pairs) if !pairs.is_empty() => {
                format!(
                    "write `path = \"{before}\"` and match the query with `match = {{ query = {{ {} }} }}`",
                    pairs.join(", ")
                )
            }
            _ => format!(
                "write `path = \"{before}\"`, and `match = {{ query = {{ NAME = \"VALUE\" }} }}` to match the query"
            ),
        };
        return Some((
            format!("route path `{path}` holds a query (`{after}`): a route's path never includes the query"),
            help,
        ));
    }
    if path.split('/').any(|seg| seg == "." || seg == "..") {
        // What a client sends for it: each `.` dropped, each `..` with the segment before it.
        let mut kept: Vec<&str> = Vec::new();
        let segments: Vec<&str> = path[1..].split('/').collect();
        for (i, seg) in segments.iter().enumerate() {
            match *seg {
                "." | ".." if i + 1 == segments.len() => {
                    if *seg == ".." {
                        kept.pop();
                    }
                    kept.push("");
                }
                "." => {}
                ".." => {
                    kept.pop();
                }
                seg => kept.push(seg),
            }
        }
        return Some((
            format!("route path `{path}` has a `.` or `..` segment, which clients remove before they send a request"),
            format!("write the path as clients send it: \"/{}\"", kept.join("/")),
        ));
    }
    None
}

/// Why a route written with `path` as it is would not load (a query, a fragment, a `.`/`..` segment, another router's
/// parameter syntax), for code that writes route files from requests (`hotroute record`) and must not write one.
pub(crate) fn refused_path(path: &str) -> Option<String> {
    unreachable_path(path).map(|(message, _)| message).or_else(|| {
        foreign_param(path).map(|(seg, _)| {
            format!("route path `{path}` writes a parameter as `{seg}`, which hotroute reads as literal text")
        })
    })
}

/// `key` as a TOML key: bare when it can be, quoted otherwise.
fn toml_key(key: &str) -> String {
    let bare = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare { key.to_owned() } else { toml_quoted(key) }
}

/// A query component decoded as `match = { query = ... }` compares it (`+` is a space), as a TOML string.
fn toml_quoted(component: &str) -> String {
    let decoded = percent_encoding::percent_decode_str(&component.replace('+', " ")).decode_utf8_lossy().into_owned();
    toml::Value::String(decoded).to_string()
}

/// Collects every problem in one pass, so that a user sees them all at once.
struct Checker<'a> {
    source: &'a Source,
    source_index: usize,
    base_dir: &'a Path,
    errors: Vec<LoadError>,
    body_files: Vec<PathBuf>,
    inputs: &'a mut Inputs,
    /// Line starts of `source`, so each route's line is a binary search.
    lines: LineIndex,
}

impl Checker<'_> {
    fn error(&mut self, span: Range<usize>, message: impl Into<String>, help: &str) {
        self.errors.push(LoadError::at(&self.source.path, &self.source.text, span, message, Some(help)));
    }

    fn server(&mut self, spec: Option<&Spanned<ServerSpec>>) -> (ServerConfig, HeaderMap) {
        let default = ServerSpec::default();
        let spec = spec.map_or(&default, |s| s.get_ref());
        let listen = match &spec.listen {
            None => DEFAULT_LISTEN.parse().expect("the default address parses"),
            Some(l) => l.get_ref().parse().unwrap_or_else(|_| {
                self.error(
                    l.span(),
                    format!("`{}` is not a listen address", l.get_ref()),
                    "write it as IP:PORT, e.g. \"127.0.0.1:3000\" or \"0.0.0.0:8080\"",
                );
                DEFAULT_LISTEN.parse().expect("the default address parses")
            }),
        };
        let headers = self.headers(&spec.headers);
        let journal = match &spec.journal {
            None => DEFAULT_JOURNAL,
            Some(n) => usize::try_from(*n.get_ref()).ok().filter(|&n| n <= MAX_JOURNAL).unwrap_or_else(|| {
                let msg = format!("journal size {} is out of range", n.get_ref());
                self.error(n.span(), msg, "use a number of requests from 0 (off) to 1000000");
                DEFAULT_JOURNAL
            }),
        };
        let admin = spec.admin.unwrap_or(true);
        let (cors, not_found, seed) = self.server_script(spec, &headers);
        let limits = crate::config::limits::from_spec(spec, &mut |span, message, help| self.error(span, message, help));
        // Included files and body files are read after this: with the file's own limit.
        self.inputs.set_limit(limits.max_route_file);
        let log_requests = spec.log_requests;
        let (admin_token, journal_redact) =
            crate::config::admin::from_spec(spec, &mut |span, message, help| self.error(span, message, help));
        let (base_dir, mut tls_errors) = (self.base_dir, Vec::new());
        let tls = tls::from_spec(spec.tls.as_ref(), base_dir, self.inputs, &mut |span, message, help| {
            tls_errors.push((span, message, help.to_owned()))
        });
        let proxy = spec.proxy.as_ref().and_then(|p| {
            proxy::from_spec(p, None, base_dir, self.inputs, &mut |span, message, help| {
                tls_errors.push((span, message, help.to_owned()))
            })
        });
        if let (Some(p), Some(_)) = (&spec.proxy, &spec.not_found) {
            tls_errors.push((
                p.span(),
                "[server] has both `proxy` and `not_found`: every request no route answers goes to the proxy, so \
                 `not_found` would never answer"
                    .into(),
                "remove one of them".into(),
            ));
        }
        for (span, message, help) in tls_errors {
            self.error(span, message, &help);
        }
        let (base_dir, inputs) = (self.base_dir, &mut *self.inputs);
        let mut state_errors = Vec::new();
        let state = state::from_spec(spec, base_dir, inputs, &mut |span, message, help| {
            state_errors.push((span, message, help.to_owned()))
        });
        for (span, message, help) in state_errors {
            self.error(span, message, &help);
        }
        let openapi = spec.openapi.as_ref().and_then(|p| {
            if p.get_ref().trim().is_empty() {
                self.error(
                    p.span(),
                    "`openapi` is empty",
                    "name an OpenAPI document, e.g. `openapi = \"openapi.yaml\"`",
                );
                return None;
            }
            Some(self.base_dir.join(p.get_ref()))
        });
        let isolate = self.isolate(spec.isolate.as_ref());
        let server = ServerConfig {
            isolate,
            openapi,
            openapi_validate: spec.openapi_validate.unwrap_or_default(),
            tls,
            proxy: proxy.map(Arc::new),
            listen,
            admin,
            journal,
            log_requests,
            admin_token,
            journal_redact,
            cors,
            not_found,
            seed,
            limits,
            headers: headers.clone(),
            state,
        };
        (server, headers)
    }

    /// A route's `proxy`: checked, with the route's own headers (which win over the upstream's).
    fn route_proxy(&mut self, spec: &RouteSpec, p: &Spanned<proxy::ProxySpec>) -> Option<Arc<proxy::ProxyRoute>> {
        let conflicts = proxy::route_conflicts(spec);
        if !conflicts.is_empty() {
            self.error(
                p.span(),
                format!("a proxy route answers with the upstream's answer, so it cannot have {}", conflicts.join(", ")),
                "remove those keys, or the `proxy`; a proxy route may add `headers`, a `delay` or a `fault`",
            );
        }
        let mut errors = Vec::new();
        let target = proxy::from_spec(p, Some(spec.path.get_ref()), self.base_dir, self.inputs, &mut |s, m, h| {
            errors.push((s, m, h.to_owned()))
        });
        for (span, message, help) in errors {
            self.error(span, message, &help);
        }
        // The route's own headers only: `[server] headers` are added where the upstream's answer has none.
        let mut headers = HeaderMap::new();
        for (name, value) in &spec.headers {
            if let (Ok(n), Ok(v)) =
                (HeaderName::from_bytes(name.get_ref().as_bytes()), HeaderValue::from_str(value.get_ref()))
            {
                headers.insert(n, v);
            }
        }
        Some(Arc::new(proxy::ProxyRoute { target: Arc::new(target?), headers }))
    }

    fn headers(&mut self, spec: &BTreeMap<Spanned<String>, Spanned<String>>) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in spec {
            let Ok(n) = HeaderName::from_bytes(name.get_ref().as_bytes()) else {
                self.error(
                    name.span(),
                    format!("`{}` is not a valid header name", name.get_ref()),
                    "header names are letters, digits and `-`, e.g. \"x-request-id\"",
                );
                continue;
            };
            if n == http::header::TRANSFER_ENCODING {
                // hyper frames the body itself: with this header, HTTP/1.1 clients got no answer at all.
                self.error(
                    name.span(),
                    "a `transfer-encoding` header on an answer breaks it: HTTP/1.1 clients get no answer at all",
                    "remove it: hotroute frames the body itself (`content-length`, or chunks for a `stream`)",
                );
                continue;
            }
            let Ok(v) = HeaderValue::from_str(value.get_ref()) else {
                self.error(
                    value.span(),
                    format!("the value of header `{n}` is not a valid header value"),
                    "header values are visible ASCII and spaces, without line breaks",
                );
                continue;
            };
            map.insert(n, v);
        }
        map
    }

    /// A 1xx status is interim (RFC 9110 section 15.2): it cannot end an answer, and hyper answered 500 instead.
    fn interim_status(&mut self, span: Range<usize>, code: StatusCode) {
        self.error(
            span,
            format!("`{}` is an interim status (1xx), which cannot be the answer to a request", code.as_u16()),
            "use a final status from 200 to 999, e.g. 200 or 204",
        );
    }

    /// A 204 or 304 answer has no body (RFC 9110 sections 6.4.1 and 15.4.5): with one, HTTP/1.1 clients were sent
    /// its `content-length` and no bytes, and HTTP/2 clients had the stream reset. `span` is the body key's.
    fn bodiless(&mut self, status: StatusCode, body: &BodyConfig, span: Option<Range<usize>>) {
        let empty = matches!(body, BodyConfig::Fixed(b) if b.is_empty());
        if let (false, Some(span), StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED) = (empty, span, status) {
            self.error(
                span,
                format!("a `{}` answer has no body, so this one would never reach a client", status.as_u16()),
                "remove the body, or use a status that has one, e.g. 200",
            );
        }
    }

    fn route(&mut self, spanned: &Spanned<RouteSpec>, server_headers: &HeaderMap) -> Option<RouteConfig> {
        let errors_before = self.errors.len();
        let spec = spanned.get_ref();
        let span = spanned.span();
        let line = self.lines.line(span.start);
        let origin = Origin { source: self.source_index, line, span };

        let path = spec.path.get_ref();
        if !path.starts_with('/') {
            self.error(
                spec.path.span(),
                format!("route path `{path}` does not start with `/`"),
                "write it from the root, e.g. \"/hello\" or \"/users/{id}\"",
            );
        } else if let Some((message, help)) = unreachable_path(path) {
            self.error(spec.path.span(), message, &help);
        } else if let Some((seg, right)) = foreign_param(path) {
            // Refused rather than taken as aliases: `:` and `*` are legal in a literal path, and a pattern that
            // means one thing here and another in the user's last framework should be said, not guessed.
            self.error(
                spec.path.span(),
                format!("route path `{path}` writes a parameter as `{seg}`, which hotroute reads as literal text"),
                &format!("write `{right}`: \"{}\"", path.replacen(seg, &right, 1)),
            );
        } else if path == ADMIN_PREFIX || path.starts_with(&format!("{ADMIN_PREFIX}/")) {
            self.error(
                spec.path.span(),
                format!("route path `{path}` is under `{ADMIN_PREFIX}/`, which hotroute reserves for its admin API"),
                "move the route to another path",
            );
        }

        let methods = self.methods(spec.method.as_ref());
        let mut status_template = None;
        let status = match &spec.status {
            None => StatusCode::OK,
            Some(s) => match s.get_ref() {
                StatusSpec::Code(code) => match u16::try_from(*code).ok().and_then(|c| StatusCode::from_u16(c).ok()) {
                    Some(code) if code.is_informational() => {
                        self.interim_status(s.span(), code);
                        StatusCode::OK
                    }
                    Some(code) => code,
                    None => {
                        self.error(
                            s.span(),
                            format!("`{code}` is not an HTTP status code"),
                            "use a number from 200 to 999, e.g. 200, 404 or 503",
                        );
                        StatusCode::OK
                    }
                },
                StatusSpec::Template(text) if text.trim().parse::<i64>().is_ok() => {
                    self.error(
                        s.span(),
                        format!("status is a number, not a string: `status = {}`", text.trim()),
                        "remove the quotes",
                    );
                    StatusCode::OK
                }
                StatusSpec::Template(text) if spec.template && json_template::has_template_syntax(text) => {
                    status_template = Some((text.clone(), s.span()));
                    StatusCode::OK
                }
                StatusSpec::Template(text) => {
                    self.error(
                        s.span(),
                        format!("status `{text}` is text, not a status code"),
                        "write a number, e.g. `status = 201`; a status computed per request is a template, which \
                         needs `template = true` on the route, e.g. `status = \"{{ 201 if json else 400 }}\"`",
                    );
                    StatusCode::OK
                }
            },
        };

        let mut headers = server_headers.clone();
        for (name, value) in self.headers(&spec.headers) {
            if let Some(name) = name {
                headers.insert(name, value);
            }
        }

        let (body, content_type) = self.body(spec.body.as_ref(), spec.json.as_ref(), spec.file.as_ref(), spec.template);
        let body_span = spec.body.as_ref().map(Spanned::span).or_else(|| spec.json.as_ref().map(Spanned::span));
        self.bodiless(status, &body, body_span.or_else(|| spec.file.as_ref().map(Spanned::span)));
        if let Some(ct) = content_type
            && !headers.contains_key(CONTENT_TYPE)
            && let Ok(v) = HeaderValue::from_str(&ct)
        {
            headers.insert(CONTENT_TYPE, v);
        }
        let mut script = self.route_script(spec, &origin, status, &mut headers);
        script.status_template = status_template;
        if let Some(p) = &spec.proxy {
            script.proxy = self.route_proxy(spec, p);
        }

        if self.errors.len() > errors_before {
            return None;
        }
        let mut route = RouteConfig {
            origin,
            path: path.clone(),
            path_span: spec.path.span(),
            methods: methods?,
            status,
            headers,
            body,
            script,
        };
        route.script.key = script::definition_key(&route);
        Some(route)
    }

    /// The body of a route, a sequence item or the not-found answer, and the content-type it implies: at most one of
    /// `body`, `json` and `file`. With `template`, each becomes a template (`json` one whose strings are templates).
    fn body(
        &mut self,
        body: Option<&Spanned<String>>,
        json: Option<&Spanned<toml::Value>>,
        file: Option<&Spanned<String>>,
        template: bool,
    ) -> (BodyConfig, Option<String>) {
        let kinds: Vec<(&str, Range<usize>)> =
            [body.map(|b| ("body", b.span())), json.map(|j| ("json", j.span())), file.map(|f| ("file", f.span()))]
                .into_iter()
                .flatten()
                .collect();
        if kinds.len() > 1 {
            let names: Vec<&str> = kinds.iter().map(|k| k.0).collect();
            self.error(
                kinds[1].1.clone(),
                format!("a route has at most one body kind, this one has {}", names.join(" and ")),
                "keep one of `body`, `json` or `file`",
            );
        }
        if let Some(b) = body {
            let body = if template {
                BodyConfig::Template { source: b.get_ref().clone(), span: b.span() }
            } else {
                BodyConfig::Fixed(Bytes::from(b.get_ref().clone()))
            };
            (body, Some("text/plain; charset=utf-8".to_owned()))
        } else if let Some(j) = json {
            if let toml::Value::String(text) = j.get_ref()
                && matches!(text.trim_start().as_bytes().first(), Some(b'{' | b'['))
                && serde_json::from_str::<serde_json::Value>(text).is_ok()
            {
                // Served as written it would be one JSON string holding JSON text: never what was meant.
                self.error(
                    j.span(),
                    "`json` is a string holding JSON text, so it would be served as one JSON string",
                    "write the value as TOML, e.g. `json = { a = 1 }` (or a `[route.json]` table), or keep the text \
                     in `body` with `headers = { content-type = \"application/json\" }`",
                );
            }
            let json = toml_to_json(j.get_ref());
            if template {
                let source = crate::config::json_template::json_template_source(&json);
                (BodyConfig::Template { source, span: j.span() }, Some("application/json".to_owned()))
            } else {
                let bytes = serde_json::to_vec(&json).unwrap_or_default();
                (BodyConfig::Fixed(Bytes::from(bytes)), Some("application/json".to_owned()))
            }
        } else if let Some(f) = file {
            match self.body_file(f) {
                Some((bytes, mime)) if template => match String::from_utf8(bytes.to_vec()) {
                    Ok(source) => (BodyConfig::Template { source, span: f.span() }, Some(mime)),
                    Err(_) => {
                        self.error(
                            f.span(),
                            format!("body file `{}` is not UTF-8 text, so it cannot be a template", f.get_ref()),
                            "save the file as UTF-8, or remove `template = true`",
                        );
                        (BodyConfig::Fixed(Bytes::new()), None)
                    }
                },
                Some((bytes, mime)) => (BodyConfig::Fixed(bytes), Some(mime)),
                None => (BodyConfig::Fixed(Bytes::new()), None),
            }
        } else {
            (BodyConfig::Fixed(Bytes::new()), None)
        }
    }

    fn methods(&mut self, spec: Option<&Spanned<MethodsSpec>>) -> Option<Methods> {
        let Some(spec) = spec else { return Some(Methods::List(vec![Method::GET])) };
        let names: Vec<&String> = match spec.get_ref() {
            MethodsSpec::One(m) => vec![m],
            MethodsSpec::Many(list) => list.iter().collect(),
        };
        if names.is_empty() {
            self.error(spec.span(), "the method list is empty", "name at least one method, e.g. [\"GET\"], or \"ANY\"");
            return None;
        }
        let mut out = Vec::new();
        for name in names {
            let upper = name.to_ascii_uppercase();
            if upper == "ANY" {
                return Some(Methods::Any);
            }
            match Method::from_bytes(upper.as_bytes()) {
                Ok(m) if !upper.is_empty() => {
                    if !out.contains(&m) {
                        out.push(m)
                    }
                }
                _ => {
                    self.error(
                        spec.span(),
                        format!("`{name}` is not an HTTP method"),
                        "use a method like \"GET\", \"POST\", \"PUT\", \"DELETE\", or \"ANY\"",
                    );
                    return None;
                }
            }
        }
        Some(Methods::List(out))
    }

    fn body_file(&mut self, f: &Spanned<String>) -> Option<(Bytes, String)> {
        let rel = f.get_ref();
        let joined = if self.base_dir == Path::new(".") { PathBuf::from(rel) } else { self.base_dir.join(rel) };
        let resolved = match (joined.canonicalize(), self.base_dir.canonicalize()) {
            (Ok(file), Ok(base)) => {
                if !file.starts_with(&base) {
                    let _ = self.inputs.read(&joined);
                    self.error(f.span(), format!("body file `{rel}` is outside the route file's folder `{}`", base.display()), "move the file into the route file's folder (or a folder below it) and name it relative to that folder");
                    return None;
                }
                file
            }
            (Err(e), _) | (_, Err(e)) => {
                // Watched all the same, so that creating the file fixes the routes.
                self.inputs.record_missing(&joined);
                self.error(
                    f.span(),
                    format!("cannot read body file `{}`: {e}", joined.display()),
                    "paths are relative to the route file's folder; check the name",
                );
                return None;
            }
        };
        match self.inputs.read(&joined) {
            Ok(bytes) => {
                self.body_files.push(joined.clone());
                let mime = mime_guess::from_path(&resolved).first_or_octet_stream();
                let mime = if mime.type_() == mime_guess::mime::TEXT && mime.get_param("charset").is_none() {
                    format!("{mime}; charset=utf-8")
                } else {
                    mime.to_string()
                };
                Some((Bytes::from(bytes), mime))
            }
            Err(e) => {
                self.error(
                    f.span(),
                    format!("cannot read body file `{}`: {e}", joined.display()),
                    "check that it is a readable file, not a folder",
                );
                None
            }
        }
    }
}

/// Span of `key = ...` inside a table span, or the table itself when the key is not found.
fn span_of_key(text: &str, table: &Range<usize>, key: &str) -> Range<usize> {
    let t = &text[table.start.min(text.len())..table.end.min(text.len())];
    let mut offset = 0;
    for line in t.split_inclusive('\n') {
        if line.trim_start().starts_with(key) {
            let lead = line.len() - line.trim_start().len();
            let start = table.start + offset + lead;
            return start..start + line.trim().len();
        }
        offset += line.len();
    }
    table.clone()
}

/// TOML values as JSON. Dates become their RFC 3339 text, the form a JSON API would send.
pub fn toml_to_json(v: &toml::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        toml::Value::String(s) => J::String(s.clone()),
        toml::Value::Integer(i) => J::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        toml::Value::Boolean(b) => J::Bool(*b),
        toml::Value::Datetime(d) => J::String(d.to_string()),
        toml::Value::Array(a) => J::Array(a.iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => J::Object(t.iter().map(|(k, v)| (k.clone(), toml_to_json(v))).collect()),
    }
}

/// The JSON Schema of the route file, as `hotroute schema` prints it and `routes.schema.json` ships it.
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(RouteFileSpec);
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema serializes");
    text.push('\n');
    text
}
