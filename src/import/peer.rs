//! What the WireMock and Mockoon importers share: the routes being written, each with its place in the source; the
//! checks that keep one converted route from breaking the whole file (a path matchit refuses, a route an earlier one
//! always answers for, a template that does not compile); and the Handlebars subset both tools template with,
//! translated to MiniJinja.
//!
//! The router's own checks (clashes, template syntax) live in `route`, above this layer: the importer repeats the
//! few it needs here, and the loader (`config`) has the last word on the text before it is returned.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

use super::{ImportError, Imported, Note};

/// The most files a folder import reads, and how deep it goes: bounds on time and memory for a folder given by
/// mistake (a home directory).
pub(super) const MAX_FILES: usize = 10_000;
pub(super) const MAX_DEPTH: usize = 16;
/// The most bytes all the files of one import may hold together.
pub(super) const MAX_TOTAL: usize = 4 * super::MAX_DOCUMENT;

/// A route table being written.
pub(super) struct PeerRoute {
    /// Where it comes from: `file#/json/pointer`.
    pub at: String,
    /// Comment lines written above the table (what was not converted, the stub's name).
    pub comments: Vec<String>,
    pub table: toml::Table,
    /// Why the route is written as a comment instead.
    pub refused: Option<String>,
    /// A `[[resource]]` table (a CRUD collection) rather than a `[[route]]`.
    pub resource: bool,
}

impl PeerRoute {
    pub(super) fn new(at: String) -> Self {
        PeerRoute { at, comments: Vec::new(), table: toml::Table::new(), refused: None, resource: false }
    }
}

/// Collects the notes of one import: each printed on stderr by the CLI, and (through `comments`) written above the
/// route it concerns.
pub(super) struct Notes {
    pub list: Vec<Note>,
}

impl Notes {
    pub(super) fn push(&mut self, at: &str, message: impl Into<String>) {
        // The source's own text goes to a terminal: no control characters (escape sequences, line breaks).
        let clean = |s: &str| s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect::<String>();
        self.list.push(Note { location: clean(at), message: clean(&message.into()) });
    }
    /// A note about a route: on stderr, and as a comment above the route.
    pub(super) fn route(&mut self, r: &mut PeerRoute, at: &str, message: impl Into<String>) {
        let message = message.into();
        r.comments.push(format!("not converted: {message}"));
        self.push(at, message);
    }
}

/// The route file's text: `header` comments, an optional `[server]` table, then each route (a refused one as a
/// comment where it would go), checked by the loader. A route the loader refuses on its own is commented out with
/// the reason; anything else failing is a converter bug, reported rather than written.
pub(super) fn finish(
    header: &str,
    server: Option<&toml::Table>,
    mut routes: Vec<PeerRoute>,
    name: &str,
    mut notes: Notes,
) -> Result<Imported, ImportError> {
    precheck(&mut routes);
    let load = |text: &str| crate::config::load_str(text, Path::new(name), Path::new("."));
    let server = server.map(|s| checked_server(s, name, &mut notes, &load)).unwrap_or_default();
    let mut head = String::from(header);
    if !server.is_empty() {
        head.push_str("\n[server]\n");
        head.push_str(&render_server(&server));
    }
    let (mut text, mut count) = assemble(&head, &routes);
    if load(&text).is_err() {
        for r in routes.iter_mut().filter(|r| r.refused.is_none()) {
            if let Err(e) = load(&render(r)) {
                r.refused = Some(format!("not imported: {}", one_line(&e.first().message)));
            }
        }
        (text, count) = assemble(&head, &routes);
        if let Err(e) = load(&text) {
            return Err(ImportError::Internal { name: name.into(), reason: e.to_string() });
        }
    }
    for r in &routes {
        if let Some(reason) = &r.refused {
            notes.push(&r.at, reason.clone());
        }
    }
    if count == 0 {
        notes.push(name, "no routes to import");
    }
    Ok(Imported { routes: text, route_count: count, notes: notes.list })
}

fn render_server(server: &toml::Table) -> String {
    server.iter().map(|(k, v)| format!("{k} = {v}\n")).collect()
}

