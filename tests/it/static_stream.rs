//! Static folders against the real binary: file bodies are streamed, so many concurrent downloads of a large file
//! keep the server's memory small, and concurrent file reads do not reserve a huge stack per blocking thread.

use crate::support::bin::Bin;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Serves `dir/public` under `/files/` (`--threads 2`, as on a small machine).
fn start(dir: &Path) -> Bin {
    let routes = dir.join("routes.toml");
    std::fs::write(&routes, "[[route]]\npath = \"/files/{*rest}\"\ndir = \"public\"\n").unwrap();
    Bin::command().arg(&routes).args(["--port", "0", "--no-watch", "--log-level", "warn", "--threads", "2"]).start()
}

/// A folder `public` with a file of `len` bytes (sparse: it costs no disk).
fn folder_with_file(len: u64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("public")).unwrap();
    std::fs::File::create(dir.path().join("public/big.bin")).unwrap().set_len(len).unwrap();
    dir
}

/// GETs `/files/big.bin` over HTTP/1.1, reads the head and `first` body bytes, waits for `go`, then reads the rest;
/// returns the body length read.
async fn download(addr: SocketAddr, first: usize, go: tokio::sync::watch::Receiver<bool>) -> u64 {
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(b"GET /files/big.bin HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let mut head = Vec::new();
    let body_start = loop {
        let n = c.read(&mut buf).await.unwrap();
        assert!(n > 0, "the connection closed before the head ended");
        head.extend_from_slice(&buf[..n]);
        if let Some(at) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    assert!(head.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&head[..body_start]));
    let mut got = (head.len() - body_start) as u64;
    while got < first as u64 {
        let n = c.read(&mut buf).await.unwrap();
        assert!(n > 0);
        got += n as u64;
    }
    let mut go = go;
    go.wait_for(|g| *g).await.unwrap();
    loop {
        let n = c.read(&mut buf).await.unwrap();
        if n == 0 {
            return got;
        }
        got += n as u64;
    }
}

/// 40 clients download a 32 MiB file at once, all of them holding their download half-way for a while: the
/// server's peak resident memory stays under 64 MiB (reading each file whole took 40 x 32 MiB).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_downloads_of_a_large_file_are_streamed_in_bounded_memory() {
    const LEN: u64 = 32 << 20;
    let dir = folder_with_file(LEN);
    let server = start(dir.path());
    let (go_tx, go) = tokio::sync::watch::channel(false);
    let clients: Vec<_> = (0..40).map(|_| tokio::spawn(download(server.addr, 256 * 1024, go.clone()))).collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let held = server.proc_status_kib("VmHWM");
    go_tx.send(true).unwrap();
    for c in clients {
        assert_eq!(tokio::time::timeout(Duration::from_secs(120), c).await.expect("a download hung").unwrap(), LEN);
    }
    let peak = server.proc_status_kib("VmHWM");
    assert!(peak < 64 * 1024, "peak RSS {peak} KiB (while held: {held} KiB), over 64 MiB");
}

/// 150 concurrent GETs of a file: the server's virtual memory stays bounded (the blocking threads that read files
/// used to get the 256 MiB template stack each: 150 of them reserved tens of GiB).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_file_gets_keep_virtual_memory_bounded() {
    const LEN: u64 = 4 << 20;
    let dir = folder_with_file(LEN);
    let server = start(dir.path());
    let (go_tx, go) = tokio::sync::watch::channel(false);
    let clients: Vec<_> = (0..150).map(|_| tokio::spawn(download(server.addr, 64 * 1024, go.clone()))).collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    go_tx.send(true).unwrap();
    for c in clients {
        assert_eq!(tokio::time::timeout(Duration::from_secs(120), c).await.expect("a download hung").unwrap(), LEN);
    }
    let peak = server.proc_status_kib("VmPeak");
    assert!(peak < 4 << 20, "peak virtual memory {peak} KiB, over 4 GiB");
}
