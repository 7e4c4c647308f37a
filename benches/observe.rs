//! What observing a request costs, per request, without the network: a probe started, routed and finished around
//! `Router::respond`, with the access log and the trace off (metrics and journal) and on, against `respond` alone.
//!
//! Run: `cargo bench --bench observe 2>/dev/null` (the access log and the trace write to stderr; the table goes to
//! stdout). Variants run in alternation, and the median of the rounds is reported.

use std::hint::black_box;
use std::time::Instant;

use hotroute::__internals::{Conn, Observer, Probe, RequestView};
use hotroute::{Live, LogFormat, Router};

const ROUNDS: usize = 7;
const ITERATIONS: u32 = 100_000;

fn main() {
    // Under `cargo test` (no `--bench`), one short round: enough to see that it all still works, without writing
    // millions of access-log lines into the test output.
    let full = std::env::args().any(|a| a == "--bench");
    let (rounds, iterations) = if full { (ROUNDS, ITERATIONS) } else { (1, 10) };
    let router = Router::load_str(include_str!("../routes.toml"), "routes.toml".as_ref(), ".".as_ref()).unwrap();
    let live = Live::new(router, None);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    // A real accepted socket, so that the trace has a connection (with its fd) to write about.
    let (traced, _client, _stream) = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (stream, peer) = listener.accept().await.unwrap();
        let stream = Observer::new(&listener, true).accepted(stream, peer, live.metrics());
        (stream.conn(), client, stream)
    });
    let variants: [(&str, Option<LogFormat>, bool); 4] = [
        ("observed, log and trace off (metrics and journal)", None, false),
        ("--log-requests (text)", Some(LogFormat::Text), false),
        ("--log-format json", Some(LogFormat::Json), false),
        ("--trace", None, true),
    ];
    let request = http::Request::get("/hello").header("host", "x").body(()).unwrap();
    let body = bytes::Bytes::new();
    let peer = "127.0.0.1:5555".parse().unwrap();
    let mut bare_ns = Vec::new();
    let mut ns: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    for _ in 0..rounds {
        let (parts, ()) = request.clone().into_parts();
        let view = RequestView { method: &parts.method, uri: &parts.uri, headers: &parts.headers, body: &body, peer };
        let t = Instant::now();
        for _ in 0..iterations {
            let router = live.router();
            black_box(router.respond(black_box(&view)).response);
        }
        bare_ns.push(t.elapsed().as_nanos() as f64 / f64::from(iterations));
        for (i, (_, log, trace)) in variants.iter().enumerate() {
            let conn = if *trace { traced.clone() } else { Conn::default() };
            let t = Instant::now();
            for _ in 0..iterations {
                let mut probe =
                    Probe::start(live.metrics(), live.journal(), *log, &conn, peer, black_box(&request), false);
                probe.routing();
                let router = live.router();
                let answer = router.respond(black_box(&view));
                probe.answered(&router, &view, &answer);
                probe.finish(&answer.response);
                black_box(answer.response);
            }
            ns[i].push(t.elapsed().as_nanos() as f64 / f64::from(iterations));
        }
    }
    let bare = median(&mut bare_ns);
    println!("per request, median of {rounds} rounds of {iterations}\n");
    println!("| variant | ns/request | added to respond() |");
    println!("| --- | ---: | ---: |");
    println!("| live.router() and Router::respond alone | {bare:.0} | - |");
    for (i, (name, _, _)) in variants.iter().enumerate() {
        let v = median(&mut ns[i]);
        println!("| {name} | {v:.0} | +{:.0} |", v - bare);
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
