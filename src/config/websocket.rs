//! The route file keys of a WebSocket route (`websocket = { ... }`) and their checks. The route layer
//! (`crate::route::websocket`) runs the conversation that the checked [`WebSocketConfig`] describes.

use std::hash::{Hash, Hasher};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use regex::Regex;
use schemars::JsonSchema;
use serde::Deserialize;
use toml::Spanned;

use super::json_template::{has_template_syntax, json_template_source};
use super::{BodyConfig, Checker, RouteSpec, toml_to_json};

/// The most messages an `on_connect` or `send` list may hold, and the most rules of `on_message`.
pub const MAX_WS_STEPS: usize = 10_000;

/// The largest `close_after` accepted.
pub const MAX_WS_CLOSE_AFTER: u64 = 10_000_000;

/// The longest close reason the protocol allows, in bytes (a close frame's payload is at most 125 bytes, 2 of which
/// are the code).
pub const MAX_CLOSE_REASON: usize = 123;

/// The largest `ping` payload the protocol allows, in bytes.
pub const MAX_PING: usize = 125;

/// `websocket = { ... }` on a route.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebSocketSpec {
    /// Messages sent once the connection is open, in order, each after its `delay`, e.g.
    /// `[{ text = "hello", delay = "100ms" }]`.
    #[serde(default)]
    #[schemars(with = "Vec<WsSendSpec>")]
    pub on_connect: Vec<Spanned<WsSendSpec>>,
    /// Answers to incoming messages: the first rule whose `match` holds answers with its `send` list and/or `close`.
    #[serde(default)]
    #[schemars(with = "Vec<WsRuleSpec>")]
    pub on_message: Vec<Spanned<WsRuleSpec>>,
    /// Send back every message that no rule of `on_message` answered (default false).
    #[serde(default)]
    pub echo: bool,
    /// Close the connection (code 1000) once this many messages have come in and been answered.
    #[serde(default)]
    #[schemars(with = "Option<u64>", range(min = 1, max = 10000000))]
    pub close_after: Option<Spanned<i64>>,
}

/// One message the server sends: exactly one of `text`, `json`, `binary`, `file`, `ping`, after an optional `delay`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WsSendSpec {
    /// A text message (a template with `template = true`: `{{ message.text }}`, `{{ path.id }}`...).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub text: Option<Spanned<String>>,
    /// Any TOML value, sent as a text message holding its JSON (strings are templates with `template = true`).
    #[serde(default)]
    #[schemars(with = "Option<serde_json::Value>")]
    pub json: Option<Spanned<toml::Value>>,
    /// A binary message, written in base64 (standard alphabet, padding optional), e.g. `"AAEC/w=="`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub binary: Option<Spanned<String>>,
    /// A binary message with this file's bytes (relative to the route file's folder, read when the routes load).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub file: Option<Spanned<String>>,
    /// A ping frame with this text as payload (at most 125 bytes); clients answer with a pong.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub ping: Option<Spanned<String>>,
    /// Wait this long before sending it, e.g. `"100ms"` (default 0).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub delay: Option<Spanned<String>>,
}

/// One rule of `on_message`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WsRuleSpec {
    /// Conditions on the incoming message, all of which must hold; without `match`, the rule answers any message.
    #[serde(default, rename = "match")]
    #[schemars(with = "Option<WsMatchSpec>")]
    pub matcher: Option<Spanned<WsMatchSpec>>,
    /// Messages sent in answer, in order, each after its `delay`.
    #[serde(default)]
    #[schemars(with = "Vec<WsSendSpec>")]
    pub send: Vec<Spanned<WsSendSpec>>,
    /// Close the connection after sending: `{ code = 1000, reason = "bye" }`.
    #[serde(default)]
    #[schemars(with = "Option<WsCloseSpec>")]
    pub close: Option<Spanned<WsCloseSpec>>,
}

/// Conditions on an incoming message (text, or binary that is UTF-8).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WsMatchSpec {
    /// The message equals this text.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub text: Option<Spanned<String>>,
    /// The message contains this text.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub contains: Option<Spanned<String>>,
    /// The message is JSON and contains this value, as a route's `match = { json = ... }` compares.
    #[serde(default)]
    #[schemars(with = "Option<serde_json::Value>")]
    pub json: Option<Spanned<toml::Value>>,
    /// The message contains a match of this regex (`^...$` for the whole message).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub regex: Option<Spanned<String>>,
}

