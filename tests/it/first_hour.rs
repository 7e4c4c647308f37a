//! What a newcomer meets in the first hour (issue 13): the CLI's words, the log's form, the messages for common
//! mistakes. Each test runs the real binary or loads a real route file.

use crate::common;
use crate::support::bin::Bin;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_hotroute");

fn routes_dir(toml: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("routes.toml"), toml).unwrap();
    dir
}

/// The real binary in `dir` (through the suite's one runner); `finish` stops it and returns all of its stderr.
struct Running {
    bin: Bin,
    addr: SocketAddr,
}

impl Running {
    fn start(args: &[&str], dir: &Path, env: &[(&str, &str)]) -> Running {
        let mut launch = Bin::command().current_dir(dir).args(args);
        for (k, v) in env {
            launch = launch.env(k, v);
        }
        let bin = launch.start();
        Running { addr: bin.addr, bin }
    }

    /// Stops the server with SIGTERM (so that the log lines it has queued are written) and returns its stderr.
    fn finish(self) -> String {
        self.bin.stop().join("\n")
    }
}

fn request(addr: SocketAddr, head: &str, body: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // A loopback Host and the header that state-changing admin calls need (README "Security").
    write!(
        s,
        "{head}\r\nHost: localhost\r\nX-Hotroute: 1\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn run(args: &[&str], dir: &Path) -> Output {
    Command::new(BIN).args(args).current_dir(dir).output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

const HELLO: &str = "[[route]]\npath = \"/hello\"\nbody = \"hi\"\n";

#[test]
fn log_level_refuses_a_word_that_is_no_level_and_names_the_levels() {
    let dir = routes_dir(HELLO);
    for (word, guess) in [("warning", "did you mean `warn`?"), ("verbose", "did you mean `debug`?"), ("loud", "")] {
        let out = run(&["--port", "0", "--log-level", word], dir.path());
        assert_eq!(out.status.code(), Some(2), "{word}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains(&format!("unknown log level `{word}`")), "{err}");
        assert!(err.contains(guess), "{err}");
        assert!(err.contains("error, warn, info, debug, trace, off"), "{err}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn log_level_takes_a_level_or_a_filter_directive() {
    let dir = routes_dir(HELLO);
    for level in ["warn", "hotroute=debug", "info,hotroute=trace"] {
        let server = Running::start(&["--port", "0", "--log-level", level, "--no-watch"], dir.path(), &[]);
        drop(server);
    }
    let out = run(&["--port", "0", "--log-level", "hotroute=loud"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("unknown log level `loud`"), "{}", stderr(&out));
}

/// A `RUST_LOG` exported for another program (`myapp=debug`, common in a Rust developer's shell) silenced every log
/// line of hotroute, a broken save's error too; one that does not parse silenced everything without a word.
#[test]
fn a_rust_log_for_another_program_does_not_silence_hotroute() {
    let dir = routes_dir(HELLO);
    let server = Running::start(&["--port", "0", "--no-watch"], dir.path(), &[("RUST_LOG", "myapp=debug")]);
    let log = server.finish();
    assert!(log.contains("INFO serving routes=1"), "{log}");
    let server = Running::start(&["--port", "0", "--no-watch"], dir.path(), &[("RUST_LOG", "=[")]);
    let log = server.finish();
    assert!(log.contains("WARN RUST_LOG `=[` is not a log filter"), "{log}");
    assert!(log.contains("logging at --log-level info instead") && log.contains("INFO serving routes=1"), "{log}");
    // RUST_LOG still wins where it speaks of hotroute.
    let server = Running::start(&["--port", "0", "--no-watch"], dir.path(), &[("RUST_LOG", "hotroute=warn")]);
    let log = server.finish();
    assert!(!log.contains("INFO"), "{log}");
}

#[test]
fn a_startup_error_says_error_once() {
    let dir = routes_dir("[[route]]\npath = \"/a\"\nstauts = 200\n");
    let out = run(&["--port", "0"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.starts_with("error: "), "{err}");
    assert!(!err.contains("error: error"), "{err}");
}

#[test]
fn a_reload_error_says_error_once_and_a_start_only_change_is_named() {
    let dir = routes_dir(HELLO);
    let server = Running::start(&["--port", "0", "--no-watch"], dir.path(), &[]);
    std::fs::write(dir.path().join("routes.toml"), "[[route]]\npath = \"/a\"\nstauts = 200\n").unwrap();
    let res = request(server.addr, "POST /__admin/reload HTTP/1.1", "");
    assert!(res.starts_with("HTTP/1.1 422"), "{res}");
    let changed = format!("[server]\nlog_requests = true\nmax_body = \"2MiB\"\n\n{HELLO}");
    std::fs::write(dir.path().join("routes.toml"), changed).unwrap();
    let res = request(server.addr, "POST /__admin/reload HTTP/1.1", "");
    assert!(res.starts_with("HTTP/1.1 200"), "{res}");
    let err = server.finish();
    let failed = err.lines().find(|l| l.contains("ERROR")).unwrap_or_else(|| panic!("{err}"));
    assert!(!failed.contains("error:"), "{failed}");
    assert!(failed.contains("`stauts`"), "{failed}");
    assert!(
        err.contains(
            "[server] `log_requests`, `max_body` changed, but is read only at start: restart hotroute to apply it"
        ),
        "{err}"
    );
}

#[test]
fn reload_refuses_a_body_and_says_the_routes_come_from_the_file() {
    let dir = routes_dir(HELLO);
    let server = Running::start(&["--port", "0", "--no-watch"], dir.path(), &[]);
    let res = request(server.addr, "POST /__admin/reload HTTP/1.1", "[[route]]\npath = \"/x\"\n");
    assert!(res.starts_with("HTTP/1.1 400"), "{res}");
    assert!(res.contains("POST /__admin/reload takes no body: it reloads the route file from disk"), "{res}");
    assert!(res.contains("POST their TOML to /__admin/routes"), "{res}");
    let res = request(server.addr, "POST /__admin/reload HTTP/1.1", "");
    assert!(res.starts_with("HTTP/1.1 200"), "{res}");
}

#[test]
fn check_counts_one_route_in_the_singular() {
    let dir = routes_dir(HELLO);
    let out = run(&["check", "routes.toml"], dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "routes.toml: 1 route, ok\n");
}

#[test]
fn check_on_a_folder_suggests_the_route_file_inside_it() {
    let dir = routes_dir(HELLO);
    std::fs::create_dir(dir.path().join("api")).unwrap();
    let out = run(&["check", "api"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("`api` is a folder, not a route file"), "{err}");
    assert!(err.contains("help: name the route file inside it, e.g. `api/routes.toml`"), "{err}");
}

#[test]
fn listen_takes_a_host_name_and_resolves_it() {
    let dir = routes_dir(HELLO);
    let server = Running::start(&["--listen", "localhost:0", "--no-watch"], dir.path(), &[]);
    assert!(server.addr.ip().is_loopback(), "{}", server.addr);
    let res = request(server.addr, "GET /hello HTTP/1.1", "");
    assert!(res.ends_with("hi"), "{res}");
    let out = run(&["--listen", "no-such-host.invalid:0"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("`--listen no-such-host.invalid:0` is not an address"), "{err}");
    assert!(err.contains("help: give an IP address and a port"), "{err}");
    assert!(!err.contains("error: error"), "{err}");
}

#[test]
fn an_all_interfaces_listen_prints_a_url_a_client_can_use() {
    let dir = routes_dir("[server]\nlisten = \"0.0.0.0:0\"\n\n[[route]]\npath = \"/hello\"\nbody = \"hi\"\n");
    let server = Running::start(&["--no-watch"], dir.path(), &[]);
    assert_eq!(server.addr.ip().to_string(), "127.0.0.1");
    assert_ne!(server.addr.port(), 0);
    let res = request(server.addr, "GET /hello HTTP/1.1", "");
    assert!(res.ends_with("hi"), "{res}");
    let port = server.addr.port();
    let err = server.finish();
    assert!(err.contains(&format!("serving on all interfaces (0.0.0.0:{port})")), "{err}");
}

/// `proxy = "http://localhost:99999"` (a typo in the port) loaded, and every request then got "502 ... Connection
/// refused", as if the upstream were down; `hotroute record --upstream` the same.
#[test]
fn a_proxy_url_with_a_port_out_of_range_is_refused_at_load() {
    let dir = routes_dir("[server]\nproxy = \"http://127.0.0.1:99999\"\n");
    let out = run(&["check"], dir.path());
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("proxy: `http://127.0.0.1:99999` has the port `99999`, which is no TCP port"), "{text}");
    assert!(text.contains("routes.toml:2:9") && text.contains("help: use a port from 1 to 65535"), "{text}");
    let out = run(&["record", "--upstream", "http://127.0.0.1:80800", "--port", "0"], dir.path());
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("has the port `80800`, which is no TCP port"), "{}", stderr(&out));
    // An IPv6 host with or without a port, and an empty port (the default, RFC 3986), are fine.
    for url in ["http://[::1]:8080/v1", "http://[::1]", "http://127.0.0.1:/"] {
        let dir = routes_dir(&format!("[server]\nproxy = \"{url}\"\n"));
        let out = run(&["check"], dir.path());
        assert!(out.status.success(), "{url}: {}", stderr(&out));
    }
}

/// `--openapi missing.yaml` was reported as `([server] openapi)`, sending the user to a route file that names none.
#[test]
fn a_missing_openapi_document_is_named_by_where_it_was_given() {
    let dir = routes_dir(HELLO);
    let out = run(&["--port", "0", "--openapi", "missing.yaml"], dir.path());
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("error: OpenAPI document `missing.yaml` (--openapi): cannot read"), "{text}");
    assert!(!text.contains("[server] openapi"), "{text}");
    let dir = routes_dir(&format!("[server]\nopenapi = \"missing.yaml\"\n\n{HELLO}"));
    let text = stderr(&run(&["check"], dir.path()));
    assert!(text.contains("missing.yaml` ([server] openapi): cannot read"), "{text}");
}

#[test]
fn the_coverage_error_puts_the_os_error_before_the_help() {
    let dir = routes_dir(HELLO);
    let out = run(&["--port", "0", "--coverage", "/nonexistent/folder/coverage.json"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let first = err.lines().find(|l| l.starts_with("error")).unwrap_or_else(|| panic!("{err}"));
    assert!(
        first.starts_with("error: cannot write the coverage report to /nonexistent/folder/coverage.json: "),
        "{err}"
    );
    assert!(first.contains("os error"), "{err}");
    assert!(err.trim_end().ends_with("help: create its folder, or give --coverage another path"), "{err}");
}

/// `2026-05-01T10:11:12.345Z`: the one timestamp form of every log line.
fn millis_stamp(line: &str) -> bool {
    let b = line.as_bytes();
    b.len() > 24
        && b[4] == b'-'
        && b[10] == b'T'
        && b[19] == b'.'
        && b[20..23].iter().all(u8::is_ascii_digit)
        && b[23] == b'Z'
        && b[24] == b' '
}

#[test]
fn logs_have_no_colour_off_a_terminal_and_one_timestamp_form() {
    let dir = routes_dir(HELLO);
    let server = Running::start(&["--port", "0", "--no-watch", "--log-requests"], dir.path(), &[("TERM", "xterm")]);
    let res = request(server.addr, "GET /hello HTTP/1.1", "");
    assert!(res.ends_with("hi"), "{res}");
    let err = server.finish();
    assert!(!err.contains('\x1b'), "colour codes in a pipe: {err:?}");
    let serving = err.lines().find(|l| l.contains("serving")).unwrap_or_else(|| panic!("{err}"));
    let access = err.lines().find(|l| l.contains("GET /hello")).unwrap_or_else(|| panic!("{err}"));
    assert!(millis_stamp(serving), "{serving}");
    assert!(millis_stamp(access), "{access}");
}

// Messages for common mistakes: each says what to write instead.

use common::load_error;

#[test]
fn single_brackets_say_write_double_brackets() {
    let text = load_error("[route]\npath = \"/a\"\n");
    assert!(text.contains("`[route]` is a single table, but each route is an entry in a list"), "{text}");
    assert!(text.contains("help: write `[[route]]` (double brackets) for each route"), "{text}");
}

#[test]
fn a_quoted_status_says_it_is_a_number() {
    let text = load_error("[[route]]\npath = \"/a\"\nstatus = \"201\"\n");
    assert!(text.contains("status is a number, not a string: `status = 201`"), "{text}");
    assert!(text.contains("routes.toml:3:10"), "{text}");
}

/// `query = { page = 2 }` is the first match a newcomer writes; it said "invalid type: integer `2`, expected a
/// string" and "change the value to the type the message names".
#[test]
fn a_number_or_boolean_where_text_goes_says_add_quotes() {
    let dir = routes_dir("[[route]]\npath = \"/a\"\nmatch = { query = { page = 2 } }\n");
    let text = stderr(&run(&["check"], dir.path()));
    assert!(text.contains("error: `page = 2` is a number, but `page` takes text"), "{text}");
    assert!(text.contains("routes.toml:3:28") && text.contains("help: add quotes: `page = \"2\"`"), "{text}");
    let text = load_error("[[route]]\npath = \"/a\"\n[route.headers]\n\"x retry\" = true\n");
    assert!(
        text.contains("`\"x retry\" = true` is a boolean") && text.contains("add quotes: `\"x retry\" = \"true\"`"),
        "{text}"
    );
    // A duration or a rate gets its unit in the example, since the quoted number alone would be refused next.
    let text = load_error("[[route]]\npath = \"/a\"\ndelay = 300\n");
    assert!(text.contains("`delay = 300` is a number, but `delay` is a duration: text with its unit"), "{text}");
    assert!(text.contains("help: write it in quotes with its unit, e.g. `delay = \"300ms\"` or `\"300s\"`"), "{text}");
    let text = load_error("[[route]]\npath = \"/a\"\nbody = 4.5\n");
    assert!(text.contains("`body = 4.5` is a number, but `body` takes text"), "{text}");
}

#[test]
fn misspelt_keys_get_the_nearest_known_key() {
    let text = load_error("[[routes]]\npath = \"/a\"\n");
    assert!(text.contains("unknown field `routes`") && text.contains("help: did you mean `route`?"), "{text}");
    let text = load_error("[[route]]\npath = \"/a\"\nstauts = 200\n");
    assert!(text.contains("unknown field `stauts`") && text.contains("help: did you mean `status`?"), "{text}");
    let text = load_error("[[route]]\npath = \"/a\"\nzzz = 1\n");
    assert!(text.contains("help: the keys here are `path`, `method`, `status`"), "{text}");
}

#[test]
fn include_below_a_table_says_move_it_up() {
    for toml in
        ["[server]\nadmin = true\ninclude = [\"x.toml\"]\n", "[[route]]\npath = \"/a\"\ninclude = [\"x.toml\"]\n"]
    {
        let text = load_error(toml);
        assert!(text.contains("`include` is inside a table here"), "{text}");
        assert!(text.contains("help: move `include` above the first table"), "{text}");
    }
}

#[test]
fn bad_route_paths_are_said_in_hotroutes_words() {
    let text = load_error("[[route]]\npath = \"/a/{x\"\n");
    assert!(text.contains("route path `/a/{x` has a parameter without a name or an unclosed brace"), "{text}");
    assert!(!text.contains("Parameters must be registered"), "{text}");
    let text = load_error("[[route]]\npath = \"/a/{x}-{y}\"\n");
    assert!(text.contains("has two parameters in one segment"), "{text}");
}

#[test]
fn colon_and_star_parameters_are_refused_with_the_right_syntax() {
    let text = load_error("[[route]]\npath = \"/users/:id\"\n");
    assert!(text.contains("route path `/users/:id` writes a parameter as `:id`"), "{text}");
    assert!(text.contains("help: write `{id}`: \"/users/{id}\""), "{text}");
    let text = load_error("[[route]]\npath = \"/a/*\"\n");
    assert!(text.contains("help: write `{*rest}`: \"/a/{*rest}\""), "{text}");
    let text = load_error("[[route]]\npath = \"/files/*path\"\n");
    assert!(text.contains("help: write `{*path}`"), "{text}");
    // A colon inside a segment is literal text, as in `/v1/models:generate`.
    let dir = routes_dir("[[route]]\npath = \"/v1/models:generate\"\n");
    assert!(run(&["check"], dir.path()).status.success());
}

/// A query, a fragment or a `.`/`..` segment in `path` made a route that loaded and could never answer: the router
/// sees the path alone, clients never send the fragment, and they remove dot segments before sending.
#[test]
fn a_route_path_no_client_can_request_is_refused_saying_what_to_write() {
    let check = |path: &str| {
        let dir = routes_dir(&format!("[[route]]\npath = \"{path}\"\nbody = \"x\"\n"));
        let out = run(&["check"], dir.path());
        assert_eq!(out.status.code(), Some(1), "{path}: {}", stderr(&out));
        stderr(&out)
    };
    let text = check("/search?q=a+b&page=2");
    assert!(text.contains("route path `/search?q=a+b&page=2` holds a query"), "{text}");
    assert!(text.contains("routes.toml:2:8"), "{text}");
    assert!(
        text.contains("help: write `path = \"/search\"` and match the query with `match = { query = { q = \"a b\", page = \"2\" } }`"),
        "{text}"
    );
    let text = check("/a?debug");
    assert!(text.contains("help: write `path = \"/a\"`, and `match = { query = { NAME = \"VALUE\" } }`"), "{text}");
    let text = check("/docs#intro");
    assert!(
        text.contains("has a fragment `#intro`, which clients never send")
            && text.contains("help: remove it: \"/docs\""),
        "{text}"
    );
    let text = check("/a/../b");
    assert!(
        text.contains("has a `.` or `..` segment") && text.contains("help: write the path as clients send it: \"/b\""),
        "{text}"
    );
    let text = check("/a/./b/.");
    assert!(text.contains("clients send it: \"/a/b/\""), "{text}");
    // The suggested form loads and answers the request the path meant.
    let dir = routes_dir("[[route]]\npath = \"/search\"\nmatch = { query = { q = \"a b\", page = \"2\" } }\n");
    assert!(run(&["check"], dir.path()).status.success());
}

/// A route file saved by Windows Notepad starts with a byte-order mark: the mark counted as a column of line 1, so an
/// error there was said one column off (`1:4` for `[[routes]]`) and its caret sat one place right of the key.
#[test]
fn a_byte_order_mark_does_not_shift_the_place_of_an_error_on_the_first_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("routes.toml"), "\u{feff}[[routes]]\r\npath = \"/a\"\r\n").unwrap();
    let out = run(&["check"], dir.path());
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("--> routes.toml:1:3\n"), "{text}");
    assert!(text.contains("\n1 | [[routes]]\n  |   ^^^^^^\n"), "{text}");
    // With the typo fixed, the same file (mark and CRLF line ends) loads.
    std::fs::write(dir.path().join("routes.toml"), "\u{feff}[[route]]\r\npath = \"/a\"\r\n").unwrap();
    assert!(run(&["check"], dir.path()).status.success());
}

/// The same mark at the start of a document to import or of a resource's data file: a YAML OpenAPI document said
/// "more than one document", a WireMock mapping, a HAR file and a data file "expected value at line 1 column 1", for
/// files that look fine in any editor.
#[test]
fn documents_and_data_files_with_a_byte_order_mark_load() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, format!("\u{feff}{text}")).unwrap();
    };
    write(
        "openapi.yaml",
        "openapi: 3.0.0\ninfo: { title: t, version: '1' }\npaths:\n  /p:\n    get:\n      responses:\n        \
         '200': { description: ok, content: { application/json: { example: { a: 1 } } } }\n",
    );
    write("wm/mappings/a.json", r#"{"request": {"url": "/a"}, "response": {"status": 200, "body": "a"}}"#);
    write("s.har", r#"{"log": {"version": "1.2", "creator": {"name": "x", "version": "1"}, "entries": []}}"#);
    // A resource's data file too, read when the routes load.
    write("users.json", r#"[{"id": 1, "name": "Ada"}]"#);
    std::fs::write(dir.path().join("routes.toml"), "[[resource]]\npath = \"/users\"\ndata = \"users.json\"\n").unwrap();
    let out = run(&["check"], dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    for (args, want) in [
        (["import", "openapi", "openapi.yaml"], "openapi.yaml: 1 route"),
        (["import", "wiremock", "wm"], "wm: 1 route"),
        (["import", "har", "s.har"], "s.har: 0 routes"),
    ] {
        let out = run(&args, dir.path());
        assert!(out.status.success() && stderr(&out).contains(want), "{args:?}: {}", stderr(&out));
    }
}

/// A WireMock stub with a `Transfer-Encoding` header or a `204` with a body, and a Mockoon environment with a
/// `Transfer-Encoding` header: imported as routes whose answers never reached a client whole (an empty reply, a
/// reset HTTP/2 stream). The header and the body are left out, so the routes load and answer.
#[test]
fn imported_stubs_leave_out_what_would_break_their_answers() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("mappings")).unwrap();
    std::fs::write(
        dir.path().join("mappings/a.json"),
        r#"{"mappings": [
            {"request": {"method": "GET", "url": "/a"}, "response": {"status": 200, "body": "a", "headers": {"Transfer-Encoding": "chunked"}}},
            {"request": {"method": "DELETE", "url": "/b"}, "response": {"status": 204, "body": "gone"}}]}"#,
    )
    .unwrap();
    let out = run(&["import", "wiremock", ".", "-o", "wm.toml"], dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("a `204` answer has no body; the stub's body is left out"), "{}", stderr(&out));
    let text = std::fs::read_to_string(dir.path().join("wm.toml")).unwrap();
    assert!(!text.contains("transfer-encoding") && !text.contains("gone") && !text.contains("# [[route]]"), "{text}");
    std::fs::write(
        dir.path().join("env.json"),
        r#"{"uuid": "u", "name": "Env", "port": 3001, "endpointPrefix": "",
            "headers": [{"key": "Transfer-Encoding", "value": "chunked"}, {"key": "X-Env", "value": "1"}],
            "routes": [{"uuid": "r", "type": "http", "method": "get", "endpoint": "a", "responses": [
                {"uuid": "x", "body": "a", "statusCode": 200, "headers": [], "bodyType": "INLINE", "rules": [],
                 "rulesOperator": "OR", "default": true}]}]}"#,
    )
    .unwrap();
    let out = run(&["import", "mockoon", "env.json", "-o", "mk.toml"], dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    for file in ["wm.toml", "mk.toml"] {
        let out = run(&["check", file], dir.path());
        assert!(out.status.success(), "{file}: {}", stderr(&out));
    }
}

/// `hotroute import openapi spec.yaml -o routes.toml` replaced a hand-written routes.toml without a word. It is now
/// left as it is, with the way out; a file an import wrote may be written again (a refreshed import).
#[test]
fn an_import_does_not_overwrite_a_hand_written_route_file() {
    let dir = routes_dir(HELLO);
    std::fs::write(
        dir.path().join("spec.yaml"),
        "openapi: 3.0.0\ninfo: { title: t, version: '1' }\npaths:\n  /p:\n    get:\n      responses:\n        \
         '200': { description: ok }\n",
    )
    .unwrap();
    let out = run(&["import", "openapi", "spec.yaml", "-o", "routes.toml"], dir.path());
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("error: `routes.toml` exists and was not written by `hotroute import`"), "{text}");
    assert!(text.contains("help: write to another file, e.g. `-o imported.toml`"), "{text}");
    assert_eq!(std::fs::read_to_string(dir.path().join("routes.toml")).unwrap(), HELLO);
    for _ in 0..2 {
        let out = run(&["import", "openapi", "spec.yaml", "-o", "imported.toml"], dir.path());
        assert!(out.status.success(), "{}", stderr(&out));
    }
}

/// `include = ["routes.d/"]` (a folder written with its slash, as shells complete it) suggested `"routes.d//*.toml"`.
#[test]
fn an_included_folder_written_with_its_slash_gets_a_pattern_without_a_double_slash() {
    let dir = routes_dir(&format!("include = [\"routes.d/\"]\n{HELLO}"));
    std::fs::create_dir(dir.path().join("routes.d")).unwrap();
    let out = run(&["check"], dir.path());
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("include `routes.d/` is a folder"), "{text}");
    assert!(text.contains("e.g. \"routes.d/*.toml\""), "{text}");
}

