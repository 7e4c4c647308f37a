//! WebSocket routes: the handshake answer, and the conversation on the upgraded connection.
//!
//! The router answers a handshake to a `websocket` route with `101 Switching Protocols` and a [`WsStart`] in the
//! response's extensions: the route's script and the request's template variables, taken when the request was
//! answered. The serving layer owns the connection: it takes hyper's upgrade and calls [`run`] on it, which plays
//! the script with tokio-tungstenite (its codec enforces the message and frame size limits).
//!
//! [`run`] is one task per connection and holds nothing else: a timer for the next scripted message, a timer for
//! the idle timeout, and a bounded queue of messages to send. A client that goes away ends the read, and with it the
//! task and everything it holds. Reading stops while the queue is full, so a client cannot make the server hold more
//! answers than [`MAX_QUEUE`].

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::header::{CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, SEC_WEBSOCKET_ACCEPT, UPGRADE};
use http::{Method, Response, StatusCode};
use minijinja::value::{Enumerator, Object, Value};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError};
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig as CodecConfig};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use crate::config::{BodyConfig, WebSocketConfig, WsClose, WsMatch, WsPayload, WsSend};
use crate::request::RequestView;
use crate::route::matching::json_contains;
use crate::route::reply::{CompileError, compile_error};
use crate::route::respond::{self, Body};
use crate::route::template::{Compiled, Needs, Templates, Vars, context};

/// The most messages waiting to be sent on one connection; reading pauses while it is full.
pub const MAX_QUEUE: usize = 1024;

/// How long a close waits for the client's close frame before the connection is dropped.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

#[derive(Debug)]
enum Payload {
    Text(Bytes),
    Template(Compiled),
    Binary(Bytes),
    Ping(Bytes),
}

#[derive(Debug)]
struct Step {
    delay: Duration,
    payload: Payload,
}

#[derive(Debug)]
struct Rule {
    matcher: Option<WsMatch>,
    send: Vec<Step>,
    close: Option<WsClose>,
}

/// A route's WebSocket script, compiled: shared by every connection of the route, and kept alive by them across a
/// reload (a connection goes on with the script it started with).
#[derive(Debug)]
pub(crate) struct WsReply {
    on_connect: Vec<Step>,
    rules: Vec<Rule>,
    echo: bool,
    close_after: Option<u64>,
    /// The script's own template environment, so that a connection does not hold the router it started on.
    templates: Templates,
    needs: Needs,
    location: String,
}

impl WsReply {
    /// Compiles the templated messages of `config` under names starting with `name` (`routes.toml:12`).
    pub fn build(config: &WebSocketConfig, seed: Option<u64>, name: &str, text: &str) -> Result<WsReply, CompileError> {
        let mut templates = Templates::new(seed);
        let mut needs = Needs::default();
        let mut compile = |sends: &[WsSend], what: &str| -> Result<Vec<Step>, CompileError> {
            let mut steps = Vec::with_capacity(sends.len());
            for (i, s) in sends.iter().enumerate() {
                let payload = match &s.payload {
                    WsPayload::Text(BodyConfig::Fixed(bytes)) => Payload::Text(bytes.clone()),
                    WsPayload::Text(BodyConfig::Template { source, span }) => {
                        let compiled = templates
                            .compile(format!("{name} websocket {what}[{i}]"), source.clone())
                            .map_err(|e| compile_error(&e, span.clone(), text))?;
                        needs = needs.union(compiled.needs);
                        Payload::Template(compiled)
                    }
                    WsPayload::Binary(bytes) => Payload::Binary(bytes.clone()),
                    WsPayload::Ping(bytes) => Payload::Ping(bytes.clone()),
                };
                steps.push(Step { delay: s.delay, payload });
            }
            Ok(steps)
        };
        let on_connect = compile(&config.on_connect, "on_connect")?;
        let mut rules = Vec::with_capacity(config.on_message.len());
        for (i, r) in config.on_message.iter().enumerate() {
            let send = compile(&r.send, &format!("on_message[{i}].send"))?;
            rules.push(Rule { matcher: r.matcher.clone(), send, close: r.close.clone() });
        }
        Ok(WsReply {
            on_connect,
            rules,
            echo: config.echo,
            close_after: config.close_after,
            templates,
            needs,
            location: name.to_owned(),
        })
    }

