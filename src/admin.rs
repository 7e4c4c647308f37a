//! The admin API under `/__admin/`: health and reload, the request journal, the routes and their coverage, and
//! Prometheus metrics, so that tests, probes and monitoring can see and drive the server.

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::json;

use crate::journal::methods_json;
use crate::live::Live;
use crate::respond::{self, Body};

/// The admin endpoints and the methods each answers, for 405 and 404 answers.
const ENDPOINTS: &[(&str, &str)] = &[
    ("/health", "GET"),
    ("/reload", "POST"),
    ("/requests", "GET, DELETE"),
    ("/routes", "GET"),
    ("/coverage", "GET, DELETE"),
    ("/metrics", "GET"),
];

/// Answers a request whose path starts with `/__admin/`. Admin requests are not recorded in the journal.
pub async fn handle(live: &Live, req: Request<Incoming>) -> Response<Body> {
    let path = &req.uri().path()["/__admin".len()..];
    match (req.method(), path) {
        (&Method::GET, "/health") => health(live),
        (&Method::POST, "/reload") => reload(live),
        (&Method::GET, "/requests") => respond::json(StatusCode::OK, &live.journal().to_json(capacity(live))),
        (&Method::DELETE, "/requests") => {
            respond::json(StatusCode::OK, &json!({ "status": "ok", "cleared": live.journal().clear() }))
        }
        (&Method::GET, "/routes") => routes(live),
        (&Method::GET, "/coverage") => respond::json(StatusCode::OK, &live.journal().coverage(live).to_json()),
        (&Method::DELETE, "/coverage") => {
            live.journal().reset_coverage();
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
        .map(|r| json!({ "methods": methods_json(&r.methods), "path": r.path, "location": r.location() }))
        .collect();
    respond::json(StatusCode::OK, &json!({ "generation": live.generation(), "routes": routes }))
}

fn health(live: &Live) -> Response<Body> {
    let routes = live.router().routes().len();
    respond::json(StatusCode::OK, &json!({ "status": "ok", "routes": routes, "generation": live.generation() }))
}

/// Prometheus metrics, in the OpenMetrics text format.
fn metrics(live: &Live) -> Response<Body> {
    let text = live.metrics().encode(live.generation());
    let mut headers = http::HeaderMap::new();
    headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(crate::metrics::CONTENT_TYPE));
    respond::with_body(StatusCode::OK, headers, text.into(), &Method::GET)
}

fn reload(live: &Live) -> Response<Body> {
    match live.reload() {
        Ok(generation) => respond::json(StatusCode::OK, &json!({ "status": "ok", "generation": generation })),
        Err(e) => respond::text(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("{e}\nkeeping the previous routes\n"),
            &Method::POST,
        ),
    }
}
