//! The admin API's protections, against the real binary (and `MockServer`): the admin token, the `Host` check
//! against DNS rebinding, the cross-site checks on state-changing calls, redaction in the journal, the near-miss
//! 404 that keeps a header condition's value to the server's log, and answers that name no absolute path.

use crate::common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::bin::Bin;

const BIN: &str = env!("CARGO_BIN_EXE_hotroute");

const ROUTES: &str = r#"[[route]]
path = "/hello"
body = "Hello World"

[[route]]
path = "/private"
body = "secret data"
[route.match]
headers = { authorization = "Bearer s3cr3t-mock-token" }
"#;

/// The real binary on this test's route file (through the suite's one runner), with what these tests ask of it.
struct Running {
    bin: Bin,
    addr: SocketAddr,
    dir: PathBuf,
}

impl Running {
    fn start(toml: &str, args: &[&str], env: &[(&str, &str)]) -> Running {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("routes.toml"), toml).unwrap();
        let path = dir.path().to_path_buf();
        let mut launch =
            Bin::command().in_dir(dir).args(args).env_remove("HOTROUTE_ADMIN_TOKEN").env_remove("RUST_LOG");
        for (k, v) in env {
            launch = launch.env(k, v);
        }
        // The route file by its absolute path, as a deployment would name it: answers must still not show it.
        let bin = launch.arg(path.join("routes.toml")).start();
        Running { addr: bin.addr, bin, dir: path }
    }

    /// The address to connect to: the bound one, or 127.0.0.1 for a server bound to 0.0.0.0.
    fn connect_addr(&self) -> SocketAddr {
        if self.addr.ip().is_unspecified() { SocketAddr::from(([127, 0, 0, 1], self.addr.port())) } else { self.addr }
    }

    /// Waits (bounded) until stderr holds a line for which `f` is true, and returns it.
    fn stderr_line(&mut self, what: &str, f: impl Fn(&str) -> bool) -> String {
        let text = self.bin.stderr_until(what, |all| all.lines().any(&f));
        text.lines().find(|l| f(l)).unwrap_or_default().to_owned()
    }

    /// Sends `method path` with `headers` (each `Name: value`); a `Host` of 127.0.0.1:PORT unless one is given.
    fn send(&self, method: &str, path: &str, headers: &[&str]) -> (u16, String, String) {
        let addr = self.connect_addr();
        exchange(addr, method, path, headers)
    }
}

/// One HTTP/1.1 exchange on a fresh connection: (status, head, body).
fn exchange(addr: SocketAddr, method: &str, path: &str, headers: &[&str]) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: 0\r\n");
    if !headers.iter().any(|h| h.to_ascii_lowercase().starts_with("host:")) {
        req.push_str(&format!("Host: {addr}\r\n"));
    }
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body =
        if head.to_ascii_lowercase().contains("transfer-encoding: chunked") { dechunk(body) } else { body.into() };
    (status, head.to_owned(), body)
}

/// The body of a chunked answer (the journal is streamed), read by hand as the rest of this file reads HTTP.
fn dechunk(mut rest: &str) -> String {
    let mut body = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || after.len() < size {
            break;
        }
        body.push_str(&after[..size]);
        rest = after[size..].strip_prefix("\r\n").unwrap_or(&after[size..]);
    }
    body
}

fn no_path(body: &str, dir: &Path) {
    let dir = dir.display().to_string();
    assert!(!body.contains(&dir), "the answer shows the route file's folder {dir}: {body}");
}

