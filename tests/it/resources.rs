//! `[[resource]]` against the real binary: a json-server style REST collection. CRUD flows with filters, sort and
//! pages (`X-Total-Count`, `Link`), every error code, persistence across a restart, a hand edit of the data file,
//! no reload loop on the server's own writes, the admin API (routes, coverage, journal, reset), runtime resources,
//! and bad data as load errors with line and column.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::blocking::{Client, Response};
use serde_json::{Value, json};

use crate::support::bin::Bin;

const USERS: &str = r#"[
  {"id": 1, "name": "Ada", "role": "admin", "age": 36},
  {"id": 2, "name": "Grace", "role": "user", "age": 45},
  {"id": 3, "name": "Linus", "role": "user", "age": 28},
  {"id": 4, "name": "Barbara", "role": "admin", "age": 52}
]
"#;

const ROUTES: &str = r#"
[[resource]]
path = "/users"
data = "users.json"

[[resource]]
path = "/tags"
id = "slug"
data = [{ slug = "rust", label = "Rust" }]
"#;

fn client() -> Client {
    Client::builder().no_proxy().timeout(Duration::from_secs(10)).build().unwrap()
}

/// The binary serving `routes` with `files` in a fresh folder; `watch` keeps the file watcher on.
fn start(routes: &str, files: &[(&str, &str)], watch: bool) -> Bin {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("routes.toml"), routes).unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    restart(dir, watch)
}

fn restart(dir: tempfile::TempDir, watch: bool) -> Bin {
    let mut args = vec!["routes.toml", "--port", "0", "--log-level", "warn"];
    if !watch {
        args.push("--no-watch");
    }
    Bin::command().in_dir(dir).args(args).start()
}

fn json_of(r: Response) -> Value {
    r.json().unwrap()
}

fn post(c: &Client, url: String, body: Value) -> Response {
    c.post(url).header("content-type", "application/json").body(body.to_string()).send().unwrap()
}

fn admin(c: &Client, method: reqwest::Method, url: String) -> Response {
    c.request(method, url).header("x-hotroute", "1").send().unwrap()
}

