//! Serving an OpenAPI document (`[server] openapi`) and checking requests against it (`openapi_validate`).
//!
//! At load, the document is read by the importer (`crate::import`), which writes the route-file text that
//! `hotroute import openapi` would; that text is checked in memory and its routes go after the route file's, minus
//! the operations the route file answers itself. With validation on, each operation's parameters and request body
//! are compiled into JSON Schema validators once, at load; a request then costs a path lookup and the checks of its
//! own operation. The document's files are read through the load's [`Inputs`], so the watcher reloads on their
//! changes like on the route file's.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::config::inputs::Inputs;
use crate::config::{BodyConfig, Config, LoadError, LoadErrors, Methods, ValidateMode};
use crate::import::{Spec, SpecOp};
use crate::request::RequestView;

/// The base of the URIs the document's files get in the JSON Schema registry: never fetched, only named.
const BASE: &str = "file:///hotroute-openapi/";

/// The most problems one answer lists: a huge body with an error per item must not make a huge answer.
const MAX_PROBLEMS: usize = 100;

/// A checked route file: its config and the problems found in it.
type Checked = (Config, Vec<LoadError>);

/// The route file's checked config with the OpenAPI document's routes added after its own, and the request checks
/// when `openapi_validate` is on. `cli` is `--openapi FILE`, which wins over `[server] openapi`.
pub(crate) fn add_spec(
    (mut config, mut errors): Checked,
    inputs: &mut Inputs,
    cli: Option<&Path>,
) -> Result<(Checked, Option<Arc<Validation>>), LoadErrors> {
    let route_file = config.sources.first().map(|s| s.path.clone()).unwrap_or_default();
    let mode = config.server.openapi_validate;
    let Some(path) = cli.map(Path::to_path_buf).or_else(|| config.server.openapi.clone()) else {
        if mode != ValidateMode::Off {
            errors.push(LoadError::file(
                &route_file,
                "`openapi_validate` is set, but no OpenAPI document is named to check requests against",
                "name it in [server] with `openapi = \"openapi.yaml\"` (or run with `--openapi FILE`), or remove \
                 `openapi_validate`",
            ));
        }
        return Ok(((config, errors), None));
    };
    let mut read = |p: &Path| -> Result<String, String> {
        let bytes = inputs.read(p).map_err(|e| e.to_string())?;
        String::from_utf8(bytes).map_err(|e| format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()))
    };
    let (imported, spec) = crate::import::openapi_spec(&path, &mut read).map_err(|e| {
        let text = e.to_string();
        let (message, help) = text.split_once("\nhelp: ").unwrap_or((&text, "fix the document and save it again"));
        // The importer's messages start with the document's name, which this one already gives.
        let message = message.strip_prefix(&format!("{}: ", path.display())).unwrap_or(message);
        // Named by where the user gave it, so that they know which to fix.
        let given = if cli.is_some() { "--openapi" } else { "[server] openapi" };
        let message = format!("OpenAPI document `{}` ({given}): {message}", path.display());
        LoadErrors(vec![LoadError::file(&path, message, help)])
    })?;
    for note in &imported.notes {
        tracing::debug!("{note}");
    }
    // The routes keep the document's name, so that the journal and coverage say where they come from.
    let name = PathBuf::from(format!("{} (imported)", path.display()));
    let spec_config =
        crate::config::load_str(&imported.routes, &name, &crate::config::base_dir_of(&path)).map_err(|e| {
            let message =
                format!("the routes imported from `{}` do not load (please report this bug): {e}", path.display());
            LoadErrors(vec![LoadError::file(&path, message, "import it with `hotroute import openapi` to see them")])
        })?;
    warn_misfits(&config, &spec);
    merge(&mut config, spec_config);
    let validation = match mode {
        ValidateMode::Off => None,
        _ => Some(Arc::new(Validation::build(&spec, &path, mode).map_err(|e| LoadErrors(vec![e]))?)),
    };
    Ok(((config, errors), validation))
}