/// The `[server]` settings the loader takes, each checked alone (a table entry by entry, e.g. one header); a
/// refused one is left out with a note.
fn checked_server(
    server: &toml::Table,
    name: &str,
    notes: &mut Notes,
    load: &dyn Fn(&str) -> Result<crate::config::Config, crate::config::LoadErrors>,
) -> toml::Table {
    let mut out = toml::Table::new();
    let mut refused = |what: String, e: crate::config::LoadErrors| {
        notes.push(name, format!("`[server] {what}` is not written: {}", one_line(&e.first().message)));
    };
    for (k, v) in server {
        let try_one = |v: toml::Value| {
            let one = toml::Table::from_iter([(k.clone(), v)]);
            load(&format!("[server]\n{}", render_server(&one)))
        };
        match v {
            toml::Value::Table(t) => {
                let mut kept = toml::Table::new();
                for (sub, sv) in t {
                    match try_one(toml::Table::from_iter([(sub.clone(), sv.clone())]).into()) {
                        Ok(_) => {
                            kept.insert(sub.clone(), sv.clone());
                        }
                        Err(e) => refused(format!("{k}.{sub}"), e),
                    }
                }
                if !kept.is_empty() {
                    out.insert(k.clone(), kept.into());
                }
            }
            v => match try_one(v.clone()) {
                Ok(_) => {
                    out.insert(k.clone(), v.clone());
                }
                Err(e) => refused(k.clone(), e),
            },
        }
    }
    out
}

/// A route that passed [`precheck`]: methods, `match` as text, required (scenario, state), place.
type Accepted = (Vec<String>, Option<String>, Option<(String, String)>, String);

/// The router's checks that a lone route passes but a file fails: a path matchit refuses next to the others, a
/// route that an earlier one always answers for, a template that does not compile.
fn precheck(routes: &mut [PeerRoute]) {
    let mut tree = matchit::Router::new();
    let mut inserted: HashSet<String> = HashSet::new();
    // By path: only routes of one path can shadow each other.
    let mut accepted: HashMap<String, Vec<Accepted>> = HashMap::new();
    // The collection and item paths of each resource so far, and where it comes from.
    let mut resource_paths: HashMap<String, String> = HashMap::new();
    for r in routes.iter_mut().filter(|r| r.refused.is_none()) {
        let path = r.table.get("path").and_then(toml::Value::as_str).unwrap_or("/").to_owned();
        if r.resource {
            // A resource owns its two paths: a route or resource on either is a load error (the router's check).
            // The source's earlier entry keeps the path, as it would answer first there.
            let item = format!("{path}/{{id}}");
            let taken = [&path, &item].into_iter().find(|p| inserted.contains(*p) || resource_paths.contains_key(*p));
            if let Some(p) = taken {
                r.refused = Some(format!("not imported: an earlier route or collection answers `{p}`"));
                continue;
            }
            let mut probe = tree.clone();
            if let Err(e) = probe.insert(path.clone(), ()).and_then(|()| probe.insert(item.clone(), ())) {
                r.refused = Some(format!("not imported: the collection `{path}` cannot be routed: {e}"));
                continue;
            }
            tree = probe;
            resource_paths.insert(path, r.at.clone());
            resource_paths.insert(item, r.at.clone());
            continue;
        }
        if let Some(at) = resource_paths.get(&path) {
            r.refused = Some(format!("not imported: the collection from {at} answers `{path}` first"));
            continue;
        }
        if let Some(problem) = template_problem(&r.table) {
            r.refused = Some(format!("not imported: {problem}"));
            continue;
        }
        if !inserted.contains(&path) {
            if let Err(e) = tree.insert(path.clone(), ()) {
                r.refused = Some(format!("not imported: the path `{path}` cannot be routed: {e}"));
                continue;
            }
            inserted.insert(path.clone());
        }
        let methods: Vec<String> = match r.table.get("method") {
            Some(toml::Value::String(m)) => vec![m.to_uppercase()],
            Some(toml::Value::Array(a)) => a.iter().filter_map(|m| m.as_str()).map(str::to_uppercase).collect(),
            _ => vec!["GET".into()],
        };
        let conditions = r.table.get("match").map(ToString::to_string);
        let state = match (r.table.get("scenario"), r.table.get("state")) {
            (Some(toml::Value::String(s)), Some(toml::Value::String(st))) => Some((s.clone(), st.clone())),
            _ => None,
        };
        let overlap = |a: &[String], b: &[String]| {
            a.iter().any(|m| m == "ANY") || b.iter().any(|m| m == "ANY") || a.iter().any(|m| b.contains(m))
        };
        let same_path = accepted.entry(path).or_default();
        let shadow = same_path.iter().find(|(m, c, s, _)| {
            overlap(m, &methods)
                && (s.is_none() || *s == state)
                && (c.is_none() || (conditions.is_some() && *c == conditions))
        });
        if let Some((.., at)) = shadow {
            r.refused = Some(format!(
                "not imported: it would never answer, the route from {at} answers the same requests first"
            ));
            continue;
        }
        same_path.push((methods, conditions, state, r.at.clone()));
    }
}

