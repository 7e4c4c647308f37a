//! The journey trace (`--trace`): each connection's and request's steps on stderr, as they happen.
//!
//! Every line starts `trace conn=N fd=F +T.TTTms`: the connection's number, its socket's file descriptor, and the
//! time since it was accepted; request steps add `req=N`. So `grep 'conn=3 '` follows one connection, and the
//! lines of one connection read like the journey of a request through Go's `net/http`: the accept loop takes the
//! socket from the listening descriptor and hands it to a new task; the task reads the bytes, hyper parses the head,
//! the router picks the route, and the response is written back into the socket.

use std::collections::VecDeque;
use std::fmt::{self, Write as _};
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Instant;

use http::{HeaderMap, Method, StatusCode, Version};

use crate::observe::access_log::write_stderr;
use crate::request::RequestView;
use crate::route::{Answer, Route, Router};

/// The client preface of HTTP/2 with prior knowledge, the first bytes of an h2c connection.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Writes a line that is about the server rather than one connection.
pub fn server_line(args: fmt::Arguments) {
    let mut line = String::with_capacity(96);
    let _ = writeln!(line, "trace {args}");
    write_stderr(line.as_bytes());
}

/// One traced connection: its number, socket and accept time (the zero of its timestamps), and what is under way.
#[derive(Debug)]
pub struct ConnTrace {
    id: u64,
    fd: i32,
    accepted: Instant,
    state: Mutex<ConnState>,
}

#[derive(Debug, Default)]
struct ConnState {
    requests: u64,
    protocol: Option<&'static str>,
    bytes_in: u64,
    bytes_out: u64,
    /// Whether the task's last read found nothing and was reported as waiting.
    waiting: bool,
    /// Whether the client has closed its side (a read returned 0).
    eof: bool,
    /// HTTP/1 responses handed to hyper and not yet seen going into the socket.
    unwritten: VecDeque<Unwritten>,
}

#[derive(Debug)]
struct Unwritten {
    req: u64,
    status: StatusCode,
    head_at: Instant,
    keep_alive: bool,
}

impl ConnTrace {
    /// Starts the trace of connection `id` on socket `fd`, just accepted from `peer` on `listener_fd`.
    pub fn accepted(id: u64, fd: i32, peer: SocketAddr, listener_fd: i32) -> Self {
        let t = ConnTrace { id, fd, accepted: Instant::now(), state: Mutex::default() };
        t.line(
            None,
            format_args!(
                "accepted peer={peer} from listener fd={listener_fd} at={}; the accept loop spawns a task for it and \
                 goes back to accepting",
                crate::util::time::rfc3339_millis(std::time::SystemTime::now())
            ),
        );
        t
    }

    /// Writes one step of this connection (of request `req` if given).
    pub fn line(&self, req: Option<u64>, args: fmt::Arguments) {
        let ms = self.accepted.elapsed().as_secs_f64() * 1000.0;
        let mut line = String::with_capacity(128);
        let _ = write!(line, "trace conn={} fd={} +{ms:.3}ms ", self.id, self.fd);
        if let Some(req) = req {
            let _ = write!(line, "req={req} ");
        }
        let _ = writeln!(line, "{args}");
        write_stderr(line.as_bytes());
    }

    fn state(&self) -> std::sync::MutexGuard<'_, ConnState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The connection's task polled it for the first time.
    pub fn task_started(&self) {
        let task = tokio::task::try_id().map_or_else(|| "-".to_owned(), |id| format!("Id({id})"));
        let thread = std::thread::current();
        let thread = thread.name().map_or_else(|| format!("{:?}", thread.id()), |n| format!("{n}/{:?}", thread.id()));
        self.line(None, format_args!("task={task} on thread {thread} took the connection"));
    }

    /// `bytes` were read from the socket's receive buffer.
    pub fn read(&self, bytes: &[u8]) {
        let mut state = self.state();
        state.waiting = false;
        state.bytes_in += bytes.len() as u64;
        self.line(None, format_args!("read {} bytes from the socket", bytes.len()));
        if state.protocol.is_none() {
            let n = bytes.len().min(H2_PREFACE.len());
            let h2 = n > 0 && H2_PREFACE.starts_with(&bytes[..n]);
            let (protocol, why) = if h2 {
                ("h2", "the bytes start with the HTTP/2 connection preface (prior knowledge, h2c)")
            } else {
                ("HTTP/1.x", "the first bytes are not the HTTP/2 preface")
            };
            state.protocol = Some(protocol);
            self.line(None, format_args!("protocol {protocol}: {why}"));
        }
    }

