//! The request pipeline: what happens to one request, in order, whoever serves it (the binary, [`crate::MockServer`],
//! the benches).
//!
//! 1. observe: a [`Probe`] starts (metrics, access log, trace all hang off it);
//! 2. classify once: the admin API or the routes;
//! 3. check the head against the limits hyper does not enforce;
//! 4. admin requests are answered by [`crate::admin`] and end here;
//! 5. read the body within `max_body` and `body_timeout`;
//! 6. route: the live router answers; the journal records it; the probe is told which route answered;
//! 7. finish pending work (a delay, a file), without holding the router;
//! 8. the probe counts, logs and traces the response; a route's fault arms the connection's trigger;
//! 9. a WebSocket route's `101`: the connection is taken from hyper once the answer is out, and its conversation
//!    runs in a task of its own (see [`start_websocket`]).

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{CONNECTION, HOST, RETRY_AFTER, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, UPGRADE};
use http::{HeaderValue, Method, Request, Response, StatusCode, Version};
use http_body_util::BodyExt;
use hyper::body::Body as _;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::sync::{OwnedSemaphorePermit, watch};

use super::ServeOptions;
use super::io::{Activity, Busy, FaultError, Sending, Trigger};
use crate::admin;
use crate::observe::{Conn, Probe};
use crate::reload::Live;
use crate::request::RequestView;
use crate::route::respond::{self, Body};
use crate::route::websocket::{self as ws, WsStart};
use crate::route::{Pending, Router, proxy};

/// What every connection of one server shares: the live routes and the options.
#[derive(Debug)]
pub(crate) struct Served {
    live: Arc<Live>,
    options: ServeOptions,
    bodies: BodyBudget,
    access: admin::Access,
    /// Set to true when the server shuts down: WebSocket conversations (which hyper no longer sees) close with 1001.
    shutdown: watch::Sender<bool>,
}

impl Served {
    pub(crate) fn new(live: Arc<Live>, options: ServeOptions, access: admin::Access) -> Self {
        let bodies = BodyBudget { used: AtomicUsize::new(0), max: options.limits.max_body_buffers };
        Served { live, options, bodies, access, shutdown: watch::Sender::new(false) }
    }

    /// The server is shutting down: tells the WebSocket conversations.
    pub(crate) fn shut_down(&self) {
        self.shutdown.send_replace(true);
    }

    pub(crate) fn live(&self) -> &Arc<Live> {
        &self.live
    }
}

/// One connection's service: hyper calls it once per request.
#[derive(Debug, Clone)]
pub(crate) struct Pipeline(Arc<ConnState>);

#[derive(Debug)]
struct ConnState {
    served: Arc<Served>,
    conn: Conn,
    trigger: Trigger,
    peer: SocketAddr,
    activity: Arc<Activity>,
    /// The connection's slot under `max_connections`: a WebSocket conversation holds it too, as it outlives hyper's
    /// connection.
    permit: Arc<OwnedSemaphorePermit>,
}

impl Pipeline {
    pub(crate) fn new(
        served: Arc<Served>,
        conn: Conn,
        trigger: Trigger,
        peer: SocketAddr,
        activity: Arc<Activity>,
        permit: Arc<OwnedSemaphorePermit>,
    ) -> Self {
        Pipeline(Arc::new(ConnState { served, conn, trigger, peer, activity, permit }))
    }