/// A close frame: `{ code = 1000, reason = "bye" }`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WsCloseSpec {
    /// The close code (default 1000): 1000 to 1003, 1007 to 1014, or 3000 to 4999 (RFC 6455 section 7.4).
    #[serde(default)]
    #[schemars(with = "Option<u16>", range(min = 1000, max = 4999))]
    pub code: Option<Spanned<i64>>,
    /// The close reason, at most 123 bytes.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub reason: Option<Spanned<String>>,
}

/// What one outgoing message holds.
#[derive(Debug, Clone)]
pub enum WsPayload {
    /// A text message (`text`, or `json` as JSON text); a template with `template = true`.
    Text(BodyConfig),
    /// A binary message.
    Binary(Bytes),
    /// A ping frame.
    Ping(Bytes),
}

/// One checked outgoing message.
#[derive(Debug, Clone)]
pub struct WsSend {
    /// The wait before it.
    pub delay: Duration,
    /// What it holds.
    pub payload: WsPayload,
}

/// The checked conditions of one rule.
#[derive(Debug, Clone, Default)]
pub struct WsMatch {
    /// Equals this text.
    pub text: Option<String>,
    /// Contains this text.
    pub contains: Option<String>,
    /// Is JSON containing this value.
    pub json: Option<serde_json::Value>,
    /// Contains a match of this regex.
    pub regex: Option<Regex>,
}

/// A checked close frame.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WsClose {
    /// The close code.
    pub code: u16,
    /// The close reason.
    pub reason: String,
}

/// One checked rule of `on_message`.
#[derive(Debug, Clone)]
pub struct WsRule {
    /// The conditions (none: any message).
    pub matcher: Option<WsMatch>,
    /// The answer.
    pub send: Vec<WsSend>,
    /// The close after the answer.
    pub close: Option<WsClose>,
}

/// A route's checked `websocket`.
#[derive(Debug, Clone)]
pub struct WebSocketConfig {
    /// `on_connect`.
    pub on_connect: Vec<WsSend>,
    /// `on_message`.
    pub on_message: Vec<WsRule>,
    /// `echo`.
    pub echo: bool,
    /// `close_after`.
    pub close_after: Option<u64>,
    /// A hash of the whole definition, for the route's definition key.
    pub key: u64,
}

