//! hotroute as a mock API in Rust tests: [`MockServer`] (its documentation has the example) and [`expect::Expect`].
//!
//! Layer: the top; uses the serving layer as a user would.

pub(crate) mod expect;

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;

use crate::config::LoadErrors;
use crate::mock::expect::{Expect, VerifyError};
use crate::observe::journal::{Coverage, RecordedRequest};
use crate::reload::Live;
use crate::route::Router;
use crate::serve::ServeError;
use crate::serve::{ServeOptions, Server};

/// The name that load errors and route locations give to routes passed as a string, e.g. `mock.toml:3`.
pub const STRING_SOURCE: &str = "mock.toml";

/// How long dropping a server waits for requests still in flight before it closes their connections.
pub const DROP_GRACE: Duration = Duration::from_secs(1);

/// How long [`MockServer::wait_for_generation`] waits before it gives up.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(10);

/// Why a mock server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MockError {
    /// The routes do not load; the message points at the line.
    #[error("{0}")]
    Load(#[from] LoadErrors),
    /// No port could be bound on 127.0.0.1.
    #[error("{0}")]
    Serve(#[from] ServeError),
    /// The server's thread or runtime could not be started (the process is out of threads or file descriptors).
    #[error(
        "cannot start the mock server's thread: {0}\n  help: the process may be out of threads or file descriptors"
    )]
    Thread(std::io::Error),
    /// The route file could not be watched.
    #[error("{0}")]
    Watch(#[from] crate::reload::watch::WatchError),
}

/// The routes did not reach a generation in time.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "the routes did not reach generation {wanted} within {waited:?}: they are at generation {generation}{}",
    match last_error { Some(e) => format!(", and the last reload failed:\n{e}"), None => String::new() }
)]
pub struct WaitError {
    /// The generation waited for.
    pub wanted: u64,
    /// The generation reached.
    pub generation: u64,
    /// How long it waited.
    pub waited: Duration,
    /// The error of the last failed reload, if any: often the reason.
    pub last_error: Option<String>,
}

/// hotroute as a mock API in Rust tests: [`MockServer`] serves a route file (or a TOML string) on a free port of
/// 127.0.0.1, records what it receives, and checks expectations on it.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use hotroute::{Expect, MockServer};
/// let server = MockServer::start(r#"
///     [[route]]
///     path = "/users/{id}"
///     template = true
///     json = { id = "{{ path.id }}" }
/// "#).await?;
/// let user: serde_json::Value = reqwest::get(server.url("/users/7")).await?.json().await?;
/// assert_eq!(user["id"], "7");
/// server.verify(Expect::get("/users/7").once());
/// assert_eq!(server.requests()[0].route().unwrap().path, "/users/{id}");
/// # Ok(()) }
/// ```
///
/// The server runs on a thread of its own with its own single-threaded tokio runtime, as wiremock-rs does, so it
/// answers whatever runtime the test uses: `#[tokio::test]` on one thread or many, another executor, or none (use
/// the `_blocking` constructors there). Each server has its own port, routes and journal, so tests run in parallel
/// without seeing each other's requests. Dropping the server stops it and frees its port before `drop` returns.
#[derive(Debug)]
pub struct MockServer {
    addr: SocketAddr,
    live: Arc<Live>,
    runtime: tokio::runtime::Handle,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    watcher: Option<crate::reload::watch::WatchHandle>,
}

impl MockServer {
    /// Serves the routes in `toml` (route-file syntax) on a free port of 127.0.0.1 until dropped. `file = ...` bodies
    /// are read relative to the current folder; `[server] listen` is ignored. Errors name the text `mock.toml`.
    pub async fn start(toml: &str) -> Result<MockServer, MockError> {
        MockServer::start_blocking(toml)
    }

    /// Like [`MockServer::start`], for code without an async runtime (it does not block for long: it binds a port
    /// and starts a thread).
    pub fn start_blocking(toml: &str) -> Result<MockServer, MockError> {
        let router = Router::load_str(toml, Path::new(STRING_SOURCE), Path::new("."))?;
        MockServer::launch(Live::new(router, None))
    }

    /// Serves the route file at `path`. The file is not watched unless [`MockServer::watch`] is called: without it,
    /// call [`MockServer::reload`] after editing the file.
    pub async fn from_file(path: impl AsRef<Path>) -> Result<MockServer, MockError> {
        MockServer::from_file_blocking(path)
    }

    /// Like [`MockServer::from_file`], for code without an async runtime.
    pub fn from_file_blocking(path: impl AsRef<Path>) -> Result<MockServer, MockError> {
        MockServer::launch(Live::from_file(path.as_ref())?)
    }