/// Why a templated route's strings do not compile as MiniJinja, if they do not.
fn template_problem(t: &toml::Table) -> Option<String> {
    if t.get("template").and_then(toml::Value::as_bool) != Some(true) {
        return None;
    }
    let mut strings = Vec::new();
    for key in ["body", "headers", "json", "sequence", "status"] {
        if let Some(v) = t.get(key) {
            toml_strings(v, &mut strings);
        }
    }
    let env = minijinja::Environment::new();
    strings.into_iter().find_map(|s| env.template_from_str(s).err().map(|e| format!("the template `{s}`: {e}")))
}

fn toml_strings<'a>(v: &'a toml::Value, out: &mut Vec<&'a str>) {
    match v {
        toml::Value::String(s) => out.push(s),
        toml::Value::Array(a) => a.iter().for_each(|v| toml_strings(v, out)),
        toml::Value::Table(t) => t.values().for_each(|v| toml_strings(v, out)),
        _ => {}
    }
}

fn assemble(header: &str, routes: &[PeerRoute]) -> (String, usize) {
    let mut out = String::from(header);
    let mut count = 0;
    for r in routes {
        out.push('\n');
        for c in &r.comments {
            let _ = writeln!(out, "# {}", one_line(c));
        }
        match &r.refused {
            Some(reason) => {
                let _ = writeln!(out, "# {}", one_line(reason));
                for line in render(r).lines() {
                    let _ = writeln!(out, "# {line}");
                }
            }
            None => {
                count += 1;
                out.push_str(&render(r));
            }
        }
    }
    (out, count)
}

/// A `[[route]]` table, each value inline (a JSON body keeps its keys in the source's order), or a `[[resource]]`
/// table with one item of its `data` a line.
fn render(r: &PeerRoute) -> String {
    let mut out = String::from(if r.resource { "[[resource]]\n" } else { "[[route]]\n" });
    for (key, value) in &r.table {
        match value {
            toml::Value::Array(items) if r.resource && key == "data" && !items.is_empty() => {
                let _ = writeln!(out, "{key} = [");
                for item in items {
                    let _ = writeln!(out, "  {item},");
                }
                out.push_str("]\n");
            }
            _ => {
                let _ = writeln!(out, "{key} = {value}");
            }
        }
    }
    out
}

/// `s` on one line with its runs of white space and control characters as one space: fit for a TOML comment,
/// which may hold no control character but a tab.
pub(super) fn one_line(s: &str) -> String {
    s.split(|c: char| c.is_whitespace() || c.is_control()).filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ")
}

/// A JSON pointer token (RFC 6901).
pub(super) fn pointer_token(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

/// A literal path segment for matchit: braces doubled.
pub(super) fn literal_segment(s: &str) -> String {
    s.replace('{', "{{").replace('}', "}}")
}

/// `value` as TOML, or `None` when it holds a JSON `null` (TOML has none).
pub(super) fn to_toml(value: &Value) -> Option<toml::Value> {
    if has_null(value) { None } else { toml::Value::try_from(value).ok() }
}

fn has_null(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.iter().any(has_null),
        Value::Object(m) => m.values().any(has_null),
        _ => false,
    }
}

/// `(?i)`-free regex text that matches exactly `s`.
pub(super) fn exact(s: &str) -> String {
    format!("^{}$", regex::escape(s))
}

/// Reads a JSON file with a bound, naming the file, line and column of a syntax error.
pub(super) fn read_json(path: &Path, what: &str, budget: &mut usize) -> Result<Value, ImportError> {
    let name = path.display().to_string();
    let text = super::openapi::read_bounded(path).map_err(|reason| ImportError::Unreadable {
        file: name.clone(),
        reason,
        help: format!("name {what}"),
    })?;
    if text.len() > *budget {
        return Err(ImportError::Malformed {
            name,
            reason: format!(
                "the files of this import hold more than {MAX_TOTAL} bytes together\nhelp: import fewer files at once"
            ),
        });
    }
    *budget -= text.len();
    parse_json(&text, &name, what)
}

