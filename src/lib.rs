//! hotroute: a small, fast HTTP server whose routes live in a TOML file.
//!
//! Data flows one way: the route file is read and checked by [`config`], built into an immutable
//! [`router::Router`], put in service by [`live::Live`], and answered by [`server::Server`]. The request path never
//! touches the disk or parses TOML; [`watch`] reloads the routes when their files change.
//!
//! Every request is recorded in the [`journal`] (for the admin API and route coverage), and [`MockServer`] runs the
//! whole as a mock API inside a Rust test, with [`Expect`] to check what the client sent.
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
#![warn(missing_docs)]

pub mod access_log;
pub mod admin;
pub mod config;
pub mod cors;
pub mod dashboard;
pub mod error;
pub mod expect;
pub mod fault;
pub mod inputs;
pub mod journal;
pub mod limits;
pub mod live;
pub mod matching;
pub mod metrics;
pub mod mock;
pub mod not_found;
pub mod observe;
mod reply;
pub mod respond;
pub mod router;
pub mod server;
pub mod static_files;
pub mod template;
pub mod trace;
pub mod watch;

pub use config::{Config, load_file, load_str};
pub use error::{LoadError, LoadErrors, ServeError};
pub use expect::{Expect, VerifyError};
pub use journal::{Coverage, RecordedRequest};
pub use live::Live;
pub use mock::{MockError, MockServer};
pub use router::Router;
pub use server::{ServeOptions, Server};
