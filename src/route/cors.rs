//! CORS: `[server] cors = true` (or a table) answers browsers' preflight requests and adds the CORS headers to
//! every response, so that a web app on another origin can call the mock.

use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_HEADERS,
    ACCESS_CONTROL_REQUEST_METHOD, CONTENT_LENGTH, ORIGIN, VARY,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode};

use crate::config::CorsConfig;
use crate::request::RequestView;
use crate::route::respond::Body;

/// CORS ready to apply: the header values are made once.
#[derive(Debug)]
pub struct Cors {
    origins: Option<Vec<HeaderValue>>,
    methods: Option<HeaderValue>,
    headers: Option<HeaderValue>,
    expose: Option<HeaderValue>,
    credentials: bool,
    max_age: Option<HeaderValue>,
}

fn join<T: AsRef<str>>(items: &[T]) -> Option<HeaderValue> {
    let text: Vec<&str> = items.iter().map(AsRef::as_ref).collect();
    HeaderValue::from_str(&text.join(", ")).ok()
}

impl Cors {
    /// Prepares the headers of `config`.
    pub fn new(config: &CorsConfig) -> Self {
        Cors {
            origins: config
                .origins
                .as_ref()
                .map(|list| list.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect()),
            methods: config.methods.as_ref().and_then(|m| join(&m.iter().map(Method::as_str).collect::<Vec<_>>())),
            headers: config.headers.as_ref().and_then(|h| join(&h.iter().map(HeaderName::as_str).collect::<Vec<_>>())),
            expose: (!config.expose_headers.is_empty())
                .then(|| join(&config.expose_headers.iter().map(HeaderName::as_str).collect::<Vec<_>>()))
                .flatten(),
            credentials: config.credentials,
            max_age: config.max_age.map(HeaderValue::from),
        }
    }

    /// Whether the request is a browser's preflight: `OPTIONS` with `Origin` and `Access-Control-Request-Method`.
    pub fn is_preflight(req: &RequestView<'_>) -> bool {
        req.method == Method::OPTIONS
            && req.headers.contains_key(ORIGIN)
            && req.headers.contains_key(ACCESS_CONTROL_REQUEST_METHOD)
    }

    /// The answer to a preflight for a path that answers `allow` (an `Allow` header value, `*` for any method).
    pub fn preflight(&self, req: &RequestView<'_>, allow: &HeaderValue) -> Response<Body> {
        let mut res = Response::new(Body::default());
        *res.status_mut() = StatusCode::NO_CONTENT;
        let headers = res.headers_mut();
        self.decorate(headers, req.headers);
        let methods = match &self.methods {
            Some(m) => Some(m.clone()),
            None if allow.as_bytes() == b"*" => req.headers.get(ACCESS_CONTROL_REQUEST_METHOD).cloned(),
            None => Some(allow.clone()),
        };
        if let Some(m) = methods {
            headers.insert(ACCESS_CONTROL_ALLOW_METHODS, m);
        }
        let allowed_headers = match &self.headers {
            Some(h) => Some(h.clone()),
            None => {
                headers.append(VARY, HeaderValue::from_static("Access-Control-Request-Headers"));
                req.headers.get(ACCESS_CONTROL_REQUEST_HEADERS).cloned()
            }
        };
        if let Some(h) = allowed_headers {
            headers.insert(ACCESS_CONTROL_ALLOW_HEADERS, h);
        }
        if let Some(age) = &self.max_age {
            headers.insert(ACCESS_CONTROL_MAX_AGE, age.clone());
        }
        headers.insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
        res
    }

    /// Adds the CORS headers for a request with `request` headers to a response's `headers`.
    pub fn decorate(&self, headers: &mut HeaderMap, request: &HeaderMap) {
        let origin = request.get(ORIGIN);
        let allowed = match (&self.origins, origin) {
            (None, _) if !self.credentials => Some(HeaderValue::from_static("*")),
            (None, Some(o)) => Some(o.clone()),
            (Some(list), Some(o)) if list.iter().any(|a| a == o || a == "*") => {
                if list.iter().any(|a| a == "*") && !self.credentials {
                    Some(HeaderValue::from_static("*"))
                } else {
                    Some(o.clone())
                }
            }
            _ => None,
        };
        let echoed = allowed.as_ref().is_some_and(|a| a != "*");
        if echoed || self.origins.is_some() {
            // The answer depends on the Origin header: caches must keep one copy per origin.
            headers.append(VARY, HeaderValue::from_static("Origin"));
        }
        let Some(allowed) = allowed else { return };
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, allowed);
        if self.credentials {
            headers.insert(ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
        }
        if let Some(expose) = &self.expose {
            headers.insert(ACCESS_CONTROL_EXPOSE_HEADERS, expose.clone());
        }
    }
}