#[test]
fn a_delay_with_another_unit_lists_only_the_allowed_units() {
    let text = load_error("[[route]]\npath = \"/a\"\ndelay = \"5 parsecs\"\n");
    assert!(text.contains("`5 parsecs` is not a delay: unknown unit `parsecs`"), "{text}");
    assert!(text.contains("the units are ms, s, m and h"), "{text}");
    assert!(!text.contains("months"), "{text}");
}

#[test]
fn the_duplicate_route_label_is_on_the_line_the_message_names() {
    let text = load_error("[[route]]\npath = \"/a\"\n\n[[route]]\npath = \"/a\"\n");
    assert!(text.contains("the one at line 1 always answers first"), "{text}");
    let label = text.lines().position(|l| l.contains("first defined here")).unwrap_or_else(|| panic!("{text}"));
    let above = text.lines().nth(label - 1).unwrap();
    assert!(above.starts_with("1 | [[route]]"), "{text}");
}

#[test]
fn json_written_as_a_string_is_refused_with_the_table_form() {
    let text = load_error("[[route]]\npath = \"/a\"\njson = '{\"a\": 1}'\n");
    assert!(text.contains("`json` is a string holding JSON text, so it would be served as one JSON string"), "{text}");
    assert!(text.contains("json = { a = 1 }"), "{text}");
    // A plain string is a fine JSON value.
    let dir = routes_dir("[[route]]\npath = \"/a\"\njson = \"hello\"\n");
    assert!(run(&["check"], dir.path()).status.success());
}

