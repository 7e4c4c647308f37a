//! `hotroute import wiremock` and `hotroute import mockoon`: a folder of WireMock stub mappings and a Mockoon
//! environment, written here in the peers' documented formats, become route files that pass `check`, and the binary
//! serving them answers as WireMock and Mockoon would for what the importers claim to convert.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::bin::Bin;

const BIN: &str = env!("CARGO_BIN_EXE_hotroute");

fn hotroute(args: &[&str], dir: &Path) -> Output {
    Command::new(BIN).args(args).current_dir(dir).output().expect("the binary runs")
}

/// Imports with the binary into `dir/routes.toml`, checks that file with the binary, and returns the importer's
/// stderr and the file.
fn import(dir: &Path, args: &[&str]) -> (String, String) {
    let mut all = vec!["import"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", "routes.toml"]);
    let out = hotroute(&all, dir);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "import failed: {stderr}");
    let routes = std::fs::read_to_string(dir.join("routes.toml")).unwrap();
    let check = hotroute(&["check", "routes.toml"], dir);
    assert!(check.status.success(), "check failed: {}\n{routes}", String::from_utf8_lossy(&check.stderr));
    (stderr, routes)
}

fn serve(dir: &Path) -> Bin {
    Bin::command().current_dir(dir).args(["routes.toml", "--port", "0", "--no-watch", "--log-level", "warn"]).start()
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().no_proxy().timeout(Duration::from_secs(10)).build().unwrap()
}

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A WireMock root: `mappings/` (a file of `mappings`, single-mapping files, a subfolder) and `__files/`, in the
/// format of WireMock's stub mapping JSON (wiremock.org/docs/stubbing, request-matching, response-templating,
/// simulating-faults, stateful-behaviour).
fn wiremock_root(dir: &Path) {
    write(
        dir,
        "mappings/users.json",
        &json!({ "mappings": [
            { "name": "a user, templated",
              "request": { "method": "GET", "urlPathTemplate": "/users/{id}" },
              "response": {
                  "status": 200,
                  "jsonBody": { "id": "{{request.path.id}}", "first": "{{request.path.[0]}}", "q": "{{request.query.q}}",
                                "code": "{{randomValue length=6 type='NUMERIC'}}", "day": "{{now format='yyyy-MM-dd'}}" },
                  "headers": { "Content-Type": "application/json", "X-Trace": "{{request.headers.X-Trace}}",
                               "X-Id": "{{randomValue type='UUID'}}" },
                  "transformers": ["response-template"] } },
            { "priority": 1,
              "request": { "method": "GET", "urlPath": "/users/admin" },
              "response": { "status": 403, "body": "admins are secret" } },
            { "request": { "method": "GET", "url": "/search?q=rust" },
              "response": { "body": "found rust" } },
            { "request": { "method": "GET", "urlPattern": "/legacy/[0-9]+" },
              "response": { "body": "legacy {{request.path.[1]}}", "transformers": ["response-template"] } },
            { "request": { "method": "GET", "urlPath": "/raw" },
              "response": { "body": "{{request.path}} stays as written without the transformer" } }
        ]})
        .to_string(),
    );
    write(
        dir,
        "mappings/orders.json",
        &json!({
            "request": {
                "method": "POST", "url": "/orders",
                "headers": { "Content-Type": { "contains": "json" }, "X-Debug": { "absent": true } },
                "bodyPatterns": [
                    { "matchesJsonPath": { "expression": "$.qty", "equalTo": "2" } },
                    { "equalToJson": { "item": "tea" }, "ignoreExtraElements": true }
                ] },
            "response": { "status": 201, "body": "made {{jsonPath request.body '$.item'}}",
                          "fixedDelayMilliseconds": 300, "transformers": ["response-template"] }
        })
        .to_string(),
    );
    write(
        dir,
        "mappings/more/files.json",
        &json!({ "mappings": [
            { "request": { "method": "GET", "urlPathPattern": "/files/[a-z]+\\.txt" },
              "response": { "bodyFileName": "hello.txt", "headers": { "Content-Type": "text/plain" } } },
            { "request": { "method": "GET", "urlPath": "/page" },
              "response": { "bodyFileName": "page.txt", "headers": { "X-Path": "{{request.path}}" },
                            "transformers": ["response-template"],
                            "transformerParameters": { "disableBodyFileTemplating": true } } },
            { "request": { "method": "GET", "urlPath": "/broken" },
              "response": { "fault": "CONNECTION_RESET_BY_PEER" } },
            { "request": { "method": "GET", "urlPath": "/b64" },
              "response": { "base64Body": "aGVsbG8gYmFzZTY0" } },
            { "request": { "urlPath": "/anything" },
              "response": { "status": 204 } },
            { "request": { "method": "GET", "urlPath": "/secure",
                           "basicAuthCredentials": { "username": "ada", "password": "s3cret" },
                           "cookies": { "session": { "equalTo": "abc" } } },
              "response": { "body": "welcome" } },
            { "request": { "method": "GET", "urlPath": "/not",
                           "queryParameters": { "q": { "doesNotMatch": "x.*" } } },
              "response": { "body": "{{#if request.query.q}}yes{{/if}}", "transformers": ["response-template"] } }
        ]})
        .to_string(),
    );
    // WireMock's to-do list scenario (wiremock.org/docs/stateful-behaviour), one mapping per file.
    write(
        dir,
        "mappings/todo-1.json",
        &json!({ "scenarioName": "To do list", "requiredScenarioState": "Started",
                 "request": { "method": "GET", "url": "/todo/items" },
                 "response": { "status": 200, "body": "<items><item>Buy milk</item></items>" } })
        .to_string(),
    );
    write(
        dir,
        "mappings/todo-2.json",
        &json!({ "scenarioName": "To do list", "requiredScenarioState": "Started",
                 "newScenarioState": "Cancel newspaper item added",
                 "request": { "method": "POST", "url": "/todo/items",
                              "bodyPatterns": [ { "contains": "Cancel newspaper subscription" } ] },
                 "response": { "status": 201 } })
        .to_string(),
    );
    write(
        dir,
        "mappings/todo-3.json",
        &json!({ "scenarioName": "To do list", "requiredScenarioState": "Cancel newspaper item added",
                 "request": { "method": "GET", "url": "/todo/items" },
                 "response": { "status": 200,
                               "body": "<items><item>Buy milk</item><item>Cancel newspaper subscription</item></items>" } })
        .to_string(),
    );
    write(dir, "__files/hello.txt", "hello from __files\n");
    write(dir, "__files/page.txt", "raw {{request.path}} {% x %} {# y #}");
}

