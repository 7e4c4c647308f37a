//! The route file keys of scripted routes (`match`, `sequence`, `delay`, `fault`, `dir`, templated headers) and
//! of `[server]` (`cors`, `not_found`, `seed`), and the checks that turn them into typed config.

use std::collections::BTreeMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use schemars::JsonSchema;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use toml::Spanned;

use super::{BodyConfig, Checker, Origin, RouteConfig, RouteSpec, ServerSpec, span_of_key, toml_to_json};
use crate::config::CorsConfig;
use crate::config::Fault;
use crate::config::json_template::has_template_syntax;
use crate::config::{Condition, MatchConfig, RepeatSpec, StreamConfig, compile_regex};

/// The longest `delay` accepted; a longer one is most likely a typo.
pub const MAX_DELAY: Duration = Duration::from_secs(3600);

type StringMap = BTreeMap<Spanned<String>, Spanned<String>>;

/// `[route.match]`: conditions that must all hold for the route to answer.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MatchSpec {
    /// Query parameters and the value one of theirs must equal, e.g. `{ page = "2" }`.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub query: StringMap,
    /// Headers (names in any case) and the value one of theirs must equal.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub headers: StringMap,
    /// Text the request body must contain.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub body_contains: Option<Spanned<String>>,
    /// A value the JSON request body must contain: objects by key (more keys are fine), arrays and scalars equal.
    #[serde(default)]
    #[schemars(with = "Option<serde_json::Value>")]
    pub json: Option<Spanned<toml::Value>>,
    /// A regex the URL path must match (`^...$` to match all of it).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub path_regex: Option<Spanned<String>>,
    /// Query parameters and a regex one of their values must match.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub query_regex: StringMap,
    /// Headers and a regex one of their values must match.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub headers_regex: StringMap,
    /// A regex the request body (as text) must match.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub body_regex: Option<Spanned<String>>,
    /// Headers (names in any case) the request must not have, e.g. `["authorization"]`.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub headers_absent: Vec<Spanned<String>>,
    /// Cookies (from the `Cookie` header) and the value each must have, e.g. `{ session = "abc" }`.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub cookies: StringMap,
    /// Fields of an `application/x-www-form-urlencoded` body and the value one of theirs must equal.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub form: StringMap,
    /// JSONPath expressions (RFC 9535) into the JSON body and the value one of the selected nodes must equal, e.g.
    /// `{ "$.items[0].id" = 7 }`.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, serde_json::Value>")]
    pub jsonpath: BTreeMap<Spanned<String>, Spanned<toml::Value>>,
    /// The share of requests (from 0 to 1) the route answers, drawn per request, e.g. `0.1` for a route that fails
    /// one time in ten; repeatable with `[server] seed`.
    #[serde(default)]
    #[schemars(with = "Option<f64>", range(min = 0, max = 1))]
    pub chance: Option<Spanned<f64>>,
    /// Conditions that must not all hold: the route answers a request that fails at least one of them, e.g.
    /// `not = { query = { debug = "1" } }`. Any condition but `chance`, and no `not` inside.
    #[serde(default)]
    #[schemars(with = "Option<Box<MatchSpec>>")]
    pub not: Option<Box<Spanned<MatchSpec>>>,
    /// A GraphQL request (POST with a JSON body, or GET with query parameters): its operation name (`operationName`,
    /// or the name in the query document) and variables it must contain, e.g.
    /// `{ operation = "GetUser", variables = { id = "1" } }`.
    #[serde(default)]
    #[schemars(with = "Option<GraphqlSpec>")]
    pub graphql: Option<Spanned<GraphqlSpec>>,
}

/// `graphql = { ... }` in `[route.match]`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GraphqlSpec {
    /// The operation name, e.g. `"GetUser"`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub operation: Option<Spanned<String>>,
    /// A table the request's variables must contain (objects by key, more keys are fine), e.g. `{ id = "1" }`.
    #[serde(default)]
    #[schemars(with = "Option<BTreeMap<String, serde_json::Value>>")]
    pub variables: Option<Spanned<toml::Value>>,
}

/// One answer of a `sequence`. Unset keys take the route's `status` and `headers`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SequenceItemSpec {
    /// Response status code.
    #[serde(default)]
    #[schemars(with = "Option<u16>", range(min = 200, max = 999))]
    pub status: Option<Spanned<u16>>,
    /// Response headers, added to the route's.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub headers: StringMap,
    /// Text body.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub body: Option<Spanned<String>>,
    /// JSON body.
    #[serde(default)]
    #[schemars(with = "Option<serde_json::Value>")]
    pub json: Option<Spanned<toml::Value>>,
    /// Body file.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub file: Option<Spanned<String>>,
    /// Wait before this answer (instead of the route's `delay`).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub delay: Option<Spanned<String>>,
    /// Break the connection instead of this answer.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub fault: Option<Spanned<String>>,
}

