//! `hotroute import openapi`: the binary turns OpenAPI documents into route files that pass `check`, and serving
//! them answers the documented examples.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_hotroute");

/// The Swagger Petstore (OpenAPI 3.0, the "petstore3" sample's shape): 19 operations, XML and JSON bodies, examples
/// on the schemas' properties, `$ref`s to components, a server base path.
pub(crate) const PETSTORE: &str = r##"openapi: 3.0.2
info:
  title: Swagger Petstore - OpenAPI 3.0
  version: 1.0.17
servers:
  - url: /api/v3
tags:
  - name: pet
paths:
  /pet:
    put:
      tags: [pet]
      summary: Update an existing pet
      operationId: updatePet
      requestBody:
        content:
          application/json:
            schema: { $ref: '#/components/schemas/Pet' }
        required: true
      responses:
        "200":
          description: Successful operation
          content:
            application/xml:
              schema: { $ref: '#/components/schemas/Pet' }
            application/json:
              schema: { $ref: '#/components/schemas/Pet' }
        "400": { description: Invalid ID supplied }
        "404": { description: Pet not found }
        "405": { description: Validation exception }
    post:
      tags: [pet]
      summary: Add a new pet to the store
      operationId: addPet
      requestBody:
        content:
          application/json:
            schema: { $ref: '#/components/schemas/Pet' }
      responses:
        "200":
          description: Successful operation
          content:
            application/json:
              schema: { $ref: '#/components/schemas/Pet' }
        "405": { description: Invalid input }
  /pet/findByStatus:
    get:
      summary: Finds Pets by status
      operationId: findPetsByStatus
      parameters:
        - name: status
          in: query
          required: false
          schema: { type: string, default: available, enum: [available, pending, sold] }
      responses:
        "200":
          description: successful operation
          content:
            application/json:
              schema: { type: array, items: { $ref: '#/components/schemas/Pet' } }
        "400": { description: Invalid status value }
  /pet/findByTags:
    get:
      summary: Finds Pets by tags
      operationId: findPetsByTags
      parameters:
        - { name: tags, in: query, schema: { type: array, items: { type: string } } }
      responses:
        "200":
          description: successful operation
          content:
            application/json:
              schema: { type: array, items: { $ref: '#/components/schemas/Pet' } }
        "400": { description: Invalid tag value }
  /pet/{petId}:
    get:
      summary: Find pet by ID
      operationId: getPetById
      parameters:
        - { name: petId, in: path, required: true, schema: { type: integer, format: int64 } }
      responses:
        "200":
          description: successful operation
          content:
            application/xml:
              schema: { $ref: '#/components/schemas/Pet' }
            application/json:
              schema: { $ref: '#/components/schemas/Pet' }
        "400": { description: Invalid ID supplied }
        "404": { description: Pet not found }
    post:
      summary: Updates a pet in the store with form data
      operationId: updatePetWithForm
      parameters:
        - { name: petId, in: path, required: true, schema: { type: integer, format: int64 } }
        - { name: name, in: query, schema: { type: string } }
      responses:
        "405": { description: Invalid input }
    delete:
      summary: Deletes a pet
      operationId: deletePet
      parameters:
        - { name: petId, in: path, required: true, schema: { type: integer, format: int64 } }
      responses:
        "400": { description: Invalid pet value }
  /pet/{petId}/uploadImage:
    post:
      summary: uploads an image
      operationId: uploadFile
      parameters:
        - { name: petId, in: path, required: true, schema: { type: integer, format: int64 } }
      requestBody:
        content:
          application/octet-stream:
            schema: { type: string, format: binary }
      responses:
        "200":
          description: successful operation
          content:
            application/json:
              schema: { $ref: '#/components/schemas/ApiResponse' }
  /store/inventory:
    get:
      summary: Returns pet inventories by status
      operationId: getInventory
      responses:
        "200":
          description: successful operation
          content:
            application/json:
              schema: { type: object, additionalProperties: { type: integer, format: int32 } }
  /store/order:
    post:
      summary: Place an order for a pet
      operationId: placeOrder
      responses:
        "200":
          description: successful operation
          content:
            application/json:
              schema: { $ref: '#/components/schemas/Order' }
        "405": { description: Invalid input }
  /store/order/{orderId}:
    get:
      summary: Find purchase order by ID
      operationId: getOrderById
      parameters:
        - { name: orderId, in: path, required: true, schema: { type: integer, format: int64 } }
      responses:
        "200":
          description: successful operation
          content:
            application/json:
              schema: { $ref: '#/components/schemas/Order' }
        "400": { description: Invalid ID supplied }
        "404": { description: Order not found }
    delete:
      summary: Delete purchase order by ID
      operationId: deleteOrder
      parameters:
        - { name: orderId, in: path, required: true, schema: { type: integer, format: int64 } }
      responses:
        "400": { description: Invalid ID supplied }
        "404": { description: Order not found }
  /user:
    post:
      summary: Create user
      operationId: createUser
      responses:
        default:
          description: successful operation
          content:
            application/json:
              schema: { $ref: '#/components/schemas/User' }
  /user/createWithList:
    post:
      summary: Creates list of users with given input array
      operationId: createUsersWithListInput
      responses:
        "200":
          description: Successful operation
          content:
            application/json:
              schema: { $ref: '#/components/schemas/User' }
        default: { description: successful operation }
  /user/login:
    get:
      summary: Logs user into the system
      operationId: loginUser
      responses:
        "200":
          description: successful operation
          headers:
            X-Rate-Limit: { schema: { type: integer, format: int32 } }
          content:
            application/xml:
              schema: { type: string }
            application/json:
              schema: { type: string }
        "400": { description: Invalid username/password supplied }
  /user/logout:
    get:
      summary: Logs out current user session
      operationId: logoutUser
      responses:
        default: { description: successful operation }
  /user/{username}:
    get:
      summary: Get user by user name
      operationId: getUserByName
      parameters:
        - { name: username, in: path, required: true, schema: { type: string } }
      responses:
        "200":
          description: successful operation
          content:
            application/json:
              schema: { $ref: '#/components/schemas/User' }
        "400": { description: Invalid username supplied }
        "404": { description: User not found }
    put:
      summary: Update user
      operationId: updateUser
      parameters:
        - { name: username, in: path, required: true, schema: { type: string } }
      responses:
        default: { description: successful operation }
    delete:
      summary: Delete user
      operationId: deleteUser
      parameters:
        - { name: username, in: path, required: true, schema: { type: string } }
      responses:
        "400": { description: Invalid username supplied }
        "404": { description: User not found }
