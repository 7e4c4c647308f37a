//! Timed streams and server-sent events: each item arrives when its delay has passed (HTTP/1.1 chunks and HTTP/2
//! DATA frames, seen by a real client that records arrival times), the SSE wire format and `Last-Event-ID`, load
//! errors for bad values, and clients that leave mid-stream free everything (the real binary's CPU and connections).

use crate::common;

use std::time::{Duration, Instant};

use common::{Bin, TestServer, client, load_error};

/// Reads the whole body chunk by chunk; each chunk with its arrival time since `start`.
async fn chunks(mut res: reqwest::Response, start: Instant) -> Vec<(Duration, String)> {
    let mut out = Vec::new();
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(10), res.chunk()).await.unwrap().unwrap() {
        out.push((start.elapsed(), String::from_utf8_lossy(&chunk).into_owned()));
    }
    out
}

/// Checks that item `i` of `got` (joined across chunks by `marker`) arrived no earlier than `i * step` (minus a
/// little timer slack), so that the items were spread over time rather than sent together.
fn assert_spread(got: &[(Duration, String)], markers: &[&str], step: Duration) {
    for (i, marker) in markers.iter().enumerate() {
        let at = got
            .iter()
            .find(|(_, text)| text.contains(marker))
            .unwrap_or_else(|| panic!("{marker:?} never arrived: {got:?}"))
            .0;
        let due = step * (i as u32 + 1);
        assert!(
            at + Duration::from_millis(20) >= due,
            "{marker:?} arrived at {at:?}, before its time {due:?}: {got:?}"
        );
    }
}

const TICKER: &str = r#"
[[route]]
path = "/tick"
template = true
stream = [
  { data = "one {{ query.n }}\n", delay = "150ms" },
  { data = "two\n", delay = "150ms" },
  { data = "three\n", delay = "150ms" },
]
"#;

#[tokio::test]
async fn stream_items_arrive_over_http1_as_separate_chunks_after_their_delays() {
    let server = TestServer::start(TICKER).await;
    let start = Instant::now();
    let res = client().get(server.url("/tick?n=7")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["transfer-encoding"], "chunked");
    assert!(res.headers().get("content-length").is_none());
    let got = chunks(res, start).await;
    let body: String = got.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(body, "one 7\ntwo\nthree\n", "a template item keeps its trailing line break");
    assert_spread(&got, &["one 7", "two", "three"], Duration::from_millis(150));
    assert!(got.len() >= 3, "each item is its own chunk: {got:?}");
    server.stop().await;
}

#[tokio::test]
async fn stream_items_arrive_over_http2_as_separate_data_frames() {
    let server = TestServer::start(TICKER).await;
    let h2 = reqwest::Client::builder().no_proxy().http2_prior_knowledge().build().unwrap();
    let start = Instant::now();
    let res = h2.get(server.url("/tick?n=1")).send().await.unwrap();
    assert_eq!(res.version(), reqwest::Version::HTTP_2);
    let got = chunks(res, start).await;
    assert_spread(&got, &["one 1", "two", "three"], Duration::from_millis(150));
    server.stop().await;
}

#[tokio::test]
async fn a_repeating_stream_starts_over_and_ends_after_count_items() {
    let toml = r#"
[[route]]
path = "/loop"
stream = [{ data = "a" }, { data = "b" }]
repeat = true
count = 5
"#;
    let server = TestServer::start(toml).await;
    let body = client().get(server.url("/loop")).send().await.unwrap().text().await.unwrap();
    assert_eq!(body, "ababa");
    // HEAD: the head alone, no length promised.
    let res = client().head(server.url("/loop")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().get("content-length").is_none());
    server.stop().await;
}

const EVENTS: &str = r#"
[[route]]
path = "/events"
sse = [
  { event = "greeting", data = "hello\nworld", id = "1" },
  { data = { text = "json", n = 2 }, id = "2", delay = "150ms", retry = 3000 },
  { comment = "keep-alive", delay = "150ms" },
  { data = "bye", id = "3", delay = "150ms" },
]
"#;

