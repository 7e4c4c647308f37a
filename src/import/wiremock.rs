//! WireMock stub mappings to route-file text.
//!
//! A mapping is read as a plain `serde_json::Value`, like an OpenAPI document: WireMock's format has many optional
//! shapes (a pattern is an object of one operator, a header value a string or a list) and whatever the converter
//! does not know is a note, never a failure. Mappings become routes in WireMock's order: by `priority` (1 first,
//! 5 when not given), then in the order the files were read (sorted by path).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::peer::{self, Dialect, Notes, PeerRoute, Seg};
use super::{ImportError, Imported};

/// WireMock's default priority.
const DEFAULT_PRIORITY: i64 = 5;

/// Where the mappings come from.
pub(super) struct Source {
    /// Each file's name as shown in notes, and its JSON.
    files: Vec<(String, Value)>,
    /// The `__files` folder that `bodyFileName` is relative to, if there is one.
    body_files: Option<PathBuf>,
}

/// Reads a mappings folder (recursively, `*.json`), a WireMock root holding `mappings/`, or one file.
pub(super) fn read(path: &Path) -> Result<Source, ImportError> {
    let meta = std::fs::metadata(path).map_err(|e| ImportError::Unreadable {
        file: path.display().to_string(),
        reason: e.to_string(),
        help: "name a folder of WireMock stub mappings (`mappings/`) or one mapping file".into(),
    })?;
    let mut budget = peer::MAX_TOTAL;
    let what = "a WireMock stub mapping";
    if meta.is_file() {
        let value = peer::read_json(path, what, &mut budget)?;
        let parent = path.parent().unwrap_or(Path::new("."));
        let body_files = [parent.join("../__files"), parent.join("__files")].into_iter().find(|p| p.is_dir());
        return Ok(Source { files: vec![(path.display().to_string(), value)], body_files });
    }
    // A WireMock root (`--root-dir`) holds `mappings/` and `__files/`; a mappings folder has `__files/` beside it.
    let (dir, body_files) = if path.join("mappings").is_dir() {
        (path.join("mappings"), Some(path.join("__files")))
    } else {
        (path.to_path_buf(), Some(path.join("../__files")))
    };
    let body_files = body_files.filter(|p| p.is_dir());
    let mut found = Vec::new();
    walk(&dir, 0, &mut found)?;
    found.sort();
    let mut files = Vec::with_capacity(found.len());
    for f in found {
        let value = peer::read_json(&f, what, &mut budget)?;
        files.push((f.display().to_string(), value));
    }
    if files.is_empty() {
        return Err(ImportError::Malformed {
            name: dir.display().to_string(),
            reason: "no `.json` files in this folder\nhelp: name WireMock's `mappings/` folder (or the folder \
                     holding it), or one mapping file"
                .into(),
        });
    }
    Ok(Source { files, body_files })
}

fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> Result<(), ImportError> {
    let unreadable = |e: std::io::Error| ImportError::Unreadable {
        file: dir.display().to_string(),
        reason: e.to_string(),
        help: "check the folder's permissions".into(),
    };
    if depth > peer::MAX_DEPTH {
        return Err(ImportError::Malformed {
            name: dir.display().to_string(),
            reason: format!(
                "folders nest deeper than {} levels\nhelp: name the mappings folder itself",
                peer::MAX_DEPTH
            ),
        });
    }
    for entry in std::fs::read_dir(dir).map_err(unreadable)? {
        let entry = entry.map_err(unreadable)?;
        let path = entry.path();
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        let kind = entry.file_type().map_err(unreadable)?;
        if hidden || path.file_name().is_some_and(|n| n == "__files") {
            continue;
        }
        if kind.is_dir() {
            walk(&path, depth + 1, out)?;
        } else if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json")) {
            if out.len() >= peer::MAX_FILES {
                return Err(ImportError::Malformed {
                    name: dir.display().to_string(),
                    reason: format!("more than {} mapping files\nhelp: import them in parts", peer::MAX_FILES),
                });
            }
            out.push(path);
        }
    }
    Ok(())
}

/// One mapping, found in a file.
struct Stub<'a> {
    at: String,
    priority: i64,
    mapping: &'a Map<String, Value>,
}