    /// A read found no bytes waiting: hyper gets on with what it has, and the task is woken when more arrive.
    pub fn read_pending(&self) {
        let mut state = self.state();
        if !state.waiting {
            state.waiting = true;
            self.line(
                None,
                format_args!("read would block: epoll will wake the task when fd={} is readable again", self.fd),
            );
        }
    }

    /// A read returned 0 bytes: the client closed its side.
    pub fn read_eof(&self) {
        self.state().eof = true;
        self.line(None, format_args!("read 0 bytes: the client closed its side of the connection"));
    }

    /// `n` bytes went into the socket's send buffer.
    pub fn wrote(&self, n: usize) {
        let mut state = self.state();
        state.bytes_out += n as u64;
        self.line(None, format_args!("wrote {n} bytes into the socket"));
        while let Some(u) = state.unwritten.pop_front() {
            let ms = u.head_at.elapsed().as_secs_f64() * 1000.0;
            let then = match (u.keep_alive, state.eof) {
                (_, true) => "connection will close (the client has closed its side)",
                (true, false) => "connection kept alive",
                (false, false) => "connection will close",
            };
            self.line(Some(u.req), format_args!("response written: {} {ms:.3}ms after the head; {then}", u.status));
        }
    }

    /// An I/O error on the socket.
    pub fn io_error(&self, op: &str, e: &std::io::Error) {
        self.line(None, format_args!("{op} error: {e}"));
    }

    /// hyper shuts down the write side (the server is done with the connection).
    pub fn shutdown(&self) {
        self.line(None, format_args!("shutdown: the server closes its side of the connection"));
    }

    /// The socket was closed (the stream dropped).
    pub fn closed(&self) {
        let state = self.state();
        let ms = self.accepted.elapsed().as_secs_f64() * 1000.0;
        self.line(
            None,
            format_args!(
                "closed fd={} after {} request(s), {} bytes in, {} bytes out, open {ms:.3}ms",
                self.fd, state.requests, state.bytes_in, state.bytes_out
            ),
        );
    }

    /// A request head was read; returns the request's number on this connection.
    pub fn head(&self, method: &Method, target: &str, version: Version, headers: &HeaderMap) -> u64 {
        let req = {
            let mut state = self.state();
            state.requests += 1;
            state.requests
        };
        let n = headers.len();
        self.line(Some(req), format_args!("request head read: {method} {target} {version:?} ({n} headers)"));
        req
    }

    /// The response of request `req` was handed to hyper, which writes it next (HTTP/1 in order).
    pub fn response_ready(&self, req: u64, status: StatusCode, head_at: Instant, keep_alive: bool) {
        self.state().unwritten.push_back(Unwritten { req, status, head_at, keep_alive });
    }
}

/// Whether an HTTP/1 connection stays open after this exchange, by the request's and response's headers.
pub fn keep_alive(version: Version, request: &HeaderMap, response: &HeaderMap) -> bool {
    let says = |h: &HeaderMap, word: &str| {
        h.get_all(http::header::CONNECTION)
            .iter()
            .any(|v| v.to_str().is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(word))))
    };
    if says(request, "close") || says(response, "close") {
        return false;
    }
    version >= Version::HTTP_11 || says(request, "keep-alive")
}

