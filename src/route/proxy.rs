//! Forwarding to an upstream: `proxy` routes and `[server] proxy`, the fallback for requests no route answers.
//!
//! The router decides *where* (a [`ProxyTo`] in its [`crate::route::Answer`], with the path sent upstream); the
//! pipeline calls [`prepare`] and [`exchange`] with the request's body, streamed when the route could be chosen
//! without reading it. Bodies go through as streams both ways, so memory stays at a few chunks per exchange whatever
//! their size.
//!
//! One pooled client (hyper-util's, HTTP/1.1 and HTTP/2 chosen by ALPN) per TLS setting, shared by every route and
//! every reload of the process, so keep-alive connections to an upstream survive a reload.
//!
//! A kept-alive HTTP/1.1 client connection to a cleartext upstream has an upstream connection of its own instead
//! ([`Local`]), driven by the client connection's own task: the pooled client hands every request to the task of
//! its connection through a channel, takes a lock to check the connection out and spawns a task per answer to put it
//! back, which cost about a third of hotroute's time per proxied request (see BENCHMARKS.md, issue 14).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HOST, HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderMap, Request, Response, StatusCode, Uri, Version};
use http_body_util::BodyExt;
use http_body_util::combinators::BoxBody;
use hyper::client::conn::http1;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::RootCertStore;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use crate::config::MatchConfig;
use crate::config::proxy::{ProxyConfig, ProxyRoute};
use crate::config::tls::Pem;
pub use crate::import::record::strip_hop_by_hop;
use crate::import::record::{self, Exchange, HopByHop, Recorder, Redaction};
use crate::route::respond::{self, Body};

/// The error type of bodies sent upstream.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A request body on its way upstream: the client's, streamed, or bytes already read.
pub type UpstreamBody = BoxBody<Bytes, BoxError>;

type HttpsClient = Client<HttpsConnector<HttpConnector>, UpstreamBody>;

/// An upstream ready to be forwarded to: its settings, the route's own headers and the pooled client.
#[derive(Debug)]
pub struct Upstream {
    config: Arc<ProxyConfig>,
    /// The route's own `headers`, put over the upstream's answer (none for `[server] proxy`).
    headers: HeaderMap,
    client: HttpsClient,
    /// The URL as written, shared: the journal and the probe keep it for every proxied request without a copy.
    url: Arc<str>,
    /// The `Host` sent upstream (unless `preserve_host`), made once instead of per request.
    host: Option<HeaderValue>,
    /// `record = "file.toml"`: where exchanges are written.
    recorder: Option<Arc<Mutex<Recorder>>>,
}

/// Where a request goes: in the router's [`crate::route::Answer`], taken out by the pipeline.
#[derive(Debug, Clone)]
pub struct ProxyTo {
    /// The upstream.
    pub upstream: Arc<Upstream>,
    /// The path and query sent upstream; none when they are the request's own, which are then sent as they came
    /// (shared, not copied: the usual `[server] proxy` without a `base` path or a rewrite).
    pub target: Option<String>,
}

impl Upstream {
    /// Builds (or reuses) the client for `config`'s TLS settings. Fails when the `ca` file holds no certificate.
    pub(crate) fn new(config: Arc<ProxyConfig>, route: Option<&ProxyRoute>) -> Result<Arc<Upstream>, String> {
        let client = client(config.ca.as_ref().map(|c| &c.pem), config.insecure, &config)?;
        let headers = route.map(|r| r.headers.clone()).unwrap_or_default();
        let recorder = match &config.record {
            None => None,
            Some(out) => {
                let redaction = Redaction::with(&config.redact, &config.redact_json).map_err(|e| e.to_string())?;
                Some(record::recorder(out, &redaction).map_err(|e| format!("proxy.record: {e}"))?)
            }
        };
        let url = Arc::from(config.url.as_str());
        let host = HeaderValue::from_str(config.authority.as_str()).ok();
        Ok(Arc::new(Upstream { config, headers, client, url, host, recorder }))
    }

    /// Whether exchanges are recorded (the request body is then read first, to be written with them).
    pub fn records(&self) -> bool {
        self.recorder.is_some()
    }

    /// The URL as written in the route file (shared: cloning it copies no text).
    pub fn url(&self) -> &Arc<str> {
        &self.url
    }

    /// The path and query to send upstream for a request to `uri`, whose route captured `params`; none when they are
    /// `uri`'s own.
    pub(crate) fn target(&self, uri: &Uri, params: &[(&str, &str)]) -> Option<String> {
        if self.config.base.is_empty()
            && self.config.rewrite.is_none()
            && uri.path_and_query().is_some_and(|pq| pq.as_str().starts_with('/'))
        {
            return None;
        }
        let rewritten = self.config.rewrite.as_ref().map(|rewrite| {
            let mut out = rewrite.clone();
            for (name, value) in params {
                out = out.replace(&format!("{{{name}}}"), value).replace(&format!("{{*{name}}}"), value);
            }
            out
        });
        let path = rewritten.as_deref().unwrap_or(uri.path());
        // One allocation, sized exactly: this runs for every proxied request, and the text becomes the upstream URI's
        // bytes (`Bytes` takes a buffer with no spare room as it is, and allocates again for one with some).
        let len = self.config.base.len() + path.len();
        let len = len.max(1) + uri.query().map_or(0, |q| q.len() + 1);
        let mut target = String::with_capacity(len);
        target.push_str(&self.config.base);
        target.push_str(path);
        if target.is_empty() {
            target.push('/');
        }
        if let Some(query) = uri.query() {
            target.push('?');
            target.push_str(query);
        }
        Some(target)
    }
}

