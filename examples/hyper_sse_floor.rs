//! The hyper floor under hotroute's server-sent event streams (issue 16): the least a hyper 1 server does to send
//! the stream `scripts/bench_sse.sh` measures. Where `examples/sse_floor.rs` writes the bytes on the socket itself,
//! this one lets hyper's HTTP/1.1 connection do it, as hotroute does: so the benchmark tells what hyper costs (this
//! against `sse_floor`) from what hotroute adds on top of hyper (hotroute against this).
//!
//! Per connection, one hyper `http1` server connection on the bare `TcpStream` (no I/O layers, no timer, no header
//! rules). Every request gets a `text/event-stream` answer whose body yields `data: tick\n\n` every interval, on the
//! schedule of hotroute's `Timed` body (`route/stream.rs`): the first event one interval after the response starts,
//! each next one an interval after the previous was due, and when the stream is more than an interval behind, the
//! next one at once (no burst); after `--events` of them the body ends. hyper frames each event as an HTTP/1.1
//! chunk, as it does hotroute's.
//!
//! The same client measures it: `sse_bench --floor --bin target/release/examples/hyper_sse_floor` (it takes
//! `sse_floor`'s arguments). Run: `cargo run --profile release --example hyper_sse_floor -- --port 0 [--threads N]
//! [--interval-ms 10] [--events 300]`; it prints `listening on http://ADDR` as hotroute does.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::body::{Body, Bytes, Frame};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::time::{Instant, Sleep};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// One event, the bytes hotroute sends for `sse = [{ data = "tick" }]` (hyper adds the chunk framing).
static EVENT: &[u8] = b"data: tick\n\n";

/// The stream's body: one event per interval, `left` more to send.
struct Ticks {
    sleep: Pin<Box<Sleep>>,
    due: Instant,
    armed: bool,
    interval: Duration,
    left: u64,
}

impl Body for Ticks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = &mut *self;
        if this.left == 0 {
            return Poll::Ready(None);
        }
        if !this.armed {
            // hotroute's rule: due an interval after the previous was due, or now if that has passed.
            this.due = (this.due + this.interval).max(Instant::now());
            this.sleep.as_mut().reset(this.due);
            this.armed = true;
        }
        ready!(this.sleep.as_mut().poll(cx));
        this.armed = false;
        this.left -= 1;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(EVENT)))))
    }
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str, default: u64| -> u64 {
        match argv.iter().position(|a| a == flag) {
            None => default,
            Some(i) => argv
                .get(i + 1)
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{flag} takes a number, e.g. {flag} {default}")),
        }
    };
    let port = u16::try_from(value("--port", 0)).expect("--port takes a port number");
    let threads = usize::try_from(value("--threads", 0)).unwrap_or(0);
    let interval = Duration::from_millis(value("--interval-ms", 10));
    let events = value("--events", 300);
    let mut runtime = match threads {
        1 => tokio::runtime::Builder::new_current_thread(),
        n => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            if n > 1 {
                b.worker_threads(n);
            }
            b
        }
    };
    let runtime = runtime.enable_all().build().expect("a tokio runtime");
    // As hotroute does at start: 1,000 streams need more than a default soft limit of 1,024 descriptors.
    let _ = hotroute::raise_fd_limit();
    runtime.block_on(async move {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("bind 127.0.0.1");
        println!("listening on http://{}", listener.local_addr().expect("a bound address"));
        loop {
            let Ok((tcp, _)) = listener.accept().await else { continue };
            let _ = tcp.set_nodelay(true);
            let service = service_fn(move |_req| async move {
                let now = Instant::now();
                let body = Ticks {
                    sleep: Box::pin(tokio::time::sleep_until(now)),
                    due: now,
                    armed: false,
                    interval,
                    left: events,
                };
                let mut res = http::Response::new(body);
                res.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
                res.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
                Ok::<_, Infallible>(res)
            });
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tcp), service).await;
            });
        }
    });
}
