//! `template = true`: bodies, JSON strings, body files and header values rendered per request from the request.

use crate::common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{TestServer, client, load_error, raw};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_variable_is_rendered() {
    let s = TestServer::start(
        r#"
[[route]]
path = "/echo/{kind}/{id}"
method = ["GET", "POST"]
template = true
body = """
method={{ method }}
kind={{ path.kind }} id={{ path.id }}
url={{ url }}
q={{ query.q }} first={{ query.multi }}
agent={{ headers['x-agent'] }} twice={{ headers['x-twice'] }}
body={{ body }}
json={{ json.user.name if json else "none" }}
count={{ count }}"""
"#,
    )
    .await;
    let c = client();
    let res = c
        .post(s.url("/echo/user/42?q=a%20b&multi=1&multi=2"))
        .header("X-Agent", "tests")
        .header("x-twice", "a")
        .header("x-twice", "b")
        .body(r#"{"user": {"name": "Ada"}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/plain; charset=utf-8");
    let text = res.text().await.unwrap();
    let want = "method=POST\nkind=user id=42\nurl=/echo/user/42?q=a%20b&multi=1&multi=2\nq=a b first=1\n\
                agent=tests twice=a, b\nbody={\"user\": {\"name\": \"Ada\"}}\njson=Ada\ncount=1";
    assert_eq!(text, want);

    let text = c.get(s.url("/echo/x/7")).send().await.unwrap().text().await.unwrap();
    assert!(text.contains("method=GET\n") && text.contains("json=none\n") && text.ends_with("count=2"), "{text}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helpers_now_uuid_random_int_and_fake() {
    let s = TestServer::start(
        r#"
[[route]]
path = "/helpers"
template = true
json = { now = "{{ now() }}", year = "{{ now('%Y') }}", unix = "{{ now('unix') }}", http = "{{ now('http') }}", id = "{{ uuid() }}", dice = "{{ random_int(1, 6) }}", name = "{{ fake('name') }}", email = "{{ fake('email') }}", city = "{{ fake('city') }}", address = "{{ fake('address') }}", lorem = "{{ fake('lorem', 4) }}", company = "{{ fake('company') }}" }
"#,
    )
    .await;
    let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let v: serde_json::Value = client().get(s.url("/helpers")).send().await.unwrap().json().await.unwrap();
    let after = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();

    let now = v["now"].as_str().unwrap();
    assert!(now.len() == 20 && now.ends_with('Z') && now.as_bytes()[10] == b'T', "RFC 3339 UTC: {now}");
    let unix = v["unix"].as_u64().expect("now('unix') is a number");
    assert!((before..=after).contains(&unix), "{unix} not in {before}..={after}");
    let year = v["year"].as_str().unwrap();
    assert!(now.starts_with(year), "{year} vs {now}");
    let http = v["http"].as_str().unwrap();
    assert!(http.ends_with(" GMT") && http.len() == 29, "{http}");

    let id = v["id"].as_str().unwrap();
    let hex: String = id.chars().filter(|c| *c != '-').collect();
    assert_eq!(id.len(), 36, "{id}");
    assert!(hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit()), "{id}");
    assert_eq!(&id[14..15], "4", "version 4: {id}");
    assert!("89ab".contains(&id[19..20]), "RFC 4122 variant: {id}");

    let dice = v["dice"].as_i64().expect("random_int gives a number");
    assert!((1..=6).contains(&dice), "{dice}");
    assert!(v["name"].as_str().unwrap().contains(' '), "{}", v["name"]);
    assert!(v["email"].as_str().unwrap().contains('@'), "{}", v["email"]);
    assert!(!v["city"].as_str().unwrap().is_empty());
    assert!(v["address"].as_str().unwrap().contains(", "), "{}", v["address"]);
    assert_eq!(v["lorem"].as_str().unwrap().split(' ').count(), 4, "{}", v["lorem"]);
    assert!(!v["company"].as_str().unwrap().is_empty());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_makes_the_helpers_repeatable() {
    let routes = r#"
[server]
seed = 42

[[route]]
path = "/person"
template = true
json = { id = "{{ uuid() }}", name = "{{ fake('name') }}", age = "{{ random_int(18, 99) }}" }
"#;
    let a = TestServer::start(routes).await;
    let b = TestServer::start(routes).await;
    let c = client();
    let get = |s: &TestServer| c.get(s.url("/person")).send();
    let a1 = get(&a).await.unwrap().text().await.unwrap();
    let a2 = get(&a).await.unwrap().text().await.unwrap();
    let b1 = get(&b).await.unwrap().text().await.unwrap();
    let b2 = get(&b).await.unwrap().text().await.unwrap();
    // The n-th answer is the same on every server with the seed; answers differ from one request to the next.
    assert_eq!(a1, b1);
    assert_eq!(a2, b2);
    assert_ne!(a1, a2);

    // Without a seed, two servers give different data.
    let unseeded = routes.replace("seed = 42", "");
    let x = TestServer::start(&unseeded).await;
    let y = TestServer::start(&unseeded).await;
    assert_ne!(get(&x).await.unwrap().text().await.unwrap(), get(&y).await.unwrap().text().await.unwrap());
    for s in [a, b, x, y] {
        s.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_strings_are_templates_and_keep_the_json_valid() {
    let s = TestServer::start(
        r#"
[[route]]
path = "/orders/{id}"
method = "POST"
template = true
json = { id = "{{ path.id | int }}", note = "order {{ path.id }} for {{ json.name }}", items = "{{ json.items }}", count = "{{ count }}", static = "plain", nested = { list = ["{{ method }}", 1, true] } }
"#,
    )
    .await;
    let res = client()
        .post(s.url("/orders/5"))
        .body(r#"{"name": "Bob \"the builder\" <b>", "items": [1, {"a": null}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["content-type"], "application/json");
    let v: serde_json::Value = res.json().await.expect("the rendered body is JSON even with quotes in the input");
    assert_eq!(
        v,
        serde_json::json!({
            "id": 5,
            "note": "order 5 for Bob \"the builder\" <b>",
            "items": [1, {"a": null}],
            "count": 1,
            "static": "plain",
            "nested": {"list": ["POST", 1, true]}
        })
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_contents_and_header_values_are_templates() {
    let s = TestServer::start_with_files(
        r#"
[[route]]
path = "/page/{name}"
template = true
file = "page.html"
headers = { x-page = "{{ path.name }}", location = "/pages/{{ path.name }}", x-fixed = "same" }
"#,
        &[("page.html", "<h1>{{ path.name | title }}</h1>")],
    )
    .await;
    let res = client().get(s.url("/page/home")).send().await.unwrap();
    assert_eq!(res.headers()["content-type"], "text/html; charset=utf-8");
    assert_eq!(res.headers()["x-page"], "home");
    assert_eq!(res.headers()["location"], "/pages/home");
    assert_eq!(res.headers()["x-fixed"], "same");
    assert_eq!(res.text().await.unwrap(), "<h1>Home</h1>");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_render_error_answers_500_with_the_reason_and_the_server_goes_on() {
    let s = TestServer::start(
        r#"
[[route]]
path = "/broken"
template = true
body = "{{ query.n | int + undefined_function() }}"

[[route]]
path = "/loop"
template = true
body = "{% for i in range(10000) %}{% for j in range(10000) %}x{% endfor %}{% endfor %}"

[[route]]
path = "/include"
template = true
body = "{% include 'routes.toml' %}"

[[route]]
path = "/fake"
template = true
# A literal unknown kind is a load error; one known only per request fails then.
body = "{{ fake(query.kind) }}"

[[route]]
path = "/ok"
body = "fine"
"#,
    )
    .await;
    let c = client();
    for _ in 0..2 {
        let res = c.get(s.url("/broken?n=1")).send().await.unwrap();
        assert_eq!(res.status(), 500);
        let text = res.text().await.unwrap();
        assert!(text.starts_with("500 template error in route "), "{text}");
        assert!(text.contains("routes.toml:2") && text.contains("undefined_function"), "{text}");
        assert_eq!(c.get(s.url("/ok")).send().await.unwrap().text().await.unwrap(), "fine");
    }
    // A runaway loop runs out of fuel instead of hanging a worker.
    let res = c.get(s.url("/loop")).send().await.unwrap();
    assert_eq!(res.status(), 500);
    assert!(res.text().await.unwrap().contains("fuel"));
    // No file system access: there is no loader, so an include finds nothing.
    let res = c.get(s.url("/include")).send().await.unwrap();
    assert_eq!(res.status(), 500);
    let text = res.text().await.unwrap();
    assert!(text.contains("routes.toml") && !text.contains("[[route]]"), "{text}");
    let text = c.get(s.url("/fake?kind=unicorn")).send().await.unwrap().text().await.unwrap();
    assert!(text.contains("unknown kind") && text.contains("first_name"), "{text}");
    assert_eq!(c.get(s.url("/ok")).send().await.unwrap().status(), 200);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_injection_attempt_gives_500_and_no_second_header() {
    let s = TestServer::start(
        r#"
[[route]]
path = "/redirect"
status = 302
template = true
headers = { location = "/next?to={{ query.to }}" }
"#,
    )
    .await;
    let ok = client().get(s.url("/redirect?to=home")).send().await.unwrap();
    // reqwest follows redirects: the final answer is the 404 of /next, reached through the rendered Location.
    assert_eq!(ok.url().path(), "/next");
    // %0d%0a decodes to CR LF: the rendered value is not a valid header value.
    let text = raw(
        s.addr,
        b"GET /redirect?to=x%0d%0aSet-Cookie:%20evil=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert!(text.starts_with("HTTP/1.1 500"), "{text}");
    let head = text.split("\r\n\r\n").next().unwrap().to_ascii_lowercase();
    assert!(!head.contains("set-cookie"), "{text}");
    assert!(!head.contains("location"), "{text}");
    assert!(text.contains("not a valid header value"), "{text}");
    s.stop().await;
}

#[test]
fn a_template_syntax_error_is_a_load_error_at_its_line() {
    let text = load_error("[[route]]\npath = \"/a\"\ntemplate = true\nbody = \"\"\"\nline one\n{{ broken \n\"\"\"\n");
    assert!(text.contains("template error"), "{text}");
    assert!(text.contains("routes.toml:6:"), "the error points at the template's second line: {text}");
    let text = load_error("[[route]]\npath = \"/a\"\ntemplate = true\njson = { a = \"{% if %}\" }\n");
    assert!(text.contains("template error") && text.contains("routes.toml:4:"), "{text}");
    let text = load_error("[[route]]\npath = \"/a\"\ntemplate = true\nheaders = { x-a = \"{{ 1 + }}\" }\n");
    assert!(text.contains("template error") && text.contains("routes.toml:4:"), "{text}");
    let text = load_error("[[route]]\npath = \"/a\"\ntemplate = true\n");
    assert!(text.contains("nothing to render"), "{text}");
}