pub(super) fn convert_source(source: &Source, name: &str) -> Result<Imported, ImportError> {
    let mut stubs = Vec::new();
    for (file, value) in &source.files {
        let malformed = |reason: String| ImportError::Malformed { name: file.clone(), reason };
        match value {
            Value::Object(m) if m.contains_key("mappings") => {
                let Some(list) = m["mappings"].as_array() else {
                    return Err(malformed("`mappings` is not a list\nhelp: `{\"mappings\": [ {...}, ... ]}`".into()));
                };
                for (i, item) in list.iter().enumerate() {
                    let at = format!("{file}#/mappings/{i}");
                    let Some(mapping) = item.as_object() else {
                        return Err(ImportError::Malformed {
                            name: at,
                            reason: "a mapping is an object with `request` and `response`".into(),
                        });
                    };
                    stubs.push(stub(at, mapping));
                }
            }
            Value::Object(m) if m.contains_key("request") || m.contains_key("response") => {
                stubs.push(stub(format!("{file}#"), m));
            }
            _ => {
                return Err(malformed(
                    "not a WireMock stub mapping: expected an object with `request` and `response`, or with a \
                     `mappings` list\nhelp: name WireMock's `mappings/` folder or one of its files"
                        .into(),
                ));
            }
        }
    }
    // Stable: equal priorities keep the order the files were read in.
    stubs.sort_by_key(|s| s.priority);
    let mut notes = Notes { list: Vec::new() };
    let routes: Vec<PeerRoute> = stubs.iter().map(|s| route(s, source.body_files.as_deref(), &mut notes)).collect();
    let mut header = String::new();
    let _ = writeln!(header, "# Imported by `hotroute import wiremock` from {name}: {} mappings", stubs.len());
    header.push_str(
        "# In WireMock's order: by `priority`, then as read. `# not converted:` lines say what was left out.\n",
    );
    peer::finish(&header, None, routes, name, notes)
}

fn stub(at: String, mapping: &Map<String, Value>) -> Stub<'_> {
    let priority = mapping.get("priority").and_then(Value::as_i64).unwrap_or(DEFAULT_PRIORITY);
    Stub { at, priority, mapping }
}

/// WireMock's scenario start state is `Started`; hotroute's is `started`.
fn state(s: &str) -> String {
    if s == "Started" { "started".into() } else { s.to_owned() }
}