    /// The answer to a request for the route: `101` with a [`WsStart`] for a valid handshake, else `426` saying what
    /// a WebSocket client sends. `response` is the route's rendered answer (its headers are kept).
    pub fn handshake(
        self: &Arc<Self>,
        mut response: Response<Body>,
        vars: &Vars<'_, '_>,
        rng_key: (u64, u64),
    ) -> Response<Body> {
        let req = vars.req.view;
        let key = match check_handshake(req) {
            Ok(key) => key,
            Err(why) => {
                let text = format!(
                    "426 {} {} is a WebSocket route: {why}\nconnect with a WebSocket client, e.g. `websocat \
                     ws://HOST{}` or `new WebSocket(\"ws://HOST{}\")` (HTTP/1.1 GET with `Upgrade: websocket`)\n",
                    req.method,
                    req.uri.path(),
                    req.uri.path(),
                    req.uri.path()
                );
                let mut res = respond::text(StatusCode::UPGRADE_REQUIRED, text, req.method);
                res.headers_mut().insert(UPGRADE, HeaderValue::from_static("websocket"));
                res.headers_mut().insert(CONNECTION, HeaderValue::from_static("upgrade"));
                return res;
            }
        };
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        *response.body_mut() = Body::full(Bytes::new());
        let headers = response.headers_mut();
        headers.remove(CONTENT_TYPE);
        headers.remove(CONTENT_LENGTH);
        headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
        if let Ok(accept) = HeaderValue::from_str(&tokio_tungstenite::tungstenite::handshake::derive_accept_key(key)) {
            headers.insert(SEC_WEBSOCKET_ACCEPT, accept);
        }
        let ctx = if self.needs == Needs::default() { Value::UNDEFINED } else { context(vars, self.needs) };
        response.extensions_mut().insert(WsStart { reply: self.clone(), request: ctx, rng_key });
        response
    }
}

/// Why a request to a WebSocket route is not a handshake, or the client's key.
fn check_handshake<'a>(req: &'a RequestView<'_>) -> Result<&'a [u8], String> {
    let has_token = |name: http::HeaderName, token: &str| {
        req.headers
            .get_all(name)
            .iter()
            .any(|v| v.to_str().is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token))))
    };
    if req.method != Method::GET {
        return Err(format!("a handshake is a GET request, not {}", req.method));
    }
    if !has_token(UPGRADE, "websocket") {
        return Err("the request has no `Upgrade: websocket` header".to_owned());
    }
    if !has_token(CONNECTION, "upgrade") {
        return Err("the request has no `Connection: upgrade` header".to_owned());
    }
    if req.headers.get("sec-websocket-version").is_none_or(|v| v.as_bytes() != b"13") {
        return Err("the request has no `Sec-WebSocket-Version: 13` header".to_owned());
    }
    match req.headers.get("sec-websocket-key") {
        Some(key) if !key.is_empty() => Ok(key.as_bytes()),
        _ => Err("the request has no `Sec-WebSocket-Key` header".to_owned()),
    }
}

/// What a `101` answer hands to the serving layer: the script and the request's template variables.
#[derive(Debug, Clone)]
pub struct WsStart {
    reply: Arc<WsReply>,
    request: Value,
    rng_key: (u64, u64),
}

/// Limits of one connection, from `[server]`.
#[derive(Debug, Clone, Copy)]
pub struct WsLimits {
    /// `max_ws_message`: the largest message or frame a client may send.
    pub max_message: usize,
    /// `max_ws_messages`: how many messages a client may send.
    pub max_messages: usize,
    /// `idle_timeout`: no message either way for this long closes the connection (1001).
    pub idle: Duration,
}