/// Parses `text` as JSON, an error naming `name:line:column`.
pub(super) fn parse_json(text: &str, name: &str, what: &str) -> Result<Value, ImportError> {
    if text.len() > super::MAX_DOCUMENT {
        return Err(ImportError::TooLarge { name: name.into(), size: text.len(), limit: super::MAX_DOCUMENT });
    }
    // A byte-order mark (Windows editors write one) is no JSON: "expected value at line 1 column 1" otherwise.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    serde_json::from_str(text).map_err(|e| ImportError::Malformed {
        name: format!("{name}:{}:{}", e.line(), e.column()),
        reason: format!("not valid JSON: {e}\nhelp: {what} is a JSON file; fix its syntax at this place"),
    })
}

/// Reads a body file named by the source, beside it (never outside `root`): its text, or why not.
pub(super) fn read_body_file(root: &Path, rel: &str) -> Result<String, String> {
    if rel.is_empty() || Path::new(rel).is_absolute() || rel.split(['/', '\\']).any(|p| p == "..") {
        return Err(format!("`{rel}` is not a path inside `{}`", root.display()));
    }
    let path = root.join(rel);
    let bytes = {
        use std::io::Read;
        let file = std::fs::File::open(&path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
        let mut bytes = Vec::new();
        file.take(super::MAX_DOCUMENT as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
        if bytes.len() > super::MAX_DOCUMENT {
            return Err(format!("`{}` is larger than {} bytes", path.display(), super::MAX_DOCUMENT));
        }
        bytes
    };
    String::from_utf8(bytes)
        .map_err(|_| format!("`{}` is not UTF-8 text, and a route file's `body` holds only text", path.display()))
}

/// Which tool wrote a template: both use Handlebars, with helpers of their own.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Dialect {
    WireMock,
    Mockoon,
}

/// A segment of the route's path, for `request.path.[n]`.
#[derive(Clone, Debug)]
pub(super) enum Seg {
    Lit(String),
    Param(String),
    Rest,
}

/// A Handlebars template translated to MiniJinja: the text, whether it holds any expression (a route that needs
/// `template = true`), and the tags left as they were, printed literally.
pub(super) struct Translated {
    pub text: String,
    pub dynamic: bool,
    pub untranslated: Vec<String>,
}

/// Translates the Handlebars tags of `src` that have a MiniJinja equivalent; each other tag is printed as it was
/// written (a MiniJinja string literal) and listed in `untranslated`.
pub(super) fn translate(src: &str, dialect: Dialect, shape: &[Seg]) -> Translated {
    translate_as(src, dialect, shape, false)
}

/// [`translate`] for a string of a `json` body: each expression is made a string, as the peer's text rendering
/// would give (hotroute gives a string that is one expression its JSON value, a number for `random_int`).
pub(super) fn translate_json_string(src: &str, dialect: Dialect, shape: &[Seg]) -> Translated {
    translate_as(src, dialect, shape, true)
}

fn translate_as(src: &str, dialect: Dialect, shape: &[Seg], stringify: bool) -> Translated {
    let mut out = Translated { text: String::new(), dynamic: false, untranslated: Vec::new() };
    let mut rest = src;
    while let Some(start) = rest.find("{{") {
        literal(&rest[..start], &mut out.text);
        let after = &rest[start..];
        let (open, close) = if after.starts_with("{{{") { (3, "}}}") } else { (2, "}}") };
        let Some(end) = after[open..].find(close) else {
            literal(after, &mut out.text);
            return out;
        };
        let tag = &after[..open + end + close.len()];
        let inner = after[open..open + end].trim().trim_start_matches('~').trim_end_matches('~').trim();
        match expression(inner, dialect, shape) {
            // Only these give other values than strings.
            Some(expr) if stringify && ["json", "random_int", "now('unix"].iter().any(|p| expr.starts_with(p)) => {
                out.dynamic = true;
                let _ = write!(out.text, "{{{{ ({expr}) | string }}}}");
            }
            Some(expr) => {
                out.dynamic = true;
                let _ = write!(out.text, "{{{{ {expr} }}}}");
            }
            None => {
                out.dynamic = true;
                out.untranslated.push(tag.to_owned());
                let _ = write!(out.text, "{{{{ {} }}}}", string_literal(tag));
            }
        }
        rest = &after[tag.len()..];
    }
    literal(rest, &mut out.text);
    out
}

/// Text outside a tag, with MiniJinja's other openers (`{%`, `{#`) made literal.
fn literal(s: &str, out: &mut String) {
    out.push_str(&s.replace("{%", "{{ '{%' }}").replace("{#", "{{ '{#' }}"));
}

/// A MiniJinja string literal holding `s`.
fn string_literal(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "''".into())
}

