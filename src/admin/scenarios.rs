//! `/__admin/scenarios`: list the scenarios, set one, reset them all; and `POST /__admin/reset`, which puts the
//! server's runtime state back to its start.

use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde_json::json;

use crate::reload::Live;
use crate::route::Router;
use crate::route::respond::{self, Body};
use crate::route::state::{DEFAULT_PARTITION, StateError};

/// The largest body `PUT /__admin/scenarios/{name}` reads: `{"state": "..."}` is a few dozen bytes.
const MAX_BODY: usize = 64 * 1024;

/// How long `PUT /__admin/scenarios/{name}` waits for its body.
const BODY_WAIT: Duration = Duration::from_secs(10);

/// `GET /__admin/scenarios`: every scenario, its state, and the states its routes name.
pub(super) async fn list(live: &Live) -> Response<Body> {
    let router = live.load_full();
    if let Err(e) = refresh(live, &router).await {
        return store_failed(&e, &Method::GET);
    }
    let scenarios: Vec<_> = router
        .scenarios()
        .list()
        .into_iter()
        .map(|s| json!({ "name": s.name, "state": s.state, "states": s.states }))
        .collect();
    respond::json(StatusCode::OK, &json!({ "scenarios": scenarios }))
}

/// `PUT /__admin/scenarios/{name}` with `{"state": "..."}`.
pub(super) async fn set(live: &Live, req: Request<Incoming>, raw_name: &str) -> Response<Body> {
    let bad = |status: StatusCode, text: String| respond::text(status, format!("{status} {text}\n"), &Method::PUT);
    let Ok(name) = percent_encoding::percent_decode_str(raw_name).decode_utf8() else {
        return bad(StatusCode::BAD_REQUEST, "the scenario name in the path is not UTF-8".to_owned());
    };
    let name = name.into_owned();
    let body = match tokio::time::timeout(BODY_WAIT, Limited::new(req.into_body(), MAX_BODY).collect()).await {
        Ok(Ok(body)) => body.to_bytes(),
        Ok(Err(e)) => {
            return bad(StatusCode::BAD_REQUEST, format!("cannot read the body (at most {MAX_BODY} bytes): {e}"));
        }
        Err(_) => {
            let text = format!("the body did not arrive within {} s", BODY_WAIT.as_secs());
            return bad(StatusCode::REQUEST_TIMEOUT, text);
        }
    };
    let state = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("state").and_then(|s| s.as_str()).map(str::to_owned));
    let Some(state) = state else {
        let text = format!(
            "the body must be JSON like {{\"state\": \"added\"}}, e.g. curl -X PUT -H 'x-hotroute: 1' \
             -d '{{\"state\": \"added\"}}' http://HOST/__admin/scenarios/{raw_name}"
        );
        return bad(StatusCode::BAD_REQUEST, text);
    };
    let router = live.load_full();
    let set = router.scenarios().set(&name, &state);
    if let (Ok(()), Some(store)) = (&set, live.state())
        && let Err(e) = store.set_scenario(DEFAULT_PARTITION, &name, &state).await
    {
        return store_failed(&e, &Method::PUT);
    }
    match set {
        Ok(()) => respond::json(StatusCode::OK, &json!({ "status": "ok", "name": name, "state": state })),
        Err(e @ crate::route::scenario::ScenarioError::Unknown { .. }) => bad(
            StatusCode::NOT_FOUND,
            format!("{e}\nname a scenario of the route file (GET /__admin/scenarios lists them)"),
        ),
        Err(e) => bad(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("{e}\nno route could match in it; use one of those states, or add a route that names it"),
        ),
    }
}

/// `POST /__admin/scenarios/reset`: every scenario back to `"started"`.
pub(super) async fn reset(live: &Live) -> Response<Body> {
    let router = live.load_full();
    if let Some(store) = live.state() {
        let names: Vec<&str> = router.scenarios().names().collect();
        if let Err(e) = store.reset_scenarios(DEFAULT_PARTITION, &names).await {
            return store_failed(&e, &Method::POST);
        }
    }
    router.scenarios().reset();
    respond::json(StatusCode::OK, &json!({ "status": "ok" }))
}

/// `POST /__admin/reset`: the journal emptied, coverage, sequences and counters back to zero, every scenario back
/// to `"started"`; with `?routes=true`, the runtime routes removed first.
pub(super) async fn reset_all(live: &Arc<Live>, query: Option<&str>) -> Response<Body> {
    let mut removed = 0;
    let isolate = query.and_then(|q| crate::request::query_pairs(q).find(|(k, _)| k == "isolate").map(|(_, v)| v));
    if query.is_some_and(|q| q.split('&').any(|kv| kv == "routes=true")) {
        let worker = Arc::clone(live);
        match super::runtime_routes::off_thread(move || worker.remove_runtime_routes()).await {
            Some(Ok((n, _))) => removed = n,
            Some(Err(e)) => {
                let text = format!("{e}\nnothing was reset\n");
                return respond::text(StatusCode::UNPROCESSABLE_ENTITY, text, &Method::POST);
            }
            None => {
                let text = "503 the routes are still being changed (a reload on a hung mount?); nothing was reset\n";
                return respond::text(StatusCode::SERVICE_UNAVAILABLE, text.to_owned(), &Method::POST);
            }
        }
    }
    // `?isolate=ID`: only that partition's state, which other tests sharing the server do not see; in the shared
    // store too, so that every replica starts that partition again.
    if let Some(store) = live.state() {
        let done = match &isolate {
            Some(id) => store.reset_partition(id).await,
            None => store.reset().await,
        };
        if let Err(e) = done {
            return store_failed(&e, &Method::POST);
        }
    }
    let cleared = match &isolate {
        Some(id) => live.reset_partition(id),
        None => live.reset(),
    };
    respond::json(StatusCode::OK, &json!({ "status": "ok", "cleared": cleared, "routes_removed": removed }))
}

/// With a shared store: copies the scenario states from it into `router`'s, so that the list shows what every
/// replica sees.
async fn refresh(live: &Live, router: &Router) -> Result<(), StateError> {
    let Some(store) = live.state() else { return Ok(()) };
    let names: Vec<&str> = router.scenarios().names().collect();
    let states = store.scenario_states(DEFAULT_PARTITION, &names).await?;
    router.scenarios().refresh(states);
    Ok(())
}

/// The 503 of an admin call that needs the shared state store when the store fails.
pub(super) fn store_failed(error: &StateError, method: &Method) -> Response<Body> {
    let text = format!("503 {error}\nnothing was changed in the shared state; try again once the store is back\n");
    respond::text(StatusCode::SERVICE_UNAVAILABLE, text, method)
}
