//! OpenAPI 3.0 and 3.1 to route-file text.
//!
//! The document is read as a plain `serde_json::Value` rather than through a typed OpenAPI model: the two versions
//! differ (3.1's schemas are full JSON Schema, with `type` lists and numeric `exclusiveMinimum`), the typed crates
//! each cover one of them, and a mock needs only a small part of the document: paths, operations, responses,
//! examples and schemas. Whatever the converter does not understand is a note, never a failure.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

use super::schema::Generator;
use super::{ImportError, Imported, MAX_DOCUMENT, Note};

/// The methods an OpenAPI path item may hold, in the order the route file lists them.
const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];
/// How many `$ref`s in a row are followed before the chain is called a loop.
const MAX_REF_CHAIN: usize = 64;
/// How many other files a document may reach through `$ref`s.
const MAX_FILES: usize = 256;

/// Reads a file, refusing one over [`MAX_DOCUMENT`] before reading it all.
pub(super) fn read_bounded(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut text = String::new();
    file.take(MAX_DOCUMENT as u64 + 1).read_to_string(&mut text).map_err(|e| e.to_string())?;
    if text.len() > MAX_DOCUMENT {
        return Err(format!("larger than {MAX_DOCUMENT} bytes"));
    }
    Ok(text)
}

fn parse(text: &str, name: &str) -> Result<Value, ImportError> {
    if text.len() > MAX_DOCUMENT {
        return Err(ImportError::TooLarge { name: name.into(), size: text.len(), limit: MAX_DOCUMENT });
    }
    // A byte-order mark (Windows editors write one) made a YAML document "more than one document".
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') {
        return serde_json::from_str(text)
            .map_err(|e| ImportError::Parse { name: name.into(), reason: format!("JSON: {e}") });
    }
    // YAML is a superset of JSON, but a JSON parse error reads better for a file that starts with `{`.
    serde_norway::from_str(text).map_err(|e| ImportError::Parse { name: name.into(), reason: format!("YAML: {e}") })
}

/// The document and the files its `$ref`s reach, each by its path relative to the document's folder (the document
/// itself is `""`).
pub(crate) struct Docs {
    files: HashMap<String, Value>,
}

impl Docs {
    /// Every file read, by its key (the document itself is `""`).
    pub(crate) fn files(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.files.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The value at `pointer` in `file`, its `$ref`s followed: the file and pointer where it really is, and it.
    pub(crate) fn locate<'d>(&'d self, file: &str, pointer: &str) -> Result<(String, String, &'d Value), String> {
        let (mut file, mut pointer) = (file.to_owned(), pointer.to_owned());
        for _ in 0..MAX_REF_CHAIN {
            let Some(value) = self.files.get(&file).and_then(|d| d.pointer(&pointer)) else {
                return Err(format!("nothing at `{pointer}`"));
            };
            let Some(target) = value.get("$ref").and_then(Value::as_str) else {
                return Ok((file, pointer, value));
            };
            let (path, fragment) = target.split_once('#').unwrap_or((target, ""));
            let key = if path.is_empty() { Some(file.clone()) } else { join(&file, path) };
            match key.filter(|k| self.files.contains_key(k)) {
                Some(k) => file = k,
                None => return Err(format!("`$ref: {target}` names another file, which was not read")),
            }
            pointer = percent_encoding::percent_decode_str(fragment).decode_utf8_lossy().into_owned();
        }
        Err(format!("`$ref`s from here loop or chain more than {MAX_REF_CHAIN} times"))
    }

    /// Follows `$ref`s from `value` (found in `file`) to the value they name, with the file it is in.
    pub(super) fn resolve<'d>(&'d self, file: &'d str, value: &'d Value) -> Result<(&'d str, &'d Value), String> {
        let (mut file, mut value) = (file, value);
        for _ in 0..MAX_REF_CHAIN {
            let Some(target) = value.get("$ref").and_then(Value::as_str) else {
                return Ok((file, value));
            };
            let (path, pointer) = target.split_once('#').unwrap_or((target, ""));
            let key = if path.is_empty() { Some(file.to_owned()) } else { join(file, path) };
            let Some((key, doc)) = key.as_deref().and_then(|k| self.files.get_key_value(k)) else {
                return Err(format!(
                    "`$ref: {target}` names another file, which was not read (import the document by its path, \
                     with the file next to it)"
                ));
            };
            let pointer = percent_encoding::percent_decode_str(pointer).decode_utf8_lossy();
            let Some(found) = doc.pointer(&pointer) else {
                return Err(format!("`$ref: {target}` names nothing in the document"));
            };
            (file, value) = (key.as_str(), found);
        }
        Err(format!("`$ref`s from here loop or chain more than {MAX_REF_CHAIN} times"))
    }
}

