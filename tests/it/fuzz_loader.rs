//! Property test of the route-file loader: random text and mutated route files go to `Router::load_str`, which must
//! return a router or an error (and the error must render), never panic, never hang. The case counts keep the run
//! to seconds in CI; raise them with PROPTEST_CASES for a longer local run.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};

/// Valid route files, the seeds that mutations start from.
const SEEDS: &[&str] = &[
    include_str!("../../routes.toml"),
    r#"
[server]
listen = "127.0.0.1:8080"
headers = { x-served-by = "hotroute" }
max_body = "10MiB"
header_read_timeout = "5s"
max_connections = 100

[[route]]
path = "/users/{id}"
method = ["GET", "HEAD"]
template = true
json = { id = "{{ path.id }}", kind = "user", tags = ["a", "b"], when = 1979-05-27 }

[[route]]
path = "/items"
method = "POST"
status = 201
headers = { location = "/items/1" }

[[route]]
path = "/docs/{*rest}"
file = "docs/index.html"

[[route]]
path = "/t"
template = true
body = "{% for i in range(3) %}{{ i }}-{{ method }}{% endfor %}"
"#,
    "[[route]]\npath = \"/a\"\nbody = \"x\"\n[[route]]\npath = \"/a\"\nmethod = \"ANY\"\nstatus = 404\n",
];

/// Keys and values that mutations insert, so that they reach the checks behind the TOML parser.
const KEYS: &[&str] = &[
    "path",
    "method",
    "status",
    "headers",
    "body",
    "json",
    "file",
    "template",
    "listen",
    "max_body",
    "max_headers",
    "max_header_size",
    "max_uri",
    "max_connections",
    "header_read_timeout",
    "body_timeout",
    "idle_timeout",
    "write_timeout",
    "grace",
    "[server]",
    "[[route]]",
    "[route]",
    "stauts",
];
const VALUES: &[&str] = &[
    "\"/x/{id}\"",
    "\"/{*rest}\"",
    "\"/{a}/{a}\"",
    "\"\"",
    "\"../../etc/passwd\"",
    "\"/__admin/x\"",
    "0",
    "-1",
    "99999999999999999999",
    "1e308",
    "true",
    "[]",
    "[\"GET\", 5]",
    "{}",
    "{ \"a\\r\\nb\" = \"c\\nd\" }",
    "1979-05-27",
    "\"{{ x\"",
    "\"{% for %}\"",
    "\"10MiB\"",
    "\"0s\"",
    "\"18446744073709551615B\"",
    "'''\n'''",
    "\"\\u0000\"",
];

fn base_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("hotroute-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("docs")).unwrap();
        std::fs::write(dir.join("docs/index.html"), "<h1>docs</h1>").unwrap();
        std::fs::write(dir.join("a.txt"), "a").unwrap();
        dir
    })
}

/// Loads `text` on its own thread: a panic or a load that takes longer than a few seconds fails the property.
fn load_terminates(text: String) -> Result<(), TestCaseError> {
    let (tx, rx) = mpsc::channel();
    let shown = Arc::new(text);
    let input = shown.clone();
    std::thread::spawn(move || {
        let outcome = match hotroute::Router::load_str(&input, Path::new("routes.toml"), base_dir()) {
            Ok(router) => router.routes().len(),
            // Rendering the error is part of the contract: it must not panic on odd spans either.
            Err(e) => e.to_string().len(),
        };
        let _ = tx.send(outcome);
    });
    match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(_) => Ok(()),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(TestCaseError::fail(format!("panicked on {shown:?}"))),
        Err(mpsc::RecvTimeoutError::Timeout) => {
            Err(TestCaseError::fail(format!("still loading after 10 s: {shown:?}")))
        }
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    FlipByte { at: usize, bit: u8 },
    SetByte { at: usize, byte: u8 },
    Truncate { at: usize },
    Delete { at: usize, len: usize },
    Duplicate { at: usize, len: usize },
    InsertLine { at: usize, key: usize, value: usize },
    InsertText { at: usize, text: String },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        1 => (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Mutation::FlipByte { at, bit }),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::SetByte { at, byte }),
        1 => any::<usize>().prop_map(|at| Mutation::Truncate { at }),
        1 => (any::<usize>(), 1usize..64).prop_map(|(at, len)| Mutation::Delete { at, len }),
        1 => (any::<usize>(), 1usize..256).prop_map(|(at, len)| Mutation::Duplicate { at, len }),
        // Weighted up: inserted keys get past the TOML parser to hotroute's own checks.
        4 => (any::<usize>(), 0..KEYS.len(), 0..VALUES.len())
            .prop_map(|(at, key, value)| Mutation::InsertLine { at, key, value }),
        1 => (any::<usize>(), "[\\[\\]{}=\"'.,#\\\\\n a-z0-9%-]{1,16}")
            .prop_map(|(at, text)| Mutation::InsertText { at, text }),
    ]
}

