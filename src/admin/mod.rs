//! The admin API under `/__admin/`: health and reload, the request journal, the routes and their coverage, and
//! Prometheus metrics, so that tests, probes and monitoring can see and drive the server.
//!
//! Who may call it is decided first, by [`access`]: the token, the `Host` check and the cross-site checks. The
//! answers name files relative to the route file's folder, so that they do not tell where the server's files live.
//!
//! Layer: reads `reload` and `observe`; the serving layer calls it, it never calls the serving layer.

pub(crate) mod access;
pub(crate) mod dashboard;
mod requests;
mod runtime_routes;
mod scenarios;

use std::sync::Arc;

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::json;

pub use access::{Access, Grant};

use crate::config::ADMIN_PREFIX;
use crate::reload::Live;
use crate::route::respond::{self, Body};

/// The admin endpoints and the methods each answers, for 405 and 404 answers.
const ENDPOINTS: &[(&str, &str)] = &[
    ("/", "GET"),
    ("/health", "GET"),
    ("/reload", "POST"),
    ("/requests", "GET, DELETE"),
    ("/routes", "GET, POST, DELETE"),
    ("/routes/{id}", "DELETE"),
    ("/coverage", "GET, DELETE"),
    ("/metrics", "GET"),
    ("/scenarios", "GET"),
    ("/scenarios/{name}", "PUT"),
    ("/scenarios/reset", "POST"),
    ("/reset", "POST"),
];

