//! Hostile clients against the real binary: HTTP/2 clients that shut their flow-control window or keep idle
//! connections alive with PINGs, connections that fill the cap, half-sent bodies, requests without a `Host`, a stderr
//! nobody reads, and SIGTERM while every worker is busy. Each test fails without the limit it shows.

use crate::wire;

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};
use wire::{Bin, exchange, h2, read_response};

const HELLO: &str = "[[route]]\npath = \"/hello\"\nbody = \"Hello World\"\n";

fn secs(n: u64) -> Instant {
    Instant::now() + Duration::from_secs(n)
}

type Frame = (u8, u8, u32, Vec<u8>);

/// How an HTTP/2 connection that only sends PINGs ended.
#[derive(Debug)]
struct Pinged {
    frames: Vec<Frame>,
    /// The server closed the connection (EOF or reset).
    closed: bool,
}

/// Opens an HTTP/2 connection with `settings`, sends a GET of `path` on stream 1 if given, then a PING every 200 ms
/// while it reads (answering SETTINGS like a client must, but never opening its window). Returns when the server
/// closes the connection, resets stream 1, or `wait` passes.
async fn h2_pinging(addr: std::net::SocketAddr, settings: &[(u16, u32)], path: Option<&str>, wait: Duration) -> Pinged {
    h2_client(addr, settings, path, false, wait).await
}