components:
  schemas:
    Order:
      type: object
      properties:
        id: { type: integer, format: int64, example: 10 }
        petId: { type: integer, format: int64, example: 198772 }
        quantity: { type: integer, format: int32, example: 7 }
        shipDate: { type: string, format: date-time }
        status: { type: string, description: Order Status, example: approved, enum: [placed, approved, delivered] }
        complete: { type: boolean }
    Category:
      type: object
      properties:
        id: { type: integer, format: int64, example: 1 }
        name: { type: string, example: Dogs }
    User:
      type: object
      properties:
        id: { type: integer, format: int64, example: 10 }
        username: { type: string, example: theUser }
        email: { type: string, example: john@email.com }
        password: { type: string, example: "12345", writeOnly: true }
        userStatus: { type: integer, description: User Status, format: int32, example: 1 }
    Tag:
      type: object
      properties:
        id: { type: integer, format: int64 }
        name: { type: string }
    Pet:
      required: [name, photoUrls]
      type: object
      properties:
        id: { type: integer, format: int64, example: 10 }
        name: { type: string, example: doggie }
        category: { $ref: '#/components/schemas/Category' }
        photoUrls: { type: array, items: { type: string } }
        tags: { type: array, items: { $ref: '#/components/schemas/Tag' } }
        status: { type: string, description: pet status in the store, enum: [available, pending, sold] }
    ApiResponse:
      type: object
      properties:
        code: { type: integer, format: int32 }
        type: { type: string }
        message: { type: string }
"##;

