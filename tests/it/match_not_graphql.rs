//! `[route.match]` conditions of issue 16's second round: `not = { ... }`, `form` on `multipart/form-data` bodies,
//! and `graphql = { operation, variables }` over POST and GET, with a real client; the near-miss 404 that names each,
//! and load errors with line and column.

use crate::common;

use common::{TestServer, client, load_error};

const ROUTES: &str = r#"
[[route]]
path = "/items"
match = { not = { query = { debug = "1" } } }
body = "plain items"

[[route]]
path = "/items"
body = "debug items"

[[route]]
path = "/admin"
match = { not = { headers = { x-role = "admin" }, query = { force = "1" } } }
status = 403
body = "not both"

[[route]]
method = "POST"
path = "/upload"
match = { form = { kind = "avatar", user = "ada" } }
body = "avatar of ada"

[[route]]
method = ["GET", "POST"]
path = "/graphql"
match = { graphql = { operation = "GetUser", variables = { id = "1" } } }
json = { data = { user = { id = "1", name = "Ada" } } }

[[route]]
method = ["POST"]
path = "/graphql"
match = { graphql = { operation = "AddUser" } }
json = { data = { addUser = { id = "2" } } }
"#;

#[tokio::test]
async fn not_negates_a_whole_condition_table() {
    let server = TestServer::start(ROUTES).await;
    let c = client();
    let get = |url: String| {
        let c = c.clone();
        async move { c.get(url).send().await.unwrap().text().await.unwrap() }
    };
    assert_eq!(get(server.url("/items")).await, "plain items");
    assert_eq!(get(server.url("/items?debug=0")).await, "plain items");
    assert_eq!(get(server.url("/items?debug=1")).await, "debug items");

    // `not` with two conditions: the route answers unless both hold.
    let admin = |role: &'static str, q: &'static str| {
        let c = c.clone();
        let url = server.url(&format!("/admin{q}"));
        async move { c.get(url).header("x-role", role).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(admin("user", "?force=1").await, 403);
    assert_eq!(admin("admin", "").await, 403);
    let both = c.get(server.url("/admin?force=1")).header("x-role", "admin").send().await.unwrap();
    assert_eq!(both.status(), 404);
    let text = both.text().await.unwrap();
    assert!(text.contains("the request meets the route's `not` conditions (query `force`, header `x-role`)"), "{text}");
    server.stop().await;
}

#[tokio::test]
async fn form_matches_multipart_bodies_from_a_real_client() {
    let server = TestServer::start(ROUTES).await;
    let c = client();
    let form = reqwest::multipart::Form::new()
        .text("user", "ada")
        .part("kind", reqwest::multipart::Part::text("avatar"))
        .part("file", reqwest::multipart::Part::bytes(vec![0u8, 159, 146, 150]).file_name("a.png"));
    let res = c.post(server.url("/upload")).multipart(form).send().await.unwrap();
    assert_eq!(res.text().await.unwrap(), "avatar of ada");

    let form = reqwest::multipart::Form::new().text("user", "ada").text("kind", "banner");
    let res = c.post(server.url("/upload")).multipart(form).send().await.unwrap();
    assert_eq!(res.status(), 404);
    let text = res.text().await.unwrap();
    assert!(text.contains("form field `kind` is `banner`, the route wants `avatar`"), "{text}");

    // A multipart content type whose body is not multipart: no fields, no panic.
    let res = c
        .post(server.url("/upload"))
        .header("content-type", "multipart/form-data; boundary=XYZ")
        .body("--XYZ\r\nnot a part")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let text = res.text().await.unwrap();
    assert!(text.contains("form field `kind` is missing"), "{text}");
    server.stop().await;
}

#[tokio::test]
async fn graphql_matches_the_operation_and_variables_over_post_and_get() {
    let server = TestServer::start(ROUTES).await;
    let c = client();
    let query = "# a comment: query Fake\nquery GetUser($id: ID!) { user(id: $id) { id name } }";
    // POST with the name only in the document.
    let res = c
        .post(server.url("/graphql"))
        .json(&serde_json::json!({ "query": query, "variables": { "id": "1", "extra": true } }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<serde_json::Value>().await.unwrap()["data"]["user"]["name"], "Ada");

    // POST with `operationName` choosing among several operations.
    let doc = "query GetUser($id: ID!) { user(id: $id) { id } } mutation AddUser { addUser { id } }";
    let res = c
        .post(server.url("/graphql"))
        .json(&serde_json::json!({ "query": doc, "operationName": "AddUser" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.json::<serde_json::Value>().await.unwrap()["data"]["addUser"]["id"], "2");

    // GET with query parameters.
    let res = c
        .get(format!(
            "{}?{}",
            server.url("/graphql"),
            form_urlencoded::Serializer::new(String::new())
                .append_pair("query", query)
                .append_pair("variables", r#"{"id":"1"}"#)
                .finish()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // Wrong variables: the near-miss 404 says what they are.
    let res = c
        .post(server.url("/graphql"))
        .json(&serde_json::json!({ "query": query, "variables": { "id": "2" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let text = res.text().await.unwrap();
    assert!(text.contains(r#"the GraphQL variables are {"id":"2"}, the route wants {"id":"1"}"#), "{text}");

    // Another operation, and a request that is not GraphQL at all.
    let res = c
        .post(server.url("/graphql"))
        .json(&serde_json::json!({ "query": "query ListUsers { users { id } }" }))
        .send()
        .await
        .unwrap();
    let text = res.text().await.unwrap();
    assert!(text.contains("the GraphQL operation is `ListUsers`, the route wants `GetUser`"), "{text}");
    let res = c.post(server.url("/graphql")).body("hello").send().await.unwrap();
    let text = res.text().await.unwrap();
    assert!(text.contains("the route wants a GraphQL request"), "{text}");
    server.stop().await;
}

#[test]
fn bad_not_graphql_values_are_load_errors_with_line_and_column() {
    let route = |m: &str| format!("[[route]]\npath = \"/a\"\nmatch = {m}\n");
    let cases = [
        ("{ not = { not = { query = { a = \"1\" } } } }", "a `not` inside `not` is not allowed", "3:25"),
        ("{ not = { chance = 0.5 } }", "`chance` inside `not` is not allowed", "3:28"),
        ("{ not = {} }", "the `match` table has no conditions", "3:17"),
        ("{ not = { query = { a = 1 } } }", "`a = 1` is a number, but `a` takes text", "3:33"),
        ("{ not = { quer = { a = \"1\" } } }", "unknown field `quer`", "3:19"),
        ("{ graphql = { operation = \"Get User\" } }", "`Get User` is not a GraphQL operation name", "3:35"),
        ("{ graphql = { variables = 3 } }", "`variables` is not a table", "3:35"),
        ("{ graphql = {} }", "the `graphql` condition is empty", "3:21"),
        ("{ graphql = { operation = \"A\", vars = {} } }", "unknown field `vars`", "3:40"),
    ];
    for (m, want, place) in cases {
        let text = load_error(&route(m));
        assert!(text.contains(want) && text.contains(&format!("routes.toml:{place}")), "{m}:\n{text}");
    }
}
