//! `[server] openapi` and `openapi_validate` (issue 17's goals): what validation adds to a JSON POST route (at most
//! +30%), and a document served directly against the route file `hotroute import openapi` writes from it (the same
//! speed).
//!
//! `cargo bench --bench openapi` times, in process and without sockets, what the pipeline does per request once the
//! body is read: the OpenAPI checks (when on), then `Router::respond`. Each figure is the median of 15 rounds of
//! 20,000 requests, the variants taking turns (every other round in reverse) so that a noisy neighbour slows them
//! alike. Under `cargo test` it
//! runs one short round, to check that it still works.
//!
//! Then the same JSON POST over HTTP: a server (one worker thread) per setting on loopback, one kept-alive
//! HTTP/1.1 connection each, requests one after another, the two taking turns per round: the cost a client sees.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hotroute::__internals::{RequestView, openapi_check};
use hotroute::{Live, Router};
use http::{HeaderMap, HeaderValue, Method, Uri};

/// The allocator of the `hotroute` binary (see src/main.rs), so that the figures are the command's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A JSON POST with a body schema of six fields (a `$ref`, required fields, an enum, a nested array, a
/// `nullable`), and a GET with a path, a query and a header parameter.
const SPEC: &str = r##"openapi: 3.0.3
info: { title: Bench, version: "1" }
paths:
  /items/{itemId}:
    get:
      parameters:
        - { name: itemId, in: path, required: true, schema: { type: integer, minimum: 1 } }
        - { name: limit, in: query, required: true, schema: { type: integer, maximum: 50 } }
        - { name: X-Request-Id, in: header, required: true, schema: { type: string } }
      responses:
        "200": { description: ok, content: { application/json: { example: { id: 1, name: saw } } } }
  /items:
    post:
      requestBody:
        required: true
        content:
          application/json:
            schema: { $ref: '#/components/schemas/NewItem' }
      responses:
        "201": { description: created, content: { application/json: { example: { id: 2, name: made } } } }
components:
  schemas:
    NewItem:
      type: object
      required: [name, kind]
      additionalProperties: false
      properties:
        name: { type: string, maxLength: 100 }
        kind: { type: string, enum: [tool, toy] }
        price: { type: number, nullable: true, minimum: 0 }
        tags: { type: array, items: { type: string }, maxItems: 10 }
        owner: { $ref: '#/components/schemas/Owner' }
        note: { type: string }
    Owner:
      type: object
      required: [id]
      properties: { id: { type: integer }, email: { type: string } }
"##;

const BODY: &str =
    r#"{"name":"saw","kind":"tool","price":12.5,"tags":["a","b"],"owner":{"id":3,"email":"a@b.c"},"note":"x"}"#;

fn live(dir: &Path, name: &str, toml: &str) -> std::sync::Arc<Router> {
    std::fs::write(dir.join(name), toml).unwrap();
    Live::from_file(&dir.join(name)).expect("the bench's routes load").load_full()
}

/// The time of `n` requests through the pipeline's routing step: the checks, then the route.
fn run(router: &Router, method: &Method, uri: &Uri, headers: &HeaderMap, body: &Bytes, n: usize) -> Duration {
    let peer = ([127, 0, 0, 1], 1).into();
    let start = Instant::now();
    for _ in 0..n {
        let view = RequestView { method, uri, headers, body, peer };
        let refused = openapi_check(router, &view);
        assert!(refused.is_none_or(|v| !v.enforce));
        let answer = router.respond(&view);
        std::hint::black_box(answer.response);
    }
    start.elapsed()
}

/// A server for `router`'s routes on loopback, with one worker thread, and a connection to it.
fn serve(router: Arc<Router>, live_of: &Path) -> (TcpStream, tokio::runtime::Runtime) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    drop(router);
    let live = Arc::new(Live::from_file(live_of).unwrap());
    let addr = runtime.block_on(async {
        let server = hotroute::Server::bind("127.0.0.1:0".parse().unwrap(), live).await.unwrap();
        let addr = server.local_addr();
        tokio::spawn(server.serve(std::future::pending()));
        addr
    });
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_nodelay(true).unwrap();
    (stream, runtime)
}

