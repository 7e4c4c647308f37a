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
//! 8. the probe counts, logs and traces the response; a route's fault arms the connection's trigger.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Body as _;
use hyper::body::Incoming;

use super::ServeOptions;
use super::io::{FaultError, Trigger};
use crate::admin;
use crate::observe::{Conn, Probe};
use crate::reload::Live;
use crate::request::RequestView;
use crate::route::respond::{self, Body};

/// What every connection of one server shares: the live routes and the options.
#[derive(Debug)]
pub(crate) struct Served {
    live: Arc<Live>,
    options: ServeOptions,
    access: admin::Access,
}

impl Served {
    pub(crate) fn new(live: Arc<Live>, options: ServeOptions, access: admin::Access) -> Self {
        Served { live, options, access }
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
}

impl Pipeline {
    pub(crate) fn new(served: Arc<Served>, conn: Conn, trigger: Trigger, peer: SocketAddr) -> Self {
        Pipeline(Arc::new(ConnState { served, conn, trigger, peer }))
    }

    /// Answers `req`; an error (a route's fault) makes hyper drop the connection unanswered.
    pub(crate) fn call(
        &self,
        req: Request<Incoming>,
    ) -> impl Future<Output = Result<Response<Body>, FaultError>> + use<> {
        // One reference count per request; the future owns it, as hyper requires.
        let this = self.0.clone();
        async move {
            let ConnState { served, conn, trigger, peer } = &*this;
            let (live, options) = (&served.live, &served.options);
            let admin = admin::is_admin_path(req.uri().path()) && options.admin && live.router().server().admin;
            let mut probe = Probe::start(live.metrics(), options.access_log, conn, *peer, &req, admin);
            let response = answer(served, *peer, req, admin, &mut probe).await;
            trigger.check(probe.finish(response))
        }
    }
}

async fn answer(
    served: &Served,
    peer: SocketAddr,
    req: Request<Incoming>,
    admin: bool,
    probe: &mut Probe<'_>,
) -> Response<Body> {
    let (live, limits) = (&served.live, &served.options.limits);
    if let Some(refused) = check_head(&req, limits.max_uri, limits.max_headers) {
        return refused;
    }
    if admin {
        return admin::handle(live, &served.access, req).await;
    }
    let (parts, body) = req.into_parts();
    let body = match read_body(body, limits.max_body, limits.body_timeout).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    probe.routing();
    let router = live.router();
    let view = RequestView { method: &parts.method, uri: &parts.uri, headers: &parts.headers, body: &body, peer };
    let answer = router.respond(&view);
    live.journal().record(&router, &view, &answer);
    probe.answered(&router, &view, &answer);
    match answer.pending {
        None => answer.response,
        Some(pending) => {
            // A delay or a file read: let go of the router before awaiting.
            let response = answer.response;
            drop(router);
            pending.finish(response).await
        }
    }
}

/// Refuses a request whose head is over a limit that hyper does not enforce itself: a request target over
/// `max_uri` (414), and more than `max_headers` headers on HTTP/2 (431; hyper counts them only on HTTP/1).
fn check_head<B>(req: &Request<B>, max_uri: usize, max_headers: usize) -> Option<Response<Body>> {
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

/// Reads the whole request body, refusing one over `limit` bytes with a 413: before reading when the declared
/// length is too big, and while reading when the client sends more than it declared (or declared nothing). A body
/// not complete within `timeout` gets a 408.
async fn read_body(body: Incoming, limit: usize, timeout: Duration) -> Result<Bytes, Response<Body>> {
    if body.is_end_stream() {
        return Ok(Bytes::new());
    }
    // Error answers carry a body whatever the method: POST stands for "not HEAD".
    let too_large = || {
        let text = format!(
            "413 request body over the limit of {limit} bytes\nraise it with [server] max_body in the route file\n"
        );
        respond::text(StatusCode::PAYLOAD_TOO_LARGE, text, &Method::POST)
    };
    if body.size_hint().lower() > limit as u64 {
        return Err(too_large());
    }
    let Ok(collected) = tokio::time::timeout(timeout, Limited::new(body, limit).collect()).await else {
        let text = format!(
            "408 the request body did not arrive within {timeout:?}\nraise it with [server] body_timeout in the route file\n"
        );
        return Err(respond::text(StatusCode::REQUEST_TIMEOUT, text, &Method::POST));
    };
    match collected {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => Err(too_large()),
        Err(e) => Err(respond::text(
            StatusCode::BAD_REQUEST,
            format!("400 cannot read the request body: {e}\n"),
            &Method::POST,
        )),
    }
}
