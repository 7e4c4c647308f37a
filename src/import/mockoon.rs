//! A Mockoon environment (its JSON export) to route-file text.
//!
//! Mockoon picks a route's response per request: the first response whose rules hold, else the default one (or, by
//! the route's `responseMode`, the next in turn, a random one, or none). Each response becomes a route with the rules
//! as `match` conditions, in Mockoon's order, and the default response the unconditional route after them; an `OR`
//! of rules becomes one route per rule. Whatever has no equivalent is a note, never a failure.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::path::Path;

use serde_json::{Map, Value};

use super::peer::{self, Dialect, Notes, PeerRoute, Seg};
use super::{ImportError, Imported};

pub(super) fn convert(root: &Value, name: &str, dir: Option<&Path>) -> Result<Imported, ImportError> {
    let malformed = |reason: &str| ImportError::Malformed { name: name.into(), reason: reason.into() };
    let Some(env) = root.as_object() else {
        return Err(malformed(
            "not a Mockoon environment: the file holds no JSON object\nhelp: export the environment from Mockoon (File > Export) or name its data file",
        ));
    };
    let Some(routes) = env.get("routes").and_then(Value::as_array) else {
        return Err(malformed(
            "not a Mockoon environment: no `routes` list at the top\nhelp: name an environment file (Mockoon's \
             data file or an export with `routes`, `endpointPrefix` and `port`)",
        ));
    };
    let mut notes = Notes { list: Vec::new() };
    let prefix = env.get("endpointPrefix").and_then(Value::as_str).unwrap_or("").trim_matches('/').to_owned();
    let env_latency = env.get("latency").and_then(Value::as_u64).unwrap_or(0);

    let mut server = toml::Table::new();
    if let Some(port) = env.get("port").and_then(Value::as_u64).filter(|p| (1..=65535).contains(p)) {
        // Loopback whatever Mockoon's `hostname` said: `--listen` opens it wider on purpose.
        server.insert("listen".into(), format!("127.0.0.1:{port}").into());
    }
    let mut env_headers = toml::Table::new();
    for (k, v) in header_list(env.get("headers")) {
        env_headers.insert(k.to_ascii_lowercase(), v.into());
    }
    if !env_headers.is_empty() {
        server.insert("headers".into(), env_headers.into());
    }
    if env.get("cors").and_then(Value::as_bool) == Some(true) {
        server.insert("cors".into(), true.into());
    }
    if env.get("proxyMode").and_then(Value::as_bool) == Some(true) {
        notes.push(&format!("{name}#/proxyMode"), "proxy mode is not converted: requests no route answers get a 404");
    }
    if root.pointer("/tlsOptions/enabled").and_then(Value::as_bool) == Some(true) {
        notes.push(&format!("{name}#/tlsOptions"), "TLS is not converted: add `[server] tls` (see README, HTTPS)");
    }
    let buckets = Buckets::new(env.get("data"), name);

    let mut out = Vec::new();
    for (i, route) in routes.iter().enumerate() {
        let at = format!("{name}#/routes/{i}");
        let Some(route) = route.as_object() else {
            notes.push(&at, "a route is an object; left out");
            continue;
        };
        let ctx = Ctx { shape: &[], dir, env_latency, buckets: &buckets };
        convert_route(route, &at, &prefix, &ctx, &mut out, &mut notes);
    }
    for (i, b) in buckets.list.iter().enumerate() {
        if !buckets.used.borrow()[i] {
            let why = "no route refers to it (as a CRUD route's collection or a response body)";
            notes.push(&b.at, format!("the data bucket `{}` is not converted: {why}", b.label()));
        }
    }
    let mut header = String::new();
    let title = env.get("name").and_then(Value::as_str).unwrap_or("a Mockoon environment");
    let _ = writeln!(header, "# Imported by `hotroute import mockoon` from {name}: {}", peer::one_line(title));
    header.push_str("# Each response is a route, its rules as `match`, the default response last. `# not converted:` lines say what was left out.\n");
    peer::finish(&header, Some(&server), out, name, notes)
}