/// Whether `matcher` looks at the request body (so the body must be read before the route is known).
pub(crate) fn needs_body(m: &MatchConfig) -> bool {
    m.body_contains.is_some()
        || m.json.is_some()
        || m.body_regex.is_some()
        || !m.form.is_empty()
        || !m.jsonpath.is_empty()
        // A draw is made once per request: the route is chosen once, with the body.
        || m.chance.is_some()
}

/// This process's `Via` token: a request that carries it has been through this server already (a loop).
pub fn via_token() -> &'static str {
    static TOKEN: OnceLock<String> = OnceLock::new();
    TOKEN.get_or_init(|| {
        let mut bytes = [0u8; 4];
        // A failed OS generator leaves a fixed token: loops between two hotroutes are then taken for one, no worse.
        let _ = getrandom::fill(&mut bytes);
        format!("hotroute-{:08x}", u32::from_le_bytes(bytes))
    })
}

/// The client side of a proxied request: who sent it, how, and what its connection keeps for the proxy.
#[derive(Debug, Clone, Copy)]
pub struct Downstream<'a> {
    /// The client's address (`X-Forwarded-For`).
    pub peer: SocketAddr,
    /// Whether the client spoke TLS to us (`X-Forwarded-Proto`).
    pub https: bool,
    /// The client connection's own upstream connection and per-connection values.
    pub local: &'a Local,
    /// Whether the request may take the connection's own upstream connection: an HTTP/1.1 request (HTTP/2 carries
    /// requests side by side). A last one (`Connection: close`) is kept off it by [`prepare`], which sees the headers.
    pub own: bool,
}

/// A request made ready for its upstream by [`prepare`], to be sent by [`exchange`].
pub struct Prepared<'a> {
    request: Request<UpstreamBody>,
    upstream: Arc<Upstream>,
    /// The connection's own upstream connection, when the request takes it.
    local: Option<&'a Local>,
    /// Boxed: a recording upstream is rare, and the exchange's future (moved into a box per request) would carry its
    /// 250 bytes for every request.
    recording: Option<Box<(Arc<Mutex<Recorder>>, Exchange)>>,
}

