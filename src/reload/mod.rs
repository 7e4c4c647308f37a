//! Hot reload: the routes in service ([`Live`], an `ArcSwap` of the immutable router) and the file watcher that
//! replaces them when the route file changes. Imports `config` and `route`, nothing above.

mod live;
pub(crate) mod watch;

pub use live::{Live, ReloadFailure};