/// Applies mutations to the bytes of a seed; the result is made text again lossily (the loader takes `&str`).
fn mutate(seed: &str, mutations: &[Mutation]) -> String {
    let mut b = seed.as_bytes().to_vec();
    for m in mutations {
        let n = b.len().max(1);
        match m {
            Mutation::FlipByte { at, bit } => {
                if !b.is_empty() {
                    b[at % n] ^= 1 << bit;
                }
            }
            Mutation::SetByte { at, byte } => {
                if !b.is_empty() {
                    b[at % n] = *byte;
                }
            }
            Mutation::Truncate { at } => b.truncate(at % n),
            Mutation::Delete { at, len } => {
                let start = at % n;
                let end = (start + len).min(b.len());
                b.drain(start.min(end)..end);
            }
            Mutation::Duplicate { at, len } => {
                let start = at % n;
                let end = (start + len).min(b.len());
                let copy = b[start.min(end)..end].to_vec();
                b.splice(end..end, copy);
            }
            Mutation::InsertLine { at, key, value } => {
                // At a line start, so that it parses as a key of whatever table is open there.
                let lines: Vec<usize> = std::iter::once(0)
                    .chain(b.iter().enumerate().filter(|(_, c)| **c == b'\n').map(|(i, _)| i + 1))
                    .collect();
                let pos = lines[at % lines.len()].min(b.len());
                let key = KEYS[*key];
                let line =
                    if key.starts_with('[') { format!("{key}\n") } else { format!("{key} = {}\n", VALUES[*value]) };
                b.splice(pos..pos, line.into_bytes());
            }
            Mutation::InsertText { at, text } => {
                let pos = at % (b.len() + 1);
                b.splice(pos..pos, text.bytes());
            }
        }
    }
    String::from_utf8_lossy(&b).into_owned()
}

const ROUTE_KEYS: &[&str] = &["path", "method", "status", "headers", "body", "json", "file", "template"];
const SERVER_KEYS: &[&str] = &[
    "listen",
    "headers",
    "max_body",
    "max_headers",
    "max_header_size",
    "max_uri",
    "max_connections",
    "header_read_timeout",
    "body_timeout",
    "idle_timeout",
    "write_timeout",
    "grace",
    "port",
];

/// A TOML value, as text: curated odd values, numbers, and strings of any printable text or shaped like paths,
/// sizes, durations and templates.
fn toml_value() -> impl Strategy<Value = String> {
    let quoted = |s: String| toml::Value::String(s).to_string();
    prop_oneof![
        prop::sample::select(VALUES).prop_map(str::to_owned),
        any::<i64>().prop_map(|n| n.to_string()),
        (0i64..1200).prop_map(|n| n.to_string()),
        "[ -~]{0,16}".prop_map(quoted),
        "/[a-z0-9{}*/._%-]{0,16}".prop_map(quoted),
        "[0-9]{1,4}(\\.[0-9])? ?(B|KB|KiB|MiB|GiB|k|m|x|)".prop_map(quoted),
        "[0-9]{1,4} ?(ms|s|m|h|d|y|sec|)".prop_map(quoted),
        "(\\{\\{|\\}\\}|\\{%|%\\}|path|\\.|\\||for|in|range\\(9\\)|endfor| |x|-|not|\\(|\\))*".prop_map(quoted),
        prop::collection::vec("[A-Za-z -]{0,6}", 0..4).prop_map(|v| {
            let items: Vec<String> = v.into_iter().map(|m| toml::Value::String(m).to_string()).collect();
            format!("[{}]", items.join(", "))
        }),
        prop::collection::btree_map("[a-z-]{1,8}|[ -~]{1,4}", "[ -~]{0,8}", 0..3).prop_map(|m| {
            let pairs: Vec<String> = m
                .into_iter()
                .map(|(k, v)| format!("{} = {}", toml::Value::String(k), toml::Value::String(v)))
                .collect();
            format!("{{ {} }}", pairs.join(", "))
        }),
    ]
}