/// Makes a request ready to be forwarded to `to`: `parts` as the client sent them, `body` streamed or read (`read` when
/// read, which a recording upstream writes with the answer), from `client`; [`exchange`] then sends it. The client
/// connection's own upstream connection is used for a cleartext upstream when `client.own` (else the pooled client).
/// Err: the answer when it cannot go (boxed, as it is rare): 508 on a loop, 502 for a target no URL can carry.
///
/// This half awaits nothing, and is apart from the future [`exchange`] makes, which the pipeline moves into a box per
/// request: that future holds the upstream request alone, not also the client's request head and the state of the
/// header rewriting (which made one `forward` future of 3.3 KB; BENCHMARKS.md, issue 14).
pub fn prepare<'a>(
    to: ProxyTo,
    parts: http::request::Parts,
    body: UpstreamBody,
    read: Option<Bytes>,
    client: Downstream<'a>,
) -> Result<Prepared<'a>, Box<Response<Body>>> {
    let config = &to.upstream.config;
    let method = parts.method.clone();
    // One pass over the client's headers finds all the proxy needs of them (a loop, hop-by-hop headers, `Connection:
    // close`, the forwarding headers sent): a lookup each cost a hash of the name and a probe (BENCHMARKS.md,
    // issue 14).
    let mut seen = Seen::of(&parts.headers);
    if seen.looped {
        let text = format!(
            "508 loop detected: this request already passed through this hotroute ({} in Via) on its way to {}\n\
             make the proxy's upstream another server than hotroute itself\n",
            via_token(),
            config.url
        );
        return Err(Box::new(respond::text(StatusCode::LOOP_DETECTED, text, &method)));
    }
    // A last request (`Connection: close`) goes to the pool, whose connection outlives this one for the next client.
    let own = client.own && !seen.close;
    let local = Some(client.local).filter(|_| own && config.scheme == Scheme::HTTP);
    let target = match to.target {
        // The target's bytes become the URI's as they are (no copy).
        Some(target) => PathAndQuery::from_maybe_shared(Bytes::from(target)),
        // The client's own path and query, shared as hyper parsed it: not copied, not parsed again.
        None => Ok(parts.uri.path_and_query().cloned().unwrap_or_else(|| PathAndQuery::from_static("/"))),
    };
    // The connection's own upstream connection takes the origin form (`/path?query`, as the pooled client sends over
    // HTTP/1.1), so only the pool's URL is absolute.
    let uri = match target {
        Ok(target) if local.is_some() => Ok(Uri::from(target)),
        Ok(target) => absolute(config, target),
        Err(e) => Err(http::Error::from(e)),
    };
    let uri = match uri {
        Ok(uri) => uri,
        Err(e) => {
            let text = format!(
                "502 cannot make an upstream URL of {} and the request's path and query: {e}\ncheck the proxy's \
                 `path` rewrite: a capture may hold characters a URL cannot carry\n",
                config.url
            );
            return Err(Box::new(respond::text(StatusCode::BAD_GATEWAY, text, &method)));
        }
    };
    let recording = match (&to.upstream.recorder, read) {
        (Some(recorder), Some(request_body)) if method != http::Method::HEAD => Some(Box::new((
            recorder.clone(),
            Exchange {
                method: method.clone(),
                path: parts.uri.path().to_owned(),
                query: parts.uri.query().map(str::to_owned),
                request_body,
                status: StatusCode::OK,
                headers: HeaderMap::new(),
                body: Bytes::new(),
            },
        ))),
        _ => None,
    };
    let mut headers = parts.headers;
    if seen.hop.strip(&mut headers) {
        // The long way (rare): a `Connection` header may have named others, which are gone now, so what the pass saw
        // is looked at again.
        seen = Seen::of(&headers);
    }
    // One lookup of `Host`: the upstream's goes in as the client's comes out (`insert` replaces every value sent).
    let client_host = match (config.preserve_host, &to.upstream.host) {
        (true, _) => headers.get(HOST).cloned(),
        (false, Some(host)) => headers.insert(HOST, host.clone()),
        (false, None) => headers.remove(HOST),
    };
    // HTTP/2 carries the host in the URI (`:authority`), as does an absolute-form HTTP/1 target.
    let client_host =
        client_host.or_else(|| parts.uri.authority().and_then(|a| HeaderValue::from_str(a.as_str()).ok()));
    if config.preserve_host
        && !headers.contains_key(HOST)
        && let Some(host) = client_host.clone().or_else(|| to.upstream.host.clone())
    {
        headers.insert(HOST, host);
    }
    add_forwarded(&mut headers, client, client_host.as_ref(), parts.version, seen);
    let mut request = Request::new(body);
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.headers_mut() = headers;
    Ok(Prepared { request, upstream: to.upstream, local, recording })
}