fn route(stub: &Stub<'_>, body_files: Option<&Path>, notes: &mut Notes) -> PeerRoute {
    let m = stub.mapping;
    let mut r = PeerRoute::new(stub.at.clone());
    if let Some(name) = m.get("name").and_then(Value::as_str) {
        r.comments.push(name.to_owned());
    }
    for key in m.keys() {
        if !matches!(
            key.as_str(),
            "id" | "uuid"
                | "name"
                | "request"
                | "response"
                | "priority"
                | "persistent"
                | "metadata"
                | "scenarioName"
                | "requiredScenarioState"
                | "newScenarioState"
                | "insertionIndex"
        ) {
            let at = format!("{}/{}", stub.at, peer::pointer_token(key));
            notes.route(&mut r, &at, format!("`{key}` (WireMock only)"));
        }
    }
    let empty = Map::new();
    let req = m.get("request").and_then(Value::as_object).unwrap_or(&empty);
    let req_at = format!("{}/request", stub.at);
    let mut conditions = toml::Table::new();

    // The path: a literal one (`url`, `urlPath`), a template (`urlPathTemplate`), or a regex on a catch-all.
    let (path, shape) = request_path(req, &req_at, &mut conditions, &mut r, notes);
    r.table.insert("path".into(), path.into());
    let method = req.get("method").and_then(Value::as_str).unwrap_or("ANY").to_uppercase();
    r.table.insert("method".into(), method.into());

    for (key, kind) in [("queryParameters", Kind::Query), ("headers", Kind::Header), ("cookies", Kind::Cookie)] {
        let Some(params) = req.get(key).and_then(Value::as_object) else { continue };
        for (name, p) in params {
            let at = format!("{req_at}/{key}/{}", peer::pointer_token(name));
            if let Err(why) = pattern(kind, name, p, &mut conditions) {
                notes.route(&mut r, &at, why);
            }
        }
    }
    if let Some(params) = req.get("formParameters").and_then(Value::as_object) {
        for (name, p) in params {
            let at = format!("{req_at}/formParameters/{}", peer::pointer_token(name));
            if let Err(why) = pattern(Kind::Form, name, p, &mut conditions) {
                notes.route(&mut r, &at, why);
            }
        }
    }
    if let Some(auth) = req.get("basicAuthCredentials") {
        let user = auth.get("username").and_then(Value::as_str).unwrap_or("");
        let pass = auth.get("password").and_then(Value::as_str).unwrap_or("");
        use base64::Engine as _;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        table(&mut conditions, "headers").insert("authorization".into(), format!("Basic {token}").into());
    }
    if let Some(list) = req.get("bodyPatterns").and_then(Value::as_array) {
        for (i, p) in list.iter().enumerate() {
            let at = format!("{req_at}/bodyPatterns/{i}");
            if let Err(why) = body_pattern(p, &mut conditions) {
                notes.route(&mut r, &at, why);
            }
        }
    }
    for key in req.keys() {
        if !matches!(
            key.as_str(),
            "url"
                | "urlPath"
                | "urlPattern"
                | "urlPathPattern"
                | "urlPathTemplate"
                | "method"
                | "queryParameters"
                | "headers"
                | "cookies"
                | "formParameters"
                | "basicAuthCredentials"
                | "bodyPatterns"
                | "pathParameters"
        ) {
            let at = format!("{req_at}/{}", peer::pointer_token(key));
            notes.route(&mut r, &at, format!("the request condition `{key}` has no hotroute equivalent; not checked"));
        }
    }
    if !conditions.is_empty() {
        r.table.insert("match".into(), conditions.into());
    }
    if let Some(scenario) = m.get("scenarioName").and_then(Value::as_str) {
        let required = m.get("requiredScenarioState").and_then(Value::as_str);
        let next = m.get("newScenarioState").and_then(Value::as_str);
        if required.is_some() || next.is_some() {
            r.table.insert("scenario".into(), scenario.into());
        }
        if let Some(s) = required {
            r.table.insert("state".into(), state(s).into());
        }
        if let Some(s) = next {
            r.table.insert("next_state".into(), state(s).into());
        }
    }
    let resp = m.get("response").and_then(Value::as_object).unwrap_or(&empty);
    response(resp, &format!("{}/response", stub.at), &shape, body_files, &mut r, notes);
    r
}

/// The route path for a request's URL fields, and its segments (for `request.path.[n]` in templates).
fn request_path(
    req: &Map<String, Value>,
    at: &str,
    conditions: &mut toml::Table,
    r: &mut PeerRoute,
    notes: &mut Notes,
) -> (String, Vec<Seg>) {
    let catch_all = || ("/{*path}".to_owned(), vec![Seg::Rest]);
    let literal = |p: &str| -> (String, Vec<Seg>) {
        let segs: Vec<Seg> = p.split('/').skip(1).map(|s| Seg::Lit(s.to_owned())).collect();
        let path: String = p.split('/').skip(1).map(|s| format!("/{}", peer::literal_segment(s))).collect();
        (if path.is_empty() { "/".into() } else { path }, segs)
    };
    if let Some(url) = req.get("url").and_then(Value::as_str) {
        let (path, query) = url.split_once('?').unwrap_or((url, ""));
        for pair in form_urlencoded::parse(query.as_bytes()) {
            table(conditions, "query").insert(pair.0.into_owned(), pair.1.into_owned().into());
        }
        if !query.is_empty() {
            notes.route(r, &format!("{at}/url"), "`url` is matched on its path and each of its query parameters; other parameters in a request are not refused as in WireMock");
        }
        return literal(path);
    }
    if let Some(p) = req.get("urlPath").and_then(Value::as_str) {
        return literal(p);
    }
    if let Some(p) = req.get("urlPathTemplate").and_then(Value::as_str) {
        let segs: Vec<Seg> = p
            .split('/')
            .skip(1)
            .map(|s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => Seg::Param(name.to_owned()),
                None => Seg::Lit(s.to_owned()),
            })
            .collect();
        let path: String = segs
            .iter()
            .map(|s| match s {
                Seg::Param(n) => format!("/{{{n}}}"),
                Seg::Lit(l) => format!("/{}", peer::literal_segment(l)),
                Seg::Rest => String::new(),
            })
            .collect();
        if let Some(params) = req.get("pathParameters").and_then(Value::as_object) {
            for name in params.keys() {
                let at = format!("{at}/pathParameters/{}", peer::pointer_token(name));
                notes.route(r, &at, "a path parameter pattern is not checked: any value matches");
            }
        }
        return (if path.is_empty() { "/".into() } else { path }, segs);
    }
    let (key, regex) = match (req.get("urlPathPattern"), req.get("urlPattern")) {
        (Some(Value::String(re)), _) => ("urlPathPattern", re.clone()),
        (_, Some(Value::String(re))) => ("urlPattern", re.clone()),
        _ => return catch_all(),
    };
    // `urlPattern` is matched against the path and query; hotroute's `path_regex` sees the path only.
    let regex = match regex.split_once(r"\?") {
        Some((path_part, _)) if key == "urlPattern" => {
            notes.route(r, &format!("{at}/{key}"), "the query part of `urlPattern` is not checked");
            format!("{path_part}.*")
        }
        _ => regex,
    };
    conditions.insert("path_regex".into(), format!("^(?:{regex})$").into());
    catch_all()
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Query,
    Header,
    Cookie,
    Form,
}

