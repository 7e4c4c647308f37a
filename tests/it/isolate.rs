//! `[server] isolate` against the real binary: 8 parallel clients running the same stateful flow (a sequence, a
//! scenario, a resource write) on one server, each with its own id, never see each other; requests without the id
//! share the default partition; `GET /__admin/requests?isolate=ID` and `POST /__admin/reset?isolate=ID`; query and
//! cookie keys; a `HEAD` that moves nothing in its partition; a bad setting is a load error.

use std::sync::{Arc, Barrier};
use std::time::Duration;

use reqwest::blocking::Client;
use serde_json::{Value, json};

use crate::support::bin::Bin;

const ROUTES: &str = r#"
[server]
isolate = "header:x-test-id"

[[route]]
path = "/flaky"
sequence = [{ status = 503, body = "first" }, { status = 200, body = "second" }]

[[route]]
path = "/count"
template = true
body = "{{ count }}"

[[route]]
path = "/todo"
scenario = "todo"
state = "started"
json = { items = ["buy milk"] }

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
json = { items = ["buy milk", "clean up"] }

[[route]]
path = "/todo/state"
template = true
body = "{{ scenario.todo }}"

[[resource]]
path = "/users"
data = [{ id = 1, name = "Ada" }]
"#;

/// Where a server listens, for the worker threads (a [`Bin`] stays with the test's thread).
#[derive(Clone, Copy)]
struct Server(std::net::SocketAddr);

impl Server {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.0)
    }
}

fn client() -> Client {
    Client::builder().no_proxy().timeout(Duration::from_secs(10)).build().unwrap()
}

/// A GET as test `id` (none: the default partition): status and body.
fn get(c: &Client, bin: &Server, path: &str, id: Option<&str>) -> (u16, String) {
    let mut req = c.get(bin.url(path));
    if let Some(id) = id {
        req = req.header("x-test-id", id);
    }
    let r = req.send().unwrap();
    (r.status().as_u16(), r.text().unwrap())
}

fn post(c: &Client, bin: &Server, path: &str, id: &str, body: Value) -> (u16, String) {
    let r = c
        .post(bin.url(path))
        .header("x-test-id", id)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .unwrap();
    (r.status().as_u16(), r.text().unwrap())
}