/// Sends the request [`prepare`]d and gives the upstream's answer, on its way to the client as it comes; 502 when the
/// upstream cannot be reached or breaks off, 504 when its head takes longer than the timeout.
#[allow(clippy::manual_async_fn, reason = "an `async fn` keeps a second copy of its argument in its future")]
pub fn exchange(prepared: Prepared<'_>) -> impl Future<Output = Response<Body>> + Send + '_ {
    // An `async move` block rather than an `async fn`: a function's future moves its argument into a local of its own
    // first (the request twice in the future); a block uses what it captured in place.
    async move {
        // The fields are used where they are, not moved into locals: a local would be a second copy of the request in
        // this future, which the pipeline moves into a box per request (a future over 1 KB also takes mimalloc's
        // slower path). The method, for the answers made here (a `HEAD` gets no body): a standard one is a copy.
        let method = prepared.request.method().clone();
        let timeout = prepared.upstream.config.timeout;
        let answer = send(&prepared.upstream, prepared.local, prepared.request, timeout).await;
        let (upstream, recording) = (&prepared.upstream, prepared.recording);
        let config = &upstream.config;
        let response = match answer {
            Err(_) => {
                let text = format!(
                    "504 the upstream {} did not answer within {:?}\nraise the proxy's timeout, e.g. proxy = {{ url = \
                     \"{}\", timeout = \"60s\" }}\n",
                    config.url, config.timeout, config.url
                );
                return respond::text(StatusCode::GATEWAY_TIMEOUT, text, &method);
            }
            Ok(Err(e)) => {
                let text = format!(
                    "502 cannot get an answer from the upstream {}: {}\ncheck that it runs and that `proxy` names it\n",
                    config.url,
                    error_chain(&*e)
                );
                return respond::text(StatusCode::BAD_GATEWAY, text, &method);
            }
            Ok(Ok(response)) => response,
        };
        let (mut head, body) = response.into_parts();
        strip_hop_by_hop(&mut head.headers);
        for (name, value) in &upstream.headers {
            head.headers.insert(name.clone(), value.clone());
        }
        // The timeout bounds each wait for the upstream's next bytes too, not only the head.
        let body = Idle::new(body, config.timeout, "the upstream");
        let body = match recording {
            None => Body::stream(body.boxed()),
            Some(recording) => {
                let (recorder, mut exchange) = *recording;
                (exchange.status, exchange.headers) = (head.status, head.headers.clone());
                let tee = Tee { inner: body, kept: Vec::new(), over: false, exchange: Some(exchange), recorder };
                Body::stream(tee.boxed())
            }
        };
        Response::from_parts(head, body)
    }
}

/// The absolute URL of `target` at `config`'s upstream, as the pooled client wants it (scheme and authority are
/// shared `Bytes`).
fn absolute(config: &ProxyConfig, target: PathAndQuery) -> Result<Uri, http::Error> {
    let mut uri = http::uri::Parts::default();
    (uri.scheme, uri.authority, uri.path_and_query) =
        (Some(config.scheme.clone()), Some(config.authority.clone()), Some(target));
    Uri::from_parts(uri).map_err(http::Error::from)
}

/// Sends `request` (its URI in origin form, made for the connection's own upstream connection) on the pooled client
/// instead, its URI made absolute.
async fn pooled_instead(
    upstream: &Upstream,
    mut request: Request<UpstreamBody>,
    deadline: tokio::time::Instant,
) -> Sent {
    if let Some(target) = request.uri().path_and_query().cloned() {
        match absolute(&upstream.config, target) {
            Ok(uri) => *request.uri_mut() = uri,
            Err(e) => return Ok(Err(e.into())),
        }
    }
    pooled(upstream, request, deadline).await
}

/// What [`send`] gives: the answer's head, a failure, or `Err(TimedOut)` when the head took longer than the timeout.
type Sent = Result<Result<Response<hyper::body::Incoming>, BoxError>, TimedOut>;

/// The upstream's answer did not come within the proxy's timeout.
struct TimedOut;

/// Sends `request` on `local`'s connection when there is one (made on first use; the URI is then in origin form), else
/// on the pooled client; the whole (connecting included) bounded by `limit`. The rare paths (connecting, the pool) are
/// boxed: a future is as large as the largest of its awaits, and the pipeline moves the proxy's future into a box per
/// request.
async fn send(upstream: &Upstream, local: Option<&Local>, request: Request<UpstreamBody>, limit: Duration) -> Sent {
    let deadline = tokio::time::Instant::now() + limit;
    let Some(local) = local else { return Box::pin(pooled(upstream, request, deadline)).await };
    let (mut sender, request) = match local.take_sender(&upstream.config.authority) {
        Ok(Some(sender)) => (sender, request),
        // No connection yet, or a closed one: made now. The request goes into the box and comes back out, so that
        // this future keeps no copy of it across the wait.
        Ok(None) => match Box::pin(connect_own(upstream, local, request, deadline)).await {
            Ok(made) => made,
            Err(failed) => return failed,
        },
        // Busy (a pipelining client's previous answer is still coming).
        Err(()) => return Box::pin(pooled_instead(upstream, request, deadline)).await,
    };
    let sent = sender.try_send_request(request);
    local.put_back(sender);
    // Until the answer's head is here, a failure or a timeout leaves the connection in an unknown state: it is closed
    // then, and the next request makes a new one.
    let guard = Abandon(local);
    // The wait is bounded by the connection's own timer (see `Local::poll_deadline`), not a timer of its own.
    let mut sent = std::pin::pin!(sent);
    let answer = std::future::poll_fn(|cx| match sent.as_mut().poll(cx) {
        Poll::Ready(answer) => Poll::Ready(Ok(answer)),
        Poll::Pending => local.poll_deadline(deadline, cx).map(|()| Err(TimedOut)),
    });
    let request = match answer.await? {
        Ok(response) => {
            std::mem::forget(guard);
            return Ok(Ok(response));
        }
        Err(mut e) => match e.take_message() {
            // Never written (the upstream had closed the kept-alive connection): safe to send again, on the pool.
            Some(request) => request,
            None => return Ok(Err(e.into_error().into())),
        },
    };
    drop(guard);
    Box::pin(pooled_instead(upstream, request, deadline)).await
}

/// Connects the client connection's own upstream connection (the first request of a connection, or one after the
/// upstream closed it): its sender and `request` back, or why there is none. Boxed by [`send`]: this rare path's state
/// would otherwise be carried by every request's future.
async fn connect_own(
    upstream: &Upstream,
    local: &Local,
    request: Request<UpstreamBody>,
    deadline: tokio::time::Instant,
) -> Result<(Sender, Request<UpstreamBody>), Sent> {
    let authority = &upstream.config.authority;
    let made = tokio::time::timeout_at(deadline, async {
        let stream = connect(authority).await?;
        Ok::<_, BoxError>(http1::handshake(TokioIo::new(stream)).await?)
    });
    match made.await {
        Err(_) => Err(Err(TimedOut)),
        Ok(Err(e)) => Err(Ok(Err(e))),
        Ok(Ok((sender, conn))) => {
            local.install(authority.clone(), conn);
            Ok((sender, request))
        }
    }
}

/// The sending half of an upstream connection of a client connection's own.
type Sender = http1::SendRequest<UpstreamBody>;

/// Sends `request` on the pooled client, bounded by `deadline`.
async fn pooled(upstream: &Upstream, request: Request<UpstreamBody>, deadline: tokio::time::Instant) -> Sent {
    match tokio::time::timeout_at(deadline, upstream.client.request(request)).await {
        Ok(answer) => Ok(answer.map_err(Into::into)),
        Err(_) => Err(TimedOut),
    }
}

/// A TCP connection to `authority` (a cleartext upstream), bounded like the pooled client's.
async fn connect(authority: &Authority) -> Result<tokio::net::TcpStream, std::io::Error> {
    // `[::1]` is written with brackets in a URL, without them in an address.
    let host = authority.host().trim_start_matches('[').trim_end_matches(']');
    let port = authority.port_u16().unwrap_or(80);
    let connected = tokio::time::timeout(Duration::from_secs(10), tokio::net::TcpStream::connect((host, port))).await;
    let stream = match connected {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return Err(std::io::Error::new(e.kind(), format!("tcp connect error: {e}"))),
        Err(_) => {
            let why = format!("tcp connect error: no connection to {authority} within 10s");
            return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, why));
        }
    };
    // Small requests go out at once instead of waiting for Nagle's algorithm (as the pooled client's connector).
    stream.set_nodelay(true)?;
    Ok(stream)
}