/// A word or a quoted string of a Handlebars tag, or `key=value`.
#[derive(Debug, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Pair(String, String),
}

fn tokens(s: &str) -> Option<Vec<Tok>> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let Some(&c) = chars.peek() else { return Some(out) };
        let quoted = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>| -> Option<String> {
            let q = chars.next()?;
            let mut v = String::new();
            loop {
                match chars.next()? {
                    c if c == q => return Some(v),
                    c => v.push(c),
                }
            }
        };
        if c == '\'' || c == '"' {
            out.push(Tok::Str(quoted(&mut chars)?));
            continue;
        }
        let mut word = String::new();
        while let Some(c) = chars.next_if(|c| !c.is_whitespace() && *c != '=') {
            word.push(c);
        }
        if chars.next_if_eq(&'=').is_some() {
            let value = match chars.peek() {
                Some('\'' | '"') => quoted(&mut chars)?,
                _ => {
                    let mut v = String::new();
                    while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                        v.push(c);
                    }
                    v
                }
            };
            out.push(Tok::Pair(word, value));
        } else if word.is_empty() {
            return None;
        } else {
            out.push(Tok::Word(word));
        }
    }
}

/// The MiniJinja expression for one Handlebars tag, if it has one.
fn expression(inner: &str, dialect: Dialect, shape: &[Seg]) -> Option<String> {
    if inner.starts_with(['#', '/', '!', '>', '^', '&']) || inner == "else" {
        return None;
    }
    let toks = tokens(inner)?;
    let (Tok::Word(head), args) = toks.split_first()? else { return None };
    let pairs = |args: &[Tok]| -> Option<Vec<(String, String)>> {
        args.iter().map(|t| if let Tok::Pair(k, v) = t { Some((k.clone(), v.clone())) } else { None }).collect()
    };
    match (dialect, head.as_str(), args) {
        (Dialect::WireMock, "now", args) => now(&pairs(args)?, "format", java_format),
        (Dialect::WireMock, "randomValue", args) => random_value(&pairs(args)?),
        (Dialect::WireMock, "jsonPath", [Tok::Word(w), Tok::Str(p)]) if w == "request.body" => json_path(p),
        (Dialect::WireMock, word, []) => wiremock_word(word, shape),
        (Dialect::Mockoon, "urlParam", [Tok::Str(p)]) => {
            shape.iter().any(|s| matches!(s, Seg::Param(n) if n == p)).then(|| format!("path.{p}"))
        }
        (Dialect::Mockoon, "queryParam", [Tok::Str(q)]) => Some(query(q)),
        (Dialect::Mockoon, "header", [Tok::Str(h)]) => Some(header(h)),
        (Dialect::Mockoon, "body" | "bodyRaw", []) => Some("body".into()),
        (Dialect::Mockoon, "body", [Tok::Str(p)]) => object_path(p),
        (Dialect::Mockoon, "method", []) => Some("method".into()),
        (Dialect::Mockoon, "urlPath", []) => Some("url_path".into()),
        (Dialect::Mockoon, "uuid" | "guid", []) => Some("uuid()".into()),
        (Dialect::Mockoon, "now", []) => Some("now()".into()),
        (Dialect::Mockoon, "now", [Tok::Str(f)]) => java_format(f).map(|f| format!("now({})", string_literal(&f))),
        (Dialect::Mockoon, "int", [Tok::Word(a), Tok::Word(b)]) => {
            let (a, b) = (a.parse::<i64>().ok()?, b.parse::<i64>().ok()?);
            Some(format!("random_int({a}, {b})"))
        }
        (Dialect::Mockoon, "faker", [Tok::Str(kind)]) => faker(kind).map(|k| format!("fake('{k}')")),
        _ => None,
    }
}

fn query(name: &str) -> String {
    if is_ident(name) { format!("query.{name}") } else { format!("query[{}]", string_literal(name)) }
}

fn header(name: &str) -> String {
    format!("headers[{}]", string_literal(&name.to_ascii_lowercase()))
}