fn table<'t>(t: &'t mut toml::Table, key: &str) -> &'t mut toml::Table {
    let v = t.entry(key.to_owned()).or_insert_with(|| toml::Table::new().into());
    match v {
        toml::Value::Table(t) => t,
        _ => unreachable!("only tables are inserted under {key}"),
    }
}

/// A query, header, cookie or form pattern as a `match` condition, or why it has none.
fn pattern(kind: Kind, name: &str, p: &Value, m: &mut toml::Table) -> Result<(), String> {
    let Some(obj) = p.as_object() else { return Err("a pattern is an object such as `{\"equalTo\": \"x\"}`".into()) };
    let insensitive = obj.get("caseInsensitive").and_then(Value::as_bool) == Some(true);
    let key_name = if kind == Kind::Header { name.to_ascii_lowercase() } else { name.to_owned() };
    let (eq_key, re_key) = match kind {
        Kind::Query => ("query", Some("query_regex")),
        Kind::Header => ("headers", Some("headers_regex")),
        Kind::Cookie => ("cookies", None),
        Kind::Form => ("form", None),
    };
    let what = match kind {
        Kind::Query => "query parameter",
        Kind::Header => "header",
        Kind::Cookie => "cookie",
        Kind::Form => "form field",
    };
    let regex = |m: &mut toml::Table, re: String| -> Result<(), String> {
        let Some(re_key) = re_key else {
            return Err(format!("{what} `{name}`: only `equalTo` is expressible for a {what}; not checked"));
        };
        table(m, re_key).insert(key_name.clone(), re.into());
        Ok(())
    };
    let operators: Vec<&String> = obj.keys().filter(|k| *k != "caseInsensitive").collect();
    let [op] = operators.as_slice() else {
        return Err(format!("{what} `{name}`: a pattern of several operators is not converted; not checked"));
    };
    let value = &obj[op.as_str()];
    let text = value.as_str();
    match (op.as_str(), text) {
        ("equalTo", Some(v)) if !insensitive => {
            table(m, eq_key).insert(key_name.clone(), v.into());
            Ok(())
        }
        ("equalTo", Some(v)) => regex(m, format!("(?i){}", peer::exact(v))),
        ("contains", Some(v)) => regex(m, format!("{}{}", if insensitive { "(?i)" } else { "" }, regex::escape(v))),
        ("matches", Some(v)) => regex(m, format!("^(?:{v})$")),
        ("absent", _) if value.as_bool() == Some(true) && kind == Kind::Header => {
            let absent = m.entry("headers_absent").or_insert_with(|| toml::Value::Array(Vec::new()));
            if let toml::Value::Array(a) = absent {
                a.push(key_name.clone().into());
            }
            Ok(())
        }
        // Present with any value: a regex every value holds.
        ("absent", _) if value.as_bool() == Some(false) => regex(m, String::new()),
        (op, _) => Err(format!("{what} `{name}`: `{op}` is not expressible as a hotroute condition; not checked")),
    }
}

