//! Expectations on the requests a server received, for [`crate::MockServer::verify`].
//!
//! An [`Expect`] says which requests it is about (method, path, query, headers, body, the route that answered) and how
//! many of them there should be (default: at least one). Checking it against the journal either passes or gives a
//! [`VerifyError`] whose message lists what was received and why each request did not match, so that a failing test
//! says what the client really sent.

use std::fmt;

use serde_json::Value;

use crate::observe::journal::RecordedRequest;
use crate::request::query_pairs;

/// How many requests of the journal a failure message lists at most (the latest ones).
pub const MAX_LISTED: usize = 50;

/// How much of each body a failure message shows, in characters.
const BODY_SHOWN: usize = 300;

/// A description of requests, and how many of them are expected.
///
/// ```
/// use hotroute::Expect;
/// let e = Expect::post("/users").header("content-type", "application/json").json(serde_json::json!({"name": "Ada"})).once();
/// assert_eq!(e.to_string(), "POST /users with header content-type: application/json, JSON body {\"name\":\"Ada\"}, exactly once");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Expect {
    method: Option<String>,
    path: Option<String>,
    query: Option<String>,
    query_params: Vec<(String, String)>,
    headers: Vec<(String, Option<String>)>,
    body: Option<BodyMatch>,
    route: Option<RouteMatch>,
    times: Times,
}

#[derive(Debug, Clone, PartialEq)]
enum BodyMatch {
    Exact(Vec<u8>),
    Contains(String),
    Json(Value),
}

#[derive(Debug, Clone, PartialEq)]
enum RouteMatch {
    /// Answered by the route with this path pattern.
    Pattern(String),
    /// Answered by no route (404 or 405).
    None,
}

/// How many matching requests are expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Times {
    /// Exactly this many.
    Exactly(usize),
    /// This many or more.
    AtLeast(usize),
    /// This many or fewer.
    AtMost(usize),
    /// From the first to the second, both included.
    Between(usize, usize),
}

impl Times {
    /// Whether `n` requests meet the expectation.
    pub fn allows(self, n: usize) -> bool {
        match self {
            Times::Exactly(k) => n == k,
            Times::AtLeast(k) => n >= k,
            Times::AtMost(k) => n <= k,
            Times::Between(lo, hi) => (lo..=hi).contains(&n),
        }
    }
}

impl fmt::Display for Times {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Times::Exactly(0) | Times::AtMost(0) => f.write_str("never"),
            Times::Exactly(k) => write!(f, "exactly {}", times(k)),
            Times::AtLeast(k) => write!(f, "at least {}", times(k)),
            Times::AtMost(k) => write!(f, "at most {}", times(k)),
            Times::Between(lo, hi) => write!(f, "between {lo} and {}", times(hi)),
        }
    }
}

fn times(n: usize) -> String {
    match n {
        1 => "once".to_owned(),
        n => format!("{n} times"),
    }
}

fn requests(n: usize) -> String {
    match n {
        1 => "1 request".to_owned(),
        n => format!("{n} requests"),
    }
}

impl Expect {
    fn new(method: Option<&str>, path: Option<&str>) -> Expect {
        let (path, query) = match path.map(|p| p.split_once('?').ok_or(p)) {
            Some(Ok((p, q))) => (Some(p.to_owned()), Some(q.to_owned())),
            Some(Err(p)) => (Some(p.to_owned()), None),
            None => (None, None),
        };
        Expect {
            method: method.map(str::to_ascii_uppercase),
            path,
            query,
            query_params: Vec::new(),
            headers: Vec::new(),
            body: None,
            route: None,
            times: Times::AtLeast(1),
        }
    }

    /// Requests with `method` (any case) to `path`. A path with a `?` also asks for exactly that query string.
    pub fn method(method: &str, path: &str) -> Expect {
        Expect::new(Some(method), Some(path))
    }

    /// `GET` requests to `path` (a `HEAD` is not a `GET` here).
    pub fn get(path: &str) -> Expect {
        Expect::method("GET", path)
    }

