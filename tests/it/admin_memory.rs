//! Journal reads stay bounded whatever admin clients do: pages by default, bodies only when asked, a few reads at
//! once, and a reader that reads nothing holds neither the journal's lock nor a copy of the journal.
//! (`scripts/admin-read-attack.py` measures the memory and latency of the same attack against a release build.)

use crate::common;

use std::time::{Duration, Instant};

use common::{TestServer, client};
use serde_json::Value;
use tokio::io::AsyncWriteExt;

async fn journal(s: &TestServer, query: &str) -> Value {
    let res = client().get(s.url(&format!("/__admin/requests{query}"))).send().await.unwrap();
    assert_eq!(res.status(), 200, "{query}");
    res.json().await.unwrap()
}

fn ids(page: &Value) -> Vec<u64> {
    page["requests"].as_array().unwrap().iter().map(|r| r["id"].as_u64().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journal_reads_are_paged_and_leave_bodies_out_unless_asked() {
    let s = TestServer::start("[[route]]\npath = \"/in\"\nmethod = \"POST\"\n").await;
    let c = client();
    for i in 1..=1001 {
        c.post(s.url("/in")).body(format!("body {i}")).send().await.unwrap();
    }
    // Default: the newest 100, without bodies; the page says how many newer-than-`after` requests it left out.
    let page = journal(&s, "").await;
    assert_eq!(ids(&page), (902..=1001).collect::<Vec<_>>());
    assert_eq!(
        (page["omitted"].as_u64(), page["limit"].as_u64(), page["last_id"].as_u64()),
        (Some(900), Some(100), Some(1001))
    );
    let first = &page["requests"][0];
    assert!(first.get("body").is_none(), "{first}");
    assert_eq!(first["body_size"], 8);
    // Bodies when asked; a limit over the most a page holds is cut to it.
    let page = journal(&s, "?bodies=true&limit=5000").await;
    assert_eq!((ids(&page).len(), page["limit"].as_u64()), (1000, Some(1000)));
    assert_eq!(page["requests"][999]["body"], "body 1001");
    // Paging on with `after`.
    let page = journal(&s, "?after=990&limit=5").await;
    assert_eq!((ids(&page), page["omitted"].as_u64()), (vec![997, 998, 999, 1000, 1001], Some(6)));
    let bad = client().get(s.url("/__admin/requests?bodies=maybe")).send().await.unwrap();
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap().contains("true or false for bodies"));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_that_never_read_are_limited_and_block_nobody() {
    // A short write timeout, so that the stalled readers are cut off soon after the test lets them go.
    let toml = "[server]\nwrite_timeout = \"1s\"\n\n[[route]]\npath = \"/in\"\nmethod = \"POST\"\n\n[[route]]\npath = \"/hello\"\n";
    let s = TestServer::start(toml).await;
    let c = client();
    let body = "x".repeat(64 * 1024);
    // 400 x 64 KiB: a 26 MB page with bodies, more than the socket buffers of a reader that reads nothing hold.
    for _ in 0..400 {
        c.post(s.url("/in")).body(body.clone()).send().await.unwrap();
    }
    let request = format!("GET /__admin/requests?bodies=true&limit=1000 HTTP/1.1\r\nHost: {}\r\n\r\n", s.addr);
    let mut stalled = Vec::new();
    for _ in 0..hotroute::__internals::MAX_ADMIN_READS {
        let mut conn = tokio::net::TcpStream::connect(s.addr).await.unwrap();
        conn.write_all(request.as_bytes()).await.unwrap();
        stalled.push(conn);
    }
    // The next reader is told to come back later, at once (once the stalled ones are in).
    let deadline = Instant::now() + Duration::from_secs(10);
    let busy = loop {
        let res = c.get(s.url("/__admin/requests?limit=1")).send().await.unwrap();
        if res.status() == 503 {
            break res;
        }
        assert!(Instant::now() < deadline, "a fifth reader was never refused");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(busy.headers()["retry-after"], "1");
    assert!(busy.text().await.unwrap().contains("admin reads are being answered already"));
    // Meanwhile requests are served and recorded: no reader holds the journal's lock.
    for _ in 0..20 {
        assert_eq!(c.get(s.url("/hello")).send().await.unwrap().status(), 200);
    }
    assert_eq!(s.live.journal().requests().len(), 420);
    // The stalled readers gone (cut off by the write timeout), reads are answered again.
    drop(stalled);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let res = c.get(s.url("/__admin/requests?limit=1")).send().await.unwrap();
        if res.status() == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "the stalled readers' places were never given back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journal_holds_at_most_journal_bytes_of_requests_dropping_the_oldest() {
    // 100 requests of 64 KiB into a journal of 1 MiB: the count (1000) is not the bound, the bytes are.
    let toml =
        "[server]\njournal_bytes = \"1MiB\"\nmax_body = \"4MiB\"\n\n[[route]]\npath = \"/in\"\nmethod = \"POST\"\n";
    let s = TestServer::start(toml).await;
    let c = client();
    let body = "x".repeat(64 * 1024);
    for _ in 0..100 {
        assert_eq!(c.post(s.url("/in")).body(body.clone()).send().await.unwrap().status(), 200);
    }
    let page = journal(&s, "?limit=1000").await;
    let kept = ids(&page);
    // 15 bodies of 64 KiB and their heads fit in 1 MiB; the newest are kept, in order.
    assert!((10..=16).contains(&kept.len()), "{} kept", kept.len());
    assert_eq!(*kept.last().unwrap(), 100);
    assert_eq!(page["dropped"].as_u64(), Some(100 - kept.len() as u64));
    // A body over the journal's body cut (64 KiB) is kept cut, with its full size and the flag that says so.
    let big = "y".repeat(2 * 1024 * 1024);
    c.post(s.url("/in")).header("x-probe", "big").body(big).send().await.unwrap();
    let page = journal(&s, "?limit=1&bodies=true").await;
    let last = &page["requests"][0];
    assert_eq!((last["body_size"].as_u64(), last["body_truncated"].as_bool()), (Some(2 * 1024 * 1024), Some(true)));
    assert_eq!(last["headers"]["x-probe"], "big");
    assert_eq!(last["body"].as_str().map(str::len), Some(64 * 1024));
    s.stop().await;
}

#[test]
fn journal_bytes_below_its_minimum_is_a_load_error() {
    let out = common::load_error("[server]\njournal_bytes = \"1KiB\"\n");
    assert!(out.contains("`journal_bytes` is 1024 bytes, below its minimum of 65536"), "{out}");
}