/// `path` relative to the folder of `from` (both relative to the document's folder), or `None` when it leaves that
/// folder or is absolute: an import reads only files beside the document.
fn join(from: &str, path: &str) -> Option<String> {
    if path.starts_with('/') || path.contains("://") || path.contains('\\') {
        return None;
    }
    let mut parts: Vec<&str> = from.split('/').collect();
    parts.pop();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.into_iter().filter(|p| !p.is_empty()).collect::<Vec<_>>().join("/"))
}

/// Every file part of a `$ref` under `value`.
fn file_refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                let path = r.split('#').next().unwrap_or("");
                if !path.is_empty() {
                    out.push(path);
                }
            }
            m.values().for_each(|v| file_refs(v, out));
        }
        Value::Array(a) => a.iter().for_each(|v| file_refs(v, out)),
        _ => {}
    }
}

/// Reads the files the document's `$ref`s name, and the ones theirs name, from `dir`.
fn load_siblings(
    docs: &mut Docs,
    dir: &Path,
    name: &str,
    notes: &mut Vec<Note>,
    read: Reader<'_>,
) -> Result<(), ImportError> {
    let mut queue = vec![String::new()];
    let mut seen: HashSet<String> = HashSet::from([String::new()]);
    while let Some(file) = queue.pop() {
        let mut refs = Vec::new();
        file_refs(&docs.files[&file], &mut refs);
        let wanted: Vec<String> = refs
            .into_iter()
            .filter_map(|r| match join(&file, r) {
                Some(k) => Some(k),
                None => {
                    notes.push(Note {
                        location: format!("{name}: {file}"),
                        message: format!("`$ref: {r}` is outside the document's folder or remote; not read"),
                    });
                    None
                }
            })
            .filter(|k| seen.insert(k.clone()))
            .collect();
        for key in wanted {
            if docs.files.len() >= MAX_FILES {
                return Err(ImportError::NotOpenApi {
                    name: name.into(),
                    reason: format!("its `$ref`s reach more than {MAX_FILES} files"),
                });
            }
            let text = read(&dir.join(&key)).map_err(|reason| ImportError::Read {
                name: name.into(),
                file: key.clone(),
                reason,
            })?;
            let value = parse(&text, &key)?;
            docs.files.insert(key.clone(), value);
            queue.push(key);
        }
    }
    Ok(())
}

/// One answer an operation documents: a status and a body.
struct Answer {
    status: u16,
    /// The example's name, for `Prefer: example=NAME`.
    example: Option<String>,
    media: Option<String>,
    body: Option<Value>,
}

/// A route table being written, with the comments that go above it.
struct Route {
    comments: Vec<String>,
    table: toml::Table,
}

/// How the files a document's `$ref`s name are read: [`read_bounded`] for an import, a reader that records each file
/// for the watcher when the document is served.
pub(crate) type Reader<'r> = &'r mut dyn FnMut(&Path) -> Result<String, String>;

/// An OpenAPI document read to be served: every file, and each operation imported with where it is.
pub(crate) struct Spec {
    /// The document's name, as locations show it.
    pub(crate) name: String,
    /// The document (key `""`) and the files its `$ref`s reach.
    pub(crate) docs: Docs,
    /// Whether it is OpenAPI 3.1 (full JSON Schema 2020-12) rather than 3.0 (a draft 4 dialect).
    pub(crate) v31: bool,
    /// The operations that became routes, in the document's order.
    pub(crate) ops: Vec<SpecOp>,
}

/// One operation of a [`Spec`].
pub(crate) struct SpecOp {
    /// The method, upper case.
    pub(crate) method: String,
    /// The route path the importer wrote (base path included, parameters named as in the other routes).
    pub(crate) path: String,
    /// The path as the document writes it, e.g. `/pets/{petId}`.
    pub(crate) raw_path: String,
    /// The file holding the operation and its JSON pointer there.
    pub(crate) file: String,
    /// The operation's JSON pointer in `file`.
    pub(crate) pointer: String,
    /// `name#/paths/~1pets/get`, for messages.
    pub(crate) at: String,
}

