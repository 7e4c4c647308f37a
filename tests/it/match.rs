//! `[route.match]`: several routes on one method and path, told apart by the request; and the 404 that says which
//! routes came nearest.

use crate::common;

use common::{TestServer, client, load_error};

const ROUTES: &str = r#"
[[route]]
path = "/search"
body = "page two"
[route.match]
query = { page = "2" }

[[route]]
path = "/search"
body = "page two, sorted"
[route.match]
query = { page = "2", sort = "name" }

[[route]]
path = "/search"
body = "any page"

[[route]]
path = "/me"
body = "good token"
match = { headers = { Authorization = "Bearer good" } }

[[route]]
path = "/me"
status = 401
body = "who are you?"

[[route]]
path = "/orders"
method = "POST"
status = 201
body = "vip order"
match = { json = { customer = { tier = "gold" }, items = [1, 2] } }

[[route]]
path = "/orders"
method = "POST"
status = 202
body = "rush order"
match = { body_contains = "RUSH" }

[[route]]
path = "/orders"
method = "POST"
status = 400
body = "plain order"

[[route]]
path = "/files/{*rest}"
body = "a png"
match = { path_regex = '\.png$' }

[[route]]
path = "/files/{*rest}"
body = "a file"

[[route]]
path = "/items"
body = "numeric id"
match = { query_regex = { id = '^[0-9]+$' }, headers_regex = { accept = 'json' } }

[[route]]
path = "/items"
body = "other item"

