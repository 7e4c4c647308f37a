//! The request journal and route coverage: what the server received, which route answered, and which routes were
//! never used.
//!
//! Every request that reaches the routes (not the admin API) is recorded in a bounded ring, oldest dropped first:
//! 1000 requests (`crate::config::DEFAULT_JOURNAL`) unless `[server] journal = N` says otherwise (0 turns the journal
//! off), and at most `[server] journal_bytes` bytes of them (32 MiB by default): a client that fills the journal with
//! large bodies pushes out old requests instead of growing the server. Bodies are kept up to [`BODY_LIMIT`] bytes;
//! [`RecordedRequest::body_size`] still tells the full size.
//!
//! Coverage is counted apart from the ring, so that it covers every request since the start (or the last reset),
//! not only the ones still in the journal: hits per route, and the requests no route answered, grouped by method and
//! path.
//!
//! Recording is on the request path, so it is cheap: one allocation holding the target, the headers and the body
//! (copied, so that the journal does not pin hyper's read buffers), and a push under a short lock. Route details are
//! shared per router, not copied per request.

use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use serde_json::{Value, json};

use crate::config::admin::REDACTED;
use crate::request::{RequestView, query_pairs};
use crate::route::state::RemoteState;
use crate::route::{Answer, RouteInfo, Router};

mod wire;

/// How much of a request body the journal keeps (64 KiB); the rest is cut.
pub const BODY_LIMIT: usize = 64 * 1024;

/// How many distinct unmatched `METHOD path` pairs coverage keeps; more are only counted.
pub const UNMATCHED_LIMIT: usize = 1000;

/// One recorded request.
///
/// The request target, headers and (cut) body live in one shared buffer; the accessors read them from it. A clone
/// shares that buffer (a reference count), so that the admin API can copy a page of the journal under its lock in
/// microseconds and write it out after letting go of the lock.
///
/// The values of the headers in `[server] journal_redact` (by default those that carry credentials:
/// `authorization`, `proxy-authorization`, `cookie`, `set-cookie`, `x-api-key`) are stored as `<redacted>`: the
/// journal, the admin API and the Rust API never see them, and an [`crate::Expect`] cannot match them by value.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    id: u64,
    time: SystemTime,
    method: Method,
    status: StatusCode,
    /// The route's `fault`, when it cut the connection instead of answering with `status`.
    fault: Option<crate::config::Fault>,
    route: Option<Arc<RouteInfo>>,
    /// The upstream's URL, when the request was proxied.
    proxied: Option<Arc<str>>,
    /// The partition the request named (`[server] isolate`), if any.
    isolate: Option<Arc<str>>,
    body_size: usize,
    /// `data[..target_end]` is `path[?query]`, `data[target_end..headers_end]` is `name:value\n` per header (neither
    /// can hold a `\n`, and names cannot hold a `:`), the rest is the body.
    target_end: usize,
    headers_end: usize,
    data: Bytes,
    /// For a WebSocket upgrade: the conversation's messages, filled in while it lasts.
    websocket: Option<Arc<super::websocket::WsLog>>,
    /// What `[server] openapi_validate` found wrong with the request (`{ operation, problems }`), if anything.
    openapi: Option<Arc<Value>>,
}

/// A request's target, headers and (cut) body, copied into one buffer before the journal's lock is taken (see
/// [`RecordedRequest`]'s `data`).
struct Copied {
    data: Bytes,
    target_end: usize,
    headers_end: usize,
}

impl Copied {
    fn of(req: &RequestView<'_>, redact: &[HeaderName]) -> Self {
        let (path, query) = (req.uri.path(), req.uri.query());
        let body = &req.body[..req.body.len().min(BODY_LIMIT)];
        let target_len = path.len() + query.map_or(0, |q| q.len() + 1);
        // At most this much (a value is either kept or replaced by `REDACTED`): the names are looked up in `redact`
        // once per header, when copied, not also here.
        let headers_len: usize =
            req.headers.iter().map(|(n, v)| n.as_str().len() + v.len().max(REDACTED.len()) + 2).sum();
        let mut data = Vec::with_capacity(target_len + headers_len + body.len());
        data.extend_from_slice(path.as_bytes());
        if let Some(q) = query {
            data.push(b'?');
            data.extend_from_slice(q.as_bytes());
        }
        let target_end = data.len();
        for (name, v) in req.headers {
            let v = value(redact, name, v);
            data.extend_from_slice(name.as_str().as_bytes());
            data.push(b':');
            data.extend_from_slice(v);
            data.push(b'\n');
        }
        let headers_end = data.len();
        data.extend_from_slice(body);
        // Exactly as long as its contents, so that `Bytes` takes the buffer as it is (a spare capacity would cost it
        // an allocation of its own). mimalloc keeps a block that shrinks by less than half, as this one almost always
        // does (a few spare bytes per short header value).
        data.shrink_to_fit();
        Copied { data: Bytes::from(data), target_end, headers_end }
    }
}

