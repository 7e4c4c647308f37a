//! Raw HTTP/1.1 on a TCP socket, so that no client library hides what is on the wire: send bytes, read one response
//! by its content-length, or read until the server closes. Async (tokio) first; [`blocking`] for tests without a
//! runtime. HTTP/2 frames are in [`super::wire`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};

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

/// Parses a response head (status line and header lines, up to the blank line).
fn parse_head(head: &[u8]) -> Option<(u16, Vec<(String, String)>)> {
    let text = String::from_utf8_lossy(head).into_owned();
    let mut lines = text.split("\r\n");
    let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Some((status, headers))
}

fn content_length(headers: &[(String, String)]) -> usize {
    headers.iter().find(|(n, _)| n == "content-length").map_or(0, |(_, v)| v.parse().unwrap())
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
    let (status, headers) = parse_head(&head)?;
    let mut body = vec![0u8; content_length(&headers)];
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

/// Sends `request` on a fresh connection (a failed write is ignored: the server may close first) and reads until
/// the server closes it or `wait` passes.
pub async fn exchange(addr: SocketAddr, request: &[u8], wait: Duration) -> Drained {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let _ = s.write_all(request).await;
    drain(&mut s, Instant::now() + wait).await
}

/// Sends raw bytes on a fresh connection (they must all be written) and reads until the server closes it or `wait`
/// passes; the text received.
pub async fn raw(addr: SocketAddr, request: &[u8], wait: Duration) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    drain(&mut s, Instant::now() + wait).await.text()
}

/// One GET on a fresh connection; the response, or a panic naming what went wrong.
pub async fn get(addr: SocketAddr, path: &str) -> Response {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    read_response(&mut s, Instant::now() + Duration::from_secs(10)).await.expect("no response to a plain GET")
}

/// Sends `body` in `chunk`-sized HTTP/1.1 chunks of a POST to `path` (up to `total` bytes) while watching for a
/// response. Returns the response head (if one came) and how many body bytes were written before it did.
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

/// The same on std sockets, for tests without an async runtime. Every read is bounded by a 5 s socket timeout.
pub mod blocking {
    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpStream};
    use std::time::Duration;

    /// Sends `request` on a new connection and reads the whole response (the request must close the connection);
    /// the client's own address (as the server saw it) and the text.
    pub fn exchange(addr: SocketAddr, request: &str) -> (SocketAddr, String) {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        (s.local_addr().unwrap(), out)
    }

    /// `GET target` with `Connection: close`; the client's address and the whole response text.
    pub fn get(addr: SocketAddr, target: &str) -> (SocketAddr, String) {
        exchange(addr, &format!("GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"))
    }

    /// Reads one response with a content-length from a kept-alive connection, leaving later bytes unread; its head
    /// and body as text.
    pub fn read_response(s: &mut TcpStream) -> String {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            s.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
            assert!(head.len() < 64 * 1024, "response head too long");
        }
        let (_, headers) = super::parse_head(&head).expect("a response head");
        let mut body = vec![0; super::content_length(&headers)];
        s.read_exact(&mut body).unwrap();
        String::from_utf8(head).unwrap() + &String::from_utf8(body).unwrap()
    }
}