/// The time of `n` POSTs one after another on `stream`, each answer read whole (head, then its content-length).
fn http_run(stream: &mut TcpStream, n: usize) -> Duration {
    let request = format!(
        "POST /items HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let mut buf = vec![0u8; 64 * 1024];
    let start = Instant::now();
    for _ in 0..n {
        stream.write_all(request.as_bytes()).unwrap();
        let mut have = 0;
        loop {
            have += stream.read(&mut buf[have..]).unwrap();
            let text = &buf[..have];
            if let Some(end) = text.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&text[..end]).to_ascii_lowercase();
                assert!(head.starts_with("http/1.1 201"), "{head}");
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse().unwrap());
                if have >= end + 4 + len {
                    break;
                }
            }
        }
    }
    start.elapsed()
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (rounds, n) = if full { (15, 20_000) } else { (1, 200) };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("spec.yaml"), SPEC).unwrap();
    let imported = hotroute::import::openapi_file(&dir.path().join("spec.yaml")).unwrap();
    let variants = [
        ("POST /items, openapi_validate off", live(dir.path(), "off.toml", "[server]\nopenapi = \"spec.yaml\"\n")),
        (
            "POST /items, openapi_validate enforce",
            live(dir.path(), "on.toml", "[server]\nopenapi = \"spec.yaml\"\nopenapi_validate = \"enforce\"\n"),
        ),
        ("GET /items/3, the document served", live(dir.path(), "served.toml", "[server]\nopenapi = \"spec.yaml\"\n")),
        ("GET /items/3, the imported route file", live(dir.path(), "imported.toml", &imported.routes)),
    ];
    let post = (Method::POST, Uri::from_static("/items"), Bytes::from_static(BODY.as_bytes()));
    let get = (Method::GET, Uri::from_static("/items/3?limit=5"), Bytes::new());
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers.insert("x-request-id", HeaderValue::from_static("r1"));
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); variants.len()];
    for round in 0..rounds {
        // Every other round in reverse, so that no variant always runs right after another's (caches, clocks).
        let mut order: Vec<usize> = (0..variants.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let (method, uri, body) = if i < 2 { &post } else { &get };
            times[i].push(run(&variants[i].1, method, uri, &headers, body, n));
        }
    }
    let mut medians = Vec::new();
    for (i, (name, _)) in variants.iter().enumerate() {
        times[i].sort();
        let per = times[i][times[i].len() / 2] / n as u32;
        medians.push(per);
        println!("{name}: median {per:?} per request");
    }
    let ratio = |a: usize, b: usize| medians[a].as_secs_f64() / medians[b].as_secs_f64();
    println!("validation adds {:+.0}% to the JSON POST", (ratio(1, 0) - 1.0) * 100.0);
    println!("the document served directly / the imported file: {:.2}x", ratio(2, 3));

    let (rounds, n) = if full { (7, 5_000) } else { (1, 20) };
    let mut servers: Vec<_> = [("off", "off.toml"), ("enforce", "on.toml")]
        .into_iter()
        .map(|(name, file)| (name, serve(variants[0].1.clone(), &dir.path().join(file))))
        .collect();
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); servers.len()];
    for _ in 0..rounds {
        for (i, (_, (stream, _))) in servers.iter_mut().enumerate() {
            times[i].push(http_run(stream, n));
        }
    }
    let mut medians = Vec::new();
    for (i, (name, _)) in servers.iter().enumerate() {
        times[i].sort();
        let per = times[i][times[i].len() / 2] / n as u32;
        medians.push(per);
        println!("HTTP POST /items, openapi_validate {name}: median {per:?} per request");
    }
    println!(
        "over HTTP, validation adds {:+.0}% to the JSON POST",
        (medians[1].as_secs_f64() / medians[0].as_secs_f64() - 1.0) * 100.0
    );
}