#[test]
fn off_loopback_a_token_is_made_printed_once_and_required() {
    // Bound to every interface, as in a container; the test's own traffic stays on loopback.
    let mut server = Running::start(ROUTES, &["--listen", "0.0.0.0:0", "--no-watch"], &[]);
    // The first stdout line names the loopback address a client here can use, not 0.0.0.0.
    assert!(server.addr.ip().is_loopback(), "{}", server.addr);
    let warning = server.stderr_line("warning", |l| l.contains("reachable from other machines"));
    assert!(warning.contains("admin token"), "{warning}");
    let line =
        server.stderr_line("token", |l| l.trim_start().len() == 64 && l.trim().bytes().all(|b| b.is_ascii_hexdigit()));
    let token = line.trim().to_owned();
    assert_eq!(server.bin.stderr().matches(&token).count(), 3, "one message, with its curl and dashboard forms");

    let auth = format!("Authorization: Bearer {token}");
    for (method, path) in [("GET", "/__admin/requests"), ("GET", "/__admin/routes"), ("POST", "/__admin/reload")] {
        let (status, head, body) = server.send(method, path, &[]);
        assert_eq!(status, 401, "{method} {path}: {body}");
        assert!(head.to_ascii_lowercase().contains("www-authenticate: bearer"), "{head}");
        assert!(body.contains("Authorization: Bearer TOKEN") && body.contains("no token was sent"), "{body}");
        let (status, _, body) = server.send(method, path, &["Authorization: Bearer wrong-token-of-some-length"]);
        assert_eq!(status, 401, "{body}");
        assert!(body.contains("not the admin token"), "{body}");
        let (status, _, body) = server.send(method, path, &[&auth]);
        assert_eq!(status, 200, "{method} {path} with the token: {body}");
    }
    // A token in the right header but another scheme does not count.
    assert_eq!(server.send("GET", "/__admin/routes", &[&format!("Authorization: Basic {token}")]).0, 401);

    // Health stays open for probes, without paths or error text.
    let (status, _, open) = server.send("GET", "/__admin/health", &[]);
    assert_eq!(status, 200, "{open}");
    let open: serde_json::Value = serde_json::from_str(&open).unwrap();
    assert_eq!((open["status"].as_str(), open["routes"].as_u64()), (Some("ok"), Some(2)), "{open}");
    assert!(open.get("file").is_none() && open.get("last_error").is_none(), "{open}");
    assert_eq!(open["reload_failed"], false);
    let (_, _, full) = server.send("GET", "/__admin/health", &[&auth]);
    let full: serde_json::Value = serde_json::from_str(&full).unwrap();
    assert_eq!(full["file"], "routes.toml", "relative to the route file's folder: {full}");
    // The dashboard page itself holds no data: it is served, and asks for the token in its address.
    let (status, _, page) = server.send("GET", "/__admin/", &[]);
    assert_eq!(status, 200);
    assert!(page.contains("#token="), "the dashboard reads the token from its address");
}