#[tokio::test]
async fn sse_events_are_framed_and_spread_by_their_delays() {
    let server = TestServer::start(EVENTS).await;
    let start = Instant::now();
    let res = client().get(server.url("/events")).send().await.unwrap();
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    assert_eq!(res.headers()["cache-control"], "no-cache");
    let got = chunks(res, start).await;
    let body: String = got.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(
        body,
        "event: greeting\nid: 1\ndata: hello\ndata: world\n\n\
         id: 2\nretry: 3000\ndata: {\"text\":\"json\",\"n\":2}\n\n\
         : keep-alive\n\n\
         id: 3\ndata: bye\n\n"
    );
    // The first event has no delay; the next three come 150 ms apart.
    assert_spread(&got, &["id: 2", "keep-alive", "id: 3"], Duration::from_millis(150));
    server.stop().await;
}

#[tokio::test]
async fn sse_resumes_after_last_event_id() {
    let server = TestServer::start(EVENTS).await;
    let body = |id: &'static str| {
        let req = client().get(server.url("/events")).header("last-event-id", id);
        async move { req.send().await.unwrap().text().await.unwrap() }
    };
    let after_2 = body("2").await;
    assert_eq!(after_2, ": keep-alive\n\nid: 3\ndata: bye\n\n");
    assert_eq!(body("3").await, "", "after the last event there is nothing left");
    assert!(body("unknown").await.starts_with("event: greeting\n"), "an unknown id starts over");
    server.stop().await;
}

#[tokio::test]
async fn sse_data_can_be_a_template() {
    let toml = r#"
[[route]]
path = "/chat/{id}"
template = true
sse = [
  { data = { id = "{{ path.id }}", n = "{{ 1 + 1 }}" } },
  { data = "line {{ path.id }}\nnext" },
]
"#;
    let server = TestServer::start(toml).await;
    let body = client().get(server.url("/chat/x9")).send().await.unwrap().text().await.unwrap();
    assert_eq!(body, "data: {\"id\":\"x9\",\"n\":2}\n\ndata: line x9\ndata: next\n\n");
    server.stop().await;
}

#[test]
fn bad_stream_values_are_load_errors_with_line_and_column() {
    let cases: &[(&str, &str)] = &[
        (
            "[[route]]\npath = \"/s\"\nstream = [{ data = \"a\", delay = \"5 parsecs\" }]\n",
            "routes.toml:3:33: `5 parsecs` is not a delay",
        ),
        ("[[route]]\npath = \"/s\"\nstream = []\n", "routes.toml:3:10: the stream is empty"),
        (
            "[[route]]\npath = \"/s\"\nstream = [{ data = \"a\" }]\nrepeat = true\n",
            "routes.toml:4:10: `repeat = true` without a `count`",
        ),
        (
            "[[route]]\npath = \"/s\"\nstream = [{ data = \"a\" }]\nrepeat = true\ncount = 0\n",
            "routes.toml:5:9: `count = 0` is out of range",
        ),
        (
            "[[route]]\npath = \"/s\"\nstream = [{ data = \"a\" }]\ncount = 3\n",
            "routes.toml:4:9: `count` without `repeat = true`",
        ),
        (
            "[[route]]\npath = \"/s\"\nbody = \"x\"\nstream = [{ data = \"a\" }]\n",
            "routes.toml:3:8: a `stream` or `sse` route sends its items as its body",
        ),
        (
            "[[route]]\npath = \"/s\"\nsse = [{ event = \"a\\nb\", data = \"x\" }]\n",
            "routes.toml:3:18: the SSE `event` has a line break",
        ),
        (
            "[[route]]\npath = \"/s\"\nsse = [{ data = \"x\", retry = -1 }]\n",
            "routes.toml:3:30: `retry = -1` is negative",
        ),
        ("[[route]]\npath = \"/s\"\nsse = [{ delay = \"1s\" }]\n", "routes.toml:3:8: an SSE event has no `data`"),
        ("[[route]]\npath = \"/s\"\nstream = [{ dat = \"x\" }]\n", "routes.toml:3:"),
        (
            "[[route]]\npath = \"/s\"\nbody = \"x\"\nrepeat = true\n",
            "routes.toml:4:10: `repeat = true` is for a `stream` or `sse` route",
        ),
        (
            "[[route]]\npath = \"/s\"\ntemplate = true\nstream = [{ data = \"{{ nope(\" }]\n",
            "routes.toml:4:20: template error",
        ),
    ];
    for (toml, want) in cases {
        // `routes.toml:LINE:COL: message`: the error names the place (`--> path:LINE:COL`) and says what is wrong.
        let got = load_error(toml);
        let (place, message) = want.split_at(want.find(": ").unwrap_or(want.len()));
        let place = place.trim_end_matches(':');
        assert!(
            got.contains(&format!("{place}\n")) || got.contains(&format!("{place}:")),
            "for:\n{toml}\nwant {place:?} in:\n{got}"
        );
        assert!(got.contains(message.trim_start_matches(": ")), "for:\n{toml}\nwant {message:?} in:\n{got}");
    }
}