impl RecordedRequest {
    /// The partition the request named (`[server] isolate`), if any.
    pub fn isolate(&self) -> Option<&str> {
        self.isolate.as_deref()
    }

    /// Its number: 1 for the first request the server received, counting on when the journal is cleared.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// When it was received.
    pub fn time(&self) -> SystemTime {
        self.time
    }

    /// The request method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The path and query as sent, e.g. `/search?q=x`.
    pub fn target(&self) -> &str {
        // Written from a `&str` in `new`; the fallback is unreachable.
        std::str::from_utf8(&self.data[..self.target_end]).unwrap_or_default()
    }

    /// The path, without the query.
    pub fn path(&self) -> &str {
        let target = self.target();
        target.split_once('?').map_or(target, |(path, _)| path)
    }

    /// The query string without the `?`, if the target had one.
    pub fn query(&self) -> Option<&str> {
        self.target().split_once('?').map(|(_, query)| query)
    }

    /// The value of query parameter `name` (`+` and `%XX` decoded), if present.
    pub fn query_param(&self, name: &str) -> Option<String> {
        query_pairs(self.query()?).find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// The headers as `(name, value)` pairs, in the order received; names are lower case.
    pub fn header_pairs(&self) -> impl Iterator<Item = (&str, &[u8])> {
        header_pairs_in(&self.data[self.target_end..self.headers_end])
    }

    /// The first value of header `name` (any case), if present and valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.header_pairs().find(|(n, _)| n.eq_ignore_ascii_case(name)).and_then(|(_, v)| std::str::from_utf8(v).ok())
    }

    /// The headers as an [`http::HeaderMap`] (built on each call).
    pub fn headers(&self) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in self.header_pairs() {
            if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_bytes(value)) {
                map.append(n, v);
            }
        }
        map
    }

    /// The body, cut at [`BODY_LIMIT`] bytes.
    pub fn body(&self) -> &[u8] {
        &self.data[self.headers_end..]
    }

    /// The body as text, invalid UTF-8 replaced by `U+FFFD`.
    pub fn body_text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(self.body())
    }

    /// The body parsed as JSON.
    pub fn body_json<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(self.body())
    }

    /// The full size of the body as received, before the cut.
    pub fn body_size(&self) -> usize {
        self.body_size
    }

    /// Whether the body was cut at [`BODY_LIMIT`].
    pub fn body_truncated(&self) -> bool {
        self.body_size > self.body().len()
    }

    /// The status of the answer.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The route's fault (`reset`, `close`, `garbage`) when the client got no HTTP answer; then the JSON form's
    /// `status` is 0 and `status()` is the status the route would have sent.
    pub fn fault(&self) -> Option<&'static str> {
        self.fault.map(crate::config::Fault::name)
    }

    /// The route that answered, or none for a request no route matched (404 or 405).
    pub fn route(&self) -> Option<&RouteInfo> {
        self.route.as_deref()
    }

    /// Whether a route answered.
    pub fn matched(&self) -> bool {
        self.route.is_some()
    }

    /// The request as the admin API shows it, with its body.
    pub fn to_json(&self) -> Value {
        self.to_json_with(true, "")
    }

    /// The request as the admin API shows it: with its body when `body`, and with `base` (the route file's folder,
    /// ending in `/`) cut from the front of the route's location.
    pub fn to_json_with(&self, body: bool, base: &str) -> Value {
        let headers = headers_json(self.header_pairs());
        let route = self.route().map(|r| {
            let location = r.location.strip_prefix(base).filter(|_| !base.is_empty()).unwrap_or(&r.location);
            json!({ "methods": r.methods.to_json(), "path": r.path, "location": location })
        });
        let mut json = json!({
            "id": self.id,
            "time": crate::util::time::rfc3339_millis(self.time),
            "method": self.method.as_str(),
            "path": self.path(),
            "query": self.query(),
            "headers": headers,
            "body_size": self.body_size,
            "body_truncated": self.body_truncated(),
            "status": if self.fault.is_some() { 0 } else { self.status.as_u16() },
            "fault": self.fault(),
            "matched": self.matched(),
            "route": route,
            "proxied": self.proxied.as_deref(),
        });
        if let (Some(id), Some(object)) = (&self.isolate, json.as_object_mut()) {
            object.insert("isolate".into(), id.as_ref().into());
        }
        if let (true, Some(object)) = (body, json.as_object_mut()) {
            object.insert("body".into(), self.body_text().into());
        }
        if let (Some(log), Some(object)) = (&self.websocket, json.as_object_mut()) {
            object.insert("websocket".into(), log.to_json());
        }
        if let (Some(found), Some(object)) = (&self.openapi, json.as_object_mut()) {
            object.insert("openapi_violations".into(), (**found).clone());
        }
        json
    }
}

