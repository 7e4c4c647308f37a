//! Test helpers that talk to hotroute like an attacker would: raw bytes on a TCP socket, HTTP/1.1 responses read by
//! hand, HTTP/2 frames written and read by hand, and the real `hotroute` binary driven with signals.
#![allow(dead_code)]

#[path = "../common/listening.rs"]
mod listening;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use hotroute::{Live, ServeOptions, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout_at};

/// A server in this process, started with the options its route file's `[server]` table asks for.
pub struct Served {
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Served {
    /// Writes `toml` (and `files`, name and content) to a fresh folder and serves it with `ServeOptions::from_config`.
    pub async fn start(toml: &str, files: &[(&str, &[u8])]) -> Served {
        let dir = tempfile::tempdir().unwrap();
        for (name, content) in files {
            let p = dir.path().join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, content).unwrap();
        }
        let path = dir.path().join("routes.toml");
        std::fs::write(&path, toml).unwrap();
        let live = Arc::new(Live::from_file(&path).unwrap_or_else(|e| panic!("{e}")));
        let options = ServeOptions::from_config(live.router().server());
        let server = Server::bind("127.0.0.1:0".parse().unwrap(), live).await.unwrap().with_options(options);
        let addr = server.local_addr();
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(async move {
            server
                .serve(async {
                    rx.await.ok();
                })
                .await
                .unwrap();
        });
        Served { addr, dir, stop: Some(tx), task }
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        (&mut self.task).await.unwrap();
    }
}

/// A response read off the wire.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// Header lines as sent, names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Reads one HTTP/1.1 response (hotroute always sends a content-length) from `s`, leaving later bytes unread.
/// `None` when the connection closes first or `deadline` passes.
pub async fn read_response(s: &mut TcpStream, deadline: Instant) -> Option<Response> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match timeout_at(deadline, s.read(&mut byte)).await {
            Ok(Ok(1)) => head.push(byte[0]),
            _ => return None,
        }
        assert!(head.len() < 64 * 1024, "response head too long");
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = text.split("\r\n");
    let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let len: usize = headers.iter().find(|(n, _)| n == "content-length").map_or(0, |(_, v)| v.parse().unwrap());
    let mut body = vec![0u8; len];
    match timeout_at(deadline, s.read_exact(&mut body)).await {
        Ok(Ok(_)) => Some(Response { status, headers, body }),
        _ => None,
    }
}

/// What a connection gave back before it closed (or before `deadline`).
#[derive(Debug)]
pub struct Drained {
    pub bytes: Vec<u8>,
    /// The server closed the connection (EOF or reset) before the deadline.
    pub closed: bool,
}

impl Drained {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

/// Reads until the server closes the connection or `deadline` passes.
pub async fn drain(s: &mut TcpStream, deadline: Instant) -> Drained {
    let mut bytes = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match timeout_at(deadline, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Drained { bytes, closed: true },
            Ok(Ok(n)) => bytes.extend_from_slice(&buf[..n]),
            Err(_) => return Drained { bytes, closed: false },
        }
    }
}

/// Sends `request` on a fresh connection and reads until the server closes it or `wait` passes.
pub async fn exchange(addr: SocketAddr, request: &[u8], wait: Duration) -> Drained {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let _ = s.write_all(request).await;
    drain(&mut s, Instant::now() + wait).await
}

/// One GET on a fresh connection; the response, or a panic naming what went wrong.
pub async fn get(addr: SocketAddr, path: &str) -> Response {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    read_response(&mut s, Instant::now() + Duration::from_secs(10)).await.expect("no response to a plain GET")
}

