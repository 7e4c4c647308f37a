//! The dashboard page and the admin API parts it reads: the reload status in `/__admin/health` and the journal's
//! `?after=`/`?limit=`. (The page itself is tested in a real browser by `tests/browser/dashboard.test.mjs`.)

use crate::common;

use common::{TestServer, client};
use serde_json::Value;

const ROUTES: &str = r#"[[route]]
path = "/hello"
body = "Hello World"

[[route]]
path = "/users/{id}"
json = { id = 1 }
"#;

/// ROUTES with a typo on line 7.
const BROKEN: &str = r#"[[route]]
path = "/hello"
body = "Hello World"

[[route]]
path = "/users/{id}"
stauts = 200
"#;

async fn health(server: &TestServer) -> Value {
    client().get(server.url("/__admin/health")).send().await.unwrap().json().await.unwrap()
}

#[tokio::test]
async fn the_dashboard_is_served_as_one_html_page() {
    let server = TestServer::start(ROUTES).await;
    for path in ["/__admin/", "/__admin"] {
        let res = client().get(server.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        let headers = res.headers().clone();
        assert_eq!(headers["content-type"], "text/html; charset=utf-8", "{path}");
        assert_eq!(headers["cache-control"], "no-store");
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains(&format!("script-src 'sha256-{}'", hotroute::__internals::SCRIPT_SHA256)), "{csp}");
        assert!(csp.contains("connect-src 'self'") && csp.contains("default-src 'none'"), "{csp}");
        let body = res.text().await.unwrap();
        assert_eq!(body, hotroute::__internals::PAGE);
        assert!(body.starts_with("<!doctype html>") && body.contains("<title>hotroute</title>"));
        // Self-contained: nothing is loaded from elsewhere (the one URL is the favicon's SVG namespace, a name).
        let urls = body.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
        assert!(!urls.contains("http://") && !urls.contains("https://") && !urls.contains(" src="), "{path}");
        assert!(!urls.contains("@import") && !urls.contains("url("), "{path}");
    }
    let head = client().head(server.url("/__admin/")).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-length"], hotroute::__internals::PAGE.len().to_string().as_str());
    assert_eq!(head.text().await.unwrap(), "");
    let post = client().post(server.url("/__admin/")).send().await.unwrap();
    assert_eq!((post.status().as_u16(), post.headers()["allow"].to_str().unwrap()), (405, "GET"));
    // The dashboard is not a request to the routes: the journal stays empty.
    assert!(server.live.journal().requests().is_empty());
    server.stop().await;
}

#[test]
fn the_page_puts_data_in_as_text_only() {
    let page = hotroute::__internals::PAGE;
    for sink in ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"] {
        assert!(!page.contains(sink), "the dashboard must not use {sink}: data from requests would become markup");
    }
    assert_eq!(page.matches("<script>").count(), 1, "one inline script, whose hash the CSP allows");
    assert_eq!(page.matches("<style>").count(), 1, "one inline style, whose hash the CSP allows");
}

#[tokio::test]
async fn health_shows_the_last_reload_error_until_a_good_reload() {
    let server = TestServer::start(ROUTES).await;
    let before = health(&server).await;
    assert_eq!(before["last_error"], Value::Null, "{before}");
    assert_eq!(before["generation"], 1);
    assert!(before["file"].as_str().unwrap().ends_with("routes.toml"), "{before}");
    assert!(before["loaded_at"].as_str().unwrap().ends_with('Z'), "{before}");

    std::fs::write(server.routes_path(), BROKEN).unwrap();
    let reload = client().post(server.url("/__admin/reload")).header("x-hotroute", "1").send().await.unwrap();
    assert_eq!(reload.status(), 422);
    let broken = health(&server).await;
    assert_eq!(broken["generation"], 1, "the old routes keep serving: {broken}");
    assert_eq!(broken["status"], "ok");
    let failure = &broken["last_error"];
    let first = &failure["errors"][0];
    assert_eq!((first["line"].as_u64(), first["column"].as_u64()), (Some(7), Some(1)), "{broken}");
    assert!(first["location"].as_str().unwrap().ends_with("routes.toml:7:1"), "{broken}");
    assert!(first["file"].as_str().unwrap().ends_with("routes.toml"), "{broken}");
    assert!(first["message"].as_str().unwrap().contains("unknown field `stauts`"), "{broken}");
    let text = failure["text"].as_str().unwrap();
    assert!(text.contains("routes.toml:7:1") && text.contains("7 | stauts = 200"), "{text}");
    // The same report as the Rust API's, with the route file's folder cut (admin answers show relative paths).
    let folder = format!("{}/", server.routes_path().parent().unwrap().display());
    assert_eq!(text, server.live.last_error().unwrap().replace(&folder, ""));
    assert!(!text.contains(&folder), "{text}");
    assert!(failure["at"].as_str().unwrap() >= before["loaded_at"].as_str().unwrap(), "{broken}");
    // The old routes answer meanwhile.
    assert_eq!(client().get(server.url("/hello")).send().await.unwrap().status(), 200);

    std::fs::write(server.routes_path(), ROUTES.replace("Hello World", "Hello again")).unwrap();
    let reload = client().post(server.url("/__admin/reload")).header("x-hotroute", "1").send().await.unwrap();
    assert_eq!(reload.status(), 200);
    let fixed = health(&server).await;
    assert_eq!((fixed["generation"].as_u64(), &fixed["last_error"]), (Some(2), &Value::Null), "{fixed}");
    assert!(fixed["loaded_at"].as_str().unwrap() >= failure["at"].as_str().unwrap(), "{fixed}");
    server.stop().await;
}

#[tokio::test]
async fn the_journal_gives_only_the_requests_after_an_id() {
    let server = TestServer::start(ROUTES).await;
    for path in ["/hello", "/users/1", "/nope"] {
        client().get(server.url(path)).send().await.unwrap();
    }
    let ids = |v: &Value| -> Vec<u64> {
        v["requests"].as_array().unwrap().iter().map(|r| r["id"].as_u64().unwrap()).collect()
    };
    let get = |query: &'static str| {
        let url = server.url(&format!("/__admin/requests{query}"));
        async move { client().get(url).send().await.unwrap() }
    };
    let all: Value = get("").await.json().await.unwrap();
    assert_eq!((ids(&all), all["last_id"].as_u64()), (vec![1, 2, 3], Some(3)));
    let after: Value = get("?after=1").await.json().await.unwrap();
    assert_eq!(ids(&after), [2, 3]);
    assert_eq!(after["requests"][1]["path"], "/nope");
    let newest: Value = get("?after=0&limit=1").await.json().await.unwrap();
    assert_eq!(ids(&newest), [3]);
    let none: Value = get("?after=3").await.json().await.unwrap();
    assert_eq!((ids(&none), none["last_id"].as_u64()), (vec![], Some(3)));
    let bad = get("?after=x").await;
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap().contains("after=\"x\": a whole number is expected"));
    server.stop().await;
}

#[tokio::test]
async fn a_path_that_only_starts_like_admin_goes_to_the_routes() {
    let server = TestServer::start(ROUTES).await;
    let res = client().get(server.url("/__administrator")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    let text = res.text().await.unwrap();
    assert!(text.starts_with("404 not found: GET /__administrator\n"), "the routes' 404, not the admin API's: {text}");
    assert_eq!(server.live.journal().requests().len(), 1, "recorded as a request to the routes");
    server.stop().await;
}
