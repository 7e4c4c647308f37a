//! The floor under hotroute's server-sent event streams (issue 16): the least a tokio server does to send the stream
//! `scripts/bench_sse.sh` measures, so that the benchmark tells what any tokio server costs on this machine from what
//! hotroute adds. `scripts/bench_sse.sh` with `FLOOR=1` runs it under the same client (`examples/sse_bench.rs
//! --floor`).
//!
//! Per connection, one task: read the request head (whatever it asks), write an HTTP/1.1 chunked
//! `text/event-stream` head, then every interval one pre-framed chunk, the 17 bytes hotroute sends for
//! `sse = [{ data = "tick", delay = "10ms" }]` (`c\r\ndata: tick\n\n\r\n`, one `send`), and after `--events` of them
//! the last chunk. The schedule is hotroute's (`route/stream.rs`): the first event one interval after the response
//! starts, each next one an interval after the previous was due, and when the stream is more than an interval
//! behind, the next one at once and the later ones an interval after it (no burst). No routing, no watchdogs, no
//! hyper: what is left is the runtime, its timer and the socket.
//!
//! The timer is one `tokio::time::Sleep` per stream, reset to each next deadline, as hotroute's. `--tokio-interval`
//! uses `tokio::time::interval` with `MissedTickBehavior::Delay` instead, the nearest tokio has to that rule, but
//! not the same: tokio restarts the schedule once a tick is more than 5 ms late (hard-coded), hotroute only when it
//! is more than an interval late, and the benchmark's client measures lateness against hotroute's rule. So on a
//! loaded machine the interval's restarts read as lateness (p50 5.6 ms at 1,000 x 10 ms, BENCHMARKS.md) that is
//! the rule, not the server: the default is hotroute's rule, written out.
//!
//! The runtime is shaped like hotroute's: `--threads 1` a current-thread runtime (hotroute `--threads 1`), otherwise
//! a multi-thread one with that many workers (0, the default: one per core, as hotroute without `--threads`), and
//! the same allocator as the binary.
//!
//! Run: `cargo run --profile release --example sse_floor -- --port 0 [--threads N] [--interval-ms 10]
//! [--events 300] [--tokio-interval]`; it prints `listening on http://ADDR` as hotroute does.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, MissedTickBehavior};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The response head: what a client of an SSE stream needs, no more (hotroute adds `date` and its own headers).
const HEAD: &[u8] =
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n";
/// One event as hotroute frames it: the SSE event `data: tick\n\n` (12 bytes) in an HTTP/1.1 chunk.
const EVENT: &[u8] = b"c\r\ndata: tick\n\n\r\n";
/// The last chunk of a chunked body.
const END: &[u8] = b"0\r\n\r\n";
/// The longest request head read; a longer one is refused (the connection is closed).
const MAX_HEAD: usize = 8 * 1024;

/// Reads up to the end of a request head; false if the client closed, failed, or sent more than [`MAX_HEAD`]. The
/// buffer is on the heap and freed on return: an array here would stay in every stream's task for its whole life
/// (a future is as big as its largest state), and the memory per stream is one of the figures.
async fn read_head(tcp: &mut TcpStream) -> bool {
    let mut buf = Vec::with_capacity(1024);
    loop {
        if buf.len() >= MAX_HEAD {
            return false;
        }
        match tcp.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(_) => {}
        }
        if buf.windows(4).any(|w| w == b"\r\n\r\n") {
            return true;
        }
    }
}

/// One connection: one request, its stream, then close.
async fn serve(mut tcp: TcpStream, interval: Duration, events: u64, tokio_interval: bool) -> std::io::Result<()> {
    if !read_head(&mut tcp).await {
        return Ok(());
    }
    tcp.write_all(HEAD).await?;
    if tokio_interval {
        let mut ticks = tokio::time::interval_at(Instant::now() + interval, interval);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        for _ in 0..events {
            ticks.tick().await;
            tcp.write_all(EVENT).await?;
        }
    } else {
        // hotroute's rule (`Timed::poll_frame`): due an interval after the previous was due, or now if that passed.
        let mut due = Instant::now();
        let sleep = tokio::time::sleep_until(due);
        tokio::pin!(sleep);
        for _ in 0..events {
            due = (due + interval).max(Instant::now());
            sleep.as_mut().reset(due);
            sleep.as_mut().await;
            tcp.write_all(EVENT).await?;
        }
    }
    tcp.write_all(END).await?;
    // Let the client close first (it reads to the last event, then drops the connection).
    let mut rest = Vec::with_capacity(1024);
    while matches!(tcp.read_buf(&mut rest).await, Ok(n) if n > 0) {
        rest.clear();
    }
    Ok(())
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
    let tokio_interval = argv.iter().any(|a| a == "--tokio-interval");
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
            tokio::spawn(serve(tcp, interval, events, tokio_interval));
        }
    });
}
