//! `[server] openapi` and `--openapi`: an OpenAPI document served directly (after the route file's routes, hot
//! reloaded), `openapi_validate` checking each request against its operation, and the load warning for a route
//! whose JSON does not fit its operation's response schema. All against the binary.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::import::{PETSTORE, SHOP_31, SHOP_SCHEMAS};
use crate::support::bin::Bin;

/// A 3.0 document with one operation per kind of check: path, query and header parameters, and a JSON body with a
/// required field, an enum, `additionalProperties: false` and a `nullable` field.
const ITEMS: &str = r##"openapi: 3.0.3
info: { title: Items, version: "1" }
paths:
  /items/{itemId}:
    get:
      parameters:
        - { name: itemId, in: path, required: true, schema: { type: integer, minimum: 1 } }
        - { name: limit, in: query, required: true, schema: { type: integer, maximum: 50 } }
        - { name: X-Request-Id, in: header, required: true, schema: { type: string } }
      responses:
        "200": { description: ok, content: { application/json: { example: { id: 1 } } } }
  /items:
    post:
      requestBody:
        required: true
        content:
          application/json:
            schema: { $ref: '#/components/schemas/NewItem' }
      responses:
        "201": { description: created, content: { application/json: { example: { id: 2, name: made } } } }
components:
  schemas:
    NewItem:
      type: object
      required: [name, kind]
      additionalProperties: false
      properties:
        name: { type: string }
        kind: { type: string, enum: [tool, toy] }
        price: { type: number, nullable: true }
"##;

/// Starts the binary in a fresh folder holding `files` and `routes.toml`, watching it (hot reload) unless `args`
/// says `--no-watch`.
fn start(routes: &str, files: &[(&str, &str)], args: &[&str]) -> Bin {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("routes.toml"), routes).unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    Bin::command().in_dir(dir).args(["routes.toml", "--port", "0", "--log-level", "warn"]).args(args).start()
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().timeout(Duration::from_secs(10)).no_proxy().build().unwrap()
}

