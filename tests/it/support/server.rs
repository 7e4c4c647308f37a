//! In-process servers: a thin layer over the shipped [`hotroute::MockServer`], which serves a route file with its
//! `[server]` settings like the binary does, on a free port of 127.0.0.1, on its own thread.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use hotroute::{Live, MockServer};

/// A route file (and the files next to it) in a fresh temp folder, served by a [`MockServer`] until stopped or
/// dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    pub live: Arc<Live>,
    pub dir: tempfile::TempDir,
    mock: Option<MockServer>,
}

impl TestServer {
    /// Writes `toml` to `routes.toml` in a fresh temp folder and serves it.
    pub async fn start(toml: &str) -> TestServer {
        TestServer::start_with(toml, &[]).await
    }

    /// Like [`TestServer::start`], with extra text files (name, content) written next to the route file first.
    pub async fn start_with_files(toml: &str, files: &[(&str, &str)]) -> TestServer {
        let files: Vec<(&str, &[u8])> = files.iter().map(|(n, c)| (*n, c.as_bytes())).collect();
        TestServer::start_with(toml, &files).await
    }

    /// Like [`TestServer::start`], with extra files (name, bytes) written next to the route file first.
    pub async fn start_with(toml: &str, files: &[(&str, &[u8])]) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        for (name, content) in files {
            let p = dir.path().join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, content).unwrap();
        }
        let path = dir.path().join("routes.toml");
        std::fs::write(&path, toml).unwrap();
        let mock = MockServer::from_file(&path).await.unwrap_or_else(|e| panic!("{e}"));
        TestServer { addr: mock.address(), live: mock.live().clone(), dir, mock: Some(mock) }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn routes_path(&self) -> PathBuf {
        self.dir.path().join("routes.toml")
    }

    /// The server underneath (journal, `verify`, `reload`...).
    pub fn mock(&self) -> &MockServer {
        self.mock.as_ref().unwrap()
    }

    /// Stops the server (requests in flight get up to a second, `MockServer`'s drop grace) and waits until the port is
    /// free.
    pub async fn stop(mut self) {
        let mock = self.mock.take();
        // Dropping a MockServer joins its thread: do that off this runtime's workers.
        tokio::task::spawn_blocking(move || drop(mock)).await.unwrap();
    }
}

/// [`TestServer`] under the name `tests/wire` gave it, whose `start` takes the files too.
pub struct Served(TestServer);

impl Served {
    /// Writes `toml` (and `files`, name and content) to a fresh folder and serves it.
    pub async fn start(toml: &str, files: &[(&str, &[u8])]) -> Served {
        Served(TestServer::start_with(toml, files).await)
    }

    pub async fn stop(self) {
        self.0.stop().await
    }
}

impl std::ops::Deref for Served {
    type Target = TestServer;
    fn deref(&self) -> &TestServer {
        &self.0
    }
}

/// An HTTP/1.1 client that talks to loopback directly.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// Checks `toml` as a route file in a temp folder and returns the error text (panics if it loads).
pub fn load_error(toml: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("routes.toml");
    std::fs::write(&path, toml).unwrap();
    match hotroute::Router::load_file(&path) {
        Ok(_) => panic!("expected a load error for:\n{toml}"),
        Err(e) => e.to_string(),
    }
}

/// Raises this test process's open-file soft limit (tests that hold many sockets need both ends' descriptors).
pub fn raise_fd_limit(need: u64) {
    let got = hotroute::raise_fd_limit().unwrap();
    assert!(got >= need, "this test needs {need} open files but the hard limit is {got}; raise it with `ulimit -Hn`");
}
