//! More `[route.match]` conditions: `headers_absent`, `cookies` and `form`, with a real client, the near-miss 404
//! that names them, and load errors for bad values.

use crate::common;

use common::{TestServer, client, load_error};

const ROUTES: &str = r#"
[[route]]
path = "/me"
match = { headers_absent = ["Authorization"] }
status = 401
body = "sign in first"

[[route]]
path = "/me"
match = { cookies = { session = "abc123" } }
body = "hello, session abc123"

[[route]]
method = "POST"
path = "/login"
match = { form = { user = "ada lovelace", remember = "on" } }
body = "welcome ada"
"#;

#[tokio::test]
async fn headers_absent_cookies_and_form_pick_the_route() {
    let server = TestServer::start(ROUTES).await;
    let c = client();

    let anonymous = c.get(server.url("/me")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);

    let session = c
        .get(server.url("/me"))
        .header("authorization", "Bearer x")
        .header("cookie", "theme=dark; session=abc123; other=1")
        .send()
        .await
        .unwrap();
    assert_eq!(session.text().await.unwrap(), "hello, session abc123");

    let login = c
        .post(server.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded; charset=utf-8")
        .body("remember=on&user=ada+lovelace")
        .send()
        .await
        .unwrap();
    assert_eq!(login.text().await.unwrap(), "welcome ada");

    // The same text as JSON is not a form.
    let json = c
        .post(server.url("/login"))
        .header("content-type", "application/json")
        .body("remember=on&user=ada+lovelace")
        .send()
        .await
        .unwrap();
    assert_eq!(json.status(), 404);
    let text = json.text().await.unwrap();
    assert!(text.contains("the request body is not application/x-www-form-urlencoded"), "{text}");
    server.stop().await;
}

#[tokio::test]
async fn the_near_miss_404_names_the_new_conditions_without_cookie_values() {
    let server = TestServer::start(ROUTES).await;
    let c = client();
    let res = c
        .get(server.url("/me"))
        .header("authorization", "Bearer x")
        .header("cookie", "session=wrong-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let text = res.text().await.unwrap();
    assert!(text.contains("header `authorization` is present, the route wants it absent"), "{text}");
    assert!(text.contains("cookie `session` does not have the value the route wants"), "{text}");
    assert!(!text.contains("wrong-secret") && !text.contains("abc123"), "cookie values stay out of the 404: {text}");

    let res = c
        .post(server.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("user=bob")
        .send()
        .await
        .unwrap();
    let text = res.text().await.unwrap();
    assert!(text.contains("form field `user` is `bob`, the route wants `ada lovelace`"), "{text}");
    assert!(text.contains("form field `remember` is missing"), "{text}");
    server.stop().await;
}

#[test]
fn bad_match_values_are_load_errors_with_line_and_column() {
    let text = load_error("[[route]]\npath = \"/a\"\nmatch = { headers_absent = [\"bad header\"] }\n");
    assert!(text.contains("`bad header` is not a valid header name") && text.contains("routes.toml:3:29"), "{text}");
    let text = load_error("[[route]]\npath = \"/a\"\nmatch = { cookies = { \"a;b\" = \"1\" } }\n");
    assert!(text.contains("`a;b` is not a cookie name") && text.contains("routes.toml:3:23"), "{text}");
    let text = load_error("[[route]]\npath = \"/a\"\nmatch = { form = { a = 1 } }\n");
    assert!(text.contains("routes.toml:3:"), "{text}");
}

const FLAKY: &str = r#"
[server]
seed = 42

[[route]]
path = "/flaky"
match = { chance = 0.3 }
status = 503
body = "down"

[[route]]
path = "/flaky"
body = "up"

[[route]]
path = "/lottery"
match = { chance = 0.0 }
body = "won"
"#;

async fn draws(server: &TestServer, n: usize) -> Vec<u16> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(client().get(server.url("/flaky")).send().await.unwrap().status().as_u16());
    }
    out
}

#[tokio::test]
async fn chance_answers_a_share_of_requests_repeatably_with_a_seed() {
    let server = TestServer::start(FLAKY).await;
    let first = draws(&server, 200).await;
    let failures = first.iter().filter(|&&s| s == 503).count();
    assert!((30..=90).contains(&failures), "about 30% of 200 requests fail: {failures}");
    server.stop().await;
    // The same seed: the same draws, request by request.
    let again = TestServer::start(FLAKY).await;
    assert_eq!(draws(&again, 200).await, first);

    // A route that is never drawn: the near-miss 404 says why.
    let res = client().get(again.url("/lottery")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    let text = res.text().await.unwrap();
    assert!(text.contains("the route answers by chance (0% of requests) and this request was not drawn"), "{text}");
    again.stop().await;
}

#[test]
fn chance_out_of_range_is_a_load_error() {
    let text = load_error("[[route]]\npath = \"/a\"\nmatch = { chance = 1.5 }\n");
    assert!(text.contains("`chance = 1.5` is not a share of requests") && text.contains("routes.toml:3:20"), "{text}");
}

#[tokio::test]
async fn jsonpath_conditions_select_into_the_json_body() {
    let toml = r#"
[[route]]
method = "POST"
path = "/orders"
match = { jsonpath = { "$.items[0].id" = 7, "$.customer.tier" = "gold" } }
body = "gold order of item 7"
"#;
    let server = TestServer::start(toml).await;
    let c = client();
    let ok = serde_json::json!({ "items": [{ "id": 7.0, "qty": 2 }, { "id": 9 }], "customer": { "tier": "gold" } });
    let res = c.post(server.url("/orders")).json(&ok).send().await.unwrap();
    assert_eq!(res.text().await.unwrap(), "gold order of item 7");

    let wrong = serde_json::json!({ "items": [{ "id": 9 }], "customer": {} });
    let res = c.post(server.url("/orders")).json(&wrong).send().await.unwrap();
    assert_eq!(res.status(), 404);
    let text = res.text().await.unwrap();
    assert!(text.contains("`$.items[0].id` is 9, the route wants 7"), "{text}");
    assert!(text.contains("the JSON body has no `$.customer.tier`, the route wants \"gold\""), "{text}");
    server.stop().await;

    let text = load_error("[[route]]\npath = \"/a\"\nmatch = { jsonpath = { \"items[\" = 1 } }\n");
    assert!(text.contains("is not a JSONPath expression") && text.contains("routes.toml:3:24"), "{text}");
}