/// Appends the imported routes to the route file's: an operation the route file answers itself (same path shape,
/// a method in common) is left out, and the rest take the route file's parameter names where the paths share a
/// place, since the router needs one name per place.
fn merge(config: &mut Config, spec: Config) {
    let taken: Vec<(String, &Methods)> = config.routes.iter().map(|r| (shape(&r.path), &r.methods)).collect();
    let mut names: HashMap<String, String> = HashMap::new();
    for r in &config.routes {
        let mut at = String::new();
        for seg in r.path.split('/').skip(1) {
            at.push('/');
            match param(seg) {
                Some(name) => {
                    names.entry(at.clone()).or_insert_with(|| name.to_owned());
                    at.push_str("{}");
                }
                None => at.push_str(seg),
            }
        }
    }
    let offset = config.sources.len();
    let kept: Vec<_> = spec
        .routes
        .into_iter()
        .filter(|rc| {
            let s = shape(&rc.path);
            !taken.iter().any(|(p, m)| *p == s && overlaps(m, &rc.methods))
        })
        .collect();
    for mut rc in kept {
        let mut path = String::new();
        let mut at = String::new();
        for seg in rc.path.split('/').skip(1) {
            path.push('/');
            at.push('/');
            match (param(seg), names.get(&at)) {
                (Some(_), Some(name)) if !seg.starts_with("{*") => {
                    path.push_str(&format!("{{{name}}}"));
                    at.push_str("{}");
                }
                (Some(_), _) => {
                    path.push_str(seg);
                    at.push_str("{}");
                }
                (None, _) => {
                    path.push_str(seg);
                    at.push_str(seg);
                }
            }
        }
        rc.path = if path.is_empty() { "/".into() } else { path };
        rc.origin.source += offset;
        config.routes.push(rc);
    }
    config.sources.extend(spec.sources);
}

/// A whole-segment parameter's name: `id` for `{id}`, `rest` for `{*rest}`.
fn param(seg: &str) -> Option<&str> {
    seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')).filter(|s| !s.contains(['{', '}']))
}

/// A path with its parameters unnamed: `/pets/{}` for `/pets/{id}` and `/pets/{petId}`.
fn shape(path: &str) -> String {
    path.split('/')
        .map(|seg| match param(seg) {
            Some(p) if p.starts_with('*') => "{*}",
            Some(_) => "{}",
            None => seg,
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn overlaps(a: &Methods, b: &Methods) -> bool {
    match (a, b) {
        (Methods::List(a), Methods::List(b)) => a.iter().any(|m| b.contains(m)),
        _ => true,
    }
}

/// Where a parameter is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// The path segment at this index of `uri.path().split('/')`.
    Path(usize),
    Query,
    Header,
}

impl Place {
    fn word(self) -> &'static str {
        match self {
            Place::Path(_) => "path",
            Place::Query => "query",
            Place::Header => "header",
        }
    }
}

/// The JSON type a parameter's text is read as before its schema checks it.
#[derive(Debug, Clone)]
enum Kind {
    Text,
    Integer,
    Number,
    Boolean,
    Array(Box<Kind>),
}

/// A JSON Schema validator and where its schema is in the document (e.g. `spec.yaml#/components/schemas/Pet`).
struct Schema {
    validator: jsonschema::Validator,
    at: String,
}

impl std::fmt::Debug for Schema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Schema").field("at", &self.at).finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct ParamCheck {
    name: String,
    place: Place,
    required: bool,
    kind: Kind,
    schema: Option<Schema>,
    /// The parameter's place in the document.
    at: String,
}

#[derive(Debug)]
struct BodyCheck {
    required: bool,
    /// Each media type the operation takes (lower case, e.g. `application/json`, `image/*`) and its schema.
    media: Vec<(String, Option<Schema>)>,
    at: String,
}

#[derive(Debug)]
struct OpCheck {
    method: Method,
    at: String,
    params: Vec<ParamCheck>,
    body: Option<BodyCheck>,
}