    /// Answers `req`; an error (a route's fault) makes hyper drop the connection unanswered.
    pub(crate) fn call(
        &self,
        req: Request<Incoming>,
    ) -> impl Future<Output = Result<Response<Tracked>, FaultError>> + use<> {
        // One reference count per request; the future owns it, as hyper requires.
        let this = self.0.clone();
        async move {
            let ConnState { served, conn, trigger, peer, activity, permit } = &*this;
            // The connection's own upstream connection for the proxy, driven by the connection's task (see `serve`).
            let local = &activity.local;
            // In flight from here until hyper drops the response body (or this future, if the client goes away).
            let busy = activity.begin();
            let (live, options) = (&served.live, &served.options);
            let admin = admin::is_admin_path(req.uri().path()) && options.admin && live.router().server().admin;
            let mut probe = Probe::start(live.metrics(), live.journal(), options.access_log, conn, *peer, &req, admin);
            let mut upgrade = None;
            let mut response = answer(served, *peer, req, admin, &mut probe, &mut upgrade, local).await;
            add_server_headers(&mut response, &live.router().server().headers);
            let log = probe.websocket();
            probe.finish(&response);
            let mut response = trigger.check(response)?;
            if response.extensions_mut().remove::<Linger>().is_some() {
                activity.linger();
            }
            if let Some(start) = response.extensions_mut().remove::<WsStart>() {
                match upgrade {
                    Some(on_upgrade) => start_websocket(served, activity, permit, on_upgrade, start, log),
                    None => {
                        // hyper gives every HTTP/1.1 request and every HTTP/2 CONNECT a way to upgrade.
                        tracing::warn!("a websocket answer to a request hyper cannot upgrade: answering 500");
                        let text = "500 this connection cannot be upgraded to a WebSocket\nconnect over HTTP/1.1\n";
                        response = respond::text(StatusCode::INTERNAL_SERVER_ERROR, text, &Method::GET);
                    }
                }
            }
            Ok(response.map(|body| Tracked::new(body, busy, activity)))
        }
    }
}

/// Runs a WebSocket conversation on the connection hyper hands over once the `101` is written. The conversation
/// counts as a request in flight (so the connection's idle and eviction watchdogs leave it alone: it has its own idle
/// timeout, which closes with a close frame) and holds the connection's slot; the write watchdog still applies.
fn start_websocket(
    served: &Arc<Served>,
    activity: &Arc<Activity>,
    permit: &Arc<OwnedSemaphorePermit>,
    on_upgrade: OnUpgrade,
    start: WsStart,
    log: Option<Arc<crate::observe::websocket::WsLog>>,
) {
    let busy = activity.begin();
    let permit = permit.clone();
    let limits = &served.options.limits;
    let limits = ws::WsLimits {
        max_message: limits.max_ws_message,
        max_messages: limits.max_ws_messages,
        idle: limits.idle_timeout,
    };
    let mut shutdown = served.shutdown.subscribe();
    tokio::spawn(async move {
        let (_busy, _permit) = (busy, permit);
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(e) => {
                tracing::debug!("websocket upgrade failed: {e}");
                return;
            }
        };
        // Also when the server is gone (the sender dropped): nothing is left to serve the conversation.
        let shutdown = async move {
            let _ = shutdown.wait_for(|down| *down).await;
        };
        let events: &dyn ws::WsEvents = match &log {
            Some(log) => &**log,
            None => &NoEvents,
        };
        ws::run(TokioIo::new(upgraded), start, limits, events, shutdown).await;
    });
}

/// Marks an answer given before the request body was read (a 413, a 408): the connection then closes by lingering
/// (see [`Activity::linger`]), so that the client reads the answer instead of a reset.
#[derive(Debug, Clone, Copy)]
struct Linger;

/// The events of a conversation nobody records (the probe makes a log for every upgrade: a fallback only).
struct NoEvents;

impl ws::WsEvents for NoEvents {
    fn message(&self, _: bool, _: &tokio_tungstenite::tungstenite::Message) {}
    fn ended(&self, _: &ws::WsEnd) {}
}

