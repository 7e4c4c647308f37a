//! `proxy`: forwarding to a real service, on a route (`proxy = "https://api.example.com"`) or for every request no
//! route answers (`[server] proxy = "..."`). Checked here when the route file loads; the client and the forwarding
//! are `crate::route::proxy`.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http::uri::{Authority, Scheme};
use schemars::JsonSchema;
use serde::Deserialize;
use toml::Spanned;

use crate::config::inputs::Inputs;
use crate::config::tls::{Pem, PemFile};

/// How long an upstream has to send its response head, unless `timeout` says otherwise.
pub const DEFAULT_PROXY_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest `timeout` accepted: an hour, like `delay`.
const MAX_PROXY_TIMEOUT: Duration = Duration::from_secs(3600);

/// `proxy = "URL"`, or a table with the URL and its options.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ProxySpec {
    /// The upstream's URL, `http(s)://host[:port][/base]`: the request's path and query are added to it.
    Url(String),
    /// The upstream and how to reach it.
    Table(ProxyTableSpec),
}

/// `proxy = { url = "https://api.example.com", ... }`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProxyTableSpec {
    /// The upstream's URL, `http(s)://host[:port][/base]`.
    pub url: String,
    /// The path sent upstream instead of the request's, after the base: `{name}` is the route path's capture of
    /// that name, e.g. `"/v2/{rest}"` for the route path `/api/{*rest}`. The query is kept. Routes only.
    #[serde(default)]
    pub path: Option<String>,
    /// Send the client's `Host` upstream instead of the upstream's own (default false).
    #[serde(default)]
    pub preserve_host: bool,
    /// How long the upstream has to send its response head, e.g. `"5s"` (default 30 s); then 504.
    #[serde(default)]
    pub timeout: Option<String>,
    /// PEM file (relative to the route file) of the CA that signs the upstream's certificate, trusted besides the
    /// system's roots.
    #[serde(default)]
    pub ca: Option<String>,
    /// Do not verify the upstream's certificate at all (default false; a warning is logged at load).
    #[serde(default)]
    pub insecure: bool,
    /// `[server] proxy` only: append every exchange the fallback proxies to this route file (relative to the route
    /// file), as `[[route]]` tables.
    #[serde(default)]
    pub record: Option<String>,
    /// With `record`: more response headers to write as `"<redacted>"`, besides `authorization`,
    /// `proxy-authorization`, `cookie`, `set-cookie` and `x-api-key`.
    #[serde(default)]
    pub redact: Vec<String>,
    /// With `record`: JSON keys whose values are written as `"<redacted>"` in recorded answers (left out of
    /// recorded request conditions).
    #[serde(default)]
    pub redact_json: Vec<String>,
}

/// A checked `proxy`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyConfig {
    /// The URL as written, for messages and the journal.
    pub url: String,
    /// `http` or `https`.
    pub scheme: Scheme,
    /// `host[:port]`.
    pub authority: Authority,
    /// The URL's path, without a trailing `/` (empty for none): what the request's path is appended to.
    pub base: String,
    /// `path`: the rewrite of the request's path, `{name}` standing for a capture.
    pub rewrite: Option<String>,
    /// `preserve_host`.
    pub preserve_host: bool,
    /// `timeout`.
    pub timeout: Duration,
    /// `ca`.
    pub ca: Option<PemFile>,
    /// `insecure`.
    pub insecure: bool,
    /// `record` (resolved against the route file's folder).
    pub record: Option<PathBuf>,
    /// `redact`: response headers redacted in the recording, besides the defaults.
    pub redact: Vec<String>,
    /// `redact_json`: JSON keys redacted in the recording.
    pub redact_json: Vec<String>,
}

type Report<'a> = dyn FnMut(Range<usize>, String, &str) + 'a;