/// The request checks of one OpenAPI document, compiled at load.
#[derive(Debug)]
pub struct Validation {
    mode: ValidateMode,
    tree: matchit::Router<usize>,
    /// Per path of `tree`, its operations.
    paths: Vec<Vec<OpCheck>>,
}

/// What the checks found wrong with one request.
#[derive(Debug, Clone)]
pub struct Violations {
    /// `422`, or `400` when the body is not JSON.
    pub status: StatusCode,
    /// `{ "error", "operation", "problems": [{ "pointer", "rule", "message", "schema" }] }`.
    pub json: Arc<Value>,
    /// Whether the request is to be refused (`enforce`) rather than let through (`warn`).
    pub enforce: bool,
}

impl Violations {
    /// The problems on one line, for the log.
    pub fn summary(&self) -> String {
        let problems = self.json["problems"].as_array().map(Vec::as_slice).unwrap_or_default();
        problems
            .iter()
            .map(|p| format!("{}: {}", p["pointer"].as_str().unwrap_or(""), p["message"].as_str().unwrap_or("")))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The answer to a refused request.
    pub fn response(&self) -> http::Response<crate::route::respond::Body> {
        crate::route::respond::json(self.status, &self.json)
    }
}

/// What the pipeline does before a route answers: `router`'s OpenAPI checks on `req` (for the benches).
pub fn check_request(router: &crate::route::Router, req: &RequestView<'_>) -> Option<Violations> {
    router.openapi().and_then(|checks| checks.check(req))
}

fn load_error(path: &Path, message: String) -> LoadError {
    LoadError::file(path, message, "fix the schema in the OpenAPI document, or set `openapi_validate = \"off\"`")
}

impl Validation {
    fn build(spec: &Spec, path: &Path, mode: ValidateMode) -> Result<Validation, LoadError> {
        let checker = Compiler::new(spec, path).map_err(|e| load_error(path, e))?;
        let mut tree = matchit::Router::new();
        let mut by_path: HashMap<&str, usize> = HashMap::new();
        let mut paths: Vec<Vec<OpCheck>> = Vec::new();
        for op in &spec.ops {
            let check = checker.op(op).map_err(|e| load_error(path, format!("{}: {e}", op.at)))?;
            let i = match by_path.get(op.path.as_str()) {
                Some(&i) => i,
                None => {
                    // The importer refused paths the router cannot take, so this insert does not fail; if it did,
                    // the operation would simply go unchecked.
                    if tree.insert(op.path.clone(), paths.len()).is_err() {
                        continue;
                    }
                    by_path.insert(&op.path, paths.len());
                    paths.push(Vec::new());
                    paths.len() - 1
                }
            };
            paths[i].push(check);
        }
        Ok(Validation { mode, tree, paths })
    }

