//! The dashboard at `GET /__admin/`: one HTML page, embedded in the binary, that shows the active routes, the last
//! requests (live) and whether the last save of the route file broke it.
//!
//! The page is static: its script polls the admin API (`/__admin/health`, `/__admin/routes`, `/__admin/coverage`,
//! `/__admin/requests?after=ID`) and builds the DOM with `textContent`, so nothing a client sent can become markup.
//! The Content-Security-Policy allows only the page's own script and style (by hash) and requests to its own origin,
//! as a second line of defence.

use http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS};
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use serde_json::{Map, Value, json};

use crate::reload::Live;
use crate::route::respond::{self, Body};
use crate::util::time::rfc3339_millis as rfc3339;

/// The page: HTML, CSS and script in one file, no build step.
pub const PAGE: &str = include_str!("dashboard.html");

/// The SHA-256 (base64) of the page's `<script>` text, for the Content-Security-Policy. The browser test checks it
/// against the page and prints the right value when the page changed.
pub const SCRIPT_SHA256: &str = "DTrMB535YYOCQCcN+kWXbL37fyKvuEE2r3+PVFssriQ=";

/// The SHA-256 (base64) of the page's `<style>` text, checked like [`SCRIPT_SHA256`].
pub const STYLE_SHA256: &str = "PMD7TfhUbr3ZXCgI2m0HRC+cjggHBD7vlgfKAoDF+hQ=";

/// Answers `GET /__admin/` (and `HEAD`) with the page.
pub fn page(method: &Method) -> Response<Body> {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    // A new binary may serve a new page on the same port: never show a stale one.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    let csp = format!(
        "default-src 'none'; script-src 'sha256-{SCRIPT_SHA256}'; style-src 'sha256-{STYLE_SHA256}'; \
         connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    );
    if let Ok(csp) = HeaderValue::from_str(&csp) {
        headers.insert(CONTENT_SECURITY_POLICY, csp);
    }
    respond::with_body(StatusCode::OK, headers, PAGE.into(), method)
}

/// The reload status for `GET /__admin/health`: the route file, when the routes in service were loaded, and the last
/// failed reload (`null` once a good one followed), with each error's place and the full report. Paths are relative
/// to the route file's folder.
pub fn reload_status(live: &Live) -> Map<String, Value> {
    let base = super::base_dir(live);
    let last_error = live.last_failure().map(|failure| {
        let errors: Vec<Value> = failure
            .errors
            .0
            .iter()
            .map(|e| {
                json!({
                    "file": super::relative(&base, &e.file.display().to_string()),
                    "line": e.line,
                    "column": e.column,
                    "location": super::relative(&base, &e.location()),
                    "message": e.message,
                })
            })
            .collect();
        let text = failure.errors.to_string();
        let text = if base.is_empty() { text } else { text.replace(&base, "") };
        json!({ "at": rfc3339(failure.at), "text": text, "errors": errors })
    });
    let mut status = Map::new();
    let file = live.source().map(|p| super::relative(&base, &p.display().to_string()).to_owned());
    status.insert("file".into(), file.into());
    status.insert("loaded_at".into(), rfc3339(live.loaded_at()).into());
    status.insert("last_error".into(), last_error.into());
    status
}
