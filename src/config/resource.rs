//! `[[resource]]`: a fake REST collection (json-server style) as the route file writes it, and its checks. The data
//! is read and checked here, at load time, so that a bad data file is a load error with its line and column; the
//! behaviour (CRUD, filters, pages, persistence) lives in `crate::route::resource`.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};
use toml::Spanned;

use super::error::LoadError;
use super::{ADMIN_PREFIX, Origin};

/// The most items a resource holds unless its `max_items` says otherwise.
pub const DEFAULT_MAX_ITEMS: usize = 100_000;

/// The largest `max_items` accepted, so that a typo cannot ask for unbounded memory.
pub const MAX_MAX_ITEMS: usize = 10_000_000;

/// One `[[resource]]` table.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceSpec {
    /// The collection's URL path, e.g. `/users`: it answers `GET`/`POST` there and `GET`/`PUT`/`PATCH`/`DELETE` on
    /// `/users/{id}`.
    #[schemars(with = "String")]
    pub path: Spanned<String>,
    /// The start data: a JSON file holding an array of objects (relative to the route file's folder), or the array
    /// inline. Default: empty.
    #[serde(default)]
    #[schemars(with = "Option<DataSchema>")]
    pub data: Option<Spanned<toml::Value>>,
    /// The field that holds each item's id (default `"id"`).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub id: Option<Spanned<String>>,
    /// Write changes back to the `data` file (atomically, temp file and rename) so that they survive a restart.
    /// Default false.
    #[serde(default)]
    #[schemars(with = "Option<bool>")]
    pub persist: Option<Spanned<bool>>,
    /// The most items the resource holds (default 100000); a `POST` past it gets 507.
    #[serde(default)]
    #[schemars(with = "Option<u64>", range(min = 1, max = 10_000_000))]
    pub max_items: Option<Spanned<i64>>,
}

/// What `data` may be, for the JSON Schema.
#[derive(JsonSchema)]
#[schemars(untagged)]
#[allow(dead_code)]
enum DataSchema {
    /// A JSON file holding an array of objects.
    File(String),
    /// The objects inline.
    Inline(Vec<Map<String, Value>>),
}

/// A checked `[[resource]]`.
#[derive(Debug, Clone)]
pub struct ResourceConfig {
    /// Where it is defined.
    pub origin: Origin,
    /// The collection path, e.g. `/users` (no trailing slash).
    pub path: String,
    /// The id field.
    pub id: String,
    /// The start data, in order.
    pub data: Arc<Vec<Map<String, Value>>>,
    /// The data file, when `data` names one.
    pub file: Option<PathBuf>,
    /// Whether changes are written back to `file`.
    pub persist: bool,
    /// The most items it holds.
    pub max_items: usize,
    /// A hash of the start data as read (the file's bytes, or the inline table): a reload keeps the data in memory
    /// when this did not change, or when it is what the server itself wrote (see `crate::route::resource`).
    pub digest: u64,
}

