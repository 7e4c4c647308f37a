//! hotroute: a small, fast HTTP server whose routes live in a TOML file.
//!
//! Data flows one way: the route file is read and checked into a [`Config`], built into an immutable [`Router`],
//! put in service by [`Live`], and answered by [`Server`]. The request path never touches the disk or parses TOML;
//! [`Live::watch`] reloads the routes when their files change.
//!
//! Every request is recorded in a journal (for the admin API and route coverage), and [`MockServer`] runs the whole
//! as a mock API inside a Rust test, with [`Expect`] to check what the client sent.
//!
//! Serving a route file from Rust:
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! let live = Arc::new(hotroute::Live::from_file("routes.toml".as_ref())?);
//! let server = hotroute::Server::bind("127.0.0.1:0".parse()?, live).await?;
//! println!("listening on http://{}", server.local_addr());
//! server.serve(async { tokio::signal::ctrl_c().await.ok(); }).await?;
//! # Ok(()) }
//! ```
//!
//! # Layout
//!
//! Each folder is a layer, and a layer imports only the layers above it in this list (a test, `tests/layers.rs`,
//! fails the build on an import that goes the other way):
//!
//! - `util`, `request`: leaves. Dates; the request as every layer sees it.
//! - `config`: the route file. Serde structs, spans, checking, `include`, load errors, the JSON Schema, limits.
//! - `import`: route files written from other descriptions of an API (OpenAPI 3.0 and 3.1) or other mocks
//!   (WireMock mappings, Mockoon environments), checked by `config`.
//! - `route`: the immutable [`Router`]. Matching, prepared and scripted replies, templates, static folders, CORS,
//!   the near-miss 404. Answers a request without sockets.
//! - `reload`: [`Live`], the router in service behind an `ArcSwap`, and the file watcher that replaces it.
//! - `observe`: what the server tells about itself. Metrics, access log, `--trace`, and the request journal with
//!   route coverage.
//! - `admin`: the admin API and the dashboard under `/__admin/`.
//! - `serve`: [`Server`]. The listener, the connection I/O (limits, faults), and the request pipeline that joins
//!   the layers above.
//! - `mock`: [`MockServer`] and [`Expect`], hotroute as a mock API in Rust tests.
//!
//! The binary (`src/main.rs`) is a thin CLI over this library, behind the default `cli` feature.
#![warn(missing_docs)]

// The README's Rust examples compile as doc tests, so that the front page cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

mod admin;
mod config;
pub mod import;
mod mock;
mod observe;
mod reload;
mod request;
mod route;
mod serve;
mod util;

pub use config::admin::{DEFAULT_JOURNAL_REDACT, check_admin_token};
pub use config::state::{StateConfig, check_state_ca, check_state_url};
pub use config::tls::{ClientAuth, TlsConfig, TlsFiles};
pub use config::{Config, Limits, LoadError, LoadErrors, json_schema, load_file, load_str};
pub use import::{ImportError, Imported};
pub use mock::expect::{Expect, Times, VerifyError};
pub use mock::{MockError, MockServer, WaitError};
pub use observe::access_log::{LogFormat, QueuedStderr, flush_stderr};
pub use observe::journal::{Coverage, RecordedRequest, RouteHits, Unmatched};
pub use reload::watch::{WatchError, WatchHandle};
pub use reload::{Live, ReloadFailure};
pub use route::state::{RemoteState, StateError};
pub use route::template::WORKER_STACK;
pub use route::{RouteInfo, Router};
pub use serve::{ServeError, ServeOptions, Server};
pub use util::process::raise_fd_limit;

/// Internals for hotroute's own benches and tests. Not part of the API: anything here may change in any release.
#[doc(hidden)]
pub mod __internals {
    pub use crate::admin::access::MAX_ADMIN_READS;
    pub use crate::admin::dashboard::{PAGE, SCRIPT_SHA256, STYLE_SHA256};
    pub use crate::config::RouteFileSpec;
    pub use crate::observe::journal::BODY_LIMIT;
    pub use crate::observe::metrics::Metrics;
    pub use crate::observe::{Conn, Observer, Probe};
    pub use crate::request::RequestView;
    pub use crate::route::openapi::{Violations, check_request as openapi_check};
    pub use crate::serve::io::GARBAGE;
    pub use crate::util::time::rfc3339_millis;
}