pub(super) fn convert(text: &str, name: &str, dir: Option<&Path>) -> Result<Imported, ImportError> {
    convert_spec(text, name, dir, &mut |p: &Path| read_bounded(p)).map(|(imported, _)| imported)
}

/// [`convert`], reading the files `$ref`s name with `read`, and handing back the document with its operations.
pub(crate) fn convert_spec(
    text: &str,
    name: &str,
    dir: Option<&Path>,
    read: Reader<'_>,
) -> Result<(Imported, Spec), ImportError> {
    let root = parse(text, name)?;
    let not_openapi = |reason: &str| ImportError::NotOpenApi { name: name.into(), reason: reason.into() };
    match root.get("openapi").and_then(Value::as_str) {
        Some(v) if v.starts_with("3.") => {}
        Some(v) => {
            return Err(not_openapi(&format!(
                "OpenAPI {v} is not supported\nhelp: hotroute imports OpenAPI 3.0 and 3.1"
            )));
        }
        None if root.get("swagger").is_some() => {
            return Err(not_openapi(
                "this is a Swagger 2.0 document\nhelp: convert it to OpenAPI 3 first (e.g. with swagger2openapi), \
                 then import that",
            ));
        }
        None => {
            return Err(not_openapi(
                "no `openapi` version field at the top\nhelp: name an OpenAPI 3.0 or 3.1 document (JSON or YAML)",
            ));
        }
    }
    let mut notes = Vec::new();
    let mut docs = Docs { files: HashMap::from([(String::new(), root)]) };
    if let Some(dir) = dir {
        load_siblings(&mut docs, dir, name, &mut notes, read)?;
    }
    let docs = docs;
    let root = &docs.files[""];
    let paths = root.get("paths").and_then(Value::as_object);
    let prefix = base_path(root);

    let mut out = String::new();
    let title = root.pointer("/info/title").and_then(Value::as_str).unwrap_or("an OpenAPI document");
    let version = root.pointer("/info/version").and_then(Value::as_str).unwrap_or("");
    let _ =
        writeln!(out, "# Imported by `hotroute import openapi` from {name}: {} {}", one_line(title), one_line(version));
    out.push_str(
        "# Each operation answers its first 2xx response; `Prefer: code=404` or `Prefer: example=NAME` picks another.\n",
    );

    // matchit, as the router uses it: a path it would refuse, or one that clashes with an earlier one, is kept as a
    // comment instead of making the whole file fail to load.
    let mut tree = matchit::Router::new();
    let mut inserted: HashSet<String> = HashSet::new();
    // OpenAPI names a parameter per path (`/pets/{petId}`, `/pets/{id}/toys`); matchit needs one name per place.
    let mut param_names: HashMap<String, String> = HashMap::new();
    let mut generator = Generator::new(&docs);
    let mut ops: Vec<Operation> = Vec::new();
    let mut spec_ops: Vec<(usize, SpecOp)> = Vec::new();

    for (raw_path, item) in paths.into_iter().flatten() {
        let item_at = format!("{name}#/paths/{}", escape_pointer(raw_path));
        let (item_file, item) = match docs.resolve("", item) {
            Ok(found) => found,
            Err(e) => {
                notes.push(Note { location: item_at.clone(), message: e });
                continue;
            }
        };
        if !raw_path.starts_with('/') {
            notes.push(Note { location: item_at, message: "not imported: a path must start with `/`".into() });
            continue;
        }
        let item_place = docs.locate("", &format!("/paths/{}", escape_pointer(raw_path))).ok();
        let path = route_path(&prefix, raw_path, &mut param_names);
        let has_get = item.get("get").is_some();
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let at = format!("{item_at}/{method}");
            let mut route_notes = Vec::new();
            if method == "head" && has_get {
                notes.push(Note { location: at, message: "skipped: the `get` route answers HEAD too".into() });
                continue;
            }
            let answers = answers(&docs, &mut generator, item_file, op, &at, &mut route_notes);
            let mut routes = routes(&path, method, &answers, &mut route_notes);
            if let Some(summary) = op.get("summary").or(op.get("operationId")).and_then(Value::as_str) {
                routes[0].comments.insert(0, format!("{} {raw_path}: {}", method.to_uppercase(), one_line(summary)));
            }
            // A path matchit refuses, or one that clashes, is commented out with the reason.
            let refused = if inserted.contains(&path) {
                None
            } else {
                match tree.insert(path.clone(), ()) {
                    Ok(()) => {
                        inserted.insert(path.clone());
                        None
                    }
                    Err(e) => Some(format!("not imported: the path `{path}` cannot be routed: {e}")),
                }
            };
            for n in route_notes {
                notes.push(Note { location: at.clone(), message: n });
            }
            if let (None, Some((file, pointer, _))) = (&refused, &item_place) {
                let op = SpecOp {
                    method: method.to_uppercase(),
                    path: path.clone(),
                    raw_path: raw_path.clone(),
                    file: file.clone(),
                    pointer: format!("{pointer}/{method}"),
                    at: at.clone(),
                };
                spec_ops.push((ops.len(), op));
            }
            ops.push(Operation { at, routes, refused });
        }
    }

    let (mut text, mut route_count) = assemble(&out, &ops);
    // The whole file is checked once; only when it fails is each operation checked alone, to comment out the ones
    // the loader refuses (a path it does not take, a header value it rejects) and keep the rest.
    if crate::config::load_str(&text, Path::new(name), Path::new(".")).is_err() {
        for op in ops.iter_mut().filter(|op| op.refused.is_none()) {
            let alone: String = op.routes.iter().map(render).collect();
            if let Err(e) = crate::config::load_str(&alone, Path::new(name), Path::new(".")) {
                op.refused = Some(format!("not imported: {}", one_line(&e.first().message)));
            }
        }
        (text, route_count) = assemble(&out, &ops);
        // What is left must load: a failure here is a converter bug, reported rather than written.
        if let Err(e) = crate::config::load_str(&text, Path::new(name), Path::new(".")) {
            return Err(ImportError::Internal { name: name.into(), reason: e.to_string() });
        }
    }
    for op in &ops {
        if let Some(reason) = &op.refused {
            notes.push(Note { location: op.at.clone(), message: reason.clone() });
        }
    }
    if route_count == 0 {
        notes.push(Note { location: format!("{name}#/paths"), message: "no operations to import".into() });
    }
    let v31 = docs.files[""].get("openapi").and_then(Value::as_str).is_some_and(|v| v.starts_with("3.1"));
    // An operation the loader refused is a comment, not a route: it is not served, so not checked either.
    let ops_served = spec_ops.into_iter().filter(|(i, _)| ops[*i].refused.is_none()).map(|(_, op)| op).collect();
    let spec = Spec { name: name.to_owned(), docs, v31, ops: ops_served };
    Ok((Imported { routes: text, route_count, notes }, spec))
}