type LocalConn = http1::Connection<TokioIo<tokio::net::TcpStream>, UpstreamBody>;

/// A client connection's own upstream connection (HTTP/1.1, cleartext), driven by the client connection's task
/// ([`Local::poll_conn`]): a request then goes upstream and its answer comes back without waking another task, taking
/// a shared lock or spawning anything. One at most per client connection (so bounded by `max_connections`), made on
/// the first proxied request and closed with the client connection.
///
/// `repr(C)` with `open` first: the connection's state holds it right after the fields a wake reads, so that a
/// connection that never proxies reads its flag in the same cache line (see `serve::io::Activity`).
#[derive(Default)]
#[repr(C)]
pub struct Local {
    /// Whether `slot` holds a connection: a client connection that never proxies polls no lock at all.
    open: AtomicBool,
    /// Only the client connection's task uses it, so the lock is never contended: it is there to make it `Sync`.
    slot: Mutex<Slot>,
    /// The timer of the proxy's `timeout` for this connection's requests, made once and moved only when it fires
    /// (see [`Local::poll_deadline`]).
    timer: Mutex<Option<Timer>>,
    /// The `X-Forwarded-For` value of a request that brings none: the client's address, which is the same for every
    /// request of the connection, written once (a request then clones it: a reference count).
    forwarded_for: OnceLock<(std::net::IpAddr, Option<HeaderValue>)>,
}

/// The connection's timer for the proxy's `timeout` (see [`Local::poll_deadline`]).
struct Timer {
    sleep: Pin<Box<tokio::time::Sleep>>,
    /// The waker the sleep holds since it was last polled pending: a tokio timer keeps it until it fires, so polling
    /// it again for the same task would only check its state and register that waker again (two polls per proxied
    /// request, about 230 instructions).
    waker: Option<std::task::Waker>,
}

#[derive(Default)]
struct Slot {
    /// The upstream the connection goes to.
    to: Option<Authority>,
    sender: Option<http1::SendRequest<UpstreamBody>>,
    conn: Option<Pin<Box<LocalConn>>>,
}

impl std::fmt::Debug for Local {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Local")
    }
}

impl Local {
    fn slot(&self) -> std::sync::MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The sender, if the connection goes to `to` and can take a request now; a closed one, or one to another
    /// upstream, is let go of (`Ok(None)`: make one). `Err`: busy (a pipelining client's previous answer is still
    /// coming), so the request takes the pool and the answer in progress is left alone.
    fn take_sender(&self, to: &Authority) -> Result<Option<http1::SendRequest<UpstreamBody>>, ()> {
        let mut slot = self.slot();
        let stale = slot.sender.as_ref().is_some_and(|s| s.is_closed())
            || slot.to.as_ref().is_some_and(|t| !same_authority(t, to));
        if stale || slot.conn.is_none() {
            *slot = Slot::default();
            return Ok(None);
        }
        match slot.sender.take_if(|s| s.is_ready()) {
            Some(sender) => Ok(Some(sender)),
            None => Err(()),
        }
    }

    /// The `X-Forwarded-For` value for a request from `ip` that carries none (see [`Local::forwarded_for`]'s field).
    fn forwarded_for(&self, ip: std::net::IpAddr) -> Option<HeaderValue> {
        let (made_for, value) = self.forwarded_for.get_or_init(|| (ip, forwarded_for(None, ip)));
        // Always the connection's peer; checked all the same, so that a caller's mistake costs a copy, not a lie.
        if *made_for == ip { value.clone() } else { forwarded_for(None, ip) }
    }

    fn put_back(&self, sender: http1::SendRequest<UpstreamBody>) {
        self.slot().sender = Some(sender);
    }

    /// A new connection to `to`, replacing (closing) the one before.
    fn install(&self, to: Authority, conn: LocalConn) {
        let old = std::mem::replace(&mut *self.slot(), Slot { to: Some(to), sender: None, conn: Some(Box::pin(conn)) });
        self.open.store(true, Ordering::Relaxed);
        drop(old);
    }