/// 50 clients open an endless ticker (an item every millisecond), read its first item and leave. The server must
/// stop their timers at once: afterwards its connections are back to zero, it spends (next to) no CPU, and the next
/// request is answered. A stream driven by a task of its own, or a body kept after the client left, would keep
/// ticking 50,000 times a second.
#[tokio::test]
async fn clients_that_leave_mid_stream_free_their_streams() {
    let toml = "[[route]]\npath = \"/tick\"\nstream = [{ data = \"tick\\n\", delay = \"1ms\" }]\nrepeat = true\ncount = 10000000\n\n[[route]]\npath = \"/hello\"\nbody = \"hi\"\n";
    let bin = Bin::start_with(toml, &["--threads", "2"], std::process::Stdio::inherit());
    let url = format!("http://{}", bin.addr);
    let mut open = Vec::new();
    for _ in 0..50 {
        let mut res = client().get(format!("{url}/tick")).send().await.unwrap();
        let first = res.chunk().await.unwrap().unwrap();
        assert!(first.starts_with(b"tick"));
        open.push(res);
    }
    // While they are open, the tickers do run (this is what must stop).
    let busy = cpu_ticks_over(bin.pid(), Duration::from_millis(500)).await;
    drop(open);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let open = scrape_open_connections(&url).await;
        // The scrape's own connection counts as one.
        if open <= 1 {
            break;
        }
        assert!(Instant::now() < deadline, "{open} connections still open after the clients left");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let idle = cpu_ticks_over(bin.pid(), Duration::from_millis(500)).await;
    eprintln!("CPU ticks over 500 ms: {busy} with 50 open streams, {idle} after they left");
    assert!(idle * 4 <= busy.max(4), "the server still spends CPU after the clients left: {idle} ticks (was {busy})");
    assert!(idle <= 5, "the server still spends CPU after the clients left: {idle} ticks in 500 ms");
    let hello = client().get(format!("{url}/hello")).send().await.unwrap().text().await.unwrap();
    assert_eq!(hello, "hi");
}