/// The port written in `authority` (`host:port`, `[v6]:port`), or none (`host:` is the default port, RFC 3986).
fn port_text(authority: &str) -> Option<&str> {
    authority.rsplit_once(':').map(|(_, port)| port).filter(|port| !port.is_empty() && !port.ends_with(']'))
}

/// Checks `proxy`; `route_path` is the route's path (none for `[server] proxy`), whose captures `path` may use.
pub(crate) fn from_spec(
    spec: &Spanned<ProxySpec>,
    route_path: Option<&str>,
    base_dir: &Path,
    inputs: &mut Inputs,
    error: &mut Report<'_>,
) -> Option<ProxyConfig> {
    let span = spec.span();
    let default;
    let table = match spec.get_ref() {
        ProxySpec::Url(url) => {
            default = ProxyTableSpec {
                url: url.clone(),
                path: None,
                preserve_host: false,
                timeout: None,
                ca: None,
                insecure: false,
                record: None,
                redact: Vec::new(),
                redact_json: Vec::new(),
            };
            &default
        }
        ProxySpec::Table(table) => table,
    };
    let mut ok = true;
    let mut fail = |message: String, help: &str| {
        error(span.clone(), message, help);
        ok = false;
    };
    let url_help = "write the upstream as http(s)://host[:port][/base], e.g. \"https://api.example.com\" or \
                    \"http://127.0.0.1:8080/v1\"";
    let uri = match table.url.parse::<http::Uri>() {
        Ok(uri) => Some(uri),
        Err(e) => {
            fail(format!("proxy: `{}` is not a URL: {e}", table.url), url_help);
            None
        }
    };
    let (mut scheme, mut authority, mut base) = (Scheme::HTTP, None, String::new());
    if let Some(uri) = &uri {
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => scheme = Scheme::HTTPS,
            other => fail(
                format!(
                    "proxy: `{}` has {}, not http or https",
                    table.url,
                    other.map_or("no scheme".into(), |s| format!("the scheme `{s}`"))
                ),
                url_help,
            ),
        }
        match uri.authority() {
            Some(a) if a.as_str().contains('@') => fail(
                format!("proxy: `{}` holds user information", table.url),
                "give the URL without `user@`; send credentials as headers",
            ),
            // `http::Uri` takes any digits as the port (`:99999`), which then fails at each request as "connection
            // refused" to another port.
            Some(a) if port_text(a.as_str()).is_some_and(|p| p.parse::<u16>().map_or(true, |p| p == 0)) => fail(
                format!(
                    "proxy: `{}` has the port `{}`, which is no TCP port",
                    table.url,
                    port_text(a.as_str()).unwrap_or_default()
                ),
                "use a port from 1 to 65535, e.g. \"http://127.0.0.1:8080\"",
            ),
            Some(a) => authority = Some(a.clone()),
            None => fail(format!("proxy: `{}` has no host", table.url), url_help),
        }
        if uri.query().is_some() {
            fail(
                format!("proxy: `{}` has a query", table.url),
                "the request's query is sent as it is: remove `?...` from the URL",
            );
        }
        base = uri.path().trim_end_matches('/').to_owned();
    }
    if let Some(rewrite) = &table.path {
        match route_path {
            None => fail("proxy.path is for routes, not for `[server] proxy`".into(), "remove `path`"),
            Some(_) if !rewrite.starts_with('/') => fail(
                format!("proxy.path `{rewrite}` does not start with `/`"),
                "write it from the root, e.g. \"/v2/{rest}\"",
            ),
            Some(route) => {
                for name in placeholders(rewrite) {
                    let captured = route.contains(&format!("{{{name}}}")) || route.contains(&format!("{{*{name}}}"));
                    if !captured {
                        fail(
                            format!(
                                "proxy.path `{rewrite}` uses `{{{name}}}`, which the route path `{route}` does not capture"
                            ),
                            "use a name the route path captures, e.g. path = \"/api/{*rest}\" with proxy.path = \"/v2/{rest}\"",
                        );
                    }
                }
            }
        }
    }
    if table.record.is_some() && route_path.is_some() {
        fail("proxy.record is for `[server] proxy`, not for a route".into(), "move `record` to `[server] proxy`");
    }
    let timeout = match &table.timeout {
        None => DEFAULT_PROXY_TIMEOUT,
        Some(text) => match humantime::parse_duration(text) {
            Ok(d) if !d.is_zero() && d <= MAX_PROXY_TIMEOUT => d,
            Ok(_) => {
                fail(format!("proxy.timeout `{text}` is out of range"), "use a duration from \"1ms\" to \"1h\"");
                DEFAULT_PROXY_TIMEOUT
            }
            Err(e) => {
                fail(format!("proxy.timeout: `{text}` is not a duration: {e}"), "e.g. \"500ms\", \"5s\" or \"1m\"");
                DEFAULT_PROXY_TIMEOUT
            }
        },
    };
    let ca = table.ca.as_ref().and_then(|name| {
        let path = base_dir.join(name);
        match inputs.read(&path) {
            Ok(bytes) => Some(PemFile { path, pem: Pem(bytes.into()) }),
            Err(e) => {
                fail(
                    format!("proxy.ca: cannot read `{}`: {e}", path.display()),
                    "give the path of a PEM file of CA certificates, relative to the route file",
                );
                None
            }
        }
    });
    if (table.ca.is_some() || table.insecure) && scheme == Scheme::HTTP && uri.is_some() {
        fail(
            format!("proxy.ca and proxy.insecure are for https upstreams, and `{}` is http", table.url),
            "remove them, or use an https:// URL",
        );
    }
    let record = table.record.as_ref().map(|r| base_dir.join(r));
    if record.is_none() && (!table.redact.is_empty() || !table.redact_json.is_empty()) {
        fail(
            "proxy.redact and proxy.redact_json are for a recording".into(),
            "add record = \"recorded.toml\", or remove them",
        );
    }
    if let Some(bad) = table.redact.iter().find(|h| http::HeaderName::from_bytes(h.as_bytes()).is_err()) {
        fail(format!("proxy.redact: `{bad}` is not a header name"), "header names are letters, digits and `-`");
    }
    if !ok {
        return None;
    }
    Some(ProxyConfig {
        url: table.url.clone(),
        scheme,
        authority: authority?,
        base,
        rewrite: table.path.clone(),
        preserve_host: table.preserve_host,
        timeout,
        ca,
        insecure: table.insecure,
        record,
        redact: table.redact.clone(),
        redact_json: table.redact_json.clone(),
    })
}