/// `[server] not_found`: the answer when no route matches.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NotFoundSpec {
    /// Response status code (default 404).
    #[serde(default)]
    #[schemars(with = "Option<u16>", range(min = 200, max = 999))]
    pub status: Option<Spanned<u16>>,
    /// Response headers.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub headers: StringMap,
    /// Text body.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub body: Option<Spanned<String>>,
    /// JSON body.
    #[serde(default)]
    #[schemars(with = "Option<serde_json::Value>")]
    pub json: Option<Spanned<toml::Value>>,
    /// Body file.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub file: Option<Spanned<String>>,
    /// Render the body and headers as templates (`{{ url }}`, `{{ method }}`...).
    #[serde(default)]
    pub template: bool,
}

/// `cors = true` or `cors = { origins = [...], ... }`.
#[derive(Debug, JsonSchema)]
#[schemars(untagged)]
pub enum CorsSpec {
    /// `true`: any origin, the path's methods, the headers the browser asks for.
    Enabled(bool),
    /// Chosen origins, methods and headers.
    Table(CorsTableSpec),
}

/// The table form of `cors`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CorsTableSpec {
    /// Allowed origins, e.g. `["http://localhost:5173"]`; default any (`*`).
    #[serde(default)]
    pub origins: Option<Vec<String>>,
    /// Methods a preflight allows; default the methods of the path.
    #[serde(default)]
    pub methods: Option<Vec<String>>,
    /// Request headers a preflight allows; default those the browser asks for.
    #[serde(default)]
    pub headers: Option<Vec<String>>,
    /// Response headers the page may read.
    #[serde(default)]
    pub expose_headers: Vec<String>,
    /// Allow cookies and credentials (the origin is echoed instead of `*`).
    #[serde(default)]
    pub credentials: bool,
    /// Seconds a browser may cache a preflight answer.
    #[serde(default)]
    pub max_age: Option<u64>,
}

impl<'de> Deserialize<'de> for CorsSpec {
    // Hand-written so that a wrong type gets a clear message instead of serde's "did not match any variant".
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CorsSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("`true`, `false`, or a table like { origins = [\"http://localhost:5173\"] }")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(CorsSpec::Enabled(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                CorsTableSpec::deserialize(de::value::MapAccessDeserializer::new(map)).map(CorsSpec::Table)
            }
        }
        d.deserialize_any(V)
    }
}

/// A header whose value is a template.
#[derive(Debug, Clone)]
pub struct HeaderTemplate {
    /// The header.
    pub name: HeaderName,
    /// The template text.
    pub source: String,
    /// Where it is in the route file.
    pub span: Range<usize>,
}

/// One answer: of a sequence, or the not-found answer.
#[derive(Debug, Clone)]
pub struct ReplyConfig {
    /// Response status.
    pub status: StatusCode,
    /// Fixed headers, content-type set.
    pub headers: HeaderMap,
    /// Headers rendered per request.
    pub header_templates: Vec<HeaderTemplate>,
    /// Response body.
    pub body: BodyConfig,
    /// Wait before answering.
    pub delay: Option<Duration>,
    /// Break the connection instead.
    pub fault: Option<Fault>,
}

/// A route's `sequence`.
#[derive(Debug, Clone)]
pub struct SequenceConfig {
    /// The answers, in order.
    pub items: Vec<ReplyConfig>,
    /// Whether to start over after the last (`repeat = "cycle"`) instead of repeating it.
    pub cycle: bool,
}

/// A route's `dir`.
#[derive(Debug, Clone)]
pub struct DirConfig {
    /// The folder, canonical.
    pub root: PathBuf,
    /// The name of the path's catch-all parameter that names the file (none: the folder's `index.html`).
    pub param: Option<String>,
    /// `fallback`: the file, canonical and inside `root`, that answers a path with no file of its own.
    pub fallback: Option<PathBuf>,
}

/// The scripted parts of a route; all empty for a plain route.
#[derive(Debug, Clone, Default)]
pub struct ScriptConfig {
    /// `template = true`.
    pub template: bool,
    /// Headers rendered per request (with `template = true`, those whose value holds `{{`, `{%` or `{#`).
    pub header_templates: Vec<HeaderTemplate>,
    /// `[route.match]`, and its conditions as text (to compare two routes' conditions).
    pub matcher: Option<(MatchConfig, String)>,
    /// `sequence`.
    pub sequence: Option<SequenceConfig>,
    /// `delay`.
    pub delay: Option<Duration>,
    /// `fault`.
    pub fault: Option<Fault>,
    /// `dir`.
    pub dir: Option<DirConfig>,
    /// `status` as a template (with `template = true`), and its span; rendered per request.
    pub status_template: Option<(String, Range<usize>)>,
    /// `stream` or `sse`: the body sent in timed chunks.
    pub stream: Option<StreamConfig>,
    /// `scenario`, `state` and `next_state`.
    pub scenario: Option<ScenarioConfig>,
    /// `websocket`: the route accepts the upgrade and talks in messages.
    pub websocket: Option<crate::config::WebSocketConfig>,
    /// `proxy`: the answer is the upstream's (set by the route check, see `crate::config::proxy`).
    pub proxy: Option<std::sync::Arc<crate::config::proxy::ProxyRoute>>,
    /// `throttle` and `cut_after`: how the body is sent.
    pub shape: Option<crate::config::ShapeConfig>,
    /// A hash of the whole route definition: a reload keeps the counters of routes whose key did not change.
    pub key: u64,
}