/// Who ended a conversation and how, for the journal and the trace.
#[derive(Debug, Clone)]
pub struct WsEnd {
    /// `"server"`, `"client"`, or `"gone"` (the client went away without a close frame).
    pub by: &'static str,
    /// The close code, if a close frame was sent.
    pub code: Option<u16>,
    /// The close reason, or what happened.
    pub reason: String,
}

/// What the conversation tells the layers above (the journal, the trace): every message in and out, and the end.
pub trait WsEvents: Send + Sync {
    /// A message arrived (`incoming`) or was sent.
    fn message(&self, incoming: bool, message: &Message);
    /// The conversation ended.
    fn ended(&self, end: &WsEnd);
}

enum Out {
    Message(Message),
    Close(WsClose),
}

/// The codec settings of a connection: messages and frames up to `max_message`.
pub fn codec_config(limits: &WsLimits) -> CodecConfig {
    CodecConfig::default().max_message_size(Some(limits.max_message)).max_frame_size(Some(limits.max_message))
}

/// Plays `start`'s script on an upgraded connection until either side closes it, the client goes away, the idle
/// timeout passes, or `shutdown` completes (then it closes with 1001).
pub async fn run<S>(io: S, start: WsStart, limits: WsLimits, events: &dyn WsEvents, shutdown: impl Future<Output = ()>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(codec_config(&limits))).await;
    let mut session = Session { ws, start, limits, events, queue: BTreeMap::new(), seq: 0, received: 0 };
    let end = session.converse(shutdown).await;
    events.ended(&end);
}