    /// Checks `req` against its operation: none when it fits, or when the document has no such operation.
    pub fn check(&self, req: &RequestView<'_>) -> Option<Violations> {
        let path = req.uri.path();
        let found = self.tree.at(path).ok()?;
        let ops = &self.paths[*found.value];
        let op = ops
            .iter()
            .find(|o| o.method == *req.method)
            .or_else(|| ops.iter().find(|o| *req.method == Method::HEAD && o.method == Method::GET))?;
        let mut problems = Vec::new();
        let mut status = StatusCode::UNPROCESSABLE_ENTITY;
        // Decoded only for an operation with query parameters.
        let query: Vec<(String, String)> = match req.uri.query() {
            Some(q) if op.params.iter().any(|p| p.place == Place::Query) => {
                form_urlencoded::parse(q.as_bytes()).into_owned().collect()
            }
            _ => Vec::new(),
        };
        for p in &op.params {
            let texts: Vec<String> = match p.place {
                Place::Path(i) => path
                    .split('/')
                    .nth(i)
                    .map(|s| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned())
                    .into_iter()
                    .collect(),
                Place::Query => query.iter().filter(|(k, _)| *k == p.name).map(|(_, v)| v.clone()).collect(),
                Place::Header => req
                    .headers
                    .get_all(p.name.as_str())
                    .iter()
                    .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                    .collect(),
            };
            let pointer = format!("/{}/{}", p.place.word(), escape(&p.name));
            if texts.is_empty() {
                if p.required {
                    problems.push(json!({
                        "pointer": pointer,
                        "rule": "required",
                        "message": format!("the {} parameter `{}` is required", p.place.word(), p.name),
                        "schema": format!("{}/required", p.at),
                    }));
                }
                continue;
            }
            let value = match &p.kind {
                Kind::Array(item) => {
                    // A query array repeats the parameter (`?tag=a&tag=b`); a path or header one is comma-separated.
                    let items: Vec<&str> = if p.place == Place::Query {
                        texts.iter().map(String::as_str).collect()
                    } else {
                        texts.iter().flat_map(|t| t.split(',')).map(str::trim).collect()
                    };
                    Value::Array(items.into_iter().map(|t| coerce(item, t)).collect())
                }
                kind => coerce(kind, &texts[0]),
            };
            if let Some(schema) = &p.schema {
                push_errors(&mut problems, schema, &value, &pointer);
            }
        }
        if let Some(body) = &op.body {
            check_body(body, req, &mut problems, &mut status);
        }
        if problems.is_empty() {
            return None;
        }
        problems.truncate(MAX_PROBLEMS);
        let json = json!({
            "error": "the request does not fit its operation in the OpenAPI document",
            "operation": op.at,
            "help": "change the request to fit the operation; each problem names the rule and where it is in the \
                     document (`[server] openapi_validate = \"warn\"` lets such requests through)",
            "problems": problems,
        });
        Some(Violations { status, json: Arc::new(json), enforce: self.mode == ValidateMode::Enforce })
    }
}

fn check_body(body: &BodyCheck, req: &RequestView<'_>, problems: &mut Vec<Value>, status: &mut StatusCode) {
    if req.body.is_empty() {
        if body.required {
            let media: Vec<&str> = body.media.iter().map(|(m, _)| m.as_str()).collect();
            problems.push(json!({
                "pointer": "/body",
                "rule": "required",
                "message": format!("the request body is required ({})", media.join(", ")),
                "schema": format!("{}/required", body.at),
            }));
        }
        return;
    }
    let given = req
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .unwrap_or_default();
    let fits = |m: &str| {
        m == given
            || m == "*/*"
            || m.strip_suffix("/*").is_some_and(|t| given.split('/').next() == Some(t))
            || m.split(';').next().is_some_and(|m| m.trim() == given)
    };
    let Some((media, schema)) = body.media.iter().find(|(m, _)| fits(m)) else {
        let media: Vec<&str> = body.media.iter().map(|(m, _)| m.as_str()).collect();
        let given = if given.is_empty() { "none".to_owned() } else { format!("`{given}`") };
        problems.push(json!({
            "pointer": "/header/content-type",
            "rule": "content-type",
            "message": format!("the body's content type is {given}; the operation takes {}", media.join(", ")),
            "schema": format!("{}/content", body.at),
        }));
        return;
    };
    // JSON by the operation's word, or by the client's under a wildcard the operation takes.
    let json = is_json(media) || (media.contains('*') && is_json(&given));
    if !json {
        return;
    }
    match serde_json::from_slice::<Value>(req.body) {
        Ok(value) => {
            if let Some(schema) = schema {
                push_errors(problems, schema, &value, "/body");
            }
        }
        Err(e) => {
            *status = StatusCode::BAD_REQUEST;
            problems.push(json!({
                "pointer": "/body",
                "rule": "json",
                "message": format!("the body is not JSON: {e}"),
                "schema": format!("{}/content/{}", body.at, escape(media)),
            }));
        }
    }
}

fn push_errors(problems: &mut Vec<Value>, schema: &Schema, value: &Value, prefix: &str) {
    // The common case, a value that fits, takes the validator's fast path, which collects nothing.
    if schema.validator.is_valid(value) {
        return;
    }
    for e in schema.validator.iter_errors(value).take(MAX_PROBLEMS) {
        let at = match e.absolute_keyword_location() {
            Some(uri) => display_uri(uri.as_str()),
            None => format!("{}{}", schema.at, e.schema_path()),
        };
        problems.push(json!({
            "pointer": format!("{prefix}{}", e.instance_path()),
            "rule": e.kind().keyword(),
            "message": e.to_string(),
            "schema": at,
        }));
    }
}

/// `spec.yaml#/components/schemas/Pet/required` for the registry's URI of that place.
fn display_uri(uri: &str) -> String {
    let rest = uri.strip_prefix(BASE).unwrap_or(uri);
    percent_encoding::percent_decode_str(rest).decode_utf8_lossy().into_owned()
}

fn is_json(media: &str) -> bool {
    let essence = media.split(';').next().unwrap_or("").trim();
    essence == "application/json" || essence.ends_with("+json")
}

fn coerce(kind: &Kind, text: &str) -> Value {
    let parsed = match kind {
        Kind::Integer => text.parse::<i64>().ok().map(Value::from),
        Kind::Number => text.parse::<f64>().ok().and_then(serde_json::Number::from_f64).map(Value::Number),
        Kind::Boolean => match text {
            "true" => Some(Value::Bool(true)),
            "false" => Some(Value::Bool(false)),
            _ => None,
        },
        Kind::Text | Kind::Array(_) => None,
    };
    // Text that does not read as its type stays text, so that the schema's `type` reports it.
    parsed.unwrap_or_else(|| Value::String(text.to_owned()))
}

fn escape(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

/// The characters a URI fragment cannot hold as they are.
const FRAGMENT: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'<')
    .add(b'>')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'|')
    .add(b'\\')
    .add(b'^')
    .add(b'%')
    .add(b'#')
    .add(b'[')
    .add(b']');