fn is_ident(s: &str) -> bool {
    let mut c = s.chars();
    c.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_') && c.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `request.url`, `request.path.[1]`, `request.query.page`, `request.headers.X-Id`, ...
fn wiremock_word(word: &str, shape: &[Seg]) -> Option<String> {
    let unbracket = |s: &str| s.trim_start_matches('[').trim_end_matches(']').to_owned();
    match word {
        "request.url" => return Some("url".into()),
        "request.path" => return Some("url_path".into()),
        "request.method" => return Some("method".into()),
        "request.body" => return Some("body".into()),
        "now" => return Some("now()".into()),
        _ => {}
    }
    if let Some(rest) = word.strip_prefix("request.path.").or_else(|| word.strip_prefix("request.pathSegments.")) {
        let key = unbracket(rest);
        return match key.parse::<usize>() {
            Ok(n) => Some(segment(n, shape)),
            Err(_) => shape.iter().any(|s| matches!(s, Seg::Param(p) if *p == key)).then(|| format!("path.{key}")),
        };
    }
    if let Some(rest) = word.strip_prefix("request.query.") {
        // `request.query.id.[0]` is the first value, which is what `query.id` is.
        let name = rest.strip_suffix(".[0]").or_else(|| rest.strip_suffix(".0")).unwrap_or(rest);
        let name = unbracket(name);
        return (!name.contains(['.', '[', ']'])).then(|| query(&name));
    }
    if let Some(rest) = word.strip_prefix("request.headers.") {
        let name = rest.strip_suffix(".[0]").unwrap_or(rest);
        let name = unbracket(name);
        return (!name.contains(['.', '[', ']'])).then(|| header(&name));
    }
    None
}

/// The n-th segment of the path (0 is the first after the leading `/`).
fn segment(n: usize, shape: &[Seg]) -> String {
    let dynamic = format!("(url_path | split('/') | list)[{}]", n + 1);
    for (i, s) in shape.iter().enumerate() {
        match s {
            Seg::Rest => return dynamic,
            _ if i < n => {}
            Seg::Lit(l) => return string_literal(l),
            Seg::Param(p) => return format!("path.{p}"),
        }
    }
    dynamic
}

/// `$.a.b[0]` as `json.a.b[0]`; other JSONPath (filters, wildcards) has no simple equivalent.
fn json_path(p: &str) -> Option<String> {
    let rest = p.strip_prefix('$')?;
    let mut out = String::from("json");
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '.' => {
                let mut name = String::new();
                while let Some(c) = chars.next_if(|c| c.is_ascii_alphanumeric() || *c == '_') {
                    name.push(c);
                }
                if !is_ident(&name) {
                    return None;
                }
                let _ = write!(out, ".{name}");
            }
            '[' => {
                let mut n = String::new();
                while let Some(c) = chars.next_if(char::is_ascii_digit) {
                    n.push(c);
                }
                if n.is_empty() || chars.next() != Some(']') {
                    return None;
                }
                let _ = write!(out, "[{n}]");
            }
            _ => return None,
        }
    }
    Some(out)
}

/// Mockoon's `body 'a.b.0'` (an object path) or `body '$.a'` (JSONPath).
fn object_path(p: &str) -> Option<String> {
    if p.starts_with('$') {
        return json_path(p);
    }
    let jp: String = p
        .split('.')
        .map(|part| if part.chars().all(|c| c.is_ascii_digit()) { format!("[{part}]") } else { format!(".{part}") })
        .collect();
    json_path(&format!("${jp}"))
}

/// `now`, with a `format` (Java or date-fns pattern, or `epoch`/`unix`); an `offset` or a timezone is not
/// translated.
fn now(pairs: &[(String, String)], key: &str, fmt: fn(&str) -> Option<String>) -> Option<String> {
    match pairs {
        [] => Some("now()".into()),
        [(k, v)] if k == key => match v.as_str() {
            "epoch" => Some("now('unix_ms')".into()),
            "unix" => Some("now('unix')".into()),
            f => fmt(f).map(|f| format!("now({})", string_literal(&f))),
        },
        _ => None,
    }
}