/// The `name:value\n` lines of a recorded head as `(name, value)` pairs (see [`RecordedRequest::header_pairs`]).
fn header_pairs_in(head: &[u8]) -> impl Iterator<Item = (&str, &[u8])> {
    head.split(|&b| b == b'\n').filter(|l| !l.is_empty()).filter_map(|line| {
        let colon = line.iter().position(|&b| b == b':')?;
        Some((std::str::from_utf8(&line[..colon]).ok()?, &line[colon + 1..]))
    })
}

/// Headers as the journal's JSON shows them: an object in the order received, a repeated name's values joined
/// with `, ` under its first place (the way HTTP allows a client to fold them).
fn headers_json<'a>(pairs: impl Iterator<Item = (&'a str, &'a [u8])>) -> Value {
    let mut headers = serde_json::Map::new();
    for (name, value) in pairs {
        let value = String::from_utf8_lossy(value);
        match headers.get_mut(name) {
            Some(Value::String(earlier)) => {
                earlier.push_str(", ");
                earlier.push_str(&value);
            }
            _ => {
                headers.insert(name.to_owned(), Value::String(value.into_owned()));
            }
        }
    }
    Value::Object(headers)
}

/// The newest `limit` requests of the shared journal's batches `batches` (oldest first, each its header and its
/// records, as [`RemoteState::journal_batches`] reads them), oldest first, as the admin API shows them: each as
/// [`RecordedRequest::to_json_with`]`(true, "")` gives it, with the `"replica"` that answered it last. Records that
/// do not parse (a damaged entry, another version of the format) are left out.
pub fn shared_requests(batches: &[(Vec<u8>, Vec<u8>)], limit: usize) -> Vec<Value> {
    // Counted first, so that only the records shown are made into JSON.
    let total: usize = batches.iter().map(|(_, records)| wire::count(records)).sum();
    let mut skip = total.saturating_sub(limit);
    let mut out = Vec::with_capacity(total.min(limit));
    for (header, records) in batches {
        let n = wire::count(records);
        if skip >= n {
            skip -= n;
            continue;
        }
        out.extend(wire::decode_batch(header, records, std::mem::take(&mut skip)));
    }
    out
}

/// A header's value as the journal stores it: [`REDACTED`] for a name in `redact`.
fn value<'a>(redact: &[HeaderName], name: &HeaderName, value: &'a HeaderValue) -> &'a [u8] {
    if redact.contains(name) { REDACTED.as_bytes() } else { value.as_bytes() }
}

impl fmt::Display for RecordedRequest {
    /// `#id METHOD target -> status, route ...` on one line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.fault() {
            Some(fault) => write!(f, "#{} {} {} -> fault:{fault}", self.id, self.method, self.target())?,
            None => write!(f, "#{} {} {} -> {}", self.id, self.method, self.target(), self.status.as_u16())?,
        }
        match self.route() {
            Some(r) => write!(f, ", route {r}"),
            None => f.write_str(", no route matched"),
        }
    }
}

/// Requests no route answered, grouped by method and path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmatched {
    /// The request method.
    pub method: String,
    /// The request path (without the query).
    pub path: String,
    /// How many such requests were received.
    pub count: u64,
    /// The status of the last answer (404 or 405).
    pub status: u16,
}

/// A route and how often it answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteHits {
    /// The methods it answers (`["ANY"]` for all).
    pub methods: Vec<String>,
    /// Its URL pattern.
    pub path: String,
    /// Where it is defined: `file:line`.
    pub location: String,
    /// How many requests it answered.
    pub hits: u64,
}

