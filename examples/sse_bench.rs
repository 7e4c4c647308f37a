//! SSE benchmark client: many concurrent server-sent event streams against the hotroute binary, measuring how late
//! each event arrives against its schedule and the server's memory per open stream. Run it through
//! `scripts/bench_sse.sh` (which builds both in release), or:
//!
//! ```text
//! cargo run --profile release --example sse_bench -- --bin target/release/hotroute --streams 1000 --events 300
//! ```
//!
//! The server sends `data: tick` every `--interval-ms` (default 10) on each stream, from a route with
//! `sse = [{ data = "tick", delay = "10ms" }]`, `repeat = true`. Each client reads with raw HTTP/1.1 on its own
//! connection and notes when each event arrives. An event's lateness is its arrival minus its schedule, the arrival
//! of the stream's first event plus `k * interval` (the server keeps to that schedule, it does not drift). Memory is
//! the server's VmRSS with every stream open minus before any, divided by the streams. The client runs on the same
//! machine, so its own scheduling is in the lateness too: the figure is an upper bound on the server's.
//!
//! CPU: the server's and the client's user+system time from the first stream opened to the last event, per event
//! (from `/proc/PID/stat`), which says which side is saturated. `--threads 1` runs the client on one thread (a
//! current-thread runtime: no work stealing, no cross-thread wakes), and `--server-cpus 0` starts the server under
//! `taskset -c 0`; with the client itself under `taskset -c 1` each has a core of its own, as a server and its
//! clients on different machines would.
//!
//! `--floor` measures `examples/sse_floor.rs` (the least a tokio server does for the same stream) instead: `--bin`
//! then names that example's binary, started with the same interval and event count. `--server-threads N` starts
//! either server with `--threads N` (1: a current-thread runtime; without it, the default of one worker per core).

use std::time::{Duration, Instant};

use std::io::BufRead as _;
use std::process::Command;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Args {
    bin: String,
    streams: usize,
    events: usize,
    interval: Duration,
    /// Client worker threads; 1 is a current-thread runtime, 0 tokio's default (one per core).
    threads: usize,
    /// CPUs for the server, as `taskset -c` takes them; empty: wherever the kernel puts it.
    server_cpus: String,
    /// The server is `examples/sse_floor.rs`, not hotroute.
    floor: bool,
    /// `--threads` for the server; 0: not given (its default).
    server_threads: usize,
}