/// The `{name}` placeholders of a `proxy.path`.
pub(crate) fn placeholders(rewrite: &str) -> impl Iterator<Item = &str> {
    rewrite.split('{').skip(1).filter_map(|s| s.split_once('}').map(|(name, _)| name.trim_start_matches('*')))
}

/// The keys a proxy route cannot have: the answer is the upstream's.
pub(crate) fn route_conflicts(spec: &crate::config::RouteSpec) -> Vec<&'static str> {
    [
        ("status", spec.status.is_some()),
        ("body", spec.body.is_some()),
        ("json", spec.json.is_some()),
        ("file", spec.file.is_some()),
        ("template", spec.template),
        ("sequence", spec.sequence.is_some()),
        ("stream", spec.stream.is_some()),
        ("sse", spec.sse.is_some()),
        ("dir", spec.dir.is_some()),
    ]
    .into_iter()
    .filter_map(|(k, set)| set.then_some(k))
    .collect()
}

/// A proxy route as the router builds it: where to forward, and the route's own headers (which win over the
/// upstream's; `[server] headers` do not).
#[derive(Debug, Clone)]
pub struct ProxyRoute {
    /// The upstream.
    pub target: Arc<ProxyConfig>,
    /// The route's own `headers`.
    pub headers: http::HeaderMap,
}