/// The state every scenario starts in, and returns to on a reset.
pub const SCENARIO_START: &str = "started";

/// The longest scenario or state name accepted: they are labels, and the admin API lists them.
pub const MAX_SCENARIO_NAME: usize = 100;

/// A route's `scenario`: the state it requires to match, and the state it moves the scenario to when it answers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ScenarioConfig {
    /// The scenario's name.
    pub name: String,
    /// `state`: the route matches only while the scenario is in it.
    pub state: Option<String>,
    /// `next_state`: where the scenario goes when the route answers.
    pub next_state: Option<String>,
}

impl ScriptConfig {
    /// Whether the route answers the same bytes every time, at once (nothing here is set).
    pub fn is_plain(&self) -> bool {
        // Destructured whole, so that a new field is a compile error here until it is classified. `matcher` picks
        // the route but not its answer; `key` is derived.
        let ScriptConfig {
            template,
            header_templates,
            matcher: _,
            sequence,
            delay,
            fault,
            dir,
            status_template,
            stream,
            scenario,
            websocket,
            proxy,
            shape,
            key: _,
        } = self;
        !template
            && scenario.is_none()
            && websocket.is_none()
            && proxy.is_none()
            && header_templates.is_empty()
            && sequence.is_none()
            && delay.is_none()
            && fault.is_none()
            && dir.is_none()
            && status_template.is_none()
            && stream.is_none()
            && shape.is_none()
    }
}