/// A body pattern as a `match` condition, or why it has none.
fn body_pattern(p: &Value, m: &mut toml::Table) -> Result<(), String> {
    let Some(obj) = p.as_object() else { return Err("a body pattern is an object".into()) };
    let op = ["equalTo", "contains", "matches", "equalToJson", "matchesJsonPath", "absent"]
        .into_iter()
        .find(|k| obj.contains_key(*k));
    let free = |m: &toml::Table, key: &str| !m.contains_key(key);
    match op {
        Some("equalTo") => {
            let v = obj["equalTo"].as_str().ok_or("`equalTo` is not a string")?;
            let insensitive = if obj.get("caseInsensitive").and_then(Value::as_bool) == Some(true) { "i" } else { "" };
            if !free(m, "body_regex") {
                return Err("a second regex-like body pattern: hotroute has one `body_regex`; not checked".into());
            }
            m.insert("body_regex".into(), format!("(?s{insensitive}){}", peer::exact(v)).into());
            Ok(())
        }
        Some("contains") => {
            let v = obj["contains"].as_str().ok_or("`contains` is not a string")?;
            if free(m, "body_contains") {
                m.insert("body_contains".into(), v.into());
            } else if free(m, "body_regex") {
                m.insert("body_regex".into(), regex::escape(v).into());
            } else {
                return Err(
                    "a third text body pattern: hotroute has one `body_contains` and one `body_regex`; not checked"
                        .into(),
                );
            }
            Ok(())
        }
        Some("matches") => {
            let v = obj["matches"].as_str().ok_or("`matches` is not a string")?;
            if !free(m, "body_regex") {
                return Err("a second regex-like body pattern: hotroute has one `body_regex`; not checked".into());
            }
            m.insert("body_regex".into(), format!("(?s)^(?:{v})$").into());
            Ok(())
        }
        Some("equalToJson") => {
            let json = match &obj["equalToJson"] {
                Value::String(s) => serde_json::from_str(s).map_err(|e| format!("`equalToJson` is not JSON: {e}"))?,
                v => v.clone(),
            };
            let value = peer::to_toml(&json)
                .ok_or("`equalToJson` holds a null, which hotroute's `json` cannot say; not checked")?;
            if !free(m, "json") {
                return Err("a second `equalToJson`: hotroute has one `json` condition; not checked".into());
            }
            m.insert("json".into(), value);
            let lenient = obj.get("ignoreExtraElements").and_then(Value::as_bool) == Some(true);
            if lenient {
                Ok(())
            } else {
                Err("`equalToJson` is matched as hotroute's `json` condition: a request with extra keys matches too (WireMock's `ignoreExtraElements`)".into())
            }
        }
        Some("matchesJsonPath") => match &obj["matchesJsonPath"] {
            Value::String(expr) => Err(format!(
                "`matchesJsonPath: {expr}` (the path selects something) has no hotroute equivalent; hotroute's `jsonpath` compares with a value; not checked"
            )),
            Value::Object(jp) => {
                let expr =
                    jp.get("expression").and_then(Value::as_str).ok_or("`matchesJsonPath` has no `expression`")?;
                let Some(want) = jp.get("equalTo").and_then(Value::as_str) else {
                    return Err(format!("`matchesJsonPath` `{expr}` with a pattern other than `equalTo`; not checked"));
                };
                // WireMock compares the selected value's text: `"7"` selects a number 7 or a string "7". A value
                // that reads as a JSON number or boolean is compared as one, the likelier meaning in a JSON body.
                let value = match serde_json::from_str::<Value>(want) {
                    Ok(v @ (Value::Number(_) | Value::Bool(_))) => peer::to_toml(&v).unwrap_or_else(|| want.into()),
                    _ => want.into(),
                };
                table(m, "jsonpath").insert(expr.to_owned(), value);
                Ok(())
            }
            _ => Err("`matchesJsonPath` is neither a string nor an object".into()),
        },
        Some("absent") if obj["absent"].as_bool() == Some(true) && free(m, "body_regex") => {
            m.insert("body_regex".into(), r"^\z".into());
            Ok(())
        }
        _ => Err(format!(
            "the body pattern `{}` is not expressible as a hotroute condition; not checked",
            obj.keys().next().map_or("{}", String::as_str)
        )),
    }
}