/// The hash of a data file's bytes, the same for the loader and for the writer of persisted data.
pub fn data_digest(bytes: &[u8]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

/// An id as the path names it: a string as it is, a number in its JSON form; none for other values.
pub fn id_key(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl super::Checker<'_> {
    /// Checks one `[[resource]]` table; `None` (with errors recorded) when it is unusable.
    pub(super) fn resource(&mut self, spanned: &Spanned<ResourceSpec>) -> Option<ResourceConfig> {
        let errors_before = self.errors.len();
        let spec = spanned.get_ref();
        let span = spanned.span();
        let origin = Origin { source: self.source_index, line: self.lines.line(span.start), span };
        let path = spec.path.get_ref().trim_end_matches('/').to_owned();
        if !spec.path.get_ref().starts_with('/') || path.is_empty() {
            self.error(
                spec.path.span(),
                format!("resource path `{}` is not a collection path", spec.path.get_ref()),
                "write it from the root, with at least one segment, e.g. \"/users\"",
            );
        } else if path.contains(['{', '}', '*']) {
            self.error(
                spec.path.span(),
                format!("resource path `{path}` has a parameter or a wildcard"),
                "a resource path is fixed text, e.g. \"/users\"; the item path `/users/{id}` is made from it",
            );
        } else if path == ADMIN_PREFIX || path.starts_with(&format!("{ADMIN_PREFIX}/")) {
            self.error(
                spec.path.span(),
                format!("resource path `{path}` is under `{ADMIN_PREFIX}/`, which hotroute reserves for its admin API"),
                "move the resource to another path",
            );
        }
        let id = spec.id.as_ref().map_or_else(|| "id".to_owned(), |i| i.get_ref().clone());
        if id.is_empty() {
            let at = spec.id.as_ref().map_or(spec.path.span(), Spanned::span);
            self.error(at, "the id field name is empty", "name the field that holds each item's id, e.g. id = \"id\"");
        }
        let max_items = match &spec.max_items {
            None => DEFAULT_MAX_ITEMS,
            Some(n) => match usize::try_from(*n.get_ref()) {
                Ok(n) if (1..=MAX_MAX_ITEMS).contains(&n) => n,
                _ => {
                    let msg = format!("max_items {} is out of range", n.get_ref());
                    self.error(n.span(), msg, "use a number of items from 1 to 10000000");
                    DEFAULT_MAX_ITEMS
                }
            },
        };
        let persist = spec.persist.as_ref().is_some_and(|p| *p.get_ref());
        let (data, file, digest) = match &spec.data {
            None => (Vec::new(), None, data_digest(b"")),
            Some(d) => match d.get_ref() {
                toml::Value::String(name) => {
                    let file = self.resource_file(d.span(), name)?;
                    let bytes = match self.inputs.read(&file) {
                        Ok(bytes) => bytes,
                        Err(e) => {
                            let help = "paths are relative to the route file's folder; the file holds a JSON array \
                                        of objects, e.g. [{\"id\": 1, \"name\": \"Ada\"}]";
                            self.error(d.span(), format!("cannot read data file `{}`: {e}", file.display()), help);
                            return None;
                        }
                    };
                    let digest = data_digest(&bytes);
                    let value = match parse_json(&file, &bytes) {
                        Ok(v) => v,
                        Err(e) => {
                            self.errors.push(e);
                            return None;
                        }
                    };
                    match self.items(value, &id, Some(&file), d.span()) {
                        Some(items) => (items, Some(file), digest),
                        None => return None,
                    }
                }
                toml::Value::Array(_) => {
                    let json = super::toml_to_json(d.get_ref());
                    let digest = data_digest(json.to_string().as_bytes());
                    (self.items(json, &id, None, d.span())?, None, digest)
                }
                other => {
                    let kind = other.type_str();
                    self.error(
                        d.span(),
                        format!("resource `data` is a {kind}"),
                        "name a JSON file (data = \"users.json\"), or write the items inline: data = [{ id = 1 }]",
                    );
                    return None;
                }
            },
        };
        if persist && file.is_none() {
            let at = spec.persist.as_ref().map_or(span_of(spanned), Spanned::span);
            self.error(
                at,
                "`persist = true` needs a data file to write to",
                "name a JSON file in `data`, e.g. data = \"users.json\" (it may hold `[]`)",
            );
        }
        if data.len() > max_items {
            let at = spec.data.as_ref().map_or(span_of(spanned), Spanned::span);
            self.error(
                at,
                format!("resource `{path}` has {} items, over its max_items of {max_items}", data.len()),
                "raise `max_items` on the resource, or use less data",
            );
        }
        if self.errors.len() > errors_before {
            return None;
        }
        Some(ResourceConfig { origin, path, id, data: Arc::new(data), file, persist, max_items, digest })
    }

    /// The data file `name`, which must be inside the route file's folder.
    fn resource_file(&mut self, span: std::ops::Range<usize>, name: &str) -> Option<PathBuf> {
        let joined = if self.base_dir == Path::new(".") { PathBuf::from(name) } else { self.base_dir.join(name) };
        match (joined.canonicalize(), self.base_dir.canonicalize()) {
            (Ok(file), Ok(base)) if !file.starts_with(&base) => {
                self.error(
                    span,
                    format!("data file `{name}` is outside the route file's folder `{}`", base.display()),
                    "move the file into the route file's folder (or a folder below it) and name it relative to it",
                );
                None
            }
            (Ok(_), Ok(_)) => Some(joined),
            (Err(e), _) | (_, Err(e)) => {
                // Watched all the same, so that creating the file fixes the routes.
                self.inputs.record_missing(&joined);
                self.error(
                    span,
                    format!("cannot read data file `{}`: {e}", joined.display()),
                    "paths are relative to the route file's folder; create it with `[]` for an empty collection",
                );
                None
            }
        }
    }

    /// The items of `value`, which must be an array of objects with unique ids of one kind.
    fn items(
        &mut self,
        value: Value,
        id: &str,
        file: Option<&Path>,
        span: std::ops::Range<usize>,
    ) -> Option<Vec<Map<String, Value>>> {
        let whence = file.map_or_else(|| "inline `data`".to_owned(), |f| format!("data file `{}`", f.display()));
        let Value::Array(values) = value else {
            self.error(
                span,
                format!("{whence} is not a JSON array"),
                "write the items as an array of objects, e.g. [{\"id\": 1, \"name\": \"Ada\"}]",
            );
            return None;
        };
        let mut items = Vec::with_capacity(values.len());
        let mut seen = std::collections::HashSet::with_capacity(values.len());
        for (i, v) in values.into_iter().enumerate() {
            let Value::Object(map) = v else {
                self.error(
                    span.clone(),
                    format!("item {i} of {whence} is not an object"),
                    "each item is a JSON object, e.g. {\"id\": 1}",
                );
                return None;
            };
            match map.get(id) {
                None => {}
                Some(value) => match id_key(value) {
                    Some(key) if seen.insert(key.clone()) => {}
                    Some(key) => {
                        self.error(
                            span.clone(),
                            format!("item {i} of {whence} has id `{key}`, which an earlier item has too"),
                            "give each item its own id",
                        );
                        return None;
                    }
                    None => {
                        self.error(
                            span.clone(),
                            format!(
                                "item {i} of {whence} has an id field `{id}` that is neither a string nor a number"
                            ),
                            "ids are strings or numbers, e.g. \"id\": 1",
                        );
                        return None;
                    }
                },
            }
            items.push(map);
        }
        Some(items)
    }
}

/// The span of a table's header (its first line), for errors about a key it lacks.
fn span_of<T>(spanned: &Spanned<T>) -> std::ops::Range<usize> {
    let s = spanned.span();
    s.start..s.start
}

/// Parses a data file as JSON; a syntax error points at its line and column in that file.
pub(crate) fn parse_json(file: &Path, bytes: &[u8]) -> Result<Value, LoadError> {
    // A byte-order mark (Windows editors write one) is no JSON: "expected value at line 1 column 1" otherwise.
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    serde_json::from_slice(bytes).map_err(|e| {
        let text = String::from_utf8_lossy(bytes);
        let at = offset_of(&text, e.line(), e.column());
        LoadError::at(
            file,
            &text,
            at..at,
            format!("data file `{}` is not valid JSON: {e}", file.display()),
            Some("fix the JSON; the file holds an array of objects, e.g. [{\"id\": 1, \"name\": \"Ada\"}]"),
        )
    })
}

/// The byte offset of 1-based `line` and `column` (serde_json counts the column in bytes, and 0 at a line's start).
fn offset_of(text: &str, line: usize, column: usize) -> usize {
    let start: usize = text.split_inclusive('\n').take(line.saturating_sub(1)).map(str::len).sum();
    let mut at = (start + column.saturating_sub(1)).min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// `[server] isolate`: where a request names its partition (see `crate::route::partition`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IsolateKey {
    /// A request header, e.g. `header:x-test-id`.
    Header(http::HeaderName),
    /// A query parameter, e.g. `query:test`.
    Query(String),
    /// A cookie, e.g. `cookie:test`.
    Cookie(String),
}

impl std::fmt::Display for IsolateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IsolateKey::Header(h) => write!(f, "header:{h}"),
            IsolateKey::Query(q) => write!(f, "query:{q}"),
            IsolateKey::Cookie(c) => write!(f, "cookie:{c}"),
        }
    }
}