/// An OpenAPI 3.1 document in JSON whose schemas live in a sibling YAML file, with `oneOf`, 3.1's type lists,
/// named examples (one through `$ref`), formats and bounds.
pub(crate) const SHOP_31: &str = r##"{
  "openapi": "3.1.0",
  "info": { "title": "Shop", "version": "2" },
  "servers": [{ "url": "https://{host}/shop/{version}/", "variables": { "host": { "default": "api.example.com" }, "version": { "default": "v2" } } }],
  "paths": {
    "/animals/{animalId}": {
      "get": {
        "operationId": "getAnimal",
        "responses": {
          "200": {
            "description": "an animal",
            "content": { "application/json": {
              "schema": { "$ref": "schemas.yaml#/Animal" },
              "examples": {
                "cat": { "value": { "kind": "cat", "name": "Tom", "lives": 9 } },
                "dog": { "$ref": "#/components/examples/dog" }
              }
            } }
          },
          "404": { "$ref": "#/components/responses/NotFound" }
        }
      }
    },
    "/animals": {
      "get": {
        "responses": {
          "200": { "description": "all", "content": { "application/json": { "schema": { "type": "array", "minItems": 2, "maxItems": 3, "items": { "$ref": "schemas.yaml#/Animal" } } } } }
        }
      }
    },
    "/receipts/{receiptId}": {
      "get": {
        "responses": {
          "2XX": { "description": "a receipt", "content": { "application/json": { "schema": { "$ref": "schemas.yaml#/Receipt" } } } }
        }
      }
    }
  },
  "components": {
    "examples": { "dog": { "value": { "kind": "dog", "name": "Rex", "good": true } } },
    "responses": {
      "NotFound": { "description": "missing", "content": { "application/problem+json": { "example": { "title": "no such animal", "status": 404 } } } }
    }
  }
}"##;

pub(crate) const SHOP_SCHEMAS: &str = r##"Animal:
  oneOf:
    - $ref: '#/Cat'
    - $ref: '#/Dog'
Cat:
  type: object
  required: [kind, name]
  properties:
    kind: { const: cat }
    name: { type: string, minLength: 8 }
    lives: { type: integer, minimum: 1, maximum: 9 }
Dog:
  type: object
  properties:
    kind: { const: dog }
    good: { type: boolean }
Receipt:
  type: object
  properties:
    id: { type: string, format: uuid }
    at: { type: string, format: date-time }
    email: { type: [string, "null"], format: email }
    total: { type: number, exclusiveMinimum: 0, maximum: 10 }
    lines: { type: array, items: { allOf: [ { $ref: '#/Line' }, { properties: { sku: { type: string, enum: [A1, B2] } } } ] } }
Line:
  type: object
  properties:
    qty: { type: integer, minimum: 1 }
"##;

/// A running binary, killed on drop so a failing test leaves nothing behind.
struct Running {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn hotroute(args: &[&str], dir: &Path) -> Output {
    Command::new(BIN).args(args).current_dir(dir).output().expect("the binary runs")
}

fn serve(routes: &str, dir: &Path) -> Running {
    let mut child = Command::new(BIN)
        .args(["--port", "0", "--no-watch", routes])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the binary starts");
    let addr =
        crate::support::bin::read_address(&mut child).unwrap_or_else(|line| panic!("first stdout line was {line:?}"));
    Running { child, addr }
}

/// Imports `spec` (in `dir`) to routes.toml with the binary, checks it with the binary, and returns stderr.
fn import(dir: &Path, spec: &str) -> String {
    let out = hotroute(&["import", "openapi", spec, "-o", "routes.toml"], dir);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "import failed: {stderr}");
    let check = hotroute(&["check", "routes.toml"], dir);
    let routes = std::fs::read_to_string(dir.join("routes.toml")).unwrap();
    assert!(check.status.success(), "check failed: {}\n{routes}", String::from_utf8_lossy(&check.stderr));
    stderr
}

fn request(addr: SocketAddr, method: &str, path: &str, prefer: Option<&str>) -> (u16, String, String) {
    let client = reqwest::blocking::Client::builder().timeout(std::time::Duration::from_secs(10)).build().unwrap();
    let mut req = client.request(method.parse().unwrap(), format!("http://{addr}{path}"));
    if let Some(p) = prefer {
        req = req.header("prefer", p);
    }
    let res = req.send().unwrap();
    let status = res.status().as_u16();
    let ct = res.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    (status, ct, res.text().unwrap())
}

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