impl Checker<'_> {
    /// Checks `websocket` and how it sits with the route's other keys.
    pub(super) fn websocket(&mut self, spec: &RouteSpec) -> Option<WebSocketConfig> {
        let ws = spec.websocket.as_ref()?;
        let before = self.errors.len();
        let others = [
            ("body", spec.body.as_ref().map(|b| b.span())),
            ("json", spec.json.as_ref().map(|j| j.span())),
            ("file", spec.file.as_ref().map(|f| f.span())),
            ("sequence", spec.sequence.as_ref().map(|s| s.span())),
            ("stream", spec.stream.as_ref().map(|s| s.span())),
            ("sse", spec.sse.as_ref().map(|s| s.span())),
            ("dir", spec.dir.as_ref().map(|d| d.span())),
            ("fault", spec.fault.as_ref().map(|f| f.span())),
            ("status", spec.status.as_ref().map(|s| s.span())),
        ];
        for (key, span) in others {
            if let Some(span) = span {
                self.error(
                    span,
                    format!(
                        "a `websocket` route answers the upgrade (101) and then talks in messages; it has no `{key}`"
                    ),
                    "remove it (messages go in `on_connect` and `on_message`), or make it another route",
                );
            }
        }
        if let Some(m) = &spec.method {
            let only_get = match m.get_ref() {
                super::MethodsSpec::One(one) => one.eq_ignore_ascii_case("GET"),
                super::MethodsSpec::Many(list) => list.iter().all(|one| one.eq_ignore_ascii_case("GET")),
            };
            if !only_get {
                self.error(
                    m.span(),
                    "a `websocket` route answers GET: a WebSocket handshake is a GET request",
                    "remove `method` (or write `method = \"GET\"`)",
                );
            }
        }
        let template = spec.template;
        let table = ws.get_ref();
        let count = table.on_connect.len() + table.on_message.len();
        if count > MAX_WS_STEPS {
            self.error(
                ws.span(),
                format!("the websocket has {count} messages and rules, over the limit of {MAX_WS_STEPS}"),
                "use fewer",
            );
            return None;
        }
        let on_connect = self.ws_sends(&table.on_connect, template);
        let mut on_message = Vec::with_capacity(table.on_message.len());
        for rule in &table.on_message {
            if let Some(r) = self.ws_rule(rule, template) {
                on_message.push(r);
            }
        }
        let close_after = match &table.close_after {
            None => None,
            Some(n) => match u64::try_from(*n.get_ref()) {
                Ok(v) if (1..=MAX_WS_CLOSE_AFTER).contains(&v) => Some(v),
                _ => {
                    self.error(
                        n.span(),
                        format!("`close_after = {}` is out of range", n.get_ref()),
                        "use a number of incoming messages from 1 to 10000000",
                    );
                    None
                }
            },
        };
        if table.on_connect.is_empty() && table.on_message.is_empty() && !table.echo && close_after.is_none() {
            self.error(
                ws.span(),
                "the websocket does nothing: no `on_connect`, `on_message`, `echo` or `close_after`",
                "add e.g. `echo = true`, or `on_message = [{ match = { text = \"ping\" }, send = [{ text = \"pong\" }] }]`",
            );
        }
        if self.errors.len() > before {
            return None;
        }
        let mut h = std::collections::hash_map::DefaultHasher::new();
        canonical(table, &mut h);
        Some(WebSocketConfig { on_connect, on_message, echo: table.echo, close_after, key: h.finish() })
    }

    fn ws_sends(&mut self, list: &[Spanned<WsSendSpec>], template: bool) -> Vec<WsSend> {
        list.iter().filter_map(|s| self.ws_send(s, template)).collect()
    }

    fn ws_send(&mut self, spanned: &Spanned<WsSendSpec>, template: bool) -> Option<WsSend> {
        let spec = spanned.get_ref();
        let delay = self.delay(spec.delay.as_ref()).unwrap_or_default();
        let kinds: Vec<&str> = [
            spec.text.as_ref().map(|_| "text"),
            spec.json.as_ref().map(|_| "json"),
            spec.binary.as_ref().map(|_| "binary"),
            spec.file.as_ref().map(|_| "file"),
            spec.ping.as_ref().map(|_| "ping"),
        ]
        .into_iter()
        .flatten()
        .collect();
        if kinds.len() != 1 {
            let what = if kinds.is_empty() { "nothing".to_owned() } else { kinds.join(" and ") };
            self.error(
                spanned.span(),
                format!(
                    "a websocket message has one of `text`, `json`, `binary`, `file` or `ping`; this one has {what}"
                ),
                "write one per message, e.g. { text = \"hello\" }; several messages are several entries of the list",
            );
            return None;
        }
        let payload = if let Some(t) = &spec.text {
            WsPayload::Text(text_body(t, template))
        } else if let Some(j) = &spec.json {
            let json = toml_to_json(j.get_ref());
            if template {
                WsPayload::Text(BodyConfig::Template { source: json_template_source(&json), span: j.span() })
            } else {
                WsPayload::Text(BodyConfig::Fixed(Bytes::from(json.to_string())))
            }
        } else if let Some(b) = &spec.binary {
            let text: String = b.get_ref().chars().filter(|c| !c.is_ascii_whitespace()).collect();
            match base64::engine::general_purpose::STANDARD_NO_PAD.decode(text.trim_end_matches('=')) {
                Ok(bytes) => WsPayload::Binary(Bytes::from(bytes)),
                Err(e) => {
                    self.error(
                        b.span(),
                        format!("`binary` is not base64: {e}"),
                        "write the bytes in standard base64 (A-Z a-z 0-9 + /), e.g. \"AAEC/w==\", or use `file = \"data.bin\"`",
                    );
                    return None;
                }
            }
        } else if let Some(f) = &spec.file {
            let (bytes, _) = self.body_file(f)?;
            WsPayload::Binary(bytes)
        } else if let Some(p) = &spec.ping {
            if p.get_ref().len() > MAX_PING {
                self.error(
                    p.span(),
                    format!("a ping payload is at most {MAX_PING} bytes; this one has {}", p.get_ref().len()),
                    "shorten it",
                );
                return None;
            }
            WsPayload::Ping(Bytes::from(p.get_ref().clone()))
        } else {
            return None;
        };
        Some(WsSend { delay, payload })
    }

    fn ws_rule(&mut self, spanned: &Spanned<WsRuleSpec>, template: bool) -> Option<WsRule> {
        let spec = spanned.get_ref();
        let before = self.errors.len();
        let matcher = spec.matcher.as_ref().and_then(|m| self.ws_match(m));
        let send = self.ws_sends(&spec.send, template);
        let close = spec.close.as_ref().and_then(|c| self.ws_close(c));
        if spec.send.is_empty() && spec.close.is_none() {
            self.error(
                spanned.span(),
                "an `on_message` rule answers nothing: it has no `send` or `close`",
                "add `send = [{ text = \"...\" }]` or `close = { code = 1000 }`",
            );
        }
        if self.errors.len() > before {
            return None;
        }
        Some(WsRule { matcher, send, close })
    }

    fn ws_match(&mut self, spanned: &Spanned<WsMatchSpec>) -> Option<WsMatch> {
        let spec = spanned.get_ref();
        let m = WsMatch {
            text: spec.text.as_ref().map(|t| t.get_ref().clone()),
            contains: spec.contains.as_ref().map(|t| t.get_ref().clone()),
            json: spec.json.as_ref().map(|j| toml_to_json(j.get_ref())),
            regex: match &spec.regex {
                Some(r) => Some(self.regex(r)?),
                None => None,
            },
        };
        if m.text.is_none() && m.contains.is_none() && m.json.is_none() && m.regex.is_none() {
            self.error(
                spanned.span(),
                "the message `match` table has no conditions",
                "add one of `text`, `contains`, `json` or `regex`, or remove `match` to answer any message",
            );
            return None;
        }
        Some(m)
    }

    fn ws_close(&mut self, spanned: &Spanned<WsCloseSpec>) -> Option<WsClose> {
        let spec = spanned.get_ref();
        let code = match &spec.code {
            None => 1000,
            Some(c) => match u16::try_from(*c.get_ref()) {
                Ok(code) if is_sendable_close_code(code) => code,
                _ => {
                    self.error(
                        c.span(),
                        format!("`{}` is not a close code a server may send", c.get_ref()),
                        "use 1000 (normal), 1001, 1002, 1003, 1007 to 1014, or an application code from 3000 to 4999",
                    );
                    return None;
                }
            },
        };
        let reason = spec.reason.as_ref().map(|r| r.get_ref().clone()).unwrap_or_default();
        if reason.len() > MAX_CLOSE_REASON {
            let span = spec.reason.as_ref().map(|r| r.span()).unwrap_or_default();
            self.error(
                span,
                format!("a close reason is at most {MAX_CLOSE_REASON} bytes; this one has {}", reason.len()),
                "shorten it",
            );
            return None;
        }
        Some(WsClose { code, reason })
    }
}

