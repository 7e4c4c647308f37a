//! Hot reload: the routes in service ([`Live`], an `ArcSwap` of the immutable router) and the file watcher that
//! replaces them when the route file changes. Imports `config`, `route` and
//! `observe` (the journal and metrics that outlive reloads), nothing above.

mod live;
pub(crate) mod watch;

pub use live::{Live, ReloadFailure};
