//! `dir = "public"`: static folders, caching headers, ranges, and never a byte from outside the folder.

use crate::common;

use std::time::Duration;

use common::{TestServer, client, load_error, raw};

const ROUTES: &str = r#"
[[route]]
path = "/static/{*rest}"
dir = "public"
headers = { cache-control = "no-cache" }

[[route]]
path = "/"
dir = "public"
"#;

const SECRET: &str = "TOP-SECRET-CONTENT";

async fn site() -> TestServer {
    let s = TestServer::start_with_files(
        ROUTES,
        &[
            ("public/index.html", "<h1>home</h1>"),
            ("public/app.js", "console.log(1)"),
            ("public/data/report.json", "{\"ok\":true}"),
            ("public/data/index.html", "<p>data</p>"),
            ("public/empty/readme.md", "no index here"),
            ("public/hello world.txt", "0123456789"),
            ("public/.env", SECRET),
            ("secret.txt", SECRET),
        ],
    )
    .await;
    let public = s.dir.path().join("public");
    std::os::unix::fs::symlink(s.dir.path().join("secret.txt"), public.join("link-out.txt")).unwrap();
    std::os::unix::fs::symlink(s.dir.path(), public.join("up")).unwrap();
    std::os::unix::fs::symlink("/etc", public.join("etc")).unwrap();
    std::os::unix::fs::symlink(public.join("app.js"), public.join("link-in.js")).unwrap();
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_folders_and_content_types() {
    let s = site().await;
    let c = client();
    let js = c.get(s.url("/static/app.js")).send().await.unwrap();
    assert_eq!(js.status(), 200);
    assert_eq!(js.headers()["content-type"], "text/javascript; charset=utf-8");
    assert_eq!(js.headers()["cache-control"], "no-cache", "the route's headers apply");
    assert_eq!(js.headers()["accept-ranges"], "bytes");
    assert_eq!(js.text().await.unwrap(), "console.log(1)");

    let json = c.get(s.url("/static/data/report.json")).send().await.unwrap();
    assert_eq!(json.headers()["content-type"], "application/json");
    let spaced = c.get(s.url("/static/hello%20world.txt")).send().await.unwrap();
    assert_eq!(spaced.text().await.unwrap(), "0123456789");
    // A symlink that stays inside the folder is served.
    assert_eq!(c.get(s.url("/static/link-in.js")).send().await.unwrap().text().await.unwrap(), "console.log(1)");

    // Folders: index.html; without the trailing slash, a redirect that adds it (reqwest follows it).
    assert_eq!(c.get(s.url("/")).send().await.unwrap().text().await.unwrap(), "<h1>home</h1>");
    assert_eq!(c.get(s.url("/static/data/")).send().await.unwrap().text().await.unwrap(), "<p>data</p>");
    let text =
        raw(s.addr, b"GET /static/data?x=1 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", Duration::from_secs(5))
            .await;
    assert!(text.starts_with("HTTP/1.1 301"), "{text}");
    assert!(text.to_ascii_lowercase().contains("location: /static/data/?x=1\r\n"), "{text}");
    assert_eq!(c.get(s.url("/static/empty/")).send().await.unwrap().status(), 404, "no listing without index.html");
    let missing = c.get(s.url("/static/nope.txt")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    assert!(missing.text().await.unwrap().contains("no such file in the folder served by the route at"));

    let head = c.head(s.url("/static/app.js")).send().await.unwrap();
    assert_eq!(head.headers()["content-length"], "14");
    assert_eq!(head.text().await.unwrap(), "");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etag_last_modified_304_and_ranges() {
    let s = site().await;
    let c = client();
    let first = c.get(s.url("/static/hello%20world.txt")).send().await.unwrap();
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    let modified = first.headers()["last-modified"].to_str().unwrap().to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    assert!(modified.ends_with(" GMT"), "{modified}");

    let url = s.url("/static/hello%20world.txt");
    let cached = c.get(&url).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(cached.status(), 304);
    assert_eq!(cached.headers()["etag"], etag.as_str());
    assert_eq!(cached.text().await.unwrap(), "");
    let other = c.get(&url).header("if-none-match", "\"other\"").send().await.unwrap();
    assert_eq!(other.status(), 200);
    let since = c.get(&url).header("if-modified-since", &modified).send().await.unwrap();
    assert_eq!(since.status(), 304);
    let old = c.get(&url).header("if-modified-since", "Mon, 01 Jan 2001 00:00:00 GMT").send().await.unwrap();
    assert_eq!(old.status(), 200);

    let part = c.get(&url).header("range", "bytes=2-5").send().await.unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(part.headers()["content-range"], "bytes 2-5/10");
    assert_eq!(part.headers()["content-length"], "4");
    assert_eq!(part.text().await.unwrap(), "2345");
    let tail = c.get(&url).header("range", "bytes=-3").send().await.unwrap();
    assert_eq!(tail.text().await.unwrap(), "789");
    let past = c.get(&url).header("range", "bytes=50-").send().await.unwrap();
    assert_eq!(past.status(), 416);
    assert_eq!(past.headers()["content-range"], "bytes */10");
    // If-Range with a stale validator: the whole file.
    let stale = c.get(&url).header("range", "bytes=0-1").header("if-range", "\"stale\"").send().await.unwrap();
    assert_eq!(stale.status(), 200);
    assert_eq!(stale.text().await.unwrap(), "0123456789");
    let fresh = c.get(&url).header("range", "bytes=0-1").header("if-range", &etag).send().await.unwrap();
    assert_eq!(fresh.status(), 206);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_outside_the_folder_is_ever_served() {
    let s = site().await;
    // Raw requests: a client library would normalize `..` away before sending.
    let attempts = [
        "/static/../secret.txt",
        "/static/data/../../secret.txt",
        "/static/%2e%2e/secret.txt",
        "/static/%2E%2E/secret.txt",
        "/static/.%2e/secret.txt",
        "/static/..%2fsecret.txt",
        "/static/data%2f..%2f..%2fsecret.txt",
        "/static/%2fetc%2fpasswd",
        "/static//etc/passwd",
        "/static/%2F",
        "/static/..%5csecret.txt",
        "/static/%00secret.txt",
        "/static/link-out.txt",
        "/static/up/secret.txt",
        "/static/up/routes.toml",
        "/static/etc/passwd",
        "/static/.env",
        "/static/data/%2e%2e/.env",
        "/../secret.txt",
        "/%2e%2e/secret.txt",
    ];
    for path in attempts {
        let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let text = raw(s.addr, req.as_bytes(), Duration::from_secs(5)).await;
        assert!(text.starts_with("HTTP/1.1 404"), "{path}: {text}");
        assert!(!text.contains(SECRET) && !text.contains("root:"), "{path} leaked: {text}");
    }
    assert_eq!(client().get(s.url("/static/app.js")).send().await.unwrap().status(), 200);
    s.stop().await;
}

#[test]
fn a_folder_outside_the_route_file_or_missing_is_a_load_error() {
    let text = load_error("[[route]]\npath = \"/s/{*rest}\"\ndir = \"..\"\n");
    assert!(text.contains("outside the route file's folder") && text.contains("routes.toml:3:"), "{text}");
    let text = load_error("[[route]]\npath = \"/s/{*rest}\"\ndir = \"/etc\"\n");
    assert!(text.contains("outside the route file's folder"), "{text}");
    let text = load_error("[[route]]\npath = \"/s/{*rest}\"\ndir = \"missing\"\n");
    assert!(text.contains("cannot open folder"), "{text}");
    let text = load_error("[[route]]\npath = \"/s/{*rest}\"\ndir = \".\"\nbody = \"x\"\n");
    assert!(text.contains("a `dir` route answers with the folder's files"), "{text}");
}