// Behaviour a newcomer meets in the first requests.

use common::{TestServer, client};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_faulted_request_is_recorded_as_a_fault_not_as_200() {
    let s = TestServer::start("[[route]]\npath = \"/reset\"\nfault = \"reset\"\n").await;
    let c = client();
    assert!(c.get(s.url("/reset")).send().await.is_err(), "the client sees the reset");
    let journal: serde_json::Value = c.get(s.url("/__admin/requests")).send().await.unwrap().json().await.unwrap();
    let entry = &journal["requests"][0];
    assert_eq!(entry["status"], 0, "{journal}");
    assert_eq!(entry["fault"], "reset", "{journal}");
    let metrics = c.get(s.url("/__admin/metrics")).send().await.unwrap().text().await.unwrap();
    let line = metrics.lines().find(|l| l.contains("path=\"/reset\"")).unwrap_or_else(|| panic!("{metrics}"));
    assert!(line.contains("status=\"0\""), "{line}");
    let requests = s.live.journal().requests();
    assert_eq!(requests[0].fault(), Some("reset"));
    assert!(requests[0].to_string().starts_with("#1 GET /reset -> fault:reset, route GET /reset"), "{}", requests[0]);
    s.stop().await;
}

/// A route written `/café` or `/hello world` loaded and answered only a client that sent the raw bytes: every real
/// client percent-encodes the path (reqwest and browsers as `%C3%A9`, curl as `%c3%a9`), and got a 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_path_with_non_ascii_or_spaces_answers_the_percent_encoded_request() {
    let dir = routes_dir(
        "[[route]]\npath = \"/café\"\nbody = \"café\"\n\n[[route]]\npath = \"/hello world/{name}\"\nbody = \"hi\"\n\n\
         [[route]]\npath = \"/{{v}}/ü\"\nbody = \"braces\"\n",
    );
    let server = Running::start(&["--port", "0", "--no-watch"], dir.path(), &[]);
    let base = format!("http://{}", server.addr);
    let c = reqwest::Client::new();
    for (path, body) in [("/café", "café"), ("/hello world/ada", "hi"), ("/{v}/ü", "braces")] {
        let response = c.get(format!("{base}{path}")).send().await.unwrap();
        let sent = response.url().path().to_owned();
        assert_eq!(response.status(), 200, "{path} sent as {sent}");
        assert_eq!(response.text().await.unwrap(), body, "{path} sent as {sent}");
    }
    // curl's form (lower-case hex), and the raw bytes, which the route answered before.
    for target in ["/caf%c3%a9", "/caf%C3%A9", "/café", "/%7bv%7d/%c3%bc"] {
        let answer = request(server.addr, &format!("GET {target} HTTP/1.1"), "");
        assert!(answer.starts_with("HTTP/1.1 200"), "{target}: {answer}");
    }
    // The route keeps its path as written in the listings.
    let routes = request(server.addr, "GET /__admin/routes HTTP/1.1", "");
    assert!(routes.contains("\"path\":\"/café\""), "{routes}");
    server.finish();
}

