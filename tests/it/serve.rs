//! The route file contract and HTTP semantics, over a real socket with a real client.

use crate::common;

use std::time::Duration;

use common::{TestServer, client, load_error, raw};

const SEED: &str = include_str!("../../routes.toml");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_routes_answer_like_the_seed() {
    let s = TestServer::start(SEED).await;
    let res = client().get(s.url("/hello")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/plain; charset=utf-8");
    assert_eq!(res.headers()["content-length"], "11");
    let date = res.headers()["date"].to_str().unwrap().to_owned();
    assert!(httpdate_like(&date), "Date header looks wrong: {date}");
    assert_eq!(res.text().await.unwrap(), "Hello World");
    let about = client().get(s.url("/about")).send().await.unwrap().text().await.unwrap();
    assert_eq!(about, "I am Habib. I am a YouTuber. I am a Software Engineer.");
    s.stop().await;
}

fn httpdate_like(s: &str) -> bool {
    s.ends_with(" GMT") && s.len() == 29 && s.contains(", ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_path_is_a_short_plain_404() {
    let s = TestServer::start(SEED).await;
    let res = client().get(s.url("/nope")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(res.headers()["content-type"], "text/plain; charset=utf-8");
    let body = res.text().await.unwrap();
    assert!(body.starts_with("404 not found: GET /nope"), "{body}");
    assert!(body.len() < 200);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_method_is_405_with_allow() {
    let toml = r#"
[[route]]
path = "/items"
method = ["GET", "post"]
body = "items"

[[route]]
path = "/items"
method = "DELETE"
status = 204
"#;
    let s = TestServer::start(toml).await;
    let res = client().put(s.url("/items")).send().await.unwrap();
    assert_eq!(res.status(), 405);
    assert_eq!(res.headers()["allow"], "DELETE, GET, HEAD, POST");
    assert_eq!(client().post(s.url("/items")).send().await.unwrap().text().await.unwrap(), "items");
    let del = client().delete(s.url("/items")).send().await.unwrap();
    assert_eq!(del.status(), 204);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_has_the_get_headers_and_no_body() {
    let s = TestServer::start(SEED).await;
    let get = client().get(s.url("/about")).send().await.unwrap();
    let head = client().head(s.url("/about")).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-length"], get.headers()["content-length"]);
    assert_eq!(head.headers()["content-type"], get.headers()["content-type"]);
    // On the wire: the head only, no body bytes after it.
    let text =
        raw(s.addr, b"HEAD /about HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", Duration::from_secs(5)).await;
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    assert!(text.ends_with("\r\n\r\n"), "HEAD response carried a body: {text:?}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_serves_several_requests_on_one_connection() {
    let s = TestServer::start(SEED).await;
    let two = b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\nGET /about HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let text = raw(s.addr, two, Duration::from_secs(5)).await;
    assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 2, "{text}");
    assert!(text.contains("Hello World") && text.contains("I am Habib."), "{text}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_prior_knowledge_on_the_same_port() {
    let s = TestServer::start(SEED).await;
    let h2 = reqwest::Client::builder().no_proxy().http2_prior_knowledge().build().unwrap();
    let res = h2.get(s.url("/hello")).send().await.unwrap();
    assert_eq!(res.version(), reqwest::Version::HTTP_2);
    assert!(res.headers().contains_key("date"), "h2 response has no Date header");
    assert_eq!(res.text().await.unwrap(), "Hello World");
    let h1 = client().get(s.url("/hello")).send().await.unwrap();
    assert_eq!(h1.version(), reqwest::Version::HTTP_11);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_headers_json_file_any_and_server_headers() {
    let toml = r#"
[server]
headers = { x-served-by = "hotroute", x-env = "test" }

[[route]]
path = "/created"
method = "POST"
status = 201
headers = { location = "/items/1", x-env = "route wins" }

[[route]]
path = "/user"
json = { id = 7, name = "Ada", tags = ["a", "b"], when = 1979-05-27 }

[[route]]
path = "/page"
file = "pages/index.html"

[[route]]
path = "/raw"
body = "<b>hi</b>"
headers = { content-type = "text/html" }

[[route]]
path = "/anything/{*rest}"
method = "ANY"
body = "any"
"#;
    let s = TestServer::start_with_files(toml, &[("pages/index.html", "<h1>home</h1>")]).await;
    let c = client();
    let created = c.post(s.url("/created")).send().await.unwrap();
    assert_eq!(created.status(), 201);
    assert_eq!(created.headers()["location"], "/items/1");
    assert_eq!(created.headers()["x-served-by"], "hotroute");
    assert_eq!(created.headers()["x-env"], "route wins");
    assert_eq!(created.headers()["content-length"], "0");

    let user = c.get(s.url("/user")).send().await.unwrap();
    assert_eq!(user.headers()["content-type"], "application/json");
    let v: serde_json::Value = user.json().await.unwrap();
    assert_eq!(v, serde_json::json!({"id": 7, "name": "Ada", "tags": ["a", "b"], "when": "1979-05-27"}));

    let page = c.get(s.url("/page")).send().await.unwrap();
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    assert_eq!(page.text().await.unwrap(), "<h1>home</h1>");

    let raw_html = c.get(s.url("/raw")).send().await.unwrap();
    assert_eq!(raw_html.headers()["content-type"], "text/html");

    for m in ["GET", "PATCH", "DELETE", "OPTIONS"] {
        let res = c.request(m.parse().unwrap(), s.url("/anything/a/b")).send().await.unwrap();
        assert_eq!(res.status(), 200, "{m}");
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn template_renders_path_parameters() {
    let toml = r#"
[[route]]
path = "/users/{id}"
template = true
body = "user {{ path.id }}"

[[route]]
path = "/users/{id}/json"
template = true
json = { id = "{{ path.id }}" }
"#;
    let s = TestServer::start(toml).await;
    assert_eq!(client().get(s.url("/users/42")).send().await.unwrap().text().await.unwrap(), "user 42");
    let v: serde_json::Value = client().get(s.url("/users/7/json")).send().await.unwrap().json().await.unwrap();
    assert_eq!(v, serde_json::json!({"id": "7"}));
    s.stop().await;
}

#[test]
fn a_typo_in_a_key_is_an_error_naming_it_with_line_and_column() {
    let text = load_error("[[route]]\npath = \"/a\"\nstauts = 200\n");
    assert!(text.contains("unknown field `stauts`"), "{text}");
    assert!(text.contains("routes.toml:3:1"), "{text}");
    assert!(text.contains("stauts = 200"), "the offending line is shown: {text}");
}

#[test]
fn two_routes_with_the_same_method_and_path_are_an_error_naming_both_lines() {
    let text = load_error("[[route]]\npath = \"/a\"\n\n[[route]]\npath = \"/a\"\nmethod = [\"POST\", \"GET\"]\n");
    assert!(text.contains("defined twice"), "{text}");
    assert!(text.contains("routes.toml:5:8"), "{text}");
    assert!(text.contains("line 1"), "{text}");
}

#[test]
fn bad_paths_methods_statuses_and_headers_are_errors() {
    assert!(load_error("[[route]]\npath = \"hello\"\n").contains("does not start with `/`"));
    assert!(
        load_error("[[route]]\npath = \"/a/{id\"\n").contains("has a parameter without a name or an unclosed brace")
    );
    assert!(load_error("[[route]]\npath = \"/a/{x}\"\n[[route]]\npath = \"/a/{y}\"\n").contains("conflicts with"));
    assert!(load_error("[[route]]\npath = \"/a\"\nmethod = \"G T\"\n").contains("not an HTTP method"));
    assert!(load_error("[[route]]\npath = \"/a\"\nstatus = 42\n").contains("not an HTTP status code"));
    assert!(
        load_error("[[route]]\npath = \"/a\"\nheaders = { \"bad name\" = \"x\" }\n")
            .contains("not a valid header name")
    );
    assert!(load_error("[[route]]\npath = \"/a\"\nbody = \"x\"\njson = 1\n").contains("at most one body kind"));
    assert!(load_error("[[route]]\npath = \"/a\"\nfile = \"missing.txt\"\n").contains("cannot read body file"));
    assert!(load_error("[[route]]\npath = \"/__admin/x\"\n").contains("reserves for its admin API"));
    assert!(load_error("[server]\nlisten = \"nope\"\n").contains("not a listen address"));
    assert!(load_error("[[route]]\npath = \"/a\"\ntemplate = true\nbody = \"{{ x\"\n").contains("template error"));
    assert!(load_error("[[route]]\npath = \"/a\"\nmethod = 5\n").contains("method name"));
    assert!(load_error("[[route]\n").contains("routes.toml:1:"));
}

#[test]
fn every_error_in_a_file_is_reported_at_once() {
    let text = load_error("[[route]]\npath = \"a\"\n\n[[route]]\npath = \"/b\"\nstatus = 1000\n");
    assert!(text.contains("does not start with `/`") && text.contains("not an HTTP status code"), "{text}");
    assert!(text.contains("2 errors"), "{text}");
}

#[test]
fn body_files_outside_the_route_folder_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret.txt"), "s").unwrap();
    std::fs::create_dir(dir.path().join("site")).unwrap();
    let routes = dir.path().join("site/routes.toml");
    for file in ["../secret.txt", &dir.path().join("secret.txt").display().to_string()] {
        std::fs::write(&routes, format!("[[route]]\npath = \"/s\"\nfile = '{file}'\n")).unwrap();
        let err = hotroute::Router::load_file(&routes).unwrap_err().to_string();
        assert!(err.contains("outside the route file's folder"), "{err}");
    }
}
