//! Response building and HTTP throughput: a plain route against templated and conditional ones, in the same run.
//!
//! `cargo bench --bench respond` runs both groups; `-- respond/` or `-- http/` runs one. The `respond` group times
//! `Router::respond` alone (no socket); the `http` group times one keep-alive HTTP/1.1 request over loopback, a
//! server with one worker thread and a blocking client, so the ratios there are what a client sees.

use std::hint::black_box;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hotroute::__internals::RequestView;
use hotroute::Router;
use http::{HeaderMap, HeaderValue, Method, Uri};

/// Plain routes only: this file loads on every version of hotroute, so the plain route's cost can be compared
/// across versions.
const PLAIN: &str = r#"
[[route]]
path = "/plain/{id}"
json = { id = 7, name = "Ada Lovelace", tags = ["math", "engines"] }
"#;

const SCRIPTED: &str = r#"
[[route]]
path = "/plain/{id}"
json = { id = 7, name = "Ada Lovelace", tags = ["math", "engines"] }

[[route]]
path = "/template/{id}"
template = true
json = { id = "{{ path.id }}", name = "Ada Lovelace", tags = ["math", "engines"] }

[[route]]
path = "/rich/{id}"
template = true
headers = { x-request = "{{ uuid() }}" }
json = { id = "{{ path.id | int }}", page = "{{ query.page }}", agent = "{{ headers['user-agent'] }}", n = "{{ count }}", at = "{{ now() }}" }

[[route]]
path = "/match/{id}"
json = { id = 7, name = "Ada Lovelace", tags = ["math", "engines"] }
match = { query = { page = "2" }, headers = { accept = "application/json" } }

[[route]]
path = "/match/{id}"
json = { id = 0 }
"#;

fn router(routes: &str) -> Router {
    Router::load_str(routes, "bench.toml".as_ref(), ".".as_ref()).unwrap_or_else(|e| panic!("{e}"))
}

fn bench_respond(c: &mut Criterion) {
    let mut headers = HeaderMap::new();
    headers.insert("user-agent", HeaderValue::from_static("bench/1.0"));
    headers.insert("accept", HeaderValue::from_static("application/json"));
    let body = Bytes::new();
    let peer: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let mut group = c.benchmark_group("respond");
    group.throughput(Throughput::Elements(1));
    let cases: [(&str, &str, &str); 5] = [
        ("plain", PLAIN, "/plain/42?page=2"),
        ("template", SCRIPTED, "/template/42?page=2"),
        ("template_rich", SCRIPTED, "/rich/42?page=2"),
        ("match_hit", SCRIPTED, "/match/42?page=2"),
        ("match_fallback", SCRIPTED, "/match/42?page=3"),
    ];
    for (name, routes, uri) in cases {
        group.bench_function(name, |b| {
            let router = router(routes);
            let uri: Uri = uri.parse().unwrap();
            let view = RequestView { method: &Method::GET, uri: &uri, headers: &headers, body: &body, peer };
            assert_eq!(router.respond(&view).response.status(), 200);
            b.iter(|| black_box(router.respond(black_box(&view)).response));
        });
    }
    group.finish();
}

/// A server on a runtime with one worker, and a blocking keep-alive client.
struct Served {
    stream: TcpStream,
    _runtime: tokio::runtime::Runtime,
}

fn serve(routes: &str) -> Served {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let live = Arc::new(hotroute::Live::new(router(routes), None));
    let addr = runtime.block_on(async {
        let server = hotroute::Server::bind("127.0.0.1:0".parse().unwrap(), live).await.unwrap();
        let addr = server.local_addr();
        tokio::spawn(server.serve(std::future::pending()));
        addr
    });
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_nodelay(true).unwrap();
    Served { stream, _runtime: runtime }
}

/// Sends `request` and reads one response (head and a content-length body) into `buf`; returns its length.
fn roundtrip(stream: &mut TcpStream, request: &[u8], buf: &mut Vec<u8>) -> usize {
    stream.write_all(request).unwrap();
    buf.clear();
    let mut chunk = [0u8; 8192];
    loop {
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "the server closed the connection");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..end]).unwrap();
            let len: usize = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return buf.len();
            }
        }
    }
}

fn bench_http(c: &mut Criterion) {
    let mut group = c.benchmark_group("http");
    group.throughput(Throughput::Elements(1));
    let cases: [(&str, &str, &str); 4] = [
        ("plain", PLAIN, "/plain/42?page=2"),
        ("template", SCRIPTED, "/template/42?page=2"),
        ("template_rich", SCRIPTED, "/rich/42?page=2"),
        ("match_hit", SCRIPTED, "/match/42?page=2"),
    ];
    for (name, routes, uri) in cases {
        group.bench_function(name, |b| {
            let mut served = serve(routes);
            let request = format!(
                "GET {uri} HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench/1.0\r\nAccept: application/json\r\n\r\n"
            );
            let mut buf = Vec::with_capacity(1024);
            roundtrip(&mut served.stream, request.as_bytes(), &mut buf);
            assert!(buf.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&buf));
            b.iter(|| roundtrip(&mut served.stream, request.as_bytes(), &mut buf));
        });
    }
    group.finish();
}

criterion_group!(benches, bench_respond, bench_http);
criterion_main!(benches);