/// One operation's routes, or why they are kept as a comment.
struct Operation {
    at: String,
    routes: Vec<Route>,
    refused: Option<String>,
}

/// The route file: `header`, then each operation's routes (a refused one as a comment where it would go).
fn assemble(header: &str, ops: &[Operation]) -> (String, usize) {
    let mut out = String::from(header);
    let mut count = 0;
    for op in ops {
        if let Some(reason) = &op.refused {
            let _ = writeln!(out, "\n# {reason}");
            for line in op.routes.iter().map(render).collect::<String>().lines() {
                let _ = writeln!(out, "# {line}");
            }
            continue;
        }
        for r in &op.routes {
            count += 1;
            out.push('\n');
            for n in &r.comments {
                let _ = writeln!(out, "# {}", one_line(n));
            }
            out.push_str(&render(r));
        }
    }
    (out, count)
}

/// The first server's path, e.g. `/v1` from `https://api.example.com/v1/` (its `{variables}` at their defaults).
fn base_path(root: &Value) -> String {
    let Some(server) = root.pointer("/servers/0") else { return String::new() };
    let mut url = server.get("url").and_then(Value::as_str).unwrap_or("").to_owned();
    if let Some(vars) = server.get("variables").and_then(Value::as_object) {
        for (k, v) in vars {
            let default = v.get("default").and_then(Value::as_str).unwrap_or("");
            url = url.replace(&format!("{{{k}}}"), default);
        }
    }
    let path = match url.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("", |i| &rest[i..]),
        None => url.as_str(),
    };
    let path = path.split(['?', '#']).next().unwrap_or("").trim_end_matches('/');
    if path.starts_with('/') { path.to_owned() } else { String::new() }
}