    /// Polls the connection; one that has ended (closed by either side, or broken) is let go of. The client
    /// connection's task calls it around each poll of the client connection, so that the upstream connection is
    /// driven by the same task.
    pub(crate) fn poll_conn(&self, cx: &mut Context<'_>) {
        // Relaxed: written and read by the client connection's task only (the atomic is for `Sync`, not for order).
        if !self.open.load(Ordering::Relaxed) {
            return;
        }
        let mut slot = self.slot();
        if let Some(conn) = slot.conn.as_mut()
            && let Poll::Ready(ended) = conn.as_mut().poll(cx)
        {
            if let Err(e) = ended {
                tracing::debug!("upstream connection ended: {e}");
            }
            *slot = Slot::default();
            self.open.store(false, Ordering::Relaxed);
        }
    }
}

/// Whether two authorities are the same: most often the very same bytes (the upstream's, shared), which is checked
/// first; else compared as text (case-insensitively, as `Authority`'s `==` does).
fn same_authority(a: &Authority, b: &Authority) -> bool {
    std::ptr::eq(a.as_str(), b.as_str()) || a == b
}

impl Local {
    /// Ready once `deadline` has passed; else registers the task to be woken by then. One timer per connection
    /// serves every request: a request only reads the clock, and the timer, set for an earlier request's deadline,
    /// is moved to this one's when it fires before it. Requests on one connection come one after another and their
    /// deadlines grow, so the timer moves about once per timeout instead of being registered and removed per request
    /// (about 1,100 instructions of each proxied request; BENCHMARKS.md, issue 14).
    fn poll_deadline(&self, deadline: tokio::time::Instant, cx: &mut Context<'_>) -> Poll<()> {
        let mut timer = self.timer.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let timer =
            timer.get_or_insert_with(|| Timer { sleep: Box::pin(tokio::time::sleep_until(deadline)), waker: None });
        // Set for a later deadline (a request with a longer timeout before this one): it would wake too late.
        if timer.sleep.deadline() > deadline {
            timer.sleep.as_mut().reset(deadline);
            timer.waker = None;
        }
        // Still waiting, and it will wake this task: nothing to do.
        if timer.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) && !timer.sleep.is_elapsed() {
            return Poll::Pending;
        }
        if timer.sleep.as_mut().poll(cx).is_pending() {
            timer.waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        if tokio::time::Instant::now() >= deadline {
            return Poll::Ready(());
        }
        // It fired for an earlier request's deadline: moved to this one, and polled to be woken by then (ready only
        // once this deadline has passed too).
        timer.sleep.as_mut().reset(deadline);
        timer.waker = None;
        let polled = timer.sleep.as_mut().poll(cx);
        if polled.is_pending() {
            timer.waker = Some(cx.waker().clone());
        }
        polled
    }
}

/// Drops the connection of a request whose answer never came (see [`send`]).
struct Abandon<'a>(&'a Local);

impl Drop for Abandon<'_> {
    fn drop(&mut self) {
        let old = std::mem::take(&mut *self.0.slot());
        self.0.open.store(false, Ordering::Relaxed);
        drop(old);
    }
}

const XFF: HeaderName = HeaderName::from_static("x-forwarded-for");
const XPROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const XHOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// What the proxy needs of a request's headers, found in one pass over them (see [`Seen::of`]).
#[derive(Default)]
struct Seen {
    /// A `Via` names this process: the request has been through it already.
    looped: bool,
    /// A `Connection: close`: the client's last request.
    close: bool,
    /// The hop-by-hop headers, to be removed.
    hop: HopByHop,
    /// The first `X-Forwarded-For` value sent (a reference count).
    forwarded_for: Option<HeaderValue>,
    /// Whether an `X-Forwarded-Proto` was sent.
    proto: bool,
    /// Whether an `X-Forwarded-Host` was sent.
    forwarded_host: bool,
}

impl Seen {
    fn of(headers: &HeaderMap) -> Seen {
        let mut seen = Seen::default();
        // Names are compared, never hashed: a standard name against a custom one differs at the first comparison.
        for (name, value) in headers {
            if name == XFF {
                if seen.forwarded_for.is_none() {
                    seen.forwarded_for = Some(value.clone());
                }
            } else if name == XPROTO {
                seen.proto = true;
            } else if name == XHOST {
                seen.forwarded_host = true;
            } else if name == http::header::VIA {
                seen.looped |= value.to_str().is_ok_and(|v| v.contains(via_token()));
            } else if seen.hop.see(name, value) && name == http::header::CONNECTION {
                seen.close |=
                    value.as_bytes().split(|&b| b == b',').any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"));
            }
        }
        seen
    }
}