fn header_list(v: Option<&Value>) -> Vec<(String, String)> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|h| Some((h.get("key")?.as_str()?.to_owned(), h.get("value")?.as_str()?.to_owned())))
        // hotroute frames the body itself; a `transfer-encoding` header on an answer is a load error.
        .filter(|(k, _)| !k.is_empty() && !k.eq_ignore_ascii_case("transfer-encoding"))
        .collect()
}

/// The route path for Mockoon's `prefix/endpoint` (Express syntax: `:param`, a `*` last), or why it has none.
fn route_path(prefix: &str, endpoint: &str) -> Result<(String, Vec<Seg>), String> {
    let full = [prefix, endpoint.trim_start_matches('/')].into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>();
    let full = full.join("/");
    let mut segs = Vec::new();
    let mut path = String::new();
    let parts: Vec<&str> = if full.is_empty() { Vec::new() } else { full.split('/').collect() };
    for (i, part) in parts.iter().enumerate() {
        if let Some(name) = part.strip_prefix(':') {
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("the path segment `{part}` is not a plain `:name` parameter"));
            }
            let _ = write!(path, "/{{{name}}}");
            segs.push(Seg::Param(name.to_owned()));
        } else if *part == "*" && i + 1 == parts.len() {
            path.push_str("/{*wildcard}");
            segs.push(Seg::Rest);
        } else if part.contains(['*', '?', '+', '(', ')', ':']) {
            return Err(format!(
                "the path segment `{part}` uses Express pattern syntax hotroute has no equivalent for"
            ));
        } else {
            let _ = write!(path, "/{}", peer::literal_segment(part));
            segs.push(Seg::Lit((*part).to_owned()));
        }
    }
    Ok((if path.is_empty() { "/".into() } else { path }, segs))
}

