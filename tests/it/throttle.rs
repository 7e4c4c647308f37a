//! `throttle = "64KiB/s"` and `cut_after = "10KiB"` against the binary: a text body, a body file, a folder's file
//! and a timed stream arrive paced; a cut download stops after exactly that many bytes with the connection closed;
//! clients that leave a throttled download free it at once; bad values are load errors with line and column.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common;
use crate::support::bin::Bin;

use common::{client, load_error};

const KIB: usize = 1024;

fn routes() -> String {
    format!(
        r#"
[[route]]
path = "/text"
body = "{text}"
throttle = "32KiB/s"

[[route]]
path = "/file"
file = "big.bin"
throttle = "32KiB/s"

[[route]]
path = "/files/{{*rest}}"
dir = "public"
throttle = "32KiB/s"

[[route]]
path = "/stream"
stream = [{{ data = "{chunk}" }}, {{ data = "{chunk}" }}, {{ data = "{chunk}" }}, {{ data = "{chunk}" }}]
throttle = "32KiB/s"

[[route]]
path = "/cut"
file = "big.bin"
cut_after = "10KiB"

[[route]]
path = "/endless"
stream = [{{ data = "{chunk}" }}]
repeat = true
count = 10000000
throttle = "16KiB/s"

[[route]]
path = "/hello"
body = "hi"
"#,
        text = "t".repeat(40 * KIB),
        chunk = "s".repeat(10 * KIB),
    )
}

fn start() -> Bin {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("routes.toml"), routes()).unwrap();
    std::fs::write(dir.path().join("big.bin"), vec![b'f'; 40 * KIB]).unwrap();
    std::fs::create_dir(dir.path().join("public")).unwrap();
    std::fs::write(dir.path().join("public/a.txt"), vec![b'd'; 40 * KIB]).unwrap();
    Bin::command().in_dir(dir).args(["routes.toml", "--port", "0", "--no-watch", "--log-level", "warn"]).start()
}