/// [`h2_pinging`], and with `more`, a new GET of `path` on a new stream with each PING.
async fn h2_client(
    addr: std::net::SocketAddr,
    settings: &[(u16, u32)],
    path: Option<&str>,
    more: bool,
    wait: Duration,
) -> Pinged {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut out = h2::PREFACE.to_vec();
    out.extend(h2::settings(settings));
    if let Some(path) = path {
        out.extend(h2::frame(h2::HEADERS, h2::END_HEADERS | h2::END_STREAM, 1, &h2::request_headers(false, path)));
    }
    s.write_all(&out).await.unwrap();
    let deadline = Instant::now() + wait;
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let (mut buf, mut frames, mut chunk, mut n) = (Vec::new(), Vec::new(), vec![0u8; 16 * 1024], 0u64);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                n += 1;
                let mut out = h2::ping(n);
                if let (true, Some(path)) = (more, path) {
                    let stream = 1 + 2 * u32::try_from(n).unwrap();
                    out.extend(h2::frame(h2::HEADERS, h2::END_HEADERS | h2::END_STREAM, stream, &h2::request_headers(false, path)));
                }
                if s.write_all(&out).await.is_err() {
                    return Pinged { frames, closed: true };
                }
            }
            read = timeout_at(deadline, s.read(&mut chunk)) => match read {
                Ok(Ok(0)) | Ok(Err(_)) => return Pinged { frames, closed: true },
                Ok(Ok(got)) => buf.extend_from_slice(&chunk[..got]),
                Err(_) => return Pinged { frames, closed: false },
            },
        }
        for f in h2::parse(&mut buf) {
            if f.0 == h2::SETTINGS && f.1 & h2::ACK == 0 {
                let _ = s.write_all(&h2::frame(h2::SETTINGS, h2::ACK, 0, &[])).await;
            }
            let reset = f.0 == h2::RST_STREAM && f.2 == 1;
            frames.push(f);
            if reset {
                return Pinged { frames, closed: false };
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------- HTTP/2

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_held_by_a_shut_http2_window_ends_after_the_write_timeout() {
    let bin = Bin::start(&format!("[server]\nwrite_timeout = \"1s\"\nidle_timeout = \"60s\"\n{HELLO}"));
    // Window 0: the server may send the response head but no byte of its body; PINGs keep the socket busy.
    let started = Instant::now();
    let got =
        h2_pinging(bin.addr, &[(h2::SETTINGS_INITIAL_WINDOW_SIZE, 0)], Some("/hello"), Duration::from_secs(10)).await;
    let reset = got.frames.iter().any(|f| f.0 == h2::RST_STREAM && f.2 == 1);
    assert!(got.closed || reset, "a response held by a shut window was still open after 10 s: {:?}", got.frames);
    assert!(got.frames.iter().any(|f| f.0 == h2::HEADERS && f.2 == 1), "no response head: {:?}", got.frames);
    assert!(!got.frames.iter().any(|f| f.0 == h2::DATA && f.2 == 1 && !f.3.is_empty()), "data sent into a shut window");
    assert!(started.elapsed() >= Duration::from_millis(900), "cut before the write timeout: {:?}", started.elapsed());
    // The server still serves others.
    assert_eq!(wire::get(bin.addr, "/hello").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_streams_do_not_keep_a_stalled_response_alive() {
    let bin = Bin::start(&format!("[server]\nwrite_timeout = \"1s\"\nidle_timeout = \"60s\"\n{HELLO}"));
    // Each new stream's response starts (its head goes out) but, like the first, never moves.
    let window = [(h2::SETTINGS_INITIAL_WINDOW_SIZE, 0)];
    let got = h2_client(bin.addr, &window, Some("/hello"), true, Duration::from_secs(10)).await;
    let reset = got.frames.iter().any(|f| f.0 == h2::RST_STREAM && f.2 == 1);
    assert!(got.closed || reset, "new streams kept a stalled response open for 10 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_advertises_max_concurrent_streams_from_the_route_file_default_100() {
    for (server, want) in [("", 100u32), ("[server]\nmax_concurrent_streams = 7\n", 7)] {
        let bin = Bin::start(&format!("{server}{HELLO}"));
        let frames = wire::h2_exchange(bin.addr, &h2::request_headers(false, "/hello"), Duration::from_secs(5)).await;
        let settings = frames.iter().find(|f| f.0 == h2::SETTINGS && f.1 & h2::ACK == 0).expect("no SETTINGS");
        let advertised =
            settings.3.chunks(6).find(|p| u16::from_be_bytes([p[0], p[1]]) == h2::SETTINGS_MAX_CONCURRENT_STREAMS);
        let value = advertised.map(|p| u32::from_be_bytes([p[2], p[3], p[4], p[5]]));
        assert_eq!(value, Some(want), "SETTINGS {:?} with {server:?}", settings.3);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_connection_that_only_sends_pings_is_closed_after_the_idle_timeout() {
    let bin = Bin::start(&format!("[server]\nidle_timeout = \"1s\"\n{HELLO}"));
    let started = Instant::now();
    let got = h2_pinging(bin.addr, &[], None, Duration::from_secs(10)).await;
    assert!(got.closed, "a connection with no stream, kept busy with PINGs, was open after 10 s");
    assert!(started.elapsed() >= Duration::from_millis(900), "closed before the idle timeout: {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_connection_cap_the_longest_idle_connection_makes_room_for_a_new_one() {
    let bin = Bin::start(&format!("[server]\nmax_connections = 2\nidle_timeout = \"60s\"\n{HELLO}"));
    let addr = bin.addr;
    // Two idle HTTP/2 connections fill the cap and stay "alive" with PINGs.
    let first = tokio::spawn(async move { h2_pinging(addr, &[], None, Duration::from_secs(20)).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = tokio::spawn(async move { h2_pinging(addr, &[], None, Duration::from_secs(20)).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A new client is served at once, and the oldest idle connection is the one closed for it.
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n").await.unwrap();
    let res = read_response(&mut c, secs(5)).await.expect("a new client was locked out by idle connections");
    assert_eq!(res.status, 200);
    let first =
        tokio::time::timeout(Duration::from_secs(5), first).await.expect("the longest idle stayed open").unwrap();
    assert!(first.closed);
    assert!(!second.is_finished(), "the newer idle connection was closed too");
    second.abort();
}

// ---------------------------------------------------------------------------------------------- delays

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delay_longer_than_the_idle_timeout_is_delivered_on_http1_and_http2() {
    let bin = Bin::start(
        "[server]\nidle_timeout = \"1s\"\n[[route]]\npath = \"/slow\"\ndelay = \"2500ms\"\nbody = \"late but here\"\n",
    );
    let mut c = TcpStream::connect(bin.addr).await.unwrap();
    c.write_all(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n").await.unwrap();
    let res = read_response(&mut c, secs(10)).await.expect("the delayed answer was not delivered on HTTP/1.1");
    assert_eq!((res.status, res.text().as_str()), (200, "late but here"));

    let frames = wire::h2_exchange(bin.addr, &h2::request_headers(false, "/slow"), Duration::from_secs(10)).await;
    assert_eq!(wire::h2_body(&frames), "late but here", "on HTTP/2: {frames:?}");
}

// ---------------------------------------------------------------------------------------------- Host

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http11_requests_without_exactly_one_host_get_400_saying_why() {
    let bin = Bin::start(HELLO);
    for request in [&b"GET /hello HTTP/1.1\r\n\r\n"[..], b"GET /hello HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"] {
        let mut c = TcpStream::connect(bin.addr).await.unwrap();
        c.write_all(request).await.unwrap();
        let res = read_response(&mut c, secs(5)).await.expect("no answer");
        assert_eq!(res.status, 400, "{}", String::from_utf8_lossy(request));
        assert!(res.text().contains("exactly one Host header"), "{}", res.text());
    }
    // HTTP/1.0 has no such rule.
    let got = exchange(bin.addr, b"GET /hello HTTP/1.0\r\n\r\n", Duration::from_secs(5)).await;
    assert!(got.text().starts_with("HTTP/1.0 200"), "{}", got.text());
}

// ---------------------------------------------------------------------------------------------- bodies

/// Sends the head of a POST with `Content-Length: len` and `sent` bytes of its body.
async fn half_sent_post(addr: std::net::SocketAddr, len: usize, sent: usize) -> TcpStream {
    let mut c = TcpStream::connect(addr).await.unwrap();
    let head = format!("POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: {len}\r\n\r\n");
    c.write_all(head.as_bytes()).await.unwrap();
    c.write_all(&vec![b'a'; sent]).await.unwrap();
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_bodies_over_the_global_budget_get_503_with_retry_after() {
    let bin = Bin::start(
        "[server]\nmax_body_buffers = \"1MiB\"\n[[route]]\npath = \"/upload\"\nmethod = \"POST\"\nbody = \"stored\"\n",
    );
    const LEN: usize = 256 * 1024;
    let mut held = Vec::new();
    let mut refused = 0;
    for _ in 0..12 {
        let mut c = half_sent_post(bin.addr, LEN, LEN / 2).await;
        match read_response(&mut c, Instant::now() + Duration::from_millis(500)).await {
            None => held.push(c),
            Some(res) => {
                assert_eq!(res.status, 503, "{}", res.text());
                assert_eq!(res.header("retry-after"), Some("1"));
                assert!(res.text().contains("max_body_buffers"), "{}", res.text());
                refused += 1;
            }
        }
    }
    // 1 MiB holds four bodies of 256 KiB.
    assert_eq!((held.len(), refused), (4, 8));
    for c in &mut held {
        c.write_all(&vec![b'a'; LEN / 2]).await.unwrap();
        let res = read_response(c, secs(5)).await.expect("a body within the budget got no answer");
        assert_eq!((res.status, res.text().as_str()), (200, "stored"));
    }
    // Answered bodies give their share back.
    let mut c = half_sent_post(bin.addr, LEN, LEN).await;
    assert_eq!(read_response(&mut c, secs(5)).await.expect("no answer").status, 200);
}

// ---------------------------------------------------------------------------------------------- stderr

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stderr_nobody_reads_does_not_stop_the_access_log_or_serving() {
    // stderr is a pipe this test never reads: once its buffer is full, every write to it blocks.
    let mut bin = Bin::start_with(HELLO, &["--log-requests"], Stdio::piped());
    let _unread = bin.child.stderr.take();
    let mut c = TcpStream::connect(bin.addr).await.unwrap();
    for i in 0..5000 {
        c.write_all(b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n").await.unwrap();
        let res = read_response(&mut c, secs(5)).await;
        assert!(res.is_some_and(|r| r.status == 200), "request {i} got no answer: the log blocked the server");
    }
}

// ---------------------------------------------------------------------------------------------- shutdown

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_when_the_grace_is_over_even_with_every_worker_busy() {
    // Comparing two trees of 2^24 leaves costs few instructions of template fuel but seconds of work, on the one
    // worker the server has.
    let mut template = String::from("{% set a = [1, 1] %}{% set b = [1, 1] %}");
    for _ in 0..24 {
        template.push_str("{% set a = [a, a] %}{% set b = [b, b] %}");
    }
    template.push_str("{{ a == b }}");
    let toml =
        format!("[server]\ngrace = \"1s\"\n[[route]]\npath = \"/busy\"\ntemplate = true\nbody = \"{template}\"\n");
    let mut bin = Bin::start_with(&toml, &["--threads", "1"], Stdio::inherit());
    let addr = bin.addr;
    let busy =
        tokio::spawn(
            async move { exchange(addr, b"GET /busy HTTP/1.1\r\nHost: t\r\n\r\n", Duration::from_secs(60)).await },
        );
    tokio::time::sleep(Duration::from_millis(500)).await;
    bin.terminate();
    let code = bin.wait_exit(Duration::from_secs(6)).await;
    busy.abort();
    assert_eq!(code, Some(0), "still running 6 s after SIGTERM with a grace of 1 s");
}