#[test]
fn wiremock_mappings_import_check_and_answer_as_in_wiremock() {
    let dir = tempfile::tempdir().unwrap();
    wiremock_root(dir.path());
    let (stderr, routes) = import(dir.path(), &["wiremock", "mappings"]);
    assert!(stderr.contains("mappings: 16 routes"), "{stderr}");
    let bin = serve(dir.path());
    let c = client();
    let get = |path: &str| {
        let r = c.get(bin.url(path)).send().unwrap();
        (r.status().as_u16(), r.text().unwrap())
    };

    // Handlebars translated: path template, segment, query, header, random UUID.
    let r = c.get(bin.url("/users/7?q=rust")).header("X-Trace", "t-1").send().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-trace"], "t-1");
    assert_eq!(r.headers()["x-id"].to_str().unwrap().len(), 36, "a UUID");
    let mut body = r.json::<Value>().unwrap();
    let code = body["code"].take();
    let day = body["day"].take();
    assert!(code.as_str().is_some_and(|c| c.len() == 6 && c.parse::<u32>().is_ok()), "a 6-digit string: {code}");
    let day = day.as_str().unwrap().as_bytes().to_vec();
    assert!(day.len() == 10 && day[4] == b'-' && day[7] == b'-', "yyyy-MM-dd: {}", String::from_utf8_lossy(&day));
    assert_eq!(body, json!({ "id": "7", "first": "users", "q": "rust", "code": null, "day": null }));
    // A regex on the whole URL, its segment in a template.
    assert_eq!(get("/legacy/12"), (200, "legacy 12".into()));
    assert_eq!(get("/legacy/ab").0, 404);
    // Priority 1 comes before the template route although it was written after it.
    assert_eq!(get("/users/admin"), (403, "admins are secret".into()));
    // `url` with a query: the parameter must be there.
    assert_eq!(get("/search?q=rust"), (200, "found rust".into()));
    assert_eq!(get("/search?q=go").0, 404);
    // No transformer: the braces are sent as written.
    assert_eq!(get("/raw").1, "{{request.path}} stays as written without the transformer");

    // Header `contains` and `absent`, `matchesJsonPath` and `equalToJson` with extra elements, a fixed delay.
    let order = |body: Value, debug: bool| {
        let mut req = c.post(bin.url("/orders")).json(&body);
        if debug {
            req = req.header("X-Debug", "1");
        }
        let start = Instant::now();
        let r = req.send().unwrap();
        (r.status().as_u16(), r.text().unwrap(), start.elapsed())
    };
    let (status, body, took) = order(json!({ "item": "tea", "qty": 2, "note": "extra keys are fine" }), false);
    assert_eq!((status, body.as_str()), (201, "made tea"));
    assert!(took >= Duration::from_millis(300), "the delay is applied: {took:?}");
    assert_eq!(order(json!({ "item": "tea", "qty": 3 }), false).0, 404, "the JSONPath value differs");
    assert_eq!(order(json!({ "item": "coffee", "qty": 2 }), false).0, 404, "the JSON differs");
    assert_eq!(order(json!({ "item": "tea", "qty": 2 }), true).0, 404, "X-Debug must be absent");
    let text = c.post(bin.url("/orders")).body(r#"{"item":"tea","qty":2}"#).header("content-type", "text/plain");
    assert_eq!(text.send().unwrap().status(), 404, "the content type must contain json");

    // A regex on the path, a body from __files, base64, a method-less mapping answers every method.
    assert_eq!(get("/files/notes.txt"), (200, "hello from __files\n".into()));
    assert_eq!(get("/files/Notes.txt").0, 404);
    assert_eq!(get("/b64"), (200, "hello base64".into()));
    // `disableBodyFileTemplating`: the file as written, the headers still templated.
    let page = c.get(bin.url("/page")).send().unwrap();
    assert_eq!(page.headers()["x-path"], "/page");
    assert_eq!(page.text().unwrap(), "raw {{request.path}} {% x %} {# y #}");
    assert_eq!(c.delete(bin.url("/anything")).send().unwrap().status(), 204);
    assert_eq!(c.put(bin.url("/anything")).send().unwrap().status(), 204);
    // Basic auth and a cookie.
    let secure = c.get(bin.url("/secure")).basic_auth("ada", Some("s3cret")).header("cookie", "session=abc");
    assert_eq!(secure.send().unwrap().text().unwrap(), "welcome");
    let wrong = c.get(bin.url("/secure")).basic_auth("ada", Some("guess")).header("cookie", "session=abc");
    assert_eq!(wrong.send().unwrap().status(), 404);
    assert_eq!(c.get(bin.url("/secure")).basic_auth("ada", Some("s3cret")).send().unwrap().status(), 404);

    // The fault: the connection is reset, no answer.
    let err = c.get(bin.url("/broken")).send().expect_err("the connection is reset");
    assert!(!err.is_status(), "{err}");

    // The scenario moves from WireMock's "Started".
    let items = |c: &reqwest::blocking::Client| c.get(bin.url("/todo/items")).send().unwrap().text().unwrap();
    assert_eq!(items(&c), "<items><item>Buy milk</item></items>");
    assert_eq!(c.post(bin.url("/todo/items")).body("nothing").send().unwrap().status(), 404);
    let add = c.post(bin.url("/todo/items")).body("Cancel newspaper subscription").send().unwrap();
    assert_eq!(add.status(), 201);
    assert_eq!(items(&c), "<items><item>Buy milk</item><item>Cancel newspaper subscription</item></items>");

    // What has no equivalent: on stderr with its file and JSON pointer, and as a comment above its route.
    let files = Path::new("mappings").join("more").join("files.json").display().to_string();
    assert!(
        stderr.contains(&format!(
            "warning: {files}#/mappings/6/request/queryParameters/q: query parameter `q`: `doesNotMatch`"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "warning: {files}#/mappings/6/response: the template tag `{{{{#if request.query.q}}}}`"
        )),
        "{stderr}"
    );
    assert!(routes.contains("# not converted: query parameter `q`: `doesNotMatch`"), "{routes}");
    // The untranslated tags are sent as written.
    assert_eq!(get("/not"), (200, "{{#if request.query.q}}yes{{/if}}".into()));
}

#[test]
fn wiremock_routes_that_cannot_be_served_are_comments_and_the_rest_loads() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "stubs.json",
        &json!({ "mappings": [
            { "request": { "method": "GET", "urlPath": "/dup" }, "response": { "body": "first" } },
            { "request": { "method": "GET", "urlPath": "/dup" }, "response": { "body": "never" } },
            { "request": { "method": "GET", "urlPath": "/proxied" }, "response": { "proxyBaseUrl": "http://example.com" } },
            { "request": { "method": "GET", "urlPath": "/escape" }, "response": { "bodyFileName": "../secret.txt" } },
            { "request": { "method": "GET", "urlPath": "/bad-regex", "headers": { "x": { "matches": "(" } } },
              "response": { "body": "x" } }
        ]})
        .to_string(),
    );
    write(dir.path(), "secret.txt", "do not read");
    let (stderr, routes) = import(dir.path(), &["wiremock", "stubs.json"]);
    assert!(
        stderr.contains(
            "stubs.json#/mappings/1: not imported: it would never answer, the route from stubs.json#/mappings/0"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("stubs.json#/mappings/2: not imported: a proxy to http://example.com"), "{stderr}");
    assert!(stderr.contains("stubs.json#/mappings/3/response/bodyFileName:"), "{stderr}");
    assert!(stderr.contains("stubs.json#/mappings/4: not imported:"), "{stderr}");
    assert!(!routes.contains("do not read"), "{routes}");
    assert!(routes.contains("# body = \"never\""), "the refused route is kept as a comment:\n{routes}");
    let bin = serve(dir.path());
    let c = client();
    assert_eq!(c.get(bin.url("/dup")).send().unwrap().text().unwrap(), "first");
    assert_eq!(c.get(bin.url("/proxied")).send().unwrap().status(), 404);
    assert_eq!(c.get(bin.url("/escape")).send().unwrap().text().unwrap(), "");
}