/// `X-Forwarded-For` (the peer appended), `-Proto` and `-Host` (set by the first proxy, kept after), and `Via`.
/// `seen` tells which were sent: an absent one is appended (a hash of its name and a probe), without the lookup an
/// `entry` makes first.
fn add_forwarded(
    headers: &mut HeaderMap,
    client: Downstream<'_>,
    host: Option<&HeaderValue>,
    version: Version,
    seen: Seen,
) {
    let Downstream { peer, https, local, .. } = client;
    match seen.forwarded_for {
        Some(before) => {
            if let Some(value) = forwarded_for(before.to_str().ok(), peer.ip()) {
                headers.insert(XFF, value);
            }
        }
        None => {
            if let Some(value) = local.forwarded_for(peer.ip()) {
                headers.append(XFF, value);
            }
        }
    }
    if !seen.proto {
        headers.append(XPROTO, HeaderValue::from_static(if https { "https" } else { "http" }));
    }
    if let (Some(host), false) = (host, seen.forwarded_host) {
        headers.append(XHOST, host.clone());
    }
    if let Some(via) = via_value(version) {
        headers.append(http::header::VIA, via.clone());
    }
}

/// The `X-Forwarded-For` value: `before` (what the client sent, if any) and `ip` appended, written once into one
/// buffer that becomes the header's bytes (no second copy).
fn forwarded_for(before: Option<&str>, ip: std::net::IpAddr) -> Option<HeaderValue> {
    // Sized once: the longest address (an IPv6 one) is 39 bytes.
    let mut value = String::with_capacity(before.map_or(0, |b| b.len() + 2) + 39);
    if let Some(before) = before {
        value.push_str(before);
        value.push_str(", ");
    }
    push_ip(&mut value, ip);
    HeaderValue::from_maybe_shared(Bytes::from(value)).ok()
}

/// Writes `ip` as text: an IPv4 address digit by digit (`core::fmt` took about 1,300 instructions of each proxied
/// request for it), an IPv6 one through `Display`.
fn push_ip(out: &mut String, ip: std::net::IpAddr) {
    let std::net::IpAddr::V4(v4) = ip else {
        let _ = write!(out, "{ip}");
        return;
    };
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        if octet >= 100 {
            out.push(char::from(b'0' + octet / 100));
        }
        if octet >= 10 {
            out.push(char::from(b'0' + octet / 10 % 10));
        }
        out.push(char::from(b'0' + octet % 10));
    }
}

/// The `Via` value for a request that came in over `version`, e.g. `1.1 hotroute-1a2b3c4d`: made once per protocol
/// (the token is fixed for the process), so a proxied request only clones it (a reference count).
fn via_value(version: Version) -> Option<&'static HeaderValue> {
    const PROTOCOLS: [&str; 5] = ["0.9", "1.0", "1.1", "2", "3"];
    static VALUES: OnceLock<Vec<Option<HeaderValue>>> = OnceLock::new();
    let values = VALUES.get_or_init(|| {
        PROTOCOLS.iter().map(|p| HeaderValue::from_str(&format!("{p} {}", via_token())).ok()).collect()
    });
    let index = match version {
        Version::HTTP_09 => 0,
        Version::HTTP_10 => 1,
        Version::HTTP_2 => 3,
        Version::HTTP_3 => 4,
        _ => 2,
    };
    values.get(index).and_then(Option::as_ref)
}

/// An error and its causes, joined: hyper-util's own message ("client error (Connect)") says little alone.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A body of bytes already read, to send upstream.
pub fn full_body(bytes: Bytes) -> UpstreamBody {
    http_body_util::Full::new(bytes).map_err(|never| match never {}).boxed()
}

/// The client's body, streamed upstream; a client that sends nothing of it for `idle` (`body_timeout`) ends it.
pub fn streamed_body(body: hyper::body::Incoming, idle: Duration) -> UpstreamBody {
    Idle::new(body, idle, "the client").map_err(BoxError::from).boxed()
}

/// The system's root certificates, read once (a file read: at the first router build, not per request).
fn native_roots() -> &'static RootCertStore {
    static ROOTS: OnceLock<RootCertStore> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let mut roots = RootCertStore::empty();
        let found = rustls_native_certs::load_native_certs();
        let (added, _) = roots.add_parsable_certificates(found.certs);
        if added == 0 {
            tracing::warn!(
                "no system root certificates found; https upstreams need proxy = {{ url = \"...\", ca = \"ca.pem\" }}"
            );
        }
        roots
    })
}

