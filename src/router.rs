//! The immutable router: a matchit radix tree from paths to routes, each with its response prepared.
//!
//! A [`Router`] is built once per load of the route file and never changes; a reload builds a new one and swaps it
//! in (see [`crate::live`]). Matching is one tree lookup plus a scan of the few routes that share the path.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;

use bytes::Bytes;
use http::header::HeaderValue;
use http::{HeaderMap, Method, Response, StatusCode, Uri};

use crate::config::{BodyConfig, Config, Methods, RouteConfig, ServerConfig};
use crate::error::{LoadError, LoadErrors};
use crate::respond::{self, Body, Prepared};

/// How a route produces its response.
#[derive(Debug)]
enum Responder {
    /// The same bytes every time.
    Static(Prepared),
    /// A body rendered per request from the template named `name` in the router's environment.
    Template { name: String, status: StatusCode, headers: HeaderMap },
}

/// One route, ready to answer.
#[derive(Debug)]
pub struct Route {
    /// The URL pattern as written.
    pub path: String,
    /// The methods it answers.
    pub methods: Methods,
    /// The file that defines it.
    pub file: PathBuf,
    /// The line of its `[[route]]` header.
    pub line: usize,
    responder: Responder,
}

impl Route {
    /// `file:line`, for logs and the admin API.
    pub fn location(&self) -> String {
        format!("{}:{}", self.file.display(), self.line)
    }
}

/// The routes that share one URL pattern.
#[derive(Debug)]
struct PathEntry {
    /// Indices into [`Router::routes`], in file order.
    routes: Vec<usize>,
    /// The `Allow` header for a 405 on this path.
    allow: HeaderValue,
}

/// What a request matched.
#[derive(Debug)]
pub enum Lookup<'r, 'p> {
    /// A route answers; `params` holds the captured path parameters.
    Found {
        /// The route.
        route: &'r Route,
        /// Captured `{name}` segments.
        params: matchit::Params<'r, 'p>,
    },
    /// The path exists, but not for this method.
    MethodNotAllowed {
        /// The methods it does accept.
        allow: &'r HeaderValue,
    },
    /// No route has this path.
    NotFound,
}

/// A request as the routes see it: the head, the whole body (already read, within the body limit) and the peer.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    /// Request method.
    pub method: &'a Method,
    /// Request target.
    pub uri: &'a Uri,
    /// Request headers.
    pub headers: &'a HeaderMap,
    /// The request body.
    pub body: &'a Bytes,
    /// The client's address.
    pub peer: SocketAddr,
}

/// A response and the route that gave it (none for a 404 or 405).
#[derive(Debug)]
pub struct Answer<'r> {
    /// What to send.
    pub response: Response<Body>,
    /// The route that answered.
    pub route: Option<&'r Route>,
}

/// An immutable set of routes, ready to serve.
#[derive(Debug)]
pub struct Router {
    tree: matchit::Router<usize>,
    entries: Vec<PathEntry>,
    routes: Vec<Route>,
    templates: minijinja::Environment<'static>,
    server: ServerConfig,
}

impl Router {
    /// Reads, checks and builds the route file at `path`, reporting every problem found.
    pub fn load_file(path: &std::path::Path) -> Result<Router, LoadErrors> {
        Self::build_checked(crate::config::check_file(path)?)
    }

    /// Checks and builds route-file `text` named `name`, with body files relative to `base_dir`.
    pub fn load_str(text: &str, name: &std::path::Path, base_dir: &std::path::Path) -> Result<Router, LoadErrors> {
        Self::build_checked(crate::config::check_str(text, name, base_dir)?)
    }

    fn build_checked((config, mut errors): (Config, Vec<LoadError>)) -> Result<Router, LoadErrors> {
        match Router::build(&config) {
            Ok(router) if errors.is_empty() => Ok(router),
            Ok(_) => Err(LoadErrors(errors)),
            Err(more) => {
                errors.extend(more.0);
                errors.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
                Err(LoadErrors(errors))
            }
        }
    }

