//! Hot-reload figures: save-to-served latency, and the time to load and swap a 10,000-route file.
//!
//! `cargo bench --bench reload` prints them. Under `cargo test` (no `--bench` argument) it runs a few iterations
//! only, to check that it still works.
//!
//! - save-to-served: a real server with the real watcher; the route file is saved (a temp file renamed over it, and
//!   an in-place write), and a keep-alive client polls until the new body is served. The time includes the
//!   debounce, the reload and the swap.
//! - 10,000 routes: `Live::reload` (read, check, build the router, swap) of a generated file.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hotroute::{Live, Router, Server};

/// The allocator of the `hotroute` binary (see src/main.rs), so that the figures are the server's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    // Under `cargo test` (a debug build), just enough to see that it all still works.
    let (saves, routes, loads) = if full { (50, 10_000, 20) } else { (3, 1_000, 1) };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(save_to_served(saves, Style::Rename));
    runtime.block_on(save_to_served(saves, Style::InPlace));
    load_and_swap(routes, loads);
}

#[derive(Debug, Clone, Copy)]
enum Style {
    Rename,
    InPlace,
}

fn route(body: &str) -> String {
    format!("[[route]]\npath = \"/v\"\nbody = \"{body}\"\n\n[[route]]\npath = \"/other\"\nbody = \"x\"\n")
}

fn save(path: &Path, content: &str, style: Style) {
    match style {
        Style::Rename => {
            let tmp = path.with_extension("tmp~");
            std::fs::write(&tmp, content).unwrap();
            std::fs::rename(&tmp, path).unwrap();
        }
        Style::InPlace => std::fs::write(path, content).unwrap(),
    }
}

async fn save_to_served(saves: usize, style: Style) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("routes.toml");
    std::fs::write(&path, route("start")).unwrap();
    let live = Arc::new(Live::from_file(&path).unwrap());
    let server = Server::bind("127.0.0.1:0".parse().unwrap(), live.clone()).await.unwrap();
    let url = format!("http://{}/v", server.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve(async {
        stopped.await.ok();
    }));
    let watcher = live.watch().unwrap();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();

    let mut samples = Vec::with_capacity(saves);
    for i in 0..saves {
        let body = format!("save {i}");
        let started = Instant::now();
        save(&path, &route(&body), style);
        loop {
            let got = client.get(&url).send().await.unwrap().text().await.unwrap();
            if got == body {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(10), "save {i} was not served within 10 s");
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        samples.push(started.elapsed());
    }
    drop(watcher);
    let _ = stop.send(());
    serving.await.unwrap().unwrap();
    report(&format!("save-to-served ({style:?}, {saves} saves)"), (samples, Vec::new()));
}

fn load_and_swap(routes: usize, iterations: usize) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("routes.toml");
    let mut text = String::with_capacity(routes * 80);
    for i in 0..routes {
        // A mix of what route files hold: fixed paths, parameters, JSON bodies, several methods.
        match i % 4 {
            0 => text.push_str(&format!("[[route]]\npath = \"/static/{i}\"\nbody = \"route {i}\"\n\n")),
            1 => text.push_str(&format!("[[route]]\npath = \"/users/{{id}}/r{i}\"\njson = {{ id = {i}, ok = true }}\n\n")),
            2 => text.push_str(&format!(
                "[[route]]\npath = \"/items/{i}\"\nmethod = [\"POST\", \"PUT\"]\nstatus = 201\nheaders = {{ x-route = \"{i}\" }}\n\n"
            )),
            _ => text.push_str(&format!("[[route]]\npath = \"/files/{i}/{{*rest}}\"\nbody = \"file {i}\"\n\n")),
        }
    }
    std::fs::write(&path, &text).unwrap();
    let live = Live::from_file(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(live.router().routes().len(), routes);

    // Each measured in a loop of its own, so that one's garbage does not slow the next.
    let parse = measure(iterations, &mut || {
        std::hint::black_box(toml::from_str::<hotroute::__internals::RouteFileSpec>(&text).unwrap());
    });
    let check = measure(iterations, &mut || {
        std::hint::black_box(hotroute::load_file(&path).unwrap());
    });
    let config = hotroute::load_file(&path).unwrap();
    let build = measure(iterations, &mut || {
        std::hint::black_box(Router::build(&config).unwrap());
    });
    drop(config);
    let load = measure(iterations, &mut || {
        std::hint::black_box(Router::load_file(&path).unwrap());
    });
    let next = std::cell::RefCell::new(None);
    let swap =
        measure_with(iterations, &mut || *next.borrow_mut() = Some(Router::load_file(&path).unwrap()), &mut || {
            live.swap(next.borrow_mut().take().unwrap());
        });
    let reload = measure(iterations, &mut || {
        live.reload().unwrap();
    });
    let kib = text.len() / 1024;
    report(&format!("  of which TOML parsing ({routes} routes)"), parse);
    report(&format!("  parsing and checking ({routes} routes), config::load_file"), check);
    report(&format!("  building the router ({routes} routes), Router::build"), build);
    report(&format!("load {routes} routes ({kib} KiB): read, parse, check, build; Router::load_file"), load);
    report(&format!("swap in {routes} routes and free the old ones, Live::swap"), swap);
    report(&format!("load and swap {routes} routes, Live::reload"), reload);
}

/// Wall-clock times of `iterations` runs of `f`, and the time this thread spent on a CPU during them (the figure
/// a busy machine disturbs least).
fn measure(iterations: usize, f: &mut dyn FnMut()) -> (Vec<Duration>, Vec<Duration>) {
    measure_with(iterations, &mut || {}, f)
}

/// Like [`measure`], running `setup` (not timed) before each run.
fn measure_with(iterations: usize, setup: &mut dyn FnMut(), f: &mut dyn FnMut()) -> (Vec<Duration>, Vec<Duration>) {
    let (mut wall, mut cpu) = (Vec::new(), Vec::new());
    for _ in 0..iterations {
        setup();
        let (started, cpu_started) = (Instant::now(), on_cpu());
        f();
        wall.push(started.elapsed());
        if let (Some(a), Some(b)) = (cpu_started, on_cpu()) {
            cpu.push(b.saturating_sub(a));
        }
    }
    (wall, cpu)
}

/// Time this thread has spent on a CPU (Linux: the first field of /proc/thread-self/schedstat, in ns).
fn on_cpu() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    Some(Duration::from_nanos(text.split_whitespace().next()?.parse().ok()?))
}

fn report(what: &str, (mut wall, mut cpu): (Vec<Duration>, Vec<Duration>)) {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    wall.sort();
    cpu.sort();
    let on_cpu = cpu.get(cpu.len() / 2).map(|d| format!(", on-CPU median {:.1} ms", ms(*d))).unwrap_or_default();
    println!(
        "{what}: median {:.1} ms, min {:.1} ms, max {:.1} ms{on_cpu}",
        ms(wall[wall.len() / 2]),
        ms(wall[0]),
        ms(wall[wall.len() - 1])
    );
}
