//! Helpers shared by every test in this crate (see tests/README.md).
#![allow(dead_code, unused_imports)]

pub mod bin;
pub mod h2;
pub mod http;
pub mod server;

/// The names files written against the old `tests/common/mod.rs` use (`use crate::common;` in place of
/// `mod common;`).
pub mod common {
    pub use super::bin::{Bin, read_address};
    pub use super::http::raw;
    pub use super::server::{TestServer, client, load_error};

    /// `common::listening::read_address`, as before.
    pub mod listening {
        pub use super::super::bin::read_address;
    }
}

/// The names files written against the old `tests/wire/mod.rs` use (`use crate::wire;` in place of `mod wire;`).
pub mod wire {
    pub use super::bin::Bin;
    pub use super::h2;
    pub use super::h2::{h2_body, h2_exchange};
    pub use super::http::{Drained, Response, drain, exchange, get, read_response, stream_post, until_refused};
    pub use super::server::{Served, raise_fd_limit};
}