impl Checker<'_> {
    pub(super) fn route_script(
        &mut self,
        spec: &RouteSpec,
        origin: &Origin,
        status: StatusCode,
        headers: &mut HeaderMap,
    ) -> ScriptConfig {
        let header_templates = if spec.template { self.header_templates(&spec.headers, headers) } else { Vec::new() };
        let matcher = spec.matcher.as_ref().and_then(|m| self.matcher(m));
        let delay = self.delay(spec.delay.as_ref());
        let fault = self.fault(spec.fault.as_ref());
        let has_body = spec.body.is_some() || spec.json.is_some() || spec.file.is_some();
        let sequence = spec.sequence.as_ref().and_then(|items| {
            if has_body {
                self.error(
                    items.span(),
                    "a route with a `sequence` gives its bodies in the sequence items",
                    "move the route's `body`, `json` or `file` into the items",
                );
            }
            self.sequence(items, spec.repeat.as_ref(), spec.template, status, headers, &header_templates)
        });
        let stream = self.stream(spec, headers);
        if let (Some(repeat), None) = (&spec.repeat, &spec.sequence)
            && matches!(repeat.get_ref(), RepeatSpec::Mode(_))
        {
            self.error(repeat.span(), "`repeat` without a `sequence`", "add a `sequence = [...]`, or remove `repeat`");
        }
        let dir = spec.dir.as_ref().and_then(|d| {
            if has_body || spec.sequence.is_some() || spec.template {
                self.error(
                    d.span(),
                    "a `dir` route answers with the folder's files; it has no `body`, `json`, `file`, `sequence` or `template`",
                    "remove the other body keys, or make it two routes",
                );
            }
            self.dir(d, spec.path.get_ref())
        });
        let dir = match (dir, &spec.fallback) {
            (dir, None) => dir,
            (Some(dir), Some(fallback)) => self.fallback(dir, fallback),
            (None, Some(fallback)) => {
                if spec.dir.is_none() {
                    self.error(
                        fallback.span(),
                        "`fallback` without a `dir`",
                        "`fallback` names a file of a `dir` route's folder: add `dir = \"public\"`, or remove it",
                    );
                }
                None
            }
        };
        let status_template = matches!(spec.status.as_ref().map(|s| s.get_ref()), Some(super::StatusSpec::Template(_)));
        if spec.template
            && !has_body
            && header_templates.is_empty()
            && spec.sequence.is_none()
            && stream.is_none()
            && spec.stream.is_none()
            && spec.sse.is_none()
            && spec.websocket.is_none()
            && !status_template
        {
            self.error(
                span_of_key(&self.source.text, &origin.span, "template"),
                "`template = true` but the route has nothing to render",
                "add a `body = \"...\"` (or `json`, `file`, a header) with the template, or remove `template`",
            );
        }
        let scenario = self.scenario(spec);
        let websocket = self.websocket(spec);
        let shape = self.shape(spec);
        ScriptConfig {
            template: spec.template,
            header_templates,
            matcher,
            sequence,
            delay,
            fault,
            dir,
            status_template: None,
            stream,
            scenario,
            websocket,
            proxy: None,
            shape,
            key: 0,
        }
    }

    /// `scenario`, `state` and `next_state`: `state` and `next_state` need a `scenario`, and a `scenario` needs one
    /// of them (alone it would do nothing).
    fn scenario(&mut self, spec: &RouteSpec) -> Option<ScenarioConfig> {
        let mut bad = false;
        for (key, value) in [("scenario", &spec.scenario), ("state", &spec.state), ("next_state", &spec.next_state)] {
            let Some(value) = value else { continue };
            let text = value.get_ref();
            if text.trim().is_empty() || text.len() > MAX_SCENARIO_NAME || text.chars().any(char::is_control) {
                self.error(
                    value.span(),
                    format!("`{key}` must be a name of 1 to {MAX_SCENARIO_NAME} characters without control characters"),
                    &format!(
                        "write a short name, e.g. `{key} = \"{}\"`",
                        if key == "scenario" { "todo" } else { "added" }
                    ),
                );
                bad = true;
            }
        }
        let Some(name) = &spec.scenario else {
            for (key, value) in [("state", &spec.state), ("next_state", &spec.next_state)] {
                if let Some(value) = value {
                    self.error(
                        value.span(),
                        format!("`{key}` without a `scenario`"),
                        &format!(
                            "name the scenario whose state this is, e.g. `scenario = \"todo\"`, or remove `{key}`"
                        ),
                    );
                }
            }
            return None;
        };
        if spec.state.is_none() && spec.next_state.is_none() {
            self.error(
                name.span(),
                format!("`scenario = \"{}\"` without `state` or `next_state` does nothing", name.get_ref()),
                &format!(
                    "add `state = \"...\"` (the state the route requires; every scenario starts in \"{SCENARIO_START}\") \
                     and/or `next_state = \"...\"` (the state it moves to), or remove `scenario`"
                ),
            );
            return None;
        }
        if bad {
            return None;
        }
        Some(ScenarioConfig {
            name: name.get_ref().clone(),
            state: spec.state.as_ref().map(|s| s.get_ref().clone()),
            next_state: spec.next_state.as_ref().map(|s| s.get_ref().clone()),
        })
    }

    pub(super) fn server_script(
        &mut self,
        spec: &ServerSpec,
        server_headers: &HeaderMap,
    ) -> (Option<CorsConfig>, Option<ReplyConfig>, Option<u64>) {
        let cors = spec.cors.as_ref().and_then(|c| self.cors(c));
        let not_found = spec.not_found.as_ref().map(|nf| {
            let nf = nf.get_ref();
            let status = self.status(nf.status.as_ref(), StatusCode::NOT_FOUND);
            self.reply(
                ReplyParts {
                    status,
                    headers: &nf.headers,
                    body: nf.body.as_ref(),
                    json: nf.json.as_ref(),
                    file: nf.file.as_ref(),
                    delay: None,
                    fault: None,
                },
                nf.template,
                server_headers,
                &[],
            )
        });
        let seed = spec.seed.as_ref().map(|s| *s.get_ref() as u64);
        (cors, not_found, seed)
    }

    fn status(&mut self, spec: Option<&Spanned<u16>>, default: StatusCode) -> StatusCode {
        match spec {
            None => default,
            Some(s) => match StatusCode::from_u16(*s.get_ref()) {
                Ok(code) if code.is_informational() => {
                    self.interim_status(s.span(), code);
                    default
                }
                Ok(code) => code,
                Err(_) => {
                    self.error(
                        s.span(),
                        format!("`{}` is not an HTTP status code", s.get_ref()),
                        "use a number from 200 to 999, e.g. 200, 404 or 503",
                    );
                    default
                }
            },
        }
    }

    /// Takes the headers whose value is a template out of `headers`.
    fn header_templates(&mut self, spec: &StringMap, headers: &mut HeaderMap) -> Vec<HeaderTemplate> {
        let mut out = Vec::new();
        for (name, value) in spec {
            if !has_template_syntax(value.get_ref()) {
                continue;
            }
            if let Ok(name) = HeaderName::from_bytes(name.get_ref().as_bytes()) {
                headers.remove(&name);
                out.push(HeaderTemplate { name, source: value.get_ref().clone(), span: value.span() });
            }
        }
        out
    }

    pub(super) fn delay(&mut self, spec: Option<&Spanned<String>>) -> Option<Duration> {
        let spec = spec?;
        match humantime::parse_duration(spec.get_ref()) {
            Ok(d) if d <= MAX_DELAY => Some(d),
            Ok(_) => {
                self.error(
                    spec.span(),
                    format!("delay `{}` is over an hour", spec.get_ref()),
                    "use a delay up to \"1h\"",
                );
                None
            }
            Err(e) => {
                // humantime's own message lists months and years, which a delay (at most 1h) cannot use.
                let why = match e {
                    humantime::DurationError::UnknownUnit { unit, .. } => format!("unknown unit `{unit}`"),
                    humantime::DurationError::NumberExpected(_) => "a number is missing".to_owned(),
                    humantime::DurationError::InvalidCharacter(_) => "it has a character that is no unit".to_owned(),
                    e => e.to_string(),
                };
                self.error(
                    spec.span(),
                    format!("`{}` is not a delay: {why}", spec.get_ref()),
                    "the units are ms, s, m and h, e.g. \"300ms\", \"2s\" or \"1m 30s\" (at most \"1h\")",
                );
                None
            }
        }
    }

    fn fault(&mut self, spec: Option<&Spanned<String>>) -> Option<Fault> {
        let spec = spec?;
        match spec.get_ref().parse() {
            Ok(f) => Some(f),
            Err(()) => {
                self.error(
                    spec.span(),
                    format!("`{}` is not a fault", spec.get_ref()),
                    "use \"reset\" (TCP reset), \"close\" (close without answering) or \"garbage\" (bytes that are not HTTP)",
                );
                None
            }
        }
    }

    fn matcher(&mut self, spanned: &Spanned<MatchSpec>) -> Option<(MatchConfig, String)> {
        let spec = spanned.get_ref();
        let before = self.errors.len();
        let mut m = MatchConfig::default();
        let mut canonical = String::new();
        for (name, value) in &spec.query {
            m.query.push((name.get_ref().clone(), Condition::Equals(value.get_ref().clone())));
            canonical.push_str(&format!("query {:?}={:?};", name.get_ref(), value.get_ref()));
        }
        for (name, value) in &spec.query_regex {
            if let Some(re) = self.regex(value) {
                m.query.push((name.get_ref().clone(), Condition::Regex(re)));
                canonical.push_str(&format!("query {:?}~{:?};", name.get_ref(), value.get_ref()));
            }
        }
        for (regex, map) in [(false, &spec.headers), (true, &spec.headers_regex)] {
            for (name, value) in map {
                let Ok(header) = HeaderName::from_bytes(name.get_ref().to_ascii_lowercase().as_bytes()) else {
                    self.error(
                        name.span(),
                        format!("`{}` is not a valid header name", name.get_ref()),
                        "header names are letters, digits and `-`, e.g. \"authorization\"",
                    );
                    continue;
                };
                let cond = if regex {
                    match self.regex(value) {
                        Some(re) => Condition::Regex(re),
                        None => continue,
                    }
                } else {
                    Condition::Equals(value.get_ref().clone())
                };
                canonical.push_str(&format!("header {header}{}{:?};", if regex { "~" } else { "=" }, value.get_ref()));
                m.headers.push((header, cond));
            }
        }
        if let Some(b) = &spec.body_contains {
            m.body_contains = Some(b.get_ref().clone());
            canonical.push_str(&format!("body_contains {:?};", b.get_ref()));
        }
        if let Some(j) = &spec.json {
            let json = toml_to_json(j.get_ref());
            canonical.push_str(&format!("json {json};"));
            m.json = Some(json);
        }
        if let Some(p) = &spec.path_regex {
            m.path_regex = self.regex(p);
            canonical.push_str(&format!("path_regex {:?};", p.get_ref()));
        }
        if let Some(b) = &spec.body_regex {
            m.body_regex = self.regex(b);
            canonical.push_str(&format!("body_regex {:?};", b.get_ref()));
        }
        for name in &spec.headers_absent {
            match HeaderName::from_bytes(name.get_ref().to_ascii_lowercase().as_bytes()) {
                Ok(header) => {
                    canonical.push_str(&format!("header_absent {header};"));
                    m.headers_absent.push(header);
                }
                Err(_) => self.error(
                    name.span(),
                    format!("`{}` is not a valid header name", name.get_ref()),
                    "header names are letters, digits and `-`, e.g. \"authorization\"",
                ),
            }
        }
        for (name, value) in &spec.cookies {
            if name.get_ref().is_empty() || name.get_ref().contains([';', '=', ' ', ',']) {
                self.error(
                    name.span(),
                    format!("`{}` is not a cookie name", name.get_ref()),
                    "a cookie name has no `;`, `=`, `,` or space, e.g. \"session\"",
                );
                continue;
            }
            canonical.push_str(&format!("cookie {:?}={:?};", name.get_ref(), value.get_ref()));
            m.cookies.push((name.get_ref().clone(), Condition::Equals(value.get_ref().clone())));
        }
        for (expr, value) in &spec.jsonpath {
            match serde_json_path::JsonPath::parse(expr.get_ref()) {
                Ok(path) => {
                    let want = toml_to_json(value.get_ref());
                    canonical.push_str(&format!("jsonpath {:?}={want};", expr.get_ref()));
                    m.jsonpath.push((path, expr.get_ref().clone(), want));
                }
                Err(e) => self.error(
                    expr.span(),
                    format!("`{}` is not a JSONPath expression: {e}", expr.get_ref()),
                    "write an RFC 9535 JSONPath starting at the root `$`, e.g. \"$.items[0].id\" (quoted as a key)",
                ),
            }
        }
        if let Some(c) = &spec.chance {
            let p = *c.get_ref();
            if (0.0..=1.0).contains(&p) {
                canonical.push_str(&format!("chance {p};"));
                m.chance = Some(crate::config::Chance { p, seed: 0, draws: Default::default() });
            } else {
                self.error(
                    c.span(),
                    format!("`chance = {p}` is not a share of requests"),
                    "use a number from 0 to 1, e.g. 0.1 for one request in ten",
                );
            }
        }
        for (name, value) in &spec.form {
            canonical.push_str(&format!("form {:?}={:?};", name.get_ref(), value.get_ref()));
            m.form.push((name.get_ref().clone(), Condition::Equals(value.get_ref().clone())));
        }
        if let Some(g) = &spec.graphql {
            let mut graphql = crate::config::GraphqlMatch::default();
            if let Some(op) = &g.get_ref().operation {
                if is_graphql_name(op.get_ref()) {
                    graphql.operation = Some(op.get_ref().clone());
                } else {
                    self.error(
                        op.span(),
                        format!("`{}` is not a GraphQL operation name", op.get_ref()),
                        "an operation name is letters, digits and `_`, not starting with a digit, e.g. \"GetUser\"",
                    );
                }
            }
            if let Some(v) = &g.get_ref().variables {
                if v.get_ref().is_table() {
                    graphql.variables = Some(toml_to_json(v.get_ref()));
                } else {
                    self.error(
                        v.span(),
                        "`variables` is not a table",
                        "give the variables the request must have as a table, e.g. `variables = { id = \"1\" }`",
                    );
                }
            }
            if g.get_ref().operation.is_none() && g.get_ref().variables.is_none() {
                self.error(
                    g.span(),
                    "the `graphql` condition is empty",
                    "give `operation = \"Name\"`, `variables = { ... }` or both",
                );
            }
            canonical.push_str(&format!("graphql {:?} {:?};", graphql.operation, graphql.variables));
            m.graphql = Some(graphql);
        }
        if let Some(inner) = &spec.not {
            let inner_spec = inner.get_ref();
            if let Some(nested) = &inner_spec.not {
                self.error(
                    nested.span(),
                    "a `not` inside `not` is not allowed",
                    "write the inner conditions directly in the outer `not`'s place: `not = { not = { X } }` is `X`",
                );
            } else if let Some(c) = &inner_spec.chance {
                self.error(
                    c.span(),
                    "`chance` inside `not` is not allowed",
                    "put `chance` in the `match` table itself: a draw is already a yes or a no",
                );
            } else if let Some((inner_m, inner_canonical)) = self.matcher(inner) {
                canonical.push_str(&format!("not {{{inner_canonical}}};"));
                m.not = Some(Box::new(inner_m));
            }
        }
        if self.errors.len() > before {
            return None;
        }
        if m.is_empty() {
            self.error(
                spanned.span(),
                "the `match` table has no conditions",
                "add one of `query`, `headers`, `body_contains`, `json`, `path_regex`, `query_regex`, `headers_regex`, `body_regex`, `headers_absent`, `cookies`, `form`, `jsonpath`, `chance`, `not`, `graphql`, or remove the table",
            );
            return None;
        }
        Some((m, canonical))
    }

    pub(super) fn regex(&mut self, spec: &Spanned<String>) -> Option<regex::Regex> {
        match compile_regex(spec.get_ref()) {
            Ok(re) => Some(re),
            Err(e) => {
                let detail = e.to_string();
                let detail = detail.lines().last().unwrap_or_default().trim().to_owned();
                self.error(
                    spec.span(),
                    format!("`{}` is not a usable regex: {detail}", spec.get_ref()),
                    "fix the pattern (https://docs.rs/regex#syntax); patterns are limited in size and nesting, and have no look-around or backreferences",
                );
                None
            }
        }
    }

    fn sequence(
        &mut self,
        items: &Spanned<Vec<Spanned<SequenceItemSpec>>>,
        repeat: Option<&Spanned<RepeatSpec>>,
        template: bool,
        status: StatusCode,
        headers: &HeaderMap,
        header_templates: &[HeaderTemplate],
    ) -> Option<SequenceConfig> {
        if items.get_ref().is_empty() {
            self.error(items.span(), "the sequence is empty", "give at least one answer, e.g. [{ status = 200 }]");
            return None;
        }
        let mode = repeat.map(|r| match r.get_ref() {
            RepeatSpec::Mode(m) => m.clone(),
            RepeatSpec::Flag(f) => f.to_string(),
        });
        let cycle = match mode.as_deref() {
            None | Some("last") => false,
            Some("cycle") => true,
            Some(other) => {
                self.error(
                    repeat.map(Spanned::span).unwrap_or_default(),
                    format!("`{other}` is not a way to repeat"),
                    "use \"last\" (repeat the last answer, the default) or \"cycle\" (start over)",
                );
                false
            }
        };
        let mut out = Vec::new();
        for item in items.get_ref() {
            let item = item.get_ref();
            let item_status = self.status(item.status.as_ref(), status);
            let delay = self.delay(item.delay.as_ref());
            let fault = self.fault(item.fault.as_ref());
            out.push(self.reply(
                ReplyParts {
                    status: item_status,
                    headers: &item.headers,
                    body: item.body.as_ref(),
                    json: item.json.as_ref(),
                    file: item.file.as_ref(),
                    delay,
                    fault,
                },
                template,
                headers,
                header_templates,
            ));
        }
        Some(SequenceConfig { items: out, cycle })
    }

    /// One answer, on top of `base_headers` and `base_templates` (the route's, or the server's).
    fn reply(
        &mut self,
        parts: ReplyParts<'_>,
        template: bool,
        base_headers: &HeaderMap,
        base_templates: &[HeaderTemplate],
    ) -> ReplyConfig {
        let mut headers = base_headers.clone();
        let own = self.headers(parts.headers);
        let mut header_templates: Vec<HeaderTemplate> =
            base_templates.iter().filter(|t| !own.contains_key(&t.name)).cloned().collect();
        for (name, value) in own {
            if let Some(name) = name {
                headers.insert(name, value);
            }
        }
        if template {
            let own_templates = self.header_templates(parts.headers, &mut headers);
            header_templates.retain(|t| !own_templates.iter().any(|o| o.name == t.name));
            header_templates.extend(own_templates);
        }
        let (body, content_type) = self.body(parts.body, parts.json, parts.file, template);
        let body_span = parts.body.map(Spanned::span).or_else(|| parts.json.map(Spanned::span));
        self.bodiless(parts.status, &body, body_span.or_else(|| parts.file.map(Spanned::span)));
        if let Some(ct) = content_type
            && !parts.headers.keys().any(|k| k.get_ref().eq_ignore_ascii_case("content-type"))
            && let Ok(v) = HeaderValue::from_str(&ct)
        {
            headers.insert(CONTENT_TYPE, v);
        }
        ReplyConfig { status: parts.status, headers, header_templates, body, delay: parts.delay, fault: parts.fault }
    }

    fn dir(&mut self, spec: &Spanned<String>, route_path: &str) -> Option<DirConfig> {
        let rel = spec.get_ref();
        let joined = if self.base_dir == Path::new(".") { PathBuf::from(rel) } else { self.base_dir.join(rel) };
        let root = match (joined.canonicalize(), self.base_dir.canonicalize()) {
            (Ok(root), Ok(base)) if !root.starts_with(&base) => {
                self.error(
                    spec.span(),
                    format!("folder `{rel}` is outside the route file's folder `{}`", base.display()),
                    "serve a folder inside the route file's folder (or below it), named relative to it",
                );
                return None;
            }
            (Ok(root), Ok(_)) if !root.is_dir() => {
                self.error(spec.span(), format!("`{rel}` is not a folder"), "name a folder, e.g. \"public\"");
                return None;
            }
            (Ok(root), Ok(_)) => root,
            (Err(e), _) | (_, Err(e)) => {
                self.error(
                    spec.span(),
                    format!("cannot open folder `{}`: {e}", joined.display()),
                    "paths are relative to the route file's folder; check the name",
                );
                return None;
            }
        };
        let param = route_path
            .rsplit('/')
            .next()
            .and_then(|last| last.strip_prefix("{*"))
            .and_then(|p| p.strip_suffix('}'))
            .map(str::to_owned);
        Some(DirConfig { root, param, fallback: None })
    }

    /// Checks `fallback` (a file inside the folder) and adds it to `dir`.
    fn fallback(&mut self, mut dir: DirConfig, spec: &Spanned<String>) -> Option<DirConfig> {
        let name = spec.get_ref();
        match dir.root.join(name).canonicalize() {
            Ok(file) if file.starts_with(&dir.root) && file.is_file() => {
                dir.fallback = Some(file);
                Some(dir)
            }
            Ok(file) if !file.starts_with(&dir.root) => {
                self.error(
                    spec.span(),
                    format!("fallback `{name}` is outside the folder `{}`", dir.root.display()),
                    "name a file inside the route's `dir`, relative to it, e.g. \"index.html\"",
                );
                None
            }
            Ok(_) => {
                self.error(spec.span(), format!("fallback `{name}` is not a file"), "name a file, e.g. \"index.html\"");
                None
            }
            Err(e) => {
                self.error(
                    spec.span(),
                    format!("cannot open fallback `{name}` in `{}`: {e}", dir.root.display()),
                    "the fallback is relative to the route's `dir`, e.g. \"index.html\" for `dir`/index.html",
                );
                None
            }
        }
    }

    fn cors(&mut self, spec: &Spanned<CorsSpec>) -> Option<CorsConfig> {
        let table = match spec.get_ref() {
            CorsSpec::Enabled(false) => return None,
            CorsSpec::Enabled(true) => return Some(CorsConfig::default()),
            CorsSpec::Table(t) => t,
        };
        let before = self.errors.len();
        let origins = table.origins.as_ref().map(|list| {
            for o in list {
                let ok = o == "*"
                    || ((o.starts_with("http://") || o.starts_with("https://"))
                        && !o.trim_start_matches("http://").trim_start_matches("https://").contains('/')
                        && HeaderValue::from_str(o).is_ok());
                if !ok {
                    self.error(
                        spec.span(),
                        format!("`{o}` is not an origin"),
                        "an origin is a scheme, host and optional port without a path, e.g. \"http://localhost:5173\", or \"*\"",
                    );
                }
            }
            list.clone()
        });
        let methods = table.methods.as_ref().map(|list| {
            list.iter()
                .filter_map(|m| match Method::from_bytes(m.to_ascii_uppercase().as_bytes()) {
                    Ok(m) => Some(m),
                    Err(_) => {
                        self.error(
                            spec.span(),
                            format!("`{m}` is not an HTTP method"),
                            "use methods like \"GET\", \"POST\"",
                        );
                        None
                    }
                })
                .collect()
        });
        let mut names = |list: &[String]| -> Vec<HeaderName> {
            list.iter()
                .filter_map(|h| match HeaderName::from_bytes(h.to_ascii_lowercase().as_bytes()) {
                    Ok(h) => Some(h),
                    Err(_) => {
                        self.error(
                            spec.span(),
                            format!("`{h}` is not a header name"),
                            "use names like \"content-type\"",
                        );
                        None
                    }
                })
                .collect()
        };
        let headers = table.headers.as_ref().map(|h| names(h));
        let expose_headers = names(&table.expose_headers);
        if self.errors.len() > before {
            return None;
        }
        Some(CorsConfig {
            origins,
            methods,
            headers,
            expose_headers,
            credentials: table.credentials,
            max_age: table.max_age,
        })
    }
}