[[route]]
path = "/logs"
method = "POST"
body = "error log"
match = { body_regex = '(?i)\berror\b' }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_matching_route_in_file_order_answers_and_the_plain_one_is_the_fallback() {
    let s = TestServer::start(ROUTES).await;
    let c = client();
    let get = |path: &str| c.get(s.url(path)).send();
    // Both conditional routes hold for this request: the first in the file wins.
    assert_eq!(get("/search?sort=name&page=2").await.unwrap().text().await.unwrap(), "page two");
    assert_eq!(get("/search?page=2").await.unwrap().text().await.unwrap(), "page two");
    // Values are decoded before they are compared.
    assert_eq!(get("/search?pa%67e=%32").await.unwrap().text().await.unwrap(), "page two");
    assert_eq!(get("/search?page=3").await.unwrap().text().await.unwrap(), "any page");
    assert_eq!(get("/search").await.unwrap().text().await.unwrap(), "any page");

    // Header names match in any case; the value must be equal.
    let me = c.get(s.url("/me")).header("authorization", "Bearer good").send().await.unwrap();
    assert_eq!(me.text().await.unwrap(), "good token");
    let bad = c.get(s.url("/me")).header("Authorization", "Bearer bad").send().await.unwrap();
    assert_eq!(bad.status(), 401);
    assert_eq!(get("/me").await.unwrap().status(), 401);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_subset_body_text_and_regex_conditions() {
    let s = TestServer::start(ROUTES).await;
    let c = client();
    let post = |body: &'static str| c.post(s.url("/orders")).body(body).send();
    // The request has more keys than the condition, at several depths: still a match.
    let vip = post(r#"{"id": 9, "customer": {"tier": "gold", "name": "Ada"}, "items": [1, 2.0]}"#).await.unwrap();
    assert_eq!(vip.status(), 201);
    // Arrays must be equal, not a subset.
    assert_eq!(post(r#"{"customer": {"tier": "gold"}, "items": [1]}"#).await.unwrap().status(), 400);
    // A different value at depth, and a body that is not JSON, fall through.
    assert_eq!(post(r#"{"customer": {"tier": "silver"}, "items": [1, 2]}"#).await.unwrap().status(), 400);
    assert_eq!(post("{not json RUSH").await.unwrap().status(), 202);
    assert_eq!(post("plain").await.unwrap().status(), 400);

    let get = |path: &str| c.get(s.url(path)).send();
    assert_eq!(get("/files/img/logo.png").await.unwrap().text().await.unwrap(), "a png");
    assert_eq!(get("/files/img/logo.png.txt").await.unwrap().text().await.unwrap(), "a file");
    let json = |path: &str| c.get(s.url(path)).header("accept", "application/json").send();
    assert_eq!(json("/items?id=42").await.unwrap().text().await.unwrap(), "numeric id");
    assert_eq!(json("/items?id=42x").await.unwrap().text().await.unwrap(), "other item");
    assert_eq!(get("/items?id=42").await.unwrap().text().await.unwrap(), "other item");

    let log = c.post(s.url("/logs")).body("disk ERROR at 3am").send().await.unwrap();
    assert_eq!(log.text().await.unwrap(), "error log");
    let quiet = c.post(s.url("/logs")).body("errors: none").send().await.unwrap();
    assert_eq!(quiet.status(), 404);
    s.stop().await;
}

#[test]
fn a_fallback_before_a_conditional_route_is_a_load_error_naming_both_lines() {
    let text = load_error(
        "[[route]]\npath = \"/a\"\nbody = \"fallback\"\n\n[[route]]\npath = \"/a\"\nmatch = { query = { x = \"1\" } }\n",
    );
    assert!(text.contains("can never answer"), "{text}");
    assert!(text.contains("routes.toml:6:8"), "points at the later route: {text}");
    assert!(text.contains("line 1"), "names the earlier route: {text}");
    assert!(text.contains("move the route at line 1 below this one"), "{text}");
}

#[test]
fn two_routes_with_the_same_conditions_are_a_load_error() {
    let route = "[[route]]\npath = \"/a\"\nmatch = { headers = { X-Key = \"1\" } }\n";
    let text = load_error(&format!("{route}\n{}", route.replace("X-Key", "x-key")));
    assert!(text.contains("same `match` conditions"), "{text}");
    assert!(text.contains("routes.toml:6:8"), "{text}");
}

#[test]
fn bad_conditions_are_load_errors_at_their_place() {
    let text = load_error("[[route]]\npath = \"/a\"\nmatch = { query_regex = { id = '[0-9' } }\n");
    assert!(text.contains("not a usable regex") && text.contains("routes.toml:3:"), "{text}");
    // Size limit: a regex that compiles to a huge automaton is refused instead of eating memory.
    let text = load_error("[[route]]\npath = \"/a\"\nmatch = { path_regex = '(\\w{100}){100}' }\n");
    assert!(text.contains("not a usable regex"), "{text}");
    let text = load_error("[[route]]\npath = \"/a\"\nmatch = {}\n");
    assert!(text.contains("`match` table has no conditions"), "{text}");
    let text = load_error("[[route]]\npath = \"/a\"\nmatch = { querry = { a = \"1\" } }\n");
    assert!(text.contains("unknown field `querry`"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_404_names_the_nearest_routes_and_why() {
    let s = TestServer::start(
        r#"
[[route]]
path = "/users/{id}"
body = "user"

[[route]]
path = "/users/{id}/posts"
method = "POST"
body = "post"

[[route]]
path = "/reports"
body = "report"
match = { query = { year = "2024" }, headers = { x-team = "blue" } }
"#,
    )
    .await;
    let c = client();
    let typo = c.get(s.url("/user/7")).send().await.unwrap();
    assert_eq!(typo.status(), 404);
    assert_eq!(typo.headers()["content-type"], "text/plain; charset=utf-8");
    let text = typo.text().await.unwrap();
    assert!(text.starts_with("404 not found: GET /user/7\n"), "{text}");
    assert!(
        text.contains("GET /users/{id} (") && text.contains("the path has `user` where the route has `users`"),
        "{text}"
    );
    assert!(text.contains("routes.toml:2)"), "the route's place: {text}");

    // One segment off and another method: both are said.
    let text = c.get(s.url("/users/7/post")).send().await.unwrap().text().await.unwrap();
    assert!(text.contains("POST /users/{id}/posts"), "{text}");
    assert!(text.contains("the method differs too: the route answers POST"), "{text}");

    // A missing segment.
    let text = c.get(s.url("/users")).send().await.unwrap().text().await.unwrap();
    assert!(text.contains("/users/{id}"), "{text}");

    // The path matched, a condition did not: the failed condition is named with what the request had.
    let text = c.get(s.url("/reports?year=2023")).header("x-team", "blue").send().await.unwrap().text().await.unwrap();
    assert!(text.contains("routes for this path did not match"), "{text}");
    assert!(text.contains("query parameter `year` is `2023`, the route wants `2024`"), "{text}");
    let text = c.get(s.url("/reports?year=2024")).send().await.unwrap().text().await.unwrap();
    assert!(text.contains("header `x-team` is missing"), "{text}");

    // Nothing near: the short 404.
    let text = c.get(s.url("/nothing/like/it")).send().await.unwrap().text().await.unwrap();
    assert_eq!(text, "404 not found: GET /nothing/like/it\n");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_json_condition_is_explained() {
    let s = TestServer::start(
        "[[route]]\npath = \"/login\"\nmethod = \"POST\"\nmatch = { json = { user = { name = \"ada\" } } }\n",
    )
    .await;
    let c = client();
    let text = c.post(s.url("/login")).body(r#"{"user": {"name": "bob"}}"#).send().await.unwrap().text().await.unwrap();
    assert!(text.contains("`user.name` is \"bob\", the route wants \"ada\""), "{text}");
    let text = c.post(s.url("/login")).body("name=ada").send().await.unwrap().text().await.unwrap();
    assert!(text.contains("the request body is not JSON"), "{text}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_not_found_replaces_the_default_404() {
    let s = TestServer::start(
        r#"
[server]
headers = { x-served-by = "hotroute" }
not_found = { status = 404, json = { error = "not found" } }

[[route]]
path = "/a"
"#,
    )
    .await;
    let res = client().get(s.url("/b")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(res.headers()["content-type"], "application/json");
    assert_eq!(res.headers()["x-served-by"], "hotroute");
    let v: serde_json::Value = res.json().await.unwrap();
    assert_eq!(v, serde_json::json!({"error": "not found"}));

    // Templated, with the request in it.
    let s2 = TestServer::start(
        "[server]\nnot_found = { status = 410, template = true, json = { gone = \"{{ method }} {{ url }}\" } }\n",
    )
    .await;
    let res = client().delete(s2.url("/x?y=1")).send().await.unwrap();
    assert_eq!(res.status(), 410);
    let v: serde_json::Value = res.json().await.unwrap();
    assert_eq!(v, serde_json::json!({"gone": "DELETE /x?y=1"}));
    s.stop().await;
    s2.stop().await;
}