/// The pooled client for a TLS setting: made once per setting and shared.
fn client(ca: Option<&Pem>, insecure: bool, config: &ProxyConfig) -> Result<HttpsClient, String> {
    type Key = (Option<Pem>, bool);
    static CLIENTS: Mutex<Vec<(Key, HttpsClient)>> = Mutex::new(Vec::new());
    let key = (ca.cloned(), insecure);
    let mut clients = CLIENTS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((_, client)) = clients.iter().find(|(k, _)| *k == key) {
        return Ok(client.clone());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = native_roots().clone();
    if let Some(pem) = ca {
        let path = config.ca.as_ref().map(|c| c.path.display().to_string()).unwrap_or_default();
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(&pem.0) {
            let cert = cert.map_err(|e| format!("proxy.ca `{path}` is not a PEM file of certificates: {e}"))?;
            roots.add(cert).map_err(|e| format!("proxy.ca `{path}` holds a certificate rustls refuses: {e}"))?;
            added += 1;
        }
        if added == 0 {
            return Err(format!("proxy.ca `{path}` holds no certificate (no `-----BEGIN CERTIFICATE-----` block)"));
        }
    }
    let mut tls = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up TLS for proxy upstreams: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    if insecure {
        tls.dangerous().set_certificate_verifier(Arc::new(NoVerifier(provider)));
    }
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    // Bounded: a host that drops SYNs would otherwise hold a request for the OS's connect timeout (minutes).
    http.set_connect_timeout(Some(Duration::from_secs(10)));
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    let client = Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(60)).build(connector);
    clients.push((key, client.clone()));
    Ok(client)
}

/// `insecure = true`: every certificate is taken (signatures are still checked, so the handshake stays sound).
#[derive(Debug)]
struct NoVerifier(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerifier {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The most of one answer a recording keeps; a larger answer is passed on but not recorded.
const MAX_RECORDED: usize = 64 * 1024 * 1024;

/// An upstream's answer on its way to the client, copied for the recording as it passes: once it has all gone
/// through, the exchange is written (on a blocking thread: it writes files).
struct Tee {
    inner: Idle<hyper::body::Incoming>,
    kept: Vec<u8>,
    over: bool,
    exchange: Option<Exchange>,
    recorder: Arc<Mutex<Recorder>>,
}

impl hyper::body::Body for Tee {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, std::io::Error>>> {
        let this = self.get_mut();
        let polled = std::pin::Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            std::task::Poll::Ready(Some(Ok(frame))) => {
                if let (Some(data), false) = (frame.data_ref(), this.over) {
                    if this.kept.len() + data.len() > MAX_RECORDED {
                        this.over = true;
                        this.kept = Vec::new();
                    } else {
                        this.kept.extend_from_slice(data);
                    }
                }
                // hyper stops polling once a body says it has ended (a known length, all read): finish here.
                if this.inner.is_end_stream() {
                    this.finish();
                }
            }
            std::task::Poll::Ready(None) => this.finish(),
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Tee {
    /// An empty answer is never polled: it ended before it started. One dropped before its end (the client went
    /// away) is not recorded.
    fn drop(&mut self) {
        if hyper::body::Body::is_end_stream(&self.inner) {
            self.finish();
        }
    }
}

impl Tee {
    fn finish(&mut self) {
        let Some(mut exchange) = self.exchange.take() else { return };
        if self.over {
            tracing::warn!(
                "not recorded: {} {} answered more than {MAX_RECORDED} bytes",
                exchange.method,
                exchange.path
            );
            return;
        }
        exchange.body = Bytes::from(std::mem::take(&mut self.kept));
        let recorder = self.recorder.clone();
        let write = move || {
            let mut recorder = recorder.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Err(e) = recorder.add(&exchange) {
                tracing::warn!("not recorded: {} {}: {e}", exchange.method, exchange.path);
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(write)),
            Err(_) => write(),
        }
    }
}

/// A body that fails when its source sends nothing for `limit` while it is being read: an upstream (or a client)
/// that stalls mid-body does not hold the exchange open for ever. The wait starts when a read starts, so a reader
/// that is slow itself is not counted against the source.
struct Idle<B> {
    inner: B,
    limit: Duration,
    /// Made at the first wait: most bodies (a small answer, an empty request body) are ready when first read, and
    /// then cost no allocation and no timer at all.
    sleep: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
    waiting: bool,
    what: &'static str,
}

impl<B> Idle<B> {
    fn new(inner: B, limit: Duration, what: &'static str) -> Self {
        Idle { inner, limit, sleep: None, waiting: false, what }
    }
}

impl<B> hyper::body::Body for Idle<B>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    // `io::Error`, the error of a response body (`Body::stream`): an upstream's answer then needs no wrapper of its
    // own to convert it on every frame.
    type Error = std::io::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, std::io::Error>>> {
        use std::task::Poll;
        let this = self.get_mut();
        match std::pin::Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.waiting = false;
                Poll::Ready(frame.map(|f| f.map_err(std::io::Error::other)))
            }
            Poll::Pending => {
                // The wait starts with the read that found nothing ready (this poll): the clock is read only then.
                if !this.waiting {
                    this.waiting = true;
                    let deadline = tokio::time::Instant::now() + this.limit;
                    match &mut this.sleep {
                        Some(sleep) => sleep.as_mut().reset(deadline),
                        None => this.sleep = Some(Box::pin(tokio::time::sleep_until(deadline))),
                    }
                }
                let Some(sleep) = this.sleep.as_mut() else { return Poll::Pending };
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        let why = format!("{} sent nothing for {:?} in the middle of a body", this.what, this.limit);
                        Poll::Ready(Some(Err(std::io::Error::new(std::io::ErrorKind::TimedOut, why))))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}
