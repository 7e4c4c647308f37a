//! Who may use the admin API: the admin token, the `Host` check against DNS rebinding, and the cross-site request
//! checks (CSRF) for the calls that change state.
//!
//! - Token: with one configured (`--admin-token`, `HOTROUTE_ADMIN_TOKEN`, `[server] admin_token`, or made at start
//!   when hotroute listens off loopback without one), every admin request but the dashboard page and
//!   `GET /__admin/health` must send `Authorization: Bearer TOKEN`. Health then answers only the status and counts.
//! - Host: on a loopback address, a request must name a loopback host or the bound address. A web page the developer
//!   visits can point its own DNS name at 127.0.0.1 and then read the admin API as same-origin; its requests carry
//!   that name in `Host`, and are refused here.
//! - CSRF: a `POST` or `DELETE` must come from the server's own origin (an `Origin` header from another site gets
//!   403), and a `POST` without a valid token must be one a browser sends cross-origin only after a CORS preflight
//!   (which the admin API never grants): JSON (`content-type: application/json`) or with an `X-Hotroute` header. An
//!   HTML form or a `text/plain` fetch from another site is neither. A `DELETE` always needs a preflight.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use http::header::{AUTHORIZATION, CONTENT_TYPE, HOST, ORIGIN, WWW_AUTHENTICATE};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::route::respond::{self, Body};

/// The header that marks a state-changing admin call as made on purpose by a script, not by another site's page.
pub const CSRF_HEADER: &str = "x-hotroute";

/// The admin calls that change state, checked against cross-site requests. (Other methods and paths get 405 or
/// 404 and change nothing.)
const CHANGES_STATE: &[(&str, &str)] = &[
    ("POST", "/reload"),
    ("DELETE", "/requests"),
    ("DELETE", "/coverage"),
    ("POST", "/scenarios/reset"),
    ("POST", "/reset"),
    ("POST", "/routes"),
    ("DELETE", "/routes"),
];

/// Whether the admin call `method path` changes state: one of [`CHANGES_STATE`], or a `PUT` that sets a scenario
/// (whose path names it) or a `DELETE` of a runtime route.
fn changes_state(method: &Method, path: &str) -> bool {
    CHANGES_STATE.contains(&(method.as_str(), path))
        || (method == Method::PUT && path.starts_with("/scenarios/"))
        || (method == Method::DELETE && path.starts_with("/routes/"))
}

/// How many admin reads that can be large (`/__admin/requests`, `/__admin/routes`, `/__admin/coverage`) are
/// answered at once; more get 503 with `retry-after`. A read holds its place until its answer is sent.
pub const MAX_ADMIN_READS: usize = 4;

/// The answer to a request that is refused (boxed: an error this large would make every `Result` large).
pub type Refusal = Box<Response<Body>>;

/// The admin API's access rules for one server; see the [module documentation](self).
#[derive(Debug)]
pub struct Access {
    token: Option<String>,
    bound: SocketAddr,
    reads: Arc<Semaphore>,
}

/// What a request may do once it passed [`Access::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// Everything: the token was sent, or none is needed.
    Full,
    /// Only the open endpoints, and health without paths or error text.
    Open,
}

impl Access {
    /// The rules for a server bound to `bound`, with this token (none: no token needed).
    pub fn new(token: Option<String>, bound: SocketAddr) -> Self {
        Access { token, bound, reads: Arc::new(Semaphore::new(MAX_ADMIN_READS)) }
    }

    /// A place among the [`MAX_ADMIN_READS`] large reads, or the 503 to answer.
    pub fn read_permit(&self) -> Result<OwnedSemaphorePermit, Refusal> {
        self.reads.clone().try_acquire_owned().map_err(|_| {
            let text = format!(
                "503 {MAX_ADMIN_READS} admin reads are being answered already\n\
                 retry in a second; page through the journal with ?after=ID&limit=N\n"
            );
            let mut res = respond::text(StatusCode::SERVICE_UNAVAILABLE, text, &Method::GET);
            res.headers_mut().insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
            Box::new(res)
        })
    }

    /// Checks `req` (for admin endpoint `path`, without the prefix): the grant, or the refusal to answer.
    pub fn check<B>(&self, req: &Request<B>, path: &str) -> Result<Grant, Refusal> {
        let host = request_host(req);
        if self.bound.ip().is_loopback()
            && let Some(host) = host
            && !self.is_own_host(host)
        {
            let text = format!(
                "403 the admin API answers only requests addressed to this machine (localhost, 127.0.0.1, [::1] or \
                 {}), and this one is for `{host}`\n\
                 a web page can point its own name at 127.0.0.1 to read a local server (DNS rebinding); \
                 use http://{}/__admin/ instead\n",
                self.bound, self.bound
            );
            return Err(Box::new(forbidden(text, req.method())));
        }
        let grant = match (&self.token, bearer(req)) {
            (None, _) => Grant::Full,
            (Some(token), Some(sent)) if constant_time_eq(token.as_bytes(), sent) => Grant::Full,
            (Some(_), sent) => {
                let open =
                    matches!((req.method(), path), (&Method::GET | &Method::HEAD, "/") | (&Method::GET, "/health"));
                if open {
                    Grant::Open
                } else {
                    return Err(Box::new(unauthorized(sent.is_some(), req.method())));
                }
            }
        };
        if changes_state(req.method(), path) {
            self.check_csrf(req, host, grant == Grant::Full && self.token.is_some())?;
        }
        Ok(grant)
    }