fn get(bin: &Bin, path: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut req = client().get(bin.url(path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = req.send().unwrap();
    let status = res.status().as_u16();
    let text = res.text().unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn post(bin: &Bin, path: &str, content_type: &str, body: &str) -> (u16, Value) {
    let res = client().post(bin.url(path)).header("content-type", content_type).body(body.to_owned()).send().unwrap();
    let status = res.status().as_u16();
    let text = res.text().unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// The `(pointer, rule, schema)` of each problem of a refused request.
fn problems(answer: &Value) -> Vec<(String, String, String)> {
    answer["problems"]
        .as_array()
        .unwrap_or_else(|| panic!("no problems list in {answer}"))
        .iter()
        .map(|p| {
            let s = |k: &str| p[k].as_str().unwrap_or_default().to_owned();
            (s("pointer"), s("rule"), s("schema"))
        })
        .collect()
}

/// Polls `path` until its JSON answer is `want`, for at most 10 s.
fn until_answer(bin: &Bin, path: &str, want: &Value) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, got) = get(bin, path, &[]);
        if &got == want {
            return;
        }
        assert!(Instant::now() < deadline, "{path} still answers {got}, not {want}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn write(dir: &Path, name: &str, text: &str) {
    // Written beside and renamed over, as editors save: the watcher never reads half a file.
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, dir.join(name)).unwrap();
}

#[test]
fn the_petstore_is_served_directly_from_server_openapi() {
    let bin = start("[server]\nopenapi = \"petstore.yaml\"\n", &[("petstore.yaml", PETSTORE)], &["--no-watch"]);
    let (status, pet) = get(&bin, "/api/v3/pet/10", &[]);
    assert_eq!(status, 200);
    assert_eq!(pet["name"], "doggie", "{pet}");
    let (status, _) = get(&bin, "/api/v3/pet/10", &[("prefer", "code=404")]);
    assert_eq!(status, 404);
    let (status, _) = get(&bin, "/api/v3/store/inventory", &[]);
    assert_eq!(status, 200);
}

#[test]
fn a_31_document_with_refs_to_a_sibling_file_is_served_with_the_openapi_flag() {
    let files = [("shop.json", SHOP_31), ("schemas.yaml", SHOP_SCHEMAS)];
    let bin = start("route = []\n", &files, &["--no-watch", "--openapi", "shop.json"]);
    let (status, cat) = get(&bin, "/shop/v2/animals/1", &[]);
    assert_eq!((status, cat), (200, json!({"kind": "cat", "name": "Tom", "lives": 9})));
    let (_, dog) = get(&bin, "/shop/v2/animals/1", &[("prefer", "example=dog")]);
    assert_eq!(dog, json!({"kind": "dog", "name": "Rex", "good": true}));
    // Generated from the sibling file's schema.
    let (_, all) = get(&bin, "/shop/v2/animals", &[]);
    assert_eq!(all.as_array().map(Vec::len), Some(2), "{all}");
}

#[test]
fn a_route_of_the_route_file_overrides_one_operation_and_the_others_are_served() {
    let routes = r#"
[server]
openapi = "petstore.yaml"

[[route]]
path = "/api/v3/pet/{id}"
json = { id = 7, name = "mine", photoUrls = [] }
"#;
    let bin = start(routes, &[("petstore.yaml", PETSTORE)], &["--no-watch"]);
    let (status, pet) = get(&bin, "/api/v3/pet/7", &[]);
    assert_eq!((status, pet["name"].as_str()), (200, Some("mine")));
    // The document's other operations on that path, and on other paths, still answer.
    let res = client().delete(bin.url("/api/v3/pet/7")).send().unwrap();
    assert_eq!(res.status().as_u16(), 400, "deletePet answers its only documented response");
    let (status, _) = get(&bin, "/api/v3/store/inventory", &[]);
    assert_eq!(status, 200);
}

#[test]
fn a_saved_spec_is_served_and_a_broken_save_keeps_the_last_good_one() {
    let spec = |v: u32| {
        format!(
            "openapi: 3.0.3\ninfo: {{ title: T, version: '1' }}\npaths:\n  /hello:\n    get:\n      responses:\n        \
             '200': {{ description: ok, content: {{ application/json: {{ examples: {{ a: {{ $ref: 'ex.yaml#/hello' }} }} }} }} }}\n  \
             /v:\n    get:\n      responses:\n        '200': {{ description: ok, content: {{ application/json: {{ example: {{ v: {v} }} }} }} }}\n"
        )
    };
    let mut bin = start(
        "[server]\nopenapi = \"spec.yaml\"\n",
        &[("spec.yaml", &spec(1)), ("ex.yaml", "hello: { value: { hi: 1 } }\n")],
        &[],
    );
    let dir = bin.dir.path().to_path_buf();
    assert_eq!(get(&bin, "/v", &[]), (200, json!({"v": 1})));
    write(&dir, "spec.yaml", &spec(2));
    until_answer(&bin, "/v", &json!({"v": 2}));
    // A file a `$ref` names is watched too.
    write(&dir, "ex.yaml", "hello: { value: { hi: 2 } }\n");
    until_answer(&bin, "/hello", &json!({"hi": 2}));

    write(&dir, "spec.yaml", "openapi: 3.0.3\npaths: [unclosed\n");
    let line = bin.line("the reload error", |l| l.contains("spec.yaml") && l.contains("YAML"));
    assert!(line.contains("OpenAPI document"), "{line}");
    assert_eq!(get(&bin, "/v", &[]), (200, json!({"v": 2})), "the last good document keeps serving");
    write(&dir, "spec.yaml", &spec(3));
    until_answer(&bin, "/v", &json!({"v": 3}));
}

#[test]
fn a_broken_spec_at_start_is_a_load_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("routes.toml"), "[server]\nopenapi = \"missing.yaml\"\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hotroute"))
        .args(["check", "routes.toml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("missing.yaml") && stderr.contains("help:"), "{stderr}");
}

#[test]
fn parameters_that_break_their_schema_are_refused_with_their_pointer() {
    let routes = "[server]\nopenapi = \"items.yaml\"\nopenapi_validate = \"enforce\"\n";
    let bin = start(routes, &[("items.yaml", ITEMS)], &["--no-watch"]);
    let id = [("x-request-id", "r1")];
    assert_eq!(get(&bin, "/items/3?limit=5", &id), (200, json!({"id": 1})));

    let (status, answer) = get(&bin, "/items/3?limit=5", &[]);
    assert_eq!(status, 422);
    assert_eq!(answer["operation"], "./items.yaml#/paths/~1items~1{itemId}/get");
    assert_eq!(
        problems(&answer),
        [(
            "/header/x-request-id".into(),
            "required".into(),
            "items.yaml#/paths/~1items~1{itemId}/get/parameters/2/required".into()
        )]
    );

    let (status, answer) = get(&bin, "/items/3", &id);
    assert_eq!(status, 422);
    assert_eq!(problems(&answer)[0].0, "/query/limit");
    assert_eq!(problems(&answer)[0].1, "required");

    let (status, answer) = get(&bin, "/items/abc?limit=5", &id);
    assert_eq!(status, 422);
    assert_eq!(
        problems(&answer),
        [(
            "/path/itemId".into(),
            "type".into(),
            "items.yaml#/paths/~1items~1{itemId}/get/parameters/0/schema/type".into()
        )]
    );

    let (_, answer) = get(&bin, "/items/0?limit=500", &id);
    let got: Vec<(String, String)> = problems(&answer).into_iter().map(|(p, r, _)| (p, r)).collect();
    assert_eq!(got, [("/path/itemId".into(), "minimum".into()), ("/query/limit".into(), "maximum".into())]);
}

#[test]
fn bodies_that_break_their_schema_are_refused_with_their_pointer_and_schema_place() {
    let routes = "[server]\nopenapi = \"items.yaml\"\nopenapi_validate = \"enforce\"\n";
    let bin = start(routes, &[("items.yaml", ITEMS)], &["--no-watch"]);
    let json = "application/json";
    assert_eq!(post(&bin, "/items", json, r#"{"name":"saw","kind":"tool"}"#).0, 201);
    assert_eq!(post(&bin, "/items", json, r#"{"name":"saw","kind":"tool","price":null}"#).0, 201, "nullable");

    let schema = "items.yaml#/components/schemas/NewItem";
    let cases = [
        (r#"{"kind":"tool"}"#, "/body", "required", format!("{schema}/required")),
        (r#"{"name":5,"kind":"tool"}"#, "/body/name", "type", format!("{schema}/properties/name/type")),
        (r#"{"name":"a","kind":"car"}"#, "/body/kind", "enum", format!("{schema}/properties/kind/enum")),
        (
            r#"{"name":"a","kind":"toy","x":1}"#,
            "/body",
            "additionalProperties",
            format!("{schema}/additionalProperties"),
        ),
    ];
    for (body, pointer, rule, at) in cases {
        let (status, answer) = post(&bin, "/items", json, body);
        assert_eq!(status, 422, "{body}: {answer}");
        assert_eq!(problems(&answer), [(pointer.to_owned(), rule.to_owned(), at)], "{body}");
        assert!(answer["problems"][0]["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    // Every problem at once.
    let (_, answer) = post(&bin, "/items", json, r#"{"name":5,"kind":"car"}"#);
    assert_eq!(problems(&answer).len(), 2, "{answer}");

    let (status, answer) = post(&bin, "/items", json, "{\"name\": ");
    assert_eq!(status, 400);
    assert_eq!(problems(&answer)[0].0, "/body");
    assert_eq!(problems(&answer)[0].1, "json");

    let (status, answer) = post(&bin, "/items", "text/plain", "saw");
    assert_eq!(status, 422);
    assert_eq!(problems(&answer)[0].0, "/header/content-type");
    assert_eq!(problems(&answer)[0].1, "content-type");

    let res = client().post(bin.url("/items")).send().unwrap();
    assert_eq!(res.status().as_u16(), 422, "a required body that is missing");
}

#[test]
fn warn_lets_the_request_through_logs_it_and_journals_it() {
    let routes = "[server]\nopenapi = \"items.yaml\"\nopenapi_validate = \"warn\"\n";
    let mut bin = start(routes, &[("items.yaml", ITEMS)], &["--no-watch"]);
    let (status, answer) = post(&bin, "/items", "application/json", r#"{"name":"a","kind":"car"}"#);
    assert_eq!((status, answer), (201, json!({"id": 2, "name": "made"})));
    let line = bin.line("the warning", |l| l.contains("does not fit"));
    assert!(line.contains("/body/kind"), "{line}");
    let (_, journal) = get(&bin, "/__admin/requests", &[]);
    let last = journal["requests"].as_array().and_then(|r| r.last()).cloned().unwrap_or_default();
    assert_eq!(last["status"], 201);
    assert_eq!(last["openapi_violations"]["problems"][0]["pointer"], "/body/kind", "{journal}");
}

#[test]
fn openapi_validate_without_a_document_is_a_load_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("routes.toml"), "[server]\nopenapi_validate = \"enforce\"\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hotroute"))
        .args(["check", "routes.toml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("openapi_validate") && stderr.contains("openapi = "), "{stderr}");
}

#[test]
fn a_route_whose_json_does_not_fit_the_response_schema_is_a_load_warning_naming_both_places() {
    let routes = r#"[server]
openapi = "petstore.yaml"

[[route]]
path = "/api/v3/pet/{petId}"
json = { id = "ten", photoUrls = [] }
"#;
    let mut bin = start(routes, &[("petstore.yaml", PETSTORE)], &["--no-watch"]);
    let line = bin.line("the load warning", |l| l.contains("does not fit the response schema"));
    assert!(line.contains("routes.toml:4"), "{line}");
    assert!(line.contains("#/paths/~1pet~1{petId}/get/responses/200/content/application~1json/schema"), "{line}");
    assert!(line.contains("/id") && line.contains("name"), "{line}");
    // A warning, not an error: the route serves.
    assert_eq!(get(&bin, "/api/v3/pet/1", &[]).0, 200);
}

#[test]
fn a_route_file_imported_from_the_document_is_checked_when_openapi_names_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("items.yaml"), ITEMS).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hotroute"))
        .args(["import", "openapi", "items.yaml", "-o", "imported.toml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let imported = std::fs::read_to_string(dir.path().join("imported.toml")).unwrap();
    // The imported routes, edited: a different answer for the POST, which the document's routes do not replace.
    let edited = imported.replace(r#"json = { id = 2, name = "made" }"#, r#"json = { id = 2, name = "edited" }"#);
    assert_ne!(edited, imported, "the import writes the example as expected:\n{imported}");
    let routes = format!("[server]\nopenapi = \"items.yaml\"\nopenapi_validate = \"enforce\"\n\n{edited}");
    let bin = start(&routes, &[("items.yaml", ITEMS)], &["--no-watch"]);
    let (status, answer) = post(&bin, "/items", "application/json", r#"{"name":"a","kind":"tool"}"#);
    assert_eq!((status, answer), (201, json!({"id": 2, "name": "edited"})));
    let (status, answer) = post(&bin, "/items", "application/json", r#"{"name":"a"}"#);
    assert_eq!(status, 422);
    assert_eq!(problems(&answer)[0].1, "required");
}

#[test]
fn a_31_body_schema_in_a_sibling_file_is_checked_as_json_schema_2020_12() {
    let spec = r##"{ "openapi": "3.1.0", "info": { "title": "Cats", "version": "1" }, "paths": { "/cats": { "post": {
        "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "schemas.yaml#/Cat" } } } },
        "responses": { "201": { "description": "made" } } } } } }"##;
    let routes = "[server]\nopenapi = \"cats.json\"\nopenapi_validate = \"enforce\"\n";
    let bin = start(routes, &[("cats.json", spec), ("schemas.yaml", SHOP_SCHEMAS)], &["--no-watch"]);
    let json = "application/json";
    assert_eq!(post(&bin, "/cats", json, r#"{"kind":"cat","name":"Tom the cat","lives":9}"#).0, 201);
    let (status, answer) = post(&bin, "/cats", json, r#"{"kind":"dog","name":"Tom the cat","lives":12}"#);
    assert_eq!(status, 422);
    let mut got = problems(&answer);
    got.sort();
    assert_eq!(
        got,
        [
            ("/body/kind".into(), "const".into(), "schemas.yaml#/Cat/properties/kind/const".into()),
            ("/body/lives".into(), "maximum".into(), "schemas.yaml#/Cat/properties/lives/maximum".into()),
        ]
    );
}