/// Which routes were used and which requests no route answered, since the start or the last reset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coverage {
    /// Requests received (admin requests excluded).
    pub total_requests: u64,
    /// Every active route with its hit count, in file order.
    pub routes: Vec<RouteHits>,
    /// Requests no route answered, by method and path.
    pub unmatched: Vec<Unmatched>,
    /// Unmatched requests not listed because 1000 distinct pairs were already listed.
    pub unmatched_not_listed: u64,
}

impl Coverage {
    /// The routes that never answered a request.
    pub fn never_hit(&self) -> impl Iterator<Item = &RouteHits> {
        self.routes.iter().filter(|r| r.hits == 0)
    }

    /// True when every route answered at least once and every request was answered by a route.
    pub fn is_complete(&self) -> bool {
        self.never_hit().next().is_none() && self.unmatched.is_empty() && self.unmatched_not_listed == 0
    }

    /// The coverage report as `GET /__admin/coverage` and `--coverage FILE` give it.
    pub fn to_json(&self) -> Value {
        let route =
            |r: &RouteHits| json!({ "methods": r.methods, "path": r.path, "location": r.location, "hits": r.hits });
        let unmatched =
            |u: &Unmatched| json!({ "method": u.method, "path": u.path, "count": u.count, "status": u.status });
        json!({
            "complete": self.is_complete(),
            "total_requests": self.total_requests,
            "routes_never_hit": self.never_hit().map(route).collect::<Vec<_>>(),
            "unmatched_requests": self.unmatched.iter().map(unmatched).collect::<Vec<_>>(),
            "unmatched_not_listed": self.unmatched_not_listed,
            "routes": self.routes.iter().map(route).collect::<Vec<_>>(),
        })
    }
}

#[derive(Debug, Default)]
struct State {
    entries: VecDeque<RecordedRequest>,
    next_id: u64,
    /// Entries pushed out of the ring since the last clear.
    dropped: u64,
    /// The bytes the entries hold (`RecordedRequest::data`), kept under `[server] journal_bytes`.
    bytes: usize,
    total: u64,
    unmatched: BTreeMap<(String, String), (u64, u16)>,
    unmatched_not_listed: u64,
}

impl State {
    fn miss(&mut self, method: &Method, path: &str, status: StatusCode) {
        let key = (method.as_str().to_owned(), path.to_owned());
        if let Some((count, last)) = self.unmatched.get_mut(&key) {
            *count += 1;
            *last = status.as_u16();
        } else if self.unmatched.len() < UNMATCHED_LIMIT {
            self.unmatched.insert(key, (1, status.as_u16()));
        } else {
            self.unmatched_not_listed += 1;
        }
    }
}

/// How many requests wait to be written to a shared journal before new ones are dropped (and counted): the
/// journal is a log, not worth holding requests back for.
const SHARED_QUEUE: usize = 10_000;

/// How many bytes of records wait to be written to a shared journal, at most, before new ones are dropped (and
/// counted): 8 MiB, a few hundred requests with bodies at [`BODY_LIMIT`], thousands without.
const SHARED_QUEUE_BYTES: usize = 8 << 20;

/// The most requests written to a shared journal as one stream entry (one round trip each).
const SHARED_BATCH: usize = 256;

/// How many times the shared journal's writer lets other tasks run before it takes a batch (see
/// [`Journal::share`]): 3 gave batches four times larger under load (BENCHMARKS.md, issue 19).
const SHARED_GATHER: usize = 3;

/// About the most bytes of records in one stream entry (one request larger than that goes alone).
const SHARED_BATCH_BYTES: usize = 1 << 20;

/// The most bytes the shared journal's writer keeps allocated between batches (1 MiB).
const SHARED_BUFFER_KEEP: usize = 1 << 20;

/// The records waiting to be written to the shared journal, encoded (see [`wire`]) as they are recorded.
#[derive(Debug, Default)]
struct Pending {
    records: Vec<u8>,
    count: usize,
}

/// A journal's link to the shared journal (see [`Journal::share`]).
#[derive(Debug)]
struct Shared {
    pending: Arc<Mutex<Pending>>,
    /// Tells the writer task that `pending` has records: sent when it stops being empty, so once per batch.
    /// Dropped with the journal, which ends the task.
    wake: tokio::sync::mpsc::Sender<()>,
    store: Arc<RemoteState>,
}

