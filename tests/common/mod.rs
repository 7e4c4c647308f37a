//! Test helpers: a real hotroute server on 127.0.0.1:0 in this process, and a real HTTP client.
#![allow(dead_code)]

pub mod listening;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use hotroute::{Live, Server};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A server running on its own task; stopped (and awaited) by [`TestServer::stop`] or dropped with the runtime.
pub struct TestServer {
    pub addr: SocketAddr,
    pub live: Arc<Live>,
    pub dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl TestServer {
    /// Writes `toml` to `routes.toml` in a fresh temp folder and serves it.
    pub async fn start(toml: &str) -> TestServer {
        Self::start_with_files(toml, &[]).await
    }

    /// Like [`TestServer::start`], with extra files (name, content) written next to the route file first.
    pub async fn start_with_files(toml: &str, files: &[(&str, &str)]) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        for (name, content) in files {
            let p = dir.path().join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, content).unwrap();
        }
        let path = dir.path().join("routes.toml");
        std::fs::write(&path, toml).unwrap();
        let live = Arc::new(Live::from_file(&path).unwrap_or_else(|e| panic!("{e}")));
        let (addr, tx, task) = spawn_server(live.clone()).await;
        TestServer { addr, live, dir, stop: Some(tx), task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn routes_path(&self) -> PathBuf {
        self.dir.path().join("routes.toml")
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        (&mut self.task).await.unwrap();
    }
}

/// Serves `live` on a free port of 127.0.0.1 on a task of this runtime, until the sender is used or dropped.
pub async fn spawn_server(live: Arc<Live>) -> (SocketAddr, oneshot::Sender<()>, JoinHandle<()>) {
    let server = Server::bind("127.0.0.1:0".parse().unwrap(), live).await.unwrap();
    let addr = server.local_addr();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        server
            .serve(async {
                rx.await.ok();
            })
            .await
            .unwrap();
    });
    (addr, tx, task)
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

/// Sends raw bytes on a fresh connection and reads until the server closes it or `wait` passes.
pub async fn raw(addr: SocketAddr, request: &[u8], wait: std::time::Duration) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
