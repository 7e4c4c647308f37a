//! Exchanges (a request and the answer it got) to `[[route]]` tables: the writer behind `hotroute record`, record on
//! miss (`[server] proxy = { ..., record = "file.toml" }`), and any importer of recorded traffic (a HAR file).
//!
//! Each new exchange is added to the file, which is rewritten whole, atomically (a temporary file in the same folder,
//! then a rename), so that a hotroute serving it hot never reads half a file. Identical requests (method, path,
//! query and body) are recorded once. Answers: JSON that round-trips exactly becomes `json = ...`, other text
//! `body = "..."`, binary answers and answers over 64 KiB a body file in a folder beside the output. Response headers
//! are kept except `date` and `content-length` (hotroute computes it); secrets are written as `"<redacted>"`.

use std::collections::HashSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use serde_json::Value;

/// How a redacted value is written.
pub const REDACTED: &str = "<redacted>";

/// Answers over this size go to a body file.
pub const MAX_INLINE_BODY: usize = 64 * 1024;

/// Request bodies up to this size become an exact `body_regex` condition; larger text bodies are matched by path
/// and query only.
const MAX_BODY_CONDITION: usize = 4 * 1024;

/// The response headers redacted by default.
pub const DEFAULT_REDACT_HEADERS: [&str; 5] =
    ["authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"];

/// One request and the answer it got.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// The request's method.
    pub method: Method,
    /// The request's path, as sent.
    pub path: String,
    /// The request's query, as sent.
    pub query: Option<String>,
    /// The request's body.
    pub request_body: Bytes,
    /// The answer's status.
    pub status: StatusCode,
    /// The answer's headers (hop-by-hop ones already removed).
    pub headers: HeaderMap,
    /// The answer's body.
    pub body: Bytes,
}

/// What is written as `"<redacted>"`: response headers by name, and JSON values by key (in answers; in request
/// conditions such keys are left out, so that any value matches).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Redaction {
    /// Header names, lower case.
    pub headers: Vec<HeaderName>,
    /// JSON object keys, compared without case.
    pub json_keys: Vec<String>,
}

impl Default for Redaction {
    fn default() -> Self {
        Redaction {
            headers: DEFAULT_REDACT_HEADERS.iter().map(|h| HeaderName::from_static(h)).collect(),
            json_keys: Vec::new(),
        }
    }
}

impl Redaction {
    /// The defaults plus more header names and JSON keys.
    pub fn with(headers: &[String], json_keys: &[String]) -> Result<Redaction, RecordError> {
        let mut redaction = Redaction::default();
        for h in headers {
            let name = HeaderName::from_bytes(h.to_ascii_lowercase().as_bytes())
                .map_err(|_| RecordError::BadHeader(h.clone()))?;
            if !redaction.headers.contains(&name) {
                redaction.headers.push(name);
            }
        }
        redaction.json_keys.extend(json_keys.iter().cloned());
        Ok(redaction)
    }
}

/// Why an exchange could not be written.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// A file could not be written.
    #[error("cannot write {path}: {source}\nhelp: check that the folder exists and is writable")]
    Write {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The output file exists and cannot be read.
    #[error("cannot read {path}: {source}\nhelp: give a route file hotroute may read and write, or a new path")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A header name to redact is not one.
    #[error("`{0}` is not a header name\nhelp: header names are letters, digits and `-`, e.g. x-session-token")]
    BadHeader(String),
}

/// One recorded route.
#[derive(Debug)]
struct Entry {
    /// Method and path: the routes of one group are ordered most specific first.
    group: (String, String),
    /// How many conditions it has: more specific routes come first, the one without conditions last.
    specificity: usize,
    /// The `match` table as text: two routes of a group with the same one would clash.
    conditions: String,
    toml: String,
}

/// A route file being recorded.
#[derive(Debug)]
pub struct Recorder {
    out: PathBuf,
    /// The output file's text when recording began (its routes are kept, the new ones come after).
    prefix: String,
    /// Body files go to `<out's folder>/<bodies>/`.
    bodies: String,
    entries: Vec<Entry>,
    seen: HashSet<(Method, String, Option<String>, Bytes)>,
    redaction: Redaction,
}

