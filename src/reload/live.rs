//! The live routes: the router in service right now, and how a new one replaces it.
//!
//! The router sits behind an [`ArcSwap`]: a request takes the current one with a lock-free load and keeps it until it
//! is answered, so a reload never changes the routes under a request in flight. A reload builds the whole new router
//! first and swaps only when it is good; a bad route file leaves the old routes serving.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::{Instant, SystemTime};

use arc_swap::{ArcSwap, Guard};
use std::time::Duration;

use super::watch::{WatchError, WatchHandle};

use crate::config::Config;
use crate::config::error::{LoadError, LoadErrors};
use crate::config::inputs::Inputs;
use crate::observe::journal::Journal;
use crate::observe::metrics::Metrics;
use crate::route::Router;
use crate::route::runtime::{self, RuntimeRoute};
use crate::route::state::RemoteState;

/// How long the route files must stay the same before a read that looks half-written (unparsable, or no routes
/// where there were some) counts: longer than the pause a tool makes between truncating a file and writing it.
pub const SETTLE: Duration = Duration::from_millis(50);

/// The longest the watcher reads a file again while it keeps changing: then the last read counts.
pub const SETTLE_MAX: Duration = Duration::from_secs(2);

/// A reload that failed; the previous routes kept serving.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ReloadFailure {
    /// Every problem found in the route file (there is at least one).
    pub errors: LoadErrors,
    /// When the reload failed.
    pub at: SystemTime,
}

/// The router in service, its generation, and where it came from.
#[derive(Debug)]
pub struct Live {
    router: ArcSwap<Router>,
    generation: AtomicU64,
    source: Option<PathBuf>,
    last_failure: Mutex<Option<ReloadFailure>>,
    /// When the routes in service were loaded.
    loaded_at: Mutex<SystemTime>,
    /// What the last load (good or bad) read, so the watcher can tell whether anything changed since.
    inputs: Mutex<Inputs>,
    /// Held for a whole reload: two at once (watcher, SIGHUP, admin) could otherwise swap in the older routes last.
    reloading: Mutex<()>,
    journal: Journal,
    reloaded: tokio::sync::Notify,
    metrics: Metrics,
    /// Reloads asked for by the admin API: one at a time, off the async workers.
    rounds: Mutex<Rounds>,
    /// The route file's config as last loaded, which runtime route changes build on (none for routes given as a
    /// string).
    config: Mutex<Option<Arc<Config>>>,
    /// The routes sent over `POST /__admin/routes`. Changed only while `reloading` is held.
    runtime: Mutex<Runtime>,
    /// The shared state store (`[server] state`), once the server has connected it; none keeps state in process.
    state: OnceLock<Arc<RemoteState>>,
    /// `--openapi FILE`: the OpenAPI document served after the routes, instead of `[server] openapi`.
    openapi_file: Option<PathBuf>,
    /// The OpenAPI request checks of the last good load, given to every router put in service.
    openapi: Mutex<Option<Arc<crate::route::openapi::Validation>>>,
}

/// The runtime routes, newest first, and the next ids.
#[derive(Debug, Default)]
struct Runtime {
    routes: Vec<RuntimeRoute>,
    next_id: u64,
    next_post: u64,
}

/// The OpenAPI request checks a load made, if any.
type OpenApi = Option<Arc<crate::route::openapi::Validation>>;

/// The result of one reload: the new generation, or why the old routes kept serving.
pub type ReloadResult = Result<u64, LoadErrors>;

/// The admin API's reloads: whether one runs, and the one that will run next (which every request that comes
/// meanwhile waits for).
#[derive(Debug, Default)]
struct Rounds {
    running: bool,
    next: Option<tokio::sync::watch::Sender<Option<ReloadResult>>>,
}

impl Live {
    /// Starts at generation 1 with `router`. `source` is the route file to re-read on reload (none for routes given
    /// as a string).
    pub fn new(router: Router, source: Option<PathBuf>) -> Self {
        let (router, metrics) = (Arc::new(router), Metrics::new());
        metrics.routes_loaded(&router);
        Live {
            router: ArcSwap::new(router),
            generation: AtomicU64::new(1),
            source,
            last_failure: Mutex::new(None),
            loaded_at: Mutex::new(SystemTime::now()),
            inputs: Mutex::new(Inputs::default()),
            reloading: Mutex::new(()),
            journal: Journal::default(),
            reloaded: tokio::sync::Notify::new(),
            metrics,
            rounds: Mutex::new(Rounds::default()),
            config: Mutex::new(None),
            runtime: Mutex::new(Runtime { routes: Vec::new(), next_id: 1, next_post: 1 }),
            state: OnceLock::new(),
            openapi_file: None,
            openapi: Mutex::new(None),
        }
    }

