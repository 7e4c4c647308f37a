//! `/__admin/routes`: the routes in service with their origin, and the runtime routes added and removed over HTTP.

use std::sync::Arc;

use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde_json::json;

use super::{RELOAD_WAIT, base_dir, relative};
use crate::config::error::LoadErrors;
use crate::reload::Live;
use crate::route::respond::{self, Body};

/// `GET /__admin/routes`: every route in matching order, with its origin (`file` or `runtime`, with its id).
pub(super) fn list(live: &Live) -> Response<Body> {
    let router = live.router();
    let base = base_dir(live);
    let routes: Vec<_> = router
        .routes()
        .iter()
        .map(|r| {
            let location = r.location();
            let mut route = json!({
                "methods": r.methods.to_json(),
                "path": r.path,
                "location": relative(&base, &location),
                "origin": if r.runtime_id.is_some() { "runtime" } else { "file" },
            });
            if let (Some(id), Some(map)) = (r.runtime_id, route.as_object_mut()) {
                map.insert("id".into(), id.into());
            }
            route
        })
        .collect();
    respond::json(StatusCode::OK, &json!({ "generation": live.generation(), "routes": routes }))
}

/// `POST /__admin/routes` with TOML `[[route]]` tables: `200` with their ids, `422` with the load errors.
pub(super) async fn add(live: &Arc<Live>, req: Request<Incoming>) -> Response<Body> {
    let limit = usize::try_from(live.router().server().limits.max_route_file).unwrap_or(usize::MAX);
    let body = match tokio::time::timeout(RELOAD_WAIT, Limited::new(req.into_body(), limit).collect()).await {
        Ok(Ok(body)) => body.to_bytes(),
        Ok(Err(e)) => {
            let text =
                format!("400 cannot read the routes: {e} (at most {limit} bytes, the route file's `max_route_file`)\n");
            return respond::text(StatusCode::BAD_REQUEST, text, &Method::POST);
        }
        Err(_) => {
            let text = format!("408 the routes did not arrive within {} s\n", RELOAD_WAIT.as_secs());
            return respond::text(StatusCode::REQUEST_TIMEOUT, text, &Method::POST);
        }
    };
    let Ok(text) = String::from_utf8(body.to_vec()) else {
        let text = "400 the routes are not UTF-8 text: send TOML `[[route]]` tables\n".to_owned();
        return respond::text(StatusCode::BAD_REQUEST, text, &Method::POST);
    };
    let worker = Arc::clone(live);
    match off_thread(move || worker.add_routes(&text)).await {
        Some(Ok((ids, generation))) => {
            respond::json(StatusCode::OK, &json!({ "status": "ok", "ids": ids, "generation": generation }))
        }
        Some(Err(e)) => refused(live, &e, "no route was added"),
        None => busy(),
    }
}

/// `DELETE /__admin/routes/{id}`.
pub(super) async fn remove(live: &Arc<Live>, raw_id: &str) -> Response<Body> {
    let Ok(id) = raw_id.parse::<u64>() else {
        let text = format!(
            "400 `{raw_id}` is not a runtime route id: ids are the numbers POST /__admin/routes answered (GET \
             /__admin/routes lists them)\n"
        );
        return respond::text(StatusCode::BAD_REQUEST, text, &Method::DELETE);
    };
    let worker = Arc::clone(live);
    match off_thread(move || worker.remove_route(id)).await {
        Some(Ok(Some(generation))) => {
            respond::json(StatusCode::OK, &json!({ "status": "ok", "removed": [id], "generation": generation }))
        }
        Some(Ok(None)) => {
            let text = format!(
                "404 no runtime route has id {id} (GET /__admin/routes lists the routes; the route file's are \
                 removed by editing it)\n"
            );
            respond::text(StatusCode::NOT_FOUND, text, &Method::DELETE)
        }
        Some(Err(e)) => refused(live, &e, "the route was kept"),
        None => busy(),
    }
}

/// `DELETE /__admin/routes?origin=runtime`: every runtime route.
pub(super) async fn remove_all(live: &Arc<Live>, query: Option<&str>) -> Response<Body> {
    if !query.is_some_and(|q| q.split('&').any(|kv| kv == "origin=runtime")) {
        let text = "400 DELETE /__admin/routes removes the runtime routes only, and says so: \
                    DELETE /__admin/routes?origin=runtime (or DELETE /__admin/routes/{id} for one)\n"
            .to_owned();
        return respond::text(StatusCode::BAD_REQUEST, text, &Method::DELETE);
    }
    let worker = Arc::clone(live);
    match off_thread(move || worker.remove_runtime_routes()).await {
        Some(Ok((n, generation))) => {
            respond::json(StatusCode::OK, &json!({ "status": "ok", "removed": n, "generation": generation }))
        }
        Some(Err(e)) => refused(live, &e, "the routes were kept"),
        None => busy(),
    }
}

fn refused(live: &Live, e: &LoadErrors, kept: &str) -> Response<Body> {
    let text = e.to_string().replace(&base_dir(live), "");
    respond::text(StatusCode::UNPROCESSABLE_ENTITY, format!("{text}\n{kept}\n"), &Method::POST)
}

fn busy() -> Response<Body> {
    let text = format!(
        "503 the routes are still being changed after {} s (a reload of a route file on a hung mount?); try again\n",
        RELOAD_WAIT.as_secs()
    );
    let mut res = respond::text(StatusCode::SERVICE_UNAVAILABLE, text, &Method::POST);
    res.headers_mut().insert(http::header::RETRY_AFTER, http::HeaderValue::from_static("10"));
    res
}

/// Runs `f` on a thread of its own and waits for it up to [`RELOAD_WAIT`]: building a router is CPU work that
/// may take tens of milliseconds, and it waits for a reload in progress, which may block on the file system. The
/// thread is detached, as the reload's is, so that a stuck one cannot keep the process from exiting.
pub(super) async fn off_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let started = std::thread::Builder::new().name("hotroute-routes".into()).spawn(move || {
        let _ = tx.send(f());
    });
    started.ok()?;
    tokio::time::timeout(RELOAD_WAIT, rx).await.ok()?.ok()
}
