//! Reloads that must not hurt the server, against the real binary: a save caught half-written never puts a broken
//! or empty route table in service, a huge route file is refused without being read, and a reload whose read
//! blocks (a FIFO) holds neither the workers nor the shutdown.

use crate::support::bin::Bin;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_hotroute");

/// `hotroute ROUTES --port 0 --log-level warn ARGS`.
fn start(routes: &Path, args: &[&str]) -> Bin {
    Bin::command().arg(routes).args(["--port", "0", "--log-level", "warn"]).args(args).start()
}

fn routes_with(body: &str) -> String {
    format!("[[route]]\npath = \"/x\"\nbody = \"{body}\"\n\n[[route]]\npath = \"/other\"\nbody = \"other\"\n")
}

async fn generation(client: &reqwest::Client, server: &Bin) -> u64 {
    let health: serde_json::Value =
        client.get(server.url("/__admin/health")).send().await.unwrap().json().await.unwrap();
    health["generation"].as_u64().unwrap()
}

/// `cat new.toml > routes.toml`: truncate, then write in two parts with a pause between (the first part ends inside
/// a string, so it does not parse on its own). A client loops meanwhile: it never gets a 404, and as soon as the
/// generation grows, the new body is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncate_then_write_saves_never_serve_an_empty_or_half_written_file() {
    let dir = tempfile::tempdir().unwrap();
    let routes = dir.path().join("routes.toml");
    std::fs::write(&routes, routes_with("v0")).unwrap();
    let server = start(&routes, &[]);
    let client = reqwest::Client::new();

    let stop = Arc::new(AtomicBool::new(false));
    let (bad, total) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let looping = {
        let (stop, bad, total, client, url) =
            (stop.clone(), bad.clone(), total.clone(), client.clone(), server.url("/other"));
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let res = client.get(&url).send().await.unwrap();
                total.fetch_add(1, Ordering::Relaxed);
                if res.status() != 200 {
                    bad.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };

    let mut seen = generation(&client, &server).await;
    for i in 1..=40 {
        let text = routes_with(&format!("v{i}"));
        let cut = text.find("\"v").unwrap() + 2;
        let mut file = std::fs::File::create(&routes).unwrap(); // O_TRUNC
        tokio::time::sleep(Duration::from_millis(3)).await;
        file.write_all(&text.as_bytes()[..cut]).unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        file.write_all(&text.as_bytes()[cut..]).unwrap();
        drop(file);
        let deadline = Instant::now() + Duration::from_secs(10);
        let now = loop {
            let now = generation(&client, &server).await;
            if now > seen {
                break now;
            }
            assert!(Instant::now() < deadline, "save {i}: the generation stayed at {seen}");
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        let res = client.get(server.url("/x")).send().await.unwrap();
        let status = res.status();
        let body = res.text().await.unwrap();
        assert_eq!((status.as_u16(), body.as_str()), (200, format!("v{i}").as_str()), "save {i}, generation {now}");
        seen = generation(&client, &server).await;
    }
    stop.store(true, Ordering::Relaxed);
    looping.await.unwrap();
    let (bad, total) = (bad.load(Ordering::Relaxed), total.load(Ordering::Relaxed));
    assert_eq!(bad, 0, "{bad} of {total} requests during the saves were not answered 200");
}

/// A file that goes from routes to none is a mistake unless it says so; `route = []` is obeyed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_emptied_for_good_keeps_the_routes_unless_it_says_route_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    let routes = dir.path().join("routes.toml");
    std::fs::write(&routes, routes_with("v0")).unwrap();
    let server = start(&routes, &["--no-watch"]);
    let client = reqwest::Client::new();

    std::fs::write(&routes, "").unwrap();
    let res = client.post(server.url("/__admin/reload")).header("x-hotroute", "1").send().await.unwrap();
    assert_eq!(res.status(), 422);
    let text = res.text().await.unwrap();
    assert!(text.contains("has no routes now") && text.contains("route = []"), "{text}");
    assert_eq!(client.get(server.url("/x")).send().await.unwrap().text().await.unwrap(), "v0");
    assert_eq!(generation(&client, &server).await, 1);

    std::fs::write(&routes, "route = []\n").unwrap();
    let res = client.post(server.url("/__admin/reload")).header("x-hotroute", "1").send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(client.get(server.url("/x")).send().await.unwrap().status(), 404);
    assert_eq!(generation(&client, &server).await, 2);
}