impl Shared {
    /// Appends `entry` to the records waiting, or counts it as dropped when they are at their bound.
    fn push(&self, entry: &RecordedRequest) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let was_empty = pending.count == 0;
        let before = pending.records.len();
        if pending.count >= SHARED_QUEUE || before + entry.data.len() > SHARED_QUEUE_BYTES {
            drop(pending);
            self.store.journal_drop(1);
            return;
        }
        if !wire::encode(entry, &mut pending.records) {
            drop(pending);
            self.store.journal_drop(1);
            return;
        }
        pending.count += 1;
        drop(pending);
        if was_empty {
            // Full means a wake-up is already queued, and the writer takes everything pending when it runs.
            let _ = self.wake.try_send(());
        }
    }
}

/// What [`Journal::record`] kept of a request.
#[derive(Debug, Default)]
pub struct Recorded {
    /// The entry's id, when the journal is on.
    pub id: Option<u64>,
    /// For a WebSocket upgrade, the log its conversation writes its messages to (kept with the entry).
    pub websocket: Option<Arc<super::websocket::WsLog>>,
}

/// The journal of one server: a bounded ring of recorded requests, and coverage counts.
#[derive(Debug, Default)]
pub struct Journal {
    state: Mutex<State>,
    /// With a shared state store: where each recorded request is copied for the shared journal.
    shared: std::sync::OnceLock<Shared>,
}

impl Journal {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a request answered with `answer` by `router` (which sets how many requests the journal keeps), and
    /// counts it for coverage on the route that answered. Says what was kept: the entry's id (see
    /// [`Journal::set_status`]) and, for a WebSocket upgrade, the log its conversation writes its messages to.
    pub fn record(&self, router: &Router, req: &RequestView<'_>, answer: &Answer<'_>) -> Recorded {
        self.record_checked(router, req, answer, None)
    }

    /// Like [`Journal::record`], with what the OpenAPI checks found wrong with the request (`openapi_violations` in
    /// the admin API). A request refused by them is no near miss: it had an operation.
    pub fn record_checked(
        &self,
        router: &Router,
        req: &RequestView<'_>,
        answer: &Answer<'_>,
        openapi: Option<Arc<Value>>,
    ) -> Recorded {
        let checked = openapi.is_some();
        let capacity = router.server().journal;
        let status = answer.response.status();
        let route = answer.route.map(|r| {
            r.hit();
            r.info()
        });
        let websocket = answer
            .response
            .extensions()
            .get::<crate::route::websocket::WsStart>()
            .map(|_| Arc::new(super::websocket::WsLog::default()));
        // Copy the request before taking the lock, so that the lock is held only for the push. The entry itself is
        // made in its slot of the ring, under the lock: made before and moved in, its 150 bytes were copied three
        // times per request.
        let copied = (capacity > 0).then(|| {
            let redact = &router.server().journal_redact;
            (SystemTime::now(), Copied::of(req, redact), router.isolate_id(req).map(Arc::from))
        });
        let mut state = self.lock();
        state.total += 1;
        state.next_id += 1;
        // A request `[server] proxy` forwarded is answered, by the upstream: not a miss of the route file; nor is
        // one the OpenAPI checks refused (it had an operation).
        if answer.route.is_none() && answer.proxy.is_none() && !checked {
            state.miss(req.method, req.uri.path(), status);
        }
        let Some((time, mut copied, isolate)) = copied else { return Recorded { id: None, websocket } };
        // Bounded by count and by bytes: a client that fills the journal with large bodies pushes out old entries
        // instead of growing the server.
        let budget = router.server().limits.journal_bytes;
        while state.entries.len() >= capacity || (state.bytes + copied.data.len() > budget && !state.entries.is_empty())
        {
            if let Some(old) = state.entries.pop_front() {
                state.bytes -= old.data.len();
            }
            state.dropped += 1;
        }
        if copied.data.len() > budget {
            // One request larger than the whole budget keeps its head and loses its body (`body_size` still tells);
            // a head larger than the budget keeps only the target.
            let keep = if copied.headers_end <= budget { copied.headers_end } else { copied.target_end.min(budget) };
            copied.data = copied.data.slice(..keep);
            copied.headers_end = copied.data.len();
            copied.target_end = copied.target_end.min(copied.headers_end);
        }
        state.bytes += copied.data.len();
        let id = state.next_id;
        state.entries.push_back(RecordedRequest {
            id,
            time,
            method: req.method.clone(),
            status,
            fault: answer.response.extensions().get::<crate::config::Fault>().copied(),
            route,
            proxied: answer.proxy.as_ref().map(|p| p.upstream.url().clone()),
            isolate,
            body_size: req.body.len(),
            target_end: copied.target_end,
            headers_end: copied.headers_end,
            data: copied.data,
            websocket: websocket.clone(),
            openapi,
        });
        if let (Some(shared), Some(entry)) = (self.shared.get(), state.entries.back()) {
            // Under the journal's lock, so that the entry is not copied (a few reference counts) to be written after.
            shared.push(entry);
        }
        drop(state);
        Recorded { id: Some(id), websocket }
    }

