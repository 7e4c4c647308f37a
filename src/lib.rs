//! hotroute: a small, fast HTTP server whose routes live in a TOML file.
//!
//! Data flows one way: the route file is read and checked by [`config`], built into an immutable
//! [`router::Router`], put in service by [`live::Live`], and answered by [`server::Server`]. The request path never
//! touches the disk or parses TOML.
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

pub mod admin;
pub mod config;
pub mod error;
pub mod limits;
pub mod live;
pub mod respond;
pub mod router;
pub mod server;

pub use config::{Config, load_file, load_str};
pub use error::{LoadError, LoadErrors, ServeError};
pub use live::Live;
pub use router::Router;
pub use server::{ServeOptions, Server};
