//! The admin API under `/__admin/`: health and reload, so that tests and probes can see and drive the server.

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
        (_, "/health" | "/reload") => {
            let allow = if path == "/health" { "GET" } else { "POST" };
            respond::method_not_allowed(req.method(), req.uri().path(), &http::HeaderValue::from_static(allow))
        }
        _ => respond::text(
            StatusCode::NOT_FOUND,
            format!(
                "404 no admin endpoint {}\nthe admin API has: GET /__admin/health, POST /__admin/reload\n",
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