async fn answer(
    served: &Served,
    peer: SocketAddr,
    req: Request<Incoming>,
    admin: bool,
    probe: &mut Probe<'_>,
    upgrade: &mut Option<OnUpgrade>,
    local: &proxy::Local,
) -> Response<Body> {
    let (live, limits) = (&served.live, &served.options.limits);
    if let Some(mut refused) = check_head(&req, limits.max_uri, limits.max_headers) {
        refused.extensions_mut().insert(Linger);
        return refused;
    }
    // The rare paths' futures are boxed: the answer's future holds the largest of its awaits, and hyper moves it
    // (memcpy) on every request; a `/hello` should not carry the size of the admin API's or the proxy's state.
    if admin {
        return Box::pin(admin::handle(live, &served.access, req)).await;
    }
    let (mut parts, body) = req.into_parts();
    // A request that goes upstream whatever its body is not read here: its body is streamed to the upstream, so
    // neither `max_body` nor the body budget applies (nothing is held).
    let empty = Bytes::new();
    let streamed = {
        let view = RequestView { method: &parts.method, uri: &parts.uri, headers: &parts.headers, body: &empty, peer };
        live.router().will_proxy(&view)
    };
    // The reservation lives as long as the body it counts: until the answer is ready.
    let (body, unread, _reservation) = if streamed {
        (Bytes::new(), Some(body), None)
    } else {
        // A request with no body (most GETs) skips the boxed read.
        let read = if body.is_end_stream() {
            Ok((Bytes::new(), Reservation { budget: &served.bodies, held: 0 }))
        } else {
            Box::pin(read_body(body, limits.max_body, limits.body_timeout, &served.bodies)).await
        };
        match read {
            Ok((read, reservation)) => (read, None, Some(reservation)),
            Err(mut response) => {
                response.extensions_mut().insert(Linger);
                return response;
            }
        }
    };
    // RFC 8441: over HTTP/2 a WebSocket opens with an extended CONNECT (`:protocol = websocket`). The route sees the
    // HTTP/1.1 handshake it stands for (a GET with the upgrade headers HTTP/2 has no place for), so that one check
    // and one route serve both; the answer goes back as the 200 that opens the stream.
    let h2_websocket = parts.version == Version::HTTP_2
        && parts.method == Method::CONNECT
        && parts.extensions.get::<hyper::ext::Protocol>().is_some_and(|p| p.as_str().eq_ignore_ascii_case("websocket"));
    if h2_websocket {
        parts.method = Method::GET;
        parts.headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
        parts.headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
        // No accept key is sent over HTTP/2; the handshake check only needs one to be there.
        parts.headers.entry(SEC_WEBSOCKET_KEY).or_insert(HeaderValue::from_static("rfc8441"));
    }
    probe.routing();
    let (mut response, pending, proxy_to) = {
        let view = RequestView { method: &parts.method, uri: &parts.uri, headers: &parts.headers, body: &body, peer };
        // A statement of its own, so that the router's guard is not held across the store's await.
        let store = live.state().filter(|_| live.router().needs_shared(view.uri.path()));
        // Only the shared store's path awaits: the others are routed without a future of their own, whose output
        // (the answer) would be moved once more.
        let routed = match store {
            Some(store) => Box::pin(route_shared(live, store, &view, probe)).await,
            None => route(live, &view, probe),
        };
        match routed {
            Ok(routed) => routed,
            Err(refused) => return *refused,
        }
    };
    if response.extensions().get::<WsStart>().is_some() {
        *upgrade = parts.extensions.remove::<OnUpgrade>();
    }
    if let Some(pending) = pending {
        response = Box::pin(pending.finish(response)).await;
    }
    if h2_websocket && response.status() == StatusCode::SWITCHING_PROTOCOLS {
        *response.status_mut() = StatusCode::OK;
        for name in [UPGRADE, CONNECTION, SEC_WEBSOCKET_ACCEPT] {
            response.headers_mut().remove(name);
        }
    }
    let Some(to) = proxy_to else { return response };
    let (upstream_body, read) = match unread {
        Some(incoming) => (proxy::streamed_body(incoming, limits.body_timeout), None),
        None => (proxy::full_body(body.clone()), Some(body)),
    };
    // The connection's own upstream connection serves a kept-alive HTTP/1.1 connection, one request at a time (a last
    // request, `Connection: close`, is told by `prepare`'s one pass over the headers); HTTP/2 carries requests side by
    // side, which one upstream HTTP/1.1 connection cannot.
    let own = parts.version == Version::HTTP_11;
    let client = proxy::Downstream { peer, https: served.options.tls.is_some(), local, own };
    // Made ready here, without a future: the box then holds the upstream request and the exchange's state alone.
    match proxy::prepare(to, parts, upstream_body, read, client) {
        Ok(prepared) => Box::pin(proxy::exchange(prepared)).await,
        Err(refused) => *refused,
    }
}