fn convert_route(
    route: &Map<String, Value>,
    at: &str,
    prefix: &str,
    env: &Ctx<'_>,
    out: &mut Vec<PeerRoute>,
    notes: &mut Notes,
) {
    let endpoint = route.get("endpoint").and_then(Value::as_str).unwrap_or("");
    let kind = route.get("type").and_then(Value::as_str).unwrap_or("http");
    if kind == "crud" {
        convert_crud(route, at, prefix, env, out, notes);
        return;
    }
    if kind != "http" {
        notes.push(at, format!("a `{kind}` route (`{endpoint}`) is not converted"));
        return;
    }
    let method = match route.get("method").and_then(Value::as_str).unwrap_or("get") {
        "" | "all" => "ANY".to_owned(),
        m => m.to_uppercase(),
    };
    let (path, shape) = match route_path(prefix, endpoint) {
        Ok(p) => p,
        Err(why) => {
            let mut r = PeerRoute::new(at.to_owned());
            r.table.insert("path".into(), format!("/{prefix}/{endpoint}").replace("//", "/").into());
            r.refused = Some(format!("not imported: {why}"));
            out.push(r);
            return;
        }
    };
    let responses: Vec<&Map<String, Value>> =
        route.get("responses").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_object).collect();
    if responses.is_empty() {
        notes.push(at, "the route has no responses; left out");
        return;
    }
    let default = responses.iter().position(|r| r.get("default").and_then(Value::as_bool) == Some(true)).unwrap_or(0);
    let base = |i: usize| {
        let mut r = PeerRoute::new(format!("{at}/responses/{i}"));
        r.table.insert("path".into(), path.clone().into());
        r.table.insert("method".into(), method.clone().into());
        if let Some(doc) = route.get("documentation").and_then(Value::as_str).filter(|d| !d.is_empty()) {
            r.comments.push(doc.to_owned());
        }
        r
    };
    let ctx = Ctx { shape: &shape, ..*env };
    match route.get("responseMode").and_then(Value::as_str) {
        Some("SEQUENTIAL") => {
            // One route answering each response in turn, then the first again.
            let mut r = base(0);
            let mut items = Vec::new();
            let mut dynamic = false;
            for (i, resp) in responses.iter().enumerate() {
                let mut item = PeerRoute::new(format!("{at}/responses/{i}"));
                dynamic |= ctx.answer(resp, &mut item, notes);
                r.comments.append(&mut item.comments);
                if item.refused.is_some() {
                    r.refused = item.refused;
                }
                items.push(toml::Value::Table(item.table));
            }
            r.table.insert("sequence".into(), items.into());
            r.table.insert("repeat".into(), "cycle".into());
            if dynamic {
                r.table.insert("template".into(), true.into());
            }
            out.push(r);
        }
        Some("RANDOM") => {
            // n answers, each one in n: the first with chance 1/n, the next 1/(n-1) of what is left, ..., the last
            // unconditional.
            let n = responses.len();
            for (i, resp) in responses.iter().enumerate() {
                let mut r = base(i);
                if i + 1 < n {
                    let mut m = toml::Table::new();
                    m.insert("chance".into(), (1.0 / (n - i) as f64).into());
                    r.table.insert("match".into(), m.into());
                }
                if ctx.answer(resp, &mut r, notes) {
                    r.table.insert("template".into(), true.into());
                }
                out.push(r);
            }
        }
        mode => {
            let rules_on = mode != Some("DISABLE_RULES");
            if let Some(m) = mode.filter(|m| !matches!(*m, "FALLBACK" | "DISABLE_RULES")) {
                notes.push(&format!("{at}/responseMode"), format!("the response mode `{m}` is not converted"));
            }
            for (i, resp) in responses.iter().enumerate() {
                let rules: Vec<&Value> = resp
                    .get("rules")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter(|r| r.get("enabled").and_then(Value::as_bool) != Some(false))
                    .collect();
                if !rules_on || rules.is_empty() {
                    if i != default {
                        let why = if rules_on {
                            "a response without rules that is not the default is never chosen (as in Mockoon); left out"
                        } else {
                            "the route's rules are disabled: only its default response answers (as in Mockoon); left out"
                        };
                        notes.push(&format!("{at}/responses/{i}"), why);
                    }
                    continue;
                }
                // Mockoon joins a response's rules with `OR` unless told `AND`.
                let or = resp.get("rulesOperator").and_then(Value::as_str) != Some("AND");
                let groups: Vec<Vec<(usize, &Value)>> = if or {
                    rules.iter().copied().enumerate().map(|r| vec![r]).collect()
                } else {
                    vec![rules.iter().copied().enumerate().collect()]
                };
                for group in groups {
                    let mut r = base(i);
                    let mut m = toml::Table::new();
                    let mut params: Vec<(String, String)> = Vec::new();
                    let mut failed = Vec::new();
                    for (j, rule) in group {
                        if let Err(why) = rule_condition(rule, &mut m, &mut params) {
                            failed.push((format!("{at}/responses/{i}/rules/{j}"), why));
                        }
                    }
                    if !failed.is_empty() && m.is_empty() && params.is_empty() {
                        // Rules none of which can be checked would answer every request, shadowing the default
                        // response: the response is left out instead.
                        let whys: Vec<String> = failed.into_iter().map(|(_, why)| why).collect();
                        r.refused = Some(format!("not imported: {}", whys.join("; ")));
                    } else {
                        for (rat, why) in failed {
                            notes.route(&mut r, &rat, why);
                        }
                    }
                    if !params.is_empty() && m.contains_key("path_regex") {
                        let why = "rules on both `path` and route parameters: hotroute has one `path_regex`, the \
                                   parameter rules are not checked";
                        notes.route(&mut r, &format!("{at}/responses/{i}/rules"), why);
                    } else if !params.is_empty() {
                        m.insert("path_regex".into(), params_regex(&shape, &params).into());
                    }
                    if !m.is_empty() {
                        r.table.insert("match".into(), m.into());
                    }
                    if ctx.answer(resp, &mut r, notes) {
                        r.table.insert("template".into(), true.into());
                    }
                    out.push(r);
                }
            }
            if mode != Some("FALLBACK") {
                let mut r = base(default);
                if ctx.answer(responses[default], &mut r, notes) {
                    r.table.insert("template".into(), true.into());
                }
                out.push(r);
            }
        }
    }
}