    /// Starts watching the route file and every file it reads: each change reloads the routes (see
    /// [`WatchHandle`]). Dropping the handle stops watching.
    pub fn watch(self: &Arc<Self>) -> Result<WatchHandle, WatchError> {
        super::watch::spawn(self.clone())
    }

    /// The server's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Loads the route file at `path` and starts serving it.
    pub fn from_file(path: &Path) -> Result<Self, LoadErrors> {
        Self::from_file_with_openapi(path, None)
    }

    /// Like [`Live::from_file`], serving the OpenAPI document `openapi` (`--openapi FILE`) after the routes instead
    /// of the one `[server] openapi` names; it is watched and reloaded with them.
    pub fn from_file_with_openapi(path: &Path, openapi: Option<&Path>) -> Result<Self, LoadErrors> {
        let mut inputs = Inputs::default();
        let checked = crate::config::check_file_tracked(path, &mut inputs)?;
        let (checked, validation) = crate::route::openapi::add_spec(checked, &mut inputs, openapi)?;
        let (mut router, config) = Router::load_layered(checked, &[])?;
        router.set_openapi(validation.clone());
        let mut live = Live::new(router, Some(path.to_path_buf()));
        live.openapi_file = openapi.map(Path::to_path_buf);
        *live.openapi.lock().unwrap_or_else(|e| e.into_inner()) = validation;
        *live.inputs.lock().unwrap_or_else(|e| e.into_inner()) = inputs;
        *live.config.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(config));
        Ok(live)
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

    /// Keeps the runtime state in `store` from now on (sequence positions, `count`, scenarios and the journal), shared
    /// with every replica that uses the same store and prefix; the shared journal names this one `replica`. Set
    /// once, at start, on a tokio runtime: a second call returns false and changes nothing.
    pub fn install_state(&self, store: Arc<RemoteState>, replica: String) -> bool {
        let capacity = self.router.load().server().journal;
        if self.state.set(Arc::clone(&store)).is_err() {
            return false;
        }
        if capacity > 0 {
            self.journal.share(store, replica, capacity);
        }
        true
    }

    /// The shared state store, when one is installed.
    pub fn state(&self) -> Option<&Arc<RemoteState>> {
        self.state.get()
    }

    /// The requests received and the routes' coverage; it outlives reloads.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// Completes once the routes have reached `generation` (at once if they already have); returns the generation.
    pub async fn wait_for_generation(&self, generation: u64) -> u64 {
        loop {
            // Registered before the check, so that a swap between the check and the await is not missed.
            let notified = self.reloaded.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let now = self.generation();
            if now >= generation {
                return now;
            }
            notified.await;
        }
    }

    /// The route file being served, if any.
    pub fn source(&self) -> Option<&Path> {
        self.source.as_deref()
    }

    /// The error of the last failed reload, cleared by the next good one.
    pub fn last_error(&self) -> Option<String> {
        self.last_failure().map(|f| f.errors.to_string())
    }