impl Recorder {
    /// Starts recording into `out`; an existing file's text is kept in front of what is recorded.
    pub fn open(out: &Path, redaction: Redaction) -> Result<Recorder, RecordError> {
        let prefix = match std::fs::read_to_string(out) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => return Err(RecordError::Read { path: out.to_owned(), source }),
        };
        let stem = out.file_stem().map_or("recorded".into(), |s| s.to_string_lossy().into_owned());
        let recorder = Recorder {
            out: out.to_owned(),
            prefix,
            bodies: format!("{stem}.bodies"),
            entries: Vec::new(),
            seen: HashSet::new(),
            redaction,
        };
        Ok(recorder)
    }

    /// A recorder that writes no route file of its own (see [`Recorder::push`]): body files go to
    /// `<folder>/<stem>.bodies/`.
    pub fn in_folder(folder: &Path, stem: &str, redaction: Redaction) -> Recorder {
        Recorder {
            out: folder.join(format!("{stem}.toml")),
            prefix: String::new(),
            bodies: format!("{stem}.bodies"),
            entries: Vec::new(),
            seen: HashSet::new(),
            redaction,
        }
    }

    /// How many routes were recorded.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing was recorded yet.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds `exchange` unless an identical request was recorded; writes the file when it adds. Returns whether it
    /// did. A `HEAD` request, a `1xx` answer, a path under `/__admin/` and a path no route could hold as written
    /// (`/a/../b`, `/:id`) are not recorded.
    pub fn add(&mut self, ex: &Exchange) -> Result<bool, RecordError> {
        let added = self.push(ex)?;
        if added {
            self.write()?;
        }
        Ok(added)
    }

    /// Like [`Recorder::add`] without writing the route file (body files are written): for an importer that writes
    /// [`Recorder::render`] once at the end.
    pub fn push(&mut self, ex: &Exchange) -> Result<bool, RecordError> {
        let key = (ex.method.clone(), ex.path.clone(), ex.query.clone(), ex.request_body.clone());
        if ex.method == Method::HEAD
            || ex.status.is_informational()
            || !ex.path.starts_with('/')
            || ex.path == "/__admin"
            || ex.path.starts_with("/__admin/")
            || self.seen.contains(&key)
        {
            return Ok(false);
        }
        // A path that a route cannot hold as sent (`/a/../b`, `/:id` from a raw client) would make the whole file fail
        // to load: that one exchange is left out, and said.
        if let Some(why) = crate::config::refused_path(&ex.path) {
            tracing::warn!("not recorded: {} {}: {why}", ex.method, ex.path);
            return Ok(false);
        }
        let n = self.entries.len() + 1;
        let Some(entry) = self.entry(ex, n)? else { return Ok(false) };
        self.seen.insert(key);
        self.entries.push(entry);
        Ok(true)
    }

    /// The route file's text: the file's own text, then the recorded routes, each method and path's routes most
    /// specific first.
    pub fn render(&self) -> String {
        let mut order: Vec<&(String, String)> = Vec::new();
        for e in &self.entries {
            if !order.contains(&&e.group) {
                order.push(&e.group);
            }
        }
        let mut text = self.prefix.clone();
        if text.is_empty() {
            text.push_str(
                "# Recorded by hotroute: one route per exchange (hotroute record, or [server] proxy with record).\n",
            );
        }
        for group in order {
            let mut routes: Vec<&Entry> = self.entries.iter().filter(|e| &e.group == group).collect();
            routes.sort_by_key(|e| std::cmp::Reverse(e.specificity));
            for e in routes {
                text.push('\n');
                text.push_str(&e.toml);
            }
        }
        text
    }

    fn write(&self) -> Result<(), RecordError> {
        write_atomic(&self.out, self.render().as_bytes())
    }

    fn entry(&self, ex: &Exchange, n: usize) -> Result<Option<Entry>, RecordError> {
        let mut t = String::from("[[route]]\n");
        let path = ex.path.replace('{', "{{").replace('}', "}}");
        t.push_str(&format!("path = {}\n", quote(&path)));
        if ex.method != Method::GET {
            t.push_str(&format!("method = {}\n", quote(ex.method.as_str())));
        }
        // The conditions: the query's parameters, and the body (JSON contained, or text exactly).
        let mut conditions = Vec::new();
        let mut specificity = 0;
        if let Some(query) = ex.query.as_deref().filter(|q| !q.is_empty()) {
            let mut pairs: Vec<(String, String)> = Vec::new();
            for (k, v) in form_urlencoded::parse(query.as_bytes()) {
                if !pairs.iter().any(|(seen, _)| *seen == k) {
                    pairs.push((k.into_owned(), v.into_owned()));
                }
            }
            specificity += pairs.len();
            let inner: Vec<String> = pairs.iter().map(|(k, v)| format!("{} = {}", quote(k), quote(v))).collect();
            if !inner.is_empty() {
                conditions.push(format!("query = {{ {} }}", inner.join(", ")));
            }
        }
        if !ex.request_body.is_empty() {
            let json = serde_json::from_slice::<Value>(&ex.request_body).ok().filter(|v| v.is_object() || v.is_array());
            let condition = json.and_then(|mut v| {
                strip_keys(&mut v, &self.redaction.json_keys);
                let leaves = leaves(&v);
                toml_inline(&v).map(|t| (format!("json = {t}"), leaves))
            });
            match condition {
                Some((c, leaves)) => {
                    conditions.push(c);
                    specificity += leaves.max(1);
                }
                None => match std::str::from_utf8(&ex.request_body) {
                    Ok(text) if text.len() <= MAX_BODY_CONDITION => {
                        conditions.push(format!("body_regex = {}", quote(&format!("\\A{}\\z", regex::escape(text)))));
                        specificity += 1;
                    }
                    // A large or binary body: told apart by path and query only.
                    _ => {}
                },
            }
        }
        let conditions = conditions.join(", ");
        let group = (ex.method.to_string(), path.clone());
        if self.entries.iter().any(|e| e.group == group && e.conditions == conditions) {
            return Ok(None);
        }
        if !conditions.is_empty() {
            t.push_str(&format!("match = {{ {conditions} }}\n"));
        }
        if ex.status != StatusCode::OK {
            t.push_str(&format!("status = {}\n", ex.status.as_u16()));
        }
        let mut headers: Vec<String> = Vec::new();
        for name in ex.headers.keys() {
            if name == http::header::DATE
                || name == http::header::CONTENT_LENGTH
                || name == http::header::TRANSFER_ENCODING
            {
                continue;
            }
            let value = if self.redaction.headers.contains(name) {
                REDACTED.to_owned()
            } else {
                let values: Vec<&str> = ex.headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect();
                if values.is_empty() {
                    continue;
                }
                values.join(", ")
            };
            headers.push(format!("{} = {}", quote(name.as_str()), quote(&value)));
        }
        if !headers.is_empty() {
            t.push_str(&format!("headers = {{ {} }}\n", headers.join(", ")));
        }
        self.body(ex, n, &mut t)?;
        Ok(Some(Entry { group, specificity, conditions, toml: t }))
    }

    /// The answer's body as `json`, `body` or `file`.
    fn body(&self, ex: &Exchange, n: usize, t: &mut String) -> Result<(), RecordError> {
        let bytes = &ex.body;
        // A 204 or 304 has no body (a HAR file may hold a cached one for a 304): a route with one does not load.
        if bytes.is_empty() || matches!(ex.status, StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED) {
            return Ok(());
        }
        if let Ok(mut value) = serde_json::from_slice::<Value>(bytes) {
            let redacted = redact_keys(&mut value, &self.redaction.json_keys);
            let exact = !redacted && serde_json::to_vec(&value).is_ok_and(|b| b == bytes.as_ref());
            if (exact || redacted)
                && let Some(inline) = toml_inline(&value)
                && (redacted || round_trips(&inline, bytes))
            {
                t.push_str(&format!("json = {inline}\n"));
                return Ok(());
            }
            if redacted {
                // Not expressible as TOML (a null, say): the redacted JSON as text, never the secret.
                let text = serde_json::to_string(&value).unwrap_or_default();
                t.push_str(&format!("body = {}\n", quote(&text)));
                return Ok(());
            }
        }
        match std::str::from_utf8(bytes) {
            Ok(text) if bytes.len() <= MAX_INLINE_BODY => t.push_str(&format!("body = {}\n", quote(text))),
            _ => {
                let folder = self.out.parent().unwrap_or(Path::new(".")).join(&self.bodies);
                std::fs::create_dir_all(&folder)
                    .map_err(|source| RecordError::Write { path: folder.clone(), source })?;
                let name = format!("{n}.bin");
                write_atomic(&folder.join(&name), bytes)?;
                t.push_str(&format!("file = {}\n", quote(&format!("{}/{name}", self.bodies))));
            }
        }
        Ok(())
    }
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename: a reader sees the old file or
/// the new one, never half of it.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), RecordError> {
    let folder = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map_or("recorded".into(), |n| n.to_string_lossy().into_owned());
    let tmp = folder.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    written.map_err(|source| {
        let _ = std::fs::remove_file(&tmp);
        RecordError::Write { path: path.to_owned(), source }
    })
}

