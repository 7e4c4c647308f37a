//! The floor under hotroute's `/hello`: the least a hyper server on tokio does to answer `GET /hello` with
//! `Hello World`, on one thread, with the same allocator as the binary. `scripts/bench_http.py --floor` runs it
//! beside hotroute and nginx, so that the cost of hotroute's own per-request work (watchdogs, journal, metrics,
//! routing) is measured, not guessed: the difference between the two is ours; the difference between this and
//! nginx is hyper's and tokio's.
//!
//! Flags add the hyper-util pieces hotroute serves with, one at a time, to price each:
//! `--auto` (HTTP/1 and HTTP/2 on one port), `--timer` (the header-read timeout), `--graceful` (the shutdown watcher).
//!
//! Run: `cargo run --release --example hyper_floor -- --port 8080 [--auto] [--timer] [--graceful]`.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpListener;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

async fn hello(_: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut res = Response::new(Full::new(Bytes::from_static(b"Hello World")));
    res.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    Ok(res)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let has = |flag: &str| args.iter().any(|a| a == flag);
    let port: u16 =
        args.iter().position(|a| a == "--port").and_then(|i| args.get(i + 1)).and_then(|p| p.parse().ok()).unwrap_or(0);
    let (auto, timer, graceful) = (has("--auto"), has("--timer"), has("--graceful"));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
    runtime.block_on(async move {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("bind 127.0.0.1");
        println!("listening on http://{}", listener.local_addr().expect("a bound address"));
        let watcher = hyper_util::server::graceful::GracefulShutdown::new();
        let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        if timer {
            builder.http1().timer(TokioTimer::new()).header_read_timeout(Duration::from_secs(10));
        }
        let builder = std::sync::Arc::new(builder);
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let _ = stream.set_nodelay(true);
            let io = TokioIo::new(stream);
            let builder = builder.clone();
            let watch = graceful.then(|| watcher.watcher());
            tokio::spawn(async move {
                if auto {
                    let conn = builder.serve_connection_with_upgrades(io, service_fn(hello));
                    let _ = match watch {
                        Some(w) => w.watch(conn.into_owned()).await,
                        None => conn.await,
                    };
                } else {
                    let mut http1 = hyper::server::conn::http1::Builder::new();
                    if timer {
                        http1.timer(TokioTimer::new()).header_read_timeout(Duration::from_secs(10));
                    }
                    let conn = http1.serve_connection(io, service_fn(hello));
                    let _ = match watch {
                        Some(w) => w.watch(conn).await,
                        None => conn.await,
                    };
                }
            });
        }
    });
}
