//! `[server] cors`: preflights answered for every route, CORS headers on every response.

use crate::common;

use common::{TestServer, client, load_error};

const ROUTES: &str = r#"
[[route]]
path = "/items"
method = ["GET", "POST"]
json = []

[[route]]
path = "/items/{id}"
method = "DELETE"
status = 204

[[route]]
path = "/custom"
method = ["GET", "OPTIONS"]
body = "my own options"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_true_answers_preflights_and_marks_every_response() {
    let s = TestServer::start(&format!("[server]\ncors = true\n{ROUTES}")).await;
    let c = client();
    let pre = c
        .request(reqwest::Method::OPTIONS, s.url("/items"))
        .header("origin", "http://localhost:5173")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type, x-token")
        .send()
        .await
        .unwrap();
    assert_eq!(pre.status(), 204);
    assert_eq!(pre.headers()["access-control-allow-origin"], "*");
    assert_eq!(pre.headers()["access-control-allow-methods"], "GET, HEAD, POST");
    assert_eq!(pre.headers()["access-control-allow-headers"], "content-type, x-token");

    // Every route gets its preflight, with its own methods.
    let pre = c
        .request(reqwest::Method::OPTIONS, s.url("/items/7"))
        .header("origin", "http://localhost:5173")
        .header("access-control-request-method", "DELETE")
        .send()
        .await
        .unwrap();
    assert_eq!(pre.status(), 204);
    assert_eq!(pre.headers()["access-control-allow-methods"], "DELETE");

    for res in [
        c.get(s.url("/items")).header("origin", "http://a.example").send().await.unwrap(),
        c.delete(s.url("/items/1")).send().await.unwrap(),
        c.get(s.url("/nope")).header("origin", "http://a.example").send().await.unwrap(),
        c.put(s.url("/items")).header("origin", "http://a.example").send().await.unwrap(),
    ] {
        assert_eq!(res.headers()["access-control-allow-origin"], "*", "{}", res.url());
    }

    // A route that names OPTIONS itself answers its own preflights.
    let own = c
        .request(reqwest::Method::OPTIONS, s.url("/custom"))
        .header("origin", "http://a.example")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), 200);
    assert_eq!(own.headers()["access-control-allow-origin"], "*");
    assert_eq!(own.text().await.unwrap(), "my own options");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cors_table_sets_origins_methods_headers_and_credentials() {
    let s = TestServer::start(&format!(
        r#"
[server]
cors = {{ origins = ["http://localhost:5173", "https://app.example"], methods = ["GET", "PUT"], headers = ["authorization"], expose_headers = ["x-total"], credentials = true, max_age = 600 }}
{ROUTES}"#
    ))
    .await;
    let c = client();
    let pre = c
        .request(reqwest::Method::OPTIONS, s.url("/items"))
        .header("origin", "https://app.example")
        .header("access-control-request-method", "PUT")
        .header("access-control-request-headers", "x-other")
        .send()
        .await
        .unwrap();
    assert_eq!(pre.status(), 204);
    assert_eq!(pre.headers()["access-control-allow-origin"], "https://app.example");
    assert_eq!(pre.headers()["access-control-allow-methods"], "GET, PUT");
    assert_eq!(pre.headers()["access-control-allow-headers"], "authorization");
    assert_eq!(pre.headers()["access-control-allow-credentials"], "true");
    assert_eq!(pre.headers()["access-control-max-age"], "600");
    assert_eq!(pre.headers()["vary"], "Origin");

    let ok = c.get(s.url("/items")).header("origin", "http://localhost:5173").send().await.unwrap();
    assert_eq!(ok.headers()["access-control-allow-origin"], "http://localhost:5173");
    assert_eq!(ok.headers()["access-control-expose-headers"], "x-total");
    assert_eq!(ok.headers()["vary"], "Origin");

    // An origin not in the list gets no CORS headers, so the browser refuses the answer.
    let other = c.get(s.url("/items")).header("origin", "https://evil.example").send().await.unwrap();
    assert_eq!(other.status(), 200);
    assert!(!other.headers().contains_key("access-control-allow-origin"));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_cors_a_preflight_is_an_ordinary_request() {
    let s = TestServer::start(ROUTES).await;
    let pre = client()
        .request(reqwest::Method::OPTIONS, s.url("/items"))
        .header("origin", "http://localhost:5173")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(pre.status(), 405);
    assert!(!pre.headers().contains_key("access-control-allow-origin"));
    s.stop().await;
}

#[test]
fn bad_cors_settings_are_load_errors() {
    let text = load_error("[server]\ncors = { origins = [\"localhost:3000/\"] }\n");
    assert!(text.contains("is not an origin") && text.contains("routes.toml:2:"), "{text}");
    let text = load_error("[server]\ncors = \"yes\"\n");
    assert!(text.contains("`true`, `false`, or a table"), "{text}");
    let text = load_error("[server]\ncors = { origin = [\"*\"] }\n");
    assert!(text.contains("unknown field `origin`"), "{text}");
}