/// Hop-by-hop headers (RFC 9110 section 7.6.1): they describe one connection and are never forwarded or recorded.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-connection",
    "proxy-authenticate",
];

/// Removes the hop-by-hop headers, those `Connection` names and every `Proxy-*` header.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // One pass over the names and values, without hashing or parsing any: a proxy calls this twice per request, and
    // most requests carry none of them. Removing by a name string parses and hashes it each time (about 6,500
    // instructions per proxied request for the ten lookups; BENCHMARKS.md, issue 14).
    let mut found = HopByHop::default();
    for (name, value) in headers.iter() {
        found.see(name, value);
    }
    let _ = found.strip(headers);
}

/// What a pass over a header map found of its hop-by-hop headers, for a caller that walks the headers for other
/// reasons too (the proxy's request: one pass finds these, the loop's `Via` and the forwarding headers).
#[derive(Debug, Default, Clone, Copy)]
pub struct HopByHop {
    /// A `Connection` header.
    connection: bool,
    /// A hop-by-hop header besides a `Connection` of `keep-alive` or `close` (rare).
    others: bool,
}

impl HopByHop {
    /// Notes the header `name: value`; true when it is a hop-by-hop header.
    #[inline(always)]
    pub fn see(&mut self, name: &HeaderName, value: &HeaderValue) -> bool {
        if name == http::header::CONNECTION {
            self.connection = true;
            // A name besides `keep-alive` and `close` is a header to remove too (rare: found in `strip`).
            self.others |= value.as_bytes().split(|&b| b == b',').any(|token| !is_keep_alive_or_close(token));
            true
        } else if is_hop_by_hop(name) {
            self.others = true;
            true
        } else {
            false
        }
    }