/// A Mockoon environment in the shape of Mockoon's data files (`packages/commons/src/models/environment.model.ts`
/// and `route.model.ts`): an endpoint prefix, `:param` routes, rules with `OR`/`AND`, a default response, a file
/// body, sequential and random response modes, latency, headers, CORS, a data bucket and a CRUD route.
fn mockoon_env() -> Value {
    let response = |extra: Value| {
        let mut r = json!({
            "uuid": "r", "label": "", "statusCode": 200, "headers": [], "body": "", "latency": 0, "bodyType": "INLINE",
            "filePath": "", "databucketID": "", "sendFileAsBody": false, "disableTemplating": false,
            "fallbackTo404": false, "default": false, "crudKey": "id", "callbacks": [], "rulesOperator": "OR", "rules": []
        });
        r.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        r
    };
    let route = |method: &str, endpoint: &str, mode: Value, responses: Vec<Value>| {
        json!({ "uuid": endpoint, "type": "http", "documentation": "", "method": method, "endpoint": endpoint,
                "responses": responses, "responseMode": mode, "streamingMode": null, "streamingInterval": 0 })
    };
    let rule = |target: &str, modifier: &str, value: &str, operator: &str| json!({ "target": target, "modifier": modifier, "value": value, "invert": false, "operator": operator });
    json!({
        "uuid": "env", "lastMigration": 32, "name": "Shop API", "endpointPrefix": "api", "latency": 0, "port": 3001,
        "hostname": "", "folders": [], "rootChildren": [], "proxyMode": false, "proxyHost": "", "proxyRemovePrefix": false,
        "tlsOptions": { "enabled": false, "type": "CERT", "pfxPath": "", "certPath": "", "keyPath": "", "caPath": "",
                        "passphrase": "" },
        "cors": true, "headers": [ { "key": "X-Powered-By", "value": "mockoon" } ],
        "proxyReqHeaders": [], "proxyResHeaders": [],
        "data": [ { "uuid": "d1", "id": "ab12", "name": "Users", "documentation": "", "value": "[]" } ],
        "routes": [
            route("get", "users/:id", Value::Null, vec![
                response(json!({ "label": "admins", "statusCode": 403, "body": "admins are secret", "rulesOperator": "OR",
                                 "rules": [ rule("params", "id", "0", "equals"), rule("header", "X-Role", "admin", "equals") ] })),
                response(json!({ "default": true, "latency": 200,
                                 "headers": [ { "key": "Content-Type", "value": "application/json" } ],
                                 "body": "{\"id\": \"{{urlParam 'id'}}\", \"q\": \"{{queryParam 'q'}}\"}" })),
            ]),
            route("post", "orders", Value::Null, vec![
                response(json!({ "statusCode": 201, "body": "rush", "rulesOperator": "AND",
                                 "rules": [ rule("body", "order.priority", "high", "equals"), rule("query", "v", "^[0-9]+$", "regex") ] })),
                response(json!({ "statusCode": 400, "default": true, "body": "bad order" })),
            ]),
            route("get", "report", Value::Null, vec![
                response(json!({ "default": true, "bodyType": "FILE", "filePath": "files/report.json" })),
            ]),
            route("get", "flaky", json!("SEQUENTIAL"), vec![
                response(json!({ "statusCode": 503, "body": "down", "default": true })),
                response(json!({ "body": "up" })),
            ]),
            route("get", "coin", json!("RANDOM"), vec![
                response(json!({ "body": "heads", "default": true })),
                response(json!({ "body": "tails" })),
            ]),
            route("get", "rules-off", json!("DISABLE_RULES"), vec![
                response(json!({ "body": "ruled", "rules": [ rule("query", "x", "1", "equals") ] })),
                response(json!({ "body": "default", "default": true })),
            ]),
            route("get", "odd", Value::Null, vec![
                response(json!({ "body": "checked", "rules": [ rule("request_number", "", "1", "equals") ] })),
                response(json!({ "body": "default", "default": true })),
            ]),
            route("post", "echo/*", Value::Null, vec![
                response(json!({ "statusCode": 401, "body": "blocked",
                                 "rules": [ { "target": "header", "modifier": "X-Block", "value": "", "invert": true, "operator": "null" } ] })),
                response(json!({ "default": true,
                                 "body": "{{header 'X-Who'}}|{{body 'user.name'}}|{{int 7 7}}|{{method}}|{{faker 'person.firstName'}}" })),
            ]),
            route("get", "maybe", json!("FALLBACK"), vec![
                response(json!({ "body": "yes", "rules": [ rule("query", "x", "1", "equals") ] })),
                response(json!({ "body": "default", "default": true })),
            ]),
            json!({ "uuid": "crud", "type": "crud", "documentation": "", "method": "", "endpoint": "users",
                    "responses": [], "responseMode": null, "streamingMode": null, "streamingInterval": 0 }),
        ]
    })
}