/// User plus system CPU time of `pid`, in clock ticks, spent over `window`.
async fn cpu_ticks_over(pid: i32, window: Duration) -> u64 {
    let read = || {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        // The fields after the command name (which may hold spaces) start after the last `)`.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    };
    let before = read();
    tokio::time::sleep(window).await;
    read() - before
}

async fn scrape_open_connections(url: &str) -> i64 {
    let text = client().get(format!("{url}/__admin/metrics")).send().await.unwrap().text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("hotroute_open_connections "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no open_connections in:\n{text}"))
}

/// The wait between two items is the stream's own, not a stalled client: a delay longer than `write_timeout` does
/// not get the connection closed by the watchdog (it did before the body told the watchdog about its waits).
#[tokio::test]
async fn a_delay_longer_than_write_timeout_does_not_cut_the_stream() {
    let toml = "[server]\nwrite_timeout = \"1s\"\n\n[[route]]\npath = \"/slow\"\nstream = [{ data = \"a\\n\" }, { data = \"b\\n\", delay = \"2500ms\" }]\n";
    let server = TestServer::start(toml).await;
    for h2 in [false, true] {
        let mut builder = reqwest::Client::builder().no_proxy();
        if h2 {
            builder = builder.http2_prior_knowledge();
        }
        let res = builder.build().unwrap().get(server.url("/slow")).send().await.unwrap();
        let got = chunks(res, Instant::now()).await;
        let body: String = got.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(body, "a\nb\n", "h2: {h2}");
    }
    server.stop().await;
}

/// `examples/openai-stream.toml` answers a streamed chat completion the way OpenAI's API does: `data: {...}` chunks
/// spread over time, whose deltas join into the text, then `data: [DONE]`; without `"stream": true`, one JSON answer.
#[tokio::test]
async fn the_openai_example_streams_chunks_then_done() {
    let example = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/openai-stream.toml")).unwrap();
    let server = TestServer::start(&example).await;
    let request = serde_json::json!({ "model": "gpt-4o-mini", "stream": true, "messages": [{ "role": "user", "content": "hi" }] });
    let start = Instant::now();
    let res = client().post(server.url("/v1/chat/completions")).json(&request).send().await.unwrap();
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let got = chunks(res, start).await;
    let body: String = got.iter().map(|(_, t)| t.as_str()).collect();
    let events: Vec<&str> = body.split("\n\n").filter(|e| !e.is_empty()).collect();
    assert_eq!(events.last(), Some(&"data: [DONE]"));
    let mut text = String::new();
    for event in &events[..events.len() - 1] {
        let chunk: serde_json::Value = serde_json::from_str(event.strip_prefix("data: ").unwrap()).unwrap();
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert_eq!(chunk["model"], "gpt-4o-mini");
        text.push_str(chunk["choices"][0]["delta"]["content"].as_str().unwrap_or(""));
    }
    assert_eq!(text, "Hello from hotroute!");
    assert_spread(&got, &["\"Hello\"", "\" from\"", "\" hotroute!\""], Duration::from_millis(60));

    let plain = serde_json::json!({ "model": "gpt-4o-mini", "messages": [] });
    let res = client().post(server.url("/v1/chat/completions")).json(&plain).send().await.unwrap();
    let answer: serde_json::Value = res.json().await.unwrap();
    assert_eq!(answer["choices"][0]["message"]["content"], "Hello from hotroute!");
    server.stop().await;
}

/// `hotroute_stream_lateness_seconds` counts each delayed chunk once, when it leaves, against when it was due: in a
/// process of its own (the count is process-wide), three delayed events and one sent at once make a count of three,
/// each far within a second.
#[tokio::test]
async fn the_metrics_count_how_late_each_delayed_chunk_left() {
    let bin = Bin::start(
        r#"
[[route]]
path = "/events"
sse = [{ data = "now" }, { data = "a", delay = "30ms" }, { data = "b", delay = "30ms" }, { data = "c", delay = "30ms" }]
"#,
    );
    let metric = |text: &str, line: &str| -> f64 {
        let value = text.lines().find_map(|l| l.strip_prefix(line)).unwrap_or_else(|| panic!("no {line}: {text}"));
        value.trim().parse().unwrap()
    };
    let before = client().get(bin.url("/__admin/metrics")).send().await.unwrap().text().await.unwrap();
    assert_eq!(metric(&before, "hotroute_stream_lateness_seconds_count "), 0.0, "{before}");
    let body = client().get(bin.url("/events")).send().await.unwrap().text().await.unwrap();
    assert_eq!(body.matches("data: ").count(), 4, "{body}");
    let after = client().get(bin.url("/__admin/metrics")).send().await.unwrap().text().await.unwrap();
    assert_eq!(metric(&after, "hotroute_stream_lateness_seconds_count "), 3.0, "{after}");
    assert_eq!(metric(&after, "hotroute_stream_lateness_seconds_bucket{le=\"1.0\"} "), 3.0, "{after}");
    let sum = metric(&after, "hotroute_stream_lateness_seconds_sum ");
    assert!((0.0..3.0).contains(&sum), "{after}");
}
