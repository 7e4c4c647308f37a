//! hotroute's integration tests: one test binary (one link step), one module per topic. tests/README.md says what
//! each module specifies and where a new test goes.

// Shared helpers: the binary runner (`bin`), in-process servers over `MockServer` (`server`), raw HTTP/1.1 (`http`),
// HTTP/2 frames (`h2`).
mod support;
// The helper names older test files use (`common::TestServer`, `wire::Bin`, ...): `use crate::common;` replaces
// their `mod common;`, `use crate::wire;` their `mod wire;`.
use support::{common, wire};

// Journal reads stay bounded: pages, bodies only when asked, a few readers at once.
mod admin_memory;
// The `hotroute` binary as a user runs it: arguments, exit codes, startup errors, signals, threads.
mod cli;
// `[server] cors`: preflights and CORS headers.
mod cors;
// The dashboard page and the admin API parts it reads.
mod dashboard;
// `dir = "..."` static folders: content types, caching, ranges, never outside the folder.
mod dir;
// `fault = "reset" | "close" | "garbage"` as seen on the wire.
mod faults;
// The first hour of a newcomer: messages for common mistakes, the near-miss 404, logs, folder routes.
mod first_hour;
// Property test: any route-file text loads or fails with an error, never panics or hangs.
mod fuzz_loader;
// Limits, timeouts and hostile input on raw sockets (HTTP/1.1 and HTTP/2), and the binary's memory under attack.
mod hardening;
// Hostile clients against the binary: HTTP/2 windows held shut, PING keep-alives, body budget, no `Host`, stderr.
mod hostile;
// HTTPS and mutual TLS against the binary: given and self-signed certificates, ALPN, certificate reloads.
mod https;
// `hotroute import openapi`: OpenAPI 3.0/3.1 documents to route files that pass `check` and answer the examples.
mod import;
// `hotroute import wiremock` and `hotroute import mockoon`: peers' mocks to route files that answer as the peers did.
mod import_peers;
// The request journal, routes and coverage through the admin API, and `--coverage FILE`.
mod journal;
// `[server] openapi`: an OpenAPI document served directly, hot reloaded, and requests validated against it.
mod openapi_serve;
// `[route.match]`: routes told apart by the request, and the 404 that names the nearest.
#[path = "match.rs"] // `match` is a keyword: `r#match::` would be the test names' prefix.
mod matching;
// More `[route.match]` conditions: `headers_absent`, `cookies`, `form`, `jsonpath`, `chance`.
mod match_more;
// `[route.match]` `not`, `form` on multipart bodies and `graphql` over POST and GET.
mod match_not_graphql;
// The `MockServer` API: start, requests, verify, reload, reset, coverage, runtimes, drop.
mod mock;
// The access log, the journey trace and the metrics of the binary.
mod observe;
// `proxy` routes and `[server] proxy` against a local upstream (HTTP and HTTPS): forwarding, headers, streaming, 502/504/508.
mod proxy;
// `hotroute record` and record on miss: record a local upstream, stop it, replay byte for byte; redaction.
mod record;
// `[server] isolate`: per-test partitions of sequences, scenarios, resources and the journal on one shared server.
mod isolate;
// Hot reload end to end: save styles, bad edits, includes, SIGHUP, `--no-watch`, reload under load.
mod reload;
// The binary under hostile reloads: half-written saves, huge route files, a FIFO as route file.
mod reload_safety;
// Replicas sharing state through a real Redis: sequences, scenarios, the journal, outages, nginx in front.
mod replicas;
// `sequence`, `repeat`, `count` across reloads, `delay`, and a `HEAD` that moves none of them.
mod sequence;
// `[[resource]]`: a json-server style REST collection, persisted, reloaded, in the admin API; its load errors.
mod resources;
// Every ```toml block of README.md loads, so the docs cannot drift.
mod readme;
// The admin API's protections: token, Host check, cross-site refusals, redaction, no secrets in the 404.
mod security;
// The route file contract and HTTP semantics, with a real client.
mod serve;
// SIGTERM to the binary: in-flight requests finish, new connections refused, exit 0 within the grace period.
mod shutdown;
// Real SSE clients against the binary: the official `openai` Python client, and curl.
mod sse_clients;
// Scenarios, runtime routes over HTTP and reset, against the binary.
mod state;
// The binary's memory while many clients download from a `dir` route at once.
mod static_stream;
// Templates whose work escapes the fuel: stopped within a bound, other routes keep answering.
mod template_limits;
// Template helpers: Python string methods, `b64encode`/`b64decode`, `sha256`, `fromjson`.
mod template_helpers;
// Timed streams and server-sent events: arrival times, the SSE format, `Last-Event-ID`, clients that leave.
mod stream;
// `template = true`: bodies, JSON strings, body files and headers rendered per request.
mod templates;
// `websocket = { ... }` routes: scripted conversations (Rust and Python clients), limits, journal, load errors.
mod websocket;
// `throttle` and `cut_after` on any body, and clients that leave a throttled download.
mod throttle;