/// Whether a server may send `code` in a close frame (RFC 6455 section 7.4: 1004 to 1006 and 1015 are reserved,
/// 1016 to 2999 belong to future protocol versions, 3000 to 4999 to applications).
pub fn is_sendable_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

fn text_body(s: &Spanned<String>, template: bool) -> BodyConfig {
    if template && has_template_syntax(s.get_ref()) {
        BodyConfig::Template { source: s.get_ref().clone(), span: s.span() }
    } else {
        BodyConfig::Fixed(Bytes::from(s.get_ref().clone()))
    }
}

/// Hashes what the table says, not where it is: a route that moved in the file keeps its counters.
fn canonical(spec: &WebSocketSpec, h: &mut impl Hasher) {
    fn send(s: &WsSendSpec, h: &mut impl Hasher) {
        s.text.as_ref().map(|t| t.get_ref()).hash(h);
        s.json.as_ref().map(|j| toml_to_json(j.get_ref()).to_string()).hash(h);
        s.binary.as_ref().map(|t| t.get_ref()).hash(h);
        s.file.as_ref().map(|t| t.get_ref()).hash(h);
        s.ping.as_ref().map(|t| t.get_ref()).hash(h);
        s.delay.as_ref().map(|t| t.get_ref()).hash(h);
    }
    for s in &spec.on_connect {
        send(s.get_ref(), h);
    }
    for r in &spec.on_message {
        let r = r.get_ref();
        if let Some(m) = &r.matcher {
            let m = m.get_ref();
            m.text.as_ref().map(|t| t.get_ref()).hash(h);
            m.contains.as_ref().map(|t| t.get_ref()).hash(h);
            m.json.as_ref().map(|j| toml_to_json(j.get_ref()).to_string()).hash(h);
            m.regex.as_ref().map(|t| t.get_ref()).hash(h);
        }
        for s in &r.send {
            send(s.get_ref(), h);
        }
        r.close
            .as_ref()
            .map(|c| {
                (c.get_ref().code.as_ref().map(|c| *c.get_ref()), c.get_ref().reason.as_ref().map(|r| r.get_ref()))
            })
            .hash(h);
    }
    spec.echo.hash(h);
    spec.close_after.as_ref().map(|c| *c.get_ref()).hash(h);
}