/// Downloads `url`, returning the body, when each chunk arrived (from the request), and the content-length.
async fn timed_get(url: String) -> (Vec<u8>, Vec<Duration>, Option<u64>) {
    let started = Instant::now();
    let mut res = client().get(url).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let length = res.content_length();
    let (mut body, mut times) = (Vec::new(), Vec::new());
    while let Some(chunk) = res.chunk().await.unwrap() {
        body.extend_from_slice(&chunk);
        times.push(started.elapsed());
    }
    (body, times, length)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttle_paces_text_file_folder_and_stream_bodies() {
    let bin = start();
    let urls = ["/text", "/file", "/files/a.txt", "/stream"].map(|p| bin.url(p));
    let runs = futures_util::future::join_all(urls.iter().cloned().map(timed_get)).await;
    for ((body, times, length), url) in runs.into_iter().zip(&urls) {
        assert_eq!(body.len(), 40 * KIB, "{url}");
        let took = *times.last().unwrap();
        // 40 KiB at 32 KiB/s: the last byte leaves about 1.2 s after the first (which leaves at once); bounded
        // above only so that a hang fails.
        assert!(took >= Duration::from_millis(1100), "{url}: 40 KiB arrived in {took:?} at 32 KiB/s");
        assert!(took < Duration::from_secs(15), "{url}: took {took:?}");
        // Paced, not one burst at the end: a third of the body is there well before the end.
        let third = times.iter().zip(1..).find(|(_, i)| *i * 1600 >= 40 * KIB / 3).map(|(t, _)| *t).unwrap();
        assert!(third + Duration::from_millis(500) < took, "{url}: a third arrived at {third:?}, all at {took:?}");
        // A whole body keeps its length; a timed stream has none.
        if url.ends_with("/text") || url.ends_with("/file") {
            assert_eq!(length, Some(40 * KIB as u64), "{url}");
        }
        eprintln!("{url}: {} chunks, last at {took:?}", times.len());
    }
}

#[tokio::test]
async fn cut_after_breaks_the_download_off_after_that_many_bytes() {
    let bin = start();
    // On the wire: the head promises 40 KiB, 10 KiB come, then the connection closes.
    let mut tcp = tokio::net::TcpStream::connect(bin.addr).await.unwrap();
    tcp.write_all(b"GET /cut HTTP/1.1\r\nHost: localhost\r\n\r\n").await.unwrap();
    let mut all = Vec::new();
    let mut buf = vec![0u8; 64 * KIB];
    // The end is EOF or a reset (what the server's socket does depends on what the kernel still holds).
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) => return "eof".to_owned(),
                Ok(n) => all.extend_from_slice(&buf[..n]),
                Err(e) => return e.to_string(),
            }
        }
    })
    .await
    .expect("the connection was not closed");
    eprintln!("the cut connection ended with: {ended}");
    let end = all.windows(4).position(|w| w == b"\r\n\r\n").expect("a response head") + 4;
    let head = String::from_utf8_lossy(&all[..end]).to_lowercase();
    assert!(head.starts_with("http/1.1 200") && head.contains("content-length: 40960"), "{head}");
    assert_eq!(all.len() - end, 10 * KIB, "body bytes before the cut");

    // A real client sees a download that broke off, over HTTP/1.1 and HTTP/2 (a reset stream).
    for h2 in [false, true] {
        let mut builder = reqwest::Client::builder().no_proxy();
        if h2 {
            builder = builder.http2_prior_knowledge();
        }
        let mut res = builder.build().unwrap().get(bin.url("/cut")).send().await.unwrap();
        let mut got = 0;
        let err = loop {
            match res.chunk().await {
                Ok(Some(c)) => got += c.len(),
                Ok(None) => panic!("h2 {h2}: the body ended normally after {got} bytes"),
                Err(e) => break e,
            }
        };
        assert_eq!(got, 10 * KIB, "h2 {h2}: {err}");
    }
    // The server goes on.
    assert_eq!(client().get(bin.url("/hello")).send().await.unwrap().text().await.unwrap(), "hi");
}

#[tokio::test]
async fn clients_that_leave_a_throttled_download_free_it() {
    let bin = start();
    let mut open = Vec::new();
    for _ in 0..20 {
        let mut res = client().get(bin.url("/endless")).send().await.unwrap();
        assert!(!res.chunk().await.unwrap().unwrap().is_empty());
        open.push(res);
    }
    assert!(bin.open_connections().await >= 20);
    drop(open);
    bin.wait_until_connections_are_freed().await;
    assert_eq!(client().get(bin.url("/hello")).send().await.unwrap().text().await.unwrap(), "hi");
}

#[test]
fn bad_throttle_and_cut_after_are_load_errors_with_line_and_column() {
    let route = |line: &str| format!("[[route]]\npath = \"/a\"\nbody = \"x\"\n{line}\n");
    let cases = [
        ("throttle = \"fast\"", "`fast` is not a rate: it has no `/s`", "4:12"),
        ("throttle = \"64KiB\"", "`64KiB` is not a rate: it has no `/s`", "4:12"),
        ("throttle = \"ten/s\"", "`ten/s` is not a rate", "4:12"),
        ("throttle = \"1B/s\"", "below 16", "4:12"),
        ("throttle = 5", "`throttle = 5` is a number, but `throttle` is a rate", "4:12"),
        ("cut_after = \"ten\"", "`ten` is not a size for `cut_after`", "4:13"),
        ("cut_after = -1", "a size cannot be negative", "4:13"),
        ("cut_after = 10\nfault = \"reset\"", "a route with a `fault` sends no body", "4:13"),
    ];
    for (line, want, place) in cases {
        let text = load_error(&route(line));
        assert!(text.contains(want) && text.contains(&format!("routes.toml:{place}")), "{line}:\n{text}");
    }
}
