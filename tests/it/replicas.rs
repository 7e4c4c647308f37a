//! Replicas sharing state through Redis (`[server] state`, issue 19): three `hotroute` binaries on one real
//! `redis-server` (Debian's, started here on a free loopback port with a temporary folder and no persistence, and
//! killed at the end) answer as one server would: a sequence in one order, never the same item twice to concurrent
//! clients, a scenario moved on one seen on another, one journal of all. With Redis stopped, plain routes still
//! answer and stateful ones answer 503 within a bound; with Redis back, they recover without a restart. nginx in
//! front of the three, as a round-robin load balancer, shows the deployment shape end to end. With `isolate`, each
//! partition counts and moves apart in Redis; `openapi_validate` and WebSocket upgrades hold on that path too. A
//! `[[resource]]` keeps its items in Redis: written on one replica, read, changed and deleted on the others, with
//! generated ids unique across them. A `HEAD` reads the count and the scenario and writes neither.
//!
//! Without `redis-server` on the PATH these tests say so loudly on stderr and pass (they cannot run).

use std::collections::{BTreeSet, HashSet};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::blocking::Client;

use crate::support::bin::Bin;

/// A `redis-server` of this test's own, on a free loopback port, with its files in a temporary folder.
struct Redis {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    /// TLS only (`--port 0 --tls-port PORT ...`): these arguments, and `rediss://`.
    tls: Option<Vec<String>>,
}

impl Redis {
    /// Starts one, or says loudly why not and returns none (no `redis-server` installed).
    fn start() -> Option<Redis> {
        if Command::new("redis-server").arg("--version").output().is_err() {
            eprintln!(
                "\n!!! SKIPPED: redis-server is not installed, so the replica tests cannot run. Install it with \
                 `apt-get install -y redis-server` (.ci/run does).\n"
            );
            return None;
        }
        // redis-server has no `--port 0`: take a free port from the kernel, let it go, and give it to Redis.
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut redis = Redis { child: None, port, dir: tempfile::tempdir().unwrap(), tls: None };
        redis.run();
        Some(redis)
    }