/// Compiles the schemas of one document: a registry holding each of its files, so that `$ref`s between them
/// resolve offline, and one validator per schema, each a `$ref` to its place so that errors name that place.
struct Compiler<'s> {
    spec: &'s Spec,
    registry: jsonschema::Registry<'static>,
    draft: jsonschema::Draft,
    root: String,
}

impl<'s> Compiler<'s> {
    fn new(spec: &'s Spec, path: &Path) -> Result<Self, String> {
        let root = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "openapi".into());
        let draft = if spec.v31 { jsonschema::Draft::Draft202012 } else { jsonschema::Draft::Draft4 };
        let mut builder = jsonschema::Registry::new().draft(draft);
        for (key, value) in spec.docs.files() {
            if !key.is_empty() && key == root {
                continue;
            }
            let mut value = value.clone();
            if !spec.v31 {
                nullable_to_type(&mut value);
            }
            let uri = format!("{BASE}{}", if key.is_empty() { root.as_str() } else { key });
            builder = builder.add(uri, value).map_err(|e| format!("cannot read its schemas: {e}"))?;
        }
        let registry = builder.prepare().map_err(|e| format!("cannot read its schemas: {e}"))?;
        Ok(Compiler { spec, registry, draft, root })
    }

    fn uri(&self, file: &str) -> String {
        format!("{BASE}{}", if file.is_empty() { self.root.as_str() } else { file })
    }

    fn display(&self, file: &str, pointer: &str) -> String {
        // Named like the registry's locations (`display_uri`), so that all of one answer's places read alike.
        format!("{}#{pointer}", if file.is_empty() { self.root.as_str() } else { file })
    }

    fn schema(&self, file: &str, pointer: &str) -> Result<Schema, String> {
        let target = format!("{}#{}", self.uri(file), percent_encoding::utf8_percent_encode(pointer, FRAGMENT));
        let validator = jsonschema::options()
            .with_draft(self.draft)
            .with_registry(&self.registry)
            // `pattern`s run on request data: the `regex` crate's linear time, with the route file's size limits,
            // rather than a backtracking engine a crafted value could keep busy.
            .with_pattern_options(
                jsonschema::PatternOptions::regex()
                    .size_limit(crate::config::REGEX_SIZE_LIMIT)
                    .dfa_size_limit(crate::config::REGEX_SIZE_LIMIT),
            )
            .build(&json!({ "$ref": target }))
            .map_err(|e| format!("the schema at {} does not compile: {e}", self.display(file, pointer)))?;
        Ok(Schema { validator, at: self.display(file, pointer) })
    }

    fn kind(&self, file: &str, pointer: &str, depth: usize) -> Kind {
        let Ok((file, pointer, v)) = self.spec.docs.locate(file, pointer) else { return Kind::Text };
        let ty = match v.get("type") {
            Some(Value::String(t)) => t.as_str(),
            Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).find(|t| *t != "null").unwrap_or(""),
            _ => "",
        };
        match ty {
            "integer" => Kind::Integer,
            "number" => Kind::Number,
            "boolean" => Kind::Boolean,
            "array" if depth < 2 => Kind::Array(Box::new(self.kind(&file, &format!("{pointer}/items"), depth + 1))),
            _ => Kind::Text,
        }
    }

    fn op(&self, op: &SpecOp) -> Result<OpCheck, String> {
        let docs = &self.spec.docs;
        let (_, _, value) = docs.locate(&op.file, &op.pointer)?;
        let item = op.pointer.rsplit_once('/').map_or("", |(item, _)| item);
        // Path segments: the route path is the base path, then the document's path, segment for segment.
        let raw: Vec<&str> = op.raw_path.split('/').collect();
        let offset = op.path.split('/').count().saturating_sub(raw.len());
        let mut params: Vec<ParamCheck> = Vec::new();
        for list in [format!("{item}/parameters"), format!("{}/parameters", op.pointer)] {
            let n = docs.locate(&op.file, &list).ok().and_then(|(_, _, v)| v.as_array().map(Vec::len)).unwrap_or(0);
            for i in 0..n {
                let (file, pointer, p) = docs.locate(&op.file, &format!("{list}/{i}"))?;
                let (Some(name), Some(place)) =
                    (p.get("name").and_then(Value::as_str), p.get("in").and_then(Value::as_str))
                else {
                    continue;
                };
                let place = match place {
                    "path" => match raw.iter().position(|s| *s == format!("{{{name}}}")) {
                        Some(j) => Place::Path(offset + j),
                        None => continue,
                    },
                    "query" => Place::Query,
                    // OpenAPI: a header parameter named Accept, Content-Type or Authorization is ignored.
                    "header"
                        if !["accept", "content-type", "authorization"]
                            .contains(&name.to_ascii_lowercase().as_str()) =>
                    {
                        Place::Header
                    }
                    _ => continue,
                };
                let name = if place == Place::Header { name.to_ascii_lowercase() } else { name.to_owned() };
                let required =
                    matches!(place, Place::Path(_)) || p.get("required").and_then(Value::as_bool) == Some(true);
                let (kind, schema) = match p.get("schema") {
                    Some(_) => {
                        let at = format!("{pointer}/schema");
                        (self.kind(&file, &at, 0), Some(self.schema(&file, &at)?))
                    }
                    None => (Kind::Text, None),
                };
                let check = ParamCheck { name, place, required, kind, schema, at: self.display(&file, &pointer) };
                // An operation's parameter replaces the path item's of the same name and place.
                params.retain(|q| !(q.name == check.name && q.place.word() == check.place.word()));
                params.push(check);
            }
        }
        let body = match value.get("requestBody") {
            None => None,
            Some(_) => {
                let (file, pointer, b) = docs.locate(&op.file, &format!("{}/requestBody", op.pointer))?;
                let mut media = Vec::new();
                for (m, mo) in b.get("content").and_then(Value::as_object).into_iter().flatten() {
                    let schema = match mo.get("schema") {
                        Some(_) => Some(self.schema(&file, &format!("{pointer}/content/{}/schema", escape(m)))?),
                        None => None,
                    };
                    media.push((m.to_ascii_lowercase(), schema));
                }
                let required = b.get("required").and_then(Value::as_bool) == Some(true);
                (!media.is_empty()).then(|| BodyCheck { required, media, at: self.display(&file, &pointer) })
            }
        };
        let method = Method::from_bytes(op.method.as_bytes()).map_err(|e| e.to_string())?;
        Ok(OpCheck { method, at: op.at.clone(), params, body })
    }

    /// The schema of `op`'s answer with `status` and a JSON body, where there is one.
    fn response(&self, op: &SpecOp, status: u16) -> Option<Schema> {
        let docs = &self.spec.docs;
        let (file, pointer, responses) = docs.locate(&op.file, &format!("{}/responses", op.pointer)).ok()?;
        let responses = responses.as_object()?;
        let code = status.to_string();
        let range = format!("{}XX", status / 100);
        let key = [code.as_str(), range.as_str(), "default"]
            .into_iter()
            .find(|k| responses.contains_key(*k) || responses.keys().any(|r| r.eq_ignore_ascii_case(k)))?;
        let key = responses.keys().find(|r| r.eq_ignore_ascii_case(key))?;
        let (file, pointer, response) = docs.locate(&file, &format!("{pointer}/{}", escape(key))).ok()?;
        let content = response.get("content")?.as_object()?;
        let media = content.keys().find(|m| is_json(m))?;
        content[media].get("schema")?;
        self.schema(&file, &format!("{pointer}/content/{}/schema", escape(media))).ok()
    }
}