    /// `POST` requests to `path`.
    pub fn post(path: &str) -> Expect {
        Expect::method("POST", path)
    }

    /// `PUT` requests to `path`.
    pub fn put(path: &str) -> Expect {
        Expect::method("PUT", path)
    }

    /// `PATCH` requests to `path`.
    pub fn patch(path: &str) -> Expect {
        Expect::method("PATCH", path)
    }

    /// `DELETE` requests to `path`.
    pub fn delete(path: &str) -> Expect {
        Expect::method("DELETE", path)
    }

    /// `HEAD` requests to `path`.
    pub fn head(path: &str) -> Expect {
        Expect::method("HEAD", path)
    }

    /// Requests with any method to `path`.
    pub fn path(path: &str) -> Expect {
        Expect::new(None, Some(path))
    }

    /// Every request; narrow it with the other methods, e.g. `Expect::any().unmatched().never()`.
    pub fn any() -> Expect {
        Expect::new(None, None)
    }

    /// Only requests whose query has parameter `name` equal to `value` (decoded, in any order among the others).
    pub fn query_param(mut self, name: &str, value: &str) -> Expect {
        self.query_params.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Only requests with header `name` (any case) equal to `value` (in any of its values).
    ///
    /// The journal stores the values of the headers in `[server] journal_redact` as `<redacted>` (by default
    /// `authorization`, `proxy-authorization`, `cookie`, `set-cookie`, `x-api-key`), so those cannot be matched by
    /// value: use [`Expect::header_present`], or put `journal_redact = []` in the mock's `[server]` table.
    pub fn header(mut self, name: &str, value: &str) -> Expect {
        self.headers.push((name.to_ascii_lowercase(), Some(value.to_owned())));
        self
    }

    /// Only requests that have header `name`, whatever its value.
    pub fn header_present(mut self, name: &str) -> Expect {
        self.headers.push((name.to_ascii_lowercase(), None));
        self
    }

    /// Only requests whose body is exactly `body`.
    pub fn body(mut self, body: impl AsRef<[u8]>) -> Expect {
        self.body = Some(BodyMatch::Exact(body.as_ref().to_vec()));
        self
    }

    /// Only requests whose body contains `text`.
    pub fn body_contains(mut self, text: &str) -> Expect {
        self.body = Some(BodyMatch::Contains(text.to_owned()));
        self
    }

    /// Only requests whose body is JSON equal to `value` (key order and spacing do not matter).
    pub fn json(mut self, value: Value) -> Expect {
        self.body = Some(BodyMatch::Json(value));
        self
    }

    /// Only requests answered by the route whose path pattern is `pattern`, e.g. `/users/{id}`.
    pub fn route(mut self, pattern: &str) -> Expect {
        self.route = Some(RouteMatch::Pattern(pattern.to_owned()));
        self
    }

    /// Only requests no route answered (a 404 or 405 from hotroute).
    pub fn unmatched(mut self) -> Expect {
        self.route = Some(RouteMatch::None);
        self
    }

    /// Expects exactly `n` matching requests.
    pub fn times(mut self, n: usize) -> Expect {
        self.times = Times::Exactly(n);
        self
    }

    /// Expects exactly one matching request.
    pub fn once(self) -> Expect {
        self.times(1)
    }

    /// Expects no matching request.
    pub fn never(self) -> Expect {
        self.times(0)
    }

    /// Expects `n` or more matching requests.
    pub fn at_least(mut self, n: usize) -> Expect {
        self.times = Times::AtLeast(n);
        self
    }

    /// Expects `n` or fewer matching requests.
    pub fn at_most(mut self, n: usize) -> Expect {
        self.times = Times::AtMost(n);
        self
    }

    /// Expects from `min` to `max` matching requests, both included.
    pub fn between(mut self, min: usize, max: usize) -> Expect {
        self.times = Times::Between(min, max);
        self
    }

    /// How many matching requests are expected.
    pub fn expected_times(&self) -> Times {
        self.times
    }

    /// Whether `request` is one of the requests this expectation is about.
    pub fn matches(&self, request: &RecordedRequest) -> bool {
        self.mismatch(request).is_none()
    }

    /// Why `request` is not one of the requests this expectation is about, or `None` if it is.
    pub fn mismatch(&self, request: &RecordedRequest) -> Option<String> {
        if let Some(m) = &self.method
            && request.method().as_str() != m
        {
            return Some(format!("method is {}, not {m}", request.method()));
        }
        if let Some(p) = &self.path
            && request.path() != p
        {
            return Some(format!("path is {}, not {p}", request.path()));
        }
        if let Some(q) = &self.query
            && request.query().unwrap_or_default() != q
        {
            return Some(format!("query is {:?}, not {q:?}", request.query().unwrap_or_default()));
        }
        for (name, value) in &self.query_params {
            let found: Vec<String> =
                query_pairs(request.query().unwrap_or_default()).filter(|(k, _)| k == name).map(|(_, v)| v).collect();
            if !found.contains(value) {
                return Some(match found.first() {
                    None => format!("query parameter {name} is missing"),
                    Some(v) => format!("query parameter {name} is {v:?}, not {value:?}"),
                });
            }
        }
        for (name, value) in &self.headers {
            let found: Vec<&[u8]> = request.header_pairs().filter(|(n, _)| n == name).map(|(_, v)| v).collect();
            match value {
                _ if found.is_empty() => return Some(format!("header {name} is missing")),
                Some(v) if !found.contains(&v.as_bytes()) => {
                    let got = String::from_utf8_lossy(found[0]);
                    return Some(format!("header {name} is {got:?}, not {v:?}"));
                }
                _ => {}
            }
        }
        match &self.body {
            Some(BodyMatch::Exact(b)) if request.body() != b.as_slice() => {
                return Some("body differs".to_owned());
            }
            Some(BodyMatch::Contains(t)) if !request.body_text().contains(t.as_str()) => {
                return Some(format!("body does not contain {t:?}"));
            }
            Some(BodyMatch::Json(v)) => match request.body_json::<Value>() {
                Err(e) => return Some(format!("body is not JSON: {e}")),
                Ok(got) if &got != v => return Some("JSON body differs".to_owned()),
                Ok(_) => {}
            },
            _ => {}
        }
        match (&self.route, request.route()) {
            (Some(RouteMatch::Pattern(p)), Some(r)) if &r.path != p => {
                Some(format!("answered by route {}, not {p}", r.path))
            }
            (Some(RouteMatch::Pattern(p)), None) => Some(format!("no route answered it, not {p}")),
            (Some(RouteMatch::None), Some(r)) => Some(format!("answered by route {}", r.path)),
            _ => None,
        }
    }

    /// Checks the expectation against `received` (oldest first). `dropped` is how many older requests the journal
    /// no longer holds, mentioned in the failure message. Returns the number of matching requests.
    pub fn check(&self, received: &[RecordedRequest], dropped: u64) -> Result<usize, VerifyError> {
        let n = received.iter().filter(|r| self.matches(r)).count();
        if self.times.allows(n) {
            return Ok(n);
        }
        let got = if n == 0 { "it was never received".to_owned() } else { format!("it was received {}", times(n)) };
        let want = match self.times {
            Times::Exactly(0) | Times::AtMost(0) => format!("expected {} never to be received", self.what()),
            t => format!("expected {} to be received {t}", self.what()),
        };
        let mut msg = format!("{want}, but {got}.\n");
        if received.is_empty() {
            msg.push_str("No requests were received.\n");
        } else {
            msg.push_str(&format!("Received {} (oldest first):\n", requests(received.len())));
            let skip = received.len().saturating_sub(MAX_LISTED);
            if skip > 0 {
                msg.push_str(&format!("  ... {} not shown\n", requests(skip)));
            }
            for r in &received[skip..] {
                list_request(&mut msg, r, self.mismatch(r));
            }
        }
        if dropped > 0 {
            msg.push_str(&format!(
                "{} older were dropped from the journal, which was full; raise `[server] journal` to keep more.\n",
                requests(dropped as usize)
            ));
        }
        Err(VerifyError { message: msg, matched: n, expected: self.times })
    }

    /// The description of the requests, without the count.
    fn what(&self) -> String {
        let mut s = match (&self.method, &self.path) {
            (Some(m), Some(p)) => format!("{m} {p}"),
            (None, Some(p)) => format!("a request to {p}"),
            (Some(m), None) => format!("a {m} request"),
            (None, None) => "a request".to_owned(),
        };
        if let Some(q) = &self.query {
            s.push('?');
            s.push_str(q);
        }
        let mut parts = Vec::new();
        for (k, v) in &self.query_params {
            parts.push(format!("query parameter {k}={v}"));
        }
        for (k, v) in &self.headers {
            parts.push(match v {
                Some(v) => format!("header {k}: {v}"),
                None => format!("a header {k}"),
            });
        }
        match &self.body {
            Some(BodyMatch::Exact(b)) => parts.push(format!("body {:?}", String::from_utf8_lossy(b))),
            Some(BodyMatch::Contains(t)) => parts.push(format!("a body containing {t:?}")),
            Some(BodyMatch::Json(v)) => parts.push(format!("JSON body {v}")),
            None => {}
        }
        if !parts.is_empty() {
            s.push_str(" with ");
            s.push_str(&parts.join(", "));
        }
        match &self.route {
            Some(RouteMatch::Pattern(p)) => s.push_str(&format!(" answered by route {p}")),
            Some(RouteMatch::None) => s.push_str(" that no route answered"),
            None => {}
        }
        s
    }
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}, {}", self.what(), self.times)
    }
}