#[test]
fn a_mockoon_environment_imports_checks_and_answers_as_in_mockoon() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "env.json", &serde_json::to_string_pretty(&mockoon_env()).unwrap());
    write(dir.path(), "files/report.json", r#"{"kind":"report"}"#);
    let (stderr, routes) = import(dir.path(), &["mockoon", "env.json"]);
    assert!(routes.contains("listen = \"127.0.0.1:3001\""), "{routes}");
    let bin = serve(dir.path());
    let c = client();
    let get = |path: &str| {
        let r = c.get(bin.url(path)).send().unwrap();
        (r.status().as_u16(), r.text().unwrap())
    };

    // `:id`, the endpoint prefix, the default response templated, its latency, the environment's headers, CORS.
    let start = Instant::now();
    let r = c.get(bin.url("/api/users/5?q=z")).header("origin", "http://localhost:5173").send().unwrap();
    assert!(start.elapsed() >= Duration::from_millis(200), "latency applied");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-powered-by"], "mockoon");
    assert!(r.headers().contains_key("access-control-allow-origin"), "{:?}", r.headers());
    assert_eq!(r.json::<Value>().unwrap(), json!({ "id": "5", "q": "z" }));
    // `OR` rules: a route parameter or a header.
    assert_eq!(get("/api/users/0"), (403, "admins are secret".into()));
    let admin = c.get(bin.url("/api/users/9")).header("X-Role", "admin").send().unwrap();
    assert_eq!(admin.status(), 403);
    // `AND` rules: a body property and a query regex, else the default response.
    let order = |q: &str, body: Value| {
        let r = c.post(bin.url(&format!("/api/orders{q}"))).json(&body).send().unwrap();
        (r.status().as_u16(), r.text().unwrap())
    };
    assert_eq!(order("?v=12", json!({ "order": { "priority": "high" } })), (201, "rush".into()));
    assert_eq!(order("?v=ab", json!({ "order": { "priority": "high" } })), (400, "bad order".into()));
    assert_eq!(order("?v=12", json!({ "order": { "priority": "low" } })), (400, "bad order".into()));
    // A file body, with a content type from its extension.
    let report = c.get(bin.url("/api/report")).send().unwrap();
    assert_eq!(report.headers()["content-type"], "application/json");
    assert_eq!(report.text().unwrap(), r#"{"kind":"report"}"#);
    // SEQUENTIAL: each response in turn, then again.
    let flaky: Vec<(u16, String)> = (0..3).map(|_| get("/api/flaky")).collect();
    assert_eq!(flaky, [(503, "down".into()), (200, "up".into()), (503, "down".into())]);
    // RANDOM: both answers come (two in 2^60 that one never does).
    let coins: std::collections::HashSet<String> = (0..60).map(|_| get("/api/coin").1).collect();
    assert_eq!(coins, ["heads".to_owned(), "tails".to_owned()].into());
    // DISABLE_RULES: the default response only.
    assert_eq!(get("/api/rules-off?x=1").1, "default");
    // A last `*`, Mockoon's helpers, a header's presence (`null` inverted).
    let echo = |block: bool| {
        let mut req =
            c.post(bin.url("/api/echo/a/b")).header("X-Who", "ada").json(&json!({ "user": { "name": "Ada" } }));
        if block {
            req = req.header("X-Block", "1");
        }
        let r = req.send().unwrap();
        (r.status().as_u16(), r.text().unwrap())
    };
    let (status, text) = echo(false);
    assert_eq!(status, 200);
    let parts: Vec<&str> = text.split('|').collect();
    assert_eq!(parts[..4], ["ada", "Ada", "7", "POST"], "{text}");
    assert!(!parts[4].is_empty(), "a fake first name: {text}");
    assert_eq!(echo(true), (401, "blocked".into()));
    // FALLBACK: no default response, a request no rule takes goes on (here: to the 404).
    assert_eq!(get("/api/maybe?x=1"), (200, "yes".into()));
    assert_eq!(get("/api/maybe?x=2").0, 404);
    // A route Mockoon serves and hotroute has not got: 404.
    assert_eq!(get("/api/users").0, 404);

    let notes = [
        "env.json#/data/0: the data bucket `Users` is not converted",
        "env.json#/routes/9: the CRUD route `users` has no responses, so no data bucket; not converted",
        "env.json#/routes/6/responses/0: not imported: the rule `request_number equals 1`",
        "env.json#/routes/5/responses/0: the route's rules are disabled",
    ];
    for n in notes {
        assert!(stderr.contains(&format!("warning: {n}")), "{n}\n{stderr}");
    }
}

/// A Mockoon environment with data buckets (`data`: `id`, `name`, `value` as JSON text) in the shape of Mockoon's
/// models: two CRUD routes (`type: "crud"`, the default response's `databucketID` and `crudKey`), a `DATABUCKET` body,
/// a whole-body `{{data 'Name'}}`, and buckets that cannot be converted (templated, not an array for CRUD).
fn mockoon_buckets_env() -> Value {
    let response = |extra: Value| {
        let mut r = json!({
            "uuid": "r", "label": "", "statusCode": 200, "headers": [], "body": "", "latency": 0, "bodyType": "INLINE",
            "filePath": "", "databucketID": "", "sendFileAsBody": false, "disableTemplating": false,
            "fallbackTo404": false, "default": true, "crudKey": "id", "callbacks": [], "rulesOperator": "OR", "rules": []
        });
        r.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        r
    };
    let route = |kind: &str, method: &str, endpoint: &str, responses: Vec<Value>| {
        json!({ "uuid": endpoint, "type": kind, "documentation": "", "method": method, "endpoint": endpoint,
                "responses": responses, "responseMode": null, "streamingMode": null, "streamingInterval": 0 })
    };
    let bucket = |id: &str, name: &str, value: Value| {
        let value = if let Value::String(s) = value { s } else { serde_json::to_string_pretty(&value).unwrap() };
        json!({ "uuid": format!("u-{id}"), "id": id, "name": name, "documentation": "", "value": value })
    };
    json!({
        "uuid": "env", "lastMigration": 32, "name": "Buckets", "endpointPrefix": "api/v1", "latency": 0, "port": 3002,
        "hostname": "", "folders": [], "rootChildren": [], "proxyMode": false, "proxyHost": "", "proxyRemovePrefix": false,
        "tlsOptions": { "enabled": false, "type": "CERT", "pfxPath": "", "certPath": "", "keyPath": "", "caPath": "",
                        "passphrase": "" },
        "cors": false, "headers": [ { "key": "Content-Type", "value": "application/json" } ],
        "proxyReqHeaders": [], "proxyResHeaders": [],
        "data": [
            bucket("us01", "Users", json!([ { "id": 1, "name": "Ada", "team": null }, { "id": 2, "name": "Grace" } ])),
            // A control character in a name that goes into a comment: TOML comments may hold none.
            bucket("pr01", "Products\u{0}", json!([ { "sku": "p-1", "title": "Lamp" } ])),
            bucket("cf01", "Settings", json!({ "theme": "dark", "beta": true })),
            bucket("tp01", "Random", json!("[{\"id\": \"{{faker 'string.uuid'}}\"}]")),
            bucket("un01", "Unused", json!([])),
        ],
        "routes": [
            route("crud", "", "users", vec![response(json!({ "databucketID": "us01" }))]),
            route("crud", "", "products", vec![response(json!({ "databucketID": "pr01", "crudKey": "sku", "latency": 50 }))]),
            route("http", "get", "settings", vec![response(json!({ "bodyType": "DATABUCKET", "databucketID": "cf01" }))]),
            route("http", "get", "settings-by-name", vec![response(json!({ "body": "{{data 'Settings'}}" }))]),
            route("http", "get", "random", vec![response(json!({ "bodyType": "DATABUCKET", "databucketID": "tp01" }))]),
            route("http", "get", "nobucket", vec![response(json!({ "body": "{{data 'Nope'}}" }))]),
            route("crud", "", "settings-crud", vec![response(json!({ "databucketID": "cf01" }))]),
            // Mockoon answers with the first of routes on one path; hotroute refuses both on one path.
            route("http", "get", "users", vec![response(json!({ "body": "shadowed" }))]),
            route("http", "get", "orders", vec![response(json!({ "body": "[\"the orders route\"]" }))]),
            route("crud", "", "orders", vec![response(json!({ "databucketID": "pr01" }))]),
        ]
    })
}

#[test]
fn mockoon_data_buckets_become_resources_and_bodies_that_answer_as_in_mockoon() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "env.json", &serde_json::to_string_pretty(&mockoon_buckets_env()).unwrap());
    let (stderr, routes) = import(dir.path(), &["mockoon", "env.json"]);
    assert!(routes.contains("[[resource]]\npath = \"/api/v1/users\"\n"), "{routes}");
    assert!(routes.contains("id = \"sku\""), "the crudKey is the id field: {routes}");
    let bin = serve(dir.path());
    let c = client();
    let url = |p: &str| bin.url(&format!("/api/v1{p}"));
    let get = |p: &str| {
        let r = c.get(url(p)).send().unwrap();
        let status = r.status().as_u16();
        (status, r.json::<Value>().unwrap_or(Value::Null))
    };

    // GET the list, GET by id (the `null` field left out, as TOML has none), an unknown id.
    let (status, list) = get("/users");
    assert_eq!(status, 200);
    assert_eq!(list, json!([ { "id": 1, "name": "Ada" }, { "id": 2, "name": "Grace" } ]));
    assert_eq!(get("/users/2"), (200, json!({ "id": 2, "name": "Grace" })));
    assert_eq!(get("/users/9").0, 404);
    // POST creates the item with a new id; GET finds it, and the list has it.
    let created = c.post(url("/users")).json(&json!({ "name": "Linus" })).send().unwrap();
    assert_eq!(created.status(), 201);
    let item: Value = created.json().unwrap();
    assert_eq!(item["name"], "Linus");
    let id = item["id"].to_string();
    assert_eq!(get(&format!("/users/{id}")), (200, item.clone()));
    assert_eq!(get("/users").1.as_array().unwrap().len(), 3);
    // PUT replaces an item; DELETE removes it, then GET is a 404.
    let put = c.put(url("/users/1")).json(&json!({ "name": "Ada L." })).send().unwrap();
    assert!(put.status().is_success(), "{}", put.status());
    assert_eq!(get("/users/1"), (200, json!({ "id": 1, "name": "Ada L." })));
    let deleted = c.delete(url("/users/1")).send().unwrap();
    assert!(deleted.status().is_success(), "{}", deleted.status());
    assert_eq!(get("/users/1").0, 404);
    assert_eq!(get("/users").1.as_array().unwrap().len(), 2);
    // The `crudKey` names the id field.
    assert_eq!(get("/products/p-1"), (200, json!({ "sku": "p-1", "title": "Lamp" })));

    // A `DATABUCKET` body and a whole-body `{{data 'Name'}}`: the bucket's JSON.
    let settings = json!({ "theme": "dark", "beta": true });
    let r = c.get(url("/settings")).send().unwrap();
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(r.json::<Value>().unwrap(), settings);
    assert_eq!(get("/settings-by-name"), (200, settings));
    // A templated bucket is not converted: the route answers with no body, and a note says where.
    let r = c.get(url("/random")).send().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().unwrap(), "");
    // A CRUD route over a bucket that is not an array is not served.
    assert_eq!(c.get(url("/settings-crud")).send().unwrap().status(), 404);

    // Of a route and a collection on one path, the first in the environment answers, as in Mockoon.
    assert_eq!(get("/orders"), (200, json!(["the orders route"])));

    let notes = [
        "env.json#/data/0/value: fields holding `null` are left out (TOML has no null)",
        "env.json#/routes/7/responses/0: not imported: the collection from env.json#/routes/0 answers `/api/v1/users`",
        "env.json#/routes/9: not imported: an earlier route or collection answers `/api/v1/orders`",
        "env.json#/routes/1/responses/0/latency: latency on a CRUD route is not converted",
        "env.json#/routes/5/responses/0/body: no data bucket has the id or name `Nope`; answers with no body",
        "env.json#/routes/4/responses/0/databucketID: the data bucket `Random` (env.json#/data/3/value) is templated",
        "env.json#/routes/6/responses/0/databucketID: the CRUD route `settings-crud`: the data bucket `Settings` \
         (env.json#/data/2/value) is not a JSON array of objects",
        "env.json#/data/4: the data bucket `Unused` is not converted: no route refers to it",
    ];
    for n in notes {
        assert!(stderr.contains(&format!("warning: {n}")), "{n}\n{stderr}");
    }
    for converted in ["env.json#/data/0:", "env.json#/data/1", "env.json#/data/2:"] {
        assert!(!stderr.contains(converted), "{converted} is converted:\n{stderr}");
    }
}