/// OpenAPI 3.0's `nullable: true` as JSON Schema says it: `null` added to the `type` (and to an `enum`).
fn nullable_to_type(v: &mut Value) {
    match v {
        Value::Object(m) => {
            if m.get("nullable") == Some(&Value::Bool(true)) {
                if let Some(Value::String(t)) = m.get("type") {
                    let t = t.clone();
                    m.insert("type".into(), json!([t, "null"]));
                }
                if let Some(Value::Array(e)) = m.get_mut("enum")
                    && !e.contains(&Value::Null)
                {
                    e.push(Value::Null);
                }
            }
            m.values_mut().for_each(nullable_to_type);
        }
        Value::Array(a) => a.iter_mut().for_each(nullable_to_type),
        _ => {}
    }
}

/// Warns about each route of the route file whose JSON answer does not fit the response schema of the operation it
/// stands for, naming the route (file and line) and the schema (document and pointer).
fn warn_misfits(config: &Config, spec: &Spec) {
    let Ok(compiler) = Compiler::new(spec, Path::new(&spec.name)) else { return };
    let ops: Vec<(String, &SpecOp)> = spec.ops.iter().map(|op| (shape(&op.path), op)).collect();
    for rc in &config.routes {
        let BodyConfig::Fixed(bytes) = &rc.body else { continue };
        let json_type = rc.headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(is_json);
        if !json_type || bytes.is_empty() {
            continue;
        }
        let Ok(body) = serde_json::from_slice::<Value>(bytes) else { continue };
        let s = shape(&rc.path);
        for (_, op) in ops.iter().filter(|(p, op)| *p == s && methods_have(&rc.methods, &op.method)) {
            let Some(schema) = compiler.response(op, rc.status.as_u16()) else { continue };
            let errors: Vec<String> = schema
                .validator
                .iter_errors(&body)
                .take(5)
                .map(|e| {
                    let at = e.instance_path().to_string();
                    format!("{}: {e}", if at.is_empty() { "/" } else { at.as_str() })
                })
                .collect();
            if errors.is_empty() {
                continue;
            }
            let file = config.sources.get(rc.origin.source).map(|s| s.path.display().to_string()).unwrap_or_default();
            tracing::warn!(
                "{file}:{}: the route's JSON answer does not fit the response schema at {} ({} {} {}): {}",
                rc.origin.line,
                schema.at,
                op.method,
                op.raw_path,
                rc.status.as_u16(),
                errors.join("; ")
            );
        }
    }
}

fn methods_have(methods: &Methods, method: &str) -> bool {
    match methods {
        Methods::Any => true,
        Methods::List(list) => list.iter().any(|m| m.as_str() == method),
    }
}
