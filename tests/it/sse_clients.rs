//! Real SSE clients against the binary: the official `openai` Python client streams a chat completion from
//! `examples/openai-stream.toml` and sees its chunks arrive spread over time, and curl receives the events as they
//! are sent. (A browser's `EventSource` is in `tests/browser/sse.test.mjs`.)

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::bin::Bin;

const OPENAI_EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/openai-stream.toml");

/// The client's side: each streamed chunk's text and when it arrived (seconds since the request), one JSON per line.
const OPENAI_SCRIPT: &str = r#"
import json, sys, time
from openai import OpenAI
client = OpenAI(base_url=sys.argv[1], api_key="sk-mock", max_retries=0, timeout=20)
start = time.monotonic()
stream = client.chat.completions.create(
    model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True)
for chunk in stream:
    delta = chunk.choices[0].delta.content if chunk.choices else None
    print(json.dumps({"t": time.monotonic() - start, "content": delta, "model": chunk.model,
                      "finish": chunk.choices[0].finish_reason if chunk.choices else None}), flush=True)
"#;

/// A venv under the target folder with the `openai` package, made on first use. None (after a loud message) only
/// when there is no network to install it from; any other failure fails the test.
fn openai_python() -> Option<PathBuf> {
    let target = Path::new(env!("CARGO_BIN_EXE_hotroute")).parent().unwrap().parent().unwrap().to_path_buf();
    let venv = target.join("openai-venv");
    let python = venv.join("bin/python");
    let has = |py: &Path| Command::new(py).args(["-c", "import openai"]).output().is_ok_and(|o| o.status.success());
    if has(&python) {
        return Some(python);
    }
    // One test at a time installs (tests of this crate run in parallel).
    static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    if has(&python) {
        return Some(python);
    }
    let made = Command::new("python3").arg("-m").arg("venv").arg(&venv).status();
    assert!(made.is_ok_and(|s| s.success()), "python3 -m venv {} failed (install python3-venv)", venv.display());
    let pip = Command::new(&python).args(["-m", "pip", "install", "--quiet", "openai"]).output().unwrap();
    if pip.status.success() {
        return Some(python);
    }
    let online = std::net::ToSocketAddrs::to_socket_addrs("pypi.org:443")
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_secs(5)).is_ok());
    if !online {
        eprintln!(
            "\n\n*** SKIPPED: no network to install the `openai` Python package (pypi.org unreachable); \
             the openai client test did not run ***\n\n"
        );
        return None;
    }
    panic!("pip install openai failed with the network up:\n{}", String::from_utf8_lossy(&pip.stderr));
}

#[tokio::test]
async fn the_official_openai_client_streams_chunks_spread_over_time() {
    let Some(python) = openai_python() else { return };
    let bin = Bin::start(&std::fs::read_to_string(OPENAI_EXAMPLE).unwrap());
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python).arg("-c").arg(OPENAI_SCRIPT).arg(format!("http://{}/v1", bin.addr)).output().unwrap()
    })
    .await
    .unwrap();
    assert!(out.status.success(), "the openai client failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let chunks: Vec<serde_json::Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let text: String = chunks.iter().filter_map(|c| c["content"].as_str()).collect();
    assert_eq!(text, "Hello from hotroute!");
    assert!(chunks.iter().all(|c| c["model"] == "gpt-4o-mini"));
    assert_eq!(chunks.last().unwrap()["finish"], "stop");
    // The example sends its chunks 60 ms apart: the client sees them arrive that far apart, not at once.
    let times: Vec<f64> = chunks.iter().map(|c| c["t"].as_f64().unwrap()).collect();
    let gaps: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    eprintln!("openai client: chunk arrival gaps {gaps:.3?} s");
    assert_eq!(gaps.len(), 4, "five chunks: {chunks:?}");
    // Each chunk is due 60 ms after the one before (the server keeps to its schedule, so a late chunk is followed
    // by a shorter gap): measured from the first, the k-th arrives near 60k ms. The tolerance is for a loaded
    // machine and the client's own parsing; chunks sent at once would all be near 0.
    for (k, t) in times.iter().enumerate().skip(1) {
        let since_first = t - times[0];
        let want = 0.060 * k as f64;
        assert!(
            (since_first - want).abs() <= 0.070,
            "chunk {k} came {since_first:.3} s after the first, want {want:.3}"
        );
    }
    assert!(gaps.iter().all(|g| *g >= 0.005), "chunks arrived together: {gaps:?}");
}

#[tokio::test]
async fn curl_receives_server_sent_events_as_they_are_sent() {
    let toml = "[[route]]\npath = \"/events\"\nsse = [{ event = \"tick\", data = \"1\", id = \"1\" }, \
                { event = \"tick\", data = \"2\", id = \"2\", delay = \"150ms\" }, \
                { event = \"tick\", data = \"3\", id = \"3\", delay = \"150ms\" }]\n";
    let bin = Bin::start(toml);
    let url = bin.url("/events");
    let lines = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let mut curl = Command::new("curl")
            .args(["-sS", "-N", "-i", "--max-time", "20", &url])
            .stdout(Stdio::piped())
            .spawn()
            .expect("curl is installed");
        let mut lines = Vec::new();
        for line in BufReader::new(curl.stdout.take().unwrap()).lines() {
            lines.push((started.elapsed(), line.unwrap().trim_end().to_owned()));
        }
        assert!(curl.wait().unwrap().success());
        lines
    })
    .await
    .unwrap();
    let text: Vec<&str> = lines.iter().map(|(_, l)| l.as_str()).collect();
    assert!(text.iter().any(|l| l.eq_ignore_ascii_case("content-type: text/event-stream")), "{text:?}");
    let body_start = text.iter().position(|l| l.is_empty()).unwrap() + 1;
    assert_eq!(
        &text[body_start..],
        [
            "event: tick",
            "id: 1",
            "data: 1",
            "",
            "event: tick",
            "id: 2",
            "data: 2",
            "",
            "event: tick",
            "id: 3",
            "data: 3",
            ""
        ]
    );
    let at = |data: &str| lines.iter().find(|(_, l)| l == data).unwrap().0;
    let (first, second, third) = (at("data: 1"), at("data: 2"), at("data: 3"));
    assert!(second - first >= Duration::from_millis(100), "data 2 came {:?} after data 1", second - first);
    assert!(third - second >= Duration::from_millis(100), "data 3 came {:?} after data 2", third - second);
}