    /// Removes from `headers` (the map whose every header was [`HopByHop::see`]n) what was found. True when it took
    /// the long way (a hop-by-hop header besides a `Connection` of `keep-alive` or `close`), which also removes the
    /// headers a `Connection` names: any header may then be gone.
    pub fn strip(self, headers: &mut HeaderMap) -> bool {
        if !self.others {
            // The usual hop-by-hop header: an upstream's `Connection: keep-alive` on every answer. One removal by
            // http's own name (no list, no allocation).
            if self.connection {
                headers.remove(http::header::CONNECTION);
            }
            return false;
        }
        let mut found: Vec<HeaderName> = headers.keys().filter(|name| is_hop_by_hop(name)).cloned().collect();
        found.extend(
            headers
                .get_all(http::header::CONNECTION)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .map(str::trim)
                // `keep-alive` (removed above) and `close` (no header's name) are the usual values: not parsed.
                .filter(|name| {
                    !name.eq_ignore_ascii_case("close") && !HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h))
                })
                .filter_map(|name| HeaderName::from_bytes(name.as_bytes()).ok()),
        );
        for name in found {
            headers.remove(name);
        }
        true
    }
}

/// Whether a `Connection` token (spaces around it allowed) is `keep-alive` or `close`, which name no header.
fn is_keep_alive_or_close(token: &[u8]) -> bool {
    let token = token.trim_ascii();
    token.eq_ignore_ascii_case(b"keep-alive") || token.eq_ignore_ascii_case(b"close")
}

