//! The request journal, routes and coverage through the admin API, and `--coverage FILE`, over real sockets.

use std::process::Command;
use std::time::Duration;

use crate::common::{TestServer, client, load_error};
use crate::support::bin::Bin;
use serde_json::{Value, json};

const ROUTES: &str = r#"
[[route]]
path = "/users/{id}"
body = "user"

[[route]]
path = "/items"
method = ["POST", "PUT"]
status = 201

[[route]]
path = "/never"
"#;

async fn admin(s: &TestServer, method: &str, path: &str) -> Value {
    // A script's POST says so with `x-hotroute` (the admin API refuses cross-site POSTs without it).
    let res = client().request(method.parse().unwrap(), s.url(path)).header("x-hotroute", "1").send().await.unwrap();
    assert_eq!(res.status(), 200, "{method} {path}");
    res.json().await.unwrap()
}

async fn journal(s: &TestServer) -> Vec<Value> {
    admin(s, "GET", "/__admin/requests?bodies=true").await["requests"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_recorded_oldest_first_with_their_contents() {
    let s = TestServer::start(ROUTES).await;
    let http = client();
    http.get(s.url("/users/7?tab=a%20b&x=1")).header("x-trace", "t1").header("x-trace", "t2").send().await.unwrap();
    http.post(s.url("/items")).header("content-type", "text/plain").body("first item").send().await.unwrap();
    http.get(s.url("/missing")).send().await.unwrap();
    http.delete(s.url("/items")).send().await.unwrap();
    // HTTP/2 requests carry an absolute URI; the journal still shows the path.
    let h2 = reqwest::Client::builder().no_proxy().http2_prior_knowledge().build().unwrap();
    h2.get(s.url("/users/8")).send().await.unwrap();

    let requests = journal(&s).await;
    let summary: Vec<_> = requests
        .iter()
        .map(|r| (r["id"].as_u64().unwrap(), r["method"].as_str().unwrap(), r["path"].as_str().unwrap()))
        .collect();
    assert_eq!(
        summary,
        [
            (1, "GET", "/users/7"),
            (2, "POST", "/items"),
            (3, "GET", "/missing"),
            (4, "DELETE", "/items"),
            (5, "GET", "/users/8")
        ]
    );

    let get = &requests[0];
    assert_eq!(get["query"], "tab=a%20b&x=1");
    assert_eq!(get["headers"]["x-trace"], "t1, t2");
    assert_eq!(get["headers"]["host"], s.addr.to_string());
    assert_eq!((get["status"].as_u64(), get["matched"].as_bool()), (Some(200), Some(true)));
    assert_eq!(get["route"]["methods"], json!(["GET"]));
    assert_eq!(get["route"]["path"], "/users/{id}");
    assert!(get["route"]["location"].as_str().unwrap().ends_with("routes.toml:2"), "{get}");
    assert_eq!((get["body"].as_str(), get["body_size"].as_u64()), (Some(""), Some(0)));
    let time = get["time"].as_str().unwrap();
    assert!(time.len() == 24 && time.ends_with('Z') && time.as_bytes()[10] == b'T', "{time}");

    let post = &requests[1];
    assert_eq!((post["body"].as_str(), post["body_size"].as_u64()), (Some("first item"), Some(10)));
    assert_eq!(post["body_truncated"], false);
    assert_eq!(post["query"], Value::Null);
    assert_eq!(post["route"]["methods"], json!(["POST", "PUT"]));
    assert_eq!(post["status"], 201);

    // Requests no route answered are flagged, with the status they got.
    for (r, status) in [(&requests[2], 404), (&requests[3], 405)] {
        assert_eq!(
            (r["matched"].as_bool(), r["route"].is_null(), r["status"].as_u64()),
            (Some(false), true, Some(status))
        );
    }
    assert_eq!(requests[4]["query"], Value::Null);
    assert_eq!(requests[4]["status"], 200);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_requests_are_not_recorded_and_delete_clears_the_journal() {
    let s = TestServer::start(ROUTES).await;
    client().get(s.url("/users/1")).send().await.unwrap();
    client().get(s.url("/users/2")).send().await.unwrap();
    for path in ["/__admin/health", "/__admin/routes", "/__admin/coverage", "/__admin/requests"] {
        admin(&s, "GET", path).await;
    }
    assert_eq!(journal(&s).await.len(), 2);

    assert_eq!(admin(&s, "DELETE", "/__admin/requests").await, json!({ "status": "ok", "cleared": 2 }));
    assert_eq!(journal(&s).await, Vec::<Value>::new());
    client().get(s.url("/users/3")).send().await.unwrap();
    let after = journal(&s).await;
    assert_eq!((after.len(), after[0]["id"].as_u64()), (1, Some(3)), "ids keep counting after a clear");
    // Clearing the journal leaves the coverage counts alone.
    assert_eq!(admin(&s, "GET", "/__admin/coverage").await["total_requests"], 3);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journal_is_a_bounded_ring_sized_by_server_journal() {
    let s = TestServer::start(&format!("[server]\njournal = 3\n{ROUTES}")).await;
    for i in 1..=5 {
        client().get(s.url(&format!("/users/{i}"))).send().await.unwrap();
    }
    let all = admin(&s, "GET", "/__admin/requests").await;
    assert_eq!((all["capacity"].as_u64(), all["dropped"].as_u64()), (Some(3), Some(2)));
    let paths: Vec<_> = all["requests"].as_array().unwrap().iter().map(|r| r["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["/users/3", "/users/4", "/users/5"]);
    // Coverage counts every request, not only those the ring still holds.
    let coverage = admin(&s, "GET", "/__admin/coverage").await;
    assert_eq!(coverage["total_requests"], 5);
    assert_eq!(coverage["routes"][0]["hits"], 5);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journal_zero_records_nothing_but_coverage_still_counts() {
    let s = TestServer::start(&format!("[server]\njournal = 0\n{ROUTES}")).await;
    client().get(s.url("/users/1")).send().await.unwrap();
    assert_eq!(journal(&s).await.len(), 0);
    assert_eq!(admin(&s, "GET", "/__admin/coverage").await["routes"][0]["hits"], 1);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_are_cut_at_the_documented_size() {
    let s = TestServer::start(ROUTES).await;
    let big = "x".repeat(hotroute::__internals::BODY_LIMIT + 1000);
    client().put(s.url("/items")).body(big.clone()).send().await.unwrap();
    let r = &journal(&s).await[0];
    assert_eq!(r["body"].as_str().unwrap().len(), 64 * 1024);
    assert_eq!((r["body_size"].as_u64(), r["body_truncated"].as_bool()), (Some(big.len() as u64), Some(true)));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_lists_methods_paths_and_where_they_are_defined() {
    let s = TestServer::start(&format!("{ROUTES}\n[[route]]\npath = \"/any\"\nmethod = \"ANY\"\n")).await;
    let routes = admin(&s, "GET", "/__admin/routes").await;
    assert_eq!(routes["generation"], 1);
    // Admin answers name files relative to the route file's folder.
    let file = "routes.toml";
    assert_eq!(
        routes["routes"],
        json!([
            { "methods": ["GET"], "path": "/users/{id}", "location": format!("{file}:2"), "origin": "file" },
            { "methods": ["POST", "PUT"], "path": "/items", "location": format!("{file}:6"), "origin": "file" },
            { "methods": ["GET"], "path": "/never", "location": format!("{file}:11"), "origin": "file" },
            { "methods": ["ANY"], "path": "/any", "location": format!("{file}:14"), "origin": "file" },
        ])
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coverage_lists_routes_never_hit_and_requests_never_matched_across_reloads() {
    let s = TestServer::start(ROUTES).await;
    for path in ["/users/1", "/users/2", "/nope", "/nope?again=1"] {
        client().get(s.url(path)).send().await.unwrap();
    }
    client().patch(s.url("/items")).send().await.unwrap();
    // Admin answers name files relative to the route file's folder.
    let file = "routes.toml";
    let coverage = admin(&s, "GET", "/__admin/coverage").await;
    assert_eq!(coverage["complete"], false);
    assert_eq!(coverage["total_requests"], 5);
    assert_eq!(
        coverage["routes_never_hit"],
        json!([
            { "methods": ["POST", "PUT"], "path": "/items", "location": format!("{file}:6"), "hits": 0 },
            { "methods": ["GET"], "path": "/never", "location": format!("{file}:11"), "hits": 0 },
        ])
    );
    assert_eq!(
        coverage["unmatched_requests"],
        json!([
            { "method": "GET", "path": "/nope", "count": 2, "status": 404 },
            { "method": "PATCH", "path": "/items", "count": 1, "status": 405 },
        ])
    );

    // A reload keeps the counts of routes whose method and path did not move, even if their line did.
    std::fs::write(s.routes_path(), format!("# moved down\n{ROUTES}\n[[route]]\npath = \"/new\"\n")).unwrap();
    assert_eq!(admin(&s, "POST", "/__admin/reload").await["generation"], 2);
    let coverage = admin(&s, "GET", "/__admin/coverage").await;
    let hits: Vec<_> =
        coverage["routes"].as_array().unwrap().iter().map(|r| (r["path"].clone(), r["hits"].clone())).collect();
    assert_eq!(
        hits,
        [
            (json!("/users/{id}"), json!(2)),
            (json!("/items"), json!(0)),
            (json!("/never"), json!(0)),
            (json!("/new"), json!(0))
        ]
    );
    assert_eq!(coverage["routes"][0]["location"], format!("{file}:3"));

    // Once every route is hit and the counts of unmatched requests are reset, coverage is complete.
    assert_eq!(admin(&s, "DELETE", "/__admin/coverage").await["status"], "ok");
    for (method, path) in [("GET", "/users/1"), ("POST", "/items"), ("GET", "/never"), ("GET", "/new")] {
        client().request(method.parse().unwrap(), s.url(path)).send().await.unwrap();
    }
    let coverage = admin(&s, "GET", "/__admin/coverage").await;
    assert_eq!((coverage["complete"].as_bool(), coverage["total_requests"].as_u64()), (Some(true), Some(4)));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_endpoints_answer_wrong_methods_and_unknown_paths_clearly() {
    let s = TestServer::start(ROUTES).await;
    let res = client().post(s.url("/__admin/requests")).send().await.unwrap();
    assert_eq!((res.status().as_u16(), res.headers()["allow"].to_str().unwrap()), (405, "GET, DELETE"));
    let res = client().get(s.url("/__admin/nothing")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    let text = res.text().await.unwrap();
    assert!(
        text.contains("GET, DELETE /__admin/requests") && text.contains("GET, POST, DELETE /__admin/routes"),
        "{text}"
    );
    s.stop().await;
}

#[test]
fn a_bad_journal_size_points_at_it() {
    let err = load_error("[server]\njournal = -1\n");
    assert!(err.contains("journal size -1 is out of range") && err.contains("routes.toml:2:11"), "{err}");
    assert!(err.contains("from 0 (off) to 1000000"), "{err}");
    assert!(load_error("[server]\njournal = 2000000\n").contains("out of range"));
}

/// `hotroute --port 0 --coverage FILE` writes the report when stopped by SIGTERM.
#[test]
fn the_binary_writes_coverage_at_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let routes = dir.path().join("routes.toml");
    std::fs::write(&routes, ROUTES).unwrap();
    let report = dir.path().join("coverage.json");
    let mut bin = Bin::command()
        .arg(&routes)
        .args(["--port", "0", "--no-watch", "--log-level", "warn", "--coverage"])
        .arg(&report)
        .in_dir(dir)
        .start();
    let base = bin.url("");

    let http = reqwest::blocking::Client::builder().no_proxy().build().unwrap();
    assert_eq!(http.get(format!("{base}/users/1")).send().unwrap().status(), 200);
    assert_eq!(http.get(format!("{base}/stale")).send().unwrap().status(), 404);
    bin.terminate();
    let status = bin.wait_exit_blocking(Duration::from_secs(20));
    assert!(status.success(), "{status}");

    let coverage: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(coverage["complete"], false);
    assert_eq!(coverage["total_requests"], 2);
    let never: Vec<_> = coverage["routes_never_hit"].as_array().unwrap().iter().map(|r| r["path"].clone()).collect();
    assert_eq!(never, [json!("/items"), json!("/never")]);
    assert_eq!(
        coverage["unmatched_requests"],
        json!([{ "method": "GET", "path": "/stale", "count": 1, "status": 404 }])
    );
}

#[test]
fn a_coverage_path_that_cannot_be_written_fails_at_start() {
    let out = Command::new(env!("CARGO_BIN_EXE_hotroute"))
        .args(["routes.toml", "--port", "0", "--coverage", "/nonexistent/folder/coverage.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "it must not claim to listen: {}", String::from_utf8_lossy(&out.stdout));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot write the coverage report to /nonexistent/folder/coverage.json"), "{err}");
    assert!(err.contains("help: create its folder"), "{err}");
}

/// The admin API's list of endpoints (in its 404 and its 405 `Allow` headers) and what it answers are the same: every
/// listed method of every listed path is answered (not 404 or 405), and every other method gets 405 naming the listed
/// ones. An endpoint added to the handler but not to the list, or listed but not handled, fails here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_endpoint_list_and_the_handler_agree() {
    let s = TestServer::start(ROUTES).await;
    let listing = client().get(s.url("/__admin/no-such-endpoint")).send().await.unwrap().text().await.unwrap();
    let list = listing.split("the admin API has: ").nth(1).unwrap_or_else(|| panic!("{listing}")).trim();
    let mut endpoints = 0;
    for entry in list.split("; ") {
        let (methods, path) = entry.rsplit_once(' ').unwrap_or_else(|| panic!("{entry}"));
        let methods: Vec<&str> = methods.split(", ").collect();
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            let res = client()
                .request(method.parse().unwrap(), s.url(path))
                .header("x-hotroute", "1")
                .header("content-type", "application/json")
                .body(if method == "GET" || method == "DELETE" || path.ends_with("/reload") { "" } else { "{}" })
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            if methods.contains(&method) {
                assert!(status != 404 && status != 405, "{method} {path} is listed but answered {status}");
            } else {
                assert_eq!(status, 405, "{method} {path} is not listed but answered {status}");
                assert_eq!(res.headers()["allow"].to_str().unwrap(), methods.join(", "), "{method} {path}");
            }
        }
        endpoints += 1;
    }
    assert!(endpoints >= 7, "{list}");
}
