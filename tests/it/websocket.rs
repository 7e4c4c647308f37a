//! `websocket = { ... }` routes against the real binary: a scripted conversation with a Rust client
//! (tokio-tungstenite) and with Python's `websockets`, echo and binary messages, `close_after`, the size limit
//! (close 1009), the idle timeout (close 1001), the journal's messages, clients that go away, the 426 for a plain
//! request, and load errors with line and column.

use crate::common;

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use common::{Bin, client, load_error};

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const CHAT: &str = r#"
[[route]]
path = "/chat/{room}"
template = true
websocket = { on_connect = [ { text = "welcome to {{ path.room }}", delay = "100ms" } ], on_message = [
  { match = { text = "ping" }, send = [ { text = "pong" } ] },
  { match = { json = { op = "sub" } }, send = [ { json = { ok = true, topic = "{{ message.json.topic }}", n = "{{ message.count }}" } }, { text = "then", delay = "50ms" } ] },
  { match = { regex = '^bye\b' }, send = [ { text = "see you, {{ query.name }}" } ], close = { code = 4000, reason = "bye" } },
  { send = [ { binary = "AAEC/w==" }, { ping = "are you there" } ] },
] }
"#;

async fn connect(url: &str) -> Ws {
    let (ws, res) = tokio::time::timeout(Duration::from_secs(10), tokio_tungstenite::connect_async(url))
        .await
        .expect("the handshake took over 10 s")
        .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"));
    assert_eq!(res.status(), 101);
    ws
}

/// The next message other than pings and pongs, within 10 s.
async fn next(ws: &mut Ws) -> Message {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("no message within 10 s")
            .expect("the connection ended")
            .expect("a read error");
        if !matches!(m, Message::Pong(_)) {
            return m;
        }
    }
}

fn text(m: Message) -> String {
    match m {
        Message::Text(t) => t.to_string(),
        other => panic!("want a text message, got {other:?}"),
    }
}

fn close_code(m: &Message) -> (u16, String) {
    match m {
        Message::Close(Some(f)) => (u16::from(f.code), f.reason.to_string()),
        other => panic!("want a close frame, got {other:?}"),
    }
}