/// A path regex for rules on route parameters: each named segment held to its pattern, the others any segment.
fn params_regex(shape: &[Seg], params: &[(String, String)]) -> String {
    let mut re = String::from("^");
    for s in shape {
        re.push('/');
        match s {
            Seg::Lit(l) => re.push_str(&regex::escape(l)),
            Seg::Param(p) => match params.iter().find(|(n, _)| n == p) {
                Some((_, pat)) => re.push_str(pat),
                None => re.push_str("[^/]+"),
            },
            Seg::Rest => re.push_str(".+"),
        }
    }
    re.push('$');
    re
}

fn table<'t>(t: &'t mut toml::Table, key: &str) -> &'t mut toml::Table {
    match t.entry(key.to_owned()).or_insert_with(|| toml::Table::new().into()) {
        toml::Value::Table(t) => t,
        _ => unreachable!("only tables are inserted under {key}"),
    }
}

/// One Mockoon rule as a `match` condition (or a parameter pattern for the path regex), or why it has none.
fn rule_condition(rule: &Value, m: &mut toml::Table, params: &mut Vec<(String, String)>) -> Result<(), String> {
    let get = |k: &str| rule.get(k).and_then(Value::as_str).unwrap_or("");
    let (target, modifier, value, op) = (get("target"), get("modifier"), get("value"), get("operator"));
    let op = if op.is_empty() { "equals" } else { op };
    let invert = rule.get("invert").and_then(Value::as_bool) == Some(true);
    let words: Vec<&str> = [target, modifier, op, value].into_iter().filter(|w| !w.is_empty()).collect();
    let what = format!("the rule `{}`{}", words.join(" "), if invert { " (inverted)" } else { "" });
    let no = |why: &str| Err(format!("{what}: {why}; not checked"));
    let regex_of = |op: &str| -> Option<String> {
        match op {
            "equals" => Some(peer::exact(value)),
            "regex" => Some(value.to_owned()),
            "regex_i" => Some(format!("(?i){value}")),
            _ => None,
        }
    };
    if invert && !(op == "null" && matches!(target, "header" | "query")) {
        return no("an inverted rule has no hotroute equivalent");
    }
    match (target, op) {
        ("query" | "header", "null") => {
            let header = target == "header";
            if invert {
                // Present with any value.
                let key = if header { "headers_regex" } else { "query_regex" };
                let name = if header { modifier.to_ascii_lowercase() } else { modifier.to_owned() };
                table(m, key).insert(name, "".into());
                Ok(())
            } else if header {
                let absent = m.entry("headers_absent").or_insert_with(|| toml::Value::Array(Vec::new()));
                if let toml::Value::Array(a) = absent {
                    a.push(modifier.to_ascii_lowercase().into());
                }
                Ok(())
            } else {
                no("a query parameter's absence is not expressible")
            }
        }
        ("query" | "header", _) if modifier.is_empty() || (target == "query" && modifier.contains('.')) => {
            no("a rule on the whole query or on a nested query key is not expressible")
        }
        ("query", "equals") => {
            table(m, "query").insert(modifier.into(), value.into());
            Ok(())
        }
        ("header", "equals") => {
            table(m, "headers").insert(modifier.to_ascii_lowercase(), value.into());
            Ok(())
        }
        ("query" | "header", op) => match regex_of(op) {
            Some(re) => {
                let (key, name) = if target == "header" {
                    ("headers_regex", modifier.to_ascii_lowercase())
                } else {
                    ("query_regex", modifier.to_owned())
                };
                table(m, key).insert(name, re.into());
                Ok(())
            }
            None => no("this operator is not expressible"),
        },
        ("cookie", "equals") if !modifier.is_empty() => {
            table(m, "cookies").insert(modifier.into(), value.into());
            Ok(())
        }
        ("params", "equals" | "regex" | "regex_i") if !modifier.is_empty() => {
            let pat = match op {
                "equals" => regex::escape(value),
                // Mockoon tests the regex anywhere in the value; anchors would break the path regex.
                _ if value.contains(['^', '$']) => return no("a parameter regex with anchors is not converted"),
                "regex" => format!("[^/]*(?:{value})[^/]*"),
                _ => format!("[^/]*(?i:{value})[^/]*"),
            };
            params.push((modifier.to_owned(), pat));
            Ok(())
        }
        ("path", "equals" | "regex" | "regex_i") if !m.contains_key("path_regex") => {
            m.insert("path_regex".into(), regex_of(op).unwrap_or_default().into());
            Ok(())
        }
        ("body", "equals") if modifier.is_empty() => {
            if m.contains_key("body_regex") {
                return no("hotroute has one `body_regex`");
            }
            m.insert("body_regex".into(), format!("(?s){}", peer::exact(value)).into());
            Ok(())
        }
        ("body", "regex" | "regex_i") if modifier.is_empty() => {
            if m.contains_key("body_regex") {
                return no("hotroute has one `body_regex`");
            }
            m.insert("body_regex".into(), regex_of(op).unwrap_or_default().into());
            Ok(())
        }
        ("body", "equals") => {
            let path = if modifier.starts_with('$') { modifier.to_owned() } else { object_path(modifier) };
            // Mockoon compares the selected value's text: a value that reads as a JSON number or boolean is compared
            // as one, the likelier meaning in a JSON body.
            let want = match serde_json::from_str::<Value>(value) {
                Ok(v @ (Value::Number(_) | Value::Bool(_))) => peer::to_toml(&v).unwrap_or_else(|| value.into()),
                _ => value.into(),
            };
            table(m, "jsonpath").insert(path, want);
            Ok(())
        }
        _ => no("this target or operator has no hotroute equivalent"),
    }
}