fn list_request(msg: &mut String, r: &RecordedRequest, mismatch: Option<String>) {
    msg.push_str(&format!("  {r}\n"));
    match mismatch {
        Some(why) => msg.push_str(&format!("      does not match: {why}\n")),
        None => msg.push_str("      matches\n"),
    }
    for (name, value) in r.header_pairs() {
        msg.push_str(&format!("      {name}: {}\n", String::from_utf8_lossy(value)));
    }
    if r.body_size() > 0 {
        let text = r.body_text();
        let mut shown: String = text.chars().take(BODY_SHOWN).collect();
        if shown.len() < text.len() || r.body_truncated() {
            shown.push_str(&format!("... ({} bytes in all)", r.body_size()));
        }
        msg.push_str(&format!("      body: {shown}\n"));
    }
}

/// A failed expectation: its message lists what the server received.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct VerifyError {
    message: String,
    /// How many requests matched.
    pub matched: usize,
    /// How many were expected.
    pub expected: Times,
}

impl VerifyError {
    /// The full message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_read_as_sentences() {
        assert_eq!(Expect::get("/a").to_string(), "GET /a, at least once");
        assert_eq!(Expect::path("/a?x=1").never().to_string(), "a request to /a?x=1, never");
        assert_eq!(
            Expect::any().unmatched().between(1, 3).to_string(),
            "a request that no route answered, between 1 and 3 times"
        );
        assert_eq!(Expect::method("put", "/a").times(2).to_string(), "PUT /a, exactly 2 times");
        assert_eq!(
            Expect::delete("/a").header_present("x-id").at_most(1).to_string(),
            "DELETE /a with a header x-id, at most once"
        );
    }

    #[test]
    fn times_bounds() {
        assert!(Times::Exactly(2).allows(2) && !Times::Exactly(2).allows(3));
        assert!(Times::AtLeast(1).allows(5) && !Times::AtLeast(1).allows(0));
        assert!(Times::AtMost(1).allows(0) && !Times::AtMost(1).allows(2));
        assert!(Times::Between(1, 2).allows(2) && !Times::Between(1, 2).allows(3));
    }
}