#[tokio::test]
async fn a_rust_client_runs_a_scripted_conversation() {
    let bin = Bin::start(CHAT);
    let start = Instant::now();
    let mut ws = connect(&format!("ws://{}/chat/rust?name=ada", bin.addr)).await;
    assert_eq!(text(next(&mut ws).await), "welcome to rust");
    assert!(start.elapsed() >= Duration::from_millis(90), "on_connect waits its delay: {:?}", start.elapsed());

    ws.send(Message::text("ping")).await.unwrap();
    assert_eq!(text(next(&mut ws).await), "pong");

    ws.send(Message::text(r#"{"op":"sub","topic":"news","extra":[1]}"#)).await.unwrap();
    let got: serde_json::Value = serde_json::from_str(&text(next(&mut ws).await)).unwrap();
    assert_eq!(got, serde_json::json!({ "ok": true, "topic": "news", "n": 2 }));
    assert_eq!(text(next(&mut ws).await), "then");

    // No rule's `match` holds: the catch-all rule sends binary (base64 in the file), then a ping.
    ws.send(Message::text("something else")).await.unwrap();
    assert_eq!(next(&mut ws).await, Message::Binary(vec![0u8, 1, 2, 255].into()));
    assert_eq!(next(&mut ws).await, Message::Ping("are you there".into()));

    ws.send(Message::text("bye now")).await.unwrap();
    assert_eq!(text(next(&mut ws).await), "see you, ada");
    assert_eq!(close_code(&next(&mut ws).await), (4000, "bye".to_owned()));
}

#[tokio::test]
async fn echo_sends_back_text_and_binary_and_close_after_ends_the_conversation() {
    let toml = "[[route]]\npath = \"/echo\"\nwebsocket = { echo = true, close_after = 3 }\n";
    let bin = Bin::start(toml);
    let mut ws = connect(&format!("ws://{}/echo", bin.addr)).await;
    ws.send(Message::text("one")).await.unwrap();
    assert_eq!(text(next(&mut ws).await), "one");
    ws.send(Message::binary(vec![9u8, 8, 7])).await.unwrap();
    assert_eq!(next(&mut ws).await, Message::Binary(vec![9u8, 8, 7].into()));
    ws.send(Message::text("three")).await.unwrap();
    assert_eq!(text(next(&mut ws).await), "three");
    let (code, reason) = close_code(&next(&mut ws).await);
    assert_eq!(code, 1000);
    assert!(reason.contains("close_after"), "{reason}");
}

#[tokio::test]
async fn a_message_over_max_ws_message_closes_with_1009() {
    let toml = "[server]\nmax_ws_message = \"1KiB\"\n\n[[route]]\npath = \"/echo\"\nwebsocket = { echo = true }\n";
    let bin = Bin::start(toml);
    let mut ws = connect(&format!("ws://{}/echo", bin.addr)).await;
    ws.send(Message::text("x".repeat(1000))).await.unwrap();
    assert_eq!(text(next(&mut ws).await).len(), 1000, "under the limit: echoed");
    ws.send(Message::text("y".repeat(2048))).await.unwrap();
    let (code, reason) = close_code(&next(&mut ws).await);
    assert_eq!(code, u16::from(CloseCode::Size));
    assert_eq!(code, 1009);
    assert!(reason.contains("max_ws_message"), "the reason names the setting: {reason}");
}

#[tokio::test]
async fn max_ws_messages_closes_with_1008() {
    let toml = "[server]\nmax_ws_messages = 2\n\n[[route]]\npath = \"/echo\"\nwebsocket = { echo = true }\n";
    let bin = Bin::start(toml);
    let mut ws = connect(&format!("ws://{}/echo", bin.addr)).await;
    for m in ["a", "b"] {
        ws.send(Message::text(m)).await.unwrap();
        assert_eq!(text(next(&mut ws).await), m);
    }
    ws.send(Message::text("c")).await.unwrap();
    assert_eq!(close_code(&next(&mut ws).await).0, 1008);
}

#[tokio::test]
async fn a_silent_connection_is_closed_after_idle_timeout_with_1001() {
    let toml = "[server]\nidle_timeout = \"400ms\"\n\n[[route]]\npath = \"/echo\"\nwebsocket = { echo = true }\n";
    let bin = Bin::start(toml);
    let mut ws = connect(&format!("ws://{}/echo", bin.addr)).await;
    // Talking keeps it open past the timeout.
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        ws.send(Message::text("still here")).await.unwrap();
        assert_eq!(text(next(&mut ws).await), "still here");
    }
    let silent = Instant::now();
    let (code, reason) = close_code(&next(&mut ws).await);
    assert_eq!(code, 1001);
    assert!(reason.contains("idle_timeout"), "{reason}");
    assert!(silent.elapsed() >= Duration::from_millis(350), "closed too early: {:?}", silent.elapsed());
}

#[tokio::test]
async fn the_journal_shows_the_messages_in_and_out() {
    let bin = Bin::start(CHAT);
    let mut ws = connect(&format!("ws://{}/chat/j", bin.addr)).await;
    assert_eq!(text(next(&mut ws).await), "welcome to j");
    ws.send(Message::text("ping")).await.unwrap();
    assert_eq!(text(next(&mut ws).await), "pong");
    ws.close(None).await.unwrap();
    while let Some(Ok(_)) = ws.next().await {}
    let deadline = Instant::now() + Duration::from_secs(10);
    let entry = loop {
        let journal: serde_json::Value =
            client().get(bin.url("/__admin/requests")).send().await.unwrap().json().await.unwrap();
        let entries = journal["requests"].as_array().cloned().unwrap_or_default();
        let entry = entries.into_iter().find(|e| e["path"] == "/chat/j").expect("the upgrade request is journaled");
        if !entry["websocket"]["closed"].is_null() || Instant::now() > deadline {
            break entry;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(entry["status"], 101);
    let ws = &entry["websocket"];
    let messages: Vec<(String, String, String)> = ws["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let s = |k: &str| m[k].as_str().unwrap_or_default().to_owned();
            (s("direction"), s("kind"), s("data"))
        })
        .collect();
    let want = |d: &str, k: &str, t: &str| (d.to_owned(), k.to_owned(), t.to_owned());
    assert_eq!(
        messages[..3],
        [want("out", "text", "welcome to j"), want("in", "text", "ping"), want("out", "text", "pong")]
    );
    assert_eq!(ws["closed"]["by"], "client", "{ws}");
}

#[tokio::test]
async fn clients_that_go_away_free_their_connections() {
    let toml = "[[route]]\npath = \"/ws\"\nwebsocket = { on_connect = [ { text = \"hi\" }, { text = \"later\", delay = \"1h\" } ] }\n\n[[route]]\npath = \"/hello\"\nbody = \"hi\"\n";
    let bin = Bin::start(toml);
    let mut open = Vec::new();
    for _ in 0..20 {
        let mut ws = connect(&format!("ws://{}/ws", bin.addr)).await;
        assert_eq!(text(next(&mut ws).await), "hi");
        open.push(ws);
    }
    assert!(bin.open_connections().await >= 20);
    // Dropped without a close frame: the sockets just close.
    drop(open);
    bin.wait_until_connections_are_freed().await;
    assert_eq!(client().get(bin.url("/hello")).send().await.unwrap().text().await.unwrap(), "hi");
}

#[tokio::test]
async fn a_plain_request_to_a_websocket_route_gets_426_saying_what_to_do() {
    let bin = Bin::start("[[route]]\npath = \"/ws\"\nwebsocket = { echo = true }\n");
    let res = client().get(bin.url("/ws")).send().await.unwrap();
    assert_eq!(res.status(), 426);
    assert_eq!(res.headers()["upgrade"], "websocket");
    let body = res.text().await.unwrap();
    assert!(body.contains("is a WebSocket route") && body.contains("Upgrade: websocket"), "{body}");
}

/// Python's `websockets` (installed into a folder of the test's own with pip when it is missing) runs a
/// conversation: the greeting, a JSON question and its templated answer, then a close with the rule's code.
#[test]
fn a_python_websockets_client_runs_a_scripted_conversation() {
    let Some(pythonpath) = python_websockets() else {
        eprintln!("python3 with pip is not available: the Python client was not tried");
        return;
    };
    let bin = Bin::start(CHAT);
    let script = r#"
import asyncio, json, sys
from websockets.asyncio.client import connect

async def main(url):
    async with connect(url) as ws:
        assert await ws.recv() == "welcome to py", "greeting"
        await ws.send(json.dumps({"op": "sub", "topic": "py-news"}))
        got = json.loads(await ws.recv())
        assert got == {"ok": True, "topic": "py-news", "n": 1}, got
        assert await ws.recv() == "then"
        await ws.send("bye!")
        assert await ws.recv() == "see you, grace"
        try:
            await ws.recv()
        except Exception:
            pass
        print("closed", ws.close_code, ws.close_reason)

asyncio.run(asyncio.wait_for(main(sys.argv[1]), 20))
"#;
    let out = std::process::Command::new("python3")
        .env("PYTHONPATH", &pythonpath)
        .arg("-c")
        .arg(script)
        .arg(format!("ws://{}/chat/py?name=grace", bin.addr))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "python failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout.trim(), "closed 4000 bye");
}

/// A folder on `PYTHONPATH` where `import websockets` works: the system's, or one pip installs it into (kept in the
/// target folder, so that it is installed once).
fn python_websockets() -> Option<String> {
    let works = |path: &str| {
        std::process::Command::new("python3")
            .env("PYTHONPATH", path)
            .args(["-c", "import websockets.asyncio.client"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if works("") {
        return Some(String::new());
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target").join("py-websockets");
    let dir =
        std::env::var_os("CARGO_TARGET_DIR").map(|t| std::path::PathBuf::from(t).join("py-websockets")).unwrap_or(dir);
    let path = dir.to_string_lossy().into_owned();
    if works(&path) {
        return Some(path);
    }
    let installed = std::process::Command::new("python3")
        .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--target", &path, "websockets"])
        .status()
        .is_ok_and(|s| s.success());
    (installed && works(&path)).then_some(path)
}

#[test]
fn bad_websocket_keys_and_values_are_load_errors_with_line_and_column() {
    let cases = [
        ("[[route]]\npath = \"/ws\"\nwebsocket = { eco = true }\n", "routes.toml:3:15: unknown field `eco`"),
        (
            "[[route]]\npath = \"/ws\"\nwebsocket = { on_connect = [ { txt = \"hi\" } ] }\n",
            "routes.toml:3:32: unknown field `txt`",
        ),
        (
            "[[route]]\npath = \"/ws\"\nwebsocket = { on_connect = [ { text = \"a\", binary = \"AA==\" } ] }\n",
            "routes.toml:3:30: this one has text and binary",
        ),
        (
            "[[route]]\npath = \"/ws\"\nwebsocket = { on_connect = [ { binary = \"not base64!\" } ] }\n",
            "routes.toml:3:41: `binary` is not base64",
        ),
        (
            "[[route]]\npath = \"/ws\"\nwebsocket = { on_connect = [ { text = \"a\", delay = \"5 parsecs\" } ] }\n",
            "routes.toml:3:52: is not a delay",
        ),
        (
            "[[route]]\npath = \"/ws\"\nwebsocket = { on_message = [ { match = { regex = \"(\" }, send = [ { text = \"x\" } ] } ] }\n",
            "routes.toml:3:50: is not a usable regex",
        ),
        (
            "[[route]]\npath = \"/ws\"\nwebsocket = { on_message = [ { close = { code = 1005 } } ] }\n",
            "routes.toml:3:49: `1005` is not a close code a server may send",
        ),
        (
            "[[route]]\npath = \"/ws\"\nwebsocket = { on_message = [ { match = { text = \"x\" } } ] }\n",
            "routes.toml:3:30: answers nothing",
        ),
        (
            "[[route]]\npath = \"/ws\"\nwebsocket = { on_message = [ { match = {}, send = [ { text = \"x\" } ] } ] }\n",
            "routes.toml:3:40: has no conditions",
        ),
        (
            "[[route]]\npath = \"/ws\"\nwebsocket = { close_after = 0 }\n",
            "routes.toml:3:29: `close_after = 0` is out of range",
        ),
        ("[[route]]\npath = \"/ws\"\nwebsocket = {}\n", "routes.toml:3:13: the websocket does nothing"),
        ("[[route]]\npath = \"/ws\"\nbody = \"x\"\nwebsocket = { echo = true }\n", "routes.toml:3:8: it has no `body`"),
        (
            "[[route]]\npath = \"/ws\"\nmethod = \"POST\"\nwebsocket = { echo = true }\n",
            "routes.toml:3:10: a `websocket` route answers GET",
        ),
        (
            "[[route]]\npath = \"/ws\"\ntemplate = true\nwebsocket = { on_connect = [ { text = \"{{ nope(\" } ] }\n",
            "routes.toml:4:39: template error",
        ),
        ("[server]\nmax_ws_message = \"lots\"\n", "routes.toml:2:18: is not a size for `max_ws_message`"),
        ("[server]\nmax_ws_messages = 0\n", "routes.toml:2:19: `max_ws_messages` must be at least 1"),
    ];
    for (toml, want) in cases {
        let got = load_error(toml);
        let (place, message) = want.split_at(want.find(": ").unwrap_or(want.len()));
        assert!(
            got.contains(&format!("{place}\n")) || got.contains(&format!("{place}:")),
            "for:\n{toml}\nwant {place:?} in:\n{got}"
        );
        assert!(got.contains(message.trim_start_matches(": ")), "for:\n{toml}\nwant {message:?} in:\n{got}");
    }
}

#[tokio::test]
async fn trace_shows_each_message_and_the_close() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("routes.toml"), CHAT).unwrap();
    let mut bin = Bin::command()
        .in_dir(dir)
        .args(["routes.toml", "--port", "0", "--no-watch", "--log-level", "warn", "--trace"])
        .start();
    let mut ws = connect(&format!("ws://{}/chat/t", bin.addr)).await;
    assert_eq!(text(next(&mut ws).await), "welcome to t");
    ws.send(Message::text("ping")).await.unwrap();
    assert_eq!(text(next(&mut ws).await), "pong");
    ws.send(Message::text("bye")).await.unwrap();
    assert_eq!(text(next(&mut ws).await), "see you, ");
    assert_eq!(close_code(&next(&mut ws).await).0, 4000);
    let sent =
        bin.line("the greeting traced", |l| l.contains("websocket sent text message") && l.contains("welcome to t"));
    assert!(sent.starts_with("trace conn="), "{sent}");
    bin.line("the ping traced", |l| l.contains("websocket received text message, 4 bytes: \"ping\""));
    bin.line("the close traced", |l| l.contains("websocket closed by server (code 4000): bye"));
}

/// RFC 8441: an HTTP/2 client opens the WebSocket with an extended CONNECT (`:protocol = websocket`) on a stream of
/// its connection, and the route's script runs on that stream; a plain request on the same connection still works.
#[tokio::test]
async fn http2_extended_connect_opens_a_websocket_on_a_stream() {
    use http_body_util::{BodyExt, Empty};
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use tokio_tungstenite::tungstenite::protocol::Role;

    let bin = Bin::start(
        "[[route]]\npath = \"/ws\"\nwebsocket = { on_connect = [{ text = \"over h2\" }], echo = true }\n\n[[route]]\npath = \"/hello\"\nbody = \"hi\"\n",
    );
    let tcp = tokio::net::TcpStream::connect(bin.addr).await.unwrap();
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp)).await.unwrap();
    tokio::spawn(conn);
    // A first request lets the server's SETTINGS (with ENABLE_CONNECT_PROTOCOL) arrive before the CONNECT.
    let hello = http::Request::get(format!("http://{}/hello", bin.addr)).body(Empty::<bytes::Bytes>::new()).unwrap();
    let res = send.send_request(hello).await.unwrap();
    assert_eq!(res.into_body().collect().await.unwrap().to_bytes(), "hi");

    let mut connect = http::Request::builder()
        .method(http::Method::CONNECT)
        .uri(format!("http://{}/ws", bin.addr))
        .header("sec-websocket-version", "13")
        .body(Empty::<bytes::Bytes>::new())
        .unwrap();
    connect.extensions_mut().insert(hyper::ext::Protocol::from_static("websocket"));
    let mut res = send.send_request(connect).await.unwrap();
    assert_eq!(res.status(), 200, "an extended CONNECT is answered 200 over HTTP/2");
    let upgraded = hyper::upgrade::on(&mut res).await.unwrap();
    let mut ws = tokio_tungstenite::WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Client, None).await;
    let wait = Duration::from_secs(10);
    assert_eq!(tokio::time::timeout(wait, ws.next()).await.unwrap().unwrap().unwrap(), Message::text("over h2"));
    ws.send(Message::text("echo me")).await.unwrap();
    assert_eq!(tokio::time::timeout(wait, ws.next()).await.unwrap().unwrap().unwrap(), Message::text("echo me"));
}

/// An open WebSocket holds its connection's slot under `max_connections` (it is never idle-evicted: it has a
/// conversation in flight), and gives it back when it closes.
#[tokio::test]
async fn an_open_websocket_counts_under_max_connections() {
    let toml = "[server]\nmax_connections = 1\n\n[[route]]\npath = \"/ws\"\nwebsocket = { echo = true }\n\n[[route]]\npath = \"/hello\"\nbody = \"hi\"\n";
    let bin = Bin::start(toml);
    let mut ws = connect(&format!("ws://{}/ws", bin.addr)).await;
    ws.send(Message::text("x")).await.unwrap();
    assert_eq!(text(next(&mut ws).await), "x");
    // The one slot is the WebSocket's: another client waits (bounded here by a timeout).
    let waiting = tokio::spawn(client().get(bin.url("/hello")).send());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!waiting.is_finished(), "a second connection was served while the WebSocket held the only slot");
    ws.close(None).await.unwrap();
    while let Some(Ok(_)) = ws.next().await {}
    let res = tokio::time::timeout(Duration::from_secs(10), waiting).await.expect("served once the WebSocket closed");
    assert_eq!(res.unwrap().unwrap().text().await.unwrap(), "hi");
}

/// `file = "..."` sends the file's bytes as one binary message (read when the routes load).
#[tokio::test]
async fn a_file_is_sent_as_a_binary_message() {
    let dir = tempfile::tempdir().unwrap();
    let bytes: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    std::fs::write(dir.path().join("frame.bin"), &bytes).unwrap();
    let toml = "[[route]]\npath = \"/f\"\nwebsocket = { on_connect = [{ file = \"frame.bin\" }] }\n";
    std::fs::write(dir.path().join("routes.toml"), toml).unwrap();
    let bin =
        Bin::command().in_dir(dir).args(["routes.toml", "--port", "0", "--no-watch", "--log-level", "warn"]).start();
    let mut ws = connect(&format!("ws://{}/f", bin.addr)).await;
    assert_eq!(next(&mut ws).await, Message::Binary(bytes.into()));
}