/// Mockoon's object path `a.b.0` as JSONPath `$.a.b[0]`.
fn object_path(p: &str) -> String {
    let mut out = String::from("$");
    for part in p.split('.') {
        if !part.is_empty() && part.chars().all(|c| c.is_ascii_digit()) {
            let _ = write!(out, "[{part}]");
        } else if part.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            let _ = write!(out, ".{part}");
        } else {
            let _ = write!(out, "[{}]", serde_json::to_string(part).unwrap_or_default().replace('"', "'"));
        }
    }
    out
}

/// One of the environment's data buckets (`data`: `id`, `name`, `value` as text).
struct Bucket {
    /// `file#/data/i`.
    at: String,
    id: String,
    name: String,
    value: String,
}

impl Bucket {
    fn label(&self) -> &str {
        if self.name.is_empty() { &self.id } else { &self.name }
    }

    /// The value as JSON, when it is plain JSON: Mockoon renders a bucket's templates once, at start, then parses
    /// it, so a value with a tag has no fixed equivalent.
    fn json(&self) -> Result<Value, String> {
        if self.value.contains("{{") {
            return Err(format!(
                "the data bucket `{}` ({}/value) is templated; only a plain JSON value is converted",
                self.label(),
                self.at
            ));
        }
        serde_json::from_str(&self.value).map_err(|e| {
            format!(
                "the data bucket `{}` ({}/value) is not JSON ({e}); only a plain JSON value is converted",
                self.label(),
                self.at
            )
        })
    }
}

/// The environment's data buckets, and which of them a converted route took.
struct Buckets {
    list: Vec<Bucket>,
    used: RefCell<Vec<bool>>,
}