#[test]
fn unreadable_and_malformed_sources_are_refused_saying_where() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "bad/mappings/ok.json", r#"{"request": {"urlPath": "/a"}, "response": {}}"#);
    write(d, "bad/mappings/broken.json", "{\n  \"request\": {\n    \"urlPath\": \"/a\",,\n  }\n}");
    write(d, "notmapping.json", r#"{"hello": "world"}"#);
    write(d, "badlist.json", r#"{"mappings": {"request": {}}}"#);
    write(d, "env-bad.json", "{ \"routes\": [\n  1,\n}");
    write(d, "env-nothing.json", r#"{"name": "not an environment"}"#);
    std::fs::create_dir_all(d.join("empty")).unwrap();
    let broken = Path::new("bad").join("mappings").join("broken.json").display().to_string();
    let cases: [(&[&str], &str); 9] = [
        (&["wiremock", "missing"], "cannot read `missing`: No such file or directory"),
        (&["wiremock", "bad"], &format!("{broken}:3:21: not valid JSON")),
        (&["wiremock", "notmapping.json"], "notmapping.json: not a WireMock stub mapping"),
        (&["wiremock", "badlist.json"], "badlist.json: `mappings` is not a list"),
        (&["wiremock", "empty"], "empty: no `.json` files in this folder"),
        (&["mockoon", "missing.json"], "cannot read `missing.json`: No such file or directory"),
        (&["mockoon", "empty"], "cannot read `empty`: Is a directory"),
        (&["mockoon", "env-bad.json"], "env-bad.json:3:1: not valid JSON"),
        (&["mockoon", "env-nothing.json"], "env-nothing.json: not a Mockoon environment: no `routes` list"),
    ];
    for (args, want) in cases {
        let mut all = vec!["import"];
        all.extend_from_slice(args);
        let out = hotroute(&all, d);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(want), "{args:?}: want {want:?} in:\n{stderr}");
        assert!(stderr.contains("help: "), "{args:?} says what to do:\n{stderr}");
        assert!(out.stdout.is_empty(), "{args:?} writes no routes");
    }
}

/// JSON values built from the peers' own vocabulary (keys and the values they take), nested a few levels, so that
/// the generated mappings and environments reach the converters' odd corners rather than stopping at the top.
fn peer_json() -> impl proptest::strategy::Strategy<Value = Value> {
    use proptest::prelude::*;
    const KEYS: &[&str] = &[
        "request",
        "response",
        "mappings",
        "url",
        "urlPath",
        "urlPattern",
        "urlPathPattern",
        "urlPathTemplate",
        "method",
        "queryParameters",
        "headers",
        "cookies",
        "bodyPatterns",
        "equalTo",
        "contains",
        "matches",
        "absent",
        "caseInsensitive",
        "equalToJson",
        "matchesJsonPath",
        "expression",
        "status",
        "body",
        "jsonBody",
        "base64Body",
        "bodyFileName",
        "fixedDelayMilliseconds",
        "delayDistribution",
        "fault",
        "priority",
        "scenarioName",
        "requiredScenarioState",
        "newScenarioState",
        "transformers",
        "routes",
        "endpoint",
        "endpointPrefix",
        "responses",
        "rules",
        "target",
        "modifier",
        "value",
        "operator",
        "invert",
        "rulesOperator",
        "responseMode",
        "statusCode",
        "latency",
        "bodyType",
        "filePath",
        "default",
        "key",
        "type",
        "data",
        "cors",
        "port",
        "databucketID",
        "crudKey",
        "id",
        "name",
        "x",
    ];
    const STRINGS: &[&str] = &[
        "",
        "/",
        "/a/{id}",
        "/{*x}",
        "a/:id",
        ":",
        "*",
        "users/*",
        "(",
        ".*",
        "GET",
        "ANY",
        "get",
        "all",
        "Started",
        "{{request.path.[0]}}",
        "{{#if}}",
        "{{now format='x'}}",
        "{{urlParam 'id'}}",
        "{{",
        "}}",
        "{%",
        "$.a",
        "$[?(@.a)]",
        "a.b.0",
        "response-template",
        "CONNECTION_RESET_BY_PEER",
        "FILE",
        "DATABUCKET",
        "crud",
        "{{data 'x y'}}",
        "SEQUENTIAL",
        "RANDOM",
        "AND",
        "OR",
        "body",
        "query",
        "header",
        "params",
        "cookie",
        "path",
        "equals",
        "regex",
        "null",
        "aGk=",
        "%%%",
        "\u{0}",
        "é/ü",
        "x-y",
        "x y",
        "Content-Type",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        prop_oneof![Just(-1i64), Just(0), Just(200), Just(404), Just(1000), Just(i64::MAX)].prop_map(Value::from),
        prop::sample::select(STRINGS).prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
        ]
    })
}