/// Describes what answered `req`: the route and what it captured, or why no route did and what came nearest. It
/// describes the real answer, so a route skipped for its `match` conditions is never named as the one that matched.
pub fn describe_answer(router: &Router, req: &RequestView<'_>, answer: &Answer<'_>) -> String {
    let path = req.uri.path();
    let method = req.method;
    if let Some(route) = answer.route {
        let mut s = format!("route matched: {} {} {}", route.location(), route.methods, route.path);
        if route.path != path {
            let _ = write!(s, " for {path}");
        }
        let captured: Vec<String> = router.captures(path).iter().map(|(k, v)| format!("{k}={v}")).collect();
        if !captured.is_empty() {
            let _ = write!(s, " ({})", captured.join(", "));
        }
        return s;
    }
    let routes = router.routes_of(path);
    let status = answer.response.status();
    if routes.is_empty() {
        let near = match router.nearest(path).first() {
            Some((r, why)) => format!("nearest: {} {} {}: {why}", r.location(), r.methods, r.path),
            None if router.routes().is_empty() => "the route file has no routes".to_owned(),
            None => "no route pattern is close to it".to_owned(),
        };
        return format!("no route: {}, no route pattern matches {path}; {near}", status.as_u16());
    }
    let list = |routes: &[&Route]| {
        let list: Vec<String> = routes.iter().map(|r| format!("{} ({})", r.location(), r.methods)).collect();
        list.join(", ")
    };
    if routes.iter().any(|r| r.methods.allows(method)) {
        let fitting: Vec<&Route> = routes.into_iter().filter(|r| r.methods.allows(method)).collect();
        return format!(
            "no route: {}, the `match` conditions of {} did not hold for this request",
            status.as_u16(),
            list(&fitting)
        );
    }
    let allow = answer.response.headers().get(http::header::ALLOW).and_then(|v| v.to_str().ok()).unwrap_or("");
    format!(
        "no route: {}, {path} is served by {} but not for {method}; allowed: {allow}",
        status.as_u16(),
        list(&routes)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn describe(toml: &str, method: &str, uri: &str) -> String {
        let router = Router::load_str(toml, "routes.toml".as_ref(), ".".as_ref()).unwrap();
        let (method, uri) = (method.parse().unwrap(), uri.parse().unwrap());
        let (headers, body) = (HeaderMap::new(), bytes::Bytes::new());
        let view = RequestView {
            method: &method,
            uri: &uri,
            headers: &headers,
            body: &body,
            peer: "127.0.0.1:1".parse().unwrap(),
        };
        let answer = router.respond(&view);
        describe_answer(&router, &view, &answer)
    }

    const ROUTES: &str = "[[route]]\npath = \"/hello\"\nbody = \"hi\"\n\n[[route]]\npath = \"/users/{id}\"\n\
                          method = [\"GET\", \"PUT\"]\nbody = \"u\"\n\n[[route]]\npath = \"/users/{id}\"\n\
                          method = \"DELETE\"\nbody = \"d\"\n";

    #[test]
    fn explains_matches_and_misses() {
        assert_eq!(describe(ROUTES, "GET", "/hello"), "route matched: routes.toml:1 GET /hello");
        assert_eq!(
            describe(ROUTES, "PUT", "/users/42?x=1"),
            "route matched: routes.toml:5 GET,PUT /users/{id} for /users/42 (id=42)"
        );
        assert_eq!(
            describe(ROUTES, "POST", "/users/42"),
            "no route: 405, /users/42 is served by routes.toml:5 (GET,PUT), routes.toml:10 (DELETE) but not for POST; \
             allowed: DELETE, GET, HEAD, PUT"
        );
        assert_eq!(
            describe(ROUTES, "GET", "/hello/"),
            "no route: 404, no route pattern matches /hello/; nearest: routes.toml:1 GET /hello: \
             the path ends with `/`, the route does not"
        );
        assert_eq!(
            describe(ROUTES, "GET", "/Hello"),
            "no route: 404, no route pattern matches /Hello; nearest: routes.toml:1 GET /hello: \
             the path has `Hello` where the route has `hello`"
        );
        assert_eq!(
            describe(ROUTES, "GET", "/user/7"),
            "no route: 404, no route pattern matches /user/7; \
             nearest: routes.toml:5 GET,PUT /users/{id}: the path has `user` where the route has `users`"
        );
        assert_eq!(
            describe(ROUTES, "GET", "/completely/else/entirely"),
            "no route: 404, no route pattern matches /completely/else/entirely; no route pattern is close to it"
        );
    }

    #[test]
    fn keep_alive_follows_version_and_connection_headers() {
        let mut close = HeaderMap::new();
        close.insert(http::header::CONNECTION, "Close".parse().unwrap());
        let mut ka = HeaderMap::new();
        ka.insert(http::header::CONNECTION, "keep-alive".parse().unwrap());
        let none = HeaderMap::new();
        assert!(keep_alive(Version::HTTP_11, &none, &none));
        assert!(!keep_alive(Version::HTTP_11, &close, &none));
        assert!(!keep_alive(Version::HTTP_11, &none, &close));
        assert!(!keep_alive(Version::HTTP_10, &none, &none));
        assert!(keep_alive(Version::HTTP_10, &ka, &none));
    }

    #[test]
    fn names_the_route_that_answered_not_one_whose_conditions_failed() {
        let routes = "[[route]]\npath = \"/pay\"\nbody = \"vip\"\n[route.match]\nheaders = { x-tier = \"gold\" }\n\n\
                      [[route]]\npath = \"/pay\"\nbody = \"plain\"\n";
        assert_eq!(describe(routes, "GET", "/pay"), "route matched: routes.toml:7 GET /pay");
        let only_conditional = "[[route]]\npath = \"/pay\"\n[route.match]\nheaders = { x-tier = \"gold\" }\n";
        assert_eq!(
            describe(only_conditional, "GET", "/pay"),
            "no route: 404, the `match` conditions of routes.toml:1 (GET) did not hold for this request"
        );
    }
}
