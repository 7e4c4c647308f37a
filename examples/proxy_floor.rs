//! The floor under hotroute's proxy: the least a hyper 1 reverse proxy on tokio does, on one thread, with the same
//! allocator and runtime as `hotroute --threads 1`. Each client connection (hyper's `http1` server connection) gets
//! one upstream connection of its own (`hyper::client::conn::http1`), polled in the same task as the client
//! connection (as hotroute's `route::proxy::Local` is, so no request crosses tasks); each request is forwarded as it
//! came (method, origin-form target, headers, streamed body) and the answer is streamed back as it came. No header is
//! rewritten, no timeout is set, nothing is logged or counted.
//!
//! `scripts/bench_proxy.py --floor` runs it beside hotroute and nginx `proxy_pass` against the same upstream: the
//! difference between this and nginx is hyper's and tokio's, the difference between hotroute and this is ours.
//!
//! Run: `cargo run --release --example proxy_floor -- --port 8080 --upstream 127.0.0.1:8081`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use http_body_util::combinators::BoxBody;
use hyper::body::{Bytes, Incoming};
use hyper::client::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

type Answer = Response<BoxBody<Bytes, hyper::Error>>;

/// A 502 with an empty body: the floor has no error texts to format.
fn bad_gateway() -> Answer {
    let mut res = Response::new(http_body_util::Empty::new().map_err(|never| match never {}).boxed());
    *res.status_mut() = StatusCode::BAD_GATEWAY;
    res
}

/// Forwards one request on the connection's upstream sender and hands the answer back as it is.
async fn forward(sender: Arc<Mutex<http1::SendRequest<Incoming>>>, req: Request<Incoming>) -> Answer {
    // The lock is held only to start the send (hyper's HTTP/1 client takes one request at a time; the client
    // connection sends the next only after this answer), never across an await.
    let sent = match sender.lock() {
        Ok(mut sender) => sender.send_request(req),
        Err(_) => return bad_gateway(),
    };
    match sent.await {
        Ok(res) => res.map(BodyExt::boxed),
        Err(_) => bad_gateway(),
    }
}

async fn serve(client: TcpStream, upstream: SocketAddr) {
    let Ok(up) = TcpStream::connect(upstream).await else { return };
    let _ = up.set_nodelay(true);
    let Ok((sender, up_conn)) = http1::handshake::<_, Incoming>(TokioIo::new(up)).await else { return };
    let sender = Arc::new(Mutex::new(sender));
    let service = service_fn(move |req| {
        let sender = sender.clone();
        async move { Ok::<_, Infallible>(forward(sender, req).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(client), service);
    // Both connections polled by this one task: upstream first (an answer that came in is handed over), then the
    // client side. The task ends with the client connection; the upstream one is dropped with it.
    tokio::pin!(conn, up_conn);
    tokio::select! {
        biased;
        _ = &mut up_conn => {}
        _ = &mut conn => {}
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).cloned();
    let port: u16 = value("--port").and_then(|p| p.parse().ok()).unwrap_or(0);
    let Some(upstream) = value("--upstream").and_then(|u| u.parse::<SocketAddr>().ok()) else {
        eprintln!("usage: proxy_floor --upstream IP:PORT [--port PORT]");
        std::process::exit(2);
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
    runtime.block_on(async move {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("bind 127.0.0.1");
        println!("listening on http://{}", listener.local_addr().expect("a bound address"));
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let _ = stream.set_nodelay(true);
            tokio::spawn(serve(stream, upstream));
        }
    });
}