    /// Starts the server (again) on its port, and waits until it answers PING.
    fn run(&mut self) {
        let mut cmd = Command::new("redis-server");
        match &self.tls {
            None => cmd.args(["--port", &self.port.to_string()]),
            Some(tls) => cmd.args(["--port", "0", "--tls-port", &self.port.to_string()]).args(tls),
        };
        let child = cmd
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.pong() {
            assert!(Instant::now() < deadline, "redis-server did not answer PING on port {} within 10 s", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts one that speaks TLS only, with the certificate `cert`/`key` (PEM files), or says why not and returns
    /// none: no `redis-server`, or one built without TLS.
    fn start_tls(cert: &Path, key: &Path) -> Option<Redis> {
        let probe = Command::new("redis-server")
            .args(["--port", "0", "--tls-port", "1", "--tls-cert-file"])
            .arg(cert)
            .arg("--tls-key-file")
            .arg(key)
            .arg("--test-memory")
            .output();
        let Ok(probe) = probe else { return Redis::start() };
        let said = String::from_utf8_lossy(&[probe.stdout, probe.stderr].concat()).to_lowercase();
        if said.contains("tls") && (said.contains("not supported") || said.contains("bad directive")) {
            eprintln!("\n!!! SKIPPED: this redis-server is built without TLS (--tls-port): {}\n", said.trim());
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let tls = vec![
            "--tls-cert-file".to_owned(),
            cert.display().to_string(),
            "--tls-key-file".to_owned(),
            key.display().to_string(),
            "--tls-auth-clients".to_owned(),
            "no".to_owned(),
        ];
        let mut redis = Redis { child: None, port, dir: tempfile::tempdir().unwrap(), tls: Some(tls) };
        redis.run();
        Some(redis)
    }

    fn pong(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else { return false };
        if self.tls.is_some() {
            // No TLS client here: a listening port will do.
            return true;
        }
        let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
        let mut buf = [0u8; 7];
        s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }

    /// Sends one command (no TLS) and returns its reply's first line, e.g. `:5` for an integer.
    fn command(&self, args: &[&str]) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut request = format!("*{}\r\n", args.len());
        for a in args {
            request.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        s.write_all(request.as_bytes()).unwrap();
        let mut reply = Vec::new();
        let mut byte = [0u8; 1];
        while !reply.ends_with(b"\r\n") && s.read_exact(&mut byte).is_ok() {
            reply.push(byte[0]);
        }
        String::from_utf8_lossy(&reply).trim_end().to_owned()
    }

    /// Kills the server (its data goes with it: no persistence).
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "rediss" } else { "redis" };
        format!("{scheme}://127.0.0.1:{}/0", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `routes` with a `[server]` table that shares state through `redis`.
fn shared(redis: &Redis, extra: &str, routes: &str) -> String {
    format!("[server]\nstate = \"{}\"\n{extra}\n{routes}", redis.url())
}

/// `n` replicas serving the same route file (each in its own folder, as on separate machines).
fn replicas(n: usize, toml: &str) -> Vec<Bin> {
    (0..n).map(|_| Bin::start(toml)).collect()
}

fn client() -> Client {
    Client::builder().timeout(Duration::from_secs(10)).build().unwrap()
}

fn get(client: &Client, url: &str) -> (u16, String) {
    let res = client.get(url).send().expect("the server answers");
    (res.status().as_u16(), res.text().unwrap())
}

const FIVE: &str = r#"
[[route]]
path = "/plain"
body = "plain"

[[route]]
path = "/five"
sequence = [{ body = "1" }, { body = "2" }, { body = "3" }, { body = "4" }, { body = "5" }]
"#;

#[test]
fn a_sequence_asked_round_robin_of_three_replicas_comes_in_one_servers_order() {
    let Some(redis) = Redis::start() else { return };
    let servers = replicas(3, &shared(&redis, "", FIVE));
    // One server alone, without Redis: the order to compare with.
    let alone = Bin::start(FIVE);
    let client = client();
    let expected: Vec<String> = (0..15).map(|_| get(&client, &alone.url("/five")).1).collect();
    let got: Vec<String> = (0..15).map(|i| get(&client, &servers[i % 3].url("/five")).1).collect();
    assert_eq!(got, expected, "15 requests round-robin over 3 replicas");
    assert_eq!(&got[..6], ["1", "2", "3", "4", "5", "5"]);
}

#[test]
fn eight_concurrent_clients_on_three_replicas_never_get_the_same_item_twice() {
    let Some(redis) = Redis::start() else { return };
    let items: Vec<String> = (1..=80).map(|i| format!("{{ body = \"item-{i}\" }}")).collect();
    let routes = format!("[[route]]\npath = \"/items\"\nsequence = [{}]\nrepeat = \"cycle\"\n", items.join(", "));
    let servers = replicas(3, &shared(&redis, "", &routes));
    let urls: Vec<String> = servers.iter().map(|s| s.url("/items")).collect();
    let got: Vec<String> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..8)
            .map(|c| {
                let urls = &urls;
                scope.spawn(move || {
                    let client = client();
                    (0..10).map(|i| get(&client, &urls[(c + i) % 3]).1).collect::<Vec<_>>()
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
    });
    let distinct: HashSet<&String> = got.iter().collect();
    assert_eq!(got.len(), 80);
    assert_eq!(distinct.len(), 80, "an item was handed out twice: {got:?}");
}

const TODO: &str = r#"
[[route]]
path = "/todo"
scenario = "todo"
state = "started"
body = "one item"

[[route]]
path = "/todo"
method = "POST"
scenario = "todo"
next_state = "added"
status = 201

[[route]]
path = "/todo"
scenario = "todo"
state = "added"
template = true
body = "two items ({{ scenario.todo }})"
"#;

#[test]
fn a_scenario_moved_on_one_replica_is_seen_on_the_others_and_the_admin_api_sees_one_state() {
    let Some(redis) = Redis::start() else { return };
    let servers = replicas(3, &shared(&redis, "", TODO));
    let client = client();
    assert_eq!(get(&client, &servers[0].url("/todo")).1, "one item");
    assert_eq!(client.post(servers[1].url("/todo")).send().unwrap().status().as_u16(), 201);
    assert_eq!(get(&client, &servers[2].url("/todo")).1, "two items (added)");
    assert_eq!(get(&client, &servers[0].url("/todo")).1, "two items (added)");

    // The admin API of any replica lists and moves the shared state.
    let list: serde_json::Value = client.get(servers[2].url("/__admin/scenarios")).send().unwrap().json().unwrap();
    assert_eq!(list["scenarios"][0]["state"], "added", "{list}");
    let put = client
        .put(servers[0].url("/__admin/scenarios/todo"))
        .header("x-hotroute", "1")
        .body(r#"{"state": "started"}"#)
        .send()
        .unwrap();
    assert_eq!(put.status().as_u16(), 200);
    assert_eq!(get(&client, &servers[1].url("/todo")).1, "one item");

    // POST /__admin/reset on one clears the shared state (the prefix) for all.
    client.post(servers[1].url("/todo")).send().unwrap();
    assert_eq!(get(&client, &servers[2].url("/todo")).1, "two items (added)");
    let reset = client.post(servers[0].url("/__admin/reset")).header("x-hotroute", "1").send().unwrap();
    assert_eq!(reset.status().as_u16(), 200);
    assert_eq!(get(&client, &servers[2].url("/todo")).1, "one item");
}

#[test]
fn a_head_on_one_replica_moves_nothing_in_redis_and_the_next_get_on_another_gets_the_first_item() {
    let Some(redis) = Redis::start() else { return };
    let routes = r#"
[[route]]
path = "/seq"
sequence = [{ body = "one", headers = { x-item = "1" } }, { body = "two", headers = { x-item = "2" } }]

[[route]]
path = "/door"
scenario = "door"
next_state = "open"
template = true
headers = { x-door = "{{ scenario.door }}" }
body = "was {{ scenario.door }}"
"#;
    let servers = replicas(2, &shared(&redis, "isolate = \"header:x-test-id\"", routes));
    let client = client();
    let head = |server: &Bin, path: &str, id: Option<&str>, name: &str| {
        let mut req = client.head(server.url(path));
        if let Some(id) = id {
            req = req.header("x-test-id", id);
        }
        let res = req.send().expect("the server answers");
        (res.status().as_u16(), res.headers()[name].to_str().unwrap().to_owned())
    };
    for id in [None, Some("w1")] {
        // The first item and the start state, on both replicas, however often: the HEADs moved nothing.
        for server in [&servers[0], &servers[1], &servers[0]] {
            assert_eq!(head(server, "/seq", id, "x-item"), (200, "1".into()), "{id:?}");
            assert_eq!(head(server, "/door", id, "x-door"), (200, "started".into()), "{id:?}");
        }
    }
    // A peek is a read: no counter and no scenario key was written.
    assert_eq!(redis.command(&["KEYS", "*:count:*"]), "*0", "a HEAD wrote a counter");
    assert_eq!(redis.command(&["KEYS", "*:scenario:*"]), "*0", "a HEAD moved a scenario");
    for id in [None, Some("w1")] {
        assert_eq!(get_as(&client, &servers[1], "/seq", id), "one", "{id:?}");
        assert_eq!(head(&servers[0], "/seq", id, "x-item"), (200, "2".into()), "the HEAD sees the next item: {id:?}");
        assert_eq!(get_as(&client, &servers[0], "/seq", id), "two", "{id:?}");
        assert_eq!(get_as(&client, &servers[1], "/door", id), "was started", "{id:?}");
        assert_eq!(head(&servers[0], "/door", id, "x-door"), (200, "open".into()), "the GET moved it: {id:?}");
    }
    // The GETs did write: the keys the HEADs left alone are these.
    assert_eq!(redis.command(&["KEYS", "*:scenario:*"]), "*2");
}

/// Polls `url` (a journal) until `done` holds for its requests, for up to 10 s; returns them.
fn journal_until(client: &Client, url: &str, done: impl Fn(&[serde_json::Value]) -> bool) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let page: serde_json::Value = client.get(url).send().unwrap().json().unwrap();
        let requests = page["requests"].as_array().cloned().unwrap_or_default();
        if done(&requests) || Instant::now() > deadline {
            return requests;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_journal_of_every_replica_is_read_from_any_one() {
    let Some(redis) = Redis::start() else { return };
    let servers = replicas(3, &shared(&redis, "", FIVE));
    let client = client();
    let marks = |requests: &[serde_json::Value]| -> BTreeSet<String> {
        requests.iter().filter_map(|r| r["headers"]["x-test"].as_str().map(str::to_owned)).collect()
    };
    for (i, s) in servers.iter().enumerate() {
        let res = client.get(s.url("/plain")).header("x-test", format!("from-{i}")).send().unwrap();
        assert_eq!(res.status().as_u16(), 200);
        // Each replica writes its copies in the background: wait for this one, so that the order below is the
        // order of the requests, not of the replicas' writers.
        journal_until(&client, &s.url("/__admin/requests?limit=50"), |r| marks(r).len() == i + 1);
    }
    let requests = journal_until(&client, &servers[2].url("/__admin/requests?limit=50"), |r| marks(r).len() == 3);
    assert_eq!(marks(&requests), BTreeSet::from(["from-0".into(), "from-1".into(), "from-2".into()]));
    let replicas: BTreeSet<&str> = requests.iter().filter_map(|r| r["replica"].as_str()).collect();
    assert_eq!(replicas.len(), 3, "each request names the replica that answered it: {requests:?}");
    // Oldest first, as the per-replica journal is.
    assert_eq!(requests[0]["headers"]["x-test"], "from-0");
}

#[test]
fn the_shared_journal_keeps_about_journal_requests_in_one_stream_entry_per_batch() {
    let Some(redis) = Redis::start() else { return };
    let server = Bin::start(&shared(&redis, "journal = 5", FIVE));
    let client = client();
    for i in 0..40 {
        let res = client.get(server.url("/plain")).header("x-test", i.to_string()).send().unwrap();
        assert_eq!(res.status().as_u16(), 200);
    }
    let marks = |requests: &[serde_json::Value]| -> Vec<String> {
        requests.iter().filter_map(|r| r["headers"]["x-test"].as_str().map(str::to_owned)).collect()
    };
    let url = server.url("/__admin/requests?limit=100");
    let requests = journal_until(&client, &url, |r| marks(r).last().map(String::as_str) == Some("39"));
    // The newest `journal` requests, oldest first, whatever `?limit=` asks beyond them.
    assert_eq!(marks(&requests), ["35", "36", "37", "38", "39"], "{requests:?}");
    // Redis holds them as a few entries (whole batches; the records of the oldest trimmed ones gone), not one per
    // request, and counts the records written.
    let entries: usize = redis.command(&["XLEN", "hotroute:journal"]).trim_start_matches(':').parse().unwrap();
    assert!((1..=5).contains(&entries), "{entries} stream entries for a journal of 5");
    assert_eq!(redis.command(&["INCRBY", "hotroute:journal-records", "0"]), ":40");
}

#[test]
fn requests_from_concurrent_clients_reach_the_shared_journal_each_once() {
    let Some(redis) = Redis::start() else { return };
    let servers = replicas(2, &shared(&redis, "", FIVE));
    let urls: Vec<String> = servers.iter().map(|s| s.url("/plain")).collect();
    std::thread::scope(|scope| {
        for t in 0..8 {
            let url = &urls[t % 2];
            scope.spawn(move || {
                let client = client();
                for i in 0..25 {
                    let res = client.get(url).header("x-test", format!("{t}-{i}")).send().unwrap();
                    assert_eq!(res.status().as_u16(), 200);
                }
            });
        }
    });
    let client = client();
    let marks = |requests: &[serde_json::Value]| -> Vec<String> {
        requests.iter().filter_map(|r| r["headers"]["x-test"].as_str().map(str::to_owned)).collect()
    };
    let requests = journal_until(&client, &servers[0].url("/__admin/requests?limit=1000"), |r| marks(r).len() >= 200);
    let seen = marks(&requests);
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!((seen.len(), unique.len()), (200, 200), "each request once: {seen:?}");
    for r in &requests {
        assert_eq!(r["path"], "/plain");
        assert!(r["replica"].is_string() && r["time"].is_string() && r["route"]["location"].is_string(), "{r}");
    }
    // Each replica's requests in the order it answered them: its ids grow along the journal.
    for replica in [requests[0]["replica"].clone(), requests[199]["replica"].clone()] {
        let ids: Vec<u64> =
            requests.iter().filter(|r| r["replica"] == replica).map(|r| r["id"].as_u64().unwrap()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    }
}

#[test]
fn with_redis_stopped_plain_routes_answer_stateful_ones_503_in_bounded_time_and_recover_when_it_is_back() {
    let Some(mut redis) = Redis::start() else { return };
    let toml = shared(&redis, "state_timeout = \"300ms\"", &format!("{FIVE}\n{TODO}"));
    let servers = replicas(2, &toml);
    let client = client();
    assert_eq!(get(&client, &servers[0].url("/five")).1, "1");
    let health: serde_json::Value = client.get(servers[0].url("/__admin/health")).send().unwrap().json().unwrap();
    assert_eq!(health["state"]["available"], true, "{health}");

    redis.stop();
    assert_eq!(get(&client, &servers[0].url("/plain")), (200, "plain".to_owned()));
    for path in ["/five", "/todo"] {
        for s in &servers {
            let started = Instant::now();
            let (status, body) = get(&client, &s.url(path));
            let took = started.elapsed();
            assert_eq!(status, 503, "{path}: {body}");
            assert!(body.contains("shared state store") && body.contains("check that Redis is running"), "{body}");
            assert!(took < Duration::from_secs(3), "{path} took {took:?} with state_timeout = 300ms");
        }
    }
    assert_eq!(get(&client, &servers[1].url("/plain")), (200, "plain".to_owned()));
    let health: serde_json::Value = client.get(servers[1].url("/__admin/health")).send().unwrap().json().unwrap();
    assert_eq!((&health["status"], &health["state"]["available"]), (&"degraded".into(), &false.into()), "{health}");
    let ready = client.get(servers[1].url("/__admin/health?require=state")).send().unwrap();
    assert_eq!(ready.status().as_u16(), 503, "a readiness probe that requires the store");

    // Back (empty: no persistence), and the replicas use it again without a restart.
    redis.run();
    // Each replica reconnects on its own (with its own backoff): wait for each, in turn.
    let recovered = |server: &Bin| {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let last = get(&client, &server.url("/five"));
            if last.0 == 200 || Instant::now() > deadline {
                return last;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    assert_eq!(recovered(&servers[1]), (200, "1".to_owned()), "the sequence starts again on the fresh Redis");
    assert_eq!(recovered(&servers[0]), (200, "2".to_owned()));
    assert_eq!(get(&client, &servers[0].url("/todo")).1, "one item");
    let health: serde_json::Value = client.get(servers[0].url("/__admin/health")).send().unwrap().json().unwrap();
    assert_eq!(health["status"], "ok", "{health}");
    // The outage is logged once per replica, not once per request.
    let lines = servers.into_iter().map(|s| s.stop()).collect::<Vec<_>>();
    for stderr in lines {
        let outages = stderr.iter().filter(|l| l.contains("stateful routes answer 503 until it is back")).count();
        assert_eq!(outages, 1, "{stderr:#?}");
    }
}

#[test]
fn a_bad_state_url_is_a_load_error_with_its_place() {
    let dir = tempfile::tempdir().unwrap();
    // `hotroute check` on the folder's routes.toml: whether it passed, and what it wrote to stderr.
    let check = || {
        let out = Command::new(env!("CARGO_BIN_EXE_hotroute"))
            .args(["check", "routes.toml"])
            .current_dir(dir.path())
            .output()
            .unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    std::fs::write(dir.path().join("routes.toml"), "[server]\nstate = \"http://127.0.0.1:6379\"\n").unwrap();
    let (passed, stderr) = check();
    assert!(!passed);
    assert!(stderr.contains("is not a Redis URL") && stderr.contains("routes.toml:2"), "{stderr}");
    assert!(stderr.contains("redis://"), "the help shows the form: {stderr}");

    // `state_ca`: a file that must exist and hold a certificate, with a rediss:// store.
    for (toml, want) in [
        ("state = \"rediss://127.0.0.1:6379/0\"\nstate_ca = \"missing.pem\"", "`state_ca`: cannot read"),
        ("state = \"rediss://127.0.0.1:6379/0\"\nstate_ca = \"routes.toml\"", "holds no PEM certificate"),
        ("state = \"redis://127.0.0.1:6379/0\"\nstate_ca = \"routes.toml\"", "`state` is not a rediss://"),
    ] {
        std::fs::write(dir.path().join("routes.toml"), format!("[server]\n{toml}\n")).unwrap();
        let (passed, stderr) = check();
        assert!(!passed && stderr.contains(want) && stderr.contains("routes.toml:3"), "{stderr}");
    }
}

/// nginx (Debian's nginx-light) as a round-robin load balancer in front of `backends`, unprivileged, in `dir`: one
/// process (`master_process off`), so that killing it leaves nothing behind.
fn nginx(dir: &Path, backends: &[&Bin]) -> Option<(Child, u16)> {
    let nginx = ["/usr/sbin/nginx", "nginx"].into_iter().find(|n| Command::new(n).arg("-v").output().is_ok())?;
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let servers: String = backends.iter().map(|b| format!("    server {};\n", b.addr)).collect();
    let d = dir.display();
    let conf = format!(
        "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
         events {{ worker_connections 256; }}\nhttp {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  \
         proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  \
         scgi_temp_path {d}/scgi;\n  upstream replicas {{\n{servers}  }}\n  server {{\n    listen 127.0.0.1:{port};\n    \
         location / {{ proxy_pass http://replicas; proxy_set_header Host 127.0.0.1; }}\n  }}\n}}\n"
    );
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    let child = Command::new(nginx)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .arg("-p")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nginx did not listen within 10 s: {:?}",
            std::fs::read_to_string(dir.join("error.log"))
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Some((child, port))
}

#[test]
fn three_replicas_behind_nginx_round_robin_answer_as_one_server() {
    let Some(redis) = Redis::start() else { return };
    let servers = replicas(3, &shared(&redis, "", &format!("{FIVE}\n{TODO}")));
    let dir = tempfile::tempdir().unwrap();
    let Some((mut nginx, port)) = nginx(dir.path(), &servers.iter().collect::<Vec<_>>()) else {
        eprintln!("\n!!! SKIPPED the nginx part: nginx is not installed (apt-get install -y nginx-light)\n");
        return;
    };
    let client = client();
    let url = |p: &str| format!("http://127.0.0.1:{port}{p}");
    let got: Vec<String> = (0..15).map(|_| get(&client, &url("/five")).1).collect();
    let expected: Vec<&str> = ["1", "2", "3", "4"].into_iter().chain(std::iter::repeat_n("5", 11)).collect();
    assert_eq!(got, expected);
    assert_eq!(get(&client, &url("/todo")).1, "one item");
    assert_eq!(client.post(url("/todo")).send().unwrap().status().as_u16(), 201);
    for _ in 0..3 {
        assert_eq!(get(&client, &url("/todo")).1, "two items (added)");
    }
    // nginx spread them over all three: the shared journal (read from one replica) names each.
    let requests = journal_until(&client, &servers[0].url("/__admin/requests?limit=100"), |r| r.len() >= 20);
    let replicas: BTreeSet<&str> = requests.iter().filter_map(|r| r["replica"].as_str()).collect();
    assert_eq!(requests.len(), 20);
    assert_eq!(replicas.len(), 3, "round robin reached every replica: {replicas:?}");
    let _ = nginx.kill();
    let _ = nginx.wait();
}

#[test]
fn a_route_changed_on_one_replica_counts_apart_and_hotroute_state_names_the_store() {
    let Some(redis) = Redis::start() else { return };
    // The store from the environment, with the file's prefix and timeout.
    let start = |toml: &str| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("routes.toml"), toml).unwrap();
        Bin::command()
            .in_dir(dir)
            .env("HOTROUTE_STATE", &redis.url())
            .args(["routes.toml", "--port", "0", "--no-watch", "--log-level", "warn"])
            .start()
    };
    let same = start(&format!("[server]\nstate_prefix = \"env\"\n{FIVE}"));
    let also_same = start(&format!("[server]\nstate_prefix = \"env\"\n{FIVE}"));
    let changed = start(&format!("[server]\nstate_prefix = \"env\"\n{}", FIVE.replace("\"5\"", "\"five\"")));
    let client = client();
    assert_eq!(get(&client, &same.url("/five")).1, "1");
    assert_eq!(get(&client, &also_same.url("/five")).1, "2");
    // Another definition is another route: it starts at 1, and does not move the others.
    assert_eq!(get(&client, &changed.url("/five")).1, "1");
    assert_eq!(get(&client, &same.url("/five")).1, "3");
    let health: serde_json::Value = client.get(same.url("/__admin/health")).send().unwrap().json().unwrap();
    assert_eq!(health["state"]["store"], redis.url().as_str(), "{health}");
}

/// `path` on `server` with `x-test-id: id` (none: the default partition).
fn get_as(client: &Client, server: &Bin, path: &str, id: Option<&str>) -> String {
    let mut req = client.get(server.url(path));
    if let Some(id) = id {
        req = req.header("x-test-id", id);
    }
    let res = req.send().expect("the server answers");
    assert_eq!(res.status().as_u16(), 200, "{path} as {id:?}");
    res.text().unwrap()
}

#[test]
fn isolated_partitions_count_and_move_apart_in_redis_and_a_partition_reset_reaches_every_replica() {
    let Some(redis) = Redis::start() else { return };
    let servers = replicas(2, &shared(&redis, "isolate = \"header:x-test-id\"", &format!("{FIVE}\n{TODO}")));
    let client = client();
    // Each partition has its own sequence position, counted in Redis across the replicas.
    let ids = [Some("w1"), Some("w1:x"), None];
    for (i, want) in ["1", "2", "3"].into_iter().enumerate() {
        for (j, id) in ids.into_iter().enumerate() {
            assert_eq!(get_as(&client, &servers[(i + j) % 2], "/five", id), want, "request {i} as {id:?}");
        }
    }
    // A scenario moved in one partition, on one replica, is seen in that partition only, on the other.
    let post = client.post(servers[0].url("/todo")).header("x-test-id", "w1").send().unwrap();
    assert_eq!(post.status().as_u16(), 201);
    assert_eq!(get_as(&client, &servers[1], "/todo", Some("w1")), "two items (added)");
    assert_eq!(get_as(&client, &servers[1], "/todo", Some("w1:x")), "one item");
    assert_eq!(get_as(&client, &servers[0], "/todo", None), "one item");

    // `reset?isolate=w1` on one replica starts `w1` again on both; `w1:x` (a prefix of its keys' names) and the
    // default partition go on.
    let reset = client.post(servers[1].url("/__admin/reset?isolate=w1")).header("x-hotroute", "1").send().unwrap();
    assert_eq!(reset.status().as_u16(), 200);
    assert_eq!(get_as(&client, &servers[0], "/five", Some("w1")), "1");
    assert_eq!(get_as(&client, &servers[0], "/todo", Some("w1")), "one item");
    assert_eq!(get_as(&client, &servers[1], "/five", Some("w1:x")), "4");
    assert_eq!(get_as(&client, &servers[0], "/five", None), "4");

    // The shared journal of any replica, for one partition.
    let url = servers[0].url("/__admin/requests?isolate=w1:x&limit=100");
    let requests = journal_until(&client, &url, |r| r.len() >= 5);
    assert_eq!(requests.len(), 5, "{requests:?}");
    assert!(requests.iter().all(|r| r["isolate"] == "w1:x"), "{requests:?}");
}

/// One operation with a required query parameter, for `openapi_validate` in front of a stateful route.
const NEXT_DOC: &str = r#"openapi: 3.0.3
info: { title: Next, version: "1" }
paths:
  /next:
    get:
      parameters:
        - { name: n, in: query, required: true, schema: { type: integer } }
      responses:
        "200": { description: ok }
"#;

#[test]
fn openapi_checks_and_websocket_upgrades_apply_to_stateful_routes_answered_through_redis() {
    let Some(redis) = Redis::start() else { return };
    let routes = r#"
[[route]]
path = "/next"
sequence = [{ body = "first" }, { body = "second" }]

[[route]]
path = "/ws"
template = true
websocket = { on_connect = [ { text = "hello {{ count }}" } ] }
"#;
    let toml = shared(&redis, "openapi = \"next.yaml\"\nopenapi_validate = \"enforce\"", routes);
    let servers: Vec<Bin> = (0..2)
        .map(|_| {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("routes.toml"), &toml).unwrap();
            std::fs::write(dir.path().join("next.yaml"), NEXT_DOC).unwrap();
            Bin::command().in_dir(dir).args(["routes.toml", "--port", "0", "--no-watch"]).start()
        })
        .collect();
    let client = client();
    // Refused before the route answers: the shared sequence does not move.
    assert_eq!(get(&client, &servers[0].url("/next")).0, 422);
    assert_eq!(get(&client, &servers[1].url("/next?n=x")).0, 422);
    assert_eq!(get(&client, &servers[1].url("/next?n=1")), (200, "first".to_owned()));
    assert_eq!(get(&client, &servers[0].url("/next?n=2")), (200, "second".to_owned()));

    // The handshake is counted in Redis, and the conversation runs after it.
    assert_eq!(websocket_first_text(&servers[0]), "hello 1");
    assert_eq!(websocket_first_text(&servers[1]), "hello 2");
}

/// Opens a WebSocket to `/ws` on `server` over raw HTTP/1.1 and returns the first text message (unmasked from a
/// server, at most 125 bytes here).
fn websocket_first_text(server: &Bin) -> String {
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let handshake = "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                     Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    s.write_all(handshake.as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).expect("the handshake's answer");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let mut frame = [0u8; 2];
    s.read_exact(&mut frame).expect("a first message after the upgrade");
    assert_eq!(frame[0], 0x81, "a final text frame");
    let mut text = vec![0u8; usize::from(frame[1] & 0x7f)];
    s.read_exact(&mut text).unwrap();
    String::from_utf8(text).unwrap()
}

/// A resource with start data: one item with an integer id, one without an id (listed, not addressable).
const USERS: &str = r#"
[[resource]]
path = "/users"
data = [{ id = 1, name = "Ada", role = "admin" }, { name = "nobody" }]
max_items = 12
"#;

fn send_json(client: &Client, method: reqwest::Method, url: &str, body: &str) -> (u16, String) {
    let res = client
        .request(method, url)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .expect("the server answers");
    (res.status().as_u16(), res.text().unwrap())
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn a_resource_written_on_one_replica_is_read_changed_and_deleted_on_the_others() {
    let Some(redis) = Redis::start() else { return };
    let servers = replicas(3, &shared(&redis, "", USERS));
    let client = client();
    let post = reqwest::Method::POST;
    // The start data, loaded into Redis once, seen by every replica.
    let (status, list) = get(&client, &servers[2].url("/users"));
    assert_eq!(
        (status, json(&list)),
        (200, serde_json::json!([{ "name": "nobody" }, { "id": 1, "name": "Ada", "role": "admin" }]))
    );

    let (status, made) = send_json(&client, post.clone(), &servers[0].url("/users"), r#"{"name": "Grace"}"#);
    assert_eq!(status, 201, "{made}");
    assert_eq!(made, r#"{"id":2,"name":"Grace"}"#, "the generated id first, then the fields as sent");
    assert_eq!(get(&client, &servers[1].url("/users/2")), (200, made.clone()));
    let (status, patched) =
        send_json(&client, reqwest::Method::PATCH, &servers[2].url("/users/2"), r#"{"role": "admin", "id": null}"#);
    assert_eq!((status, json(&patched)), (200, serde_json::json!({ "id": 2, "name": "Grace", "role": "admin" })));
    let (status, list) = get(&client, &servers[0].url("/users?role=admin&_sort=-name"));
    assert_eq!(status, 200);
    let list = json(&list);
    let names: Vec<&str> = list.as_array().unwrap().iter().map(|u| u["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Grace", "Ada"], "filtered and sorted on another replica: {list}");
    let (status, put) =
        send_json(&client, reqwest::Method::PUT, &servers[1].url("/users/1"), r#"{"name": "Lovelace"}"#);
    assert_eq!((status, json(&put)), (200, serde_json::json!({ "id": 1, "name": "Lovelace" })));
    assert_eq!(get(&client, &servers[2].url("/users/1")).1, r#"{"id":1,"name":"Lovelace"}"#);
    let (status, conflict) = send_json(&client, post.clone(), &servers[2].url("/users"), r#"{"id": 2}"#);
    assert_eq!(status, 409, "{conflict}");
    assert!(conflict.contains("an item with id `2` already exists in /users"), "{conflict}");
    let deleted = client.delete(servers[0].url("/users/2")).send().unwrap();
    assert_eq!(deleted.status().as_u16(), 204);
    let (status, missing) = get(&client, &servers[1].url("/users/2"));
    assert_eq!(status, 404, "{missing}");
    assert!(missing.contains("no item with id `2` in /users"), "{missing}");

    // 8 concurrent POSTs across the replicas: 8 different generated ids, none taken before (2 was deleted, 3 on).
    let ids: Vec<i64> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..8)
            .map(|i| {
                let (url, client) = (servers[i % 3].url("/users"), &client);
                scope.spawn(move || {
                    let (status, made) = send_json(client, reqwest::Method::POST, &url, &format!(r#"{{"n": {i}}}"#));
                    assert_eq!(status, 201, "{made}");
                    json(&made)["id"].as_i64().unwrap()
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let distinct: BTreeSet<i64> = ids.iter().copied().collect();
    assert_eq!(distinct, (3..=10).collect::<BTreeSet<i64>>(), "{ids:?}");
    let (_, list) = get(&client, &servers[1].url("/users"));
    assert_eq!(json(&list).as_array().unwrap().len(), 10, "{list}");

    // max_items (12) holds across replicas, checked in the same step as the insert.
    for (i, want) in [201, 201, 507].into_iter().enumerate() {
        let (status, body) = send_json(&client, post.clone(), &servers[i % 3].url("/users"), "{}");
        assert_eq!(status, want, "POST {i}: {body}");
    }

    // A reset on one replica puts the start data back for all of them.
    let reset = client.post(servers[2].url("/__admin/reset")).header("x-hotroute", "1").send().unwrap();
    assert_eq!(reset.status().as_u16(), 200);
    for s in &servers {
        let (_, list) = get(&client, &s.url("/users"));
        assert_eq!(json(&list), serde_json::json!([{ "name": "nobody" }, { "id": 1, "name": "Ada", "role": "admin" }]));
    }
    let (status, made) = send_json(&client, post, &servers[1].url("/users"), r#"{"name": "Grace"}"#);
    assert_eq!((status, made.as_str()), (201, r#"{"id":2,"name":"Grace"}"#));
}

#[test]
fn a_resource_answers_503_in_bounded_time_when_redis_is_down_and_its_string_ids_are_uuids() {
    let Some(mut redis) = Redis::start() else { return };
    let routes = "[[resource]]\npath = \"/notes\"\ndata = [{ id = \"a\", text = \"first\" }]\n";
    let servers = replicas(
        2,
        &shared(&redis, "state_timeout = \"300ms\"\n[[route]]\npath = \"/plain\"\nbody = \"plain\"", routes),
    );
    let client = client();
    let (status, made) = send_json(&client, reqwest::Method::POST, &servers[0].url("/notes"), r#"{"text": "x"}"#);
    assert_eq!(status, 201, "{made}");
    let id = json(&made)["id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 36, "a UUID, as the start data's ids are strings: {made}");
    assert_eq!(get(&client, &servers[1].url(&format!("/notes/{id}"))), (200, made));

    redis.stop();
    for s in &servers {
        let started = Instant::now();
        let (status, body) = get(&client, &s.url("/notes"));
        assert_eq!(status, 503, "{body}");
        assert!(body.contains("shared state store") && body.contains("check that Redis is running"), "{body}");
        assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    }
    assert_eq!(get(&client, &servers[1].url("/plain")), (200, "plain".to_owned()));
}

#[test]
fn rediss_with_state_ca_shares_a_sequence_and_without_it_the_error_names_the_setting() {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    if Command::new("redis-server").arg("--version").output().is_err() {
        return drop(Redis::start());
    }
    // A private CA, and a certificate for 127.0.0.1 that it signs.
    let dir = tempfile::tempdir().unwrap();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "hotroute test CA");
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    let (ca_path, cert_path, key_path) =
        (dir.path().join("ca.pem"), dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&ca_path, ca_pem).unwrap();
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    let Some(redis) = Redis::start_tls(&cert_path, &key_path) else { return };
    assert!(redis.url().starts_with("rediss://"));

    let extra = format!("state_ca = \"{}\"", ca_path.display());
    let servers = replicas(2, &shared(&redis, &extra, FIVE));
    let client = client();
    let got: Vec<String> = (0..6).map(|i| get(&client, &servers[i % 2].url("/five")).1).collect();
    assert_eq!(got, ["1", "2", "3", "4", "5", "5"], "one sequence through TLS for both replicas");

    // Without state_ca the store's certificate is not trusted: a 503 (and the health) says which setting to set.
    let alone = Bin::start(&shared(&redis, "state_timeout = \"2s\"", FIVE));
    let (status, body) = get(&client, &alone.url("/five"));
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("[server] state_ca") && body.contains("not trusted"), "{body}");
    let health: serde_json::Value = client.get(alone.url("/__admin/health")).send().unwrap().json().unwrap();
    assert_eq!(health["state"]["available"], false, "{health}");
    assert!(health.to_string().contains("state_ca"), "{health}");
}

#[test]
fn resource_items_in_redis_are_kept_per_partition_and_a_partition_reset_restores_its_start_data() {
    let Some(redis) = Redis::start() else { return };
    let servers = replicas(2, &shared(&redis, "isolate = \"header:x-test-id\"", USERS));
    let client = client();
    let post = |server: &Bin, id: &str| {
        let res = client
            .post(server.url("/users"))
            .header("x-test-id", id)
            .header("content-type", "application/json")
            .body(r#"{"name": "Grace"}"#)
            .send()
            .unwrap();
        (res.status().as_u16(), res.text().unwrap())
    };
    assert_eq!(post(&servers[0], "w1"), (201, r#"{"id":2,"name":"Grace"}"#.to_owned()));
    assert_eq!(post(&servers[1], "w2"), (201, r#"{"id":2,"name":"Grace"}"#.to_owned()), "w2 has its own ids");
    assert_eq!(get_as(&client, &servers[1], "/users/2", Some("w1")), r#"{"id":2,"name":"Grace"}"#);
    let (status, _) = get(&client, &servers[0].url("/users/2"));
    assert_eq!(status, 404, "the default partition holds the start data only");

    let reset = client.post(servers[1].url("/__admin/reset?isolate=w1")).header("x-hotroute", "1").send().unwrap();
    assert_eq!(reset.status().as_u16(), 200);
    let res = client.get(servers[0].url("/users/2")).header("x-test-id", "w1").send().unwrap();
    assert_eq!(res.status().as_u16(), 404, "w1 is back to its start data");
    assert_eq!(get_as(&client, &servers[0], "/users/2", Some("w2")), r#"{"id":2,"name":"Grace"}"#, "w2 is not");
}