fn names(v: &Value) -> Vec<&str> {
    v.as_array().unwrap().iter().map(|u| u["name"].as_str().unwrap()).collect()
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "{what} within 10 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn crud_flow_with_filters_sort_and_pages() {
    let bin = start(ROUTES, &[("users.json", USERS)], false);
    let c = client();

    let all = c.get(bin.url("/users")).send().unwrap();
    assert_eq!(all.status(), 200);
    assert_eq!(all.headers()["content-type"], "application/json");
    assert_eq!(all.headers()["x-total-count"], "4");
    assert_eq!(names(&json_of(all)), ["Ada", "Grace", "Linus", "Barbara"]);

    // Filters by field (a number compares by its JSON text), a repeated field is "any of".
    assert_eq!(names(&json_of(c.get(bin.url("/users?role=admin")).send().unwrap())), ["Ada", "Barbara"]);
    assert_eq!(names(&json_of(c.get(bin.url("/users?age=45")).send().unwrap())), ["Grace"]);
    assert_eq!(names(&json_of(c.get(bin.url("/users?name=Ada&name=Linus")).send().unwrap())), ["Ada", "Linus"]);
    // Sort, ascending and descending, with `_order` or a `-` prefix.
    assert_eq!(
        names(&json_of(c.get(bin.url("/users?_sort=age")).send().unwrap())),
        ["Linus", "Ada", "Grace", "Barbara"]
    );
    assert_eq!(
        names(&json_of(c.get(bin.url("/users?_sort=name&_order=desc")).send().unwrap())),
        ["Linus", "Grace", "Barbara", "Ada"]
    );
    assert_eq!(names(&json_of(c.get(bin.url("/users?role=user&_sort=-age")).send().unwrap())), ["Grace", "Linus"]);

    // Pages: X-Total-Count is the filtered total, Link names first, prev, next and last with the other parameters.
    let page = c.get(bin.url("/users?_sort=age&_page=2&_per_page=1")).send().unwrap();
    assert_eq!(page.headers()["x-total-count"], "4");
    let link = page.headers()["link"].to_str().unwrap().to_owned();
    assert_eq!(
        link,
        "</users?_sort=age&_per_page=1&_page=1>; rel=\"first\", </users?_sort=age&_per_page=1&_page=1>; rel=\"prev\", \
         </users?_sort=age&_per_page=1&_page=3>; rel=\"next\", </users?_sort=age&_per_page=1&_page=4>; rel=\"last\""
    );
    assert_eq!(names(&json_of(page)), ["Ada"]);
    let past = c.get(bin.url("/users?_page=9")).send().unwrap();
    assert_eq!(past.headers()["x-total-count"], "4");
    assert_eq!(json_of(past), json!([]));

    // One item; HEAD has the headers and no body.
    assert_eq!(json_of(c.get(bin.url("/users/2")).send().unwrap())["name"], "Grace");
    let head = c.head(bin.url("/users/2")).send().unwrap();
    assert_eq!(head.status(), 200);
    assert!(head.text().unwrap().is_empty());

    // POST: the next integer id, 201 with Location, the id first.
    let created = post(&c, bin.url("/users"), json!({ "name": "Alan", "role": "user" }));
    assert_eq!(created.status(), 201);
    assert_eq!(created.headers()["location"], "/users/5");
    assert_eq!(created.text().unwrap(), r#"{"id":5,"name":"Alan","role":"user"}"#);
    assert_eq!(json_of(c.get(bin.url("/users/5")).send().unwrap())["name"], "Alan");
    // POST with an id of its own.
    assert_eq!(post(&c, bin.url("/users"), json!({ "id": 10, "name": "Ken" })).status(), 201);
    assert_eq!(post(&c, bin.url("/users"), json!({ "name": "Dennis" })).headers()["location"], "/users/11");

    // PUT replaces the whole item (the id stays), PATCH merges (RFC 7396: null removes a field).
    let put = c
        .put(bin.url("/users/5"))
        .header("content-type", "application/json")
        .body(r#"{"name": "Alan Turing"}"#)
        .send()
        .unwrap();
    assert_eq!(put.status(), 200);
    assert_eq!(json_of(put), json!({ "id": 5, "name": "Alan Turing" }));
    let patch = c
        .patch(bin.url("/users/1"))
        .header("content-type", "application/merge-patch+json")
        .body(r#"{"role": null, "team": {"name": "engines"}}"#)
        .send()
        .unwrap();
    assert_eq!(patch.status(), 200);
    assert_eq!(json_of(patch), json!({ "id": 1, "name": "Ada", "age": 36, "team": { "name": "engines" } }));

    // DELETE: 204, then 404.
    let deleted = c.delete(bin.url("/users/2")).send().unwrap();
    assert_eq!(deleted.status(), 204);
    assert!(deleted.text().unwrap().is_empty());
    assert_eq!(c.get(bin.url("/users/2")).send().unwrap().status(), 404);
    assert_eq!(c.get(bin.url("/users")).send().unwrap().headers()["x-total-count"], "6");

    // String ids: a POST without one gets a UUID.
    assert_eq!(json_of(c.get(bin.url("/tags/rust")).send().unwrap()), json!({ "slug": "rust", "label": "Rust" }));
    let tag = json_of(post(&c, bin.url("/tags"), json!({ "label": "Go" })));
    let slug = tag["slug"].as_str().unwrap();
    assert_eq!((slug.len(), &slug[14..15]), (36, "4"), "a v4 UUID: {slug}");
    assert_eq!(json_of(c.get(bin.url(&format!("/tags/{slug}"))).send().unwrap())["label"], "Go");
}

#[test]
fn every_error_code_is_json_that_says_what_to_do() {
    let routes = format!("{ROUTES}\n[[resource]]\npath = \"/small\"\nmax_items = 1\n");
    let bin = start(&routes, &[("users.json", USERS)], false);
    let c = client();
    let check = |r: Response, status: u16, says: &str| {
        assert_eq!(r.status(), status);
        assert_eq!(r.headers()["content-type"], "application/json");
        let body = json_of(r);
        let error = body["error"].as_str().unwrap();
        assert!(error.contains(says), "{status}: {error}");
        assert!(!body["help"].as_str().unwrap().is_empty(), "{body}");
    };
    check(c.get(bin.url("/users/99")).send().unwrap(), 404, "no item with id `99` in /users");
    check(c.delete(bin.url("/users/99")).send().unwrap(), 404, "no item with id `99`");
    check(
        c.put(bin.url("/users/99")).header("content-type", "application/json").body("{}").send().unwrap(),
        404,
        "`99`",
    );
    check(post(&c, bin.url("/users"), json!([1, 2])), 400, "the body is an array, not a JSON object");
    check(
        c.post(bin.url("/users")).header("content-type", "application/json").body("{oops").send().unwrap(),
        400,
        "not valid JSON",
    );
    check(post(&c, bin.url("/users"), json!({ "id": 1, "name": "again" })), 409, "id `1` already exists");
    check(post(&c, bin.url("/users"), json!({ "id": [1] })), 400, "must be a string or a number");
    check(
        c.post(bin.url("/users")).header("content-type", "text/plain").body(r#"{"name":"x"}"#).send().unwrap(),
        415,
        "content type `text/plain`, not JSON",
    );
    check(c.post(bin.url("/users")).body(r#"{"name":"x"}"#).send().unwrap(), 415, "no content type");
    check(
        c.patch(bin.url("/users/1")).header("content-type", "application/json").body(r#"{"id": 7}"#).send().unwrap(),
        400,
        "an id cannot change",
    );
    check(c.get(bin.url("/users?_page=0")).send().unwrap(), 400, "`_page` is `0`");
    check(c.get(bin.url("/users?_order=up&_sort=name")).send().unwrap(), 400, "`_order` value `up`");
    check(c.get(bin.url("/users?_bogus=1")).send().unwrap(), 400, "unknown query parameter `_bogus`");
    // The cap on items.
    assert_eq!(post(&c, bin.url("/small"), json!({ "a": 1 })).status(), 201);
    check(post(&c, bin.url("/small"), json!({ "a": 2 })), 507, "holds 1 items, its max_items");
    // A method the path does not take is the router's 405 with Allow.
    let r = c.delete(bin.url("/users")).send().unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "GET, HEAD, POST");
    // The body limit applies as to every route.
    let big = format!(r#"{{"name":"{}"}}"#, "x".repeat(2 << 20));
    assert_eq!(
        c.post(bin.url("/users")).header("content-type", "application/json").body(big).send().unwrap().status(),
        413
    );
}

#[test]
fn resources_show_in_routes_coverage_and_journal_and_reset_restores_start_data() {
    let bin = start(ROUTES, &[("users.json", USERS)], false);
    let c = client();
    let routes = json_of(c.get(bin.url("/__admin/routes")).send().unwrap());
    let listed: Vec<(String, String)> = routes["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["path"].as_str().unwrap().to_owned(), r["location"].as_str().unwrap().to_owned()))
        .collect();
    assert!(listed.contains(&("/users".into(), "routes.toml:2".into())), "{listed:?}");
    assert!(listed.contains(&("/users/{id}".into(), "routes.toml:2".into())), "{listed:?}");
    assert!(listed.contains(&("/tags/{id}".into(), "routes.toml:6".into())), "{listed:?}");

    assert_eq!(post(&c, bin.url("/users"), json!({ "name": "Alan" })).status(), 201);
    assert_eq!(c.get(bin.url("/users/5")).send().unwrap().status(), 200);

    let journal = json_of(c.get(bin.url("/__admin/requests")).send().unwrap());
    let recorded: Vec<(&str, &str, &str)> = journal["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["matched"] == true)
        .map(|r| (r["method"].as_str().unwrap(), r["path"].as_str().unwrap(), r["route"]["path"].as_str().unwrap()))
        .collect();
    assert!(recorded.contains(&("POST", "/users", "/users")), "{recorded:?}");
    assert!(recorded.contains(&("GET", "/users/5", "/users/{id}")), "{recorded:?}");

    let coverage = json_of(c.get(bin.url("/__admin/coverage")).send().unwrap());
    let hits = |path: &str| {
        coverage["routes"].as_array().unwrap().iter().find(|r| r["path"] == path).unwrap()["hits"].as_u64().unwrap()
    };
    assert_eq!((hits("/users"), hits("/users/{id}"), hits("/tags")), (1, 1, 0), "{coverage}");

    let metrics = c.get(bin.url("/__admin/metrics")).send().unwrap().text().unwrap();
    assert!(metrics.lines().any(|l| l.contains("/users/{id}") && !l.starts_with('#')), "{metrics}");

    let reset = admin(&c, reqwest::Method::POST, bin.url("/__admin/reset"));
    assert_eq!(reset.status(), 200);
    assert_eq!(c.get(bin.url("/users/5")).send().unwrap().status(), 404);
    assert_eq!(c.get(bin.url("/users")).send().unwrap().headers()["x-total-count"], "4");
}

/// The generation of the routes in service.
fn generation(c: &Client, bin: &Bin) -> u64 {
    json_of(c.get(bin.url("/__admin/routes")).send().unwrap())["generation"].as_u64().unwrap()
}

#[test]
fn persist_writes_back_survives_a_restart_and_does_not_reload_in_a_loop() {
    let routes = "[[resource]]\npath = \"/users\"\ndata = \"users.json\"\npersist = true\n";
    let bin = start(routes, &[("users.json", USERS)], true);
    let c = client();
    let file = bin.dir.path().join("users.json");
    let before = generation(&c, &bin);
    for i in 0..20 {
        assert_eq!(post(&c, bin.url("/users"), json!({ "name": format!("n{i}") })).status(), 201);
    }
    assert_eq!(c.delete(bin.url("/users/1")).send().unwrap().status(), 204);
    let written = |path: &Path| -> Option<Value> { serde_json::from_slice(&std::fs::read(path).ok()?).ok() };
    // Writes are coalesced: an earlier snapshot may land first, the last one holds every change.
    wait_until("the data file holds the 23 items, without the deleted one", || {
        written(&file).is_some_and(|v| v.as_array().unwrap().len() == 23 && v[0]["name"] == "Grace")
    });
    let on_disk = written(&file).unwrap();
    assert_eq!(on_disk[0]["name"], "Grace");
    assert_eq!(on_disk[22], json!({ "id": 24, "name": "n19" }));
    // No temp file is left beside it.
    let names: Vec<String> =
        std::fs::read_dir(bin.dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(names.len(), 2, "{names:?}");

    // The watcher saw the writes and knew them for the server's own: no reload at all.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(generation(&c, &bin), before, "the server reloaded on its own writes");
    assert_eq!(c.get(bin.url("/users")).send().unwrap().headers()["x-total-count"], "23");

    // A restart serves what was written.
    let mut bin = bin;
    let dir = std::mem::replace(&mut bin.dir, tempfile::tempdir().unwrap());
    drop(bin);
    let bin = restart(dir, false);
    assert_eq!(c.get(bin.url("/users")).send().unwrap().headers()["x-total-count"], "23");
    assert_eq!(json_of(c.get(bin.url("/users/24")).send().unwrap())["name"], "n19");
    assert_eq!(c.get(bin.url("/users/1")).send().unwrap().status(), 404);
}

#[test]
fn a_hand_edit_of_the_data_file_reloads_it() {
    let bin = start(ROUTES, &[("users.json", USERS)], true);
    let c = client();
    assert_eq!(post(&c, bin.url("/users"), json!({ "name": "Alan" })).status(), 201);
    std::fs::write(bin.dir.path().join("users.json"), r#"[{"id": 7, "name": "Edsger"}]"#).unwrap();
    wait_until("the edited data is served", || {
        c.get(bin.url("/users")).send().unwrap().headers()["x-total-count"] == "1"
    });
    assert_eq!(json_of(c.get(bin.url("/users/7")).send().unwrap())["name"], "Edsger");
    // The other resource (inline data, unchanged) kept its state across that reload.
    assert_eq!(json_of(c.get(bin.url("/tags/rust")).send().unwrap())["label"], "Rust");

    // A broken edit keeps the last good data and reports the file, line and column.
    std::fs::write(bin.dir.path().join("users.json"), "[\n  {\"id\": 8,}\n]").unwrap();
    wait_until("the bad edit is reported", || {
        let health = json_of(c.get(bin.url("/__admin/health")).send().unwrap());
        health.to_string().contains("users.json:2:")
    });
    assert_eq!(json_of(c.get(bin.url("/users/7")).send().unwrap())["name"], "Edsger");
}

/// Data files written beside the route file: name and text.
type Files<'a> = &'a [(&'a str, &'a str)];

fn check_output(routes: &str, files: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("routes.toml"), routes).unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let out = Command::new(env!("CARGO_BIN_EXE_hotroute"))
        .args(["check", "routes.toml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success(), "check passed for {routes}");
    String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout)
}

#[test]
fn bad_resources_are_load_errors_with_line_and_column() {
    let res = "[[resource]]\npath = \"/users\"\ndata = \"users.json\"\n";
    let out = check_output(res, &[("users.json", "[\n  {\"id\": 1},\n  {\"id\": 2,}\n]\n")]);
    assert!(out.contains("users.json:3:12"), "{out}");
    assert!(out.contains("is not valid JSON"), "{out}");

    let cases: &[(&str, Files, &str)] = &[
        (res, &[("users.json", "{\"id\": 1}")], "routes.toml:3:8"),
        (res, &[("users.json", "[{\"id\": 1}, {\"id\": 1}]")], "has id `1`, which an earlier item has too"),
        (res, &[("users.json", "[1]")], "item 0 of data file `users.json` is not an object"),
        (res, &[], "cannot read data file `users.json`"),
        ("[[resource]]\npath = \"users\"\n", &[], "routes.toml:2:8"),
        ("[[resource]]\npath = \"/u/{id}\"\n", &[], "has a parameter or a wildcard"),
        ("[[resource]]\npath = \"/__admin/u\"\n", &[], "reserves for its admin API"),
        ("[[resource]]\npath = \"/u\"\npersist = true\ndata = [{ id = 1 }]\n", &[], "needs a data file to write to"),
        ("[[resource]]\npath = \"/u\"\ndata = 3\n", &[], "resource `data` is a integer"),
        ("[[resource]]\npath = \"/u\"\nmax_items = 0\n", &[], "max_items 0 is out of range"),
        (
            "[[resource]]\npath = \"/u\"\ndata = [{ id = 1 }, { id = 2 }]\nmax_items = 1\n",
            &[],
            "over its max_items of 1",
        ),
        ("[[resource]]\npath = \"/u\"\nbogus = 1\n", &[], "routes.toml:3:1"),
        ("[[route]]\npath = \"/u\"\nbody = \"x\"\n\n[[resource]]\npath = \"/u\"\n", &[], "and so does the route at"),
    ];
    for (routes, files, says) in cases {
        let out = check_output(routes, files);
        assert!(out.contains(says), "{routes}: wanted {says:?} in\n{out}");
    }
}

#[test]
fn resources_can_be_added_and_removed_at_runtime() {
    let bin = start("[[route]]\npath = \"/hello\"\nbody = \"hi\"\n", &[], false);
    let c = client();
    let add =
        |text: &str| c.post(bin.url("/__admin/routes")).header("x-hotroute", "1").body(text.to_owned()).send().unwrap();
    let added = add("[[resource]]\npath = \"/orders\"\ndata = [{ id = 1, total = 10 }]\n");
    assert_eq!(added.status(), 200);
    let id = json_of(added)["ids"][0].as_u64().unwrap();
    assert_eq!(post(&c, bin.url("/orders"), json!({ "total": 20 })).headers()["location"], "/orders/2");
    assert_eq!(c.get(bin.url("/orders")).send().unwrap().headers()["x-total-count"], "2");
    let routes = json_of(c.get(bin.url("/__admin/routes")).send().unwrap());
    let orders: Vec<&Value> =
        routes["routes"].as_array().unwrap().iter().filter(|r| r["origin"] == "runtime").collect();
    assert_eq!(orders.len(), 2, "{routes}");
    assert!(orders.iter().all(|r| r["id"] == id), "{routes}");

    // Another runtime change keeps the data; a reset restores the start data.
    assert_eq!(add("[[route]]\npath = \"/other\"\nbody = \"x\"\n").status(), 200);
    assert_eq!(c.get(bin.url("/orders")).send().unwrap().headers()["x-total-count"], "2");
    assert_eq!(admin(&c, reqwest::Method::POST, bin.url("/__admin/reset")).status(), 200);
    assert_eq!(c.get(bin.url("/orders")).send().unwrap().headers()["x-total-count"], "1");

    // Errors point into the text sent; a removed resource answers 404.
    let refused = add("[[resource]]\npath = \"/bad\"\ndata = 3\n");
    assert_eq!(refused.status(), 422);
    let text = refused.text().unwrap();
    assert!(text.contains("runtime:3:8") && text.contains("resource `data` is a integer"), "{text}");
    assert_eq!(admin(&c, reqwest::Method::DELETE, bin.url(&format!("/__admin/routes/{id}"))).status(), 200);
    assert_eq!(c.get(bin.url("/orders")).send().unwrap().status(), 404);
}

/// The write and read paths made lean for issue 15's benchmark keep their answers: content types compared without
/// case (and `+json` types), the stored `content-length` (also on `HEAD` and after a `PATCH`), a sent id moved to
/// the front, and a `Location` whose string id is escaped as one path segment.
#[test]
fn lean_paths_keep_headers_ids_and_locations() {
    let bin = start(ROUTES, &[("users.json", USERS)], false);
    let c = client();
    let send = |method: reqwest::Method, path: &str, ct: &str, body: &str| {
        c.request(method, bin.url(path)).header("content-type", ct).body(body.to_owned()).send().unwrap()
    };

    let created = send(reqwest::Method::POST, "/users", "Application/JSON; charset=utf-8", r#"{"name":"Alan","id":7}"#);
    assert_eq!(created.status(), 201);
    assert_eq!(created.headers()["location"], "/users/7");
    assert_eq!(created.headers()["content-type"], "application/json");
    let text = created.text().unwrap();
    assert_eq!(text, r#"{"id":7,"name":"Alan"}"#, "the sent id first, not repeated");
    let get = c.get(bin.url("/users/7")).send().unwrap();
    assert_eq!(get.headers()["content-length"], text.len().to_string().as_str());
    let head = c.head(bin.url("/users/7")).send().unwrap();
    assert_eq!(head.headers()["content-length"], text.len().to_string().as_str());

    let vnd = send(reqwest::Method::POST, "/users", "application/vnd.api+JSON", r#"{"name":"Ken"}"#);
    assert_eq!((vnd.status().as_u16(), vnd.headers()["location"].to_str().unwrap()), (201, "/users/8"));
    assert_eq!(send(reqwest::Method::POST, "/users", "application/jsonx", "{}").status(), 415);
    assert_eq!(send(reqwest::Method::POST, "/users", "text/json+", "{}").status(), 415);

    let patched = send(reqwest::Method::PATCH, "/users/7", "application/merge-patch+json", r#"{"team":"engines"}"#);
    let len = patched.headers()["content-length"].to_str().unwrap().to_owned();
    assert_eq!(len, patched.text().unwrap().len().to_string());

    // A string id with a space, a slash and a non-ASCII letter: one escaped segment that leads back to the item.
    let tag = send(reqwest::Method::POST, "/tags", "application/json", r#"{"slug":"a b/ü","label":"odd"}"#);
    assert_eq!(tag.status(), 201);
    assert_eq!(tag.headers()["location"], "/tags/a%20b%2F%C3%BC");
    let back = c.get(bin.url("/tags/a%20b%2F%C3%BC")).send().unwrap();
    assert_eq!(json_of(back)["label"], "odd");
}

/// Items are kept by id and by insertion sequence (a `DELETE` is O(log n), not a shift of every later item): a
/// delete, a replace and a patch keep the others' list order, a new item goes last, and ids still compare as text
/// (`7` and `"7"` are one id, `007` another).
#[test]
fn deletes_and_replaces_keep_the_list_order_and_ids_compare_as_text() {
    let bin = start(ROUTES, &[("users.json", USERS)], false);
    let c = client();
    let list = || json_of(c.get(bin.url("/users")).send().unwrap());
    let owned = |v: &Value| names(v).into_iter().map(str::to_owned).collect::<Vec<_>>();

    assert_eq!(c.delete(bin.url("/users/2")).send().unwrap().status(), 204);
    assert_eq!(owned(&list()), ["Ada", "Linus", "Barbara"]);
    assert_eq!(c.put(bin.url("/users/3")).json(&json!({"name": "Linus T"})).send().unwrap().status(), 200);
    let patch = c.patch(bin.url("/users/1")).json(&json!({"name": "Ada L"})).send().unwrap();
    assert_eq!(patch.status(), 200);
    assert_eq!(owned(&list()), ["Ada L", "Linus T", "Barbara"], "a replace keeps the item's place");
    let ken = post(&c, bin.url("/users"), json!({"name": "Ken"}));
    assert_eq!(ken.headers()["location"], "/users/5");
    assert_eq!(c.delete(bin.url("/users/1")).send().unwrap().status(), 204);
    assert_eq!(owned(&list()), ["Linus T", "Barbara", "Ken"]);
    assert_eq!(c.get(bin.url("/users/2")).send().unwrap().status(), 404);
    assert_eq!(c.delete(bin.url("/users/2")).send().unwrap().status(), 404);
    // A deleted id can be taken again, and goes last.
    assert_eq!(post(&c, bin.url("/users"), json!({"id": 2, "name": "Grace"})).status(), 201);
    assert_eq!(owned(&list()), ["Linus T", "Barbara", "Ken", "Grace"]);
    let page = c.get(bin.url("/users?_page=2&_per_page=3")).send().unwrap();
    assert_eq!(page.headers()["x-total-count"], "4");
    assert_eq!(owned(&json_of(page)), ["Grace"]);

    // Ids compare as their text: a number and the string of its digits are one id; leading zeros make another.
    assert_eq!(post(&c, bin.url("/tags"), json!({"slug": 7, "label": "seven"})).status(), 201);
    assert_eq!(post(&c, bin.url("/tags"), json!({"slug": "7"})).status(), 409);
    assert_eq!(json_of(c.get(bin.url("/tags/7")).send().unwrap())["label"], "seven");
    assert_eq!(c.get(bin.url("/tags/007")).send().unwrap().status(), 404);
    assert_eq!(post(&c, bin.url("/tags"), json!({"slug": "007", "label": "bond"})).status(), 201);
    assert_eq!(json_of(c.get(bin.url("/tags/007")).send().unwrap())["label"], "bond");
    assert_eq!(json_of(c.get(bin.url("/tags/7")).send().unwrap())["label"], "seven");
    assert_eq!(c.delete(bin.url("/tags/7")).send().unwrap().status(), 204);
    assert_eq!(json_of(c.get(bin.url("/tags")).send().unwrap()).as_array().unwrap().len(), 2, "rust and 007");
}
