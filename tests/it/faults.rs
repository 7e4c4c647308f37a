//! `fault = "reset" | "close" | "garbage"`, as a real client sees them on the wire.

use crate::common;

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::Duration;

use common::{TestServer, client, load_error};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ROUTES: &str = r#"
[[route]]
path = "/reset"
fault = "reset"

[[route]]
path = "/close"
fault = "close"

[[route]]
path = "/garbage"
fault = "garbage"

[[route]]
path = "/slow-reset"
delay = "200ms"
fault = "reset"

[[route]]
path = "/recovers"
sequence = [{ fault = "reset" }, { fault = "close" }, { body = "ok" }]

[[route]]
path = "/ok"
body = "ok"
"#;

/// What a raw client reads after sending one request: the bytes, then how the stream ended.
async fn exchange(addr: SocketAddr, path: &str) -> (Vec<u8>, Result<(), ErrorKind>) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let end = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) => return Ok(()),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) => return Err(e.kind()),
            }
        }
    })
    .await
    .expect("the server neither answered nor closed the connection");
    (out, end)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_sends_a_tcp_reset() {
    let s = TestServer::start(ROUTES).await;
    let (bytes, end) = exchange(s.addr, "/reset").await;
    assert!(bytes.is_empty(), "no answer before the reset: {bytes:?}");
    assert_eq!(end, Err(ErrorKind::ConnectionReset));
    let err = client().get(s.url("/reset")).send().await.unwrap_err();
    assert!(format!("{err:?}").to_lowercase().contains("reset"), "{err:?}");
    assert_eq!(client().get(s.url("/ok")).send().await.unwrap().text().await.unwrap(), "ok");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_ends_the_connection_without_an_answer() {
    let s = TestServer::start(ROUTES).await;
    let (bytes, end) = exchange(s.addr, "/close").await;
    assert!(bytes.is_empty(), "{bytes:?}");
    assert_eq!(end, Ok(()), "a clean end of stream (FIN), not a reset");
    let err = client().get(s.url("/close")).send().await.unwrap_err();
    let text = format!("{err:?}").to_lowercase();
    assert!(text.contains("incomplete") || text.contains("closed"), "{text}");
    assert_eq!(client().get(s.url("/ok")).send().await.unwrap().status(), 200);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_sends_bytes_that_are_not_http() {
    let s = TestServer::start(ROUTES).await;
    let (bytes, end) = exchange(s.addr, "/garbage").await;
    assert_eq!(bytes, hotroute::__internals::GARBAGE);
    assert!(!bytes.starts_with(b"HTTP/"));
    assert_eq!(end, Ok(()));
    let err = client().get(s.url("/garbage")).send().await.unwrap_err();
    let text = format!("{err:?}").to_lowercase();
    assert!(text.contains("parse") || text.contains("invalid"), "{text}");
    assert_eq!(client().get(s.url("/ok")).send().await.unwrap().status(), 200);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_after_a_delay_and_a_service_that_recovers() {
    let s = TestServer::start(ROUTES).await;
    let (bytes, end) = exchange(s.addr, "/slow-reset").await;
    assert!(bytes.is_empty());
    assert_eq!(end, Err(ErrorKind::ConnectionReset));
    // Fails twice (reset, then close), then recovers.
    assert_eq!(exchange(s.addr, "/recovers").await.1, Err(ErrorKind::ConnectionReset));
    assert_eq!(exchange(s.addr, "/recovers").await, (Vec::new(), Ok(())));
    assert_eq!(client().get(s.url("/recovers")).send().await.unwrap().text().await.unwrap(), "ok");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_on_a_keep_alive_connection_ends_only_that_connection() {
    let s = TestServer::start(ROUTES).await;
    // First a good answer on the connection, then the fault on the same connection.
    let mut conn = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    conn.write_all(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = conn.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200 OK"));
    conn.write_all(b"GET /close HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let n = tokio::time::timeout(Duration::from_secs(10), conn.read(&mut buf)).await.unwrap().unwrap();
    assert_eq!(n, 0, "closed without an answer: {:?}", &buf[..n]);

    // HTTP/2: the request fails, and a new connection is served.
    let h2 = reqwest::Client::builder().no_proxy().http2_prior_knowledge().build().unwrap();
    assert!(h2.get(s.url("/close")).send().await.is_err());
    let h2 = reqwest::Client::builder().no_proxy().http2_prior_knowledge().build().unwrap();
    assert_eq!(h2.get(s.url("/ok")).send().await.unwrap().text().await.unwrap(), "ok");
    s.stop().await;
}

#[test]
fn an_unknown_fault_is_a_load_error() {
    let text = load_error("[[route]]\npath = \"/a\"\nfault = \"explode\"\n");
    assert!(text.contains("`explode` is not a fault") && text.contains("routes.toml:3:"), "{text}");
    assert!(text.contains("\"reset\""), "{text}");
}
