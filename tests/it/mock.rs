//! The `MockServer` API over real sockets: start, url, requests, verify (and its failure message), reload, reset,
//! coverage, waiting for a generation, runtimes, parallel servers, and drop.

use std::io::{Read, Write};
use std::time::Duration;

use hotroute::{Expect, MockError, MockServer};
use serde_json::json;

const USERS: &str = r#"
[[route]]
path = "/users/{id}"
template = true
json = { id = "{{ path.id }}" }

[[route]]
path = "/users"
method = "POST"
status = 201
"#;

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// A GET over a blocking socket, with a read timeout so that a server that does not answer fails the test.
fn blocking_get(server: &MockServer, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(server.address()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).expect("the mock did not answer within 10 s");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_is_as_short_as_with_wiremock() {
    let server = MockServer::start(USERS).await.unwrap();
    let body = client().get(server.url("/users/7")).send().await.unwrap().text().await.unwrap();
    assert_eq!(body, r#"{"id":"7"}"#);
    assert_eq!(server.requests().len(), 1);
    server.verify(Expect::get("/users/7").once());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journal_holds_method_path_query_headers_body_status_and_route() {
    let server = MockServer::start(USERS).await.unwrap();
    client().get(server.url("/users/7?expand=team&x=a+b")).header("x-trace", "abc").send().await.unwrap();
    client().post(server.url("/users")).json(&json!({ "name": "Ada" })).send().await.unwrap();
    client().get(server.url("/nope")).send().await.unwrap();

    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    let get = &requests[0];
    assert_eq!((get.id(), get.method().as_str(), get.path()), (1, "GET", "/users/7"));
    assert_eq!(get.query(), Some("expand=team&x=a+b"));
    assert_eq!(get.query_param("x").as_deref(), Some("a b"));
    assert_eq!(get.target(), "/users/7?expand=team&x=a+b");
    assert_eq!(get.header("X-Trace"), Some("abc"));
    assert_eq!(get.headers()["host"], server.address().to_string().as_str());
    assert_eq!(get.status(), 200);
    let route = get.route().expect("a route answered");
    assert_eq!((route.path.as_str(), route.location.as_str()), ("/users/{id}", "mock.toml:2"));
    assert!(get.time() <= std::time::SystemTime::now());

    let post = &requests[1];
    assert_eq!((post.id(), post.method().as_str(), post.status().as_u16()), (2, "POST", 201));
    assert_eq!(post.body_json::<serde_json::Value>().unwrap(), json!({ "name": "Ada" }));
    assert_eq!(post.header("content-type"), Some("application/json"));
    assert_eq!(post.route().unwrap().location, "mock.toml:7");

    let nope = &requests[2];
    assert!(!nope.matched() && nope.route().is_none());
    assert_eq!(nope.status(), 404);
    assert_eq!(nope.to_string(), "#3 GET /nope -> 404, no route matched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_verify_lists_every_request_received_and_why_it_did_not_match() {
    let server = MockServer::start(USERS).await.unwrap();
    client().get(server.url("/users/8")).send().await.unwrap();
    client().post(server.url("/users")).header("x-id", "42").body("name=Ada").send().await.unwrap();

    let err = server.check(&Expect::get("/users/7").once()).unwrap_err();
    let host = server.address().to_string();
    let expected = format!(
        "expected GET /users/7 to be received exactly once, but it was never received.
Received 2 requests (oldest first):
  #1 GET /users/8 -> 200, route GET /users/{{id}} (mock.toml:2)
      does not match: path is /users/8, not /users/7
      accept: */*
      host: {host}
  #2 POST /users -> 201, route POST /users (mock.toml:7)
      does not match: method is POST, not GET
      x-id: 42
      accept: */*
      host: {host}
      content-length: 8
      body: name=Ada
"
    );
    assert_eq!(err.to_string(), expected);
    assert_eq!((err.matched, err.expected), (0, hotroute::Times::Exactly(1)));

    // verify panics with the same message, pointing at the caller.
    let verify = std::panic::AssertUnwindSafe(|| server.verify(Expect::get("/users/7").once()));
    let panic = std::panic::catch_unwind(verify).unwrap_err();
    assert_eq!(panic.downcast_ref::<String>().unwrap(), &expected);

    // Too many is a failure too, and the matching requests are marked.
    let err = server.check(&Expect::path("/users/8").never()).unwrap_err().to_string();
    assert!(
        err.starts_with("expected a request to /users/8 never to be received, but it was received once.\n"),
        "{err}"
    );
    assert!(err.contains("#1 GET /users/8 -> 200, route GET /users/{id} (mock.toml:2)\n      matches\n"), "{err}");
}

#[tokio::test]
async fn a_verify_with_nothing_received_says_so() {
    let server = MockServer::start(USERS).await.unwrap();
    let err = server.check(&Expect::post("/users").json(json!({"name": "Ada"}))).unwrap_err().to_string();
    assert_eq!(
        err,
        "expected POST /users with JSON body {\"name\":\"Ada\"} to be received at least once, but it was never received.\nNo requests were received.\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expectations_on_query_headers_body_route_and_counts() {
    let server = MockServer::start(USERS).await.unwrap();
    for id in [1, 2, 3] {
        client().get(server.url(&format!("/users/{id}?v={id}"))).header("x-team", "core").send().await.unwrap();
    }
    let body = r#"{ "b": 2, "a": 1 }"#;
    client().post(server.url("/users")).header("content-type", "application/json").body(body).send().await.unwrap();
    client().delete(server.url("/users")).send().await.unwrap();

    assert_eq!(server.check(&Expect::get("/users/2?v=2").once()), Ok(1));
    assert_eq!(server.check(&Expect::path("/users/2").query_param("v", "2").once()), Ok(1));
    assert_eq!(server.check(&Expect::any().route("/users/{id}").times(3)), Ok(3));
    assert_eq!(server.check(&Expect::any().header("X-Team", "core").between(3, 3)), Ok(3));
    assert_eq!(server.check(&Expect::any().header_present("x-team").at_most(3)), Ok(3));
    assert_eq!(server.check(&Expect::post("/users").json(json!({ "a": 1, "b": 2 })).once()), Ok(1));
    assert_eq!(server.check(&Expect::post("/users").body(r#"{ "b": 2, "a": 1 }"#)), Ok(1));
    assert_eq!(server.check(&Expect::post("/users").body_contains("\"a\": 1")), Ok(1));
    assert_eq!(server.check(&Expect::any().unmatched().once()), Ok(1));
    assert_eq!(server.check(&Expect::method("delete", "/users").unmatched().once()), Ok(1));
    assert_eq!(server.received(&Expect::any()), 5);
    assert_eq!(server.check(&Expect::get("/users/1").at_least(1)), Ok(1));

    let why = |e: Expect| server.check(&e).unwrap_err().to_string();
    assert!(why(Expect::get("/users/1?v=9").once()).contains("does not match: query is \"v=1\", not \"v=9\""));
    assert!(why(Expect::get("/users/1").query_param("w", "1").once()).contains("query parameter w is missing"));
    assert!(why(Expect::get("/users/1").header("x-team", "edge")).contains("header x-team is \"core\", not \"edge\""));
    assert!(why(Expect::post("/users").json(json!({ "a": 2 }))).contains("does not match: JSON body differs"));
    assert!(
        why(Expect::get("/users/1").route("/teams/{id}")).contains("answered by route /users/{id}, not /teams/{id}")
    );
    assert!(why(Expect::get("/users/1").unmatched()).contains("does not match: answered by route /users/{id}"));
    assert!(why(Expect::any().at_least(6)).contains("to be received at least 6 times, but it was received 5 times."));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_str_swaps_the_routes_and_returns_errors_without_stopping() {
    let server = MockServer::start(USERS).await.unwrap();
    assert_eq!(server.generation(), 1);
    let generation = server.reload_str("[[route]]\npath = \"/v2\"\nbody = \"two\"\n").unwrap();
    assert_eq!((generation, server.generation()), (2, 2));
    assert_eq!(client().get(server.url("/v2")).send().await.unwrap().text().await.unwrap(), "two");
    assert_eq!(client().get(server.url("/users/1")).send().await.unwrap().status(), 404);

    let err = server.reload_str("[[route]]\npath = \"/v3\"\nstauts = 200\n").unwrap_err().to_string();
    assert!(err.contains("unknown field `stauts`") && err.contains("mock.toml:3:1"), "{err}");
    assert_eq!(server.generation(), 2);
    assert_eq!(client().get(server.url("/v2")).send().await.unwrap().text().await.unwrap(), "two");
}

#[tokio::test]
async fn a_bad_route_string_is_an_error_pointing_at_the_line() {
    let err = MockServer::start("[[route]]\npath = \"nope\"\n").await.unwrap_err();
    assert!(matches!(err, MockError::Load(_)));
    let text = err.to_string();
    assert!(text.contains("mock.toml:2:8") && text.contains("does not start with `/`"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_clears_the_journal_and_the_coverage() {
    let server = MockServer::start(USERS).await.unwrap();
    client().get(server.url("/users/1")).send().await.unwrap();
    client().get(server.url("/missing")).send().await.unwrap();
    let coverage = server.coverage();
    assert_eq!(coverage.total_requests, 2);
    assert_eq!(coverage.never_hit().map(|r| r.path.as_str()).collect::<Vec<_>>(), ["/users"]);
    assert_eq!(coverage.unmatched.len(), 1);
    assert!(!coverage.is_complete());

    server.reset();
    assert!(server.requests().is_empty());
    let coverage = server.coverage();
    assert_eq!((coverage.total_requests, coverage.unmatched.len(), coverage.never_hit().count()), (0, 0, 2));
    server.verify(Expect::any().never());
    // Ids keep counting, so that a request is never mistaken for an earlier one.
    client().get(server.url("/users/2")).send().await.unwrap();
    assert_eq!(server.requests()[0].id(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_starts_sequences_and_counts_over() {
    let server = MockServer::start(
        "[[route]]\npath = \"/flaky\"\nsequence = [ { status = 503, body = \"down\" }, { status = 200, body = \"up\" } ]\n",
    )
    .await
    .unwrap();
    let get = || async { client().get(server.url("/flaky")).send().await.unwrap().status().as_u16() };
    assert_eq!((get().await, get().await, get().await), (503, 200, 200));
    server.reset();
    assert_eq!((get().await, get().await), (503, 200), "after reset the sequence starts over");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_file_serves_the_file_and_reload_rereads_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("api.toml");
    std::fs::write(dir.path().join("hello.txt"), "hello from a file").unwrap();
    std::fs::write(&path, "[[route]]\npath = \"/hello\"\nfile = \"hello.txt\"\n").unwrap();
    let server = MockServer::from_file(&path).await.unwrap();
    assert_eq!(server.source().as_deref(), Some(path.as_path()));
    assert_eq!(client().get(server.url("hello")).send().await.unwrap().text().await.unwrap(), "hello from a file");
    assert_eq!(server.requests()[0].route().unwrap().location, format!("{}:1", path.display()));

    std::fs::write(&path, "[[route]]\npath = \"/hello\"\nbody = \"edited\"\n").unwrap();
    assert_eq!(server.reload().unwrap(), 2);
    assert_eq!(server.wait_for_generation(2).await.unwrap(), 2);
    assert_eq!(client().get(server.url("/hello")).send().await.unwrap().text().await.unwrap(), "edited");

    std::fs::write(&path, "[[route]]\npath = \"/hello\"\nbody = 1\n").unwrap();
    assert!(server.reload().is_err());
    let err = server.wait_for_generation_timeout(3, Duration::from_millis(50)).await.unwrap_err();
    assert_eq!((err.wanted, err.generation), (3, 2));
    let text = err.to_string();
    assert!(text.contains("did not reach generation 3") && text.contains("the last reload failed"), "{text}");
    assert!(text.contains("api.toml:3:8"), "{text}");
}

#[tokio::test]
async fn a_watched_file_is_reloaded_on_save_and_the_test_waits_on_the_generation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("api.toml");
    std::fs::write(&path, "[[route]]\npath = \"/hello\"\nbody = \"before\"\n").unwrap();
    let server = MockServer::from_file(&path).await.unwrap().watch().unwrap();
    assert_eq!(client().get(server.url("/hello")).send().await.unwrap().text().await.unwrap(), "before");
    std::fs::write(&path, "[[route]]\npath = \"/hello\"\nbody = \"after\"\n").unwrap();
    assert_eq!(server.wait_for_generation(2).await.unwrap(), 2);
    assert_eq!(client().get(server.url("/hello")).send().await.unwrap().text().await.unwrap(), "after");
}

#[tokio::test]
async fn wait_for_generation_wakes_on_a_reload_from_another_thread_in_a_current_thread_runtime() {
    let server = MockServer::start(USERS).await.unwrap();
    let live = server.live().clone();
    let reloader = std::thread::spawn(move || {
        let router = hotroute::Router::load_str("", "x.toml".as_ref(), ".".as_ref()).unwrap();
        live.swap(router);
        live.swap(hotroute::Router::load_str("", "x.toml".as_ref(), ".".as_ref()).unwrap());
    });
    assert!(server.wait_for_generation(3).await.unwrap() >= 3);
    reloader.join().unwrap();
    assert_eq!(server.wait_for_generation(2).await.unwrap(), 3, "a generation already reached returns at once");
}

/// The mock answers from its own thread: a test that blocks its only runtime thread on a request still gets the
/// answer. (Were the server on the test's runtime, this read would time out and fail the test, never hang it.)
#[tokio::test]
async fn a_current_thread_test_that_blocks_cannot_hang() {
    let server = MockServer::start(USERS).await.unwrap();
    let answer = blocking_get(&server, "/users/5");
    assert!(answer.starts_with("HTTP/1.1 200 OK") && answer.ends_with(r#"{"id":"5"}"#), "{answer}");
    let blocking_wait = server.wait_for_generation_blocking(1, Duration::from_secs(10));
    assert_eq!(blocking_wait.unwrap(), 1);
    // And async clients on the same runtime work as well.
    assert_eq!(client().get(server.url("/users/6")).send().await.unwrap().status(), 200);
    server.verify(Expect::any().route("/users/{id}").times(2));
}

#[test]
fn works_without_any_async_runtime() {
    let server = MockServer::start_blocking(USERS).unwrap();
    let http = reqwest::blocking::Client::builder().no_proxy().build().unwrap();
    let res = http.post(server.url("/users")).body("x").send().unwrap();
    assert_eq!(res.status(), 201);
    server.verify(Expect::post("/users").body("x").once());
    let server = MockServer::from_file_blocking("routes.toml").unwrap();
    assert!(blocking_get(&server, "/hello").ends_with("Hello World"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_server_stops_it_and_frees_the_port() {
    let server = MockServer::start(USERS).await.unwrap();
    let addr = server.address();
    let http = client();
    assert_eq!(http.get(server.url("/users/1")).send().await.unwrap().status(), 200);
    // The client keeps its connection alive across the drop.
    drop(server);
    let rebound = std::net::TcpListener::bind(addr);
    assert!(rebound.is_ok(), "port {} still taken after drop: {:?}", addr.port(), rebound.err());
    drop(rebound);
    assert!(http.get(format!("http://{addr}/users/1")).send().await.is_err(), "the dropped server still answers");
}

#[test]
fn many_servers_in_parallel_do_not_see_each_others_requests() {
    const N: usize = 8;
    let http = reqwest::blocking::Client::builder().no_proxy().build().unwrap();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..N)
            .map(|i| {
                let http = http.clone();
                scope.spawn(move || {
                    let toml = format!("[[route]]\npath = \"/who\"\nbody = \"server {i}\"\n");
                    let server = MockServer::start_blocking(&toml).unwrap();
                    for _ in 0..=i {
                        let body = http.get(server.url(&format!("/who?from={i}"))).send().unwrap().text().unwrap();
                        assert_eq!(body, format!("server {i}"));
                    }
                    server.verify(Expect::get("/who").query_param("from", &i.to_string()).times(i + 1));
                    server.verify(Expect::any().times(i + 1));
                    server.address()
                })
            })
            .collect();
        let mut ports: Vec<u16> = workers.into_iter().map(|w| w.join().unwrap().port()).collect();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), N, "two servers shared a port");
    });
}

#[test]
fn a_server_can_be_shared_between_tests_and_threads() {
    fn shareable<T: Send + Sync + 'static>() {}
    shareable::<MockServer>();
    shareable::<hotroute::RecordedRequest>();
}

/// A mock's route file is served with its `[server]` settings, as the binary serves it: its body limit, its admin
/// switch and its journal size all hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mock_honours_its_server_table() {
    let server = MockServer::start(
        "[server]\nmax_body = 16\nadmin = false\njournal = 1\n\n[[route]]\npath = \"/in\"\nmethod = \"POST\"\nbody = \"ok\"\n",
    )
    .await
    .unwrap();
    let small = client().post(server.url("/in")).body("0123456789").send().await.unwrap();
    assert_eq!(small.status(), 200);
    let big = client().post(server.url("/in")).body("x".repeat(100)).send().await.unwrap();
    assert_eq!(big.status(), 413, "max_body = 16 is enforced");
    assert!(big.text().await.unwrap().contains("over the limit of 16 bytes"));
    let admin = client().get(server.url("/__admin/health")).send().await.unwrap();
    assert_eq!(admin.status(), 404, "admin = false turns the admin API off");
    assert_eq!(server.requests().len(), 1, "journal = 1 keeps one request");
}
