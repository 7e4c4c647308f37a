//! The live routes: the router in service right now, and how a new one replaces it.
//!
//! The router sits behind an [`ArcSwap`]: a request takes the current one with a lock-free load and keeps it until it
//! is answered, so a reload never changes the routes under a request in flight. A reload builds the whole new router
//! first and swaps only when it is good; a bad route file leaves the old routes serving.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arc_swap::{ArcSwap, Guard};

use crate::error::LoadErrors;
use crate::router::Router;

/// The router in service, its generation, and where it came from.
#[derive(Debug)]
pub struct Live {
    router: ArcSwap<Router>,
    generation: AtomicU64,
    source: Option<PathBuf>,
    last_error: Mutex<Option<String>>,
}

impl Live {
    /// Starts at generation 1 with `router`. `source` is the route file to re-read on reload (none for routes given
    /// as a string).
    pub fn new(router: Router, source: Option<PathBuf>) -> Self {
        Live {
            router: ArcSwap::from_pointee(router),
            generation: AtomicU64::new(1),
            source,
            last_error: Mutex::new(None),
        }
    }

    /// Loads the route file at `path` and starts serving it.
    pub fn from_file(path: &Path) -> Result<Self, LoadErrors> {
        let router = Router::load_file(path)?;
        Ok(Live::new(router, Some(path.to_path_buf())))
    }

    /// The current router, without taking a reference count: for code that answers without waiting.
    /// Code that awaits while it holds the router should use [`Live::load_full`].
    pub fn router(&self) -> Guard<Arc<Router>> {
        self.router.load()
    }

    /// The current router as an owned `Arc`, safe to hold across `.await`.
    pub fn load_full(&self) -> Arc<Router> {
        self.router.load_full()
    }

    /// How many times the routes have been loaded (1 at start).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The route file being served, if any.
    pub fn source(&self) -> Option<&Path> {
        self.source.as_deref()
    }

    /// The error of the last failed reload, cleared by the next good one.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Puts `router` in service and returns the new generation. Routes whose definition did not change keep their
    /// counters and sequence positions.
    pub fn swap(&self, mut router: Router) -> u64 {
        router.adopt_state(&self.router.load());
        self.router.store(Arc::new(router));
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.generation.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Re-reads the route file and swaps in the result. On error the old routes keep serving, and the error is
    /// returned, logged, and remembered for the admin API.
    pub fn reload(&self) -> Result<u64, LoadErrors> {
        let Some(path) = &self.source else {
            return Ok(self.generation());
        };
        let started = Instant::now();
        match Router::load_file(path) {
            Ok(router) => {
                let n = router.routes().len();
                let generation = self.swap(router);
                let ms = started.elapsed().as_secs_f64() * 1000.0;
                tracing::info!("reloaded {n} routes in {ms:.1} ms (generation {generation})");
                Ok(generation)
            }
            Err(e) => {
                tracing::error!("{e}\nkeeping the previous routes");
                *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(e.to_string());
                Err(e)
            }
        }
    }
}