struct Session<'e, S> {
    ws: WebSocketStream<S>,
    start: WsStart,
    limits: WsLimits,
    events: &'e dyn WsEvents,
    /// What to send and when, in order of time (then of scheduling).
    queue: BTreeMap<(Instant, u64), Out>,
    seq: u64,
    /// Data messages received.
    received: u64,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<'_, S> {
    async fn converse(&mut self, shutdown: impl Future<Output = ()>) -> WsEnd {
        tokio::pin!(shutdown);
        let reply = self.start.reply.clone();
        let now = Instant::now();
        if let Err(end) = self.schedule(now, &reply.on_connect, None, None) {
            return self.close(end).await;
        }
        let mut last_activity = Instant::now();
        // Once a close is scheduled, nothing more is read: what comes after it is not answered.
        let mut reading = true;
        loop {
            // What is due goes out now, without a trip through the timer (whose wheel ticks in milliseconds: an echo
            // would wait for the next tick).
            while let Some(((at, _), _)) = self.queue.first_key_value()
                && *at <= Instant::now()
            {
                let Some((_, out)) = self.queue.pop_first() else { break };
                match out {
                    Out::Close(close) => return self.close(close).await,
                    Out::Message(message) => {
                        if let Err(e) = self.ws.send(message.clone()).await {
                            return gone(&e);
                        }
                        self.events.message(false, &message);
                        last_activity = Instant::now();
                    }
                }
            }
            let next = self.queue.keys().next().map(|(at, _)| *at);
            // A scripted message still to come keeps the connection: its wait is the script's, not the client's.
            let idle_at = next.is_none().then(|| last_activity + self.limits.idle);
            let full = self.queue.len() >= MAX_QUEUE;
            tokio::select! {
                biased;
                () = &mut shutdown => {
                    return self.close(WsClose { code: 1001, reason: "the server is shutting down".into() }).await;
                }
                () = tokio::time::sleep_until(next.unwrap_or(now)), if next.is_some() => {
                    let Some((_, out)) = self.queue.pop_first() else { continue };
                    match out {
                        Out::Close(close) => return self.close(close).await,
                        Out::Message(message) => {
                            if let Err(e) = self.ws.send(message.clone()).await {
                                return gone(&e);
                            }
                            self.events.message(false, &message);
                            last_activity = Instant::now();
                        }
                    }
                }
                () = tokio::time::sleep_until(idle_at.unwrap_or(now)), if idle_at.is_some() => {
                    let reason = format!("idle_timeout: no message for {:?}", self.limits.idle);
                    return self.close(WsClose { code: 1001, reason }).await;
                }
                read = self.ws.next(), if reading && !full => {
                    last_activity = Instant::now();
                    let message = match read {
                        None => return WsEnd { by: "gone", code: None, reason: "the client went away".into() },
                        Some(Err(WsError::Capacity(CapacityError::MessageTooLong { size, max_size }))) => {
                            let reason = format!("message of {size} bytes over max_ws_message ({max_size})");
                            return self.close(WsClose { code: 1009, reason }).await;
                        }
                        Some(Err(e)) => return gone(&e),
                        Some(Ok(message)) => message,
                    };
                    self.events.message(true, &message);
                    match &message {
                        Message::Close(frame) => {
                            // tungstenite answers the close itself; wait for the connection to end.
                            let (code, reason) = frame
                                .as_ref()
                                .map_or((None, String::new()), |f| (Some(u16::from(f.code)), f.reason.to_string()));
                            let _ = tokio::time::timeout(CLOSE_WAIT, async {
                                while let Some(Ok(_)) = self.ws.next().await {}
                            })
                            .await;
                            return WsEnd { by: "client", code, reason };
                        }
                        Message::Text(_) | Message::Binary(_) => {}
                        // Pings are answered by tungstenite; pongs and raw frames need nothing.
                        _ => continue,
                    }
                    self.received += 1;
                    if self.received > self.limits.max_messages as u64 {
                        let reason = format!("over max_ws_messages ({})", self.limits.max_messages);
                        return self.close(WsClose { code: 1008, reason }).await;
                    }
                    match self.answer(&reply, message) {
                        Ok(closing) => reading = !closing,
                        Err(close) => return self.close(close).await,
                    }
                }
            }
        }
    }

    /// Schedules the answer to an incoming message; true when the answer ends with a close.
    fn answer(&mut self, reply: &WsReply, message: Message) -> Result<bool, WsClose> {
        let now = Instant::now();
        let text: Option<&str> = match &message {
            Message::Text(t) => Some(t.as_str()),
            Message::Binary(b) => std::str::from_utf8(b).ok(),
            _ => None,
        };
        let json: Option<serde_json::Value> = text.and_then(|t| serde_json::from_str(t).ok());
        let rule = reply.rules.iter().find(|r| match &r.matcher {
            None => true,
            Some(m) => text.is_some_and(|t| holds(m, t, json.as_ref())),
        });
        let mut close = None;
        match rule {
            Some(rule) => {
                let msg = message_value(&message, text, json.as_ref(), self.received);
                self.schedule(now, &rule.send, Some(msg), rule.close.clone())?;
                close = rule.close.clone();
            }
            None if reply.echo => self.push(now, Out::Message(message)),
            None => {}
        }
        if close.is_none()
            && let Some(n) = reply.close_after
            && self.received >= n
        {
            let at = self.queue.keys().next_back().map_or(now, |(at, _)| (*at).max(now));
            let reason = format!("close_after: {n} messages");
            self.push(at, Out::Close(WsClose { code: 1000, reason }));
            return Ok(true);
        }
        Ok(close.is_some())
    }

    /// Queues `steps` from `start` (each after its delay, counted from the one before), rendering their templates now
    /// with `message` (none for `on_connect`), then `close`. A template that fails closes the connection with 1011.
    fn schedule(
        &mut self,
        start: Instant,
        steps: &[Step],
        message: Option<Value>,
        close: Option<WsClose>,
    ) -> Result<(), WsClose> {
        let reply = self.start.reply.clone();
        let mut rendered = Vec::new().into_iter();
        let jobs: Vec<Compiled> = steps
            .iter()
            .filter_map(|s| match &s.payload {
                Payload::Template(t) => Some(t.clone()),
                _ => None,
            })
            .collect();
        if !jobs.is_empty() {
            let ctx = Value::from_object(WsContext { request: self.start.request.clone(), message });
            let (route, count) = self.start.rng_key;
            let key = (route, count.wrapping_mul(1 << 24).wrapping_add(self.received));
            rendered = match reply.templates.render_answer(key, ctx, jobs) {
                Ok(r) => r.into_iter(),
                Err(refused) => return Err(render_failed(&reply.location, &refused.0)),
            };
        }
        let mut at = start;
        for step in steps {
            at += step.delay;
            let message = match &step.payload {
                Payload::Text(bytes) => match Utf8Bytes::try_from(bytes.clone()) {
                    Ok(text) => Message::Text(text),
                    Err(_) => Message::Binary(bytes.clone()),
                },
                Payload::Template(_) => match rendered.next() {
                    Some(Ok(text)) => Message::Text(text.into()),
                    Some(Err(e)) => return Err(render_failed(&reply.location, &e.0)),
                    None => return Err(render_failed(&reply.location, "no output")),
                },
                Payload::Binary(bytes) => Message::Binary(bytes.clone()),
                Payload::Ping(bytes) => Message::Ping(bytes.clone()),
            };
            self.push(at, Out::Message(message));
        }
        if let Some(close) = close {
            self.push(at, Out::Close(close));
        }
        Ok(())
    }

    fn push(&mut self, at: Instant, out: Out) {
        self.seq += 1;
        self.queue.insert((at, self.seq), out);
    }

    /// Sends a close frame and waits (briefly) for the client's.
    async fn close(&mut self, close: WsClose) -> WsEnd {
        let frame = CloseFrame { code: CloseCode::from(close.code), reason: close.reason.clone().into() };
        let message = Message::Close(Some(frame));
        self.queue.clear();
        if self.ws.send(message.clone()).await.is_ok() {
            self.events.message(false, &message);
            let _ = tokio::time::timeout(CLOSE_WAIT, async { while let Some(Ok(_)) = self.ws.next().await {} }).await;
        }
        WsEnd { by: "server", code: Some(close.code), reason: close.reason }
    }
}