/// What the routing step gives: the answer, the work it still awaits, and where it goes when it is proxied.
type Routed = (Response<Body>, Option<Pending>, Option<proxy::ProxyTo>);

/// The routing step with the shared state store (`[server] state`), for a path with a stateful route: the OpenAPI
/// checks, then the router's answer in the request's partition, recorded. Err: the checks refused the request (boxed:
/// the rare path pays for the allocation).
/// The router is let go of before the answer's own waits (a delay, a file read, an upstream).
async fn route_shared(
    live: &Live,
    store: &crate::route::state::RemoteState,
    view: &RequestView<'_>,
    probe: &mut Probe<'_>,
) -> Result<Routed, Box<Response<Body>>> {
    // The store is awaited: the router is held as an `Arc`, not as a guard.
    let router = live.load_full();
    let violations = check_openapi(&router, view, probe)?;
    let partition = router.isolate_id(view);
    let partition = partition.as_deref().unwrap_or(crate::route::state::DEFAULT_PARTITION);
    // Not boxed again: the caller boxes this whole future.
    let answer = router.respond_shared(view, store, partition).await;
    probe.answered_checked(&router, view, &answer, violations);
    Ok((answer.response, answer.pending, answer.proxy))
}

/// The routing step in process (any request without a shared store, or to a path without stateful routes): the
/// OpenAPI checks, then the router's answer, recorded. Err: the checks refused the request (boxed, as above).
fn route(live: &Live, view: &RequestView<'_>, probe: &mut Probe<'_>) -> Result<Routed, Box<Response<Body>>> {
    let router = live.router();
    let violations = check_openapi(&router, view, probe)?;
    let answer = router.respond(view);
    probe.answered_checked(&router, view, &answer, violations);
    Ok((answer.response, answer.pending, answer.proxy))
}

/// `[server] openapi_validate`: checks the request against its operation before any route answers, with
/// validators compiled at load. Ok: what was found wrong, to journal with the answer (none, or `"warn"`); Err: the
/// refusal of `"enforce"`, already recorded (boxed: the rare path pays for the allocation, not every request).
fn check_openapi(
    router: &Router,
    view: &RequestView<'_>,
    probe: &mut Probe<'_>,
) -> Result<Option<Arc<serde_json::Value>>, Box<Response<Body>>> {
    let Some(found) = router.openapi().and_then(|checks| checks.check(view)) else { return Ok(None) };
    let (method, path) = (view.method, view.uri.path());
    let operation = found.json["operation"].as_str().unwrap_or("");
    if found.enforce {
        tracing::info!("{method} {path} refused ({}): it does not fit {operation}: {}", found.status, found.summary());
        let answer = crate::route::Answer { response: found.response(), route: None, pending: None, proxy: None };
        probe.answered_checked(router, view, &answer, Some(found.json.clone()));
        return Err(Box::new(answer.response));
    }
    tracing::warn!("{method} {path} does not fit {operation}: {}", found.summary());
    Ok(Some(found.json))
}

/// `[server] headers` are "added to every response": routes carry them already (their own headers win), and this
/// adds them where missing, to the answers hotroute makes itself (404, 405, admin, limits). Once, here, for all.
fn add_server_headers<B>(response: &mut Response<B>, headers: &http::HeaderMap) {
    for (name, value) in headers {
        if !response.headers().contains_key(name) {
            response.headers_mut().insert(name.clone(), value.clone());
        }
    }
}

