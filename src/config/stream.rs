//! The route file keys of timed streams (`stream`, `sse`, `repeat = true`, `count`) and their checks. The route
//! layer (`crate::route::stream`) turns the checked [`StreamConfig`] into a body that sends each item after its delay.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue};
use schemars::JsonSchema;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use toml::Spanned;

use super::json_template::{has_template_syntax, json_template_source};
use super::{BodyConfig, Checker, RouteSpec, toml_to_json};

/// The most items a `stream` or `sse` list may hold.
pub const MAX_STREAM_ITEMS: usize = 10_000;

/// The most items a repeating stream may send (`count`).
pub const MAX_STREAM_COUNT: u64 = 10_000_000;

/// `repeat = "last"`/`"cycle"` for a sequence, `repeat = true` for a stream.
#[derive(Debug, Clone, JsonSchema)]
#[schemars(untagged)]
pub enum RepeatSpec {
    /// For a `stream` or `sse`: start the items over after the last, up to `count` items.
    Flag(bool),
    /// For a `sequence`: `"last"` repeats the last answer (the default), `"cycle"` starts over.
    Mode(String),
}

impl<'de> Deserialize<'de> for RepeatSpec {
    // Hand-written so that a wrong type gets a clear message instead of serde's "did not match any variant".
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = RepeatSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("\"last\" or \"cycle\" (for a `sequence`), or true (for a `stream` or `sse`)")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(RepeatSpec::Flag(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(RepeatSpec::Mode(v.to_owned()))
            }
        }
        d.deserialize_any(V)
    }
}

/// One chunk of a `stream`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StreamItemSpec {
    /// The bytes of the chunk (a template with `template = true`).
    #[schemars(with = "String")]
    pub data: Spanned<String>,
    /// Wait this long before sending it, e.g. `"100ms"` (default 0).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub delay: Option<Spanned<String>>,
}

/// One server-sent event of `sse`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SseEventSpec {
    /// The event type (`event:` line); none is a `message`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub event: Option<Spanned<String>>,
    /// The event's data: text (each line becomes a `data:` line), or a table or array sent as one line of JSON.
    #[serde(default)]
    #[schemars(with = "Option<serde_json::Value>")]
    pub data: Option<Spanned<toml::Value>>,
    /// The event id (`id:` line); a client that reconnects with `Last-Event-ID` resumes after it.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub id: Option<Spanned<String>>,
    /// How long, in milliseconds, a client waits before it reconnects (`retry:` line).
    #[serde(default)]
    #[schemars(with = "Option<u64>")]
    pub retry: Option<Spanned<i64>>,
    /// A comment line (`: text`), which clients ignore; often used as a keep-alive.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub comment: Option<Spanned<String>>,
    /// Wait this long before sending it, e.g. `"50ms"` (default 0).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub delay: Option<Spanned<String>>,
}

/// One checked item of a stream.
#[derive(Debug, Clone)]
pub struct StreamItemConfig {
    /// The wait before it.
    pub delay: Duration,
    /// The chunk: for `sse`, the event's data alone (framed by the route layer, which splits its lines).
    pub data: BodyConfig,
    /// For `sse`, the event's other fields.
    pub event: Option<SseFields>,
}

/// The fields of a server-sent event besides its data.
#[derive(Debug, Clone, Default, Hash)]
pub struct SseFields {
    /// `event:`.
    pub event: Option<String>,
    /// `id:`.
    pub id: Option<String>,
    /// `retry:`.
    pub retry: Option<u64>,
    /// `: comment`.
    pub comment: Option<String>,
    /// Whether the event has data (an event of only `retry` or a comment has none).
    pub has_data: bool,
}

/// A route's checked `stream` or `sse`.
#[derive(Debug, Clone)]
pub struct StreamConfig {
    /// The items, in order.
    pub items: Vec<StreamItemConfig>,
    /// Whether the items are server-sent events.
    pub sse: bool,
    /// How many items to send in all: the list's length, or `count` with `repeat = true`.
    pub count: u64,
}

