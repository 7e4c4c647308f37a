//! The access log, the journey trace and the metrics, as a user of the `hotroute` binary sees them.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::support::bin::Bin;
use crate::support::http::blocking::{exchange, get, read_response};

const ROUTES: &str = "# observed\n[[route]]\npath = \"/hello\"\nbody = \"Hello World\"\n\n[[route]]\n\
                      path = \"/users/{id}\"\ntemplate = true\nbody = \"user {{ path.id }}\"\n";

/// `hotroute routes.toml --port 0 ARGS` on `toml` in a fresh folder, with `RUST_LOG` unset; its stderr lines are
/// read with [`Bin::line`].
fn start(toml: &str, args: &[&str]) -> Bin {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("routes.toml"), toml).unwrap();
    Bin::command().in_dir(dir).args(["routes.toml", "--port", "0"]).args(args).env_remove("RUST_LOG").start()
}

fn is_rfc3339_millis(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 24
        && s.ends_with('Z')
        && [4, 7].iter().all(|&i| b[i] == b'-')
        && b[10] == b'T'
        && [13, 16].iter().all(|&i| b[i] == b':')
        && b[19] == b'.'
        && s.chars().filter(char::is_ascii_digit).count() == 17
}

#[test]
fn access_log_text_has_one_line_per_request_with_its_route() {
    let mut server = start(ROUTES, &["--log-requests"]);
    let (client, res) = get(server.addr, "/users/42?full=1");
    assert!(res.ends_with("user 42"), "{res}");
    let line = server.line("for /users/42", |l| l.contains(" /users/42"));
    let fields: Vec<&str> = line.split(' ').collect();
    assert_eq!(fields.len(), 8, "TIME PEER METHOD PATH STATUS BYTES DURATION ROUTE: {line}");
    assert!(is_rfc3339_millis(fields[0]), "{line}");
    assert_eq!(fields[1], client.to_string(), "the peer is the client's own address");
    assert_eq!(&fields[2..6], ["GET", "/users/42?full=1", "200", "7"], "{line}");
    let ms: f64 = fields[6].strip_suffix("ms").unwrap().parse().unwrap();
    assert!(ms > 0.0 && ms < 5000.0, "{line}");
    assert_eq!(fields[7], "routes.toml:6");

    let (_, res) = get(server.addr, "/nope");
    assert!(res.starts_with("HTTP/1.1 404"), "{res}");
    let line = server.line("for /nope", |l| l.contains(" /nope "));
    assert!(line.contains(" GET /nope 404 ") && line.ends_with(" -"), "no route answered: {line}");

    let (_, res) = exchange(server.addr, "HEAD /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert!(res.starts_with("HTTP/1.1 200"), "{res}");
    let line = server.line("for HEAD /hello", |l| l.contains(" HEAD /hello "));
    assert!(line.contains(" HEAD /hello 200 0 ") && line.ends_with(" routes.toml:2"), "HEAD sends no body: {line}");
}

#[test]
fn access_log_json_is_one_object_per_line() {
    let mut server = start(ROUTES, &["--log-format", "json"]);
    let (client, _) = get(server.addr, "/hello");
    get(server.addr, "/hello/");
    let line = server.line("for /hello", |l| l.starts_with('{') && l.contains("\"/hello\""));
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert!(is_rfc3339_millis(v["time"].as_str().unwrap()), "{line}");
    assert_eq!(v["peer"], client.to_string());
    assert_eq!(
        (&v["method"], &v["path"], &v["status"], &v["bytes"]),
        (&"GET".into(), &"/hello".into(), &200.into(), &11.into())
    );
    assert!(v["duration_ms"].as_f64().unwrap() > 0.0, "{line}");
    assert_eq!(v["route"], "routes.toml:2");
    let line = server.line("for /hello/", |l| l.starts_with('{') && l.contains("\"/hello/\""));
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!((&v["status"], &v["route"]), (&404.into(), &serde_json::Value::Null));
}

#[test]
fn access_log_is_off_by_default_and_on_from_the_route_file() {
    let server = start(ROUTES, &[]);
    get(server.addr, "/hello");
    let quiet = server.stop();
    assert!(!quiet.iter().any(|l| l.contains("/hello")), "no access log unless asked: {quiet:?}");

    let mut server = start(&format!("[server]\nlog_requests = true\n{ROUTES}"), &[]);
    get(server.addr, "/hello");
    let line = server.line("for /hello", |l| l.contains(" GET /hello "));
    assert!(line.ends_with(" routes.toml:4"), "{line}");
}

/// Fields `key=value` of a trace line.
fn field<'a>(line: &'a str, key: &str) -> &'a str {
    let at = line.find(&format!(" {key}=")).unwrap_or_else(|| panic!("no {key}= in {line}"));
    line[at + key.len() + 2..].split([' ', ';']).next().unwrap()
}

