//! Checked settings whose behaviour lives in the route layer: CORS, `match` conditions and faults. The data is
//! defined here, with the route file, so that loading needs nothing above it; `crate::route` gives them behaviour.

use std::fmt;
use std::str::FromStr;

use http::{HeaderName, Method};
use regex::{Regex, RegexBuilder};

/// The checked `cors` setting.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CorsConfig {
    /// Allowed origins (`https://app.example`); none means any origin.
    pub origins: Option<Vec<String>>,
    /// Methods a preflight allows; none means the methods the path answers.
    pub methods: Option<Vec<Method>>,
    /// Request headers a preflight allows; none means whatever the browser asks for.
    pub headers: Option<Vec<HeaderName>>,
    /// Response headers the browser may show to the page.
    pub expose_headers: Vec<HeaderName>,
    /// Whether credentialed requests (cookies) are allowed; the origin is then echoed instead of `*`.
    pub credentials: bool,
    /// How long, in seconds, a browser may cache a preflight answer.
    pub max_age: Option<u64>,
}

/// The most memory one compiled regex may take (the `regex` crate's own guard against huge automata).
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// The deepest nesting of groups and repetitions a regex may have.
pub const REGEX_NEST_LIMIT: u32 = 50;

/// Compiles a route file regex with hotroute's limits. The `regex` crate runs in time linear in the input.
pub fn compile_regex(pattern: &str) -> Result<Regex, regex::Error> {
    RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .nest_limit(REGEX_NEST_LIMIT)
        .build()
}

/// How one value (a query parameter, a header) must look.
#[derive(Debug, Clone)]
pub enum Condition {
    /// Equal to this text.
    Equals(String),
    /// Contains a match of this regex (anchor it with `^...$` to match the whole value).
    Regex(Regex),
}

/// The checked `[route.match]` table of one route.
#[derive(Debug, Clone, Default)]
pub struct MatchConfig {
    /// Query parameters (decoded) and what one of their values must be.
    pub query: Vec<(String, Condition)>,
    /// Headers and what one of their values must be.
    pub headers: Vec<(HeaderName, Condition)>,
    /// Text the body must contain.
    pub body_contains: Option<String>,
    /// A JSON value the body must contain (see `crate::route::matching::json_contains`).
    pub json: Option<serde_json::Value>,
    /// A regex the URL path must match.
    pub path_regex: Option<Regex>,
    /// A regex the body (as text) must match.
    pub body_regex: Option<Regex>,
    /// Headers the request must not have.
    pub headers_absent: Vec<HeaderName>,
    /// Cookies (from the `Cookie` header) and what their value must be.
    pub cookies: Vec<(String, Condition)>,
    /// Fields of a `application/x-www-form-urlencoded` body (decoded) and what one of their values must be.
    pub form: Vec<(String, Condition)>,
    /// JSONPath expressions (RFC 9535) into the JSON body, and a value one of the nodes each selects must equal.
    pub jsonpath: Vec<(serde_json_path::JsonPath, String, serde_json::Value)>,
    /// `chance`: the route answers this share of the requests that meet its other conditions.
    pub chance: Option<Chance>,
    /// `not`: conditions that must not all hold (no `chance` and no `not` inside).
    pub not: Option<Box<MatchConfig>>,
    /// `graphql`: the operation and variables of a GraphQL request.
    pub graphql: Option<GraphqlMatch>,
}

/// The checked `graphql = { ... }` condition.
#[derive(Debug, Clone, Default)]
pub struct GraphqlMatch {
    /// The operation name the request must have.
    pub operation: Option<String>,
    /// A JSON object the request's variables must contain (see `crate::route::matching::json_contains`).
    pub variables: Option<serde_json::Value>,
}

/// A random draw per request: `p` of the draws succeed. With `[server] seed` the n-th draw of a route is the same on
/// every run, so a flaky-service test is repeatable.
#[derive(Debug, Clone)]
pub struct Chance {
    /// The share of requests that pass, from 0 to 1.
    pub p: f64,
    /// The seed of the draws (set when the router is built: `[server] seed`, or random).
    pub seed: u64,
    /// How many draws the route has made.
    pub draws: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Chance {
    /// Draws once: whether this request passes.
    pub fn draw(&self) -> bool {
        let n = self.draws.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // splitmix64 of (seed, n): well spread, cheap, and the same for the same seed and position.
        let mut z = self.seed.wrapping_add(n.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        ((z >> 11) as f64 / (1u64 << 53) as f64) < self.p
    }
}

impl MatchConfig {
    /// Whether there are no conditions at all (such a table is refused at load time).
    pub fn is_empty(&self) -> bool {
        self.query.is_empty()
            && self.headers.is_empty()
            && self.body_contains.is_none()
            && self.json.is_none()
            && self.path_regex.is_none()
            && self.body_regex.is_none()
            && self.headers_absent.is_empty()
            && self.cookies.is_empty()
            && self.form.is_empty()
            && self.jsonpath.is_empty()
            && self.chance.is_none()
            && self.not.is_none()
            && self.graphql.is_none()
    }
}

/// What a faulty route does to the connection instead of answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// Abort the connection with a TCP reset (RST): the client sees "connection reset by peer".
    Reset,
    /// Close the connection without an answer: the client sees the connection end before a response.
    Close,
    /// Send bytes that are not HTTP, then close: the client sees a response it cannot parse.
    Garbage,
}

impl Fault {
    /// The name used in the route file.
    pub fn name(self) -> &'static str {
        match self {
            Fault::Reset => "reset",
            Fault::Close => "close",
            Fault::Garbage => "garbage",
        }
    }

    pub(crate) fn code(self) -> u8 {
        match self {
            Fault::Reset => 1,
            Fault::Close => 2,
            Fault::Garbage => 3,
        }
    }

    pub(crate) fn from_code(code: u8) -> Option<Fault> {
        match code {
            1 => Some(Fault::Reset),
            2 => Some(Fault::Close),
            3 => Some(Fault::Garbage),
            _ => None,
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Fault {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "reset" => Ok(Fault::Reset),
            "close" => Ok(Fault::Close),
            "garbage" => Ok(Fault::Garbage),
            _ => Err(()),
        }
    }
}
