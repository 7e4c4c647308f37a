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

use hotroute::{Live, Router, Server, watch};

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
    let watcher = watch::spawn(live.clone()).unwrap();
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
    report(&format!("save-to-served ({style:?}, {saves} saves)"), &mut samples);
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
    let time = |f: &dyn Fn()| -> Vec<Duration> {
        (0..iterations)
            .map(|_| {
                let started = Instant::now();
                f();
                started.elapsed()
            })
            .collect()
    };
    let mut parse = time(&|| {
        std::hint::black_box(toml::from_str::<hotroute::config::RouteFileSpec>(&text).unwrap());
    });
    let mut check = time(&|| {
        std::hint::black_box(hotroute::load_file(&path).unwrap());
    });
    let config = hotroute::load_file(&path).unwrap();
    let mut build = time(&|| {
        std::hint::black_box(Router::build(&config).unwrap());
    });
    drop(config);
    let mut load = time(&|| {
        std::hint::black_box(Router::load_file(&path).unwrap());
    });
    let mut swap = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let router = Router::load_file(&path).unwrap();
        let started = Instant::now();
        live.swap(router);
        swap.push(started.elapsed());
    }
    let mut reload = time(&|| {
        live.reload().unwrap();
    });
    let kib = text.len() / 1024;
    report(&format!("  of which TOML parsing ({routes} routes)"), &mut parse);
    report(&format!("  parsing and checking ({routes} routes), config::load_file"), &mut check);
    report(&format!("  building the router ({routes} routes), Router::build"), &mut build);
    report(&format!("load {routes} routes ({kib} KiB): read, parse, check, build; Router::load_file"), &mut load);
    report(&format!("swap in {routes} routes (and free the old ones), Live::swap"), &mut swap);
    report(&format!("load and swap {routes} routes, Live::reload"), &mut reload);
}

fn report(what: &str, samples: &mut [Duration]) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let median = samples[samples.len() / 2];
    let p90 = samples[(samples.len() * 9 / 10).min(samples.len() - 1)];
    println!(
        "{what}: median {:.1} ms, p90 {:.1} ms, min {:.1} ms, max {:.1} ms",
        ms(median),
        ms(p90),
        ms(samples[0]),
        ms(samples[samples.len() - 1])
    );
}