/// A Java `DateTimeFormatter` (or date-fns) pattern of the common letters as a strftime-like format.
fn java_format(f: &str) -> Option<String> {
    let mut out = String::new();
    let mut rest = f;
    const TABLE: [(&str, &str); 8] = [
        ("yyyy", "%Y"),
        ("MM", "%m"),
        ("dd", "%d"),
        ("HH", "%H"),
        ("mm", "%M"),
        ("ss", "%S"),
        ("SSS", "%3f"),
        ("yy", "%y"),
    ];
    'outer: while !rest.is_empty() {
        for (java, strf) in TABLE {
            if let Some(r) = rest.strip_prefix(java) {
                out.push_str(strf);
                rest = r;
                continue 'outer;
            }
        }
        let c = rest.chars().next()?;
        if c.is_ascii_alphabetic() || c == '\'' || c == '%' {
            return None;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    Some(out)
}

/// WireMock's `randomValue type='UUID'`, or `length=N` of `ALPHANUMERIC`/`HEXADECIMAL` (up to 32) and `NUMERIC`
/// (up to 18) characters.
fn random_value(pairs: &[(String, String)]) -> Option<String> {
    let get = |k: &str| pairs.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    if pairs.iter().any(|(k, _)| !matches!(k.as_str(), "type" | "length" | "uppercase")) {
        return None;
    }
    let upper = if get("uppercase") == Some("true") { " | upper" } else { "" };
    let n: usize = get("length").map_or(Some(36), |l| l.parse().ok())?;
    match get("type")? {
        "UUID" => Some(format!("uuid(){upper}")),
        "ALPHANUMERIC" | "HEXADECIMAL" if (1..=32).contains(&n) => {
            Some(format!("(uuid() | replace('-', ''))[:{n}]{upper}"))
        }
        "NUMERIC" if (1..=18).contains(&n) => {
            let low = if n == 1 { 0 } else { 10i64.pow(n as u32 - 1) };
            Some(format!("random_int({low}, {})", 10i64.pow(n as u32) - 1))
        }
        _ => None,
    }
}

/// Mockoon's `faker 'person.firstName'` as one of hotroute's `fake()` kinds.
fn faker(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "person.firstName" | "name.firstName" => "first_name",
        "person.lastName" | "name.lastName" => "last_name",
        "person.fullName" | "name.fullName" => "name",
        "internet.email" => "email",
        "internet.userName" | "internet.username" => "username",
        "internet.password" => "password",
        "internet.ip" | "internet.ipv4" => "ipv4",
        "internet.ipv6" => "ipv6",
        "internet.userAgent" => "user_agent",
        "phone.number" | "phone.phoneNumber" => "phone",
        "location.street" | "address.street" | "location.streetAddress" => "street",
        "location.city" | "address.city" => "city",
        "location.state" | "address.state" => "state",
        "location.country" | "address.country" => "country",
        "location.countryCode" | "address.countryCode" => "country_code",
        "location.zipCode" | "address.zipCode" => "zip",
        "location.latitude" | "address.latitude" => "latitude",
        "location.longitude" | "address.longitude" => "longitude",
        "company.name" | "company.companyName" => "company",
        "person.jobTitle" | "name.jobTitle" => "job_title",
        "lorem.word" => "word",
        "lorem.sentence" => "sentence",
        "lorem.paragraph" => "paragraph",
        "color.human" | "internet.color" => "color",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str, shape: &[Seg]) -> String {
        translate(s, Dialect::WireMock, shape).text
    }

    #[test]
    fn wiremock_tags_translate() {
        let shape = [Seg::Lit("users".into()), Seg::Param("id".into())];
        assert_eq!(t("id {{request.path.[1]}}", &shape), "id {{ path.id }}");
        assert_eq!(t("{{request.path.[0]}}", &shape), "{{ \"users\" }}");
        assert_eq!(t("{{request.path.[0]}}", &[Seg::Rest]), "{{ (url_path | split('/') | list)[1] }}");
        assert_eq!(t("{{request.query.q}}", &shape), "{{ query.q }}");
        assert_eq!(t("{{{request.headers.X-Id}}}", &shape), "{{ headers[\"x-id\"] }}");
        assert_eq!(t("{{jsonPath request.body '$.a[0].b'}}", &shape), "{{ json.a[0].b }}");
        assert_eq!(t("{{now format='yyyy-MM-dd'}}", &shape), "{{ now(\"%Y-%m-%d\") }}");
        assert_eq!(t("{% x", &shape), "{{ '{%' }} x");
        let odd = translate("{{#if x}}y{{/if}}", Dialect::WireMock, &shape);
        assert_eq!(odd.untranslated, ["{{#if x}}", "{{/if}}"]);
    }
}
