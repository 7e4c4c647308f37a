//! Runtime state against the real binary. Scenarios: WireMock's to-do example in any order, the near-miss 404 that
//! names the states, `scenario.<name>` in templates, the admin endpoints (list, set, reset), a reload that keeps the
//! states of scenarios that still exist, and the load errors of the new keys. Runtime routes over HTTP: added,
//! overriding the file's, listed with their origin, removed, surviving reloads, refused with line and column.
//! `POST /__admin/reset`. A `HEAD` leaves every scenario where it was.

use crate::common;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use reqwest::blocking::{Client, Response};

const BIN: &str = env!("CARGO_BIN_EXE_hotroute");

const TODO: &str = r#"
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
body = "added"

[[route]]
path = "/todo"
scenario = "todo"
state = "added"
template = true
json = { items = ["buy milk", "clean up"], state = "{{ scenario.todo }}" }

[[route]]
path = "/todo/clear"
method = "POST"
scenario = "todo"
state = "added"
next_state = "started"
status = 204

[[route]]
path = "/flaky"
sequence = [{ status = 503 }, { status = 200 }]
"#;

/// The binary serving a route file in a temp folder, killed on drop.
struct Running {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
    client: Client,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    fn start(toml: &str) -> Running {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("routes.toml"), toml).unwrap();
        let mut child = Command::new(BIN)
            .args(["--port", "0", "routes.toml"])
            .current_dir(dir.path())
            .env_remove("HOTROUTE_ADMIN_TOKEN")
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the binary starts");
        let addr = common::listening::read_address(&mut child).unwrap_or_else(|l| panic!("first stdout line: {l:?}"));
        let client = Client::builder().no_proxy().timeout(std::time::Duration::from_secs(10)).build().unwrap();
        Running { child, addr, dir, client }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn get(&self, path: &str) -> (u16, String) {
        text(self.client.get(self.url(path)).send().unwrap())
    }

    fn post(&self, path: &str) -> (u16, String) {
        text(self.client.post(self.url(path)).send().unwrap())
    }

    /// An admin call that changes state, as a script makes it: with `X-Hotroute: 1`.
    fn admin(&self, method: reqwest::Method, path: &str, body: &str) -> (u16, String) {
        let req = self.client.request(method, self.url(path)).header("x-hotroute", "1").body(body.to_owned());
        text(req.send().unwrap())
    }