impl Buckets {
    fn new(data: Option<&Value>, name: &str) -> Self {
        let text = |b: &Value, k: &str| b.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        let list: Vec<Bucket> = data
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
            .map(|(i, b)| Bucket {
                at: format!("{name}#/data/{i}"),
                id: text(b, "id"),
                name: text(b, "name"),
                value: text(b, "value"),
            })
            .collect();
        let used = RefCell::new(vec![false; list.len()]);
        Buckets { list, used }
    }

    /// The bucket a response's `databucketID` names (Mockoon's short `id`), or with `by_name` also the one `{{data
    /// 'x'}}` names (an id or a name).
    fn find(&self, key: &str, by_name: bool) -> Option<(usize, &Bucket)> {
        let found = self.list.iter().position(|b| !key.is_empty() && b.id == key);
        let found = found.or_else(|| by_name.then(|| self.list.iter().position(|b| b.name == key)).flatten());
        if let Some(i) = found {
            self.used.borrow_mut()[i] = true;
        }
        found.map(|i| (i, &self.list[i]))
    }

    /// The body a bucket gives (Mockoon sends a string as it is, anything else as compact JSON), or why it gives
    /// none.  Either way the bucket is marked as referred to: a bucket that cannot be converted has its note where
    /// it is used.
    fn body(&self, key: &str, by_name: bool) -> Result<String, String> {
        let Some((_, b)) = self.find(key, by_name) else {
            let by = if by_name { "id or name" } else { "id" };
            return Err(format!("no data bucket has the {by} `{key}`"));
        };
        Ok(match b.json()? {
            Value::String(s) => s,
            v => v.to_string(),
        })
    }
}

/// The bucket a whole-body `{{data 'x'}}` (or `dataRaw`, triple braces) names: the one template a bucket replaces.
fn whole_body_data(body: &str) -> Option<&str> {
    let b = body.trim();
    let inner = b.strip_prefix("{{{").and_then(|b| b.strip_suffix("}}}"));
    let inner = inner.or_else(|| b.strip_prefix("{{").and_then(|b| b.strip_suffix("}}")))?.trim();
    let arg = inner.strip_prefix("dataRaw").or_else(|| inner.strip_prefix("data"))?;
    if !arg.starts_with(char::is_whitespace) {
        return None;
    }
    let arg = arg.trim();
    let quote = arg.chars().next().filter(|q| matches!(q, '\'' | '"'))?;
    let name = arg.strip_prefix(quote)?.strip_suffix(quote)?;
    (!name.contains(quote)).then_some(name)
}