fn args() -> Args {
    let mut a = Args {
        bin: std::env::var("HOTROUTE_BIN").unwrap_or_else(|_| "target/release/hotroute".into()),
        streams: 1000,
        events: 300,
        interval: Duration::from_millis(10),
        threads: 0,
        server_cpus: String::new(),
        floor: false,
        server_threads: 0,
    };
    // `--floor` is the one flag without a value.
    let argv: Vec<String> = std::env::args().skip(1).filter(|arg| arg != "--floor").collect();
    a.floor = std::env::args().any(|arg| arg == "--floor");
    for pair in argv.chunks(2) {
        let value = pair.get(1).cloned().unwrap_or_default();
        match pair[0].as_str() {
            "--bin" => a.bin = value,
            "--streams" => a.streams = value.parse().expect("--streams N"),
            "--events" => a.events = value.parse().expect("--events N"),
            "--interval-ms" => a.interval = Duration::from_millis(value.parse().expect("--interval-ms N")),
            "--threads" => a.threads = value.parse().expect("--threads N"),
            "--server-cpus" => a.server_cpus = value,
            "--server-threads" => a.server_threads = value.parse().expect("--server-threads N"),
            other => panic!(
                "unknown argument {other}; use --bin PATH --streams N --events N --interval-ms N --threads N \
                 --server-cpus LIST --server-threads N --floor"
            ),
        }
    }
    a
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Each event's lateness in microseconds: against the fixed schedule (first event + k * interval), and against the
/// server's own schedule, which restarts after an event more than one interval late (it then sends the next at once
/// rather than a burst): `max(previous schedule + interval, previous arrival)`.
type Lateness = (Vec<i64>, Vec<i64>);

fn micros(now: Instant, due: Instant) -> i64 {
    if now >= due { (now - due).as_micros() as i64 } else { -((due - now).as_micros() as i64) }
}

/// One stream: connects, reads every event, returns each event's lateness. Signals `opened` once its first event
/// is in.
async fn stream(addr: std::net::SocketAddr, a: (usize, Duration), opened: tokio::sync::mpsc::Sender<()>) -> Lateness {
    let (events, interval) = a;
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.set_nodelay(true).unwrap();
    tcp.write_all(b"GET /ticks HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n").await.unwrap();
    let mut buf = vec![0u8; 16 * 1024];
    let mut seen = 0usize;
    let mut head_done = false;
    let mut tail: Vec<u8> = Vec::new();
    let mut first: Option<Instant> = None;
    let mut late = Vec::with_capacity(events);
    let mut late_own = Vec::with_capacity(events);
    let mut own: Option<(Instant, Instant)> = None; // (schedule, arrival) of the previous event
    while seen < events {
        let n = match tcp.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let now = Instant::now();
        tail.extend_from_slice(&buf[..n]);
        if !head_done {
            let Some(end) = tail.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
            tail.drain(..end + 4);
            head_done = true;
        }
        // Each event is `data: tick\n\n`, inside an HTTP/1.1 chunk.
        while let Some(pos) = tail.windows(10).position(|w| w == b"data: tick") {
            tail.drain(..pos + 10);
            let start = *first.get_or_insert_with(|| {
                let _ = opened.try_send(());
                now
            });
            let due = start + interval * seen as u32;
            late.push(micros(now, due));
            let own_due = match own {
                None => now,
                Some((sched, arrived)) => (sched + interval).max(arrived),
            };
            late_own.push(micros(now, own_due));
            own = Some((own_due, now));
            seen += 1;
        }
    }
    (late, late_own)
}

/// Prints hotroute's own count of how late the events left it (`hotroute_stream_lateness_seconds` in
/// `/__admin/metrics`, measured when each event is handed to the socket): the share within each bucket's bound, and
/// the bound that holds 99% of them. Unlike the arrival times above, it leaves out the client's own waits for a CPU.
async fn server_lateness(addr: std::net::SocketAddr) {
    let Ok(mut tcp) = TcpStream::connect(addr).await else { return };
    let request = b"GET /__admin/metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    let mut text = Vec::new();
    if tcp.write_all(request).await.is_err() || tcp.read_to_end(&mut text).await.is_err() {
        return;
    }
    let text = String::from_utf8_lossy(&text);
    // Cumulative counts by upper bound, in the order the histogram lists them.
    let buckets: Vec<(String, f64)> = text
        .lines()
        .filter_map(|l| l.strip_prefix("hotroute_stream_lateness_seconds_bucket{le=\""))
        .filter_map(|l| {
            let (bound, count) = l.split_once("\"} ")?;
            Some((bound.to_string(), count.trim().parse().ok()?))
        })
        .collect();
    let Some(&(_, total)) = buckets.last() else {
        println!("leaving the server: this build does not count its streams' lateness");
        return;
    };
    if total == 0.0 {
        return;
    }
    let shares: Vec<String> = buckets
        .iter()
        .filter(|(b, _)| ["0.001", "0.002", "0.005", "0.01", "0.02"].contains(&b.as_str()))
        .map(|(b, c)| format!("<= {} ms {:.2}%", b.parse::<f64>().unwrap_or(0.0) * 1000.0, c / total * 100.0))
        .collect();
    let p99 = buckets.iter().find(|(_, c)| *c >= 0.99 * total).map_or("+Inf", |(b, _)| b.as_str());
    let p99 = p99.parse::<f64>().map_or("above every bucket".to_string(), |b| format!("<= {} ms", b * 1000.0));
    println!("leaving the server (its own count of {total} events): {}; p99 {p99}", shares.join(", "));
}

fn percentile(sorted: &[i64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

/// A process's user + system CPU time in clock ticks (`/proc/PID/stat` fields 14 and 15).
fn cpu_ticks(pid: &str) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name (field 2) is in parentheses and may hold spaces: count from after it.
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    // After the name: state is field 3, so utime (14) and stime (15) are at 11 and 12.
    field(11) + field(12)
}

/// A process's minor page faults (`/proc/PID/stat` field 10): pages the kernel had to map (and zero) on first touch,
/// which an allocator that hands memory back to the system at once pays for again on every reuse.
fn minor_faults(pid: &str) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    // After the name: state is field 3, so minflt (10) is at 7.
    rest.split_whitespace().nth(7).and_then(|f| f.parse().ok()).unwrap_or(0)
}

/// How long a process's threads have waited for a CPU while runnable, in nanoseconds (the second field of each
/// `/proc/PID/task/TID/schedstat`): on a busy machine, the time an event was due but its sender or reader was not
/// running.
fn run_delay_ns(pid: &str) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return 0 };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum()
}