/// The route path: the base path, then the OpenAPI path with each parameter named as the first path through the
/// same place named it.
fn route_path(prefix: &str, raw: &str, names: &mut HashMap<String, String>) -> String {
    let mut shape = String::new();
    let mut out = String::from(prefix);
    for segment in raw.split('/').skip(1) {
        out.push('/');
        shape.push('/');
        match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(param) if !param.contains(['{', '}', '*']) => {
                let name = names.entry(shape.clone()).or_insert_with(|| param.to_owned());
                let _ = write!(out, "{{{name}}}");
                shape.push_str("{}");
            }
            _ => {
                out.push_str(segment);
                shape.push_str(segment);
            }
        }
    }
    if out.is_empty() { "/".into() } else { out }
}

/// The answers an operation documents, the primary one (its first 2xx) first.
fn answers<'d>(
    docs: &'d Docs,
    generator: &mut Generator<'d>,
    file: &'d str,
    op: &'d Value,
    at: &str,
    notes: &mut Vec<String>,
) -> Vec<Answer> {
    let Some(responses) = op.get("responses").and_then(Value::as_object) else {
        notes.push("no `responses`: answers 200 with an empty body".into());
        return vec![Answer { status: 200, example: None, media: None, body: None }];
    };
    let mut keys: Vec<&String> = responses.keys().collect();
    // The first 2xx answers by default; the others keep their order.
    if let Some(i) = keys.iter().position(|k| k.starts_with('2')) {
        let k = keys.remove(i);
        keys.insert(0, k);
    }
    let mut out = Vec::new();
    for key in keys {
        let status = match key.as_str() {
            "default" if out.is_empty() => 200,
            "default" => 500,
            k => match k.parse::<u16>() {
                Ok(s) if (100..=599).contains(&s) => s,
                _ => match k.as_bytes() {
                    [d @ b'1'..=b'5', b'X' | b'x', b'X' | b'x'] => u16::from(d - b'0') * 100,
                    _ => {
                        notes.push(format!("response `{key}` is not a status code; left out"));
                        continue;
                    }
                },
            },
        };
        let (file, response) = match docs.resolve(file, &responses[key]) {
            Ok(found) => found,
            Err(e) => {
                notes.push(format!("response {key}: {e}"));
                continue;
            }
        };
        let Some(content) = response.get("content").and_then(Value::as_object).filter(|c| !c.is_empty()) else {
            out.push(Answer { status, example: None, media: None, body: None });
            continue;
        };
        // JSON first: it is what a mock's client most likely parses.
        let (media, media_obj) = content
            .iter()
            .find(|(m, _)| m.starts_with("application/json"))
            .or_else(|| content.iter().find(|(m, _)| is_json(m)))
            .or_else(|| content.iter().next())
            .expect("content is not empty");
        let media = media.clone();
        let mut found = false;
        if let Some(v) = media_obj.get("example") {
            out.push(Answer { status, example: None, media: Some(media.clone()), body: Some(v.clone()) });
            found = true;
        }
        if let Some(examples) = media_obj.get("examples").and_then(Value::as_object) {
            for (ex_name, ex) in examples {
                match docs.resolve(file, ex) {
                    Ok((_, ex)) => match ex.get("value") {
                        Some(v) => {
                            out.push(Answer {
                                status,
                                example: Some(ex_name.clone()),
                                media: Some(media.clone()),
                                body: Some(v.clone()),
                            });
                            found = true;
                        }
                        None => notes.push(format!(
                            "response {key} example `{ex_name}` has no `value` (an `externalValue` is not fetched); left out"
                        )),
                    },
                    Err(e) => notes.push(format!("response {key} example `{ex_name}`: {e}")),
                }
            }
        }
        if found {
            continue;
        }
        let body = match media_obj.get("schema") {
            Some(schema) => {
                let body = generator.example(file, schema);
                for p in generator.problems.drain(..) {
                    notes.push(format!("response {key}: {p}"));
                }
                if std::mem::take(&mut generator.truncated) {
                    notes.push(format!("response {key}: the schema makes a very large example; it was cut short"));
                }
                body
            }
            None => None,
        };
        if body.is_none() {
            notes.push(format!(
                "response {key} ({media}) has no example and no schema to make one: answers an empty body"
            ));
        }
        out.push(Answer { status, example: None, media: Some(media), body });
    }
    if out.is_empty() {
        out.push(Answer { status: 200, example: None, media: None, body: None });
        notes.push(format!("no usable response in {at}: answers 200 with an empty body"));
    }
    out
}

