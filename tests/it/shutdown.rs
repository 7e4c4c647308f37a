//! Shutdown of the real binary: SIGTERM during a slow request lets it finish, refuses new connections, and exits 0
//! within the grace period even if a client hangs.

use crate::wire;

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};
use wire::{Bin, drain, h2, read_response, until_refused};

const SLOW: &str = r#"
[[route]]
path = "/slow"
method = "POST"
body = "finished"
"#;

fn secs(n: u64) -> Instant {
    Instant::now() + Duration::from_secs(n)
}

/// Opens a POST /slow with a 10-byte body, sends 5 bytes, and returns once the handler is reading the body
/// (the server's `100 Continue` shows it).
async fn slow_request_in_flight(bin: &Bin) -> TcpStream {
    let mut c = TcpStream::connect(bin.addr).await.unwrap();
    c.write_all(b"POST /slow HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n").await.unwrap();
    let mut interim = [0u8; 25];
    timeout_at(secs(10), c.read_exact(&mut interim)).await.expect("no 100 Continue").unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    c.write_all(b"12345").await.unwrap();
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_a_slow_http1_request_finish_with_connection_close_and_refuses_new_connections() {
    let mut bin = Bin::start(&format!("[server]\ngrace = \"10s\"\n{SLOW}"));
    let mut c = slow_request_in_flight(&bin).await;
    bin.terminate();
    assert!(until_refused(bin.addr, Duration::from_secs(5)).await, "new connections still accepted after SIGTERM");
    assert!(bin.child.try_wait().unwrap().is_none(), "exited with a request in flight");

    c.write_all(b"67890").await.unwrap();
    let res = read_response(&mut c, secs(5)).await.expect("the in-flight request got no response");
    assert_eq!((res.status, res.text().as_str()), (200, "finished"));
    assert_eq!(res.header("connection"), Some("close"), "{:?}", res.headers);
    assert!(drain(&mut c, secs(5)).await.closed, "connection left open after the last response");
    assert_eq!(bin.wait_exit(Duration::from_secs(5)).await, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_sends_goaway_to_http2_and_lets_the_open_stream_finish() {
    let mut bin = Bin::start(&format!("[server]\ngrace = \"10s\"\n{SLOW}"));
    let mut c = TcpStream::connect(bin.addr).await.unwrap();
    let mut out = h2::PREFACE.to_vec();
    out.extend(h2::frame(h2::SETTINGS, 0, 0, &[]));
    c.write_all(&out).await.unwrap();

    // Frames as they come; answers SETTINGS and PING like a client must.
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    let mut seen: Vec<(u8, u8, u32, Vec<u8>)> = Vec::new();
    async fn pump(
        c: &mut TcpStream,
        buf: &mut Vec<u8>,
        chunk: &mut [u8],
        seen: &mut Vec<(u8, u8, u32, Vec<u8>)>,
        until: impl Fn(&[(u8, u8, u32, Vec<u8>)]) -> bool,
    ) -> bool {
        let deadline = secs(10);
        loop {
            for f in h2::parse(buf) {
                if f.0 == h2::SETTINGS && f.1 & h2::ACK == 0 {
                    let _ = c.write_all(&h2::frame(h2::SETTINGS, h2::ACK, 0, &[])).await;
                }
                if f.0 == h2::PING && f.1 & h2::ACK == 0 {
                    let _ = c.write_all(&h2::frame(h2::PING, h2::ACK, 0, &f.3)).await;
                }
                seen.push(f);
            }
            if until(seen) {
                return true;
            }
            match timeout_at(deadline, c.read(chunk)).await {
                Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                _ => return until(seen),
            }
        }
    }
    // The server's SETTINGS show that it serves this connection.
    assert!(pump(&mut c, &mut buf, &mut chunk, &mut seen, |s| s.iter().any(|f| f.0 == h2::SETTINGS)).await);
    let mut req = h2::frame(h2::HEADERS, h2::END_HEADERS, 1, &h2::request_headers(true, "/slow"));
    req.extend(h2::frame(h2::DATA, 0, 1, b"12345"));
    c.write_all(&req).await.unwrap();

    bin.terminate();
    let goaway = |s: &[(u8, u8, u32, Vec<u8>)]| s.iter().any(|f| f.0 == h2::GOAWAY);
    assert!(pump(&mut c, &mut buf, &mut chunk, &mut seen, goaway).await, "no GOAWAY after SIGTERM: {seen:?}");
    assert!(until_refused(bin.addr, Duration::from_secs(5)).await, "new connections still accepted after SIGTERM");

    c.write_all(&h2::frame(h2::DATA, h2::END_STREAM, 1, b"67890")).await.unwrap();
    let ended = |s: &[(u8, u8, u32, Vec<u8>)]| s.iter().any(|f| f.2 == 1 && f.1 & h2::END_STREAM != 0);
    assert!(pump(&mut c, &mut buf, &mut chunk, &mut seen, ended).await, "stream 1 never finished: {seen:?}");
    assert_eq!(wire::h2_body(&seen), "finished");
    assert!(drain(&mut c, secs(5)).await.closed, "connection left open after the last stream");
    assert_eq!(bin.wait_exit(Duration::from_secs(5)).await, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_0_within_the_grace_period_even_if_a_client_hangs() {
    let mut bin = Bin::start(&format!(
        "[server]\ngrace = \"1s\"\nbody_timeout = \"60s\"\nidle_timeout = \"60s\"\nheader_read_timeout = \"60s\"\n{SLOW}"
    ));
    // One client stuck in its body, one that never finishes its head, one that sends nothing at all.
    let mut stuck = slow_request_in_flight(&bin).await;
    let mut half_head = TcpStream::connect(bin.addr).await.unwrap();
    half_head.write_all(b"GET /slow HTTP/1.1\r\nHost: t\r\n").await.unwrap();
    let _silent = TcpStream::connect(bin.addr).await.unwrap();

    let started = Instant::now();
    bin.terminate();
    let code = bin.wait_exit(Duration::from_secs(8)).await;
    let took = started.elapsed();
    assert_eq!(code, Some(0), "still running (or failed) 8 s after SIGTERM with a 1 s grace period");
    assert!(took >= Duration::from_millis(900), "exited after {took:?}: the in-flight request got no grace period");
    assert!(drain(&mut stuck, secs(2)).await.closed);
    assert!(drain(&mut half_head, secs(2)).await.closed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_right_after_the_listening_line_is_a_clean_exit() {
    // The signal handlers must be in place before the address is announced, or SIGTERM kills with the default action.
    for _ in 0..10 {
        let mut bin = Bin::start(SLOW);
        bin.terminate();
        assert_eq!(bin.wait_exit(Duration::from_secs(5)).await, Some(0), "SIGTERM right after start");
    }
}