/// The keys of one answer.
struct ReplyParts<'a> {
    status: StatusCode,
    headers: &'a StringMap,
    body: Option<&'a Spanned<String>>,
    json: Option<&'a Spanned<toml::Value>>,
    file: Option<&'a Spanned<String>>,
    delay: Option<Duration>,
    fault: Option<Fault>,
}

/// A hash of everything that defines how a route answers (not where it is in the file): a reload keeps the counters
/// and sequence positions of routes whose key did not change.
pub(super) fn definition_key(route: &RouteConfig) -> u64 {
    // Plain routes keep no state: skip the hashing, which matters for files with thousands of routes.
    if route.script.is_plain() && matches!(route.body, BodyConfig::Fixed(_)) {
        return 0;
    }
    // Destructured whole, so that a field added to a route is a compile error here until it is hashed (or said not
    // to matter): forgetting it would carry a changed route's counters over a reload.
    let RouteConfig { path, path_span: _, methods, status, headers, body, script, origin: _ } = route;
    let ScriptConfig {
        template,
        header_templates,
        matcher,
        sequence,
        delay,
        fault,
        dir,
        status_template,
        stream,
        scenario,
        websocket,
        proxy,
        shape,
        key: _,
    } = script;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    path.hash(&mut h);
    methods.to_string().hash(&mut h);
    hash_reply(*status, headers, header_templates, body, &mut h);
    template.hash(&mut h);
    matcher.as_ref().map(|m| &m.1).hash(&mut h);
    if let Some(seq) = sequence {
        seq.cycle.hash(&mut h);
        for item in &seq.items {
            hash_reply(item.status, &item.headers, &item.header_templates, &item.body, &mut h);
            item.delay.hash(&mut h);
            item.fault.hash(&mut h);
        }
    }
    delay.hash(&mut h);
    fault.hash(&mut h);
    shape.hash(&mut h);
    dir.as_ref().map(|d| (&d.root, &d.param)).hash(&mut h);
    status_template.as_ref().map(|(source, _)| source).hash(&mut h);
    if let Some(stream) = stream {
        (stream.sse, stream.count).hash(&mut h);
        for item in &stream.items {
            item.delay.hash(&mut h);
            item.event.hash(&mut h);
            match &item.data {
                BodyConfig::Fixed(bytes) => (0u8, bytes.as_ref()).hash(&mut h),
                BodyConfig::Template { source, .. } => (1u8, source.as_bytes()).hash(&mut h),
            }
        }
    }
    scenario.hash(&mut h);
    websocket.as_ref().map(|w| w.key).hash(&mut h);
    proxy.as_ref().map(|p| &p.target.url).hash(&mut h);
    h.finish()
}

fn hash_reply(
    status: StatusCode,
    headers: &HeaderMap,
    templates: &[HeaderTemplate],
    body: &BodyConfig,
    h: &mut impl Hasher,
) {
    status.as_u16().hash(h);
    for (name, value) in headers {
        name.as_str().hash(h);
        value.as_bytes().hash(h);
    }
    for t in templates {
        t.name.as_str().hash(h);
        t.source.hash(h);
    }
    match body {
        BodyConfig::Fixed(bytes) => (0u8, bytes.as_ref()).hash(h),
        BodyConfig::Template { source, .. } => (1u8, source.as_bytes()).hash(h),
    }
}

/// Whether `s` is a GraphQL name (`/[_A-Za-z][_0-9A-Za-z]*/`).
fn is_graphql_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes.next().is_some_and(|b| b == b'_' || b.is_ascii_alphabetic())
        && bytes.all(|b| b == b'_' || b.is_ascii_alphanumeric())
}