/// Clock ticks per second for `/proc/PID/stat` (USER_HZ): 100 on Linux.
const TICKS: f64 = 100.0;

fn main() {
    let a = args();
    let mut runtime = if a.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        if a.threads > 1 {
            b.worker_threads(a.threads);
        }
        b
    };
    runtime.enable_all().build().expect("a tokio runtime").block_on(run(a));
}

async fn run(a: Args) {
    let limit = hotroute::raise_fd_limit().unwrap_or(0);
    assert!(limit as usize > a.streams + 64, "open-file limit {limit} is too low for {} streams", a.streams);
    let dir = tempfile::tempdir().unwrap();
    let routes = format!(
        "[server]\nmax_connections = {}\n\n[[route]]\npath = \"/ticks\"\nsse = [{{ data = \"tick\", delay = \"{}ms\" }}]\nrepeat = true\ncount = {}\n\n[[route]]\npath = \"/hello\"\nbody = \"hi\"\n",
        a.streams + 100,
        a.interval.as_millis(),
        a.events
    );
    std::fs::write(dir.path().join("routes.toml"), routes).unwrap();
    let mut server_args: Vec<String> = if a.floor {
        let (interval, events) = (a.interval.as_millis().to_string(), a.events.to_string());
        ["--port", "0", "--interval-ms", &interval, "--events", &events].map(String::from).to_vec()
    } else {
        ["routes.toml", "--port", "0", "--no-watch", "--log-level", "warn"].map(String::from).to_vec()
    };
    if a.server_threads > 0 {
        server_args.extend(["--threads".to_string(), a.server_threads.to_string()]);
    }
    let mut command = if a.server_cpus.is_empty() {
        Command::new(&a.bin)
    } else {
        // taskset execs the server: the child's pid is the server's.
        let mut c = Command::new("taskset");
        c.args(["-c", &a.server_cpus, &a.bin]);
        c
    };
    let mut child = command
        .args(&server_args)
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", a.bin));
    let pid = child.id();
    let mut line = String::new();
    // Before any stream starts: a blocking read of one line is fine here.
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr: std::net::SocketAddr =
        line.trim().strip_prefix("listening on http://").expect("a listening line").parse().unwrap();
    // Warm up: one request, so the runtime and allocator are in their steady state before the baseline.
    let mut warm = TcpStream::connect(addr).await.unwrap();
    warm.write_all(b"GET /hello HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut sink = Vec::new();
    if a.floor {
        // One event is enough: the head and a tick went through the runtime and its timer.
        let mut buf = [0u8; 1024];
        while !sink.windows(10).any(|w| w == b"data: tick") {
            match warm.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => sink.extend_from_slice(&buf[..n]),
            }
        }
        drop(warm);
    } else {
        warm.read_to_end(&mut sink).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = rss_kib(pid);

    let (opened_tx, mut opened_rx) = tokio::sync::mpsc::channel(a.streams);
    let started = Instant::now();
    let cpu_from = (cpu_ticks(&pid.to_string()), cpu_ticks("self"));
    let waited_from = (run_delay_ns(&pid.to_string()), run_delay_ns("self"));
    let faults_from = minor_faults(&pid.to_string());
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..a.streams {
        tasks.spawn(stream(addr, (a.events, a.interval), opened_tx.clone()));
    }
    drop(opened_tx);
    let mut open = 0;
    while open < a.streams && opened_rx.recv().await.is_some() {
        open += 1;
    }
    let all_open = started.elapsed();
    // With every stream open and sending: the server's memory for them.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let during = rss_kib(pid);
    let mut late = Vec::with_capacity(a.streams * a.events);
    let mut late_own = Vec::with_capacity(a.streams * a.events);
    let mut short = 0;
    while let Some(done) = tasks.join_next().await {
        let (fixed, own) = done.unwrap();
        if fixed.len() < a.events {
            short += 1;
        }
        late.extend(fixed);
        late_own.extend(own);
    }
    let took = started.elapsed();
    let cpu_to = (cpu_ticks(&pid.to_string()), cpu_ticks("self"));
    let waited_to = (run_delay_ns(&pid.to_string()), run_delay_ns("self"));
    let faults = minor_faults(&pid.to_string()).saturating_sub(faults_from);
    late.sort_unstable();
    late_own.sort_unstable();
    let per_stream = (during.saturating_sub(before)) as f64 / a.streams as f64;
    println!(
        "streams {} x {} events every {} ms: {} events in {:.2} s ({} streams ended short); all open after {:.2} s",
        a.streams,
        a.events,
        a.interval.as_millis(),
        late.len(),
        took.as_secs_f64(),
        short,
        all_open.as_secs_f64()
    );
    for (what, late) in [("the fixed schedule", &late), ("the server's schedule", &late_own)] {
        println!(
            "lateness vs {what} (ms): p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
            percentile(late, 0.5),
            percentile(late, 0.9),
            percentile(late, 0.99),
            percentile(late, 0.999),
            percentile(late, 1.0)
        );
    }
    println!(
        "server VmRSS: {before} KiB before, {during} KiB with {} streams open: {per_stream:.1} KiB per stream",
        a.streams
    );
    // From the first connect to the last event: the connects and requests are in it, a small share next to the
    // events.
    let wall = took.as_secs_f64();
    let per_event = |ticks: u64| ticks as f64 / TICKS * 1e6 / late.len().max(1) as f64;
    let (server, client) = (cpu_to.0.saturating_sub(cpu_from.0), cpu_to.1.saturating_sub(cpu_from.1));
    println!(
        "CPU over the {wall:.2} s: {} {:.0}% of a core ({:.1} us per event), client {:.0}% \
         ({:.1} us per event); client threads {}, server cpus {}, server threads {}",
        if a.floor { "floor server" } else { "server" },
        server as f64 / TICKS / wall * 100.0,
        per_event(server),
        client as f64 / TICKS / wall * 100.0,
        per_event(client),
        if a.threads == 0 { "default".to_string() } else { a.threads.to_string() },
        if a.server_cpus.is_empty() { "any" } else { &a.server_cpus },
        if a.server_threads == 0 { "default".to_string() } else { a.server_threads.to_string() },
    );
    println!("server minor page faults: {faults} ({:.3} per event)", faults as f64 / late.len().max(1) as f64);
    // Summed over threads: a process with two threads waiting at once counts twice.
    let waited = |from: u64, to: u64| to.saturating_sub(from) as f64 / 1e6 / wall;
    println!(
        "waiting for a CPU while runnable (all threads): server {:.0} ms per second, client {:.0} ms per second",
        waited(waited_from.0, waited_to.0),
        waited(waited_from.1, waited_to.1)
    );
    if !a.floor {
        server_lateness(addr).await;
    }
    // SIGTERM first, so that a server run under a profiler (valgrind, `perf record`) exits and writes its profile;
    // one that has not exited after 10 s is killed.
    // SAFETY: kill(2) with the pid of our own child and a signal number; it touches no memory of ours.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
}