/// `{{ path.name }}` gave the segment as the client escaped it (`Jos%C3%A9%20Ada`), while `query.<name>` is decoded.
#[test]
fn a_path_parameter_in_a_template_is_decoded_like_a_query_parameter() {
    let dir = routes_dir(
        "[[route]]\npath = \"/users/{name}\"\ntemplate = true\njson = { name = \"{{ path.name }}\", q = \"{{ query.q }}\" }\n",
    );
    let server = Running::start(&["--port", "0", "--no-watch"], dir.path(), &[]);
    let answer = request(server.addr, "GET /users/Jos%C3%A9%20Ada?q=Jos%C3%A9%20Ada HTTP/1.1", "");
    assert!(answer.ends_with(r#"{"name":"José Ada","q":"José Ada"}"#), "{answer}");
    server.finish();
}

/// `//users` (a doubled slash, as a base URL ending in `/` joined with `/users` gives) got a 404 naming the route
/// with "the path has an extra segment ``": an empty name between backticks.
#[test]
fn a_double_slash_is_named_in_the_near_miss_404() {
    let dir = routes_dir("[[route]]\npath = \"/users\"\nbody = \"u\"\n");
    let server = Running::start(&["--port", "0", "--no-watch"], dir.path(), &[]);
    let answer = request(server.addr, "GET //users HTTP/1.1", "");
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    assert!(answer.contains("GET /users (routes.toml:1): the path has a double `/` (an empty segment)"), "{answer}");
    assert!(!answer.contains("``"), "{answer}");
    server.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_headers_are_on_hotroutes_own_answers_too() {
    let s = TestServer::start(
        "[server]\nheaders = { x-served-by = \"hotroute\" }\n\n[[route]]\npath = \"/a\"\nmethod = \"POST\"\nbody = \"a\"\n",
    )
    .await;
    let c = client();
    for (method, path, status) in
        [("POST", "/a", 200), ("GET", "/nowhere", 404), ("GET", "/a", 405), ("GET", "/__admin/health", 200)]
    {
        let res = c.request(method.parse().unwrap(), s.url(path)).send().await.unwrap();
        assert_eq!(res.status(), status, "{method} {path}");
        assert_eq!(res.headers()["x-served-by"], "hotroute", "{method} {path}");
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_keys_keep_the_order_of_the_file() {
    let s = TestServer::start(
        "[[route]]\npath = \"/a\"\njson = { zebra = 1, apple = { pear = 2, fig = 3 } }\n\n\
         [[route]]\npath = \"/t\"\ntemplate = true\njson = { zebra = \"{{ 1 }}\", apple = 2 }\n",
    )
    .await;
    let c = client();
    assert_eq!(
        c.get(s.url("/a")).send().await.unwrap().text().await.unwrap(),
        r#"{"zebra":1,"apple":{"pear":2,"fig":3}}"#
    );
    let t = c.get(s.url("/t")).send().await.unwrap().text().await.unwrap();
    assert!(t.find("zebra").unwrap() < t.find("apple").unwrap(), "{t}");
    s.stop().await;
}

#[test]
fn an_unknown_fake_kind_is_a_load_error() {
    let text = load_error("[[route]]\npath = \"/a\"\ntemplate = true\nbody = \"{{ fake('nonsense') }}\"\n");
    assert!(text.contains("fake('nonsense'): unknown kind; the kinds are first_name, last_name"), "{text}");
    assert!(text.contains("routes.toml:4:"), "{text}");
    let text = load_error("[[route]]\npath = \"/a\"\ntemplate = true\nbody = '{{ fake(\"emial\") }}'\n");
    assert!(text.contains("did you mean `email`?"), "{text}");
    // A kind known only at render time is checked then.
    let dir = routes_dir("[[route]]\npath = \"/a\"\ntemplate = true\nbody = \"{{ fake(query.kind) }}\"\n");
    assert!(run(&["check"], dir.path()).status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_near_miss_404_names_the_right_segment_ranks_case_first_and_every_failed_condition() {
    let s = TestServer::start(
        "[[route]]\npath = \"/user\"\nbody = \"a\"\n\n[[route]]\npath = \"/Users\"\nbody = \"b\"\n\n\
         [[route]]\npath = \"/users/{id}\"\nbody = \"c\"\n\n\
         [[route]]\npath = \"/search\"\nmatch = { query = { q = \"x\" }, headers = { x-key = \"1\" } }\nbody = \"d\"\n",
    )
    .await;
    let c = client();
    let text = |path: &'static str| {
        let c = c.clone();
        let url = s.url(path);
        async move { c.get(url).send().await.unwrap().text().await.unwrap() }
    };
    let t = text("/users/7/extra").await;
    assert!(
        t.contains("GET /users/{id} (") && t.contains("routes.toml:9): the path has an extra segment `extra`"),
        "{t}"
    );
    let t = text("/users").await;
    let case = t.find("letter case differs").unwrap_or_else(|| panic!("{t}"));
    assert!(case < t.find("GET /user (").unwrap(), "the letter-case miss comes first: {t}");
    let t = text("/usres/7").await;
    assert!(t.contains("the path has `usres` where the route has `users`"), "{t}");
    let t = text("/search?q=y").await;
    assert!(
        t.contains("query parameter `q` is `y`, the route wants `x`; header `x-key` is missing, the route wants one"),
        "{t}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dir_catch_all_answers_its_bare_prefix_and_a_fallback_answers_unknown_paths() {
    let s = TestServer::start_with_files(
        "[[route]]\npath = \"/docs/{*rest}\"\ndir = \"docs\"\n\n\
         [[route]]\npath = \"/app/{*rest}\"\ndir = \"app\"\nfallback = \"index.html\"\n",
        &[
            ("docs/index.html", "<h1>docs</h1>"),
            ("docs/a.txt", "a"),
            ("app/index.html", "<h1>spa</h1>"),
            ("app/app.js", "js"),
        ],
    )
    .await;
    let c = client();
    let get = |path: &'static str| {
        let (c, url) = (c.clone(), s.url(path));
        async move {
            let res = c.get(url).send().await.unwrap();
            (res.status().as_u16(), res.text().await.unwrap())
        }
    };
    assert_eq!(get("/docs/").await, (200, "<h1>docs</h1>".to_owned()));
    assert_eq!(get("/docs/a.txt").await, (200, "a".to_owned()));
    assert_eq!(get("/docs/missing").await.0, 404, "no fallback, no file: 404");
    assert_eq!(get("/app/").await, (200, "<h1>spa</h1>".to_owned()));
    assert_eq!(get("/app/app.js").await, (200, "js".to_owned()));
    assert_eq!(get("/app/settings/profile").await, (200, "<h1>spa</h1>".to_owned()));
    assert_eq!(get("/app/%2e%2e/secret").await.0, 404, "a refused path gets no fallback");
    s.stop().await;
}

/// `localhost:3000/docs` for a `dir` route at `/docs/{*rest}` (the address a user types) was a 404 "the route wants
/// more after `/docs/`", though README says a folder named without its slash redirects to it.
#[test]
fn a_dir_routes_folder_named_without_its_slash_redirects_to_it() {
    let dir = routes_dir(
        "[[route]]\npath = \"/docs/{*rest}\"\ndir = \"docs\"\n\n\
         [[route]]\npath = \"/app/{*rest}\"\ndir = \"app\"\nfallback = \"index.html\"\n\n\
         [[route]]\npath = \"/plain\"\ndir = \"docs\"\n",
    );
    for folder in ["docs", "app"] {
        std::fs::create_dir(dir.path().join(folder)).unwrap();
        std::fs::write(dir.path().join(folder).join("index.html"), format!("<h1>{folder}</h1>")).unwrap();
    }
    let server = Running::start(&["--port", "0", "--no-watch"], dir.path(), &[]);
    for (target, location) in [("/docs", "/docs/"), ("/docs?x=1", "/docs/?x=1"), ("/app", "/app/")] {
        let answer = request(server.addr, &format!("GET {target} HTTP/1.1"), "");
        assert!(answer.starts_with("HTTP/1.1 301"), "{target}: {answer}");
        assert!(answer.contains(&format!("\r\nlocation: {location}\r\n")), "{target}: {answer}");
    }
    let answer = request(server.addr, "GET /docs/ HTTP/1.1", "");
    assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with("<h1>docs</h1>"), "{answer}");
    // A `dir` route without a catch-all answers its own path, as before.
    let answer = request(server.addr, "GET /plain HTTP/1.1", "");
    assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with("<h1>docs</h1>"), "{answer}");
    server.finish();
}

#[test]
fn a_fallback_is_checked_at_load() {
    let dir = routes_dir("[[route]]\npath = \"/app/{*rest}\"\ndir = \"app\"\nfallback = \"nope.html\"\n");
    std::fs::create_dir(dir.path().join("app")).unwrap();
    let out = run(&["check"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("cannot open fallback `nope.html`"), "{}", stderr(&out));
    let text = load_error("[[route]]\npath = \"/a\"\nbody = \"x\"\nfallback = \"index.html\"\n");
    assert!(text.contains("`fallback` without a `dir`"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_can_be_a_template_and_url_path_is_the_path_without_the_query() {
    let s = TestServer::start(
        "[[route]]\npath = \"/items\"\nmethod = \"POST\"\ntemplate = true\n\
         status = \"{{ 201 if json else 400 }}\"\nbody = \"{{ url_path }} {{ url }}\"\n\n\
         [[route]]\npath = \"/bad\"\ntemplate = true\nstatus = \"{{ query.s }}\"\nbody = \"x\"\n\n\
         [[route]]\npath = \"/only\"\ntemplate = true\nstatus = \"{{ 202 }}\"\n",
    )
    .await;
    let c = client();
    let res = c.post(s.url("/items?x=1")).body("{\"a\": 1}").send().await.unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(res.text().await.unwrap(), "/items /items?x=1");
    let res = c.post(s.url("/items")).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(c.get(s.url("/only")).send().await.unwrap().status(), 202);
    let res = c.get(s.url("/bad?s=204")).send().await.unwrap();
    assert_eq!(res.status(), 204);
    for bad in ["/bad?s=abc", "/bad?s=99", "/bad?s=103", "/bad?s=600"] {
        let res = c.get(s.url(bad)).send().await.unwrap();
        assert_eq!(res.status(), 500, "{bad}");
        let text = res.text().await.unwrap();
        assert!(text.contains("which is not a final status code from 200 to 599"), "{text}");
    }
    s.stop().await;
}

/// Three answers that loaded and never reached a client whole: a 1xx status (hyper answered a bare 500), a 204 or
/// 304 with a body (HTTP/1.1 clients were sent its length and no bytes, HTTP/2 clients had the stream reset), a
/// `transfer-encoding` header (HTTP/1.1 clients got an empty reply). Each is now a load error at its key.
#[test]
fn an_answer_no_client_could_receive_is_a_load_error_at_its_key() {
    let dir = routes_dir(
        "[[route]]\npath = \"/hints\"\nstatus = 103\n\n\
         [[route]]\npath = \"/deleted\"\nmethod = \"DELETE\"\nstatus = 204\njson = { ok = true }\n\n\
         [[route]]\npath = \"/cached\"\nsequence = [{ body = \"fresh\" }, { status = 304, body = \"stale\" }]\n\n\
         [[route]]\npath = \"/chunked\"\nbody = \"x\"\nheaders = { Transfer-Encoding = \"chunked\" }\n",
    );
    let out = run(&["check"], dir.path());
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("error: `103` is an interim status (1xx), which cannot be the answer to a request"),
        "{text}"
    );
    assert!(text.contains("routes.toml:3:10") && text.contains("help: use a final status from 200 to 999"), "{text}");
    assert!(text.contains("error: a `204` answer has no body, so this one would never reach a client"), "{text}");
    assert!(text.contains("routes.toml:9:8"), "{text}");
    assert!(text.contains("error: a `304` answer has no body") && text.contains("routes.toml:13:56"), "{text}");
    assert!(text.contains("error: a `transfer-encoding` header on an answer breaks it"), "{text}");
    assert!(text.contains("routes.toml:18:13") && text.contains("help: remove it: hotroute frames the body"), "{text}");
    assert!(text.contains("4 errors in the route file"), "{text}");
    // A 204 without a body, or with an empty one, is fine.
    let dir =
        routes_dir("[[route]]\npath = \"/a\"\nstatus = 204\n\n[[route]]\npath = \"/b\"\nstatus = 204\nbody = \"\"\n");
    assert!(run(&["check"], dir.path()).status.success());
}

/// A status template that renders 204 on a route with a body: the body is dropped, so that HTTP/1.1 clients are
/// not told a length that never comes and HTTP/2 clients get the answer instead of a reset stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_template_rendering_204_sends_no_body_on_http1_and_http2() {
    let dir = routes_dir("[[route]]\npath = \"/t\"\ntemplate = true\nstatus = \"{{ query.s }}\"\nbody = \"x\"\n");
    let server = Running::start(&["--port", "0", "--no-watch"], dir.path(), &[]);
    let answer = request(server.addr, "GET /t?s=204 HTTP/1.1", "");
    assert!(answer.starts_with("HTTP/1.1 204"), "{answer}");
    assert!(!answer.to_ascii_lowercase().contains("content-length: 1"), "{answer}");
    let frames = crate::support::h2::h2_exchange(
        server.addr,
        &crate::support::h2::request_headers(false, "/t?s=204"),
        Duration::from_secs(5),
    )
    .await;
    assert!(!frames.iter().any(|f| f.0 == crate::support::h2::RST_STREAM), "{frames:?}");
    assert!(
        frames.iter().any(|f| f.0 == crate::support::h2::HEADERS && f.1 & crate::support::h2::END_STREAM != 0),
        "{frames:?}"
    );
    // Other statuses keep the body.
    assert!(request(server.addr, "GET /t?s=200 HTTP/1.1", "").ends_with("\r\n\r\nx"));
    server.finish();
}

#[test]
fn a_text_status_without_a_template_says_how_to_write_one() {
    let text = load_error("[[route]]\npath = \"/a\"\nstatus = \"{{ 201 }}\"\n");
    assert!(text.contains("status `{{ 201 }}` is text, not a status code"), "{text}");
    assert!(text.contains("needs `template = true`"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn int_on_a_value_that_is_no_number_names_the_json_key_and_the_value() {
    let s = TestServer::start(
        "[[route]]\npath = \"/users/{id}\"\ntemplate = true\njson = { id = \"{{ path.id | int }}\" }\n",
    )
    .await;
    let c = client();
    assert_eq!(c.get(s.url("/users/7")).send().await.unwrap().text().await.unwrap(), r#"{"id":7}"#);
    let res = c.get(s.url("/users/abc")).send().await.unwrap();
    assert_eq!(res.status(), 500);
    let text = res.text().await.unwrap();
    assert!(text.contains("`abc` is not a number, so `int` cannot make it one"), "{text}");
    assert!(text.contains(" json:1"), "names the `json` key: {text}");
    assert!(!text.contains("body:1") && !text.contains("float literal"), "{text}");
    s.stop().await;
}