    /// Sets the status of entry `id`, recorded before its answer was known (a proxied request: the upstream's).
    pub fn set_status(&self, id: u64, status: StatusCode) {
        let mut state = self.lock();
        // The newest entries are at the back: the one asked for is almost always the last or near it.
        if let Some(entry) = state.entries.iter_mut().rev().find(|e| e.id == id) {
            entry.status = status;
        }
    }

    /// Copies each request recorded from now on into `store`'s shared journal (which keeps about `capacity`
    /// requests), marked as answered by `replica`. On the request path the copy is a few bytes appended to a buffer
    /// (see [`wire`]: no JSON); a task of its own writes what gathered as one stream entry per batch, so that no
    /// request waits for Redis. Must be called on a tokio runtime; a second call changes nothing.
    pub(crate) fn share(&self, store: Arc<RemoteState>, replica: String, capacity: usize) {
        if self.shared.get().is_some() {
            return;
        }
        let (wake, mut woken) = tokio::sync::mpsc::channel::<()>(1);
        let pending = Arc::new(Mutex::new(Pending::default()));
        let shared = Shared { pending: Arc::clone(&pending), wake, store: Arc::clone(&store) };
        if self.shared.set(shared).is_err() {
            return;
        }
        // A weak reference: the task ends when the store goes, or when the journal does (the wake channel closes).
        let weak = Arc::downgrade(&store);
        drop(store);
        let header = wire::header(&replica);
        // An entry holds at most `capacity` requests, so that trimming whole old entries keeps about `capacity`.
        let per_entry = SHARED_BATCH.min(capacity.max(1));
        tokio::spawn(async move {
            // The batch taken from `pending`, swapped with an empty buffer: the two allocations are reused.
            let mut batch = Vec::new();
            while woken.recv().await.is_some() {
                let Some(store) = weak.upgrade() else { return };
                // Let the batch gather: each yield lets the tasks already ready run first (on a busy server, the
                // requests being answered; on an idle one it comes back at once), so that a round trip and a stream
                // entry carry more requests. No timer: nothing waits on an idle server.
                for _ in 0..SHARED_GATHER {
                    if pending.lock().unwrap_or_else(|e| e.into_inner()).count >= per_entry {
                        break;
                    }
                    tokio::task::yield_now().await;
                }
                {
                    let mut pending = pending.lock().unwrap_or_else(|e| e.into_inner());
                    std::mem::swap(&mut pending.records, &mut batch);
                    pending.count = 0;
                }
                let mut rest = &batch[..];
                while !rest.is_empty() {
                    let (len, n) = wire::chunk(rest, per_entry, SHARED_BATCH_BYTES);
                    store.append_journal(&header, &rest[..len], n, capacity).await;
                    rest = &rest[len..];
                }
                batch.clear();
                // A rare huge batch (large bodies) does not keep its buffer for good.
                if batch.capacity() > SHARED_BUFFER_KEEP {
                    batch = Vec::new();
                }
            }
        });
    }