    fn launch(live: Live) -> Result<MockServer, MockError> {
        let live = Arc::new(live);
        let addr = SocketAddr::from(([127, 0, 0, 1], 0));
        let listener =
            std::net::TcpListener::bind(addr).map_err(|source| ServeError::Bind { addr: addr.to_string(), source })?;
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(MockError::Thread)?;
        // Entering (unlike `block_on`) is allowed inside another runtime; the socket must be registered with ours.
        let server = {
            let _context = runtime.enter();
            Server::from_listener(listener, live.clone())?
        };
        // The route file's `[server]` settings apply (limits, admin, journal) as in the binary; only the grace period
        // is the mock's own, so that dropping a server never waits long.
        let mut options = ServeOptions::from_config(live.router().server());
        options.limits.grace = options.limits.grace.min(DROP_GRACE);
        let server = server.with_options(options);
        let addr = server.local_addr();
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("hotroute-mock-{}", addr.port()))
            .spawn(move || {
                // A dropped sender stops the server too.
                let shutdown = async {
                    let _ = stopped.await;
                };
                if let Err(e) = runtime.block_on(server.serve(shutdown)) {
                    tracing::error!("mock server on {addr} stopped: {e}");
                }
            })
            .map_err(MockError::Thread)?;
        Ok(MockServer { addr, live, runtime: handle, stop: Some(stop), thread: Some(thread), watcher: None })
    }

    /// Reloads the routes whenever the route file (or a file it includes or reads) changes, like the `hotroute`
    /// binary does, until the server is dropped. Pair an edit with [`MockServer::wait_for_generation`].
    pub fn watch(mut self) -> Result<MockServer, MockError> {
        if self.watcher.is_none() {
            self.watcher = Some(self.live.watch()?);
        }
        Ok(self)
    }

    /// The address served, `127.0.0.1:PORT`.
    pub fn address(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL, `http://127.0.0.1:PORT`.
    pub fn uri(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The URL of `path` on this server, e.g. `url("/users/7")` is `http://127.0.0.1:PORT/users/7`.
    pub fn url(&self, path: &str) -> String {
        let slash = if path.starts_with('/') { "" } else { "/" };
        format!("http://{}{slash}{path}", self.addr)
    }

    /// The requests received, oldest first (admin requests excluded). The journal keeps the last 1,000 by default;
    /// `[server] journal = N` changes that.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.live.journal().requests()
    }

    /// How many recorded requests `expect` matches (its count is not checked).
    pub fn received(&self, expect: &Expect) -> usize {
        self.requests().iter().filter(|r| expect.matches(r)).count()
    }

    /// Checks `expect` against the requests received so far. The error lists every request received and why it did
    /// not match.
    pub fn check(&self, expect: &Expect) -> Result<usize, VerifyError> {
        expect.check(&self.requests(), self.live.journal().dropped())
    }

    /// Asserts `expect`: panics (failing the test) with a message that lists every request received and why it did
    /// not match. Use [`MockServer::check`] to get the error instead.
    #[track_caller]
    pub fn verify(&self, expect: Expect) {
        if let Err(e) = self.check(&expect) {
            panic!("{e}");
        }
    }

    /// Replaces the routes with those in `toml`; returns the new generation. On error the old routes keep serving.
    pub fn reload_str(&self, toml: &str) -> Result<u64, LoadErrors> {
        let router = Router::load_str(toml, Path::new(STRING_SOURCE), Path::new("."))?;
        Ok(self.live.swap(router))
    }

    /// Re-reads the route file given to [`MockServer::from_file`]; returns the new generation. On error the old
    /// routes keep serving. For a server started from a string, there is nothing to re-read: the generation stays.
    pub fn reload(&self) -> Result<u64, LoadErrors> {
        self.live.reload()
    }

    /// Clears the journal, the coverage counts, and every route's `count` (so sequences start over), and puts
    /// every scenario back in `"started"`: what `POST /__admin/reset` does.
    pub fn reset(&self) {
        self.live.reset();
    }

    /// Which routes answered no request, and which requests no route answered.
    pub fn coverage(&self) -> Coverage {
        self.live.journal().coverage(&self.live.router())
    }

    /// How many times the routes have been loaded: 1 at start, one more per successful reload.
    pub fn generation(&self) -> u64 {
        self.live.generation()
    }

    /// The route file being served, for a server started with [`MockServer::from_file`].
    pub fn source(&self) -> Option<PathBuf> {
        self.live.source().map(Path::to_path_buf)
    }

    /// The live routes, journal and generation the server answers from.
    pub fn live(&self) -> &Arc<Live> {
        &self.live
    }

    /// Waits until the routes reach `generation` (e.g. after a reload started elsewhere), for up to
    /// 10 s. Works from any runtime: the waiting is done on the server's own runtime.
    pub async fn wait_for_generation(&self, generation: u64) -> Result<u64, WaitError> {
        self.wait_for_generation_timeout(generation, DEFAULT_WAIT).await
    }

    /// Like [`MockServer::wait_for_generation`], giving up after `timeout`.
    pub fn wait_for_generation_timeout(
        &self,
        generation: u64,
        timeout: Duration,
    ) -> impl Future<Output = Result<u64, WaitError>> + Send + 'static {
        let (tx, rx) = oneshot::channel();
        self.spawn_wait(generation, timeout, move |r| {
            let _ = tx.send(r);
        });
        let live = self.live.clone();
        async move { rx.await.unwrap_or_else(|_| Err(wait_error(&live, generation, timeout))) }
    }

    /// Like [`MockServer::wait_for_generation_timeout`], blocking the calling thread.
    pub fn wait_for_generation_blocking(&self, generation: u64, timeout: Duration) -> Result<u64, WaitError> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.spawn_wait(generation, timeout, move |r| {
            let _ = tx.send(r);
        });
        rx.recv().unwrap_or_else(|_| Err(wait_error(&self.live, generation, timeout)))
    }

    fn spawn_wait(
        &self,
        generation: u64,
        timeout: Duration,
        done: impl FnOnce(Result<u64, WaitError>) + Send + 'static,
    ) {
        let live = self.live.clone();
        // If the server thread has stopped, the task is dropped with `done`, and the caller sees a closed channel.
        self.runtime.spawn(async move {
            let reached = tokio::time::timeout(timeout, live.wait_for_generation(generation)).await;
            done(reached.map_err(|_| wait_error(&live, generation, timeout)));
        });
    }
}

fn wait_error(live: &Live, wanted: u64, waited: Duration) -> WaitError {
    WaitError { wanted, generation: live.generation(), waited, last_error: live.last_error() }
}

impl Drop for MockServer {
    /// Stops accepting, gives requests in flight up to 1 s, and returns once the port is free.
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            // A panic on the server thread has been printed already; panicking again in drop would abort.
            let _ = thread.join();
        }
    }
}