#[test]
fn generated_mappings_and_environments_import_to_files_that_load_or_are_refused_never_a_panic() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, FileFailurePersistence};
    let config =
        Config { cases: 128, failure_persistence: Some(Box::new(FileFailurePersistence::Off)), ..Config::default() };
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("mappings")).unwrap();
    std::fs::create_dir_all(dir.path().join("__files")).unwrap();
    std::fs::write(dir.path().join("__files/a"), "a body").unwrap();
    proptest!(config, |(a in peer_json(), b in peer_json(), c in peer_json())| {
        // The generated values where each format puts them, and as whole documents.
        let mappings = json!({ "mappings": [
            { "request": a, "response": b, "scenarioName": "s", "requiredScenarioState": c },
            { "request": b, "response": c, "priority": a },
            a.clone(),
        ]});
        let env = json!({
            "endpointPrefix": c, "headers": [ { "key": "x", "value": b }, { "key": c, "value": "v" } ], "cors": a, "port": b,
            "data": [ { "id": "x y", "name": "x", "value": a.to_string() }, c.clone() ],
            "routes": [
                { "type": "crud", "endpoint": c, "responses": [ { "databucketID": "x y", "crudKey": b } ] },
                { "type": "http", "method": "get", "endpoint": "u/:id", "responses": [a, b], "responseMode": c },
                { "type": "http", "method": b, "endpoint": a, "responses": [c] },
                a.clone(),
            ],
        });
        for (text, whole) in [(mappings, a.clone()), (env.clone(), b.clone())] {
            for doc in [text, whole] {
                let file = dir.path().join("mappings/m.json");
                std::fs::write(&file, doc.to_string()).unwrap();
                for result in [hotroute::import::wiremock_path(&file), hotroute::import::mockoon(&doc.to_string(), "env.json")] {
                    // Refusing a source is fine (it says why), but not as the importer's own bug; a file it writes
                    // must load as `hotroute check` loads it.
                    match result {
                        Ok(imported) => {
                            if let Err(e) = hotroute::Router::load_str(&imported.routes, Path::new("routes.toml"), dir.path()) {
                                panic!("the imported routes do not load:\n{e}\n{}", imported.routes);
                            }
                        }
                        Err(e @ hotroute::ImportError::Internal { .. }) => panic!("{e}\nfrom {doc}"),
                        Err(_) => {}
                    }
                }
            }
        }
    });
}