/// Whether `path` is the admin API's: `/__admin` or under `/__admin/` (not `/__administrator`).
pub fn is_admin_path(path: &str) -> bool {
    path.strip_prefix(ADMIN_PREFIX).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Answers a request whose path is an admin path (see [`is_admin_path`]), if `access` lets it in. Admin requests
/// are not recorded in the journal.
pub async fn handle(live: &Arc<Live>, access: &Access, req: Request<Incoming>) -> Response<Body> {
    let path = &req.uri().path()[ADMIN_PREFIX.len()..];
    // `/__admin` without the slash is the dashboard too: it is what people type.
    let path = if path.is_empty() { "/" } else { path };
    let grant = match access.check(&req, path) {
        Ok(grant) => grant,
        Err(refused) => return *refused,
    };
    match (req.method(), path) {
        (&Method::GET | &Method::HEAD, "/") => dashboard::page(req.method()),
        (&Method::GET, "/health") => health(live, grant, req.uri().query()).await,
        // Routes cannot be sent here: the reload reads the route file. A body means the caller thinks otherwise.
        (&Method::POST, "/reload") if !hyper::body::Body::is_end_stream(req.body()) => respond::text(
            StatusCode::BAD_REQUEST,
            "POST /__admin/reload takes no body: it reloads the route file from disk, so edit the file and post \
             again without a body. To add routes over HTTP, POST their TOML to /__admin/routes.\n"
                .to_owned(),
            &Method::POST,
        ),
        (&Method::POST, "/reload") => reload(live).await,
        (&Method::GET, "/requests") => match access.read_permit() {
            Ok(permit) if live.state().is_some() => requests::get_shared(live, req.uri().query(), permit).await,
            Ok(permit) => requests::get(live, req.uri().query(), permit),
            Err(busy) => *busy,
        },
        (&Method::DELETE, "/requests") => {
            if let Some(store) = live.state()
                && let Err(e) = store.clear_journal().await
            {
                return scenarios::store_failed(&e, &Method::DELETE);
            }
            respond::json(StatusCode::OK, &json!({ "status": "ok", "cleared": live.journal().clear() }))
        }
        (&Method::GET, "/routes") => match access.read_permit() {
            Ok(_permit) => runtime_routes::list(live),
            Err(busy) => *busy,
        },
        (&Method::POST, "/routes") => runtime_routes::add(live, req).await,
        (&Method::DELETE, "/routes") => runtime_routes::remove_all(live, req.uri().query()).await,
        (&Method::DELETE, p) if p.strip_prefix("/routes/").is_some_and(|n| !n.is_empty() && !n.contains('/')) => {
            runtime_routes::remove(live, &p["/routes/".len()..]).await
        }
        (&Method::GET, "/coverage") => match access.read_permit() {
            Ok(_permit) => {
                let mut coverage = live.journal().coverage(&live.router());
                let base = base_dir(live);
                for r in &mut coverage.routes {
                    r.location = relative(&base, &r.location).to_owned();
                }
                respond::json(StatusCode::OK, &coverage.to_json())
            }
            Err(busy) => *busy,
        },
        (&Method::DELETE, "/coverage") => {
            live.journal().reset_coverage(&live.router());
            respond::json(StatusCode::OK, &json!({ "status": "ok" }))
        }
        (&Method::GET, "/metrics") => metrics(live),
        (&Method::GET, "/scenarios") => scenarios::list(live).await,
        (&Method::POST, "/scenarios/reset") => scenarios::reset(live).await,
        // `reset` is an endpoint of its own (POST), so a scenario cannot be set under that name.
        (&Method::PUT, p)
            if p.strip_prefix("/scenarios/").is_some_and(|n| !n.is_empty() && !n.contains('/') && n != "reset") =>
        {
            let name = p["/scenarios/".len()..].to_owned();
            scenarios::set(live, req, &name).await
        }
        (&Method::POST, "/reset") => scenarios::reset_all(live, req.uri().query()).await,
        _ => match ENDPOINTS.iter().find(|(p, _)| *p == path).or_else(|| {
            // `/scenarios/{name}` stands for every scenario's path (but `reset`, which is in the list itself).
            let (prefix, pattern) = if path.starts_with("/routes/") {
                ("/routes/", "/routes/{id}")
            } else {
                ("/scenarios/", "/scenarios/{name}")
            };
            path.strip_prefix(prefix)
                .filter(|n| !n.is_empty() && !n.contains('/'))
                .and_then(|_| ENDPOINTS.iter().find(|(p, _)| *p == pattern))
        }) {
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

/// The route file's folder with a trailing `/`, cut from the front of the paths the admin API shows; empty for
/// routes given as a string or a file named without a folder.
pub(crate) fn base_dir(live: &Live) -> String {
    match live.source().and_then(|p| p.parent()).map(|d| d.display().to_string()) {
        Some(dir) if !dir.is_empty() => {
            if dir.ends_with(std::path::MAIN_SEPARATOR) {
                dir
            } else {
                format!("{dir}{}", std::path::MAIN_SEPARATOR)
            }
        }
        _ => String::new(),
    }
}

/// `path` without `base` in front (when it is there and `base` is not empty).
pub(crate) fn relative<'a>(base: &str, path: &'a str) -> &'a str {
    if base.is_empty() { path } else { path.strip_prefix(base).unwrap_or(path) }
}

/// Health: always the status, the route count and the generation; with a [`Grant::Full`], also the route file and
/// the last reload error. Probes need no token, and learn nothing about the files from it.
///
/// With a shared state store, health asks it (`PING`, bounded by `state_timeout`) and says whether it answers, as
/// `state.available`, with `status` `"degraded"` when it does not. It still answers 200 then, as plain routes keep
/// answering; `?require=state` makes it answer 503 instead, for a readiness probe that wants replicas without
/// their store out of service.
async fn health(live: &Live, grant: Grant, query: Option<&str>) -> Response<Body> {
    let routes = live.router().routes().len();
    let mut health = json!({ "status": "ok", "routes": routes, "generation": live.generation() });
    let mut status = StatusCode::OK;
    if let Some(store) = live.state() {
        let state = match store.ping().await {
            Ok(()) => json!({ "available": true }),
            Err(e) => {
                health["status"] = "degraded".into();
                if query.is_some_and(|q| q.split('&').any(|kv| kv == "require=state")) {
                    status = StatusCode::SERVICE_UNAVAILABLE;
                }
                match grant {
                    Grant::Full => json!({ "available": false, "error": e.to_string() }),
                    Grant::Open => json!({ "available": false }),
                }
            }
        };
        health["state"] = state;
        if let Grant::Full = grant {
            health["state"]["store"] = store.url().into();
        }
    }
    if let Some(health) = health.as_object_mut() {
        match grant {
            Grant::Full => health.extend(dashboard::reload_status(live)),
            Grant::Open => {
                health.insert("reload_failed".into(), live.last_failure().is_some().into());
            }
        }
    }
    respond::json(status, &health)
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
        Some(Err(e)) => {
            let text = e.to_string().replace(&base_dir(live), "");
            respond::text(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("{text}\nkeeping the previous routes\n"),
                &Method::POST,
            )
        }
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
