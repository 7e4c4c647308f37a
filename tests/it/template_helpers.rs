//! The template helpers of issue 16: Python's string methods (minijinja-contrib's pycompat), `b64encode` /
//! `b64decode`, `sha256` and `fromjson`, rendered per request by a real server for a real client, and their errors.

use crate::common;

use common::{TestServer, client};

const ROUTES: &str = r#"
[[route]]
path = "/py/{name}"
template = true
body = "{{ path.name.upper() }} {{ path.name.startswith('ad') }} {{ 'a,b,c'.split(',') | join('-') }} {{ '  x '.strip() }} {{ path.name.replace('a', 'A') }}"

[[route]]
path = "/b64/{text}"
template = true
body = "{{ path.text | b64encode }} {{ path.text | b64encode | b64decode }}"

[[route]]
path = "/auth"
template = true
body = "{{ (headers.authorization | replace('Basic ', '') | b64decode).split(':')[0] }}"

[[route]]
path = "/sha"
template = true
body = "{{ 'abc' | sha256 }}"

[[route]]
method = "POST"
path = "/fromjson"
template = true
json = { name = "{{ (query.payload | fromjson).user.name }}", n = "{{ (query.payload | fromjson).n + 1 }}" }

[[route]]
method = "POST"
path = "/echo"
template = true
body = "{{ json }}"

[[route]]
path = "/bad64"
template = true
body = "{{ 'not base64!' | b64decode }}"

[[route]]
path = "/badjson"
template = true
body = "{{ '{oops' | fromjson }}"
"#;

#[tokio::test]
async fn string_methods_base64_sha256_and_fromjson() {
    let server = TestServer::start(ROUTES).await;
    let c = client();
    let text = |path: &str| {
        let (c, url) = (c.clone(), server.url(path));
        async move { c.get(url).send().await.unwrap().text().await.unwrap() }
    };
    assert_eq!(text("/py/ada").await, "ADA True a-b-c x AdA");
    assert_eq!(text("/b64/hello").await, "aGVsbG8= hello");
    assert_eq!(text("/sha").await, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    let auth = c.get(server.url("/auth")).header("authorization", "Basic YWRhOnNlY3JldA==").send().await.unwrap();
    assert_eq!(auth.text().await.unwrap(), "ada");

    let payload = r#"{"user":{"name":"Ada"},"n":41}"#;
    let url = format!("{}?payload={}", server.url("/fromjson"), percent(payload));
    let res = c.post(url).send().await.unwrap();
    assert_eq!(res.json::<serde_json::Value>().await.unwrap(), serde_json::json!({"name": "Ada", "n": 42}));

    // Bad input answers 500 saying what is wrong.
    let res = c.get(server.url("/bad64")).send().await.unwrap();
    assert_eq!(res.status(), 500);
    let t = res.text().await.unwrap();
    assert!(t.contains("b64decode: `not base64!` is not base64"), "{t}");
    let res = c.get(server.url("/badjson")).send().await.unwrap();
    assert_eq!(res.status(), 500);
    let t = res.text().await.unwrap();
    assert!(t.contains("fromjson: `{oops` is not JSON"), "{t}");
    server.stop().await;
}

/// Light templates (no statements) render on the async worker itself: one that prints the deepest JSON body serde
/// accepts must not overflow that worker's stack, in the binary.
#[tokio::test]
async fn a_light_template_printing_a_deeply_nested_body_answers_in_the_binary() {
    let bin = crate::support::bin::Bin::start(ROUTES);
    let c = client();
    let depth = 120;
    let body = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
    for _ in 0..20 {
        let res = c.post(bin.url("/echo")).body(body.clone()).send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.text().await.unwrap(), body);
    }
}

fn percent(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