/// The stateful flow one test runs: a sequence, a counter, a scenario and a resource write, checked at each step
/// as if the test had the server to itself.
fn flow(c: &Client, bin: &Server, id: &str) {
    assert_eq!(get(c, bin, "/flaky", Some(id)), (503, "first".into()), "{id}");
    assert_eq!(get(c, bin, "/flaky", Some(id)), (200, "second".into()), "{id}");
    for n in 1..=3 {
        assert_eq!(get(c, bin, "/count", Some(id)).1, n.to_string(), "{id}");
    }
    assert_eq!(get(c, bin, "/todo", Some(id)).1, r#"{"items":["buy milk"]}"#, "{id}");
    assert_eq!(get(c, bin, "/todo/state", Some(id)).1, "started", "{id}");
    assert_eq!(post(c, bin, "/todo", id, json!({})).0, 201, "{id}");
    assert_eq!(get(c, bin, "/todo/state", Some(id)).1, "added", "templates see the partition's state: {id}");
    assert_eq!(get(c, bin, "/todo", Some(id)).1, r#"{"items":["buy milk","clean up"]}"#, "{id}");
    let (status, created) = post(c, bin, "/users", id, json!({ "name": id }));
    assert_eq!((status, created), (201, format!(r#"{{"id":2,"name":"{id}"}}"#)), "{id}");
    let users: Value = serde_json::from_str(&get(c, bin, "/users", Some(id)).1).unwrap();
    assert_eq!(users, json!([{ "id": 1, "name": "Ada" }, { "id": 2, "name": id }]), "{id}");
}

#[test]
fn eight_parallel_clients_with_their_own_ids_never_see_each_other() {
    let running = Bin::start(ROUTES);
    let bin = Server(running.addr);
    let start = Arc::new(Barrier::new(8));
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let start = Arc::clone(&start);
            std::thread::spawn(move || {
                let c = client();
                start.wait();
                // Each worker runs the flow three times as three tests, as a test runner's worker would.
                for t in 0..3 {
                    flow(&c, &bin, &format!("worker{w}-test{t}"));
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("a worker saw another's state");
    }
    // The default partition was never touched.
    let c = client();
    assert_eq!(get(&c, &bin, "/flaky", None), (503, "first".into()));
    assert_eq!(get(&c, &bin, "/todo", None).1, r#"{"items":["buy milk"]}"#);
    assert_eq!(get(&c, &bin, "/users", None).1, r#"[{"id":1,"name":"Ada"}]"#);
    // The journal of one partition holds only its requests.
    let journal: Value = c.get(bin.url("/__admin/requests?isolate=worker3-test1")).send().unwrap().json().unwrap();
    let requests = journal["requests"].as_array().unwrap();
    assert_eq!(requests.len(), 12, "{journal}");
    assert!(requests.iter().all(|r| r["isolate"] == "worker3-test1"), "{journal}");
}

#[test]
fn reset_with_isolate_resets_only_that_partition() {
    let running = Bin::start(ROUTES);
    let bin = Server(running.addr);
    let c = client();
    for id in ["a", "b"] {
        assert_eq!(get(&c, &bin, "/flaky", Some(id)).0, 503);
        assert_eq!(post(&c, &bin, "/todo", id, json!({})).0, 201);
        assert_eq!(post(&c, &bin, "/users", id, json!({ "name": id })).0, 201);
    }
    assert_eq!(get(&c, &bin, "/flaky", None).0, 503);

    let reset = c.post(bin.url("/__admin/reset?isolate=a")).header("x-hotroute", "1").send().unwrap();
    assert_eq!(reset.status(), 200);
    let body: Value = reset.json().unwrap();
    assert_eq!(body["cleared"], 3, "a's three requests left the journal: {body}");

    // `a` starts again; `b` and the default partition do not.
    assert_eq!(get(&c, &bin, "/flaky", Some("a")).0, 503);
    assert_eq!(get(&c, &bin, "/todo", Some("a")).1, r#"{"items":["buy milk"]}"#);
    assert_eq!(get(&c, &bin, "/users/2", Some("a")).0, 404);
    assert_eq!(get(&c, &bin, "/flaky", Some("b")).0, 200);
    assert_eq!(get(&c, &bin, "/todo", Some("b")).1, r#"{"items":["buy milk","clean up"]}"#);
    assert_eq!(get(&c, &bin, "/users/2", Some("b")).0, 200);
    assert_eq!(get(&c, &bin, "/flaky", None).0, 200);
    let journal: Value = c.get(bin.url("/__admin/requests?isolate=b")).send().unwrap().json().unwrap();
    assert_eq!(journal["requests"].as_array().unwrap().len(), 6, "{journal}");

    // A reset of everything resets every partition.
    assert_eq!(c.post(bin.url("/__admin/reset")).header("x-hotroute", "1").send().unwrap().status(), 200);
    assert_eq!(get(&c, &bin, "/flaky", Some("b")).0, 503);
    assert_eq!(get(&c, &bin, "/users/2", Some("b")).0, 404);
}

#[test]
fn a_head_in_a_partition_moves_nothing_there() {
    let routes = format!(
        "{ROUTES}\n[[route]]\npath = \"/door\"\nscenario = \"door\"\nnext_state = \"open\"\ntemplate = true\n\
         headers = {{ x-door = \"{{{{ scenario.door }}}}\" }}\nbody = \"was {{{{ scenario.door }}}}\"\n"
    );
    let running = Bin::start(&routes);
    let bin = Server(running.addr);
    let c = client();
    let head = |path: &str, id: &str, name: &str| {
        let r = c.head(bin.url(path)).header("x-test-id", id).send().unwrap();
        (r.status().as_u16(), r.headers()[name].to_str().unwrap().to_owned())
    };
    // The first item's status and length ("first"), twice: the HEADs did not count.
    assert_eq!(head("/flaky", "a", "content-length"), (503, "5".into()));
    assert_eq!(head("/flaky", "a", "content-length"), (503, "5".into()));
    assert_eq!(get(&c, &bin, "/flaky", Some("a")), (503, "first".into()));
    assert_eq!(head("/flaky", "a", "content-length"), (200, "6".into()), "the HEAD sees the partition's next item");
    assert_eq!(get(&c, &bin, "/flaky", Some("a")), (200, "second".into()));
    assert_eq!(head("/count", "a", "content-length").0, 200);
    assert_eq!(get(&c, &bin, "/count", Some("a")).1, "1");
    // A route whose answer moves its scenario: the HEAD sees the state and leaves it.
    assert_eq!(head("/door", "a", "x-door"), (200, "started".into()));
    assert_eq!(head("/door", "a", "x-door"), (200, "started".into()));
    assert_eq!(get(&c, &bin, "/door", Some("a")).1, "was started");
    assert_eq!(head("/door", "a", "x-door"), (200, "open".into()), "the GET moved it");
    // Another partition and the default one were not touched.
    assert_eq!(get(&c, &bin, "/flaky", Some("b")), (503, "first".into()));
    assert_eq!(get(&c, &bin, "/door", Some("b")).1, "was started");
    assert_eq!(get(&c, &bin, "/flaky", None), (503, "first".into()));
    assert_eq!(get(&c, &bin, "/door", None).1, "was started");
}

#[test]
fn query_and_cookie_keys_name_the_partition() {
    let routes =
        "[server]\nisolate = \"query:test\"\n\n[[route]]\npath = \"/n\"\ntemplate = true\nbody = \"{{ count }}\"\n";
    let bin = Bin::start(routes);
    let c = client();
    let n = |q: &str| c.get(bin.url(&format!("/n{q}"))).send().unwrap().text().unwrap();
    assert_eq!([n("?test=x"), n("?test=x"), n("?test=y"), n(""), n("?other=1")], ["1", "2", "1", "1", "2"]);

    let routes = routes.replace("query:test", "cookie:tid");
    let bin = Bin::start(&routes);
    let n = |cookie: &str| c.get(bin.url("/n")).header("cookie", cookie).send().unwrap().text().unwrap();
    assert_eq!([n("a=1; tid=x"), n("tid=x"), n("tid=y"), n("a=1")], ["1", "2", "1", "1"]);
}

#[test]
fn a_bad_isolate_setting_is_a_load_error() {
    for (value, says) in [
        ("x-test-id", "does not say where the partition id is"),
        ("body:x", "`body` is not a place a partition id can be"),
        ("header:", "names no header"),
        ("header:bad name", "`bad name` is not a valid header name"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("routes.toml"), format!("[server]\nisolate = \"{value}\"\n")).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_hotroute"))
            .args(["check", "routes.toml"])
            .current_dir(dir.path())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(text.contains(says) && text.contains("routes.toml:2:11"), "{value}: {text}");
        assert!(text.contains("header:x-test-id"), "the help names the forms: {text}");
    }
}
