//! What a WebSocket conversation leaves in the journal and the trace: its messages in and out, and how it ended.
//!
//! Bounded per connection: the first [`WS_LOG_MESSAGES`] messages are kept (each cut to [`WS_LOG_BYTES`]), later
//! ones are only counted; the trace writes the same messages and then says that it stops.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use base64::Engine as _;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use super::trace::ConnTrace;
use crate::route::websocket::{WsEnd, WsEvents};

/// How many messages of one connection the journal keeps (both ways together); later ones are only counted.
pub const WS_LOG_MESSAGES: usize = 100;

/// How many bytes of a message the journal keeps.
pub const WS_LOG_BYTES: usize = 1024;

/// The messages of one WebSocket connection, attached to the journal entry of its upgrade request.
#[derive(Debug, Default)]
pub struct WsLog {
    state: Mutex<State>,
    /// The connection's trace and the upgrade request's number, when `--trace` is on.
    pub(crate) trace: OnceLock<(Arc<ConnTrace>, u64)>,
}

#[derive(Debug, Default)]
struct State {
    messages: Vec<Record>,
    received: u64,
    sent: u64,
    end: Option<WsEnd>,
}

#[derive(Debug)]
struct Record {
    time: SystemTime,
    incoming: bool,
    kind: &'static str,
    /// Text as text, binary as base64; cut to [`WS_LOG_BYTES`].
    data: String,
    size: usize,
}

impl WsLog {
    /// The log as the admin API shows it.
    pub fn to_json(&self) -> Value {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let messages: Vec<Value> = state
            .messages
            .iter()
            .map(|m| {
                json!({
                    "time": crate::util::time::rfc3339_millis(m.time),
                    "direction": if m.incoming { "in" } else { "out" },
                    "kind": m.kind,
                    "data": m.data,
                    "size": m.size,
                    "truncated": m.size > WS_LOG_BYTES,
                })
            })
            .collect();
        let end = state.end.as_ref().map(|e| json!({ "by": e.by, "code": e.code, "reason": e.reason }));
        json!({
            "messages": messages,
            "received": state.received,
            "sent": state.sent,
            "not_kept": (state.received + state.sent).saturating_sub(state.messages.len() as u64),
            "closed": end,
        })
    }
}

fn describe(message: &Message) -> (&'static str, String, usize) {
    let cut_text = |t: &str| {
        let mut end = t.len().min(WS_LOG_BYTES);
        while !t.is_char_boundary(end) {
            end -= 1;
        }
        t[..end].to_owned()
    };
    let cut_bytes = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(&b[..b.len().min(WS_LOG_BYTES)]);
    match message {
        Message::Text(t) => ("text", cut_text(t.as_str()), t.len()),
        Message::Binary(b) => ("binary", cut_bytes(b), b.len()),
        Message::Ping(b) => ("ping", cut_text(&String::from_utf8_lossy(b)), b.len()),
        Message::Pong(b) => ("pong", cut_text(&String::from_utf8_lossy(b)), b.len()),
        Message::Close(frame) => {
            let text = frame.as_ref().map_or_else(String::new, |f| format!("{} {}", u16::from(f.code), f.reason));
            let size = text.len();
            ("close", cut_text(&text), size)
        }
        Message::Frame(f) => ("frame", String::new(), f.len()),
    }
}

impl WsEvents for WsLog {
    fn message(&self, incoming: bool, message: &Message) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if incoming {
            state.received += 1;
        } else {
            state.sent += 1;
        }
        let kept = state.messages.len() < WS_LOG_MESSAGES;
        if !kept && self.trace.get().is_none() {
            // Past the cap, a message is only counted: no copy on a long conversation's path.
            return;
        }
        let (kind, data, size) = describe(message);
        if let Some((t, n)) = self.trace.get() {
            let way = if incoming { "received" } else { "sent" };
            if kept {
                let shown: String = data.chars().take(80).collect();
                t.line(Some(*n), format_args!("websocket {way} {kind} message, {size} bytes: {shown:?}"));
            } else if state.messages.len() == WS_LOG_MESSAGES
                && state.received + state.sent == WS_LOG_MESSAGES as u64 + 1
            {
                t.line(Some(*n), format_args!("websocket: over {WS_LOG_MESSAGES} messages, the rest are not traced"));
            }
        }
        if kept {
            state.messages.push(Record { time: SystemTime::now(), incoming, kind, data, size });
        }
    }

    fn ended(&self, end: &WsEnd) {
        if let Some((t, n)) = self.trace.get() {
            let code = end.code.map_or_else(|| "no close frame".to_owned(), |c| format!("code {c}"));
            t.line(Some(*n), format_args!("websocket closed by {} ({code}): {}", end.by, end.reason));
        }
        self.state.lock().unwrap_or_else(|e| e.into_inner()).end = Some(end.clone());
    }
}
