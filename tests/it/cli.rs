//! The `hotroute` binary as a user (or a test suite in another language) runs it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::bin::Bin;
use crate::support::http::blocking;

const BIN: &str = env!("CARGO_BIN_EXE_hotroute");

/// The binary with `args`, run in `dir`.
fn start(args: &[&str], dir: &Path) -> Bin {
    Bin::command().current_dir(dir).args(args).start()
}

fn routes_dir(toml: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("routes.toml"), toml).unwrap();
    dir
}

fn get(addr: SocketAddr, path: &str) -> String {
    blocking::get(addr, path).1
}

#[test]
fn port_zero_prints_the_real_address_first_and_serves_it() {
    let dir = routes_dir(include_str!("../../routes.toml"));
    let server = start(&["--port", "0"], dir.path());
    assert_eq!(server.addr.ip().to_string(), "127.0.0.1");
    assert_ne!(server.addr.port(), 0);
    let res = get(server.addr, "/hello");
    assert!(res.starts_with("HTTP/1.1 200 OK") && res.ends_with("Hello World"), "{res}");
}

#[test]
fn listen_flag_and_server_listen_pick_the_address() {
    let dir = routes_dir("[server]\nlisten = \"127.0.0.1:0\"\n[[route]]\npath = \"/x\"\nbody = \"x\"\n");
    let server = start(&[], dir.path());
    assert!(get(server.addr, "/x").ends_with("\r\n\r\nx"));
    let server = start(&["--listen", "127.0.0.1:0", "routes.toml"], dir.path());
    assert!(get(server.addr, "/x").ends_with("\r\n\r\nx"));
}

#[test]
fn a_taken_port_says_address_already_in_use_and_suggests_port() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let dir = routes_dir(include_str!("../../routes.toml"));
    let out = Command::new(BIN).args(["--port", &port]).current_dir(dir.path()).output().unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "nothing on stdout: a test harness must not read an address");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("address already in use"), "{err}");
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(err.contains("--port"), "{err}");
}

#[test]
fn a_missing_route_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN).args(["--port", "0", "nope.toml"]).current_dir(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot read route file `nope.toml`"), "{err}");
    assert!(err.contains("help:"), "{err}");
}

#[test]
fn a_bad_route_file_stops_startup_with_its_errors() {
    let dir = routes_dir("[[route]]\npath = \"/a\"\nstauts = 200\n");
    let out = Command::new(BIN).args(["--port", "0"]).current_dir(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("routes.toml:3:1") && err.contains("stauts"), "{err}");
}

#[test]
fn check_exits_zero_or_prints_every_error_and_exits_one() {
    let good =
        Command::new(BIN).args(["check", "routes.toml"]).current_dir(env!("CARGO_MANIFEST_DIR")).output().unwrap();
    assert!(good.status.success(), "{}", String::from_utf8_lossy(&good.stderr));
    assert!(String::from_utf8_lossy(&good.stdout).contains("2 routes"));

    let dir = routes_dir("[[route]]\npath = \"a\"\n\n[[route]]\npath = \"/b\"\nmethod = \"B AD\"\n");
    let bad = Command::new(BIN).args(["check"]).current_dir(dir.path()).output().unwrap();
    assert_eq!(bad.status.code(), Some(1));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("routes.toml:2:") && err.contains("routes.toml:6:"), "{err}");
    assert!(err.contains("2 errors"), "{err}");
}

#[test]
fn the_shipped_schema_is_what_hotroute_schema_prints() {
    let out = Command::new(BIN).arg("schema").output().unwrap();
    assert!(out.status.success());
    let printed = String::from_utf8(out.stdout).unwrap();
    let shipped = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("routes.schema.json")).unwrap();
    assert_eq!(printed, shipped, "routes.schema.json is stale: run `cargo run -- schema > routes.schema.json`");
    let v: serde_json::Value = serde_json::from_str(&printed).unwrap();
    assert!(v["$defs"]["RouteSpec"]["properties"]["path"].is_object());
    let routes = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("routes.toml")).unwrap();
    assert!(
        routes.starts_with("#:schema ./routes.schema.json"),
        "the shipped routes.toml points editors at the schema"
    );
}

/// SIGTERM and SIGINT: a request in flight (its body still arriving) is answered, then the process exits 0.
#[test]
fn sigterm_and_sigint_let_the_request_in_flight_finish_and_exit_zero() {
    for sig in ["-TERM", "-INT"] {
        let dir = routes_dir("[[route]]\npath = \"/upload\"\nmethod = \"POST\"\nbody = \"stored\"\n");
        let mut server = start(&["--port", "0"], dir.path());
        let mut s = TcpStream::connect(server.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(s, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345").unwrap();
        // Let the server read the head, so the request is in flight when the signal lands.
        std::thread::sleep(Duration::from_millis(200));
        match sig {
            "-TERM" => server.terminate(),
            _ => server.interrupt(),
        }
        std::thread::sleep(Duration::from_millis(200));
        s.write_all(b"67890").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        assert!(out.starts_with("HTTP/1.1 200 OK") && out.ends_with("stored"), "{sig}: {out}");
        let status = server.wait_exit_blocking(Duration::from_secs(8));
        assert_eq!(status.code(), Some(0), "{sig}");
        assert!(TcpStream::connect(server.addr).is_err(), "{sig}: still accepting after shutdown");
    }
}

#[test]
fn threads_sets_the_worker_count_and_zero_is_refused() {
    let dir = routes_dir(include_str!("../../routes.toml"));
    let threads_with = |n: &str| {
        let server = start(&["--port", "0", "--threads", n, "--no-watch"], dir.path());
        assert!(get(server.addr, "/hello").ends_with("Hello World"));
        server.proc_status("Threads") as usize
    };
    assert_eq!(threads_with("4") - threads_with("2"), 2, "each worker is one thread");
    // One thread is tokio's single-thread scheduler: it serves on the main thread, with no worker thread at all.
    assert_eq!(threads_with("2") - threads_with("1"), 2, "--threads 1 runs a worker thread of its own");
    let out = Command::new(BIN).args(["--port", "0", "--threads", "0"]).current_dir(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--threads"));
}