#[test]
fn the_petstore_imports_to_a_route_per_operation_that_answers_its_schema_examples() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("petstore.yaml"), PETSTORE).unwrap();
    let stderr = import(dir.path(), "petstore.yaml");
    assert!(stderr.contains("petstore.yaml: "), "{stderr}");
    let routes = std::fs::read_to_string(dir.path().join("routes.toml")).unwrap();
    // One unconditional route per operation (19), the others each behind a `Prefer` condition.
    let config = hotroute::load_str(&routes, Path::new("routes.toml"), dir.path()).unwrap();
    let plain = routes.split("[[route]]").skip(1).filter(|r| !r.contains("\nmatch = ")).count();
    assert_eq!(plain, 19, "{routes}");
    assert!(config.routes.len() > 19);
    assert!(hotroute::Router::load_str(&routes, Path::new("routes.toml"), dir.path()).is_ok());

    let server = serve("routes.toml", dir.path());
    let (status, ct, body) = request(server.addr, "GET", "/api/v3/pet/7", None);
    assert_eq!((status, ct.as_str()), (200, "application/json"), "{body}");
    assert_eq!(
        json_of(&body),
        json!({"id": 10, "name": "doggie", "category": {"id": 1, "name": "Dogs"}, "photoUrls": ["string"],
               "tags": [{"id": 0, "name": "string"}], "status": "available"})
    );
    // The user: the write-only password is not in the answer.
    // In the schema's order.
    let keys: Vec<String> = json_of(&body).as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["id", "name", "category", "photoUrls", "tags", "status"]);
    let (status, _, body) = request(server.addr, "GET", "/api/v3/user/theUser", None);
    assert_eq!(status, 200);
    assert_eq!(json_of(&body), json!({"id": 10, "username": "theUser", "email": "john@email.com", "userStatus": 1}));
    let (_, _, body) = request(server.addr, "GET", "/api/v3/store/order/1", None);
    assert_eq!(json_of(&body)["shipDate"], "2024-01-01T00:00:00Z");
    assert_eq!(json_of(&body)["status"], "approved");
    let (_, _, body) = request(server.addr, "GET", "/api/v3/store/inventory", None);
    assert_eq!(json_of(&body), json!({"additionalProp1": 0}));
    // Every method of the document answers on its path.
    for (method, path, want) in [
        ("PUT", "/api/v3/pet", 200),
        ("POST", "/api/v3/pet", 200),
        ("GET", "/api/v3/pet/findByStatus?status=sold", 200),
        ("POST", "/api/v3/pet/3", 405),
        ("DELETE", "/api/v3/pet/3", 400),
        ("POST", "/api/v3/pet/3/uploadImage", 200),
        ("DELETE", "/api/v3/store/order/3", 400),
        ("POST", "/api/v3/user", 200),
        ("GET", "/api/v3/user/login", 200),
        ("GET", "/api/v3/user/logout", 200),
        ("PUT", "/api/v3/user/someone", 200),
        ("DELETE", "/api/v3/user/someone", 400),
    ] {
        assert_eq!(request(server.addr, method, path, None).0, want, "{method} {path}");
    }
    // Other documented responses, as Prism selects them.
    assert_eq!(request(server.addr, "GET", "/api/v3/pet/7", Some("code=404")).0, 404);
    assert_eq!(request(server.addr, "GET", "/api/v3/pet/7", Some("dynamic=false, code=400")).0, 400);
    assert_eq!(request(server.addr, "GET", "/api/v3/pet/7", Some("code=4044")).0, 200);
    // Nothing outside the base path.
    assert_eq!(request(server.addr, "GET", "/pet/7", None).0, 404);
}