    /// The recorded requests, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().entries.iter().cloned().collect()
    }

    /// How many requests were pushed out of the ring since the last clear (the journal was full).
    pub fn dropped(&self) -> u64 {
        self.lock().dropped
    }

    /// Empties the journal; returns how many requests it held. Request ids keep counting.
    pub fn clear(&self) -> usize {
        let mut state = self.lock();
        state.dropped = 0;
        state.bytes = 0;
        let n = state.entries.len();
        state.entries.clear();
        n
    }

    /// Removes the requests of partition `id` (`POST /__admin/reset?isolate=ID`); returns how many it held.
    pub fn clear_isolate(&self, id: &str) -> usize {
        let mut state = self.lock();
        let before = state.entries.len();
        state.entries.retain(|r| r.isolate.as_deref() != Some(id));
        before - state.entries.len()
    }

    /// Sets every coverage count back to zero: the journal's and those of `router`'s routes.
    pub fn reset_coverage(&self, router: &Router) {
        let mut state = self.lock();
        state.total = 0;
        state.unmatched.clear();
        state.unmatched_not_listed = 0;
        for r in router.routes() {
            r.reset_hits();
        }
    }

    /// The coverage of `router`'s routes (the routes in service).
    pub fn coverage(&self, router: &Router) -> Coverage {
        let routes = router
            .routes()
            .iter()
            .map(|r| RouteHits {
                methods: r.methods.names(),
                path: r.path.clone(),
                location: r.location(),
                hits: r.hits(),
            })
            .collect();
        let state = self.lock();
        let unmatched = state
            .unmatched
            .iter()
            .map(|((method, path), &(count, status))| Unmatched {
                method: method.clone(),
                path: path.clone(),
                count,
                status,
            })
            .collect();
        Coverage { total_requests: state.total, routes, unmatched, unmatched_not_listed: state.unmatched_not_listed }
    }

    /// The journal as `GET /__admin/requests?bodies=true` gives it (without its page limit): capacity, dropped
    /// count, the id of the last request received, and the requests oldest first.
    pub fn to_json(&self, capacity: usize) -> Value {
        self.to_json_after(capacity, 0, usize::MAX)
    }

    /// Like [`Journal::to_json`], with only the newest `limit` of the requests whose id is above `after`: a page
    /// that polls asks only for what it has not seen yet.
    pub fn to_json_after(&self, capacity: usize, after: u64, limit: usize) -> Value {
        let page = self.page(after, limit);
        let requests: Vec<Value> = page.requests.iter().map(RecordedRequest::to_json).collect();
        json!({ "capacity": capacity, "dropped": page.dropped, "last_id": page.last_id, "requests": requests })
    }

    /// The newest `limit` of the requests whose id is above `after`, oldest first, with the journal's counts. Only
    /// reference counts are taken under the lock: what is written from the page is written after it is let go.
    pub fn page(&self, after: u64, limit: usize) -> Page {
        self.page_of(after, limit, None)
    }

    /// Like [`Journal::page`], with only the requests of partition `isolate` when one is given
    /// (`GET /__admin/requests?isolate=ID`).
    pub fn page_of(&self, after: u64, limit: usize, isolate: Option<&str>) -> Page {
        let state = self.lock();
        if let Some(id) = isolate {
            let mine: Vec<&RecordedRequest> =
                state.entries.iter().filter(|r| r.id > after && r.isolate.as_deref() == Some(id)).collect();
            let skip = mine.len() - mine.len().min(limit);
            let requests = mine[skip..].iter().map(|r| (*r).clone()).collect();
            return Page { dropped: state.dropped, last_id: state.next_id, omitted: skip, requests };
        }
        // Ids grow along the ring, so the new ones are a suffix of it.
        let new = state.entries.len() - state.entries.partition_point(|r| r.id <= after);
        let skip = state.entries.len() - new.min(limit);
        let requests = state.entries.range(skip..).cloned().collect();
        Page { dropped: state.dropped, last_id: state.next_id, omitted: new - new.min(limit), requests }
    }
}

/// A page of the journal: see [`Journal::page`].
#[derive(Debug, Clone)]
pub struct Page {
    /// Requests pushed out of the ring since the last clear.
    pub dropped: u64,
    /// The id of the last request received.
    pub last_id: u64,
    /// Requests after `after` left out of the page because of its limit (the oldest of them).
    pub omitted: usize,
    /// The requests, oldest first.
    pub requests: Vec<RecordedRequest>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(toml: &str) -> Router {
        Router::load_str(toml, std::path::Path::new("t.toml"), std::path::Path::new(".")).unwrap()
    }

    fn record(journal: &Journal, router: &Router, path: &str) {
        record_request(journal, router, Method::GET, path, &HeaderMap::new(), bytes::Bytes::new());
    }

    /// Records one request from 127.0.0.1, answered by `router`.
    fn record_request(
        journal: &Journal,
        router: &Router,
        method: Method,
        target: &str,
        headers: &HeaderMap,
        body: bytes::Bytes,
    ) {
        let uri = target.parse().unwrap();
        let req = RequestView { method: &method, uri: &uri, headers, body: &body, peer: ([127, 0, 0, 1], 1).into() };
        journal.record(router, &req, &router.respond(&req));
    }

