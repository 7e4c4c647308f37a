//! WebSocket echo round trips per second: hotroute's `websocket = { echo = true }` against a minimal
//! tokio-tungstenite echo server, each in its own process with one worker thread, driven in alternating rounds by
//! the same client (this process). See BENCHMARKS.md for the command and the figures.
//!
//! ```sh
//! cargo build --profile release --bin hotroute --example ws_echo_bench
//! target/release/examples/ws_echo_bench target/release/hotroute [CONNECTIONS] [SECONDS] [ROUNDS] [SIZE]
//! ```

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("baseline-server") {
        baseline_server();
        return;
    }
    let Some(hotroute) = args.get(1) else {
        eprintln!("usage: ws_echo_bench PATH/TO/hotroute [CONNECTIONS=16] [SECONDS=5] [ROUNDS=3] [SIZE=32]");
        std::process::exit(2);
    };
    let num = |i: usize, default: u64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let (conns, secs, rounds, size) = (num(2, 16), num(3, 5), num(4, 3), num(5, 32) as usize);

    let dir = std::env::temp_dir().join(format!("ws-echo-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("routes.toml"), "[[route]]\npath = \"/echo\"\nwebsocket = { echo = true }\n").unwrap();
    let mut hot = Command::new(hotroute);
    hot.current_dir(&dir).args(["routes.toml", "--port", "0", "--no-watch", "--threads", "1", "--log-level", "warn"]);
    let (mut hot_child, hot_addr) = spawn(hot);
    let mut base = Command::new(std::env::current_exe().unwrap());
    base.arg("baseline-server");
    let (mut base_child, base_addr) = spawn(base);

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let (mut hot_rates, mut base_rates) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        for (name, addr, rates) in
            [("tokio-tungstenite", base_addr, &mut base_rates), ("hotroute", hot_addr, &mut hot_rates)]
        {
            let rate = rt.block_on(drive(addr, conns as usize, Duration::from_secs(secs), size));
            println!("round {round}: {name:<17} {rate:>10.0} round trips/s");
            rates.push(rate);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let (h, b) = (median(&mut hot_rates), median(&mut base_rates));
    println!(
        "median of {rounds} rounds, {conns} connections, {size}-byte text messages: hotroute {h:.0}/s, \
         tokio-tungstenite {b:.0}/s, ratio {:.2}x",
        h / b
    );
    let _ = hot_child.kill();
    let _ = base_child.kill();
    let _ = hot_child.wait();
    let _ = base_child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Starts a server that prints `listening on http://ADDR` first on stdout.
fn spawn(mut cmd: Command) -> (Child, SocketAddr) {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("cannot start a server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line.trim().strip_prefix("listening on http://").and_then(|a| a.parse().ok());
    (child, addr.unwrap_or_else(|| panic!("no address in {line:?}")))
}

/// `conns` clients, each sending a message and waiting for its echo, over and over for `time`.
async fn drive(addr: SocketAddr, conns: usize, time: Duration, size: usize) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/echo")).await.unwrap();
            let payload = "x".repeat(size);
            while start.elapsed() < time {
                ws.send(Message::text(payload.clone())).await.unwrap();
                match ws.next().await {
                    Some(Ok(Message::Text(t))) if t.len() == size => done.fetch_add(1, Ordering::Relaxed),
                    other => panic!("not an echo: {other:?}"),
                };
            }
            let _ = ws.close(None).await;
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

/// The peer: the smallest tokio-tungstenite echo server, with one worker thread like hotroute's `--threads 1`.
fn baseline_server() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("listening on http://{}", listener.local_addr().unwrap());
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else { return };
                while let Some(Ok(m)) = ws.next().await {
                    if (m.is_text() || m.is_binary()) && ws.send(m).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
}