#[test]
fn trace_tells_the_journey_of_a_connection_and_its_requests() {
    let mut server = start(ROUTES, &["--trace"]);
    let listening = server.line("listening", |l| l.starts_with("trace listening fd="));
    let listener_fd = field(&listening, "fd").to_owned();
    assert!(listening.contains(&format!("addr={}", server.addr)), "{listening}");

    // Two requests on one kept-alive connection; the second asks to close it.
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let client = s.local_addr().unwrap();
    s.write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert!(read_response(&mut s).ends_with("Hello World"));

    let accepted = server.line("accepted", |l| l.contains(&format!("accepted peer={client} ")));
    let conn = field(&accepted, "conn").to_owned();
    let fd = field(&accepted, "fd").to_owned();
    assert!(accepted.starts_with(&format!("trace conn={conn} fd={fd} +0.0")), "{accepted}");
    assert!(accepted.contains(&format!("from listener fd={listener_fd}")), "{accepted}");
    assert_ne!(fd, listener_fd);
    #[cfg(target_os = "linux")]
    {
        // The fd really is the connection's socket in the server process, open while the connection is.
        let link = std::fs::read_link(format!("/proc/{}/fd/{fd}", server.child.id())).unwrap();
        assert!(link.to_string_lossy().starts_with("socket:["), "{link:?}");
    }
    let prefix = format!("trace conn={conn} fd={fd} +");
    let mine = move |l: &str| l.starts_with(&prefix);
    let steps = [
        "task=Id(",
        "read ",
        "protocol HTTP/1.x",
        "req=1 request head read: GET /hello HTTP/1.1",
        "req=1 route matched: routes.toml:2 GET /hello",
        "req=1 response ready: 200 OK, 11 body bytes, prepared static response",
        "wrote ",
        "req=1 response written: 200 OK",
    ];
    let mut last_ms = 0.0;
    for step in steps {
        let line = server.line(step, |l| mine(l) && l.contains(&format!("ms {step}")));
        let ms: f64 = line.split(" +").nth(1).unwrap().split("ms ").next().unwrap().parse().unwrap();
        assert!(ms >= last_ms, "timestamps go forward: {line}");
        last_ms = ms;
        if step == "task=Id(" {
            assert!(line.ends_with("took the connection"), "{line}");
        }
        if step.ends_with("response written: 200 OK") {
            assert!(line.ends_with("connection kept alive"), "{line}");
        }
    }

    s.write_all(b"GET /users/7 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    assert!(read_response(&mut s).ends_with("user 7"));
    let line = server.line("req 2 routed", |l| mine(l) && l.contains("req=2 route matched"));
    assert!(line.ends_with("route matched: routes.toml:6 GET /users/{id} for /users/7 (id=7)"), "{line}");
    let line = server.line("req 2 ready", |l| mine(l) && l.contains("req=2 response ready"));
    assert!(line.contains("scripted response"), "{line}");
    let line = server.line("req 2 written", |l| mine(l) && l.contains("req=2 response written"));
    assert!(line.ends_with("connection will close"), "{line}");
    let line = server.line("closed", |l| mine(l) && l.contains(" closed fd="));
    assert!(line.contains(&format!("closed fd={fd} after 2 request(s)")), "{line}");

    // Misses say why, and what nearly matched.
    get(server.addr, "/hello/");
    let line = server.line("404", |l| l.contains("no route: 404"));
    assert!(line.contains("nearest: routes.toml:2 GET /hello: the path ends with `/`, the route does not"), "{line}");
    exchange(server.addr, "DELETE /users/1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let line = server.line("405", |l| l.contains("no route: 405"));
    assert!(line.ends_with("/users/1 is served by routes.toml:6 (GET) but not for DELETE; allowed: GET, HEAD"));
}

/// The trace names the route that really answered: with two routes on one path, the first with `match`
/// conditions, a request that fails them is answered by the second, and the trace says so.
#[test]
fn trace_names_the_route_that_answered_when_match_conditions_fail() {
    let routes = "[[route]]\npath = \"/pay\"\nbody = \"gold\"\n[route.match]\nheaders = { x-tier = \"gold\" }\n\n\
                  [[route]]\npath = \"/pay\"\nbody = \"plain\"\n";
    let mut server = start(routes, &["--trace"]);
    assert!(exchange(server.addr, "GET /pay HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").1.ends_with("plain"));
    let line = server.line("plain routed", |l| l.contains("req=1 route matched"));
    assert!(line.ends_with("route matched: routes.toml:7 GET /pay"), "the fallback answered: {line}");
    let gold = "GET /pay HTTP/1.1\r\nHost: x\r\nX-Tier: gold\r\nConnection: close\r\n\r\n";
    assert!(exchange(server.addr, gold).1.ends_with("gold"));
    let line = server.line("gold routed", |l| l.contains("route matched: routes.toml:1"));
    assert!(line.ends_with("route matched: routes.toml:1 GET /pay"), "{line}");
}

#[tokio::test]
async fn trace_sees_the_h2_preface() {
    let mut server = start(ROUTES, &["--trace"]);
    let client = reqwest::Client::builder().no_proxy().http2_prior_knowledge().build().unwrap();
    let res = client.get(format!("http://{}/hello", server.addr)).send().await.unwrap();
    assert_eq!(res.version(), reqwest::Version::HTTP_2);
    let line = server.line("protocol", |l| l.contains(" protocol "));
    assert!(line.contains("protocol h2: the bytes start with the HTTP/2 connection preface"), "{line}");
    server.line("h2 head", |l| l.contains("req=1 request head read: GET /hello HTTP/2.0"));
    server.line("h2 hand-over", |l| l.contains("req=1 handed to hyper's h2 stream"));
}

/// `name{labels}` samples of a scrape, parsed by an independent parser of the text format.
struct Scrape(prometheus_parse::Scrape);

impl Scrape {
    fn get(addr: SocketAddr) -> Scrape {
        let (_, res) = get(addr, "/__admin/metrics");
        let (head, body) = res.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(head.to_ascii_lowercase().contains("content-type: application/openmetrics-text"), "{head}");
        assert!(body.ends_with("# EOF\n"), "{body}");
        let lines = body.lines().map(|l| Ok(l.to_owned()));
        Scrape(prometheus_parse::Scrape::parse(lines).unwrap())
    }

    /// The value of the sample `name` whose labels include `labels` (0 when there is none yet).
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        use prometheus_parse::Value;
        let mut found = self
            .0
            .samples
            .iter()
            .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(v)));
        let Some(sample) = found.next() else { return 0.0 };
        assert!(found.next().is_none(), "{name} {labels:?} is ambiguous");
        match sample.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
            ref other => panic!("{name}: {other:?}"),
        }
    }
}