    /// A journal holding a POST to a route (repeated, redacted and non-UTF-8 headers, a query, a body with bytes
    /// JSON must escape) and a GET no route answered.
    fn varied_journal() -> Journal {
        let journal = Journal::default();
        let router = router("[[route]]\npath = \"/a\"\nmethod = [\"GET\", \"POST\"]\n");
        let mut headers = HeaderMap::new();
        headers.append("x-one", HeaderValue::from_static("1"));
        headers.append("accept", HeaderValue::from_static("text/html"));
        headers.append("x-one", HeaderValue::from_static("2 \"quoted\""));
        headers.append("authorization", HeaderValue::from_static("Bearer secret"));
        headers.append("x-bin", HeaderValue::from_bytes(b"\xff\xfe").unwrap());
        for (method, target, body) in [
            (Method::POST, "/a?q=1&r=%20", bytes::Bytes::from_static(b"{\"k\": \"\xff\\n\"}")),
            (Method::GET, "/nowhere", bytes::Bytes::new()),
        ] {
            record_request(&journal, &router, method, target, &headers, body);
        }
        journal
    }

    #[test]
    fn a_record_reads_back_as_to_json_with_the_replica() {
        let entries = varied_journal().requests();
        let mut records = b"left over".to_vec();
        records.clear();
        for entry in &entries {
            assert!(wire::encode(entry, &mut records));
        }
        let batches = [(wire::header("r1"), records)];
        let read = shared_requests(&batches, 10);
        assert_eq!(read.len(), entries.len());
        for (entry, read) in entries.iter().zip(&read) {
            let mut expected = entry.to_json_with(true, "");
            expected["replica"] = "r1".into();
            // Same keys in the same order, same values: what the admin API showed when the stream held JSON.
            assert_eq!(read.to_string(), expected.to_string());
        }
        // The newest first when there are more than asked for, across batches.
        let batches = [batches[0].clone(), (wire::header("r2"), batches[0].1.clone())];
        let ids: Vec<_> =
            shared_requests(&batches, 3).iter().map(|r| (r["id"].clone(), r["replica"].clone())).collect();
        assert_eq!(ids, [(2.into(), "r1".into()), (1.into(), "r2".into()), (2.into(), "r2".into())]);
    }

    #[test]
    fn damaged_or_unknown_records_are_left_out_without_a_panic() {
        let mut records = Vec::new();
        for entry in varied_journal().requests() {
            assert!(wire::encode(&entry, &mut records));
        }
        let header = wire::header("r1");
        // Every cut and every changed byte: whatever parses is shown, the rest left out, nothing panics.
        for cut in 0..records.len() {
            let batch = [(header.clone(), records[..cut].to_vec())];
            assert!(shared_requests(&batch, 10).len() < 2);
        }
        for at in 0..records.len() {
            for flip in [0x01, 0x80, 0xff] {
                let mut damaged = records.clone();
                damaged[at] ^= flip;
                let _ = shared_requests(&[(header.clone(), damaged)], 10);
            }
        }
        // A format this build does not know, or no header at all.
        assert!(shared_requests(&[(vec![wire::VERSION + 1], records.clone())], 10).is_empty());
        assert!(shared_requests(&[(Vec::new(), records)], 10).is_empty());
    }

    #[test]
    fn batches_are_cut_at_whole_records() {
        let mut records = Vec::new();
        for entry in varied_journal().requests() {
            assert!(wire::encode(&entry, &mut records));
        }
        let first = wire::split(&records).next().unwrap().len() + 4;
        assert_eq!(wire::chunk(&records, 1, usize::MAX), (first, 1));
        assert_eq!(wire::chunk(&records, 256, first), (first, 1));
        assert_eq!(wire::chunk(&records, 256, 1), (first, 1), "one record larger than the bound goes alone");
        assert_eq!(wire::chunk(&records, 256, usize::MAX), (records.len(), 2));
    }

    #[test]
    fn a_request_answered_by_the_previous_routes_counts_on_the_same_route_of_the_new_ones() {
        let journal = Journal::default();
        let old = router("[[route]]\npath = \"/a\"\n[[route]]\npath = \"/b\"\n");
        record(&journal, &old, "/b");
        // Reloaded with /b moved: a request still in flight on the old routes records its route as it was.
        let mut new = router("[[route]]\npath = \"/c\"\n\n[[route]]\npath = \"/b\"\n");
        new.adopt_state(&old);
        record(&journal, &old, "/b");
        record(&journal, &new, "/b");
        let requests = journal.requests();
        let locations: Vec<_> = requests.iter().map(|r| r.route().unwrap().location.as_str()).collect();
        assert_eq!(locations, ["t.toml:3", "t.toml:3", "t.toml:4"]);
        let hits: Vec<_> = journal.coverage(&new).routes.iter().map(|r| (r.path.clone(), r.hits)).collect();
        assert_eq!(hits, [("/c".to_owned(), 0), ("/b".to_owned(), 3)]);
    }
}