    /// The last failed reload (its errors and when), cleared by the next good one.
    pub fn last_failure(&self) -> Option<ReloadFailure> {
        self.last_failure.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// When the routes in service were loaded (at start, or by the last good reload).
    pub fn loaded_at(&self) -> SystemTime {
        *self.loaded_at.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Puts `router` in service and returns the new generation. Routes whose definition did not change keep their
    /// counters and sequence positions.
    pub fn swap(&self, router: Router) -> u64 {
        let (generation, old) = self.replace(router, true);
        free_later(old);
        generation
    }

    /// Like [`Live::swap`], handing back the old router so that the caller chooses when to free it.
    /// `loaded`: the route file was (re)loaded, so the last reload failure is cleared; a change of the runtime
    /// routes keeps it (the file's error still stands).
    fn replace(&self, mut router: Router, loaded: bool) -> (u64, Arc<Router>) {
        router.adopt_state(&self.router.load());
        router.set_openapi(self.openapi.lock().unwrap_or_else(|e| e.into_inner()).clone());
        let router = Arc::new(router);
        self.metrics.routes_loaded(&router);
        let old = self.router.swap(router);
        if loaded {
            *self.last_failure.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
        *self.loaded_at.lock().unwrap_or_else(|e| e.into_inner()) = SystemTime::now();
        let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        self.reloaded.notify_waiters();
        (generation, old)
    }

    /// What the last load read: the files and include patterns the routes depend on, with their content hashes.
    pub fn inputs(&self) -> Inputs {
        self.inputs.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Re-reads the route file and swaps in the result. On error the old routes keep serving, and the error is
    /// returned, logged, and remembered for the admin API. A file that now has no routes, where the routes in
    /// service had some, is refused the same way unless it says so (`route = []`): an empty file is far more often
    /// a save caught half-way, or a mistake, than a wish to serve nothing.
    pub fn reload(&self) -> Result<u64, LoadErrors> {
        let _reloading = self.reloading.lock().unwrap_or_else(|e| e.into_inner());
        self.reload_locked(false)
    }

    /// Reloads like [`Live::reload`] on a thread of its own and waits for the result, for up to `wait`; `None` when
    /// the reload is still running then (a route file on a hung mount, a FIFO nobody writes).
    ///
    /// The reload never runs on the async workers: it reads files and may block for as long as the file system
    /// does. Requests that come while a reload runs do not start one each: they share the next reload, which
    /// starts when the running one ends and reads the files as they are then. The thread is detached (not tokio's
    /// blocking pool), so that a reload stuck in a read cannot keep the process from exiting.
    pub async fn reload_shared(self: &Arc<Self>, wait: Duration) -> Option<ReloadResult> {
        let mut rx = self.join_round();
        match tokio::time::timeout(wait, rx.wait_for(Option::is_some)).await {
            Ok(Ok(result)) => result.clone(),
            _ => None,
        }
    }

    /// Joins the next reload, starting it if none is running.
    fn join_round(self: &Arc<Self>) -> tokio::sync::watch::Receiver<Option<ReloadResult>> {
        let mut rounds = self.rounds.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(next) = &rounds.next {
            return next.subscribe();
        }
        let (tx, rx) = tokio::sync::watch::channel(None);
        if rounds.running {
            rounds.next = Some(tx);
            return rx;
        }
        rounds.running = true;
        drop(rounds);
        let live = self.clone();
        let started = std::thread::Builder::new().name("hotroute-reload".into()).spawn(move || live.run_rounds(tx));
        if let Err(e) = started {
            self.rounds.lock().unwrap_or_else(|e| e.into_inner()).running = false;
            let path = self.source.clone().unwrap_or_default();
            let error = LoadError::file(&path, format!("cannot start a thread to reload the routes: {e}"), "try again");
            let (tx, rx) = tokio::sync::watch::channel(Some(Err(LoadErrors(vec![error]))));
            drop(tx);
            return rx;
        }
        rx
    }

    /// Runs reloads until no one waits for another.
    fn run_rounds(&self, mut tx: tokio::sync::watch::Sender<Option<ReloadResult>>) {
        loop {
            tx.send_replace(Some(self.reload()));
            let mut rounds = self.rounds.lock().unwrap_or_else(|e| e.into_inner());
            match rounds.next.take() {
                Some(next) => tx = next,
                None => {
                    rounds.running = false;
                    return;
                }
            }
        }
    }

    /// Reloads like [`Live::reload`] only if a file the routes were loaded from (route file, included files, body
    /// files, include pattern matches) changed since the last load; `None` when nothing did.
    ///
    /// Meant for the file watcher, right after a change: a read that fails to parse or finds no routes is taken as
    /// a save still under way (`cat new.toml > routes.toml` truncates first, then writes), and the files are read
    /// again until they stay the same for [`SETTLE`] (at most [`SETTLE_MAX`]) before the result counts.
    pub fn reload_if_changed(&self) -> Option<Result<u64, LoadErrors>> {
        let _reloading = self.reloading.lock().unwrap_or_else(|e| e.into_inner());
        let mut inputs = self.inputs.lock().unwrap_or_else(|e| e.into_inner()).clone();
        // Routes built in memory record no inputs: then any event is worth a reload.
        let router = self.router.load();
        if !inputs.is_empty() && !inputs.changed_except(|path, bytes| router.wrote(path, bytes)) {
            // What changed, if anything, is a resource's data written by the server: noted, no reload.
            *self.inputs.lock().unwrap_or_else(|e| e.into_inner()) = inputs;
            return None;
        }
        Some(self.reload_locked(true))
    }

    /// Reads and builds the routes; with `settle`, reads again while what was read looks like a save in progress.
    fn load_settled(&self, path: &Path, settle: bool) -> (Inputs, Result<(Router, Config, OpenApi), LoadErrors>) {
        let limit = self.router.load().server().limits.max_route_file;
        let had_routes = self.file_routes() > 0;
        let runtime = self.runtime.lock().unwrap_or_else(|e| e.into_inner()).routes.clone();
        let started = Instant::now();
        loop {
            let mut inputs = Inputs::default();
            inputs.set_limit(limit);
            let loaded = crate::config::check_file_tracked(path, &mut inputs)
                .and_then(|checked| crate::route::openapi::add_spec(checked, &mut inputs, self.openapi_file.as_deref()))
                .and_then(|(checked, validation)| {
                    Router::load_layered(checked, &runtime).map(|(router, config)| (router, config, validation))
                });
            let suspicious = match &loaded {
                Err(_) => true,
                Ok((_, config, _)) => had_routes && config.routes.is_empty(),
            };
            if !settle || !suspicious || started.elapsed() >= SETTLE_MAX {
                return (inputs, loaded);
            }
            std::thread::sleep(SETTLE);
            // The same content a whole window later: the writer is done, and what was read is what was meant.
            if !inputs.changed() {
                return (inputs, loaded);
            }
            tracing::debug!("{} changed while it was read; reading it again", path.display());
        }
    }

    fn reload_locked(&self, settle: bool) -> Result<u64, LoadErrors> {
        let Some(path) = &self.source else {
            return Ok(self.generation());
        };
        let started = Instant::now();
        let (inputs, loaded) = self.load_settled(path, settle);
        let loaded = loaded.and_then(|(router, config, validation)| {
            let before = self.file_routes();
            if before == 0 || !config.routes.is_empty() || declares_no_routes(path, &inputs) {
                return Ok((router, config, validation));
            }
            let message = format!(
                "route file `{}` has no routes now (the routes in service have {before}); it looks empty or \
                 half-written",
                path.display()
            );
            let help = "if you mean to serve no routes, say so with `route = []`; otherwise save the file again";
            Err(LoadErrors(vec![LoadError::file(path, message, help)]))
        });
        *self.inputs.lock().unwrap_or_else(|e| e.into_inner()) = inputs;
        match loaded {
            Ok((router, config, validation)) => {
                *self.config.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(config));
                *self.openapi.lock().unwrap_or_else(|e| e.into_inner()) = validation;
                let n = router.routes().len();
                let ignored = self.router().server().start_only_changes(router.server());
                if !ignored.is_empty() {
                    let keys = ignored.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ");
                    tracing::warn!("[server] {keys} changed, but is read only at start: restart hotroute to apply it");
                }
                let (generation, old) = self.replace(router, true);
                self.metrics.reloaded(true);
                let ms = started.elapsed().as_secs_f64() * 1000.0;
                let routes = if n == 1 { "route" } else { "routes" };
                tracing::info!("reloaded {n} {routes} in {ms:.1} ms (generation {generation})");
                // Requests already use the new routes; freeing the old ones (tens of ms for a large file) is done
                // on another thread, so that it delays neither this reload's caller nor the next reload. Requests
                // still in flight on them keep them alive until done.
                free_later(old);
                Ok(generation)
            }
            Err(e) => {
                self.metrics.reloaded(false);
                // The log line has its own ERROR level: drop the text's `error: ` heading, so it reads once.
                let text = e.to_string();
                tracing::error!("{}\nkeeping the previous routes", text.strip_prefix("error: ").unwrap_or(&text));
                let failure = ReloadFailure { errors: e.clone(), at: SystemTime::now() };
                *self.last_failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(failure);
                Err(e)
            }
        }
    }
}

impl Live {
    /// How many routes the route file has (the runtime routes not counted).
    fn file_routes(&self) -> usize {
        match &*self.config.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(config) => config.routes.len(),
            None => self.router.load().routes().len(),
        }
    }

    /// Puts the runtime state back to its start: the journal emptied, coverage counts, sequence positions and
    /// `count` back to zero, every scenario in `"started"`. The routes stay.
    pub fn reset(&self) -> usize {
        let router = self.router();
        let cleared = self.journal.clear();
        self.journal.reset_coverage(&router);
        router.reset_counters();
        router.scenarios().reset();
        router.reset_resources();
        router.partitions().clear();
        cleared
    }

    /// Puts partition `id`'s state back to its start (`[server] isolate`): its sequences, scenarios and resource
    /// data start again on its next request, and its requests leave the journal. Other partitions are untouched.
    pub fn reset_partition(&self, id: &str) -> usize {
        self.router().partitions().reset(id);
        self.journal.clear_isolate(id)
    }

    /// Adds the routes of `text` (one or more `[[route]]` tables, checked like the route file) in front of every
    /// route: returns their ids and the new generation. Nothing changes on error.
    pub fn add_routes(&self, text: &str) -> Result<(Vec<u64>, u64), LoadErrors> {
        let _reloading = self.reloading.lock().unwrap_or_else(|e| e.into_inner());
        let base = self.source.as_deref().map(crate::config::base_dir_of).unwrap_or_else(|| ".".into());
        let (post, next_id, mut routes) = {
            let runtime = self.runtime.lock().unwrap_or_else(|e| e.into_inner());
            (runtime.next_post, runtime.next_id, runtime.routes.clone())
        };
        let added = runtime::check(text, &base, post, next_id)?;
        let ids: Vec<u64> = added.iter().map(|r| r.id).collect();
        // Newest first: a test's override wins over the routes sent before it.
        routes.splice(0..0, added);
        let generation = self.rebuild(routes)?;
        let mut runtime = self.runtime.lock().unwrap_or_else(|e| e.into_inner());
        runtime.next_post = post + 1;
        runtime.next_id = next_id + ids.len() as u64;
        Ok((ids, generation))
    }

    /// Removes the runtime route `id`: the new generation, or none when there is no such route.
    pub fn remove_route(&self, id: u64) -> Result<Option<u64>, LoadErrors> {
        let _reloading = self.reloading.lock().unwrap_or_else(|e| e.into_inner());
        let mut routes = self.runtime.lock().unwrap_or_else(|e| e.into_inner()).routes.clone();
        let before = routes.len();
        routes.retain(|r| r.id != id);
        if routes.len() == before {
            return Ok(None);
        }
        self.rebuild(routes).map(Some)
    }

    /// Removes every runtime route: how many there were, and the generation.
    pub fn remove_runtime_routes(&self) -> Result<(usize, u64), LoadErrors> {
        let _reloading = self.reloading.lock().unwrap_or_else(|e| e.into_inner());
        let n = self.runtime.lock().unwrap_or_else(|e| e.into_inner()).routes.len();
        if n == 0 {
            return Ok((0, self.generation()));
        }
        self.rebuild(Vec::new()).map(|generation| (n, generation))
    }

    /// Builds the route file's last good config with `routes` in front, swaps it in and keeps `routes`. Called with
    /// `reloading` held.
    fn rebuild(&self, routes: Vec<RuntimeRoute>) -> Result<u64, LoadErrors> {
        let config = self.config.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let Some(config) = config else {
            let message = "runtime routes need a server started from a route file, and this one was given its \
                           routes as a string";
            let help = "start it from a file (`hotroute routes.toml`, `MockServer::from_file`), or add the routes \
                        to the string";
            return Err(LoadErrors(vec![LoadError::file(Path::new(runtime::RUNTIME_SOURCE), message, help)]));
        };
        let router = Router::build_layered(&config, &routes)?;
        self.runtime.lock().unwrap_or_else(|e| e.into_inner()).routes = routes;
        let (generation, old) = self.replace(router, false);
        free_later(old);
        Ok(generation)
    }
}

/// Whether the route file at `path` says in so many words that it has no routes: a top-level `route` key (e.g.
/// `route = []`), or an `include` list. Read again, and believed only if it still holds what the load read.
fn declares_no_routes(path: &Path, inputs: &Inputs) -> bool {
    let Ok(bytes) = crate::config::inputs::read_bounded(path, inputs.limit()) else { return false };
    let Ok(text) = std::str::from_utf8(&bytes) else { return false };
    let Ok(table) = text.parse::<toml::Table>() else { return false };
    (table.contains_key("route") || table.contains_key("include")) && inputs.unchanged(path)
}

/// Drops `old` on a background thread: freeing a router of 10,000 routes takes tens of milliseconds of `free`, which
/// would otherwise lengthen every swap. One thread serves all [`Live`]s; if it cannot be started, `old` is dropped
/// here, as it would have been without it.
fn free_later(old: Arc<Router>) {
    static FREER: OnceLock<Option<mpsc::Sender<Arc<Router>>>> = OnceLock::new();
    let freer = FREER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Arc<Router>>();
        std::thread::Builder::new().name("hotroute-free".into()).spawn(move || rx.iter().for_each(drop)).ok()?;
        Some(tx)
    });
    match freer {
        // A send fails only if the thread is gone; the router then comes back in the error and is dropped here.
        Some(tx) => drop(tx.send(old)),
        None => drop(old),
    }
}