#[test]
fn a_configured_token_is_required_on_loopback_too_and_the_flag_wins() {
    let toml = format!("[server]\nadmin_token = \"from-the-route-file-0123\"\n{ROUTES}");
    let mut server = Running::start(&toml, &["--port", "0", "--no-watch"], &[]);
    assert!(!server.bin.stderr().contains("reachable from other machines"));
    assert_eq!(server.send("GET", "/__admin/requests", &[]).0, 401);
    assert_eq!(server.send("GET", "/__admin/requests", &["Authorization: Bearer from-the-route-file-0123"]).0, 200);
    drop(server);

    let env = [("HOTROUTE_ADMIN_TOKEN", "from-the-environment-01")];
    let server = Running::start(&toml, &["--port", "0"], &env);
    assert_eq!(server.send("GET", "/__admin/routes", &["Authorization: Bearer from-the-route-file-0123"]).0, 401);
    assert_eq!(server.send("GET", "/__admin/routes", &["Authorization: Bearer from-the-environment-01"]).0, 200);
    drop(server);

    let server = Running::start(&toml, &["--port", "0", "--admin-token", "from-the-command-line"], &env);
    assert_eq!(server.send("GET", "/__admin/routes", &["Authorization: Bearer from-the-environment-01"]).0, 401);
    assert_eq!(server.send("GET", "/__admin/routes", &["authorization: bearer from-the-command-line"]).0, 200);
    drop(server);

    // A token too short to be safe is refused at start, saying where it came from.
    let out = Command::new(BIN).args(["--port", "0", "--admin-token", "short"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("fewer than 16") && err.contains("--admin-token"), "{err}");
}

#[test]
fn on_loopback_a_request_for_another_host_name_is_refused() {
    let server = Running::start(ROUTES, &["--port", "0", "--no-watch"], &[]);
    let port = server.addr.port();
    for host in [format!("evil.example:{port}"), "evil.example".to_owned(), format!("localhost.evil.example:{port}")] {
        let (status, _, body) = server.send("GET", "/__admin/requests", &[&format!("Host: {host}")]);
        assert_eq!(status, 403, "{host}: {body}");
        assert!(body.contains("DNS rebinding") && body.contains(&host), "{body}");
    }
    for host in [format!("localhost:{port}"), format!("127.0.0.1:{port}"), format!("[::1]:{port}"), "LOCALHOST".into()]
    {
        assert_eq!(server.send("GET", "/__admin/requests", &[&format!("Host: {host}")]).0, 200, "{host}");
    }
    // The routes are not the admin API: any Host reaches them.
    assert_eq!(server.send("GET", "/hello", &["Host: evil.example"]).0, 200);
}

#[test]
fn state_changing_calls_refuse_cross_site_requests() {
    let server = Running::start(ROUTES, &["--port", "0", "--no-watch"], &[]);
    let own = format!("Origin: http://{}", server.addr);
    // What a page on another site can send without a preflight: a text/plain or form POST.
    for ct in ["Content-Type: text/plain", "Content-Type: application/x-www-form-urlencoded"] {
        let (status, _, body) = server.send("POST", "/__admin/reload", &[ct]);
        assert_eq!(status, 403, "{body}");
        assert!(body.contains("x-hotroute: 1") && body.contains("curl -X POST -H 'x-hotroute: 1'"), "{body}");
    }
    assert_eq!(server.send("POST", "/__admin/reload", &[]).0, 403, "no content type is no better");
    // Another site's Origin is refused even with what a script sends.
    let evil = "Origin: http://evil.example";
    for (method, path) in
        [("POST", "/__admin/reload"), ("DELETE", "/__admin/requests"), ("DELETE", "/__admin/coverage")]
    {
        let (status, _, body) = server.send(method, path, &[evil, "X-Hotroute: 1"]);
        assert_eq!(status, 403, "{method} {path}: {body}");
        assert!(body.contains("another origin (http://evil.example)"), "{body}");
    }
    assert_eq!(server.send("POST", "/__admin/reload", &["Origin: null", "Content-Type: application/json"]).0, 403);
    // A script, or the server's own page.
    assert_eq!(server.send("POST", "/__admin/reload", &["X-Hotroute: 1"]).0, 200);
    assert_eq!(server.send("POST", "/__admin/reload", &["Content-Type: application/json; charset=utf-8"]).0, 200);
    assert_eq!(server.send("POST", "/__admin/reload", &[&own, "X-Hotroute: 1"]).0, 200);
    // A DELETE always needs a preflight in a browser: no extra header needed.
    assert_eq!(server.send("DELETE", "/__admin/requests", &[]).0, 200);
    assert_eq!(server.send("DELETE", "/__admin/requests", &[&own]).0, 200);
}

#[test]
fn the_journal_redacts_credentials_by_default_and_as_configured() {
    let secrets = [
        "Authorization: Bearer abc-secret",
        "Proxy-Authorization: Basic cHJveHk=",
        "Cookie: session=cookie-secret",
        "Set-Cookie: a=b",
        "X-Api-Key: key-secret",
        "X-Trace: visible",
    ];
    let server = Running::start(ROUTES, &["--port", "0", "--no-watch"], &[]);
    assert_eq!(server.send("GET", "/hello", &secrets).0, 200);
    let (_, _, body) = server.send("GET", "/__admin/requests", &[]);
    for secret in ["abc-secret", "cHJveHk=", "cookie-secret", "a=b", "key-secret"] {
        assert!(!body.contains(secret), "{secret} in {body}");
    }
    let journal: serde_json::Value = serde_json::from_str(&body).unwrap();
    let headers = &journal["requests"][0]["headers"];
    for name in ["authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"] {
        assert_eq!(headers[name], "<redacted>", "{name}: {headers}");
    }
    assert_eq!(headers["x-trace"], "visible");
    drop(server);

    let toml = format!("[server]\njournal_redact = [\"x-trace\"]\n{ROUTES}");
    let server = Running::start(&toml, &["--port", "0", "--no-watch"], &[]);
    server.send("GET", "/hello", &secrets);
    let (_, _, body) = server.send("GET", "/__admin/requests", &[]);
    let journal: serde_json::Value = serde_json::from_str(&body).unwrap();
    let headers = &journal["requests"][0]["headers"];
    assert_eq!(
        (headers["x-trace"].as_str(), headers["authorization"].as_str()),
        (Some("<redacted>"), Some("Bearer abc-secret"))
    );

    let bad = common::load_error("[server]\njournal_redact = [\"bad header\"]\n");
    assert!(bad.contains("`bad header` is not a header name") && bad.contains("routes.toml:2"), "{bad}");
    let bad = common::load_error("[server]\nadmin_token = \"short\"\n");
    assert!(bad.contains("fewer than 16") && bad.contains("openssl rand"), "{bad}");
}

#[test]
fn mock_server_requests_are_redacted_the_same_way() {
    let server = hotroute::MockServer::start_blocking(ROUTES).unwrap();
    exchange(server.address(), "GET", "/hello", &["Authorization: Bearer abc-secret", "X-Trace: t"]);
    let r = &server.requests()[0];
    assert_eq!((r.header("authorization"), r.header("x-trace")), (Some("<redacted>"), Some("t")));
    server.verify(hotroute::Expect::get("/hello").header("authorization", "<redacted>").once());
    server.verify(hotroute::Expect::get("/hello").header_present("authorization").once());

    let keep = hotroute::MockServer::start_blocking(&format!("[server]\njournal_redact = []\n{ROUTES}")).unwrap();
    exchange(keep.address(), "GET", "/hello", &["Authorization: Bearer abc-secret"]);
    keep.verify(hotroute::Expect::get("/hello").header("authorization", "Bearer abc-secret").once());
}

#[test]
fn the_near_miss_404_names_the_header_but_keeps_its_value_to_the_log() {
    let mut server = Running::start(ROUTES, &["--port", "0", "--no-watch", "--log-level", "debug"], &[]);
    for headers in [&["Authorization: Bearer guess"][..], &[]] {
        let (status, _, body) = server.send("GET", "/private", headers);
        assert_eq!(status, 404, "{body}");
        assert!(body.contains("header `authorization`"), "says which condition failed: {body}");
        assert!(!body.contains("s3cr3t"), "the 404 shows the secret the route wants: {body}");
    }
    let logged = server.stderr_line("the full explanation", |l| l.contains("did not match"));
    assert!(logged.contains("Bearer s3cr3t-mock-token"), "{logged}");
}

#[test]
fn admin_answers_name_files_relative_to_the_route_folder() {
    let toml = format!("include = [\"more/*.toml\"]\n{ROUTES}");
    let server = Running::start(&toml, &["--port", "0", "--no-watch"], &[]);
    std::fs::create_dir(server.dir.as_path().join("more")).unwrap();
    std::fs::write(server.dir.as_path().join("more/extra.toml"), "[[route]]\npath = \"/extra\"\n").unwrap();
    assert_eq!(server.send("POST", "/__admin/reload", &["X-Hotroute: 1"]).0, 200);
    server.send("GET", "/extra", &[]);
    let (_, _, routes) = server.send("GET", "/__admin/routes", &[]);
    assert!(routes.contains("\"location\":\"more/extra.toml:1\"") && routes.contains("\"routes.toml:2\""), "{routes}");
    for path in ["/__admin/routes", "/__admin/health", "/__admin/coverage", "/__admin/requests"] {
        no_path(&server.send("GET", path, &[]).2, server.dir.as_path());
    }
    // A failed reload's error names the file relative too, in health and in the reload's answer.
    std::fs::write(server.dir.as_path().join("more/extra.toml"), "[[route]]\nstauts = 1\n").unwrap();
    let (status, _, error) = server.send("POST", "/__admin/reload", &["X-Hotroute: 1"]);
    assert_eq!(status, 422);
    assert!(error.contains("more/extra.toml:2"), "{error}");
    no_path(&error, server.dir.as_path());
    let (_, _, health) = server.send("GET", "/__admin/health", &[]);
    assert!(health.contains("more/extra.toml:2"), "{health}");
    no_path(&health, server.dir.as_path());
}
