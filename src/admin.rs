//! The admin API under `/__admin/`: health, reload and metrics, so that tests, probes and Prometheus can see and drive
//! the server.

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::json;

use crate::live::Live;
use crate::respond::{self, Body};

/// Answers a request whose path starts with `/__admin/`.
pub async fn handle(live: &Live, req: Request<Incoming>) -> Response<Body> {
    let path = &req.uri().path()["/__admin".len()..];
    match (req.method(), path) {
        (&Method::GET, "/health") => health(live),
        (&Method::POST, "/reload") => reload(live),
        (&Method::GET, "/metrics") => metrics(live),
        (_, "/health" | "/reload" | "/metrics") => {
            let allow = if path == "/reload" { "POST" } else { "GET" };
            respond::method_not_allowed(req.method(), req.uri().path(), &http::HeaderValue::from_static(allow))
        }
        _ => respond::text(
            StatusCode::NOT_FOUND,
            format!(
                "404 no admin endpoint {}\nthe admin API has: GET /__admin/health, POST /__admin/reload, \
                 GET /__admin/metrics\n",
                req.uri().path()
            ),
            req.method(),
        ),
    }
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
