//! The admin API under `/__admin/`: health and reload, the request journal, the routes and their coverage, and
//! Prometheus metrics, so that tests, probes and monitoring can see and drive the server.

pub(crate) mod dashboard;

use std::sync::Arc;

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::json;

use crate::config::ADMIN_PREFIX;
use crate::reload::Live;
use crate::request::query_pairs;
use crate::route::respond::{self, Body};

/// The admin endpoints and the methods each answers, for 405 and 404 answers.
const ENDPOINTS: &[(&str, &str)] = &[
    ("/", "GET"),
    ("/health", "GET"),
    ("/reload", "POST"),
    ("/requests", "GET, DELETE"),
    ("/routes", "GET"),
    ("/coverage", "GET, DELETE"),
    ("/metrics", "GET"),
];

/// Whether `path` is the admin API's: `/__admin` or under `/__admin/` (not `/__administrator`).
pub fn is_admin_path(path: &str) -> bool {
    path.strip_prefix(ADMIN_PREFIX).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Answers a request whose path is an admin path (see [`is_admin_path`]). Admin requests are not recorded in the
/// journal.
pub async fn handle(live: &Arc<Live>, req: Request<Incoming>) -> Response<Body> {
    let path = &req.uri().path()[ADMIN_PREFIX.len()..];
    // `/__admin` without the slash is the dashboard too: it is what people type.
    let path = if path.is_empty() { "/" } else { path };
    match (req.method(), path) {
        (&Method::GET | &Method::HEAD, "/") => dashboard::page(req.method()),
        (&Method::GET, "/health") => health(live),
        (&Method::POST, "/reload") => reload(live).await,
        (&Method::GET, "/requests") => requests(live, req.uri().query()),
        (&Method::DELETE, "/requests") => {
            respond::json(StatusCode::OK, &json!({ "status": "ok", "cleared": live.journal().clear() }))
        }
        (&Method::GET, "/routes") => routes(live),
        (&Method::GET, "/coverage") => {
            respond::json(StatusCode::OK, &live.journal().coverage(&live.router()).to_json())
        }
        (&Method::DELETE, "/coverage") => {
            live.journal().reset_coverage(&live.router());
            respond::json(StatusCode::OK, &json!({ "status": "ok" }))
        }
        (&Method::GET, "/metrics") => metrics(live),
        _ => match ENDPOINTS.iter().find(|(p, _)| *p == path) {
            Some((_, allow)) => {
                respond::method_not_allowed(req.method(), req.uri().path(), &http::HeaderValue::from_static(allow))
            }
            None => {
                let list: Vec<String> = ENDPOINTS.iter().map(|(p, m)| format!("{m} /__admin{p}")).collect();
                let text =
                    format!("404 no admin endpoint {}\nthe admin API has: {}\n", req.uri().path(), list.join("; "));
                respond::text(StatusCode::NOT_FOUND, text, req.method())
            }
        },
    }
}

fn capacity(live: &Live) -> usize {
    live.router().server().journal
}

fn routes(live: &Live) -> Response<Body> {
    let router = live.router();
    let routes: Vec<_> = router
        .routes()
        .iter()
        .map(|r| json!({ "methods": r.methods.to_json(), "path": r.path, "location": r.location() }))
        .collect();
    respond::json(StatusCode::OK, &json!({ "generation": live.generation(), "routes": routes }))
}

fn health(live: &Live) -> Response<Body> {
    let routes = live.router().routes().len();
    let mut health = json!({ "status": "ok", "routes": routes, "generation": live.generation() });
    if let Some(health) = health.as_object_mut() {
        health.extend(dashboard::reload_status(live));
    }
    respond::json(StatusCode::OK, &health)
}

/// The journal; `?after=ID` keeps the requests after that id, `?limit=N` the newest N of them.
fn requests(live: &Live, query: Option<&str>) -> Response<Body> {
    let (mut after, mut limit) = (0, usize::MAX);
    for (name, value) in query.map(query_pairs).into_iter().flatten() {
        let parsed = match name.as_str() {
            "after" => value.parse().map(|v| after = v).is_ok(),
            "limit" => value.parse().map(|v| limit = v).is_ok(),
            _ => true,
        };
        if !parsed {
            let text = format!(
                "400 bad query parameter {name}={value:?}: a whole number is expected, \
                 e.g. /__admin/requests?after=41&limit=100\n"
            );
            return respond::text(StatusCode::BAD_REQUEST, text, &Method::GET);
        }
    }
    respond::json(StatusCode::OK, &live.journal().to_json_after(capacity(live), after, limit))
}

/// Prometheus metrics, in the OpenMetrics text format.
fn metrics(live: &Live) -> Response<Body> {
    let text = live.metrics().encode(live.generation());
    let mut headers = http::HeaderMap::new();
    headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(crate::observe::metrics::CONTENT_TYPE));
    respond::with_body(StatusCode::OK, headers, text.into(), &Method::GET)
}

/// How long `POST /__admin/reload` waits for the reload before it answers that it is still running.
pub const RELOAD_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Reloads off the async workers (see [`Live::reload_shared`]): a route file whose read blocks holds a reload
/// thread, never the server.
async fn reload(live: &Arc<Live>) -> Response<Body> {
    match live.reload_shared(RELOAD_WAIT).await {
        Some(Ok(generation)) => respond::json(StatusCode::OK, &json!({ "status": "ok", "generation": generation })),
        Some(Err(e)) => respond::text(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("{e}\nkeeping the previous routes\n"),
            &Method::POST,
        ),
        None => {
            let text = format!(
                "503 the reload is still running after {} s (is the route file on a hung mount, or a FIFO nobody \
                 writes?); the previous routes keep serving, and requests sent meanwhile share the next reload\n",
                RELOAD_WAIT.as_secs()
            );
            let mut res = respond::text(StatusCode::SERVICE_UNAVAILABLE, text, &Method::POST);
            res.headers_mut().insert(http::header::RETRY_AFTER, http::HeaderValue::from_static("10"));
            res
        }
    }
}