    /// Builds a router from a checked config. Clashing routes and template syntax errors are reported here.
    pub fn build(config: &Config) -> Result<Router, LoadErrors> {
        let mut errors = Vec::new();
        let mut tree = matchit::Router::new();
        let mut entries: Vec<PathEntry> = Vec::new();
        let mut by_path: HashMap<&str, usize> = HashMap::new();
        let mut routes = Vec::with_capacity(config.routes.len());
        let mut templates = template_env();

        for rc in &config.routes {
            let entry = match by_path.get(rc.path.as_str()) {
                Some(&e) => {
                    if let Some(&earlier) =
                        entries[e].routes.iter().find(|&&i| overlaps(&config.routes[i].methods, &rc.methods))
                    {
                        errors.push(clash(config, &config.routes[earlier], rc));
                        continue;
                    }
                    e
                }
                None => {
                    if let Err(e) = tree.insert(rc.path.clone(), entries.len()) {
                        errors.push(insert_error(config, rc, e, &by_path));
                        continue;
                    }
                    by_path.insert(rc.path.as_str(), entries.len());
                    entries.push(PathEntry { routes: Vec::new(), allow: HeaderValue::from_static("") });
                    entries.len() - 1
                }
            };
            let responder = match &rc.body {
                BodyConfig::Fixed(bytes) => {
                    Responder::Static(Prepared::new(rc.status, rc.headers.clone(), bytes.clone()))
                }
                BodyConfig::Template { source, span } => {
                    let name = format!("{}:{}", config.sources[rc.origin.source].path.display(), rc.origin.line);
                    if source.len() > crate::limits::MAX_TEMPLATE_SOURCE {
                        let message = format!(
                            "template is {} bytes, over the limit of {} bytes",
                            source.len(),
                            crate::limits::MAX_TEMPLATE_SOURCE
                        );
                        let help = "serve large fixed content without `template = true`, e.g. with `file =`";
                        errors.push(config.error_at(rc.origin.source, span.clone(), message, Some(help)));
                        continue;
                    }
                    let added =
                        crate::limits::on_template_stack(|| templates.add_template_owned(name.clone(), source.clone()));
                    if let Err(e) = added {
                        let help = "fix the template syntax; see https://docs.rs/minijinja for the language";
                        errors.push(config.error_at(
                            rc.origin.source,
                            span.clone(),
                            format!("template error: {e}"),
                            Some(help),
                        ));
                        continue;
                    }
                    Responder::Template { name, status: rc.status, headers: rc.headers.clone() }
                }
            };
            entries[entry].routes.push(routes.len());
            routes.push(Route {
                path: rc.path.clone(),
                methods: rc.methods.clone(),
                file: config.sources[rc.origin.source].path.clone(),
                line: rc.origin.line,
                responder,
            });
        }
        if !errors.is_empty() {
            return Err(LoadErrors(errors));
        }
        for entry in &mut entries {
            entry.allow = allow_header(entry.routes.iter().map(|&i| &routes[i].methods));
        }
        Ok(Router { tree, entries, routes, templates, server: config.server.clone() })
    }

    /// Finds the route for `method` and `path`.
    pub fn lookup<'r, 'p>(&'r self, method: &Method, path: &'p str) -> Lookup<'r, 'p> {
        let Ok(m) = self.tree.at(path) else { return Lookup::NotFound };
        let entry = &self.entries[*m.value];
        match entry.routes.iter().map(|&i| &self.routes[i]).find(|r| r.methods.allows(method)) {
            Some(route) => Lookup::Found { route, params: m.params },
            None => Lookup::MethodNotAllowed { allow: &entry.allow },
        }
    }

    /// Answers a request: the matched route's response, a 405, or a 404.
    pub fn respond<'r>(&'r self, req: &RequestView<'_>) -> Answer<'r> {
        let path = req.uri.path();
        match self.lookup(req.method, path) {
            Lookup::Found { route, params } => {
                Answer { response: self.render(route, &params, req), route: Some(route) }
            }
            Lookup::MethodNotAllowed { allow } => {
                Answer { response: respond::method_not_allowed(req.method, path, allow), route: None }
            }
            Lookup::NotFound => Answer {
                response: respond::text(
                    StatusCode::NOT_FOUND,
                    format!("404 not found: {} {path}\n", req.method),
                    req.method,
                ),
                route: None,
            },
        }
    }

