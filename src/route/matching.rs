//! Request matching: the `[route.match]` conditions that let several routes share a method and path.
//!
//! Conditions are checked in a fixed order, cheapest first (path regex, query, headers, then the body), and the
//! check stops at the first that fails. What a request needs parsed (its query, its JSON body) is parsed at most once
//! per request, however many routes look at it, by [`RequestData`]. When no route matches, [`MatchConfig::explain`]
//! says in words which condition failed, for the near-miss 404.

use std::fmt::Write as _;

use crate::config::{Condition, MatchConfig};
use crate::request::RequestData;

impl Condition {
    fn holds(&self, value: &str) -> bool {
        match self {
            Condition::Equals(want) => value == want,
            Condition::Regex(re) => re.is_match(value),
        }
    }

    fn describe(&self) -> String {
        match self {
            Condition::Equals(want) => format!("`{want}`"),
            Condition::Regex(re) => format!("a match of /{}/", re.as_str()),
        }
    }
}

/// Which condition failed, in [`MatchConfig`]'s check order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failed {
    /// `path_regex`.
    PathRegex,
    /// The n-th query condition.
    Query(usize),
    /// The n-th header condition.
    Header(usize),
    /// `body_contains`.
    BodyContains,
    /// `body_regex`.
    BodyRegex,
    /// `json`.
    Json,
    /// The n-th of `headers_absent`.
    HeaderPresent(usize),
    /// The n-th cookie condition.
    Cookie(usize),
    /// The n-th form field condition.
    Form(usize),
    /// The n-th `jsonpath` condition.
    JsonPath(usize),
    /// `chance`: the request was not drawn.
    Chance,
    /// `not`: the request meets every condition of the `not` table.
    Not,
    /// `graphql`: the request is not GraphQL, or its operation or variables differ.
    Graphql,
}

/// The values of the cookie `name` in the request's `Cookie` headers (`a=1; b=2`).
fn cookie_values<'a>(req: &'a RequestData<'_>, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    req.view
        .headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(move |pair| {
            let (k, v) = pair.trim().split_once('=')?;
            // A value may be quoted (RFC 6265): the quotes are not part of it.
            (k.trim() == name).then(|| v.trim().trim_matches('"'))
        })
}

/// The request's content type without parameters, if it has one.
fn content_type<'a>(req: &'a RequestData<'_>) -> Option<&'a str> {
    let ct = req.view.headers.get(http::header::CONTENT_TYPE)?.to_str().ok()?;
    ct.split(';').next().map(str::trim)
}

/// Whether the body is a form: URL-encoded or `multipart/form-data` (the content-type says so).
fn is_form(req: &RequestData<'_>) -> bool {
    content_type(req).is_some_and(|t| {
        t.eq_ignore_ascii_case("application/x-www-form-urlencoded") || t.eq_ignore_ascii_case("multipart/form-data")
    })
}

/// The most parts of a multipart body that `form` conditions look at.
const MAX_FORM_PARTS: usize = 1000;

/// The decoded values of the form field `name`, if the body is a form. A multipart part's value is its content as
/// text (a file part's too); parts past [`MAX_FORM_PARTS`] and a body that is not valid multipart count as absent.
fn form_values(req: &RequestData<'_>, name: &str) -> Vec<String> {
    match content_type(req) {
        Some(t) if t.eq_ignore_ascii_case("application/x-www-form-urlencoded") => {
            form_urlencoded::parse(req.view.body).filter(|(k, _)| k == name).map(|(_, v)| v.into_owned()).collect()
        }
        Some(t) if t.eq_ignore_ascii_case("multipart/form-data") => {
            multipart_fields(req).into_iter().filter(|(k, _)| k == name).map(|(_, v)| v).collect()
        }
        _ => Vec::new(),
    }
}