    fn scenarios(&self) -> serde_json::Value {
        let (status, body) = self.get("/__admin/scenarios");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    fn state(&self, name: &str) -> String {
        let all = self.scenarios();
        let found = all["scenarios"].as_array().unwrap().iter().find(|s| s["name"] == name);
        found.map(|s| s["state"].as_str().unwrap().to_owned()).unwrap_or_else(|| panic!("no scenario {name}: {all}"))
    }
}

fn text(res: Response) -> (u16, String) {
    (res.status().as_u16(), res.text().unwrap())
}

fn items(body: &str) -> usize {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    v["items"].as_array().unwrap().len()
}

#[test]
fn the_todo_list_has_one_item_until_a_post_then_two_in_any_order() {
    let s = Running::start(TODO);
    // GETs first: the list stays at one item, however often it is read.
    for _ in 0..3 {
        let (status, body) = s.get("/todo");
        assert_eq!((status, items(&body)), (200, 1), "{body}");
    }
    assert_eq!(s.post("/todo"), (201, "added".to_owned()));
    let (status, body) = s.get("/todo");
    assert_eq!((status, items(&body)), (200, 2), "{body}");
    assert!(body.contains(r#""state":"added""#), "templates see scenario.todo: {body}");
    assert_eq!(s.get("/todo").1, body, "the state holds until a route moves it");

    // Back to the start, then the other order: the POST first, on a list never read.
    assert_eq!(s.post("/todo/clear").0, 204);
    assert_eq!(items(&s.get("/todo").1), 1);
    assert_eq!(s.admin(reqwest::Method::POST, "/__admin/scenarios/reset", "").0, 200);
    assert_eq!(s.post("/todo").0, 201);
    assert_eq!(s.post("/todo").0, 201, "a second POST keeps the state it moved to");
    assert_eq!(items(&s.get("/todo").1), 2);
}

#[test]
fn the_near_miss_404_names_the_state_wanted_and_the_state_the_scenario_is_in() {
    let s = Running::start(TODO);
    let (status, body) = s.post("/todo/clear");
    assert_eq!(status, 404, "{body}");
    assert!(
        body.contains("scenario `todo` is in state `started`, the route wants `added`")
            && body.contains("routes.toml:"),
        "{body}"
    );
}

#[test]
fn the_admin_api_lists_sets_and_resets_scenarios() {
    let s = Running::start(TODO);
    let all = s.scenarios();
    assert_eq!(
        all["scenarios"],
        serde_json::json!([{ "name": "todo", "state": "started", "states": ["added", "started"] }])
    );

    let (status, body) = s.admin(reqwest::Method::PUT, "/__admin/scenarios/todo", r#"{"state": "added"}"#);
    assert_eq!(status, 200, "{body}");
    assert_eq!(s.state("todo"), "added");
    assert_eq!(items(&s.get("/todo").1), 2, "the routes follow a state set by the admin API");

    let (status, body) = s.admin(reqwest::Method::PUT, "/__admin/scenarios/nope", r#"{"state": "added"}"#);
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("no route names scenario `nope`; the scenarios are: `todo`"), "{body}");
    let (status, body) = s.admin(reqwest::Method::PUT, "/__admin/scenarios/todo", r#"{"state": "adedd"}"#);
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("state `adedd`") && body.contains("`added`, `started`"), "{body}");
    let (status, body) = s.admin(reqwest::Method::PUT, "/__admin/scenarios/todo", "added");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains(r#"{"state": "added"}"#), "the error shows the body to send: {body}");
    assert_eq!(s.state("todo"), "added", "refused calls change nothing");

    // A reset is a state-changing call: a bare POST (what a page on another site can send) is refused.
    let (status, body) = text(s.client.post(s.url("/__admin/scenarios/reset")).send().unwrap());
    assert_eq!(status, 403, "{body}");
    assert_eq!(s.state("todo"), "added");
    assert_eq!(s.admin(reqwest::Method::POST, "/__admin/scenarios/reset", "").0, 200);
    assert_eq!(s.state("todo"), "started");
    assert_eq!(s.get("/__admin/scenarios/todo").0, 405, "a scenario's path answers PUT only");
}

#[test]
fn reset_restores_the_journal_sequences_and_scenarios() {
    let s = Running::start(TODO);
    assert_eq!(s.get("/flaky").0, 503);
    assert_eq!(s.get("/flaky").0, 200);
    assert_eq!(s.post("/todo").0, 201);
    let journal = |s: &Running| -> usize {
        let v: serde_json::Value = serde_json::from_str(&s.get("/__admin/requests").1).unwrap();
        v["requests"].as_array().map_or(0, Vec::len)
    };
    assert!(journal(&s) >= 3);
    let (status, body) = s.admin(reqwest::Method::POST, "/__admin/reset", "");
    assert_eq!(status, 200, "{body}");
    assert_eq!(journal(&s), 0, "the journal is empty");
    assert_eq!(s.state("todo"), "started");
    assert_eq!(s.get("/flaky").0, 503, "the sequence starts over");
    assert_eq!(items(&s.get("/todo").1), 1);
}

const DOOR: &str = r#"
[[route]]
path = "/door"
scenario = "door"
state = "started"
next_state = "open"
headers = { x-door = "opening" }
body = "opening"

[[route]]
path = "/door"
scenario = "door"
state = "open"
headers = { x-door = "open" }
body = "already open"
"#;

/// A HEAD's status and `x-door` header.
fn head_door(s: &Running, path: &str) -> (u16, String) {
    let res = s.client.head(s.url(path)).send().unwrap();
    let door = res.headers().get("x-door").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    (res.status().as_u16(), door)
}

#[test]
fn a_head_on_a_route_that_moves_its_scenario_leaves_the_state_where_it_was() {
    let s = Running::start(DOOR);
    for _ in 0..3 {
        assert_eq!(head_door(&s, "/door"), (200, "opening".into()), "the HEAD gets what the next GET would");
    }
    assert_eq!(s.state("door"), "started", "HEAD is safe: the scenario did not move");
    assert_eq!(s.get("/door"), (200, "opening".into()));
    assert_eq!(s.state("door"), "open", "the GET moved it");
    assert_eq!(head_door(&s, "/door"), (200, "open".into()));
    assert_eq!(s.get("/door"), (200, "already open".into()));

    // Runtime routes go through the same code.
    let runtime = DOOR.replace("/door", "/gate").replace("\"door\"", "\"gate\"");
    assert_eq!(add(&s, &runtime).0, 200);
    assert_eq!(head_door(&s, "/gate"), (200, "opening".into()));
    assert_eq!(s.state("gate"), "started");
    assert_eq!(s.get("/gate"), (200, "opening".into()));
    assert_eq!(s.state("gate"), "open");

    // The journal still records the HEADs: they happened.
    let (_, journal) = s.get("/__admin/requests");
    let journal: serde_json::Value = serde_json::from_str(&journal).unwrap();
    let heads = journal["requests"].as_array().unwrap().iter().filter(|r| r["method"] == "HEAD").count();
    assert_eq!(heads, 5, "{journal}");
}

#[test]
fn a_reload_keeps_the_state_of_scenarios_whose_routes_still_exist() {
    let s = Running::start(TODO);
    assert_eq!(s.post("/todo").0, 201);
    let renamed = TODO.replace("\"todo\"", "\"list\"");
    // Another route added, the scenario kept: its state stays.
    std::fs::write(s.dir.path().join("routes.toml"), format!("{TODO}\n[[route]]\npath = \"/new\"\nbody = \"n\"\n"))
        .unwrap();
    assert_eq!(s.admin(reqwest::Method::POST, "/__admin/reload", "").0, 200);
    assert_eq!(s.get("/new").0, 200);
    assert_eq!(s.state("todo"), "added");
    assert_eq!(items(&s.get("/todo").1), 2);
    // The scenario renamed: a scenario the old routes never named starts at the start.
    std::fs::write(s.dir.path().join("routes.toml"), renamed).unwrap();
    assert_eq!(s.admin(reqwest::Method::POST, "/__admin/reload", "").0, 200);
    assert_eq!(s.state("list"), "started");
    assert_eq!(s.scenarios()["scenarios"].as_array().unwrap().len(), 1, "`todo` is gone with its routes");
    assert_eq!(items(&s.get("/todo").1), 1);
}

#[test]
fn scenario_keys_are_checked_with_line_and_column() {
    let text = common::load_error("[[route]]\npath = \"/a\"\nstate = \"added\"\n");
    assert!(text.contains("`state` without a `scenario`") && text.contains("routes.toml:3:9"), "{text}");
    let text = common::load_error("[[route]]\npath = \"/a\"\nnext_state = \"done\"\n");
    assert!(text.contains("`next_state` without a `scenario`") && text.contains("routes.toml:3:14"), "{text}");
    let text = common::load_error("[[route]]\npath = \"/a\"\nscenario = \"todo\"\n");
    assert!(
        text.contains("`scenario = \"todo\"` without `state` or `next_state` does nothing")
            && text.contains("routes.toml:3:12"),
        "{text}"
    );
    let text = common::load_error("[[route]]\npath = \"/a\"\nscenario = \"\"\nstate = \"x\"\n");
    assert!(
        text.contains("`scenario` must be a name of 1 to 100 characters") && text.contains("routes.toml:3:12"),
        "{text}"
    );
    let text = common::load_error("[[route]]\npath = \"/a\"\nscenario = \"t\"\nstate = 1\n");
    assert!(text.contains("routes.toml:4:9"), "{text}");
    // Two routes of one path that require different states are not a clash; the same state twice is.
    let same = "[[route]]\npath = \"/a\"\nscenario = \"t\"\nstate = \"x\"\n\n[[route]]\npath = \"/a\"\nscenario = \"t\"\nstate = \"x\"\n";
    assert!(common::load_error(same).contains("can never answer"));
    let after_fallback = "[[route]]\npath = \"/a\"\n\n[[route]]\npath = \"/a\"\nscenario = \"t\"\nstate = \"x\"\n";
    let text = common::load_error(after_fallback);
    assert!(text.contains("has no `match` conditions or scenario `state`"), "{text}");
}

const FILE: &str = r#"
[[route]]
path = "/hello"
body = "from the file"

[[route]]
path = "/users/{id}"
body = "user"
"#;

fn routes(s: &Running) -> Vec<serde_json::Value> {
    let (status, body) = s.get("/__admin/routes");
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["routes"].as_array().unwrap().clone()
}

fn add(s: &Running, toml: &str) -> (u16, String) {
    s.admin(reqwest::Method::POST, "/__admin/routes", toml)
}

#[test]
fn runtime_routes_are_added_over_http_tried_first_listed_and_removed() {
    let s = Running::start(FILE);
    let (status, body) =
        add(&s, "[[route]]\npath = \"/hello\"\nbody = \"overridden\"\n\n[[route]]\npath = \"/new\"\nbody = \"new\"\n");
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["ids"], serde_json::json!([1, 2]));
    assert_eq!(s.get("/hello"), (200, "overridden".to_owned()), "a runtime route is tried before the file's");
    assert_eq!(s.get("/new"), (200, "new".to_owned()));

    let listed = routes(&s);
    let brief: Vec<_> = listed.iter().map(|r| (r["path"].clone(), r["origin"].clone(), r["id"].clone())).collect();
    let j = serde_json::Value::from;
    assert_eq!(
        brief,
        [
            (j("/hello"), j("runtime"), serde_json::json!(1)),
            (j("/new"), j("runtime"), serde_json::json!(2)),
            (j("/hello"), j("file"), serde_json::Value::Null),
            (j("/users/{id}"), j("file"), serde_json::Value::Null),
        ]
    );
    assert_eq!(listed[1]["location"], "runtime:5");

    // A later POST wins over an earlier one.
    assert_eq!(add(&s, "[[route]]\npath = \"/hello\"\nbody = \"newest\"\n").0, 200);
    assert_eq!(s.get("/hello").1, "newest");
    assert_eq!(s.admin(reqwest::Method::DELETE, "/__admin/routes/3", "").0, 200);
    assert_eq!(s.get("/hello").1, "overridden");
    assert_eq!(s.admin(reqwest::Method::DELETE, "/__admin/routes/1", "").0, 200);
    assert_eq!(s.get("/hello").1, "from the file", "the file's route answers again");
    let (status, body) = s.admin(reqwest::Method::DELETE, "/__admin/routes/1", "");
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("no runtime route has id 1"), "{body}");
    let (status, body) = s.admin(reqwest::Method::DELETE, "/__admin/routes", "");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("?origin=runtime"), "{body}");
    assert_eq!(s.get("/new").0, 200, "a refused DELETE removes nothing");
    let (status, body) = s.admin(reqwest::Method::DELETE, "/__admin/routes?origin=runtime", "");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""removed":1"#), "{body}");
    assert_eq!(s.get("/new").0, 404);
    assert_eq!(routes(&s).len(), 2);
}

#[test]
fn runtime_routes_survive_reloads_of_the_file() {
    let s = Running::start(FILE);
    assert_eq!(add(&s, "[[route]]\npath = \"/hello\"\nbody = \"runtime\"\n").0, 200);
    let edited = FILE.replace("from the file", "edited") + "\n[[route]]\npath = \"/added\"\nbody = \"added\"\n";
    std::fs::write(s.dir.path().join("routes.toml"), edited).unwrap();
    let (status, body) = s.admin(reqwest::Method::POST, "/__admin/reload", "");
    assert_eq!(status, 200, "{body}");
    assert_eq!(s.get("/added").1, "added", "the file was reloaded");
    assert_eq!(s.get("/hello").1, "runtime", "the runtime route is still in front");
    assert_eq!(s.admin(reqwest::Method::DELETE, "/__admin/routes?origin=runtime", "").0, 200);
    assert_eq!(s.get("/hello").1, "edited", "under it, the reloaded file's route");
    // A file that now conflicts with a runtime route fails to reload, and the routes in service stay.
    assert_eq!(add(&s, "[[route]]\npath = \"/items/{name}\"\nbody = \"r\"\n").0, 200);
    std::fs::write(s.dir.path().join("routes.toml"), format!("{FILE}\n[[route]]\npath = \"/items/{{id}}\"\n")).unwrap();
    let (status, body) = s.admin(reqwest::Method::POST, "/__admin/reload", "");
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("conflicts with `/items/{name}`"), "{body}");
    assert_eq!(s.get("/items/1").1, "r");
}

#[test]
fn bad_runtime_routes_get_422_with_line_and_column_and_change_nothing() {
    let s = Running::start(FILE);
    let (status, body) = add(&s, "[[route]]\npath = \"/a\"\nstauts = 200\n");
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("unknown field `stauts`") && body.contains("runtime:3:1"), "{body}");
    let (status, body) = add(&s, "[[route]]\npath = \"/a\"\nstate = \"x\"\n");
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("`state` without a `scenario`") && body.contains("runtime:3:9"), "{body}");
    let (status, body) = add(&s, "[server]\nseed = 1\n");
    assert_eq!(status, 422, "{body}");
    assert!(
        body.contains("runtime routes take only `[[route]]` and `[[resource]]` tables, and this text has `server`"),
        "{body}"
    );
    let (status, body) = add(&s, "");
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("no `[[route]]` or `[[resource]]` table"), "{body}");
    let (status, body) = add(&s, "[[route]]\npath = \"/a\"\n\n[[route]]\npath = \"/a\"\n");
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("defined twice") && body.contains("runtime:5:"), "{body}");
    // Clashing with the file's routes in the tree: refused, not half-added.
    let (status, body) = add(&s, "[[route]]\npath = \"/users/{uid}\"\n\n[[route]]\npath = \"/b\"\n");
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("conflicts with"), "{body}");
    assert_eq!(routes(&s).len(), 2, "nothing was added");
    assert_eq!(s.get("/b").0, 404);
    // A POST that a page on another site could send (no X-Hotroute, not JSON) is refused.
    let res = s.client.post(s.url("/__admin/routes")).body("[[route]]\npath = \"/x\"\n").send().unwrap();
    assert_eq!(res.status(), 403);
    // The reload's refusal of a body points here.
    let (status, body) = s.admin(reqwest::Method::POST, "/__admin/reload", "[[route]]");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("POST their TOML to /__admin/routes"), "{body}");
}

#[test]
fn reset_with_routes_true_also_removes_the_runtime_routes() {
    let s = Running::start(FILE);
    assert_eq!(add(&s, "[[route]]\npath = \"/hello\"\nbody = \"runtime\"\n").0, 200);
    assert_eq!(s.admin(reqwest::Method::POST, "/__admin/reset", "").0, 200);
    assert_eq!(s.get("/hello").1, "runtime", "a plain reset keeps the routes");
    let (status, body) = s.admin(reqwest::Method::POST, "/__admin/reset?routes=true", "");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""routes_removed":1"#), "{body}");
    assert_eq!(s.get("/hello").1, "from the file");
}

#[test]
fn mock_server_reset_puts_scenarios_back_too() {
    let server = hotroute::MockServer::start_blocking(TODO).unwrap();
    let client = Client::builder().no_proxy().build().unwrap();
    let url = |p: &str| server.url(p);
    assert_eq!(client.post(url("/todo")).send().unwrap().status(), 201);
    assert_eq!(items(&client.get(url("/todo")).send().unwrap().text().unwrap()), 2);
    server.reset();
    assert_eq!(items(&client.get(url("/todo")).send().unwrap().text().unwrap()), 1);
}