fn is_json(media: &str) -> bool {
    let essence = media.split(';').next().unwrap_or("").trim();
    essence == "application/json" || essence.ends_with("+json")
}

/// The routes of one operation: one per named example and one per other status, each selected by the `Prefer`
/// header, then the primary answer, unconditional, last.
fn routes(path: &str, method: &str, answers: &[Answer], notes: &mut Vec<String>) -> Vec<Route> {
    let mut out = Vec::new();
    if answers.len() > 1 {
        let mut names = HashSet::new();
        for a in answers {
            if let Some(n) = &a.example
                && names.insert(n.clone())
            {
                out.push(route(path, method, a, Some(("example", n.clone())), notes));
            }
        }
        let mut codes = HashSet::new();
        for a in answers {
            // The primary answer's code is the fallback's already.
            if a.status != answers[0].status && codes.insert(a.status) {
                out.push(route(path, method, a, Some(("code", a.status.to_string())), notes));
            }
        }
    }
    out.push(route(path, method, &answers[0], None, notes));
    out
}

fn route(path: &str, method: &str, a: &Answer, prefer: Option<(&str, String)>, notes: &mut Vec<String>) -> Route {
    let mut t = toml::Table::new();
    let mut comments = Vec::new();
    t.insert("path".into(), path.into());
    t.insert("method".into(), method.to_uppercase().into());
    if a.status != 200 {
        t.insert("status".into(), i64::from(a.status).into());
    }
    if let Some((key, value)) = &prefer {
        // Prism's syntax: `Prefer: code=404, example=notFound`; the value must be a whole token of the header.
        let regex = format!(r"(^|[\s,;]){key}={}($|[\s,;])", regex::escape(value));
        let mut headers = toml::Table::new();
        headers.insert("prefer".into(), regex.into());
        let mut m = toml::Table::new();
        m.insert("headers_regex".into(), headers.into());
        t.insert("match".into(), m.into());
    }
    let mut headers = toml::Table::new();
    match (&a.media, &a.body) {
        (Some(media), Some(body)) if is_json(media) => {
            if media.split(';').next() != Some("application/json") {
                headers.insert("content-type".into(), media.as_str().into());
            }
            match toml::Value::try_from(body) {
                // TOML has no null: a body holding one is written as JSON text.
                Ok(v) if !has_null(body) => {
                    t.insert("json".into(), v);
                }
                _ => {
                    headers.insert("content-type".into(), media.as_str().into());
                    t.insert("body".into(), serde_json::to_string_pretty(body).unwrap_or_default().into());
                }
            }
        }
        (Some(media), Some(body)) => {
            headers.insert("content-type".into(), media.as_str().into());
            match body {
                Value::String(s) => {
                    t.insert("body".into(), s.as_str().into());
                }
                other => {
                    comments.push(format!("the {media} example was given as structured data; written as JSON text"));
                    notes.push(format!("the {media} example is not text; written as JSON text"));
                    t.insert("body".into(), other.to_string().into());
                }
            }
        }
        (Some(media), None) => {
            headers.insert("content-type".into(), media.as_str().into());
        }
        (None, _) => {}
    }
    if !headers.is_empty() {
        t.insert("headers".into(), headers.into());
    }
    Route { comments, table: t }
}

fn has_null(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.iter().any(has_null),
        Value::Object(m) => m.values().any(has_null),
        _ => false,
    }
}

/// A `[[route]]` table as TOML text, each value inline: a JSON body keeps its keys in the document's order (TOML
/// would otherwise write nested tables after the plain values) and reads like the JSON it sends.
fn render(r: &Route) -> String {
    let mut out = String::from("[[route]]\n");
    for (key, value) in &r.table {
        let _ = writeln!(out, "{key} = {value}");
    }
    out
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn escape_pointer(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}