#[test]
fn metrics_count_requests_by_route_and_status() {
    let server = start(ROUTES, &[]);
    let before = Scrape::get(server.addr);
    assert_eq!(before.value("hotroute_routes", &[]), 2.0);
    assert_eq!(before.value("hotroute_generation", &[]), 1.0);
    let hello = [("route", "routes.toml:2"), ("path", "/hello"), ("status", "200")];
    let missing = [("route", "-"), ("status", "404")];
    assert_eq!(before.value("hotroute_requests_total", &hello), 0.0);
    let latency_before = before.value("hotroute_request_duration_seconds_count", &[]);

    for _ in 0..7 {
        assert!(get(server.addr, "/hello").1.ends_with("Hello World"));
    }
    for _ in 0..3 {
        assert!(get(server.addr, "/nope").1.starts_with("HTTP/1.1 404"));
    }
    let after = Scrape::get(server.addr);
    assert_eq!(after.value("hotroute_requests_total", &hello), 7.0);
    assert_eq!(after.value("hotroute_requests_total", &missing), 3.0);
    // The first scrape is counted too, under the admin API.
    assert_eq!(after.value("hotroute_requests_total", &[("route", "admin"), ("status", "200")]), 1.0);
    assert_eq!(after.value("hotroute_request_duration_seconds_count", &[]) - latency_before, 11.0);
    assert!(after.value("hotroute_connections_total", &[]) >= 12.0);
}

#[test]
fn metrics_track_open_connections() {
    let server = start(ROUTES, &[]);
    let open = |want: f64| {
        // The server counts a connection closed when its task ends, just after the client sees the close.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got = Scrape::get(server.addr).value("hotroute_open_connections", &[]);
            if got == want {
                return;
            }
            assert!(Instant::now() < deadline, "open connections stayed {got}, expected {want}");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    // Only the scrape's own connection.
    open(1.0);
    let mut held: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(server.addr).unwrap()).collect();
    open(4.0);
    held.truncate(1);
    open(2.0);
    drop(held);
    open(1.0);
}

#[test]
fn metrics_count_reloads_and_failed_reloads() {
    // No watcher: the reloads counted are exactly the two asked for.
    let server = start(ROUTES, &["--no-watch"]);
    let routes = server.dir.path().join("routes.toml");
    let reload = |addr| {
        exchange(addr, "POST /__admin/reload HTTP/1.1\r\nHost: localhost\r\nX-Hotroute: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").1
    };
    std::fs::write(&routes, "[[route]]\npath = \"/hello\"\nstauts = 200\n").unwrap();
    assert!(reload(server.addr).starts_with("HTTP/1.1 422"));
    std::fs::write(&routes, format!("{ROUTES}\n[[route]]\npath = \"/more\"\n")).unwrap();
    assert!(reload(server.addr).starts_with("HTTP/1.1 200"));
    let m = Scrape::get(server.addr);
    assert_eq!(m.value("hotroute_reload_failures_total", &[]), 1.0);
    assert_eq!(m.value("hotroute_reloads_total", &[]), 1.0);
    assert_eq!(m.value("hotroute_generation", &[]), 2.0);
    assert_eq!(m.value("hotroute_routes", &[]), 3.0);
    // Routes that kept their line keep their series.
    get(server.addr, "/hello");
    let m = Scrape::get(server.addr);
    assert_eq!(m.value("hotroute_requests_total", &[("route", "routes.toml:2"), ("status", "200")]), 1.0);
}
