//! `hotroute import openapi` on a generated 500-operation OpenAPI 3.1 document (issue 17's goal: under 1 s).
//!
//! `cargo bench --bench import` prints the time of one import: parse, `$ref`s, schema-made examples, the per-route
//! checks and the final load of the whole file. Under `cargo test` it imports once, to check that it still works.

use std::time::Instant;

use serde_json::json;

/// The allocator of the `hotroute` binary (see src/main.rs), so that the figures are the command's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `n` operations: half GETs answering a schema through `$ref`, `allOf` and formats (with a 404 by `Prefer`), half
/// PUTs answering named examples.
fn spec(n: usize) -> String {
    let mut paths = serde_json::Map::new();
    for i in 0..n / 2 {
        paths.insert(
            format!("/res{i}/{{id}}"),
            json!({
                "get": { "operationId": format!("get{i}"), "responses": {
                    "200": { "description": "ok", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Thing" } } } },
                    "404": { "description": "no", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } } } },
                "put": { "operationId": format!("put{i}"), "responses": {
                    "200": { "description": "ok", "content": { "application/json": { "examples": {
                        "a": { "value": { "id": i } }, "b": { "value": { "id": i + 1 } } } } } },
                    "400": { "description": "bad" } } }
            }),
        );
    }
    json!({
        "openapi": "3.1.0", "info": { "title": "generated", "version": "1" }, "servers": [{ "url": "/v1" }],
        "paths": paths,
        "components": { "schemas": {
            "Thing": { "type": "object", "required": ["id"], "properties": {
                "id": { "type": "string", "format": "uuid" }, "at": { "type": "string", "format": "date-time" },
                "tags": { "type": "array", "items": { "type": "string" }, "minItems": 3 },
                "owner": { "allOf": [{ "$ref": "#/components/schemas/Error" }, { "properties": { "email": { "type": "string", "format": "email" } } }] },
                "n": { "type": "integer", "minimum": 5 } } },
            "Error": { "type": "object", "properties": { "code": { "type": "integer" }, "message": { "type": "string" } } } } }
    })
    .to_string()
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let text = spec(500);
    let runs = if full { 10 } else { 1 };
    let mut times = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        let imported = hotroute::import::openapi(&text, "generated.json").expect("the generated spec imports");
        times.push(start.elapsed());
        // Each GET: its 404 by `Prefer`, then the 200; each PUT: two named examples, the 400, then the first example.
        assert_eq!(imported.route_count, 1500);
    }
    times.sort();
    println!(
        "import openapi, 500 operations ({} bytes): median {:?}, best {:?}",
        text.len(),
        times[times.len() / 2],
        times[0]
    );
}
