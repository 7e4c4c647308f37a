//! `sequence`, `repeat`, `count` across reloads, `delay`, and `HEAD`, which gets what the next `GET` would get and
//! moves nothing.

use crate::common;

use std::time::{Duration, Instant};

use common::{TestServer, client, load_error};

const FLAKY: &str = r#"
[[route]]
path = "/flaky"
headers = { x-service = "billing" }
sequence = [
  { status = 503, body = "down" },
  { status = 503, body = "still down", headers = { retry-after = "1" } },
  { body = "up" },
]

[[route]]
path = "/lights"
repeat = "cycle"
sequence = [{ body = "red" }, { body = "green" }, { json = { light = "amber" } }]
"#;

async fn answers(s: &TestServer, path: &str, n: usize) -> Vec<(u16, String)> {
    let mut out = Vec::new();
    for _ in 0..n {
        let res = client().get(s.url(path)).send().await.unwrap();
        out.push((res.status().as_u16(), res.text().await.unwrap()));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sequence_answers_in_order_then_repeats_the_last() {
    let s = TestServer::start(FLAKY).await;
    let first = client().get(s.url("/flaky")).send().await.unwrap();
    assert_eq!(first.status(), 503);
    assert_eq!(first.headers()["x-service"], "billing", "items keep the route's headers");
    let second = client().get(s.url("/flaky")).send().await.unwrap();
    assert_eq!(second.headers()["retry-after"], "1");
    assert_eq!(second.headers()["x-service"], "billing");
    let rest = answers(&s, "/flaky", 3).await;
    assert_eq!(rest, vec![(200, "up".into()), (200, "up".into()), (200, "up".into())]);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeat_cycle_starts_over() {
    let s = TestServer::start(FLAKY).await;
    let got: Vec<String> = answers(&s, "/lights", 7).await.into_iter().map(|a| a.1).collect();
    let amber = r#"{"light":"amber"}"#;
    assert_eq!(got, ["red", "green", amber, "red", "green", amber, "red"]);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_keeps_the_position_of_unchanged_routes_and_restarts_changed_ones() {
    let s = TestServer::start(FLAKY).await;
    let c = client();
    assert_eq!(c.get(s.url("/flaky")).send().await.unwrap().status(), 503);
    assert_eq!(answers(&s, "/lights", 2).await[1].1, "green");

    // Move /flaky below a new route and change /lights: /flaky carries on where it was, /lights starts over.
    let edited = format!(
        "[[route]]\npath = \"/new\"\nbody = \"new\"\n{}",
        FLAKY.replace(r#"{ body = "red" }"#, r#"{ body = "RED" }"#)
    );
    std::fs::write(s.routes_path(), edited).unwrap();
    let generation = s.live.reload().unwrap();
    assert_eq!(generation, 2);
    assert_eq!(c.get(s.url("/new")).send().await.unwrap().text().await.unwrap(), "new");
    let flaky = c.get(s.url("/flaky")).send().await.unwrap();
    assert_eq!(flaky.text().await.unwrap(), "still down", "the second answer, not the first again");
    assert_eq!(answers(&s, "/lights", 1).await[0].1, "RED");

    // A failed reload changes nothing either.
    std::fs::write(s.routes_path(), "[[route]]\npath = \"nope\"\n").unwrap();
    assert!(s.live.reload().is_err());
    assert_eq!(c.get(s.url("/flaky")).send().await.unwrap().text().await.unwrap(), "up");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn count_counts_answers_and_survives_a_reload() {
    let routes = "[[route]]\npath = \"/count\"\ntemplate = true\nbody = \"{{ count }}\"\n";
    let s = TestServer::start(routes).await;
    let got: Vec<String> = answers(&s, "/count", 3).await.into_iter().map(|a| a.1).collect();
    assert_eq!(got, ["1", "2", "3"]);
    std::fs::write(s.routes_path(), format!("# a comment\n{routes}")).unwrap();
    s.live.reload().unwrap();
    assert_eq!(answers(&s, "/count", 1).await[0].1, "4");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delay_holds_its_request_and_no_other() {
    let s = TestServer::start(
        r#"
[[route]]
path = "/slow"
delay = "2s"
body = "slow"

[[route]]
path = "/fast"
body = "fast"
"#,
    )
    .await;
    let slow_url = s.url("/slow");
    let started = Instant::now();
    let slow = tokio::spawn(async move {
        let res = client().get(slow_url).send().await.unwrap();
        (res.text().await.unwrap(), started.elapsed())
    });
    // Wait (bounded) until the server has taken the slow request, so that it is really pending.
    let deadline = Instant::now() + Duration::from_secs(5);
    while s.live.router().routes()[0].count() != Some(1) {
        assert!(Instant::now() < deadline, "the slow request never reached the server");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for _ in 0..5 {
        assert_eq!(client().get(s.url("/fast")).send().await.unwrap().text().await.unwrap(), "fast");
    }
    assert!(!slow.is_finished(), "the fast requests were answered while the slow one was still waiting");
    let (body, took) = slow.await.unwrap();
    assert_eq!(body, "slow");
    assert!(took >= Duration::from_secs(2), "answered after {took:?}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequence_items_have_their_own_delay() {
    let s = TestServer::start(
        "[[route]]\npath = \"/warmup\"\nsequence = [{ body = \"cold\", delay = \"1s\" }, { body = \"warm\" }]\n",
    )
    .await;
    let t = Instant::now();
    assert_eq!(answers(&s, "/warmup", 1).await[0].1, "cold");
    assert!(t.elapsed() >= Duration::from_secs(1));
    assert_eq!(answers(&s, "/warmup", 1).await[0].1, "warm");
    s.stop().await;
}

const HEAD_SAFE: &str = r#"
[[route]]
path = "/seq"
sequence = [
  { body = "one", headers = { x-item = "1" } },
  { status = 202, body = "two!", headers = { x-item = "2" } },
]

[[route]]
path = "/count"
template = true
headers = { x-count = "{{ count }}" }
body = "{{ count }}"

# Answers once: the second answer is a 404.
[[route]]
path = "/once"
template = true
status = "{{ 200 if count == 1 else 404 }}"
body = "{{ 'here' if count == 1 else 'gone' }}"
"#;

/// A HEAD's status and the header `name` (and that it has no body).
async fn head(s: &TestServer, path: &str, name: &str) -> (u16, String) {
    let res = client().head(s.url(path)).send().await.unwrap();
    let status = res.status().as_u16();
    let value = res.headers().get(name).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    assert_eq!(res.bytes().await.unwrap().len(), 0, "a HEAD answer has no body");
    (status, value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_gets_the_headers_of_the_next_sequence_item_and_moves_nothing() {
    let s = TestServer::start(HEAD_SAFE).await;
    // A monitor's HEADs, however many, leave the first item for the first GET.
    for _ in 0..3 {
        assert_eq!(head(&s, "/seq", "x-item").await, (200, "1".into()));
    }
    let res = client().head(s.url("/seq")).send().await.unwrap();
    assert_eq!(res.headers()["content-length"], "3", "the length of the body the GET gets");
    assert_eq!(answers(&s, "/seq", 1).await, [(200, "one".into())], "the HEADs did not move the sequence");
    assert_eq!(head(&s, "/seq", "x-item").await, (202, "2".into()), "the HEAD sees the next item");
    let res = client().head(s.url("/seq")).send().await.unwrap();
    assert_eq!(res.headers()["content-length"], "4");
    assert_eq!(answers(&s, "/seq", 2).await, [(202, "two!".into()), (202, "two!".into())]);
    assert_eq!(s.live.router().routes()[0].count(), Some(3), "only the three GETs counted");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_sees_the_count_the_next_get_gets_and_does_not_count() {
    let s = TestServer::start(HEAD_SAFE).await;
    assert_eq!(head(&s, "/count", "x-count").await, (200, "1".into()));
    assert_eq!(head(&s, "/count", "x-count").await, (200, "1".into()));
    assert_eq!(answers(&s, "/count", 2).await, [(200, "1".into()), (200, "2".into())]);
    assert_eq!(head(&s, "/count", "x-count").await, (200, "3".into()));
    assert_eq!(answers(&s, "/count", 1).await, [(200, "3".into())]);

    // A route that answers once still answers the HEAD (not 404), and then the one GET.
    assert_eq!(head(&s, "/once", "content-length").await, (200, "4".into()));
    assert_eq!(answers(&s, "/once", 2).await, [(200, "here".into()), (404, "gone".into())]);
    assert_eq!(head(&s, "/once", "content-length").await.0, 404, "after its answer, the HEAD sees the 404 too");

    // The journal still has the HEADs: they happened.
    let heads = s.mock().requests().iter().filter(|r| r.method() == "HEAD").count();
    assert_eq!(heads, 5);
    s.stop().await;
}

#[test]
fn bad_sequences_and_delays_are_load_errors() {
    assert!(load_error("[[route]]\npath = \"/a\"\nsequence = []\n").contains("the sequence is empty"));
    let text = load_error("[[route]]\npath = \"/a\"\nrepeat = \"forever\"\nsequence = [{ body = \"x\" }]\n");
    assert!(text.contains("`forever` is not a way to repeat") && text.contains("routes.toml:3:"), "{text}");
    let text = load_error("[[route]]\npath = \"/a\"\nbody = \"x\"\nsequence = [{ body = \"y\" }]\n");
    assert!(text.contains("gives its bodies in the sequence items"), "{text}");
    let text = load_error("[[route]]\npath = \"/a\"\ndelay = \"soon\"\n");
    assert!(text.contains("`soon` is not a delay") && text.contains("routes.toml:3:"), "{text}");
    let text = load_error("[[route]]\npath = \"/a\"\nsequence = [{ delay = \"3 weeks\" }]\n");
    assert!(text.contains("over an hour"), "{text}");
    assert!(load_error("[[route]]\npath = \"/a\"\nrepeat = \"cycle\"\n").contains("`repeat` without a `sequence`"));
    let text = load_error("[[route]]\npath = \"/a\"\nsequence = [{ stauts = 200 }]\n");
    assert!(text.contains("unknown field `stauts`"), "{text}");
}