impl IsolateKey {
    /// Parses `header:NAME`, `query:NAME` or `cookie:NAME`; the error says what is wrong.
    pub fn parse(text: &str) -> Result<IsolateKey, String> {
        let Some((kind, name)) = text.split_once(':') else {
            return Err(format!("`{text}` does not say where the partition id is"));
        };
        if name.is_empty() {
            return Err(format!("`{text}` names no {kind}"));
        }
        match kind {
            "header" => http::HeaderName::from_bytes(name.as_bytes())
                .map(IsolateKey::Header)
                .map_err(|_| format!("`{name}` is not a valid header name")),
            "query" => Ok(IsolateKey::Query(name.to_owned())),
            "cookie" => Ok(IsolateKey::Cookie(name.to_owned())),
            _ => Err(format!("`{kind}` is not a place a partition id can be")),
        }
    }
}

impl super::Checker<'_> {
    /// `[server] isolate`.
    pub(super) fn isolate(&mut self, spec: Option<&Spanned<String>>) -> Option<IsolateKey> {
        let spec = spec?;
        IsolateKey::parse(spec.get_ref())
            .map_err(|message| {
                self.error(
                    spec.span(),
                    message,
                    "write where each test sends its id: \"header:x-test-id\", \"query:NAME\" or \"cookie:NAME\"",
                )
            })
            .ok()
    }
}
