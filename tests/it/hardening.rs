//! Limits, timeouts and hostile input, tested from outside like an attacker: raw bytes on real sockets, so that no
//! client library hides what is on the wire. Each test sets the limit it shows small in the route file, so that it
//! would fail if the limit were not enforced.

use crate::wire;

use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::Instant;
use wire::{Served, drain, exchange, get, read_response, stream_post};

const HELLO: &str = "[[route]]\npath = \"/hello\"\nbody = \"Hello World\"\n";

fn secs(n: u64) -> Instant {
    Instant::now() + Duration::from_secs(n)
}

/// A server with `[server]` settings `server` and the /hello route.
async fn serve(server: &str) -> Served {
    Served::start(&format!("[server]\n{server}\n{HELLO}"), &[]).await
}

async fn assert_still_serving(s: &Served) {
    let res = get(s.addr, "/hello").await;
    assert_eq!((res.status, res.text().as_str()), (200, "Hello World"), "the server stopped serving normally");
}

// ---------------------------------------------------------------------------------------------- request head

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_finishes_its_head_is_closed_after_the_header_read_timeout() {
    let s = serve("header_read_timeout = \"1s\"").await;
    let started = Instant::now();
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    c.write_all(b"GET /hello HTTP/1.1\r\nHost: t\r\nX-Slow: ").await.unwrap();
    let d = drain(&mut c, secs(8)).await;
    assert!(d.closed, "the connection was still open 8 s after a 1 s header-read timeout");
    assert!(started.elapsed() >= Duration::from_millis(900), "closed before the timeout: {:?}", started.elapsed());
    assert!(!d.text().contains("200 OK"), "{}", d.text());
    assert_still_serving(&s).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_headers_than_max_headers_get_431_on_http1_and_http2() {
    let s = serve("max_headers = 20").await;
    let head = |n: usize| {
        let mut r = String::from("GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n");
        for i in 0..n {
            r.push_str(&format!("X-H{i}: v\r\n"));
        }
        r + "\r\n"
    };
    let ok = exchange(s.addr, head(10).as_bytes(), Duration::from_secs(5)).await.text();
    assert!(ok.starts_with("HTTP/1.1 200 "), "{ok}");
    let refused = exchange(s.addr, head(25).as_bytes(), Duration::from_secs(5)).await.text();
    assert!(refused.starts_with("HTTP/1.1 431 "), "25 headers with max_headers = 20: {refused}");

    // The setting also raises the limit past hyper's default of 100.
    let many = serve("max_headers = 150").await;
    let ok = exchange(many.addr, head(120).as_bytes(), Duration::from_secs(5)).await.text();
    assert!(ok.starts_with("HTTP/1.1 200 "), "120 headers with max_headers = 150: {ok}");
    many.stop().await;

    // HTTP/2: hyper does not count headers there; hotroute does.
    let mut block = wire::h2::request_headers(false, "/hello");
    for i in 0..25 {
        let name = format!("x-h{i}");
        block.extend([0x00, name.len() as u8]);
        block.extend(name.as_bytes());
        block.extend([1, b'v']);
    }
    let body = wire::h2_body(&wire::h2_exchange(s.addr, &block, Duration::from_secs(5)).await);
    assert!(body.starts_with("431 "), "HTTP/2 request with 25 headers: {body:?}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_over_max_header_size_gets_431() {
    let s = serve("max_header_size = \"8KiB\"").await;
    let big =
        |n: usize| format!("GET /hello HTTP/1.1\r\nHost: t\r\nCookie: {}\r\nConnection: close\r\n\r\n", "c".repeat(n));
    let ok = exchange(s.addr, big(6 * 1024).as_bytes(), Duration::from_secs(5)).await.text();
    assert!(ok.starts_with("HTTP/1.1 200 "), "{ok}");
    let refused = exchange(s.addr, big(12 * 1024).as_bytes(), Duration::from_secs(5)).await.text();
    assert!(refused.starts_with("HTTP/1.1 431 "), "a 12 KiB head with max_header_size = 8KiB: {refused}");
    // A head that never ends is cut off at the limit too, not buffered.
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    c.write_all(b"GET /hello HTTP/1.1\r\nHost: t\r\nX-Endless: ").await.unwrap();
    let filler = vec![b'x'; 1024];
    for _ in 0..64 {
        if c.write_all(&filler).await.is_err() {
            break;
        }
    }
    let d = drain(&mut c, secs(5)).await;
    assert!(d.text().starts_with("HTTP/1.1 431 "), "{}", d.text());
    assert_still_serving(&s).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_target_over_max_uri_gets_414() {
    let s = serve("max_uri = \"1KiB\"").await;
    let req = |n: usize| format!("GET /hello?q={} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", "a".repeat(n));
    let ok = exchange(s.addr, req(900).as_bytes(), Duration::from_secs(5)).await.text();
    assert!(ok.starts_with("HTTP/1.1 200 "), "{ok}");
    let refused = exchange(s.addr, req(2000).as_bytes(), Duration::from_secs(5)).await.text();
    assert!(refused.starts_with("HTTP/1.1 414 "), "a 2 KB target with max_uri = 1KiB: {refused}");
    assert!(refused.contains("max_uri"), "the answer names the setting: {refused}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_connections_do_not_slow_a_normal_client_and_are_closed_after_the_timeout() {
    wire::raise_fd_limit(2048);
    let s = serve("header_read_timeout = \"2s\"").await;
    let mut loris = Vec::new();
    for i in 0..300 {
        let mut c = TcpStream::connect(s.addr).await.unwrap();
        c.write_all(format!("GET /hello HTTP/1.1\r\nHost: t\r\nX-Loris-{i}: ").as_bytes()).await.unwrap();
        loris.push(c);
    }
    let started = Instant::now();
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        assert_still_serving(&s).await;
        times.push(t.elapsed());
    }
    times.sort();
    assert!(times[2] < Duration::from_millis(100), "normal requests slowed by 300 slow clients: {times:?}");
    // Every slow connection is closed once the header-read timeout passes.
    let deadline = started + Duration::from_secs(10);
    for (i, c) in loris.iter_mut().enumerate() {
        assert!(drain(c, deadline).await.closed, "slow connection {i} still open 10 s after a 2 s timeout");
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_are_closed_after_the_idle_timeout() {
    // hyper's header-read timeout starts only once it knows a connection is HTTP/1: a client that sends nothing, or
    // only the HTTP/2 preface, is closed by the idle timeout.
    let s = serve("idle_timeout = \"1s\"\nheader_read_timeout = \"30s\"").await;
    let mut silent = TcpStream::connect(s.addr).await.unwrap();
    let mut half_preface = TcpStream::connect(s.addr).await.unwrap();
    half_preface.write_all(&wire::h2::PREFACE[..10]).await.unwrap();
    let mut idle_h2 = TcpStream::connect(s.addr).await.unwrap();
    let mut hello = wire::h2::PREFACE.to_vec();
    hello.extend(wire::h2::frame(wire::h2::SETTINGS, 0, 0, &[]));
    idle_h2.write_all(&hello).await.unwrap();
    for (name, c) in [("silent", &mut silent), ("half preface", &mut half_preface), ("idle HTTP/2", &mut idle_h2)] {
        assert!(drain(c, secs(8)).await.closed, "{name} connection still open 8 s after a 1 s idle timeout");
    }
    assert_still_serving(&s).await;
    s.stop().await;
}

// ---------------------------------------------------------------------------------------------- request body

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_body_over_the_limit_is_refused_before_it_is_read() {
    let s = serve("max_body = \"10MiB\"\n").await;
    let s2 =
        Served::start(&format!("[[route]]\npath = \"/up\"\nmethod = \"POST\"\nbody = \"got it\"\n{HELLO}"), &[]).await;
    // Only the head is sent: the 413 must come without waiting for a byte of the body.
    let head = |len: usize| format!("POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: {len}\r\n\r\n");
    let mut c = TcpStream::connect(s2.addr).await.unwrap();
    c.write_all(head(2 * 1024 * 1024).as_bytes()).await.unwrap();
    let res = read_response(&mut c, secs(5)).await.expect("no answer to a 2 MiB Content-Length (default limit 1 MiB)");
    assert_eq!(res.status, 413, "{}", res.text());
    assert!(res.text().contains("max_body"), "the answer names the setting: {}", res.text());

    // The [server] setting moves the limit: 5 MiB passes under "10MiB" (the route is 404 here, but it is read).
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    c.write_all(head(11 * 1024 * 1024).as_bytes()).await.unwrap();
    assert_eq!(read_response(&mut c, secs(5)).await.expect("no answer to 11 MiB").status, 413);
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    c.write_all(head(5 * 1024 * 1024).as_bytes()).await.unwrap();
    c.write_all(&vec![b'x'; 5 * 1024 * 1024]).await.unwrap();
    assert_eq!(read_response(&mut c, secs(10)).await.expect("no answer to 5 MiB").status, 404);
    s.stop().await;
    s2.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_sends_its_whole_body_before_reading_still_reads_the_413() {
    // What reqwest, Python's requests and most clients do: write the head and the whole body, then read. The 413
    // goes out at the head; a server that then closed with the body unread would make the kernel send a reset, and
    // the client would see "connection reset" instead of the answer (this failed in CI, 1 run in ~10).
    let s =
        Served::start(&format!("[[route]]\npath = \"/up\"\nmethod = \"POST\"\nbody = \"got it\"\n{HELLO}"), &[]).await;
    for round in 0..5 {
        let len = 2 * 1024 * 1024;
        let mut c = TcpStream::connect(s.addr).await.unwrap();
        c.write_all(format!("POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: {len}\r\n\r\n").as_bytes()).await.unwrap();
        // Give the server time to answer and close before the body goes out, as a slow client would.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let wrote = c.write_all(&vec![b'x'; len]).await;
        assert!(wrote.is_ok(), "round {round}: the server reset the connection while the body was sent: {wrote:?}");
        let res = read_response(&mut c, secs(5)).await.unwrap_or_else(|| panic!("round {round}: no 413, a reset"));
        assert_eq!(res.status, 413, "{}", res.text());
    }
    assert_still_serving(&s).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_body_over_the_limit_gets_413_before_the_client_is_done() {
    let s =
        Served::start(&format!("[[route]]\npath = \"/up\"\nmethod = \"POST\"\nbody = \"got it\"\n{HELLO}"), &[]).await;
    let total = 64 * 1024 * 1024;
    let (res, sent) = stream_post(s.addr, "/up", total, 64 * 1024).await;
    let res = res.expect("no response while streaming 64 MiB to a 1 MiB limit");
    assert_eq!(res.status, 413);
    assert!(sent < total, "the 413 came only after the client sent everything");
    assert_still_serving(&s).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_trickling_in_gets_408_after_the_body_timeout() {
    // One byte every 100 ms never leaves the connection idle: only the body deadline stops it.
    let s = Served::start(
        &format!(
            "[server]\nbody_timeout = \"1s\"\n[[route]]\npath = \"/up\"\nmethod = \"POST\"\nbody = \"got it\"\n{HELLO}"
        ),
        &[],
    )
    .await;
    let c = TcpStream::connect(s.addr).await.unwrap();
    let (mut rd, mut wr) = c.into_split();
    wr.write_all(b"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n").await.unwrap();
    let trickle = tokio::spawn(async move {
        for _ in 0..1000 {
            if wr.write_all(b"x").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let started = Instant::now();
    let mut buf = Vec::new();
    let deadline = secs(8);
    use tokio::io::AsyncReadExt;
    let mut chunk = [0u8; 1024];
    while !String::from_utf8_lossy(&buf).contains("\r\n\r\n") {
        match tokio::time::timeout_at(deadline, rd.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => break,
        }
    }
    trickle.abort();
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 408 "), "a body trickling for 8 s with body_timeout = 1s: {text:?}");
    assert!(started.elapsed() >= Duration::from_millis(900), "408 before the timeout");
    assert_still_serving(&s).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_read_its_response_is_cut_off_after_the_write_timeout() {
    // One connection slot: a second client is served only once the slow reader's connection is closed.
    let big = vec![b'z'; 32 * 1024 * 1024];
    let s = Served::start(
        &format!(
            "[server]\nwrite_timeout = \"1s\"\nmax_connections = 1\n[[route]]\npath = \"/big\"\nfile = \"big.bin\"\n{HELLO}"
        ),
        &[("big.bin", &big)],
    )
    .await;
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let mut slow = sock.connect(s.addr).await.unwrap();
    slow.write_all(b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n").await.unwrap();

    let next = tokio::spawn({
        let addr = s.addr;
        async move { tokio::time::timeout(Duration::from_secs(10), get(addr, "/hello")).await }
    });
    let res = next.await.unwrap().expect("the slot was still held 10 s after a 1 s write timeout");
    assert_eq!(res.status, 200);
    // The slow reader got the start of the body and then the end of the connection, not the whole 32 MiB.
    let d = drain(&mut slow, secs(10)).await;
    assert!(d.closed, "slow reader's connection not closed");
    assert!(d.bytes.len() < big.len(), "the slow reader got the whole response ({} bytes)", d.bytes.len());
    s.stop().await;
}

// ---------------------------------------------------------------------------------------------- connections

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_connection_cap_new_connections_wait_for_busy_ones_and_take_an_idle_ones_place() {
    let slow = "[[route]]\npath = \"/slow\"\ndelay = \"1500ms\"\nbody = \"slow\"\n";
    let s = Served::start(&format!("[server]\nmax_connections = 4\n{slow}{HELLO}"), &[]).await;
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut c = TcpStream::connect(s.addr).await.unwrap();
        c.write_all(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n").await.unwrap();
        held.push(c);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // A fifth connection is made but not served while the four have requests in flight (none is cut for it).
    let mut fifth = TcpStream::connect(s.addr).await.unwrap();
    fifth.write_all(b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n").await.unwrap();
    let early = read_response(&mut fifth, Instant::now() + Duration::from_millis(500)).await;
    assert!(early.is_none(), "a fifth connection was served with max_connections = 4 all busy");
    // The connections already served get their answers.
    for c in &mut held {
        let res = read_response(c, secs(5)).await.expect("a served connection stopped answering");
        assert_eq!((res.status, res.text().as_str()), (200, "slow"));
    }
    // Once they are idle, the longest idle one is closed and the waiting one is served.
    let res =
        read_response(&mut fifth, secs(5)).await.expect("the waiting connection was not served after one went idle");
    assert_eq!(res.status, 200);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_keep_alive_clients_are_all_served() {
    const CLIENTS: usize = 1000;
    wire::raise_fd_limit(2 * CLIENTS as u64 + 100);
    let s = Served::start(HELLO, &[]).await;
    let addr = s.addr;
    let ask = b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n";
    // All connect and are answered once; then, with all of them open, each asks again on the same connection.
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(CLIENTS));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CLIENTS {
        let barrier = barrier.clone();
        tasks.spawn(async move {
            let deadline = secs(30);
            let mut c = TcpStream::connect(addr).await.unwrap();
            let mut answers = 0;
            for round in 0..2 {
                if round == 1 {
                    barrier.wait().await;
                }
                c.write_all(ask).await.unwrap();
                if let Some(res) = read_response(&mut c, deadline).await
                    && res.status == 200
                    && res.body == b"Hello World"
                {
                    answers += 1;
                }
            }
            answers
        });
    }
    let mut total = 0;
    while let Some(answers) = tasks.join_next().await {
        total += answers.unwrap();
    }
    assert_eq!(total, 2 * CLIENTS, "of {CLIENTS} keep-alive clients asking twice, {total} answers came");
    s.stop().await;
}

// ---------------------------------------------------------------------------------------------- hostile input

const SMUGGLE_ROUTES: &str = r#"
[[route]]
path = "/"
method = "ANY"
body = "FRONT"

[[route]]
path = "/smuggled"
method = "ANY"
body = "SMUGGLED-REQUEST-RAN"

[[route]]
path = "/hello"
body = "Hello World"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_request_lines_and_headers_get_400_or_a_close() {
    let s = Served::start(&format!("[server]\nheader_read_timeout = \"1s\"\n{SMUGGLE_ROUTES}"), &[]).await;
    let cases: &[&[u8]] = &[
        b"GET\r\n\r\n",
        b"GET /\r\n\r\n",
        b"GET / HTTP/9.9\r\nHost: t\r\n\r\n",
        b"GET / FTP/1.1\r\nHost: t\r\n\r\n",
        b"G\x00T / HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /\x7f HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /a b HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET  / HTTP/1.1\r\nHost: t\r\n\r\n",
        b" GET / HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost t\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost : t\r\n\r\n",
        b"GET / HTTP/1.1\r\n Host: t\r\n\r\n",
        b"GET / HTTP/1.1\r\nHo\x01st: t\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: t\x00\r\n\r\n",
        b"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n",
        b"GET / HTTP/1.1\nHost: t\n\rX\n\n",
        b"GET / HTTP/1.1\r\n: empty-name\r\n\r\n",
        b"\r\n\r\n\r\n\r\n",
        b"\xff\xfe\xfd\xfc\r\n\r\n",
        b"GET /%zz%00 HTTP/1.1\r\nHost: t\r\nContent-Length: abc\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999999999999999999\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\n",
    ];
    for case in cases {
        let d = exchange(s.addr, case, Duration::from_secs(5)).await;
        let text = d.text();
        let status = text.get(9..12).unwrap_or("");
        assert!(d.closed, "connection left open after {:?}: {text:?}", String::from_utf8_lossy(case));
        assert!(
            text.is_empty() || status.starts_with('4'),
            "{:?} got {text:?}, expected 400 or a closed connection",
            String::from_utf8_lossy(case)
        );
    }
    assert_still_serving(&s).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_bytes_never_get_a_success_and_the_server_keeps_serving() {
    let s = Served::start(&format!("[server]\nheader_read_timeout = \"1s\"\n{SMUGGLE_ROUTES}"), &[]).await;
    // A fixed-seed xorshift so that a failure can be replayed.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut tasks = tokio::task::JoinSet::new();
    for case in 0..200 {
        let len = (next() % 2048) as usize + 1;
        let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if case % 2 == 0 {
            // Half of them end like a request head, so that the parser sees a complete (garbage) message.
            bytes.extend_from_slice(b"\r\n\r\n");
        }
        let addr = s.addr;
        tasks.spawn(async move { (bytes.clone(), exchange(addr, &bytes, Duration::from_secs(6)).await) });
    }
    while let Some(done) = tasks.join_next().await {
        let (bytes, d) = done.unwrap();
        let text = d.text();
        assert!(d.closed, "connection left open after random bytes {bytes:?}");
        assert!(
            text.is_empty() || text.get(9..10) == Some("4"),
            "random bytes {bytes:?} got {text:?}, expected 400 or a closed connection"
        );
    }
    assert_still_serving(&s).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smuggling_forms_never_run_a_second_request_from_a_body() {
    let s = Served::start(&format!("[server]\nheader_read_timeout = \"1s\"\n{SMUGGLE_ROUTES}"), &[]).await;
    let inner = "GET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n";
    let n = inner.len();
    let cases: Vec<(&str, String)> = vec![
        (
            "CL.TE: Content-Length covers the smuggled request, chunked ends before it",
            format!(
                "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{inner}",
                n + 5
            ),
        ),
        (
            "TE.CL: chunked covers the smuggled request, Content-Length ends before it",
            format!(
                "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n{:x}\r\n{inner}\r\n0\r\n\r\n",
                n
            ),
        ),
        ("Transfer-Encoding: gzip", format!("POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n{inner}")),
        (
            "Transfer-Encoding: chunked, gzip",
            format!("POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, gzip\r\n\r\n{inner}"),
        ),
        (
            "obfuscated Transfer-Encoding: xchunked",
            format!("POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: xchunked\r\nContent-Length: {n}\r\n\r\n{inner}"),
        ),
        (
            "two different Content-Length headers",
            format!("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nContent-Length: {n}\r\n\r\n{inner}"),
        ),
        ("a Content-Length list", format!("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 0, {n}\r\n\r\n{inner}")),
        ("Content-Length: +5", format!("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: +{n}\r\n\r\n{inner}")),
        ("Content-Length: 0x..", format!("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 0x{n:x}\r\n\r\n{inner}")),
        (
            "Transfer-Encoding on HTTP/1.0",
            format!(
                "POST / HTTP/1.0\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n0\r\n\r\n{inner}"
            ),
        ),
        (
            "a space before the colon",
            format!("POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding : chunked\r\nContent-Length: {n}\r\n\r\n{inner}"),
        ),
        (
            "an early 413 with the smuggled request in the unread body",
            format!("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{}", 2 * 1024 * 1024, inner.repeat(100)),
        ),
    ];
    for (name, request) in &cases {
        let d = exchange(s.addr, request.as_bytes(), Duration::from_secs(5)).await;
        let text = d.text();
        assert!(!text.contains("SMUGGLED-REQUEST-RAN"), "{name}: a second request ran from the body:\n{text}");
        assert!(text.matches("HTTP/1.").count() <= 1, "{name}: more than one response:\n{text}");
    }
    assert_still_serving(&s).await;
    s.stop().await;
}

// ---------------------------------------------------------------------------------------------- paths

#[test]
fn body_files_never_reach_outside_the_route_folder() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("secret.txt"), "TOP-SECRET").unwrap();
    let site = root.path().join("site");
    std::fs::create_dir_all(site.join("sub")).unwrap();
    std::fs::write(site.join("ok.txt"), "fine").unwrap();
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(root.path().join("secret.txt"), site.join("link.txt")).unwrap();
        std::os::unix::fs::symlink(root.path(), site.join("up")).unwrap();
    }
    let abs = root.path().join("secret.txt").display().to_string();
    let refused = [
        "../secret.txt",
        "sub/../../secret.txt",
        "./../secret.txt",
        abs.as_str(),
        "/etc/passwd",
        "C:\\secret.txt",
        "C:/secret.txt",
        "\\\\server\\share\\secret.txt",
        "..\\secret.txt",
        "%2e%2e/secret.txt",
        "%2e%2e%2fsecret.txt",
        "..%2fsecret.txt",
        "link.txt",
        "up/secret.txt",
        "",
        ".",
        "sub",
    ];
    let routes = site.join("routes.toml");
    for file in refused {
        std::fs::write(&routes, format!("[[route]]\npath = \"/s\"\nfile = '{file}'\n")).unwrap();
        match hotroute::Router::load_file(&routes) {
            Ok(_) => panic!("body file {file:?} was accepted"),
            Err(e) => {
                let text = e.to_string();
                assert!(!text.contains("TOP-SECRET"), "{text}");
                assert!(text.contains("routes.toml:3:"), "{file:?}: the error points at the line: {text}");
            }
        }
    }
    // A file inside the folder is fine (so the refusals above are about where, not about `file =` itself).
    std::fs::write(&routes, "[[route]]\npath = \"/s\"\nfile = 'sub/../ok.txt'\n").unwrap();
    hotroute::Router::load_file(&routes).unwrap_or_else(|e| panic!("{e}"));
}

// ---------------------------------------------------------------------------------------------- templates

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runaway_template_answers_500_quickly_and_the_server_keeps_serving() {
    let toml = r#"
[[route]]
path = "/loop"
template = true
body = "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}"

[[route]]
path = "/recurse"
template = true
body = "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}"

[[route]]
path = "/include"
template = true
body = "{% include '/etc/passwd' %}"

[[route]]
path = "/hello"
body = "Hello World"
"#;
    // The real binary: a template that never ended would block a server worker, and must not block this test too.
    let s = wire::Bin::start(toml);
    for path in ["/loop", "/recurse", "/include"] {
        let res = tokio::time::timeout(Duration::from_secs(10), get(s.addr, path))
            .await
            .unwrap_or_else(|_| panic!("{path} still rendering after 10 s"));
        assert_eq!(res.status, 500, "{path}: {}", res.text());
        assert!(res.text().len() < 4096, "{path}: a huge error page");
        assert!(!res.text().contains("root:"), "{path} read a file: {}", res.text());
    }
    let res = get(s.addr, "/hello").await;
    assert_eq!((res.status, res.text().as_str()), (200, "Hello World"), "the server stopped serving normally");
}

#[test]
fn header_values_with_line_breaks_are_refused_at_load() {
    for value in ["a\\r\\nX-Injected: 1", "a\\nb", "a\\u0000b"] {
        let toml = format!("[[route]]\npath = \"/a\"\nheaders = {{ x-a = \"{value}\" }}\n");
        let err = hotroute::Router::load_str(&toml, "routes.toml".as_ref(), ".".as_ref()).unwrap_err().to_string();
        assert!(err.contains("not a valid header value"), "{value}: {err}");
    }
}

// ---------------------------------------------------------------------------------------------- settings

#[test]
fn server_limits_are_read_from_the_route_file() {
    let toml = r#"
[server]
max_body = "10MiB"
max_header_size = "16KB"
max_headers = 50
max_uri = 2048
max_connections = 100
header_read_timeout = "5s"
body_timeout = "1m"
idle_timeout = "90s"
write_timeout = "500ms"
grace = "3s"
"#;
    let router = hotroute::Router::load_str(toml, "routes.toml".as_ref(), ".".as_ref()).unwrap();
    let options = hotroute::ServeOptions::from_config(router.server()).limits;
    assert_eq!(options.max_body, 10 * 1024 * 1024);
    assert_eq!(options.max_header_size, 16_000);
    assert_eq!(options.max_headers, 50);
    assert_eq!(options.max_uri, 2048);
    assert_eq!(options.max_connections, 100);
    assert_eq!(options.header_read_timeout, Duration::from_secs(5));
    assert_eq!(options.body_timeout, Duration::from_secs(60));
    assert_eq!(options.idle_timeout, Duration::from_secs(90));
    assert_eq!(options.write_timeout, Duration::from_millis(500));
    assert_eq!(options.grace, Duration::from_secs(3));
    // Nothing set: the documented defaults.
    let defaults = hotroute::Router::load_str("", "routes.toml".as_ref(), ".".as_ref()).unwrap();
    let d = hotroute::ServeOptions::from_config(defaults.server()).limits;
    assert_eq!((d.max_body, d.max_headers, d.max_header_size, d.max_uri), (1 << 20, 100, 64 << 10, 8 << 10));
    assert_eq!(d.max_connections, 4096);
    assert_eq!((d.header_read_timeout, d.body_timeout), (Duration::from_secs(10), Duration::from_secs(30)));
    assert_eq!(
        (d.idle_timeout, d.write_timeout, d.grace),
        (Duration::from_secs(60), Duration::from_secs(30), Duration::from_secs(10))
    );
}

#[test]
fn bad_limit_values_are_load_errors_naming_the_setting() {
    let bad = [
        ("max_body = \"ten\"", "not a size for `max_body`"),
        ("max_body = -1", "cannot be negative"),
        ("max_body = true", "a size like"),
        ("max_header_size = \"1KiB\"", "below its minimum"),
        ("max_uri = \"5 parsecs\"", "not a size for `max_uri`"),
        ("max_headers = 0", "`max_headers` must be at least 1"),
        ("max_connections = 0", "`max_connections` must be at least 1"),
        ("header_read_timeout = \"soon\"", "not a duration for `header_read_timeout`"),
        ("body_timeout = \"10\"", "not a duration for `body_timeout`"),
        ("grace = \"0s\"", "`grace` cannot be zero"),
        ("idle_timeout = 5", "e.g. `idle_timeout = \"5ms\"` or `\"5s\"`"),
    ];
    for (line, expected) in bad {
        let toml = format!("[server]\n{line}\n");
        let err = match hotroute::Router::load_str(&toml, "routes.toml".as_ref(), ".".as_ref()) {
            Ok(_) => panic!("`{line}` was accepted"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains(expected), "`{line}`: expected {expected:?} in:\n{err}");
        assert!(err.contains("routes.toml:2:"), "`{line}`: the error points at line 2:\n{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stays_flat_while_clients_try_to_send_a_gibibyte_each() {
    let bin = wire::Bin::start("[[route]]\npath = \"/up\"\nmethod = \"POST\"\nbody = \"got it\"\n");
    assert_eq!(get(bin.addr, "/up").await.status, 405, "warm-up request");
    let before = bin.proc_status_kib("VmHWM");
    const GIB: usize = 1 << 30;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let addr = bin.addr;
        tasks.spawn(async move { stream_post(addr, "/up", GIB, 256 * 1024).await });
    }
    while let Some(done) = tasks.join_next().await {
        let (res, sent) = done.unwrap();
        assert_eq!(res.expect("no response while streaming 1 GiB").status, 413);
        assert!(sent < GIB / 4, "the 413 came only after {sent} bytes");
    }
    let grew = bin.proc_status_kib("VmHWM").saturating_sub(before);
    // Four bodies of up to 1 MiB each, plus buffers: far below what the clients tried to send.
    assert!(grew < 32 * 1024, "peak memory grew by {grew} KiB while 4 clients streamed at a 1 MiB limit");
}

/// The binary gives memory back once a spike is over: its workers go quiet after the clients leave, and
/// (main.rs, `memory`) collect what they freed instead of keeping it at the spike's height.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_held_for_a_spike_of_bodies_goes_back_to_the_system_after_it() {
    const CLIENTS: usize = 300;
    const BODY: usize = 1 << 20;
    let bin = wire::Bin::start(&format!(
        "[server]\nmax_body = \"2MiB\"\nmax_connections = {}\n\n[[route]]\npath = \"/up\"\nmethod = \"POST\"\nbody = \"ok\"\n",
        CLIENTS + 50
    ));
    assert_eq!(get(bin.addr, "/up").await.status, 405, "warm-up request");
    let before = bin.proc_status_kib("VmRSS");
    // Each client sends all of its body but the last byte, so that the server holds it.
    let mut clients = Vec::new();
    let head = format!("POST /up HTTP/1.1\r\nhost: x\r\ncontent-length: {BODY}\r\n\r\n");
    let chunk = vec![b'x'; 64 * 1024];
    for _ in 0..CLIENTS {
        let mut c = TcpStream::connect(bin.addr).await.unwrap();
        c.write_all(head.as_bytes()).await.unwrap();
        let mut left = BODY - 1;
        while left > 0 {
            let n = left.min(chunk.len());
            // A server that stopped reading (its body budget full) leaves this client waiting like the rest.
            match tokio::time::timeout(Duration::from_secs(2), c.write_all(&chunk[..n])).await {
                Ok(written) => written.unwrap(),
                Err(_) => break,
            }
            left -= n;
        }
        clients.push(c);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let held = bin.proc_status_kib("VmRSS");
    assert!(held > before + 100 * 1024, "the spike did not happen: RSS {before} KiB before, {held} KiB during");
    drop(clients);
    // The workers collect at most once a second each; a few seconds bound it.
    let deadline = secs(10);
    let mut after = held;
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        after = bin.proc_status_kib("VmRSS");
        if after < before + 32 * 1024 {
            break;
        }
    }
    eprintln!("RSS {before} KiB before, {held} KiB during the spike, {after} KiB after it");
    assert!(
        after < before + 32 * 1024,
        "RSS {before} KiB before the spike, {held} KiB during it, still {after} KiB 10 s after the clients left"
    );
    assert_eq!(get(bin.addr, "/up").await.status, 405, "the server stopped answering after the spike");
}

fn nested_value_template(rounds: usize) -> String {
    // Each round wraps the value in 50 more lists: a value nested up to 50 * rounds deep, as far as the fuel allows.
    format!(
        "{{% set ns = namespace(x=[]) %}}{{% for i in range({rounds}) %}}{{% set ns.x = {}ns.x{} %}}{{% endfor %}}{{{{ ns.x }}}}",
        "[".repeat(50),
        "]".repeat(50)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deeply_nested_templates_are_errors_or_answers_never_a_crash() {
    // Load time: MiniJinja's parser and compiler recurse once per level of these (unguarded by its own limit).
    let nested = [
        format!("{{{{ {}1 }}}}", "-".repeat(100_000)),
        format!("{{{{ {}1 }}}}", "not ".repeat(25_000)),
        format!("{{{{ x{} }}}}", ".a".repeat(50_000)),
        format!("{{{{ x{} }}}}", "|abs".repeat(25_000)),
        format!("{{{{ 1{} }}}}", "+1".repeat(50_000)),
        format!("{{% if x %}}a{}{{% endif %}}", "{% elif x %}a".repeat(8_000)),
    ];
    for body in &nested {
        let toml = format!("[[route]]\npath = \"/a\"\ntemplate = true\nbody = '''{body}'''\n");
        // Either outcome is fine; a stack overflow would abort this test process.
        let _ = hotroute::Router::load_str(&toml, "routes.toml".as_ref(), ".".as_ref());
    }
    let huge = format!("[[route]]\npath = \"/a\"\ntemplate = true\nbody = '''{}'''\n", "x".repeat(200_000));
    let err = hotroute::Router::load_str(&huge, "routes.toml".as_ref(), ".".as_ref()).expect_err("a 200 KB template");
    assert!(err.to_string().contains("over the limit of"), "{err}");

    // Render time: values nested tens of thousands deep, printed and dropped, in this process and in the binary.
    let toml = format!(
        "[[route]]\npath = \"/deep\"\ntemplate = true\nbody = '''{}'''\n\n[[route]]\npath = \"/deeper\"\ntemplate = true\nbody = '''{}'''\n{HELLO}",
        nested_value_template(500),
        nested_value_template(5000)
    );
    let s = Served::start(&toml, &[]).await;
    let bin = wire::Bin::start(&toml);
    for addr in [s.addr, bin.addr] {
        let deep = get(addr, "/deep").await;
        assert_eq!(deep.status, 200, "{}", &deep.text()[..deep.text().len().min(300)]);
        assert!(deep.body.starts_with(b"[[[[") && deep.body.len() > 40_000, "{} bytes", deep.body.len());
        assert_eq!(get(addr, "/deeper").await.status, 500, "out of fuel");
        let res = get(addr, "/hello").await;
        assert_eq!((res.status, res.text().as_str()), (200, "Hello World"));
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_download_that_keeps_moving_outlives_the_idle_and_write_timeouts() {
    // The client sends nothing while it reads a response that takes longer than both timeouts: that is not idle.
    let big = vec![b'z'; 8 * 1024 * 1024];
    let s = Served::start(
        &format!(
            "[server]\nidle_timeout = \"2s\"\nwrite_timeout = \"2s\"\n[[route]]\npath = \"/big\"\nfile = \"big.bin\"\n{HELLO}"
        ),
        &[("big.bin", &big)],
    )
    .await;
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(16 * 1024).unwrap();
    let mut c = sock.connect(s.addr).await.unwrap();
    c.write_all(b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n").await.unwrap();
    use tokio::io::AsyncReadExt;
    let started = Instant::now();
    let mut got = 0usize;
    let mut buf = vec![0u8; 16 * 1024];
    // About 5 s in all: 512 reads of up to 16 KiB, 10 ms apart.
    while got < big.len() + 100 && started.elapsed() < Duration::from_secs(20) {
        match tokio::time::timeout(Duration::from_secs(5), c.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => got += n,
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(started.elapsed() > Duration::from_secs(3), "the download was too fast to show anything");
    assert!(got > big.len(), "the download was cut off after {got} bytes of {}", big.len());
    s.stop().await;
}