#[test]
fn a_31_document_with_refs_across_files_and_one_of_answers_its_named_examples() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("shop.json"), SHOP_31).unwrap();
    std::fs::write(dir.path().join("schemas.yaml"), SHOP_SCHEMAS).unwrap();
    import(dir.path(), "shop.json");
    let server = serve("routes.toml", dir.path());

    // The first example of the first 2xx answers by default; the others by name or by code.
    let (status, _, body) = request(server.addr, "GET", "/shop/v2/animals/1", None);
    assert_eq!((status, json_of(&body)), (200, json!({"kind": "cat", "name": "Tom", "lives": 9})));
    let (_, _, body) = request(server.addr, "GET", "/shop/v2/animals/1", Some("example=dog"));
    assert_eq!(json_of(&body), json!({"kind": "dog", "name": "Rex", "good": true}));
    let (status, ct, body) = request(server.addr, "GET", "/shop/v2/animals/1", Some("code=404"));
    assert_eq!((status, ct.as_str()), (404, "application/problem+json"));
    assert_eq!(json_of(&body), json!({"title": "no such animal", "status": 404}));

    // Generated from the sibling file's `oneOf` (its first choice), with the array's bounds.
    let (_, _, body) = request(server.addr, "GET", "/shop/v2/animals", None);
    let cat = json!({"kind": "cat", "name": "stringxx", "lives": 1});
    assert_eq!(json_of(&body), json!([cat, cat]));

    // Formats, a 3.1 type list, exclusive bounds, `allOf` merged, and a `2XX` range.
    let (status, _, body) = request(server.addr, "GET", "/shop/v2/receipts/9", None);
    assert_eq!(status, 200);
    assert_eq!(
        json_of(&body),
        json!({"id": "3fa85f64-5717-4562-b3fc-2c963f66afa6", "at": "2024-01-01T00:00:00Z",
               "email": "user@example.com", "total": 5.0, "lines": [{"qty": 1, "sku": "A1"}]})
    );
}

#[test]
fn an_import_is_repeatable() {
    let a = hotroute::import::openapi(PETSTORE, "petstore.yaml").unwrap();
    let b = hotroute::import::openapi(PETSTORE, "petstore.yaml").unwrap();
    assert_eq!(a.routes, b.routes);
}

#[test]
fn what_cannot_be_converted_is_on_stderr_with_its_place_and_a_comment_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let spec = r##"
openapi: 3.0.3
info: { title: Odd, version: "1" }
paths:
  /a/{id}:
    get:
      responses:
        "200": { description: ok, content: { application/json: { schema: { $ref: 'missing.yaml#/X' } } } }
  /b/{*x}/c:
    get:
      responses:
        "200": { description: ok }
  /c:
    get:
      responses:
        "200":
          description: ok
          content:
            application/json:
              examples:
                far: { externalValue: "https://example.com/far.json" }
                near: { value: { ok: true } }
"##;
    std::fs::write(dir.path().join("odd.yaml"), spec).unwrap();
    // A missing sibling file is an error naming it.
    let out = hotroute(&["import", "openapi", "odd.yaml"], dir.path());
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("missing.yaml"), "{stderr}");

    let out = hotroute(&["import", "openapi", "absent.yaml"], dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("cannot read the OpenAPI document `absent.yaml`"), "{stderr}");

    // Without the file to read (the library, from text), it is a note; the route still answers.
    let imported = hotroute::import::openapi(spec, "odd.yaml").unwrap();
    let notes: Vec<String> = imported.notes.iter().map(ToString::to_string).collect();
    assert!(
        notes.iter().any(|n| n.starts_with("odd.yaml#/paths/~1a~1{id}/get: ") && n.contains("missing.yaml")),
        "{notes:?}"
    );
    assert!(
        notes.iter().any(|n| n.starts_with("odd.yaml#/paths/~1b~1{*x}~1c/get: ") && n.contains("cannot be routed")),
        "{notes:?}"
    );
    assert!(notes.iter().any(|n| n.contains("`far`") && n.contains("externalValue")), "{notes:?}");
    // The route matchit refuses is a comment, where it would have gone.
    assert!(imported.routes.contains("# path = \"/b/{*x}/c\""), "{}", imported.routes);
    assert!(hotroute::Router::load_str(&imported.routes, Path::new("routes.toml"), dir.path()).is_ok());

    // The binary lists each note on stderr.
    std::fs::write(dir.path().join("missing.yaml"), "X: { type: string }\n").unwrap();
    let stderr = import(dir.path(), "odd.yaml");
    assert!(stderr.contains("warning: odd.yaml#/paths/~1b~1{*x}~1c/get: not imported"), "{stderr}");
}