/// Sends `body` in `chunk`-sized HTTP/1.1 chunks of a POST to `path` (up to `total` bytes) while watching for a
/// response. Returns the response (if one came) and how many body bytes were written before it did.
pub async fn stream_post(addr: SocketAddr, path: &str, total: usize, chunk: usize) -> (Option<Response>, usize) {
    let s = TcpStream::connect(addr).await.unwrap();
    let (mut rd, mut wr) = s.into_split();
    let head = format!("POST {path} HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
    wr.write_all(head.as_bytes()).await.unwrap();
    let sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = sent.clone();
    let writer = tokio::spawn(async move {
        let mut frame = format!("{chunk:x}\r\n").into_bytes();
        frame.extend(std::iter::repeat_n(b'a', chunk));
        frame.extend_from_slice(b"\r\n");
        let mut written = 0;
        while written < total {
            if wr.write_all(&frame).await.is_err() {
                return;
            }
            written += chunk;
            counter.store(written, std::sync::atomic::Ordering::SeqCst);
        }
        let _ = wr.write_all(b"0\r\n\r\n").await;
        // Keep the write half open: dropping it would half-close the connection.
        std::future::pending::<()>().await;
    });
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut got = None;
    while !head.ends_with(b"\r\n\r\n") {
        match timeout_at(deadline, rd.read(&mut byte)).await {
            Ok(Ok(1)) => head.push(byte[0]),
            _ => break,
        }
    }
    let at_response = sent.load(std::sync::atomic::Ordering::SeqCst);
    if head.ends_with(b"\r\n\r\n") {
        let text = String::from_utf8_lossy(&head).into_owned();
        let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let headers = text
            .split("\r\n")
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        got = Some(Response { status, headers, body: Vec::new() });
    }
    writer.abort();
    (got, at_response)
}

/// The real `hotroute` binary, serving a route file on a free port.
pub struct Bin {
    pub child: Child,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
}

impl Bin {
    /// Writes `toml` to a fresh folder and starts `hotroute --port 0 --no-watch` on it; waits for its first stdout line.
    pub fn start(toml: &str) -> Bin {
        let dir = tempfile::tempdir().unwrap();
        let routes = dir.path().join("routes.toml");
        std::fs::write(&routes, toml).unwrap();
        Self::start_in(dir, &routes, &[], Stdio::inherit())
    }

    /// Like [`Bin::start`], with more arguments and stderr sent to `stderr`.
    pub fn start_with(toml: &str, args: &[&str], stderr: Stdio) -> Bin {
        let dir = tempfile::tempdir().unwrap();
        let routes = dir.path().join("routes.toml");
        std::fs::write(&routes, toml).unwrap();
        Self::start_in(dir, &routes, args, stderr)
    }

    fn start_in(dir: tempfile::TempDir, routes: &Path, args: &[&str], stderr: Stdio) -> Bin {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hotroute"));
        cmd.arg(routes)
            .args(["--port", "0", "--no-watch", "--log-level", "warn"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(stderr);
        #[cfg(target_os = "linux")]
        {
            use std::os::unix::process::CommandExt;
            // If this test process dies (a failed test can abort it), the server goes with it instead of lingering.
            // SAFETY: prctl is async-signal-safe and touches nothing of the parent's state.
            unsafe {
                cmd.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
        }
        let mut child = cmd.spawn().unwrap();
        let addr = listening::read_address(&mut child).unwrap_or_else(|line| panic!("unexpected first line: {line:?}"));
        Bin { child, addr, dir }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        // SAFETY: kill only sends a signal to our own child process.
        assert_eq!(unsafe { libc::kill(self.pid(), libc::SIGTERM) }, 0);
    }

    /// Waits up to `wait` for the process to exit; its exit code, or `None` if it is still running.
    pub async fn wait_exit(&mut self, wait: Duration) -> Option<i32> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status.code().unwrap_or(-1));
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// A figure from `/proc/PID/status` in KiB, e.g. `VmHWM` (peak resident memory).
    pub fn proc_status_kib(&self, key: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let line = status.lines().find(|l| l.starts_with(&format!("{key}:"))).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }
}

impl Drop for Bin {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Waits until connecting to `addr` is refused (the listener is closed); false if it still accepts after `wait`.
pub async fn until_refused(addr: SocketAddr, wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        match TcpStream::connect(addr).await {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return true,
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
    false
}

/// Raises this test process's open-file soft limit (tests that hold many sockets need both ends' descriptors).
pub fn raise_fd_limit(need: u64) {
    let got = hotroute::raise_fd_limit().unwrap();
    assert!(got >= need, "this test needs {need} open files but the hard limit is {got}; raise it with `ulimit -Hn`");
}

/// HTTP/2 frames, by hand.
pub mod h2 {
    pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    pub const DATA: u8 = 0x0;
    pub const HEADERS: u8 = 0x1;
    pub const SETTINGS: u8 = 0x4;
    pub const PING: u8 = 0x6;
    pub const GOAWAY: u8 = 0x7;
    pub const RST_STREAM: u8 = 0x3;
    pub const WINDOW_UPDATE: u8 = 0x8;
    pub const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;
    pub const SETTINGS_INITIAL_WINDOW_SIZE: u16 = 0x4;

    /// A SETTINGS frame with these (identifier, value) pairs.
    pub fn settings(pairs: &[(u16, u32)]) -> Vec<u8> {
        let payload: Vec<u8> =
            pairs.iter().flat_map(|(id, v)| [id.to_be_bytes().as_slice(), &v.to_be_bytes()].concat()).collect();
        frame(SETTINGS, 0, 0, &payload)
    }

    /// A PING frame (not an ACK).
    pub fn ping(n: u64) -> Vec<u8> {
        frame(PING, 0, 0, &n.to_be_bytes())
    }
    pub const END_STREAM: u8 = 0x1;
    pub const END_HEADERS: u8 = 0x4;
    pub const ACK: u8 = 0x1;

    /// One frame: 24-bit length, type, flags, stream id, payload.
    pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = payload.len() as u32;
        let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
        f.extend_from_slice(&stream.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    /// An HPACK header block without Huffman or dynamic table: `:method` and `:scheme` from the static table,
    /// `:path` and `:authority` as literals with indexed names.
    pub fn request_headers(method_post: bool, path: &str) -> Vec<u8> {
        let mut b = vec![if method_post { 0x83 } else { 0x82 }, 0x86];
        for (index, value) in [(4u8, path), (1u8, "t")] {
            assert!(value.len() < 127);
            b.push(index); // literal without indexing, indexed name (4-bit prefix)
            b.push(value.len() as u8);
            b.extend_from_slice(value.as_bytes());
        }
        b
    }

    /// Splits `buf` into complete frames (type, flags, stream, payload), leaving an incomplete tail.
    pub fn parse(buf: &mut Vec<u8>) -> Vec<(u8, u8, u32, Vec<u8>)> {
        let mut out = Vec::new();
        loop {
            if buf.len() < 9 {
                return out;
            }
            let len = (usize::from(buf[0]) << 16) | (usize::from(buf[1]) << 8) | usize::from(buf[2]);
            if buf.len() < 9 + len {
                return out;
            }
            let stream = u32::from_be_bytes([buf[5], buf[6], buf[7], buf[8]]) & 0x7fff_ffff;
            out.push((buf[3], buf[4], stream, buf[9..9 + len].to_vec()));
            buf.drain(..9 + len);
        }
    }
}

/// Sends one HTTP/2 request (prior knowledge) with `block` as its HPACK header block and no body, and returns the
/// frames the server sent until stream 1 ended, the connection closed, or `wait` passed.
pub async fn h2_exchange(addr: SocketAddr, block: &[u8], wait: Duration) -> Vec<(u8, u8, u32, Vec<u8>)> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut out = h2::PREFACE.to_vec();
    out.extend(h2::frame(h2::SETTINGS, 0, 0, &[]));
    out.extend(h2::frame(h2::HEADERS, h2::END_HEADERS | h2::END_STREAM, 1, block));
    s.write_all(&out).await.unwrap();
    let deadline = Instant::now() + wait;
    let (mut buf, mut frames) = (Vec::new(), Vec::new());
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        for f in h2::parse(&mut buf) {
            if f.0 == h2::SETTINGS && f.1 & h2::ACK == 0 {
                let _ = s.write_all(&h2::frame(h2::SETTINGS, h2::ACK, 0, &[])).await;
            }
            let done = f.2 == 1 && f.1 & h2::END_STREAM != 0 && (f.0 == h2::DATA || f.0 == h2::HEADERS);
            frames.push(f);
            if done {
                return frames;
            }
        }
        match timeout_at(deadline, s.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => return frames,
        }
    }
}

/// The body of stream 1: its DATA frames, joined.
pub fn h2_body(frames: &[(u8, u8, u32, Vec<u8>)]) -> String {
    let data: Vec<u8> = frames.iter().filter(|f| f.0 == h2::DATA && f.2 == 1).flat_map(|f| f.3.clone()).collect();
    String::from_utf8_lossy(&data).into_owned()
}