    fn check_csrf<B>(&self, req: &Request<B>, host: Option<&str>, with_token: bool) -> Result<(), Refusal> {
        if let Some(origin) = req.headers().get(ORIGIN) {
            let own = host.map_or_else(|| format!("http://{}", self.bound), |h| format!("http://{h}"));
            if !origin.as_bytes().eq_ignore_ascii_case(own.as_bytes()) {
                let text = format!(
                    "403 a {} to the admin API from another origin ({}) is refused: only pages of {own} may make it\n",
                    req.method(),
                    String::from_utf8_lossy(origin.as_bytes())
                );
                return Err(Box::new(forbidden(text, req.method())));
            }
        }
        let json =
            req.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| {
                v.split(';').next().unwrap_or_default().trim().eq_ignore_ascii_case("application/json")
            });
        // A page on another site can send a POST without asking first (a form, or a `text/plain` fetch), but not a
        // DELETE, a JSON POST or a custom header: those need a CORS preflight, which the admin API never grants.
        if with_token || req.method() != Method::POST || json || req.headers().contains_key(CSRF_HEADER) {
            return Ok(());
        }
        let text = format!(
            "403 a {} to the admin API must carry `{CSRF_HEADER}: 1` or `content-type: application/json`\n\
             this keeps a page on another site from making it (a browser sends neither cross-origin without asking \
             the server first)\n\
             e.g. curl -X {} -H '{CSRF_HEADER}: 1' http://{}{}\n",
            req.method(),
            req.method(),
            self.bound,
            req.uri().path()
        );
        Err(Box::new(forbidden(text, req.method())))
    }

    /// Whether `host` (a `Host` header: a name or address and maybe a port) names this machine's loopback or the
    /// bound address.
    fn is_own_host(&self, host: &str) -> bool {
        let name = strip_port(host);
        if name.eq_ignore_ascii_case("localhost") || name.to_ascii_lowercase().ends_with(".localhost") {
            // Browsers resolve `localhost` and `*.localhost` to loopback themselves (RFC 6761), never by DNS.
            return true;
        }
        let ip = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')).unwrap_or(name);
        ip.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback() || ip == self.bound.ip())
    }
}

/// The host the request is for: `Host` (HTTP/1.1), or the authority of the target (HTTP/2's `:authority`).
fn request_host<B>(req: &Request<B>) -> Option<&str> {
    match req.headers().get(HOST) {
        Some(h) => Some(h.to_str().unwrap_or("(not text)")),
        None => req.uri().authority().map(|a| a.as_str()),
    }
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        // `[::1]:3000`: the port follows the bracket.
        return host.find(']').map_or(host, |end| &host[..=end]);
    }
    host.rsplit_once(':').filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit())).map_or(host, |(name, _)| name)
}

/// The token of an `Authorization: Bearer TOKEN` header.
fn bearer<B>(req: &Request<B>) -> Option<&[u8]> {
    let value = req.headers().get(AUTHORIZATION)?.as_bytes();
    let (scheme, token) = value.split_at(value.iter().position(|&b| b == b' ')?);
    scheme.eq_ignore_ascii_case(b"bearer").then(|| token.trim_ascii())
}

/// Whether `a` equals `b`, in a time that depends only on their lengths: an attacker timing the answers learns
/// nothing about how many leading bytes of a guess were right. The token's length is not a secret (a made one is
/// always 64 hex digits).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // Keeps the compiler from turning the fold into an early-exit comparison.
    std::hint::black_box(diff) == 0
}

fn forbidden(text: String, method: &Method) -> Response<Body> {
    respond::text(StatusCode::FORBIDDEN, text, if method == Method::HEAD { method } else { &Method::GET })
}

fn unauthorized(sent: bool, method: &Method) -> Response<Body> {
    let why = if sent { "the token sent is not the admin token" } else { "no token was sent" };
    let text = format!(
        "401 the admin API needs its token ({why}): send `Authorization: Bearer TOKEN`\n\
         the token is --admin-token, HOTROUTE_ADMIN_TOKEN or [server] admin_token; hotroute prints the one it makes \
         at start on stderr when it listens off loopback without one\n\
         the dashboard takes it in its address: /__admin/#token=TOKEN\n"
    );
    let mut res =
        respond::text(StatusCode::UNAUTHORIZED, text, if method == Method::HEAD { method } else { &Method::GET });
    res.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"hotroute admin\""));
    res
}

/// A new random admin token: 32 bytes from the operating system's generator, as 64 hex digits.
pub fn generate_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_with_and_without_ports() {
        let access = Access::new(None, "127.0.0.1:3000".parse().unwrap());
        for ok in
            ["localhost", "LOCALHOST:3000", "app.localhost:1", "127.0.0.1", "127.0.0.1:3000", "[::1]:3000", "[::1]"]
        {
            assert!(access.is_own_host(ok), "{ok}");
        }
        for bad in ["evil.example", "evil.example:3000", "localhost.evil.example", "10.0.0.1:3000", "[::2]:1"] {
            assert!(!access.is_own_host(bad), "{bad}");
        }
        assert!(
            constant_time_eq(b"abc", b"abc") && !constant_time_eq(b"abc", b"abd") && !constant_time_eq(b"a", b"ab")
        );
        assert_eq!(generate_token().unwrap().len(), 64);
    }
}