/// The `(name, text)` of each part of a `multipart/form-data` body, parsed by multer (the multipart parser of the
/// axum and actix ecosystems). The body is already in memory, within `max_body`, so the parse never waits: it is
/// polled once, on this thread, and a parse that would wait (it cannot) counts as no fields.
fn multipart_fields(req: &RequestData<'_>) -> Vec<(String, String)> {
    use futures_util::FutureExt as _;
    let Some(boundary) = req
        .view
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| multer::parse_boundary(ct).ok())
    else {
        return Vec::new();
    };
    let body = bytes::Bytes::copy_from_slice(req.view.body);
    let stream = futures_util::stream::once(async move { Ok::<_, std::convert::Infallible>(body) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let parse = async move {
        let mut fields = Vec::new();
        while fields.len() < MAX_FORM_PARTS {
            let Ok(Some(field)) = multipart.next_field().await else { break };
            let name = field.name().unwrap_or_default().to_owned();
            let Ok(bytes) = field.bytes().await else { break };
            fields.push((name, String::from_utf8_lossy(&bytes).into_owned()));
        }
        fields
    };
    parse.now_or_never().unwrap_or_default()
}

/// The operation name and variables of a GraphQL request: a POST with a JSON body (`query`, `operationName`,
/// `variables`), or a GET with the same as query parameters (`variables` as JSON text). None if it is neither.
fn graphql_request(req: &RequestData<'_>) -> Option<(Option<String>, Option<serde_json::Value>)> {
    if req.view.method == http::Method::GET {
        let q = req.query();
        let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let query = get("query")?;
        let name = get("operationName").filter(|n| !n.is_empty()).map(str::to_owned).or_else(|| operation_name(query));
        let vars = get("variables").and_then(|v| serde_json::from_str(v).ok());
        return Some((name, vars));
    }
    let body = req.json()?.as_object()?;
    let query = body.get("query")?.as_str()?;
    let name = body
        .get("operationName")
        .and_then(|n| n.as_str())
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .or_else(|| operation_name(query));
    Some((name, body.get("variables").cloned()))
}

/// The name of the only operation of a GraphQL document (`query GetUser($id: ID) { ... }`), found by a scan of its
/// top-level tokens: strings, block strings and comments are skipped and braces counted, in one pass over the text
/// (which `max_body` bounds). None for an anonymous operation, or when the document has several (the spec then
/// requires `operationName`). A full parser (apollo-parser) would build a syntax tree per request for one name.
pub fn operation_name(doc: &str) -> Option<String> {
    let b = doc.as_bytes();
    let (mut i, mut depth) = (0usize, 0usize);
    let mut names = Vec::new();
    let mut expect_name = false;
    while i < b.len() {
        let c = b[i];
        match c {
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'"' if b[i..].starts_with(b"\"\"\"") => {
                i += 3;
                while i < b.len() && !b[i..].starts_with(b"\"\"\"") {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 3;
                continue;
            }
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' && b[i] != b'\n' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' | b'(' | b'[' => {
                depth += 1;
                expect_name = false;
            }
            b'}' | b')' | b']' => depth = depth.saturating_sub(1),
            c if c == b'_' || c.is_ascii_alphabetic() => {
                let start = i;
                while i < b.len() && (b[i] == b'_' || b[i].is_ascii_alphanumeric()) {
                    i += 1;
                }
                let word = &doc[start..i];
                if depth == 0 {
                    if expect_name {
                        names.push(Some(word.to_owned()));
                        expect_name = false;
                    } else if matches!(word, "query" | "mutation" | "subscription") {
                        expect_name = true;
                    }
                }
                continue;
            }
            _ => {}
        }
        // `query {` or `query(`: an anonymous operation.
        if expect_name && matches!(c, b'{' | b'(' | b'@') && depth <= 1 {
            names.push(None);
            expect_name = false;
        }
        i += 1;
    }
    match names.as_slice() {
        [one] => one.clone(),
        _ => None,
    }
}

impl MatchConfig {
    /// Whether every condition holds for the request.
    pub fn holds(&self, req: &RequestData<'_>) -> bool {
        // The draw comes last, so that only requests that meet every other condition draw (a share of those).
        self.first_failed(req).is_none() && self.chance.as_ref().is_none_or(|c| c.draw())
    }

    /// The first condition that does not hold, if any.
    pub fn first_failed(&self, req: &RequestData<'_>) -> Option<Failed> {
        let mut first = None;
        self.each_failed(req, &mut |failed| {
            first = Some(failed);
            false
        });
        first
    }

    /// Calls `on_failed` with each condition that does not hold, in file order, until it returns false.
    fn each_failed(&self, req: &RequestData<'_>, on_failed: &mut dyn FnMut(Failed) -> bool) {
        if let Some(re) = &self.path_regex
            && !re.is_match(req.view.uri.path())
            && !on_failed(Failed::PathRegex)
        {
            return;
        }
        for (i, (name, cond)) in self.query.iter().enumerate() {
            if !req.query().iter().any(|(k, v)| k == name && cond.holds(v)) && !on_failed(Failed::Query(i)) {
                return;
            }
        }
        for (i, (name, cond)) in self.headers.iter().enumerate() {
            if !req.view.headers.get_all(name).iter().any(|v| v.to_str().is_ok_and(|v| cond.holds(v)))
                && !on_failed(Failed::Header(i))
            {
                return;
            }
        }
        for (i, name) in self.headers_absent.iter().enumerate() {
            if req.view.headers.contains_key(name) && !on_failed(Failed::HeaderPresent(i)) {
                return;
            }
        }
        for (i, (name, cond)) in self.cookies.iter().enumerate() {
            if !cookie_values(req, name).any(|v| cond.holds(v)) && !on_failed(Failed::Cookie(i)) {
                return;
            }
        }
        if let Some(needle) = &self.body_contains
            && memchr::memmem::find(req.view.body, needle.as_bytes()).is_none()
            && !on_failed(Failed::BodyContains)
        {
            return;
        }
        if let Some(re) = &self.body_regex
            && !re.is_match(&req.body_text())
            && !on_failed(Failed::BodyRegex)
        {
            return;
        }
        for (i, (name, cond)) in self.form.iter().enumerate() {
            if !form_values(req, name).iter().any(|v| cond.holds(v)) && !on_failed(Failed::Form(i)) {
                return;
            }
        }
        if let Some(want) = &self.json
            && !req.json().is_some_and(|got| json_contains(got, want))
            && !on_failed(Failed::Json)
        {
            return;
        }
        for (i, (path, _, want)) in self.jsonpath.iter().enumerate() {
            let holds = req.json().is_some_and(|got| path.query(got).all().into_iter().any(|n| json_contains(n, want)));
            if !holds && !on_failed(Failed::JsonPath(i)) {
                return;
            }
        }
        if let Some(g) = &self.graphql
            && !graphql_holds(g, req)
            && !on_failed(Failed::Graphql)
        {
            return;
        }
        if let Some(not) = &self.not
            && not.first_failed(req).is_none()
        {
            on_failed(Failed::Not);
        }
    }

    /// Why the request does not match, in words, e.g. "query `page` is `3`, the route wants `2`": every condition
    /// that fails, joined by `; `, for the near-miss 404 that any client reads. A header condition is named but
    /// neither its value nor the request's is shown: a header condition is often a secret (`authorization = "Bearer
    /// ..."`). [`MatchConfig::explain_all`] says it.
    pub fn explain(&self, req: &RequestData<'_>) -> Option<String> {
        self.explain_with(req, false)
    }

    /// Like [`MatchConfig::explain`], with the value a header condition wants: for the server's own log.
    pub fn explain_all(&self, req: &RequestData<'_>) -> Option<String> {
        self.explain_with(req, true)
    }

    fn explain_with(&self, req: &RequestData<'_>, reveal: bool) -> Option<String> {
        let mut failed = Vec::new();
        self.each_failed(req, &mut |f| {
            failed.push(f);
            true
        });
        // No second draw here: when every other condition holds, the draw is what failed.
        if failed.is_empty() && self.chance.is_some() {
            failed.push(Failed::Chance);
        }
        let words: Vec<String> = failed.into_iter().map(|f| self.describe_failed(req, f, reveal)).collect();
        (!words.is_empty()).then(|| words.join("; "))
    }

    fn describe_failed(&self, req: &RequestData<'_>, failed: Failed, reveal: bool) -> String {
        match failed {
            Failed::PathRegex => {
                let re = self.path_regex.as_ref().map_or("", |r| r.as_str());
                format!("the path does not match /{re}/")
            }
            Failed::Query(i) => {
                let (name, cond) = &self.query[i];
                let got: Vec<String> =
                    req.query().iter().filter(|(k, _)| k == name).map(|(_, v)| format!("`{v}`")).collect();
                if got.is_empty() {
                    format!("query parameter `{name}` is missing, the route wants {}", cond.describe())
                } else {
                    format!("query parameter `{name}` is {}, the route wants {}", got.join(" and "), cond.describe())
                }
            }
            Failed::Header(i) if !reveal => {
                let (name, _) = &self.headers[i];
                if req.view.headers.contains_key(name) {
                    format!(
                        "header `{name}` does not have the value the route wants \
                         (the server's log says which at debug level: --log-level debug)"
                    )
                } else {
                    format!("header `{name}` is missing, the route wants one")
                }
            }
            Failed::Header(i) => {
                let (name, cond) = &self.headers[i];
                let got: Vec<String> = req
                    .view
                    .headers
                    .get_all(name)
                    .iter()
                    .map(|v| format!("`{}`", String::from_utf8_lossy(v.as_bytes())))
                    .collect();
                if got.is_empty() {
                    format!("header `{name}` is missing, the route wants {}", cond.describe())
                } else {
                    format!("header `{name}` is {}, the route wants {}", got.join(" and "), cond.describe())
                }
            }
            Failed::BodyContains => {
                format!("the body does not contain `{}`", self.body_contains.as_deref().unwrap_or_default())
            }
            Failed::BodyRegex => {
                format!("the body does not match /{}/", self.body_regex.as_ref().map_or("", |r| r.as_str()))
            }
            Failed::JsonPath(i) => {
                let (path, text, want) = &self.jsonpath[i];
                match req.json() {
                    None => format!("the route wants a JSON body with `{text}`, the request body is not JSON"),
                    Some(got) => {
                        let nodes = path.query(got).all();
                        if nodes.is_empty() {
                            format!("the JSON body has no `{text}`, the route wants {}", short(want))
                        } else {
                            let got: Vec<String> = nodes.iter().take(3).map(|n| short(n)).collect();
                            format!("`{text}` is {}, the route wants {}", got.join(" and "), short(want))
                        }
                    }
                }
            }
            Failed::Chance => {
                let p = self.chance.as_ref().map_or(0.0, |c| c.p);
                format!("the route answers by chance ({}% of requests) and this request was not drawn", p * 100.0)
            }
            Failed::Not => {
                let what = self.not.as_ref().map(|n| n.names()).unwrap_or_default();
                format!("the request meets the route's `not` conditions ({what}), which the route excludes")
            }
            Failed::Graphql => {
                let Some(g) = &self.graphql else { return String::new() };
                match graphql_request(req) {
                    None => "the route wants a GraphQL request (a POST with a JSON body holding `query`, or a GET \
                             with a `query` parameter), the request is not one"
                        .into(),
                    Some((name, vars)) => {
                        if let Some(want) = &g.operation
                            && name.as_deref() != Some(want.as_str())
                        {
                            return match name {
                                Some(n) => format!("the GraphQL operation is `{n}`, the route wants `{want}`"),
                                None => format!(
                                    "the GraphQL request names no operation (no `operationName` and no single named \
                                     operation in `query`), the route wants `{want}`"
                                ),
                            };
                        }
                        let want = g.variables.as_ref().map_or_else(String::new, short);
                        match vars {
                            None => format!("the GraphQL request has no variables, the route wants {want}"),
                            Some(got) => format!("the GraphQL variables are {}, the route wants {want}", short(&got)),
                        }
                    }
                }
            }
            Failed::HeaderPresent(i) => {
                format!("header `{}` is present, the route wants it absent", self.headers_absent[i])
            }
            // Cookie values are often secrets (a session): named, not shown, unless for the server's log.
            Failed::Cookie(i) => {
                let (name, cond) = &self.cookies[i];
                let got: Vec<String> = cookie_values(req, name).map(|v| format!("`{v}`")).collect();
                match (got.is_empty(), reveal) {
                    (true, _) => format!("cookie `{name}` is missing, the route wants one"),
                    (false, false) => format!(
                        "cookie `{name}` does not have the value the route wants \
                         (the server's log says which at debug level: --log-level debug)"
                    ),
                    (false, true) => {
                        format!("cookie `{name}` is {}, the route wants {}", got.join(" and "), cond.describe())
                    }
                }
            }
            Failed::Form(i) => {
                let (name, cond) = &self.form[i];
                if !is_form(req) {
                    return format!(
                        "the route wants a form field `{name}`, the request body is not \
                         application/x-www-form-urlencoded or multipart/form-data"
                    );
                }
                let got: Vec<String> = form_values(req, name).iter().map(|v| format!("`{v}`")).collect();
                if got.is_empty() {
                    format!("form field `{name}` is missing, the route wants {}", cond.describe())
                } else {
                    format!("form field `{name}` is {}, the route wants {}", got.join(" and "), cond.describe())
                }
            }
            Failed::Json => match (req.json(), &self.json) {
                (None, _) if req.view.body.is_empty() => "the route wants a JSON body, the request has no body".into(),
                (None, _) => "the route wants a JSON body, the request body is not JSON".into(),
                (Some(got), Some(want)) => {
                    let mut at = String::new();
                    json_difference(got, want, &mut at);
                    at
                }
                (Some(_), None) => String::new(),
            },
        }
    }
}

/// Whether a request meets a `graphql` condition.
fn graphql_holds(g: &crate::config::GraphqlMatch, req: &RequestData<'_>) -> bool {
    let Some((name, vars)) = graphql_request(req) else { return false };
    g.operation.as_ref().is_none_or(|want| name.as_deref() == Some(want.as_str()))
        && g.variables.as_ref().is_none_or(|want| vars.as_ref().is_some_and(|got| json_contains(got, want)))
}

impl MatchConfig {
    /// The kinds of condition the table holds, named without their values (which may be secrets), e.g.
    /// "query `debug`, header `x-test`".
    pub fn names(&self) -> String {
        let mut out: Vec<String> = Vec::new();
        if self.path_regex.is_some() {
            out.push("`path_regex`".into());
        }
        out.extend(self.query.iter().map(|(n, _)| format!("query `{n}`")));
        out.extend(self.headers.iter().map(|(n, _)| format!("header `{n}`")));
        out.extend(self.headers_absent.iter().map(|n| format!("`headers_absent` `{n}`")));
        out.extend(self.cookies.iter().map(|(n, _)| format!("cookie `{n}`")));
        if self.body_contains.is_some() {
            out.push("`body_contains`".into());
        }
        if self.body_regex.is_some() {
            out.push("`body_regex`".into());
        }
        out.extend(self.form.iter().map(|(n, _)| format!("form field `{n}`")));
        if self.json.is_some() {
            out.push("`json`".into());
        }
        out.extend(self.jsonpath.iter().map(|(_, t, _)| format!("jsonpath `{t}`")));
        if self.graphql.is_some() {
            out.push("`graphql`".into());
        }
        out.join(", ")
    }
}

/// Whether `got` contains `want`: an object contains every key of `want` with a value that contains `want`'s (other
/// keys may be there too, at any depth); an array has the same length and contains `want`'s element at each place;
/// numbers are equal by value (2 equals 2.0); other values are equal.
pub fn json_contains(got: &serde_json::Value, want: &serde_json::Value) -> bool {
    use serde_json::Value as J;
    match (got, want) {
        (J::Object(g), J::Object(w)) => w.iter().all(|(k, wv)| g.get(k).is_some_and(|gv| json_contains(gv, wv))),
        (J::Array(g), J::Array(w)) => g.len() == w.len() && g.iter().zip(w).all(|(gv, wv)| json_contains(gv, wv)),
        (J::Number(g), J::Number(w)) => match (g.as_i64(), w.as_i64(), g.as_u64(), w.as_u64()) {
            (Some(a), Some(b), _, _) => a == b,
            (_, _, Some(a), Some(b)) => a == b,
            _ => g.as_f64() == w.as_f64(),
        },
        _ => got == want,
    }
}

/// Writes where `got` first fails to contain `want`, as "the JSON body has `user.id` = 3, the route wants 4".
fn json_difference(got: &serde_json::Value, want: &serde_json::Value, out: &mut String) {
    fn walk(got: &serde_json::Value, want: &serde_json::Value, path: &mut String, out: &mut String) -> bool {
        use serde_json::Value as J;
        match (got, want) {
            (J::Object(g), J::Object(w)) => {
                for (k, wv) in w {
                    let len = path.len();
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(k);
                    let found = match g.get(k) {
                        None => {
                            let _ = write!(out, "the JSON body has no `{path}`, the route wants {}", short(wv));
                            true
                        }
                        Some(gv) => walk(gv, wv, path, out),
                    };
                    path.truncate(len);
                    if found {
                        return true;
                    }
                }
                false
            }
            (J::Array(g), J::Array(w)) if g.len() == w.len() => {
                for (i, (gv, wv)) in g.iter().zip(w).enumerate() {
                    let len = path.len();
                    let _ = write!(path, "[{i}]");
                    let found = walk(gv, wv, path, out);
                    path.truncate(len);
                    if found {
                        return true;
                    }
                }
                false
            }
            _ if json_contains(got, want) => false,
            _ => {
                let place = if path.is_empty() { "the JSON body is".to_owned() } else { format!("`{path}` is") };
                let _ = write!(out, "{place} {}, the route wants {}", short(got), short(want));
                true
            }
        }
    }
    walk(got, want, &mut String::new(), out);
}

/// A JSON value cut to a readable length for messages.
fn short(v: &serde_json::Value) -> String {
    let mut s = v.to_string();
    if s.len() > 60 {
        let mut end = 57;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push_str("...");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_subset_by_key_with_equal_arrays_and_numbers_by_value() {
        let got = json!({"user": {"id": 7, "name": "Ada", "roles": ["a", "b"]}, "extra": true});
        assert!(json_contains(&got, &json!({"user": {"id": 7}})));
        assert!(json_contains(&got, &json!({"user": {"id": 7.0}})));
        assert!(json_contains(&got, &json!({"user": {"roles": ["a", "b"]}})));
        assert!(!json_contains(&got, &json!({"user": {"roles": ["a"]}})));
        assert!(!json_contains(&got, &json!({"user": {"id": "7"}})));
        assert!(!json_contains(&got, &json!({"missing": null})));
        assert!(json_contains(&json!([{"a": 1, "b": 2}]), &json!([{"a": 1}])));
    }

    #[test]
    fn json_difference_names_the_place() {
        let mut out = String::new();
        json_difference(&json!({"user": {"id": 3}}), &json!({"user": {"id": 4}}), &mut out);
        assert_eq!(out, "`user.id` is 3, the route wants 4");
        out.clear();
        json_difference(&json!({"a": [1, 2]}), &json!({"a": [1, 3]}), &mut out);
        assert_eq!(out, "`a[1]` is 2, the route wants 3");
        out.clear();
        json_difference(&json!({}), &json!({"k": "v"}), &mut out);
        assert_eq!(out, "the JSON body has no `k`, the route wants \"v\"");
    }

    #[test]
    fn graphql_operation_names_come_from_the_only_operation() {
        assert_eq!(operation_name("query GetUser($id: ID!) { user(id: $id) { id } }").as_deref(), Some("GetUser"));
        assert_eq!(
            operation_name("mutation AddUser { add { id } } fragment F on User { id }").as_deref(),
            Some("AddUser")
        );
        assert_eq!(operation_name("  subscription OnEvent { e }").as_deref(), Some("OnEvent"));
        // Names in comments, strings and selections do not count.
        let doc = "# query Fake\nquery Real { a(s: \"query X\", b: \"\"\"mutation Y\"\"\") { query } }";
        assert_eq!(operation_name(doc).as_deref(), Some("Real"));
        // Anonymous, shorthand, several operations, and text that is not GraphQL: no name.
        assert_eq!(operation_name("query { a }"), None);
        assert_eq!(operation_name("{ a }"), None);
        assert_eq!(operation_name("query A { a } query B { b }"), None);
        assert_eq!(operation_name("\"unterminated"), None);
        assert_eq!(operation_name(&"{".repeat(100_000)), None);
    }

    #[test]
    fn regex_limits_refuse_huge_automata() {
        assert!(crate::config::compile_regex("^a+$").is_ok());
        assert!(crate::config::compile_regex("(((a{100}){100}){100})").is_err());
        assert!(crate::config::compile_regex(&"(".repeat(60)).is_err());
    }
}
