//! Responses: prepared once when the routes load, cloned cheaply per request.
//!
//! A static response is a status, a header map and a [`Bytes`] body; answering a request clones the header map and
//! bumps the body's reference count, nothing more. A templated response keeps its headers prepared and renders only
//! its body per request.

use bytes::Bytes;
use http::header::{ALLOW, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};

pub use super::body::Body;

/// A response ready to be sent any number of times.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// Status code.
    pub status: StatusCode,
    /// Headers, including content-type and content-length.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl Prepared {
    /// Prepares a response, computing its content-length once.
    pub fn new(status: StatusCode, mut headers: HeaderMap, body: Bytes) -> Self {
        headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
        Prepared { status, headers, body }
    }

    /// A plain-text response, for hotroute's own answers (404, 405, errors).
    pub fn text(status: StatusCode, text: impl Into<String>) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
        Prepared::new(status, headers, Bytes::from(text.into()))
    }

    /// The response for one request. `HEAD` gets the same headers and no body.
    pub fn to_response(&self, method: &Method) -> Response<Body> {
        let body = if method == Method::HEAD { Bytes::new() } else { self.body.clone() };
        let mut res = Response::new(Body::full(body));
        *res.status_mut() = self.status;
        *res.headers_mut() = self.headers.clone();
        res
    }
}

/// Builds a response with a status and a body, the headers given and content-length set.
pub fn with_body(status: StatusCode, mut headers: HeaderMap, body: Bytes, method: &Method) -> Response<Body> {
    headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    let body = if method == Method::HEAD { Bytes::new() } else { body };
    let mut res = Response::new(Body::full(body));
    *res.status_mut() = status;
    *res.headers_mut() = headers;
    res
}

/// hotroute's own plain-text answer, e.g. a 404 or a template error.
pub fn text(status: StatusCode, text: impl Into<String>, method: &Method) -> Response<Body> {
    Prepared::text(status, text).to_response(method)
}

/// A 405 with the `Allow` header listing what the path does accept.
pub fn method_not_allowed(method: &Method, path: &str, allow: &HeaderValue) -> Response<Body> {
    let allowed = allow.to_str().unwrap_or_default();
    let mut res = text(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("405 method not allowed: {method} {path}\nallowed: {allowed}\n"),
        method,
    );
    res.headers_mut().insert(ALLOW, allow.clone());
    res
}

/// A JSON response (admin API).
pub fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let mut body = serde_json::to_vec(value).unwrap_or_default();
    body.push(b'\n');
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    with_body(status, headers, Bytes::from(body), &Method::GET)
}