/// Whether `name` is one of [`HOP_BY_HOP`] or a `Proxy-*` header: by the first letter first, so that most names are
/// told apart by one comparison and the rest by their length (names in a `HeaderMap` are lower case). Every header
/// of a proxied exchange goes through this, both ways.
#[inline(always)]
fn is_hop_by_hop(name: &HeaderName) -> bool {
    let name = name.as_str();
    match name.as_bytes().first() {
        Some(b'c') => name == "connection",
        Some(b'k') => name == "keep-alive",
        Some(b't') => name == "te" || name == "trailer" || name == "transfer-encoding",
        Some(b'u') => name == "upgrade",
        Some(b'p') => name.starts_with("proxy-"),
        _ => false,
    }
}

/// A TOML string literal.
fn quote(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// `value` as an inline TOML value; none when TOML cannot hold it (a `null`, an integer over i64).
fn toml_inline(value: &Value) -> Option<String> {
    Some(match value {
        Value::Null => return None,
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.to_string()
            } else if n.is_u64() {
                return None;
            } else {
                toml::Value::Float(n.as_f64()?).to_string()
            }
        }
        Value::String(s) => quote(s),
        Value::Array(items) => {
            let items: Option<Vec<String>> = items.iter().map(toml_inline).collect();
            format!("[{}]", items?.join(", "))
        }
        Value::Object(map) => {
            let items: Option<Vec<String>> =
                map.iter().map(|(k, v)| toml_inline(v).map(|v| format!("{} = {v}", quote(k)))).collect();
            let items = items?;
            if items.is_empty() { "{}".to_owned() } else { format!("{{ {} }}", items.join(", ")) }
        }
    })
}

/// Whether `inline` (a TOML value) is served as exactly `bytes`.
fn round_trips(inline: &str, bytes: &[u8]) -> bool {
    let Ok(table) = format!("v = {inline}").parse::<toml::Table>() else { return false };
    let Some(v) = table.get("v") else { return false };
    serde_json::to_vec(&crate::config::toml_to_json(v)).is_ok_and(|b| b == bytes)
}

/// Replaces the values of `keys` (any case, at any depth) with [`REDACTED`]; whether any was.
fn redact_keys(value: &mut Value, keys: &[String]) -> bool {
    let mut any = false;
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if keys.iter().any(|key| key.eq_ignore_ascii_case(k)) {
                    *v = Value::String(REDACTED.into());
                    any = true;
                } else {
                    any |= redact_keys(v, keys);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| any |= redact_keys(v, keys)),
        _ => {}
    }
    any
}

/// Removes `keys` (any case, at any depth) from objects: a request condition then matches any value of them.
fn strip_keys(value: &mut Value, keys: &[String]) {
    match value {
        Value::Object(map) => {
            map.retain(|k, _| !keys.iter().any(|key| key.eq_ignore_ascii_case(k)));
            map.values_mut().for_each(|v| strip_keys(v, keys));
        }
        Value::Array(items) => items.iter_mut().for_each(|v| strip_keys(v, keys)),
        _ => {}
    }
}

/// How many scalars `value` holds: a JSON condition with more is more specific.
fn leaves(value: &Value) -> usize {
    match value {
        Value::Object(map) => map.values().map(leaves).sum(),
        Value::Array(items) => items.iter().map(leaves).sum(),
        _ => 1,
    }
}

/// Reads at most `limit` bytes of `path`; a larger file is refused with a message that says so.
pub(crate) fn read_bounded(path: &Path, limit: usize) -> Result<Vec<u8>, String> {
    use std::io::Read as _;
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    file.take(limit as u64 + 1).read_to_end(&mut bytes).map_err(|e| e.to_string())?;
    if bytes.len() > limit {
        return Err(format!("larger than the {limit} bytes an import reads"));
    }
    Ok(bytes)
}

/// The recorders of this process, one per output file: every request and every reload that records to a file adds
/// to the same one.
pub fn recorder(out: &Path, redaction: &Redaction) -> Result<std::sync::Arc<std::sync::Mutex<Recorder>>, RecordError> {
    use std::sync::{Arc, Mutex};
    type Open = Vec<(PathBuf, Arc<Mutex<Recorder>>)>;
    static OPEN: Mutex<Open> = Mutex::new(Vec::new());
    let mut open = OPEN.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((_, r)) = open.iter().find(|(p, _)| p == out) {
        return Ok(r.clone());
    }
    let r = Arc::new(Mutex::new(Recorder::open(out, redaction.clone())?));
    open.push((out.to_owned(), r.clone()));
    Ok(r)
}