/// A route file that is a symlink to a huge (sparse) file is refused after reading the limit, with an error naming
/// the file, its size and the setting; under an address-space limit smaller than the file, so that reading it
/// whole (or allocating its size up front) fails the test.
#[test]
fn a_route_file_over_max_route_file_is_refused_without_reading_it_whole() {
    let dir = tempfile::tempdir().unwrap();
    let huge = dir.path().join("huge.toml");
    std::fs::File::create(&huge).unwrap().set_len(8 << 30).unwrap();
    let routes = dir.path().join("routes.toml");
    std::os::unix::fs::symlink(&huge, &routes).unwrap();
    let mut cmd = Command::new(BIN);
    cmd.arg(&routes).args(["--port", "0"]).stdout(Stdio::piped()).stderr(Stdio::piped());
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: setrlimit is async-signal-safe and changes only the child.
        unsafe {
            cmd.pre_exec(|| {
                let limit = libc::rlimit { rlim_cur: 4 << 30, rlim_max: 4 << 30 };
                libc::setrlimit(libc::RLIMIT_AS, &limit);
                Ok(())
            });
        }
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for want in ["routes.toml", "8589934592 bytes", "max_route_file", "64.0 MiB"] {
        assert!(stderr.contains(want), "the error should say {want:?}:\n{stderr}");
    }
}

/// `[server] max_route_file` applies to included files, and `hotroute check` says which file is over it.
#[test]
fn an_included_file_over_max_route_file_is_a_load_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let routes = dir.path().join("routes.toml");
    std::fs::write(&routes, "include = [\"more.toml\"]\n\n[server]\nmax_route_file = \"4KiB\"\n").unwrap();
    let more = "# padding\n".repeat(1024);
    std::fs::write(dir.path().join("more.toml"), &more).unwrap();
    let out = Command::new(BIN).arg("check").arg(&routes).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for want in ["more.toml", "10240 bytes", "max_route_file", "4.0 KiB"] {
        assert!(stderr.contains(want), "the error should say {want:?}:\n{stderr}");
    }
}

/// The route file is replaced by a FIFO nobody writes: `POST /__admin/reload` hangs in the read. With a single
/// worker thread (where a blocked worker is a frozen server), health and ordinary routes keep answering, the reload
/// answers 503 after its wait, concurrent reloads share one, and SIGTERM still ends the process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_blocked_on_a_fifo_holds_neither_the_server_nor_the_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let routes = dir.path().join("routes.toml");
    std::fs::write(&routes, "[server]\ngrace = \"1s\"\n\n[[route]]\npath = \"/hello\"\nbody = \"hi\"\n").unwrap();
    let mut server = start(&routes, &["--threads", "1"]);
    let fifo = dir.path().join("routes.fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo reads a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    std::fs::rename(&fifo, &routes).unwrap();

    let client = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
    let reloads: Vec<_> = (0..3)
        .map(|_| {
            let (client, url) = (client.clone(), server.url("/__admin/reload"));
            tokio::spawn(async move {
                let started = Instant::now();
                let res = client.post(url).header("x-hotroute", "1").send().await;
                (res.map(|r| r.status().as_u16()), started.elapsed())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let quick = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().unwrap();
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        let health = quick.get(server.url("/__admin/health")).send().await.expect("health did not answer");
        assert_eq!(health.status(), 200);
        let hello = quick.get(server.url("/hello")).send().await.expect("/hello did not answer");
        assert_eq!(hello.text().await.unwrap(), "hi");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for reload in reloads {
        let (status, took) = reload.await.unwrap();
        assert_eq!(status.expect("the reload request got no answer"), 503);
        assert!(took < Duration::from_secs(15), "the reload answered after {took:?}");
    }

    // SAFETY: kill only sends a signal to our own child.
    assert_eq!(unsafe { libc::kill(server.child.id() as i32, libc::SIGTERM) }, 0);
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status:?}");
            break;
        }
        assert!(Instant::now() < deadline, "SIGTERM did not end the server while a reload hung on a FIFO");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