#[test]
fn an_operation_the_loader_refuses_is_a_comment_and_the_others_are_served() {
    // A media type that is no header value: the file as a whole fails to load, so each operation is checked alone.
    let spec = r#"{"openapi": "3.1.0", "info": {"title": "t", "version": "1"}, "paths": {
        "/bad": {"get": {"responses": {"200": {"description": "x", "content": {"text/pl\u0001ain": {"example": "hi"}}}}}},
        "/good": {"get": {"responses": {"200": {"description": "x", "content": {"text/plain": {"example": "fine"}}}}}}}}"#;
    let imported = hotroute::import::openapi(spec, "t.json").unwrap();
    assert_eq!(imported.route_count, 1, "{}", imported.routes);
    let note = imported.notes.iter().find(|n| n.location == "t.json#/paths/~1bad/get").expect("a note on /bad");
    assert!(note.message.starts_with("not imported: "), "{note}");
    assert!(imported.routes.contains("# path = \"/bad\""), "{}", imported.routes);
    let router = hotroute::Router::load_str(&imported.routes, Path::new("t.toml"), Path::new(".")).unwrap();
    assert_eq!(router.routes().len(), 1);
}

#[test]
fn a_schema_that_fans_out_makes_a_bounded_answer() {
    // Arrays of arrays, twelve deep, each with 20 items: 20^12 values if copied out in full.
    let mut schema = "{ type: integer }".to_owned();
    for _ in 0..12 {
        schema = format!("{{ type: array, minItems: 20, items: {schema} }}");
    }
    let spec = format!(
        "openapi: 3.0.0\ninfo: {{ title: t, version: '1' }}\npaths:\n  /x:\n    get:\n      responses:\n        \"200\": {{ description: x, content: {{ application/json: {{ schema: {schema} }} }} }}\n"
    );
    let imported = hotroute::import::openapi(&spec, "t.yaml").unwrap();
    assert!(imported.routes.len() < 200_000, "{} bytes", imported.routes.len());
    assert_eq!(imported.route_count, 1);
}

#[test]
fn odd_shapes_and_ref_loops_import_without_panicking() {
    let head = "openapi: 3.1.0\ninfo: { title: t, version: '1' }\n";
    for body in [
        "paths: 5\n",
        "paths: { /a: 5 }\n",
        "paths: { /a: { get: 5 } }\n",
        "paths: { /a: { get: { responses: [] } } }\n",
        "paths: { /a: { get: { responses: { '200': 5 } } } }\n",
        "paths: { /a: { get: { responses: { '200': { content: { application/json: 5 } } } } } }\n",
        "paths: { /a: { $ref: '#/paths/~1a' } }\n",
        "paths: { /a: { get: { responses: { '200': { content: { application/json: { schema: { $ref: '#/components/schemas/A' } } } } } } } }\ncomponents: { schemas: { A: { $ref: '#/components/schemas/B' }, B: { $ref: '#/components/schemas/A' } } }\n",
        "paths: { /a: { get: { responses: { '200': { content: { application/json: { schema: { $ref: '#/components/schemas/T' } } } } } } } }\ncomponents: { schemas: { T: { type: object, required: [kids], properties: { kids: { type: array, items: { $ref: '#/components/schemas/T' } } } } } }\n",
        "paths: { /a: { get: { responses: { '200': { content: { application/json: { example: { n: null, big: 18446744073709551615 } } } } } } } }\n",
    ] {
        let spec = format!("{head}{body}");
        let imported = hotroute::import::openapi(&spec, "t.yaml").unwrap_or_else(|e| panic!("{body}: {e}"));
        hotroute::Router::load_str(&imported.routes, Path::new("t.toml"), Path::new("."))
            .unwrap_or_else(|e| panic!("{body}: {e}\n{}", imported.routes));
    }
}

#[test]
fn documents_that_are_not_openapi_3_are_refused_saying_why() {
    for (text, want) in [
        ("swagger: '2.0'\npaths: {}\n", "Swagger 2.0"),
        ("openapi: 2.5.0\n", "not supported"),
        ("title: nope\n", "no `openapi` version"),
        ("{ not json", "not JSON or YAML"),
        ("a: [unclosed\n", "not JSON or YAML"),
    ] {
        let err = hotroute::import::openapi(text, "x.yaml").unwrap_err().to_string();
        assert!(err.contains(want) && err.starts_with("x.yaml"), "{text:?}: {err}");
    }
}