fn response(
    resp: &Map<String, Value>,
    at: &str,
    shape: &[Seg],
    body_files: Option<&Path>,
    r: &mut PeerRoute,
    notes: &mut Notes,
) {
    let templated = resp
        .get("transformers")
        .and_then(Value::as_array)
        .is_some_and(|t| t.iter().any(|t| t.as_str() == Some("response-template")));
    let mut dynamic = false;
    let mut escaped = false;
    let mut untranslated = Vec::new();
    // Without the template transformer WireMock sends `{{` as written, and so does a route without `template`.
    let mut tx_as = |s: &str, in_json: bool| -> String {
        if !templated {
            return s.to_owned();
        }
        let t = if in_json {
            peer::translate_json_string(s, Dialect::WireMock, shape)
        } else {
            peer::translate(s, Dialect::WireMock, shape)
        };
        dynamic |= t.dynamic;
        untranslated.extend(t.untranslated);
        t.text
    };
    if let Some(proxy) = resp.get("proxyBaseUrl").and_then(Value::as_str) {
        r.refused = Some(format!("not imported: a proxy to {proxy} (hotroute does not proxy)"));
    }
    let status = resp.get("status").and_then(Value::as_i64).unwrap_or(200);
    if status != 200 {
        r.table.insert("status".into(), status.into());
    }
    let mut headers = toml::Table::new();
    if let Some(h) = resp.get("headers").and_then(Value::as_object) {
        for (name, v) in h {
            let value = match v {
                Value::String(s) => s.clone(),
                Value::Array(a) => {
                    if a.len() > 1 {
                        let at = format!("{at}/headers/{}", peer::pointer_token(name));
                        notes.route(r, &at, format!("header `{name}` has several values; only the first is sent"));
                    }
                    a.first().and_then(Value::as_str).unwrap_or("").to_owned()
                }
                other => other.to_string(),
            };
            // hotroute frames the body itself; a `transfer-encoding` header on an answer is a load error.
            if name.eq_ignore_ascii_case("transfer-encoding") {
                continue;
            }
            headers.insert(name.to_ascii_lowercase(), tx_as(&value, false).into());
        }
    }
    let body_at = |k: &str| format!("{at}/{k}");
    if let Some(body) = resp.get("body").and_then(Value::as_str) {
        r.table.insert("body".into(), tx_as(body, false).into());
    } else if let Some(json) = resp.get("jsonBody") {
        let json = if templated { map_strings(json, &mut |s| tx_as(s, true)) } else { json.clone() };
        match peer::to_toml(&json) {
            Some(v) => {
                r.table.insert("json".into(), v);
            }
            None => {
                headers.entry("content-type").or_insert_with(|| "application/json".into());
                r.table.insert("body".into(), json.to_string().into());
            }
        }
    } else if let Some(b64) = resp.get("base64Body").and_then(Value::as_str) {
        use base64::Engine as _;
        match base64::engine::general_purpose::STANDARD.decode(b64.trim()).map(String::from_utf8) {
            Ok(Ok(text)) => {
                r.table.insert("body".into(), text.into());
            }
            Ok(Err(_)) => {
                notes.route(
                    r,
                    &body_at("base64Body"),
                    "the body is binary; a route file's `body` holds only text, so it answers with none",
                );
            }
            Err(e) => notes.route(
                r,
                &body_at("base64Body"),
                format!("`base64Body` is not base64 ({e}); answers with no body"),
            ),
        }
    } else if let Some(file) = resp.get("bodyFileName").and_then(Value::as_str) {
        match body_files {
            _ if templated && file.contains("{{") => {
                notes.route(r, &body_at("bodyFileName"), "a templated file name is not converted; answers with no body")
            }
            None => notes.route(
                r,
                &body_at("bodyFileName"),
                format!("`{file}`: no `__files` folder beside the mappings; answers with no body"),
            ),
            Some(dir) => match peer::read_body_file(dir, file) {
                Ok(text) => {
                    let plain = resp
                        .get("transformerParameters")
                        .and_then(|p| p.get("disableBodyFileTemplating"))
                        .and_then(Value::as_bool);
                    let text = if plain == Some(true) && templated && text.contains('{') {
                        // Sent as written by a templated route: each `{` printed as a string.
                        escaped = true;
                        text.replace('{', "{{ '{' }}")
                    } else if plain == Some(true) {
                        text
                    } else {
                        tx_as(&text, false)
                    };
                    r.table.insert("body".into(), text.into());
                }
                Err(why) => notes.route(r, &body_at("bodyFileName"), format!("{why}; answers with no body")),
            },
        }
    }
    // A 204 or 304 has no body (WireMock's Jetty sends none either), and a route with one does not load.
    if matches!(status, 204 | 304) && ["body", "json"].into_iter().filter_map(|k| r.table.remove(k)).count() > 0 {
        notes.route(r, at, format!("a `{status}` answer has no body; the stub's body is left out"));
    }
    if !headers.is_empty() {
        r.table.insert("headers".into(), headers.into());
    }
    let mut delay = resp.get("fixedDelayMilliseconds").and_then(Value::as_u64);
    if let Some(d) = resp.get("delayDistribution").and_then(Value::as_object) {
        // The distribution's middle: a steady delay of the same size.
        let f = |k: &str| d.get(k).and_then(Value::as_f64);
        let middle = match d.get("type").and_then(Value::as_str) {
            Some("uniform") => f("lower").zip(f("upper")).map(|(l, u)| (l + u) / 2.0),
            Some("lognormal") => f("median"),
            _ => None,
        };
        if let Some(ms) = middle {
            delay = Some(delay.unwrap_or(0).saturating_add(ms.max(0.0) as u64));
        }
        notes.route(r, &body_at("delayDistribution"), "a random delay is replaced by a fixed one, its middle value");
    }
    if let Some(ms) = delay.filter(|&ms| ms > 0) {
        let ms = ms.min(3_600_000);
        r.table.insert("delay".into(), format!("{ms}ms").into());
    }
    if let Some(fault) = resp.get("fault").and_then(Value::as_str) {
        let ours = match fault {
            "CONNECTION_RESET_BY_PEER" => Some("reset"),
            "EMPTY_RESPONSE" => Some("close"),
            "MALFORMED_RESPONSE_CHUNK" | "RANDOM_DATA_THEN_CLOSE" => Some("garbage"),
            _ => None,
        };
        match ours {
            Some(f) => {
                r.table.insert("fault".into(), f.into());
            }
            None => notes.route(r, &body_at("fault"), format!("the fault `{fault}` has no hotroute equivalent")),
        }
    }
    for key in resp.keys() {
        if !matches!(
            key.as_str(),
            "status"
                | "headers"
                | "body"
                | "jsonBody"
                | "base64Body"
                | "bodyFileName"
                | "fixedDelayMilliseconds"
                | "delayDistribution"
                | "fault"
                | "transformers"
                | "transformerParameters"
                | "proxyBaseUrl"
        ) {
            notes.route(r, &body_at(&peer::pointer_token(key)), format!("the response field `{key}` is not converted"));
        }
    }
    for tag in untranslated {
        notes.route(r, at, format!("the template tag `{tag}` has no MiniJinja translation; it is sent as written"));
    }
    if dynamic || escaped {
        r.table.insert("template".into(), true.into());
    }
}

/// `v` with `f` applied to every string in it.
fn map_strings(v: &Value, f: &mut impl FnMut(&str) -> String) -> Value {
    match v {
        Value::String(s) => Value::String(f(s)),
        Value::Array(a) => Value::Array(a.iter().map(|v| map_strings(v, f)).collect()),
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), map_strings(v, f))).collect()),
        other => other.clone(),
    }
}