fn gone(e: &WsError) -> WsEnd {
    WsEnd { by: "gone", code: None, reason: format!("the connection failed: {e}") }
}

/// A template that failed: logged in full, and the client gets 1011 with as much of the reason as fits.
fn render_failed(location: &str, why: &str) -> WsClose {
    tracing::warn!("{location}: a websocket message template failed: {why}");
    let mut reason = format!("template error: {why}");
    if reason.len() > crate::config::MAX_CLOSE_REASON {
        let mut cut = crate::config::MAX_CLOSE_REASON;
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        reason.truncate(cut);
    }
    WsClose { code: 1011, reason }
}

fn holds(m: &WsMatch, text: &str, json: Option<&serde_json::Value>) -> bool {
    m.text.as_ref().is_none_or(|t| t == text)
        && m.contains.as_ref().is_none_or(|c| text.contains(c.as_str()))
        && m.regex.as_ref().is_none_or(|r| r.is_match(text))
        && m.json.as_ref().is_none_or(|want| json.is_some_and(|got| json_contains(got, want)))
}

/// `message` as templates see it.
fn message_value(message: &Message, text: Option<&str>, json: Option<&serde_json::Value>, count: u64) -> Value {
    let size = match message {
        Message::Text(t) => t.len(),
        Message::Binary(b) => b.len(),
        _ => 0,
    };
    let value = serde_json::json!({
        "text": text,
        "json": json,
        "binary": matches!(message, Message::Binary(_)),
        "size": size,
        "count": count,
    });
    Value::from(minijinja::value::Serde(value))
}

/// The variables of a message's templates: `message`, and the upgrade request's (`path`, `query`, `headers`...).
#[derive(Debug)]
struct WsContext {
    request: Value,
    message: Option<Value>,
}

impl Object for WsContext {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        if key.as_str() == Some("message") {
            return self.message.clone();
        }
        self.request.get_item(key).ok().filter(|v| !v.is_undefined())
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::NonEnumerable
    }
}