impl Checker<'_> {
    /// Checks `stream`, `sse` and their `count`; sets the SSE headers. `repeat = true` is checked here too.
    pub(super) fn stream(&mut self, spec: &RouteSpec, headers: &mut HeaderMap) -> Option<StreamConfig> {
        let repeat_flag = match spec.repeat.as_ref() {
            Some(r) => match r.get_ref() {
                RepeatSpec::Flag(f) => Some((*f, r.span())),
                RepeatSpec::Mode(_) => None,
            },
            None => None,
        };
        let (stream, sse) = (spec.stream.as_ref(), spec.sse.as_ref());
        if stream.is_none() && sse.is_none() {
            if let Some((_, span)) = repeat_flag {
                self.error(
                    span,
                    "`repeat = true` is for a `stream` or `sse` route",
                    "add `stream = [...]` or `sse = [...]`; a `sequence` takes `repeat = \"last\"` or `\"cycle\"`",
                );
            }
            if let Some(c) = &spec.count {
                self.error(c.span(), "`count` without a `stream` or `sse`", "remove `count`, or add `stream = [...]`");
            }
            return None;
        }
        let span = stream.map(|s| s.span()).or(sse.map(|s| s.span())).unwrap_or_default();
        if stream.is_some() && sse.is_some() {
            self.error(span.clone(), "a route has `stream` and `sse`", "keep one: `sse` for server-sent events");
            return None;
        }
        let others = [
            spec.body.as_ref().map(|b| b.span()),
            spec.json.as_ref().map(|j| j.span()),
            spec.file.as_ref().map(|f| f.span()),
            spec.sequence.as_ref().map(|s| s.span()),
            spec.dir.as_ref().map(|d| d.span()),
        ];
        if let Some(other) = others.into_iter().flatten().next() {
            self.error(
                other,
                "a `stream` or `sse` route sends its items as its body; it has no `body`, `json`, `file`, `sequence` or `dir`",
                "remove the other body key, or make it two routes",
            );
            return None;
        }
        let before = self.errors.len();
        let len = stream.map(|s| s.get_ref().len()).or(sse.map(|s| s.get_ref().len())).unwrap_or(0);
        if len == 0 {
            self.error(
                span,
                "the stream is empty",
                "give at least one item, e.g. [{ data = \"tick\\n\", delay = \"1s\" }]",
            );
            return None;
        }
        if len > MAX_STREAM_ITEMS {
            self.error(
                span,
                format!("the stream has {len} items, over the limit of {MAX_STREAM_ITEMS}"),
                "use fewer items, or `repeat = true` with a `count`",
            );
            return None;
        }
        let mut items = Vec::with_capacity(len);
        if let Some(list) = stream {
            for item in list.get_ref() {
                let item = item.get_ref();
                let delay = self.delay(item.delay.as_ref()).unwrap_or_default();
                let data = text_body(&item.data, spec.template);
                items.push(StreamItemConfig { delay, data, event: None });
            }
        }
        if let Some(list) = sse {
            for item in list.get_ref() {
                if let Some(it) = self.sse_event(item, spec.template) {
                    items.push(it);
                }
            }
            if !spec.headers.keys().any(|k| k.get_ref().eq_ignore_ascii_case("content-type")) {
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
            }
            if !headers.contains_key(CACHE_CONTROL) {
                headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            }
        }
        let count = match (repeat_flag, &spec.count) {
            (Some((true, _)), Some(c)) => match u64::try_from(*c.get_ref()) {
                Ok(n) if (1..=MAX_STREAM_COUNT).contains(&n) => n,
                _ => {
                    self.error(
                        c.span(),
                        format!("`count = {}` is out of range", c.get_ref()),
                        "use a number of items from 1 to 10000000",
                    );
                    return None;
                }
            },
            (Some((true, span)), None) => {
                self.error(
                    span,
                    "`repeat = true` without a `count`: the stream would never end",
                    "add `count = 100` (how many items to send in all)",
                );
                return None;
            }
            (_, Some(c)) => {
                self.error(
                    c.span(),
                    "`count` without `repeat = true`",
                    "add `repeat = true` to send the items over and over up to `count`, or remove `count`",
                );
                return None;
            }
            (_, None) => len as u64,
        };
        if self.errors.len() > before {
            return None;
        }
        Some(StreamConfig { items, sse: sse.is_some(), count })
    }

    fn sse_event(&mut self, spanned: &Spanned<SseEventSpec>, template: bool) -> Option<StreamItemConfig> {
        let spec = spanned.get_ref();
        let delay = self.delay(spec.delay.as_ref()).unwrap_or_default();
        let mut fields = SseFields::default();
        // A line break in a field would start another field: the event would not be what the file says.
        for (name, value, slot) in [
            ("event", &spec.event, &mut fields.event),
            ("id", &spec.id, &mut fields.id),
            ("comment", &spec.comment, &mut fields.comment),
        ] {
            if let Some(v) = value {
                if v.get_ref().contains(['\n', '\r']) || (name == "id" && v.get_ref().contains('\0')) {
                    self.error(
                        v.span(),
                        format!("the SSE `{name}` has a line break"),
                        "write it on one line (only `data` may span lines)",
                    );
                    return None;
                }
                *slot = Some(v.get_ref().clone());
            }
        }
        if let Some(r) = &spec.retry {
            match u64::try_from(*r.get_ref()) {
                Ok(ms) => fields.retry = Some(ms),
                Err(_) => {
                    self.error(
                        r.span(),
                        format!("`retry = {}` is negative", r.get_ref()),
                        "give milliseconds, e.g. 3000",
                    );
                    return None;
                }
            }
        }
        let data = match &spec.data {
            None => BodyConfig::Fixed(Bytes::new()),
            Some(d) => match d.get_ref() {
                toml::Value::String(s) => text_body(&Spanned::new(d.span(), s.clone()), template),
                toml::Value::Table(_) | toml::Value::Array(_) => {
                    let json = toml_to_json(d.get_ref());
                    if template {
                        BodyConfig::Template { source: json_template_source(&json), span: d.span() }
                    } else {
                        BodyConfig::Fixed(Bytes::from(json.to_string()))
                    }
                }
                other => BodyConfig::Fixed(Bytes::from(toml_to_json(other).to_string())),
            },
        };
        fields.has_data = spec.data.is_some();
        if !fields.has_data && fields.retry.is_none() && fields.comment.is_none() && fields.id.is_none() {
            self.error(
                spanned.span(),
                "an SSE event has no `data`, `id`, `retry` or `comment`",
                "give the event a `data = \"...\"`",
            );
            return None;
        }
        Some(StreamItemConfig { delay, data, event: Some(fields) })
    }
}

fn text_body(s: &Spanned<String>, template: bool) -> BodyConfig {
    if template && has_template_syntax(s.get_ref()) {
        BodyConfig::Template { source: s.get_ref().clone(), span: s.span() }
    } else {
        BodyConfig::Fixed(Bytes::from(s.get_ref().clone()))
    }
}