/// Refuses a request whose head is over a limit that hyper does not enforce itself: a request target over
/// `max_uri` (414), and more than `max_headers` headers on HTTP/2 (431; hyper counts them only on HTTP/1).
fn check_head<B>(req: &Request<B>, max_uri: usize, max_headers: usize) -> Option<Response<Body>> {
    // RFC 9112 section 3.2: a server must answer 400 to an HTTP/1.1 request with no Host or more than one. (HTTP/1.0
    // has no such rule; HTTP/2 carries `:authority`.)
    if req.version() == Version::HTTP_11 {
        let hosts = req.headers().get_all(HOST).iter().count();
        if hosts != 1 {
            let text = format!(
                "400 an HTTP/1.1 request must carry exactly one Host header (RFC 9112 section 3.2); this one has \
                 {hosts}\nsend `Host: <host>[:<port>]` once\n"
            );
            return Some(respond::text(StatusCode::BAD_REQUEST, text, req.method()));
        }
    }
    let target = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if target > max_uri {
        let text = format!(
            "414 request target is {target} bytes, over the limit of {max_uri}\n\
             raise it with [server] max_uri in the route file\n"
        );
        return Some(respond::text(StatusCode::URI_TOO_LONG, text, req.method()));
    }
    if req.headers().len() > max_headers {
        let text = format!(
            "431 {} request headers, over the limit of {max_headers}\n\
             raise it with [server] max_headers in the route file\n",
            req.headers().len()
        );
        return Some(respond::text(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, text, req.method()));
    }
    None
}

/// The bytes of request bodies being read or held, across all connections, and their limit (`max_body_buffers`).
#[derive(Debug)]
struct BodyBudget {
    used: AtomicUsize,
    max: usize,
}

/// A share of the [`BodyBudget`], given back when dropped.
#[derive(Debug)]
pub(crate) struct Reservation<'a> {
    budget: &'a BodyBudget,
    held: usize,
}

impl Reservation<'_> {
    /// Takes `n` more bytes of the budget; false (and nothing taken) if that would go over it.
    fn grow(&mut self, n: usize) -> bool {
        let taken = self.budget.used.fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
            used.checked_add(n).filter(|&after| after <= self.budget.max)
        });
        if taken.is_ok() {
            self.held += n;
        }
        taken.is_ok()
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.held, Ordering::AcqRel);
    }
}

/// Reads the whole request body, refusing one over `limit` bytes with a 413: before reading when the declared
/// length is too big, and while reading when the client sends more than it declared (or declared nothing). A body
/// not complete within `timeout` gets a 408. Every byte held counts against the server-wide `budget`, the declared
/// length from the start: a body that would take it over gets a 503 with `retry-after`, so that many clients sending
/// bodies slowly cannot take the server's memory.
async fn read_body(
    mut body: Incoming,
    limit: usize,
    timeout: Duration,
    budget: &BodyBudget,
) -> Result<(Bytes, Reservation<'_>), Response<Body>> {
    let mut reservation = Reservation { budget, held: 0 };
    if body.is_end_stream() {
        return Ok((Bytes::new(), reservation));
    }
    // Error answers carry a body whatever the method: POST stands for "not HEAD".
    let too_large = || {
        let text = format!(
            "413 request body over the limit of {limit} bytes\nraise it with [server] max_body in the route file\n"
        );
        respond::text(StatusCode::PAYLOAD_TOO_LARGE, text, &Method::POST)
    };
    let busy = || {
        let text = format!(
            "503 the server already holds {} bytes of request bodies (max_body_buffers); retry in a moment\n\
             raise it with [server] max_body_buffers in the route file\n",
            budget.max
        );
        let mut res = respond::text(StatusCode::SERVICE_UNAVAILABLE, text, &Method::POST);
        res.headers_mut().insert(RETRY_AFTER, HeaderValue::from_static("1"));
        res
    };
    let declared = body.size_hint().lower();
    if declared > limit as u64 {
        return Err(too_large());
    }
    // At most `limit` here, so it fits a usize.
    if !reservation.grow(declared as usize) {
        return Err(busy());
    }
    let read = async {
        let mut chunks: Vec<Bytes> = Vec::new();
        let mut total = 0usize;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| {
                respond::text(
                    StatusCode::BAD_REQUEST,
                    format!("400 cannot read the request body: {e}\n"),
                    &Method::POST,
                )
            })?;
            let Ok(data) = frame.into_data() else { continue };
            total = total.saturating_add(data.len());
            if total > limit {
                return Err(too_large());
            }
            if total > reservation.held && !reservation.grow(total - reservation.held) {
                return Err(busy());
            }
            chunks.push(data);
        }
        Ok(match chunks.len() {
            0 => Bytes::new(),
            1 => chunks.pop().unwrap_or_default(),
            _ => {
                let mut whole = BytesMut::with_capacity(total);
                chunks.iter().for_each(|c| whole.extend_from_slice(c));
                whole.freeze()
            }
        })
    };
    match tokio::time::timeout(timeout, read).await {
        Ok(Ok(bytes)) => Ok((bytes, reservation)),
        Ok(Err(response)) => Err(response),
        Err(_) => {
            let text = format!(
                "408 the request body did not arrive within {timeout:?}\nraise it with [server] body_timeout in the route file\n"
            );
            Err(respond::text(StatusCode::REQUEST_TIMEOUT, text, &Method::POST))
        }
    }
}

