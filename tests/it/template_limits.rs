//! Templates whose work the fuel does not see, against the real binary: printing or comparing a value built of
//! shared nested parts is one instruction that visits millions of parts. The answer is an error within a bound,
//! and other routes keep answering quickly meanwhile.

use crate::support::bin::Bin;

use std::time::{Duration, Instant};

/// A template that builds a tree of `levels` levels, each level the previous one twice (shared, so cheap to build),
/// then runs `end` on it.
fn tree(levels: usize, end: &str) -> String {
    let mut t = String::from("{% set a = [1] %}{% set b = [1] %}");
    for _ in 0..levels {
        t.push_str("{% set a = [a, a] %}{% set b = [b, b] %}");
    }
    t + end
}

fn start() -> (Bin, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let routes = dir.path().join("routes.toml");
    let toml = format!(
        "[[route]]\npath = \"/print\"\ntemplate = true\nbody = '''{}'''\n\n\
         [[route]]\npath = \"/compare\"\ntemplate = true\nbody = '''{}'''\n\n\
         [[route]]\npath = \"/hello\"\nbody = \"hi\"\n\n\
         [[route]]\npath = \"/hi/{{name}}\"\ntemplate = true\nbody = \"hi {{{{ path.name }}}}\"\n",
        tree(24, "{{ a }}"),
        tree(27, "{{ a == b }}"),
    );
    std::fs::write(&routes, toml).unwrap();
    let server = Bin::command()
        .arg(&routes)
        .args(["--port", "0", "--no-watch", "--log-level", "error", "--threads", "2"])
        .start();
    (server, dir)
}

/// Printing a 24-level tree and comparing two 27-level ones answer an error within 3 s, while `/hello` keeps
/// answering within 300 ms and an ordinary template within 1.5 s (it may wait for a render thread that a print
/// holds up to its 1 s deadline).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_that_prints_or_compares_a_huge_shared_value_is_stopped_and_others_keep_answering() {
    let (server, _dir) = start();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let slow: Vec<_> = ["/print", "/compare", "/print", "/compare"]
        .into_iter()
        .map(|path| {
            let (client, url) = (client.clone(), format!("http://{}{path}", server.addr));
            tokio::spawn(async move {
                let started = Instant::now();
                let res = client.get(&url).send().await.expect("no answer");
                let status = res.status().as_u16();
                let len = res.bytes().await.map(|b| b.len()).unwrap_or(0);
                (url, status, len, started.elapsed())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let quick = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        for (path, want, bound) in [("/hello", "hi", 300), ("/hi/bo", "hi bo", 1500)] {
            let started = Instant::now();
            let res = quick.get(format!("http://{}{path}", server.addr)).send().await.unwrap();
            assert_eq!(res.text().await.unwrap(), want);
            let took = started.elapsed();
            assert!(took < Duration::from_millis(bound), "{path} took {took:?} while the slow templates ran");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for s in slow {
        let (url, status, len, took) = s.await.unwrap();
        assert!(status == 500 || status == 503, "{url}: status {status}");
        assert!(took < Duration::from_secs(3), "{url} answered after {took:?}");
        assert!(len < 1 << 20, "{url}: a {len}-byte error answer");
    }
}