    fn render(&self, route: &Route, params: &matchit::Params, req: &RequestView<'_>) -> Response<Body> {
        let method = req.method;
        match &route.responder {
            Responder::Static(prepared) => prepared.to_response(method),
            Responder::Template { name, status, headers } => {
                let path: BTreeMap<String, String> = params.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
                let ctx = minijinja::context! { path => path, method => method.as_str() };
                // The error is formatted and dropped on the template stack too: it can hold the template's values.
                let rendered = crate::limits::on_template_stack(|| {
                    self.templates
                        .get_template(name)
                        .and_then(|t| t.render(ctx))
                        .map_err(|e| (e.to_string(), format!("{e:#}")))
                });
                match rendered {
                    Ok(body) => respond::with_body(*status, headers.clone(), body.into(), method),
                    Err((e, detail)) => {
                        tracing::error!(route = %route.location(), "template error: {detail}");
                        let text = format!("500 template error in route {}: {e}\n", route.location());
                        respond::text(StatusCode::INTERNAL_SERVER_ERROR, text, method)
                    }
                }
            }
        }
    }

    /// The routes, in file order.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The `[server]` settings this router was loaded with.
    pub fn server(&self) -> &ServerConfig {
        &self.server
    }
}

/// A template environment with nothing from the outside world: no loader, so templates reach no files.
fn template_env() -> minijinja::Environment<'static> {
    let mut env = minijinja::Environment::new();
    // Bounded work per render, so a runaway loop in a template answers 500 instead of hanging a worker.
    env.set_fuel(Some(100_000));
    env
}

fn overlaps(a: &Methods, b: &Methods) -> bool {
    match (a, b) {
        (Methods::Any, _) | (_, Methods::Any) => true,
        (Methods::List(x), Methods::List(y)) => x.iter().any(|m| y.contains(m)),
    }
}

fn clash(config: &Config, earlier: &RouteConfig, later: &RouteConfig) -> LoadError {
    let src = &config.sources[later.origin.source];
    let msg = format!(
        "route {} {} is defined twice; the one at line {} always answers first, so this one never would",
        later.methods, later.path, earlier.origin.line
    );
    let help = "remove one of them, or give them different methods";
    if earlier.origin.source == later.origin.source {
        LoadError::with_context(
            &src.path,
            &src.text,
            later.path_span.clone(),
            msg,
            Some(help),
            Some((earlier.path_span.clone(), "first defined here")),
        )
    } else {
        LoadError::at(&src.path, &src.text, later.path_span.clone(), msg, Some(help))
    }
}

fn insert_error(
    config: &Config,
    rc: &RouteConfig,
    e: matchit::InsertError,
    by_path: &HashMap<&str, usize>,
) -> LoadError {
    let (msg, help) = match &e {
        matchit::InsertError::Conflict { with } => {
            let line = config
                .routes
                .iter()
                .find(|r| &r.path == with && by_path.contains_key(r.path.as_str()))
                .map(|r| r.origin.line);
            let at = line.map(|l| format!(" (line {l})")).unwrap_or_default();
            (
                format!("route path `{}` conflicts with `{with}`{at}: the two would match the same requests", rc.path),
                "give both parameters the same name, or make the paths differ by a fixed segment",
            )
        }
        _ => (
            format!("bad route path `{}`: {e}", rc.path),
            "paths look like \"/users/{id}\" or \"/files/{*rest}\"; a literal brace is written `{{` or `}}`",
        ),
    };
    config.error_at(rc.origin.source, rc.path_span.clone(), msg, Some(help))
}

fn allow_header<'a>(methods: impl Iterator<Item = &'a Methods>) -> HeaderValue {
    let mut names: Vec<&str> = Vec::new();
    for m in methods {
        match m {
            Methods::Any => return HeaderValue::from_static("*"),
            Methods::List(list) => {
                for method in list {
                    names.push(method.as_str());
                    if method == Method::GET {
                        names.push("HEAD");
                    }
                }
            }
        }
    }
    names.sort_unstable();
    names.dedup();
    HeaderValue::from_str(&names.join(", ")).unwrap_or_else(|_| HeaderValue::from_static(""))
}