/// A value of the type `key` expects most of the time (so that the checks behind deserialization run), any value
/// otherwise.
fn value_for(key: &'static str) -> BoxedStrategy<String> {
    let quoted = |s: String| toml::Value::String(s).to_string();
    let typed: BoxedStrategy<String> = match key {
        "path" | "file" => "(/|\\.\\./|[a-z]|\\{[a-z*]{0,3}\\}?|\\}|%2e|\\.)*".prop_map(quoted).boxed(),
        "method" => prop_oneof![
            "(GET|get|POST|ANY|HEAD|DELETE|G T|)".prop_map(quoted),
            prop::collection::vec("(GET|POST|ANY|PUT|X)", 0..3).prop_map(|v| format!("{v:?}")),
        ]
        .boxed(),
        "status" | "max_headers" | "max_connections" => (-5i64..1100).prop_map(|n| n.to_string()).boxed(),
        "template" => any::<bool>().prop_map(|b| b.to_string()).boxed(),
        "headers" => prop::collection::btree_map("[a-z-]{1,8}|[ -~]{1,4}", "[ -~]{0,8}", 0..3)
            .prop_map(|m| {
                let pairs: Vec<String> = m
                    .into_iter()
                    .map(|(k, v)| format!("{} = {}", toml::Value::String(k), toml::Value::String(v)))
                    .collect();
                format!("{{ {} }}", pairs.join(", "))
            })
            .boxed(),
        _ => toml_value().boxed(),
    };
    prop_oneof![3 => typed, 1 => toml_value()].boxed()
}

/// A syntactically valid route file made of known (and a few unknown) keys, so that most cases get past the TOML
/// parser and exercise hotroute's own checks and the router build.
fn route_file() -> impl Strategy<Value = String> {
    let table = |keys: &'static [&'static str]| {
        prop::collection::btree_map(0..keys.len(), Just(()), 0..6).prop_flat_map(move |chosen| {
            chosen.into_keys().map(|k| value_for(keys[k]).prop_map(move |v| (k, v))).collect::<Vec<_>>()
        })
    };
    let route = (table(ROUTE_KEYS), proptest::bool::weighted(0.9), "/[a-z{}*/]{0,10}");
    (proptest::option::of(table(SERVER_KEYS)), prop::collection::vec(route, 0..6)).prop_map(|(server, routes)| {
        let mut out = String::new();
        if let Some(server) = server {
            out.push_str("[server]\n");
            for (k, v) in server {
                out.push_str(&format!("{} = {v}\n", SERVER_KEYS[k]));
            }
        }
        for (keys, with_path, path) in routes {
            out.push_str("\n[[route]]\n");
            if with_path && !keys.iter().any(|(k, _)| *k == 0) {
                out.push_str(&format!("path = {}\n", toml::Value::String(path)));
            }
            for (k, v) in keys {
                out.push_str(&format!("{} = {v}\n", ROUTE_KEYS[k]));
            }
        }
        out
    })
}

fn config(cases: u32) -> Config {
    Config {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(cases),
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(config(1500))]

    #[test]
    fn mutated_route_files_load_or_fail_cleanly(seed in 0..SEEDS.len(), mutations in prop::collection::vec(mutation(), 1..6)) {
        load_terminates(mutate(SEEDS[seed], &mutations))?;
    }
}

proptest! {
    #![proptest_config(config(500))]

    #[test]
    fn generated_route_files_load_or_fail_cleanly(text in route_file()) {
        load_terminates(text)?;
    }

    #[test]
    fn random_text_loads_or_fails_cleanly(text in any::<String>()) {
        load_terminates(text)?;
    }

    #[test]
    fn random_toml_shaped_text_loads_or_fails_cleanly(
        text in "(\\[\\[route\\]\\]\n|\\[server\\]\n|(path|method|status|headers|body|json|file|template|max_body|grace) = (\"[ -~]{0,12}\"|[0-9-]{1,6}|true|\\[\\]|\\{ ?\\})\n){0,12}"
    ) {
        load_terminates(text)?;
    }
}