/// A `crud` route: its default response's data bucket as a `[[resource]]` at the route's endpoint, keyed by
/// `crudKey`. Mockoon's CRUD routes answer `GET`/`POST` on the endpoint and `GET`/`PUT`/`PATCH`/`DELETE` on
/// `endpoint/:id`, as a resource does.
fn convert_crud(
    route: &Map<String, Value>,
    at: &str,
    prefix: &str,
    env: &Ctx<'_>,
    out: &mut Vec<PeerRoute>,
    notes: &mut Notes,
) {
    let endpoint = route.get("endpoint").and_then(Value::as_str).unwrap_or("");
    let what = format!("the CRUD route `{endpoint}`");
    let responses: Vec<&Map<String, Value>> =
        route.get("responses").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_object).collect();
    // Mockoon makes a CRUD route's first response its default, the one that serves the bucket.
    let Some(default) = responses
        .iter()
        .position(|r| r.get("default").and_then(Value::as_bool) == Some(true))
        .or(if responses.is_empty() { None } else { Some(0) })
    else {
        notes.push(at, format!("{what} has no responses, so no data bucket; not converted"));
        return;
    };
    let resp = responses[default];
    let rat = format!("{at}/responses/{default}");
    let path = match route_path(prefix, endpoint) {
        Ok((_, shape)) if !shape.is_empty() && shape.iter().all(|s| matches!(s, Seg::Lit(_))) => {
            let lits: Vec<&str> =
                shape.iter().filter_map(|s| if let Seg::Lit(l) = s { Some(l.as_str()) } else { None }).collect();
            format!("/{}", lits.join("/"))
        }
        Ok(_) => {
            let why = "a CRUD route at the root or with a `:param` or `*` is not converted: a `[[resource]]` path is \
                       fixed text with at least one segment";
            notes.push(&format!("{at}/endpoint"), format!("{what}: {why}"));
            return;
        }
        Err(why) => {
            notes.push(&format!("{at}/endpoint"), format!("{what} is not converted: {why}"));
            return;
        }
    };
    let key = resp.get("databucketID").and_then(Value::as_str).unwrap_or("");
    if key.is_empty() {
        notes.push(&format!("{rat}/databucketID"), format!("{what} names no data bucket; not converted"));
        return;
    }
    let Some((_, bucket)) = env.buckets.find(key, false) else {
        notes.push(&format!("{rat}/databucketID"), format!("{what}: no data bucket has the id `{key}`; not converted"));
        return;
    };
    let data = match bucket.json() {
        Ok(Value::Array(items)) if items.iter().all(Value::is_object) => items,
        Ok(_) => {
            let why = format!(
                "{what}: the data bucket `{}` ({}/value) is not a JSON array of objects, which a `[[resource]]` \
                 holds; not converted",
                bucket.label(),
                bucket.at
            );
            notes.push(&format!("{rat}/databucketID"), why);
            return;
        }
        Err(why) => {
            notes.push(&format!("{rat}/databucketID"), format!("{what}: {why}; not converted"));
            return;
        }
    };
    let mut r = PeerRoute::new(at.to_owned());
    r.resource = true;
    r.comments.push(format!("Mockoon CRUD route over the data bucket `{}`", peer::one_line(bucket.label())));
    // TOML has no null: a field holding one is left out, which a JSON merge patch reads the same way.
    let mut nulls = false;
    let items: Vec<Value> = data
        .into_iter()
        .map(|item| match item {
            Value::Object(m) => Value::Object(
                m.into_iter()
                    .filter(|(_, v)| {
                        nulls |= v.is_null();
                        !v.is_null()
                    })
                    .collect(),
            ),
            other => other,
        })
        .collect();
    let Some(data) = peer::to_toml(&Value::Array(items)) else {
        let why = format!(
            "{what}: the data bucket `{}` ({}/value) holds a `null` below an item's fields, which TOML cannot write; \
             not converted",
            bucket.label(),
            bucket.at
        );
        notes.push(&format!("{rat}/databucketID"), why);
        return;
    };
    if nulls {
        notes.route(&mut r, &format!("{}/value", bucket.at), "fields holding `null` are left out (TOML has no null)");
    }
    r.table.insert("path".into(), path.into());
    let id = resp.get("crudKey").and_then(Value::as_str).filter(|k| !k.is_empty()).unwrap_or("id");
    if id != "id" {
        r.table.insert("id".into(), id.into());
    }
    r.table.insert("data".into(), data);
    if !header_list(resp.get("headers")).is_empty() {
        notes.route(&mut r, &format!("{rat}/headers"), "a CRUD route's response headers are not converted");
    }
    let latency = resp.get("latency").and_then(Value::as_u64).unwrap_or(0).saturating_add(env.env_latency);
    if latency > 0 {
        notes.route(&mut r, &format!("{rat}/latency"), "latency on a CRUD route is not converted");
    }
    for (i, other) in responses.iter().enumerate().filter(|(i, _)| *i != default) {
        let label = other.get("label").and_then(Value::as_str).unwrap_or("");
        notes.route(
            &mut r,
            &format!("{at}/responses/{i}"),
            format!(
                "a CRUD route's other response `{}` (answering when its rules hold) is not converted",
                peer::one_line(label)
            ),
        );
    }
    out.push(r);
}