/// The largest piece of a response body handed to hyper at once: each piece is a sign that the client is reading
/// (see [`Tracked`]), so a big body is not handed over (and buffered by HTTP/2) in one go.
const CHUNK: usize = 16 * 1024;

/// A response body on its way to the client, which tells the connection's [`Activity`] what it is doing: in flight
/// until hyper drops it, and making progress each time hyper takes a chunk. hyper's HTTP/2 takes a chunk only when the
/// client's flow-control window has room, so a body that is not polled for the write timeout is a client that keeps
/// its window shut, and the connection's watchdog closes it. It ends (`is_end_stream`) only after hyper has asked for
/// the frame after the last one, which for HTTP/2 happens once the client has taken the data: a stream whose last
/// bytes are held by a shut window is still seen.
#[derive(Debug)]
pub(crate) struct Tracked {
    body: Body,
    /// What is left of a data frame larger than [`CHUNK`].
    rest: Bytes,
    sending: Option<Sending>,
    busy: Option<Busy>,
    done: bool,
}

impl Tracked {
    fn new(body: Body, busy: Busy, activity: &Arc<Activity>) -> Self {
        if body.is_end_stream() {
            // Nothing to send: hyper writes the head alone and drops the body.
            return Tracked { body, rest: Bytes::new(), sending: None, busy: Some(busy), done: true };
        }
        Tracked { body, rest: Bytes::new(), sending: Some(activity.sending()), busy: Some(busy), done: false }
    }
}

impl hyper::body::Body for Tracked {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if !this.rest.is_empty() {
            if let Some(sending) = &this.sending {
                sending.progress();
            }
            let n = this.rest.len().min(CHUNK);
            return Poll::Ready(Some(Ok(Frame::data(this.rest.split_to(n)))));
        }
        // A streamed body may wait on itself (a timed stream's delay, longer than the write timeout): that wait is
        // not the client's, so the watchdog is told when it starts and ends (see `Sending::body_waker`). Its clock
        // is written once per poll, after the body answers (a clock read each; a timed stream's event is two polls),
        // not also before: `body_waker` sets the wait aside first either way.
        let mut polled = match (&mut this.sending, &this.body) {
            (Some(sending), Body::Stream(_)) => {
                if sending.still_waiting(cx.waker()) {
                    return Poll::Pending;
                }
                let waker = sending.body_waker(cx.waker());
                let polled = Pin::new(&mut this.body).poll_frame(&mut Context::from_waker(waker));
                if polled.is_ready() {
                    sending.progress();
                }
                polled
            }
            (sending, _) => {
                if let Some(sending) = sending {
                    sending.progress();
                }
                Pin::new(&mut this.body).poll_frame(cx)
            }
        };
        // In place: taking the data out of the frame and wrapping it again moves the whole frame (it has room for
        // trailers) twice, for every event of a stream.
        match &mut polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_mut()
                    && data.len() > CHUNK
                {
                    this.rest = data.split_off(CHUNK);
                }
            }
            Poll::Ready(None) => (this.done, this.sending, this.busy) = (true, None, None),
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        let inner = self.body.size_hint();
        let rest = self.rest.len() as u64;
        let mut hint = SizeHint::new();
        hint.set_lower(inner.lower().saturating_add(rest));
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper.saturating_add(rest));
        }
        hint
    }
}
