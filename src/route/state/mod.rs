//! Where a router's runtime state lives: sequence positions and `count` (one counter per route), scenario states,
//! `[[resource]]` items, and (for the observe layer) the request journal.
//!
//! Two stores, one shape:
//!
//! - **In process** (the default, no `[server] state`): the counters are atomics and the scenario states are
//!   `ArcSwap` slots held by the routes themselves (see [`super::RouteStats`] and [`super::scenario`]), so that a
//!   request reaches them without a lookup, a lock, an allocation or an await. That is today's cost, and the code
//!   path of a router without a shared store does not change.
//! - **Shared** ([`RemoteState`], `[server] state = "redis://..."`): the same state in Redis or Valkey, so that
//!   replicas answer as one server would. A route's counter is keyed by its definition identity (the hash that
//!   carries counters over a reload, `RouteConfig::script.key`), so replicas serving the same file share it and a
//!   changed route starts fresh. Only requests to a path with a stateful route (see [`super::Router::respond_shared`])
//!   talk to the store; plain routes answer as without it.
//!
//! Every operation takes a partition key (`""` for the default partition): per-test isolation keeps each
//! partition's state apart under its own keys, `PREFIX:PARTITION:...`.

mod remote;

pub use remote::{Counter, Created, NewId, RemoteState, Replaced, ResourceKeys, StartData, StateError};

/// The partition of the state that exists without per-test isolation.
pub const DEFAULT_PARTITION: &str = "";