/// What answering a response needs from its route.
#[derive(Clone, Copy)]
struct Ctx<'a> {
    shape: &'a [Seg],
    dir: Option<&'a Path>,
    env_latency: u64,
    buckets: &'a Buckets,
}

impl Ctx<'_> {
    /// Writes the response's status, headers, body and delay into `r`; true when a string of it is a template.
    fn answer(&self, resp: &Map<String, Value>, r: &mut PeerRoute, notes: &mut Notes) -> bool {
        let at = r.at.clone();
        let templating = resp.get("disableTemplating").and_then(Value::as_bool) != Some(true);
        let mut dynamic = false;
        let mut untranslated = Vec::new();
        let mut tx = |s: &str| -> String {
            if !templating {
                return s.to_owned();
            }
            let t = peer::translate(s, Dialect::Mockoon, self.shape);
            dynamic |= t.dynamic;
            untranslated.extend(t.untranslated);
            t.text
        };
        if let Some(label) = resp.get("label").and_then(Value::as_str).filter(|l| !l.is_empty()) {
            r.comments.push(label.to_owned());
        }
        let status = resp.get("statusCode").and_then(Value::as_i64).unwrap_or(200);
        if status != 200 {
            r.table.insert("status".into(), status.into());
        }
        let mut headers = toml::Table::new();
        for (k, v) in header_list(resp.get("headers")) {
            headers.insert(k.to_ascii_lowercase(), tx(&v).into());
        }
        match resp.get("bodyType").and_then(Value::as_str).unwrap_or("INLINE") {
            "FILE" => {
                let file = resp.get("filePath").and_then(Value::as_str).unwrap_or("");
                let read = match self.dir {
                    _ if file.contains("{{") => Err("a templated file path is not converted".to_owned()),
                    None => Err(format!("`{file}` is not read when the environment is given as text")),
                    Some(dir) => peer::read_body_file(dir, file),
                };
                match read {
                    Ok(text) => {
                        if !headers.contains_key("content-type") {
                            let mime = mime_guess::from_path(file).first_or_text_plain();
                            headers.insert("content-type".into(), mime.essence_str().into());
                        }
                        r.table.insert("body".into(), tx(&text).into());
                    }
                    Err(why) => notes.route(r, &format!("{at}/filePath"), format!("{why}; answers with no body")),
                }
            }
            "DATABUCKET" => {
                let key = resp.get("databucketID").and_then(Value::as_str).unwrap_or("");
                match self.buckets.body(key, false) {
                    Ok(body) => {
                        // Sent as it is: Mockoon does not render a bucket's body again.
                        r.table.insert("body".into(), body.into());
                    }
                    Err(why) => notes.route(r, &format!("{at}/databucketID"), format!("{why}; answers with no body")),
                }
            }
            _ => {
                if let Some(body) = resp.get("body").and_then(Value::as_str).filter(|b| !b.is_empty()) {
                    match whole_body_data(body).filter(|_| templating) {
                        Some(key) => match self.buckets.body(key, true) {
                            Ok(text) => {
                                r.table.insert("body".into(), text.into());
                            }
                            Err(why) => notes.route(r, &format!("{at}/body"), format!("{why}; answers with no body")),
                        },
                        None => {
                            r.table.insert("body".into(), tx(body).into());
                        }
                    }
                }
            }
        }
        if !headers.is_empty() {
            r.table.insert("headers".into(), headers.into());
        }
        let latency = resp.get("latency").and_then(Value::as_u64).unwrap_or(0).saturating_add(self.env_latency);
        if latency > 0 {
            r.table.insert("delay".into(), format!("{}ms", latency.min(3_600_000)).into());
        }
        if resp.get("callbacks").and_then(Value::as_array).is_some_and(|c| !c.is_empty()) {
            notes.route(r, &format!("{at}/callbacks"), "callbacks are not converted");
        }
        for tag in untranslated {
            notes.route(
                r,
                &at,
                format!("the template tag `{tag}` has no MiniJinja translation; it is sent as written"),
            );
        }
        dynamic
    }
}
