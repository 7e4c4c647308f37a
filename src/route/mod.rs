//! The immutable router: a matchit radix tree from paths to routes, each with its response prepared.
//!
//! A [`Router`] is built once per load of the route file and never changes; a reload builds a new one and swaps it
//! in (see [`crate::reload`]). Matching is one tree lookup plus a scan of the few routes that share the path; a route
//! with `match` conditions is skipped when they do not hold, and the next one in file order is tried.
//!
//! A plain route answers from a [`Prepared`] response: a header map clone and a body reference count. Everything
//! else (templates, sequences, delays, faults, static folders) is a scripted route, which counts its answers.
//!
//! Each route carries its own [`RouteStats`]: its answer count (a sequence's position), its coverage hits, the name
//! the journal gives it, and the observe layer's metric slot. [`Router::adopt_state`] is the one place that decides
//! what survives a reload.
//!
//! Layer: answers a request without sockets; imports `config`, `request` and `util`, nothing above.

pub(crate) mod body;
pub(crate) mod cors;
pub(crate) mod matching;
pub(crate) mod not_found;
pub(crate) mod openapi;
pub mod partition;
pub mod proxy;
pub(crate) mod reply;
pub mod resource;
pub(crate) mod respond;
pub mod runtime;
pub mod scenario;
pub(crate) mod shape;
pub mod state;
pub(crate) mod static_files;
pub(crate) mod stream;
pub(crate) mod template;
pub(crate) mod websocket;

use std::any::Any;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use http::header::HeaderValue;
use http::{Method, Response, StatusCode};

use crate::config::MatchConfig;
use crate::config::error::{LoadError, LoadErrors};
use crate::config::{BodyConfig, Config, Methods, RouteConfig, ServerConfig};
use crate::request::{RequestData, RequestView};
use cors::Cors;
use not_found::NearMiss;
use partition::{Partition, Partitions};
use reply::{Reply, ReplyParts};
use resource::{Resource, Target};
use respond::{Body, Prepared};
use scenario::{RouteScenario, Scenarios};
use static_files::{DirRequest, StaticDir};
use stream::StreamReply;
use template::{Templates, Vars};

/// How a route produces its response.
#[derive(Debug)]
enum Responder {
    /// The same bytes every time.
    Static(Prepared),
    /// Templates, a sequence, a delay, a fault or a folder.
    Scripted(Box<Script>),
    /// A `[[resource]]`'s collection or item path: the index of the resource in [`Router::resources`].
    Resource(usize, Target),
}

/// What one route has counted, and what is made for it on its first request. Kept in the route itself, so that a
/// request finds it without a lookup.
#[derive(Debug, Default)]
struct RouteStats {
    /// How many times a scripted route has answered: its position in its sequence. A reload keeps it when the route's
    /// definition did not change (a changed sequence starts again).
    answers: Arc<AtomicU64>,
    /// How many requests the route answered, for coverage. A reload keeps it when the route keeps its methods, path
    /// and rank among the routes of that path (an edited body is still the same route for coverage).
    hits: Arc<AtomicU64>,
    /// The route as the journal names it.
    info: OnceLock<Arc<RouteInfo>>,
    /// The observe layer's slot (metric labels and counters). Not carried over: its labels name the route's line.
    observed: OnceLock<Arc<dyn Any + Send + Sync>>,
}

/// A route as the journal and coverage name it.
#[derive(Debug)]
pub struct RouteInfo {
    /// The methods it answers.
    pub methods: Methods,
    /// Its URL pattern as written, e.g. `/users/{id}`.
    pub path: String,
    /// Where it is defined: `file:line`.
    pub location: String,
}

impl RouteInfo {
    /// The route as JSON: methods, path and location.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({ "methods": self.methods.to_json(), "path": self.path, "location": self.location })
    }
}

impl std::fmt::Display for RouteInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} ({})", self.methods, self.path, self.location)
    }
}

#[derive(Debug)]
struct Script {
    /// The route's one answer, or its sequence.
    replies: Vec<Reply>,
    cycle: bool,
    dir: Option<(Arc<StaticDir>, Option<String>)>,
    /// `stream` or `sse`: the body, sent item by item.
    stream: Option<StreamReply>,
    /// `file:line` of the route, which template errors name on the request path.
    location: String,
    /// The route's scenario: the state it requires, the state it moves to.
    scenario: Option<RouteScenario>,
    /// Whether its answers depend on state that replicas share (a sequence, `count` in a template, a scenario):
    /// with a shared store, its count and scenario live there. Delays, faults and folders count locally.
    shared: bool,
    /// Its counter in the shared store for the default partition, made on its first request there (the prefix is
    /// fixed at start): the common request builds no key and no command.
    counter: OnceLock<state::Counter>,
    /// `websocket`: the handshake is answered with `101` and the script the serving layer plays.
    websocket: Option<Arc<websocket::WsReply>>,
    /// `proxy`: the answer is the upstream's, with the route's headers, delay or fault on top.
    proxy: Option<Arc<proxy::Upstream>>,
    /// `throttle` and `cut_after`.
    shape: Option<crate::config::ShapeConfig>,
}

impl Script {
    /// The answer for the `count`-th request (1-based).
    fn pick(&self, count: u64) -> &Reply {
        let n = self.replies.len() as u64;
        let i = if self.cycle { (count - 1) % n } else { (count - 1).min(n - 1) };
        &self.replies[i as usize]
    }
}

/// One route, ready to answer.
#[derive(Debug)]
pub struct Route {
    /// The URL pattern as written.
    pub path: String,
    /// The methods it answers.
    pub methods: Methods,
    /// The file that defines it (shared by all the routes of that file, so that a load does not copy the path per
    /// route).
    pub file: Arc<Path>,
    /// The line of its `[[route]]` header.
    pub line: usize,
    responder: Responder,
    matcher: Option<MatchConfig>,
    /// The hash of its definition (see [`crate::config::ScriptConfig::key`]).
    key: u64,
    stats: RouteStats,
    /// Its id when it was sent over `POST /__admin/routes`; none for the route file's.
    pub runtime_id: Option<u64>,
}

impl Route {
    /// `file:line`, for logs and the admin API. Made on demand: most routes of a large file are never asked.
    pub fn location(&self) -> String {
        format!("{}:{}", self.file.display(), self.line)
    }

    /// How many times a scripted route has answered (none for a plain route, which does not count).
    pub fn count(&self) -> Option<u64> {
        match &self.responder {
            Responder::Static(_) | Responder::Resource(..) => None,
            Responder::Scripted(_) => Some(self.stats.answers.load(Ordering::Relaxed)),
        }
    }

    /// How many requests the route answered since the start or the last coverage reset (counted by the journal).
    pub fn hits(&self) -> u64 {
        self.stats.hits.load(Ordering::Relaxed)
    }

    /// Counts a request the route answered, for coverage.
    pub(crate) fn hit(&self) {
        self.stats.hits.fetch_add(1, Ordering::Relaxed);
    }

    /// Sets the coverage count back to zero.
    pub(crate) fn reset_hits(&self) {
        self.stats.hits.store(0, Ordering::Relaxed);
    }

    /// The route as the journal names it, made on its first request and shared by every record of it.
    pub fn info(&self) -> Arc<RouteInfo> {
        self.stats
            .info
            .get_or_init(|| {
                Arc::new(RouteInfo {
                    methods: self.methods.clone(),
                    path: self.path.clone(),
                    location: self.location(),
                })
            })
            .clone()
    }

    /// The observe layer's per-route slot of type `T`, made by `make` on the route's first request.
    pub(crate) fn observed<T: Any + Send + Sync>(&self, make: impl FnOnce() -> T) -> Option<Arc<T>> {
        self.stats.observed.get_or_init(|| Arc::new(make())).clone().downcast().ok()
    }

    /// Why the route's scenario keeps it from matching (the state it wants, the state the scenario is in); none
    /// when it has no scenario or its state holds.
    pub(crate) fn scenario_miss(&self) -> Option<String> {
        match &self.responder {
            Responder::Scripted(script) => script.scenario.as_ref().and_then(RouteScenario::explain),
            Responder::Static(_) | Responder::Resource(..) => None,
        }
    }

    /// Whether the route does per-request work (templates, a sequence, a delay, a fault or a folder), for the trace.
    pub fn is_scripted(&self) -> bool {
        matches!(self.responder, Responder::Scripted(_))
    }
}

/// The routes that share one URL pattern.
#[derive(Debug)]
struct PathEntry {
    /// Indices into [`Router::routes`], in file order.
    routes: Vec<usize>,
    /// The `Allow` header for a 405 on this path.
    allow: HeaderValue,
    /// Whether a route names `OPTIONS` itself (it then answers CORS preflights instead of the CORS layer).
    options: bool,
    /// Whether a route of this path keeps shared state (see `Script::shared`).
    shared: bool,
}

/// A response and the route that gave it (none for a 404 or 405).
#[derive(Debug)]
pub struct Answer<'r> {
    /// What to send; when `pending` is set, what to pass to [`Pending::finish`].
    pub response: Response<Body>,
    /// The route that answered.
    pub route: Option<&'r Route>,
    /// Work left before the response can be sent (a delay, a file from a folder), or none.
    pub pending: Option<Pending>,
    /// Where the request goes when it is proxied (a `proxy` route, `[server] proxy`): the pipeline forwards it and
    /// the answer is the upstream's. A field rather than one of the response's extensions: those are a map
    /// allocated per response, which every proxied request paid for.
    pub proxy: Option<proxy::ProxyTo>,
}

/// What an answer still has to await: it owns what it needs, so the router need not be held meanwhile.
#[derive(Debug)]
pub struct Pending {
    delay: Option<Duration>,
    /// Boxed: a folder's request is a few hundred bytes, and every answer (a proxied one too) carries a `Pending`
    /// slot that is moved a few times on its way through the pipeline.
    dir: Option<Box<DirRequest>>,
    /// `throttle` and `cut_after` for the folder's file, which is only known here.
    shape: Option<crate::config::ShapeConfig>,
}

impl Pending {
    /// Waits out the delay, then reads the file of a folder route, and returns the response to send.
    pub async fn finish(self, response: Response<Body>) -> Response<Body> {
        if let Some(delay) = self.delay {
            tokio::time::sleep(delay).await;
        }
        match self.dir {
            Some(request) => {
                let response = (*request).serve(response).await;
                match self.shape {
                    Some(shape) => response.map(|body| shape::shape_body(body, shape)),
                    None => response,
                }
            }
            None => response,
        }
    }

    /// The delay before the answer, if any.
    pub fn delay(&self) -> Option<Duration> {
        self.delay
    }
}

/// An immutable set of routes, ready to serve.
#[derive(Debug)]
pub struct Router {
    tree: matchit::Router<usize>,
    entries: Vec<PathEntry>,
    routes: Vec<Route>,
    templates: Templates,
    server: ServerConfig,
    cors: Option<Cors>,
    /// `[server] not_found` and how many times it answered.
    not_found: Option<(Reply, AtomicU64)>,
    /// Made on the first near-miss 404, so that loading many routes does not pay for it.
    near: OnceLock<NearMiss>,
    /// The scenarios the routes name, and their states.
    scenarios: Scenarios,
    /// Whether any path has a route with shared state: without one, a shared store is never asked.
    shared: bool,
    /// When every path with shared state is static (no `{param}`, no `{*rest}`): those paths, which a request
    /// path must equal to be routed to them. [`Router::needs_shared`] compares with them instead of matching the
    /// path a second time (every request pays for that check when `[server] state` is set).
    shared_paths: Option<Box<[Box<str>]>>,
    /// `[server] proxy`: where requests no route answers go.
    fallback: Option<Arc<proxy::Upstream>>,
    /// Whether any request can go upstream (a `proxy` route or the fallback): without one, [`Router::will_proxy`]
    /// answers at once instead of routing every request twice.
    proxies: bool,
    /// The `[[resource]]` collections, in file order.
    resources: Vec<Resource>,
    /// The isolated partitions' state (`[server] isolate`), shared with the routers of later reloads.
    partitions: Arc<Partitions>,
    /// `[server] openapi_validate`'s checks, when on (set by whoever loaded the document, see [`openapi`]).
    openapi: Option<Arc<openapi::Validation>>,
}

/// What matching chose: a finished answer (a plain route, a resource, a 404, a proxy fallback, a 405), or a
/// scripted route still to count and render, with the request's in-process partition (`[server] isolate`).
// Returned once per request on the stack: boxing the answer would cost plain routes an allocation.
#[allow(clippy::large_enum_variant)]
enum Selected<'r, 'p> {
    Done(Answer<'r>),
    Scripted {
        route: &'r Route,
        script: &'r Script,
        params: matchit::Params<'r, 'p>,
        part: Option<Arc<Partition>>,
    },
    /// A resource whose data is in the shared store (only when `select` is asked for the shared path).
    Resource {
        route: &'r Route,
        resource: &'r Resource,
        target: Target,
        id: Option<&'p str>,
    },
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

    fn build_checked((config, errors): (Config, Vec<LoadError>)) -> Result<Router, LoadErrors> {
        Self::load_layered((config, errors), &[]).map(|(router, _)| router)
    }

    /// Builds a checked route file (its config and the problems already found) with `runtime` routes in front, and
    /// hands back the file's config with the router, so that the runtime routes can be changed without a re-read.
    pub(crate) fn load_layered(
        (config, mut errors): (Config, Vec<LoadError>),
        runtime: &[runtime::RuntimeRoute],
    ) -> Result<(Router, Config), LoadErrors> {
        match Router::build_layered(&config, runtime) {
            Ok(router) if errors.is_empty() => Ok((router, config)),
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
        Self::build_with_runtime(config, &runtime::RuntimeIds::default())
    }

    /// Builds the route file's `config` with `runtime` routes in front (see [`runtime`]).
    pub(crate) fn build_layered(config: &Config, runtime: &[runtime::RuntimeRoute]) -> Result<Router, LoadErrors> {
        if runtime.is_empty() {
            return Self::build(config);
        }
        let (merged, ids) = runtime::merge(config, runtime);
        Self::build_with_runtime(&merged, &ids)
    }

    /// [`Router::build`], where `ids.routes[i]` is the runtime id of `config.routes[i]` (none past its end), and
    /// `ids.resources` the same for resources: a runtime route may shadow a route of another text (that is what it is for), which is then no clash.
    fn build_with_runtime(config: &Config, ids: &runtime::RuntimeIds) -> Result<Router, LoadErrors> {
        let runtime_id = |ci: usize| ids.routes.get(ci).copied().flatten();
        let mut errors = Vec::new();
        let mut tree = matchit::Router::new();
        let mut entries: Vec<PathEntry> = Vec::with_capacity(config.routes.len());
        let mut by_path: HashMap<&str, usize> = HashMap::with_capacity(config.routes.len());
        let mut routes = Vec::with_capacity(config.routes.len());
        // The config index of each built route: a route with an error is skipped, so the two can differ.
        let mut config_index: Vec<usize> = Vec::with_capacity(config.routes.len());
        let mut templates = Templates::new(config.server.seed);
        let files: Vec<Arc<Path>> = config.sources.iter().map(|s| Arc::from(s.path.as_path())).collect();
        let mut scenarios = Scenarios::default();

        for (ci, rc) in config.routes.iter().enumerate() {
            let entry = match by_path.get(rc.path.as_str()) {
                Some(&e) => {
                    let shadowing = entries[e]
                        .routes
                        .iter()
                        .map(|&i| config_index[i])
                        .filter(|&ei| {
                            let earlier = &config.routes[ei];
                            runtime_id(ei).is_none() || earlier.origin.source == rc.origin.source
                        })
                        .map(|ei| &config.routes[ei])
                        .find(|earlier| overlaps(&earlier.methods, &rc.methods) && always_wins_over(earlier, rc));
                    if let Some(earlier) = shadowing {
                        errors.push(clash(config, earlier, rc));
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
                    entries.push(PathEntry {
                        routes: Vec::new(),
                        allow: HeaderValue::from_static(""),
                        options: false,
                        shared: false,
                    });
                    entries.len() - 1
                }
            };
            let mut responder = match build_responder(rc, &mut templates, config) {
                Ok(r) => r,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            // A route with a scenario is never plain (see `ScriptConfig::is_plain`), so it has a script to hold it.
            if let (Responder::Scripted(script), Some(sc)) = (&mut responder, &rc.script.scenario) {
                script.scenario = Some(scenarios.route(sc));
            }
            if let Responder::Scripted(script) = &mut responder {
                script.shared = script.scenario.is_some()
                    || rc.script.template
                    || rc.script.sequence.as_ref().is_some_and(|s| s.items.len() > 1);
                entries[entry].shared |= script.shared;
            }
            entries[entry].routes.push(routes.len());
            config_index.push(ci);
            routes.push(Route {
                path: rc.path.clone(),
                methods: rc.methods.clone(),
                file: files[rc.origin.source].clone(),
                line: rc.origin.line,
                responder,
                matcher: rc.script.matcher.as_ref().map(|m| {
                    let mut matcher = m.0.clone();
                    if let Some(chance) = &mut matcher.chance {
                        // Each route draws its own sequence: the seed mixed with the route's line.
                        chance.seed = chance_seed(config.server.seed) ^ (rc.origin.line as u64).rotate_left(32);
                    }
                    matcher
                }),
                key: rc.script.key,
                stats: RouteStats::default(),
                runtime_id: runtime_id(ci),
            });
        }
        // A catch-all needs at least one character, so `/docs/{*rest}` alone would answer 404 for `/docs/`: a `dir`
        // route also takes its bare prefix (the folder's `index.html`) and the prefix without its slash (a redirect),
        // unless a route of the file has that path.
        for &ci in &config_index {
            let rc = &config.routes[ci];
            let Some(prefix) = rc
                .script
                .dir
                .as_ref()
                .and_then(|d| d.param.as_ref())
                .and_then(|p| rc.path.strip_suffix(&format!("{{*{p}}}")).filter(|prefix| prefix.ends_with('/')))
            else {
                continue;
            };
            if let (false, Some(&entry)) = (by_path.contains_key(prefix), by_path.get(rc.path.as_str())) {
                // A clash with another pattern (e.g. `/docs/{page}`) leaves that one in charge: not an error.
                let _ = tree.insert(prefix.to_owned(), entry);
            }
            // The folder named without its slash (`/docs`, as a user types it) redirects to `/docs/`, like any folder
            // below it: without this it was a 404.
            let bare = prefix.trim_end_matches('/');
            if let (false, false, Some(&entry)) =
                (bare.is_empty(), by_path.contains_key(bare), by_path.get(rc.path.as_str()))
            {
                let _ = tree.insert(bare.to_owned(), entry);
            }
        }
        // Clients percent-encode a path's non-ASCII characters, spaces and braces before sending it (browsers,
        // reqwest and Python in upper-case hex, curl in lower case): a route written `/café` also answers
        // `/caf%C3%A9` and `/caf%c3%a9`. The route keeps its path as written (listings, the 404) and still answers a
        // client that sends the raw bytes.
        for &ci in &config_index {
            let rc = &config.routes[ci];
            let (Some(upper), Some(&entry)) = (as_sent(&rc.path), by_path.get(rc.path.as_str())) else { continue };
            let lower = lower_hex(&upper);
            for encoded in [upper, lower] {
                if !by_path.contains_key(encoded.as_str()) {
                    // A clash with another pattern (a route written in the encoded form) leaves that one in charge.
                    let _ = tree.insert(encoded, entry);
                }
            }
        }
        let not_found = match &config.server.not_found {
            None => None,
            Some(nf) => {
                let parts = ReplyParts {
                    status: nf.status,
                    headers: &nf.headers,
                    header_templates: &nf.header_templates,
                    status_template: None,
                    body: &nf.body,
                    delay: nf.delay,
                    fault: nf.fault,
                };
                match Reply::build(parts, &mut templates, "[server] not_found", &config.sources[0].text) {
                    Ok(reply) => Some((reply, AtomicU64::new(0))),
                    Err(e) => {
                        errors.push(config.error_at(0, e.span, e.message, Some(TEMPLATE_HELP)));
                        None
                    }
                }
            }
        };
        let fallback = match &config.server.proxy {
            None => None,
            Some(p) => match proxy::Upstream::new(p.clone(), None) {
                Ok(upstream) => {
                    warn_insecure(p, "[server] proxy");
                    Some(upstream)
                }
                Err(message) => {
                    let span = span_of_server_key(&config.sources[0].text, "proxy");
                    errors.push(config.error_at(0, span, message, Some(CA_HELP)));
                    None
                }
            },
        };
        let mut resources = Vec::with_capacity(config.resources.len());
        for (ri, rc) in config.resources.iter().enumerate() {
            let resource = Resource::new(rc.clone());
            let index = resources.len();
            let mut ok = true;
            for (path, target, methods) in [
                (resource.path().to_owned(), Target::Collection, [Method::GET, Method::POST].as_slice()),
                (
                    resource.item_path(),
                    Target::Item,
                    [Method::GET, Method::PUT, Method::PATCH, Method::DELETE].as_slice(),
                ),
            ] {
                if let Some(&e) = by_path.get(path.as_str()) {
                    let other = &routes[entries[e].routes[0]];
                    let message = format!(
                        "resource `{}` answers `{path}`, and so does the route at {}",
                        resource.path(),
                        other.location()
                    );
                    let help = "remove that route, or move the resource to another path";
                    errors.push(config.error_at(
                        rc.origin.source,
                        rc.origin.span.start..rc.origin.span.start,
                        message,
                        Some(help),
                    ));
                    ok = false;
                    continue;
                }
                if let Err(e) = tree.insert(path.clone(), entries.len()) {
                    let message = format!("resource `{}` cannot answer `{path}`: {e}", resource.path());
                    let help = "a route's path overlaps the resource's; move the resource or the route";
                    errors.push(config.error_at(
                        rc.origin.source,
                        rc.origin.span.start..rc.origin.span.start,
                        message,
                        Some(help),
                    ));
                    ok = false;
                    continue;
                }
                entries.push(PathEntry {
                    routes: vec![routes.len()],
                    allow: HeaderValue::from_static(""),
                    options: false,
                    // With a shared store, resource data lives there.
                    shared: true,
                });
                routes.push(Route {
                    path,
                    methods: Methods::List(methods.to_vec()),
                    file: files[rc.origin.source].clone(),
                    line: rc.origin.line,
                    responder: Responder::Resource(index, target),
                    matcher: None,
                    key: resource_key(resource.path(), target),
                    stats: RouteStats::default(),
                    runtime_id: ids.resources.get(ri).copied().flatten(),
                });
            }
            if ok {
                resources.push(resource);
            }
        }
        if !errors.is_empty() {
            return Err(LoadErrors(errors));
        }
        for entry in &mut entries {
            entry.allow = allow_header(entry.routes.iter().map(|&i| &routes[i].methods));
            entry.options = entry
                .routes
                .iter()
                .any(|&i| matches!(&routes[i].methods, Methods::List(l) if l.contains(&Method::OPTIONS)));
        }
        let shared = entries.iter().any(|e| e.shared);
        // Resource paths are not in `by_path` (and have `{id}`): with one, the count below falls short.
        let static_shared: Vec<Box<str>> = (by_path.iter())
            .filter(|&(path, &e)| entries[e].shared && !path.contains(['{', '}', '*']))
            .map(|(path, _)| Box::from(*path))
            .collect();
        let shared_paths = (static_shared.len() == entries.iter().filter(|e| e.shared).count())
            .then(|| static_shared.into_boxed_slice());
        let proxies = fallback.is_some()
            || routes.iter().any(|r| matches!(&r.responder, Responder::Scripted(s) if s.proxy.is_some()));
        Ok(Router {
            tree,
            entries,
            routes,
            templates,
            server: config.server.clone(),
            cors: config.server.cors.as_ref().map(Cors::new),
            not_found,
            near: OnceLock::new(),
            scenarios,
            shared,
            shared_paths,
            fallback,
            proxies,
            resources,
            partitions: Arc::default(),
            openapi: None,
        })
    }

    /// The OpenAPI request checks requests are put through before a route answers, if any.
    pub(crate) fn openapi(&self) -> Option<&openapi::Validation> {
        self.openapi.as_deref()
    }

    /// Sets the OpenAPI request checks (see [`openapi::add_spec`]).
    pub(crate) fn set_openapi(&mut self, validation: Option<Arc<openapi::Validation>>) {
        self.openapi = validation;
    }

    /// Takes over the counts of `previous`'s routes, so that a reload restarts neither sequences nor coverage: a
    /// scripted route's answer count when its definition did not change, and every route's coverage hits when it
    /// keeps its methods, path and rank among the routes of that path. [`crate::Live`] calls it before each swap.
    pub fn adopt_state(&mut self, previous: &Router) {
        let mut answers: HashMap<u64, &Arc<AtomicU64>> = HashMap::new();
        let mut hits: HashMap<(&Methods, &str, usize), &Arc<AtomicU64>> = HashMap::new();
        let mut rank: HashMap<(&Methods, &str), usize> = HashMap::new();
        for route in &previous.routes {
            if let Responder::Scripted(_) = &route.responder {
                answers.entry(route.key).or_insert(&route.stats.answers);
            }
            let nth = rank.entry((&route.methods, route.path.as_str())).or_default();
            hits.insert((&route.methods, route.path.as_str(), *nth), &route.stats.hits);
            *nth += 1;
        }
        let mut rank: HashMap<(Methods, String), usize> = HashMap::new();
        for route in &mut self.routes {
            if let Responder::Scripted(_) = &route.responder
                && let Some(count) = answers.remove(&route.key)
            {
                route.stats.answers = Arc::clone(count);
            }
            let nth = rank.entry((route.methods.clone(), route.path.clone())).or_default();
            if let Some(count) = hits.get(&(&route.methods, route.path.as_str(), *nth)) {
                route.stats.hits = Arc::clone(count);
            }
            *nth += 1;
        }
        let routes = self.routes.iter_mut().filter_map(|r| match &mut r.responder {
            Responder::Scripted(script) => script.scenario.as_mut(),
            Responder::Static(_) | Responder::Resource(..) => None,
        });
        self.scenarios.adopt(&previous.scenarios, routes);
        for resource in &mut self.resources {
            if let Some(old) = previous.resources.iter().find(|r| r.path() == resource.path()) {
                resource.adopt(old);
            }
        }
        self.partitions = Arc::clone(&previous.partitions);
    }

    /// The `[[resource]]` collections.
    pub fn resources(&self) -> &[Resource] {
        &self.resources
    }

    /// The isolated partitions (`[server] isolate`).
    pub fn partitions(&self) -> &Partitions {
        &self.partitions
    }

    /// The partition id `req` names, when `[server] isolate` is set and the request carries one.
    pub fn isolate_id(&self, req: &RequestView<'_>) -> Option<String> {
        partition::id_of(self.server.isolate.as_ref()?, req)
    }

    /// Whether `bytes` at `path` are what a persisted resource of this router last wrote there (so that the watcher
    /// does not reload on the server's own writes).
    pub fn wrote(&self, path: &Path, bytes: &[u8]) -> bool {
        let mut digest = None;
        self.resources.iter().any(|r| {
            r.persists_to(path) && r.wrote(*digest.get_or_insert_with(|| crate::config::resource::data_digest(bytes)))
        })
    }

    /// Puts every resource's default partition back to its start data.
    pub fn reset_resources(&self) {
        for resource in &self.resources {
            resource.reset();
        }
    }

    /// The scenarios the routes name, and their states.
    pub fn scenarios(&self) -> &Scenarios {
        &self.scenarios
    }

    /// Sets every route's answer count (and so its sequence position) back to zero.
    pub fn reset_counters(&self) {
        for route in &self.routes {
            route.stats.answers.store(0, Ordering::Relaxed);
        }
    }

    /// Answers a request: the first route whose path, method and `match` conditions fit, a 405, or a 404. With
    /// CORS on, preflights are answered here and every response gets the CORS headers.
    pub fn respond<'r>(&'r self, req: &RequestView<'_>) -> Answer<'r> {
        let Some(cors) = &self.cors else { return self.route(req) };
        if Cors::is_preflight(req)
            && let Ok(m) = self.tree.at(req.uri.path())
            && !self.entries[*m.value].options
        {
            let response = cors.preflight(req, &self.entries[*m.value].allow);
            return Answer { response, route: None, pending: None, proxy: None };
        }
        let mut answer = self.route(req);
        cors.decorate(answer.response.headers_mut(), req.headers);
        answer
    }

    fn route<'r>(&'r self, req: &RequestView<'_>) -> Answer<'r> {
        let data = RequestData::new(req);
        match self.select(&data, req.uri.path(), None, false) {
            Selected::Done(answer) => answer,
            // Only handed back to `select`'s shared callers.
            Selected::Resource { route, resource, target, id } => {
                let part = (self.server.isolate.as_ref())
                    .and_then(|key| partition::id_of(key, req).map(|id| self.partitions.get(&id)));
                let collection = part.as_ref().map(|p| p.collection(resource));
                let response = resource.answer(target, id, &data, collection.as_deref());
                Answer { response, route: Some(route), pending: None, proxy: None }
            }
            Selected::Scripted { route, script, params, part } => {
                // HEAD is safe (RFC 9110, 9.2.1): it gets what the next GET would get and moves nothing, so that a
                // monitor or a link checker does not change what the next GET answers. Checked here, on the
                // scripted path only, and answered out of line: plain routes do not pay for it.
                if req.method == Method::HEAD {
                    return self.scripted_head(route, script, &params, &data, part.as_deref());
                }
                let count = next_count(route, part.as_deref());
                let (response, pending, proxy) = self.scripted(route, script, &params, &data, part.as_deref(), count);
                // After the answer is made: its templates see the state the request matched in.
                if let Some(sc) = &script.scenario {
                    sc.advance_in(part.as_deref());
                }
                Answer { response, route: Some(route), pending, proxy }
            }
        }
    }

    /// Finds the route that answers: the first whose method, `match` conditions and scenario state fit. A plain
    /// route, a resource, a 404, a proxy fallback or a 405 is answered here; a scripted route is handed back (with
    /// the request's in-process partition) to be counted and rendered. `states`: where the scenario states come
    /// from when not from the in-process partition (a shared store's, read for this request).
    /// `shared`: a resource is handed back (as [`Selected::Resource`]) to be answered from the shared store.
    fn select<'r, 'p>(
        &'r self,
        data: &RequestData<'_>,
        path: &'p str,
        states: Option<&Partition>,
        shared: bool,
    ) -> Selected<'r, 'p> {
        let req = data.view;
        let Ok(m) = self.tree.at(path) else { return Selected::Done(self.not_found(data, None)) };
        let entry = &self.entries[*m.value];
        // Only a server with `isolate` looks for the partition: the others pay one branch.
        let part = match &self.server.isolate {
            None => None,
            Some(key) => partition::id_of(key, req).map(|id| self.partitions.get(&id)),
        };
        let mut method_fits = false;
        for &i in &entry.routes {
            let route = &self.routes[i];
            if !route.methods.allows(req.method) {
                continue;
            }
            method_fits = true;
            if let Some(matcher) = &route.matcher
                && !matcher.holds(data)
            {
                continue;
            }
            return match &route.responder {
                Responder::Static(prepared) => Selected::Done(Answer {
                    response: prepared.to_response(req.method),
                    route: Some(route),
                    pending: None,
                    proxy: None,
                }),
                Responder::Scripted(script) => {
                    // Checked here, not with `match`, so that plain routes do not pay for scenarios.
                    if script.scenario.as_ref().is_some_and(|sc| !sc.holds_in(states.or(part.as_deref()))) {
                        continue;
                    }
                    Selected::Scripted { route, script, params: m.params, part }
                }
                Responder::Resource(index, target) if shared => Selected::Resource {
                    route,
                    resource: &self.resources[*index],
                    target: *target,
                    id: m.params.get("id"),
                },
                Responder::Resource(index, target) => {
                    let resource = &self.resources[*index];
                    let collection = part.as_ref().map(|p| p.collection(resource));
                    let response = resource.answer(*target, m.params.get("id"), data, collection.as_deref());
                    Selected::Done(Answer { response, route: Some(route), pending: None, proxy: None })
                }
            };
        }
        if method_fits {
            return Selected::Done(self.not_found(data, Some(entry)));
        }
        if let Some(answer) = self.fall_back(req) {
            return Selected::Done(answer);
        }
        let response = respond::method_not_allowed(req.method, path, &entry.allow);
        Selected::Done(Answer { response, route: None, pending: None, proxy: None })
    }

    /// Whether a request to `path` may need the shared store: some route of the path keeps shared state.
    pub fn needs_shared(&self, path: &str) -> bool {
        if !self.shared {
            return false;
        }
        match &self.shared_paths {
            // A static pattern matches only the path equal to it (matchit compares bytes, as this does).
            Some(paths) => paths.iter().any(|p| **p == *path),
            None => self.tree.at(path).is_ok_and(|m| self.entries[*m.value].shared),
        }
    }

    /// [`Router::respond`] with the state in a shared store (`[server] state`), in partition `partition` (the
    /// request's [`Router::isolate_id`], [`state::DEFAULT_PARTITION`] without one): the scenario states are read
    /// from the store before matching, and a stateful route's count (and its scenario move) is made there
    /// atomically. A request to a path without stateful routes is answered as by [`Router::respond`], without
    /// asking the store. A store that fails or does not answer within its timeout gives a 503 that says so.
    /// Resources keep their data in the store too (see [`resource`]).
    pub async fn respond_shared<'r>(
        &'r self,
        req: &RequestView<'_>,
        store: &state::RemoteState,
        partition: &str,
    ) -> Answer<'r> {
        let preflight = self.cors.as_ref().is_some_and(|_| Cors::is_preflight(req));
        if preflight || !self.needs_shared(req.uri.path()) {
            return self.respond(req);
        }
        let mut answer = self.route_shared(req, store, partition).await;
        if let Some(cors) = &self.cors {
            cors.decorate(answer.response.headers_mut(), req.headers);
        }
        answer
    }

    async fn route_shared<'r>(
        &'r self,
        req: &RequestView<'_>,
        store: &state::RemoteState,
        partition: &str,
    ) -> Answer<'r> {
        let data = RequestData::new(req);
        // The partition's scenario states as the store has them, held for this request only: concurrent requests
        // of other partitions cannot change what this one matches in and its templates show.
        let states = if self.scenarios.is_empty() {
            None
        } else {
            // Every scenario, not only this path's: templates may show any of them.
            let names: Vec<&str> = self.scenarios.names().collect();
            let read = match store.scenario_states(partition, &names).await {
                Ok(read) => read,
                Err(e) => return unavailable(req, None, &e),
            };
            let states = Partition::default();
            for (name, state) in names.iter().zip(&read) {
                if let Some(state) = state {
                    states.set_scenario(name, Arc::new(state.clone()));
                }
            }
            if partition == state::DEFAULT_PARTITION {
                // The router's own slots too, so that the near-miss 404 explains with what the store holds.
                self.scenarios.refresh(read);
            }
            Some(states)
        };
        match self.select(&data, req.uri.path(), states.as_ref(), true) {
            Selected::Done(answer) => answer,
            Selected::Resource { route, resource, target, id } => {
                match resource.answer_shared(target, id, req, store, partition).await {
                    Ok(response) => Answer { response, route: Some(route), pending: None, proxy: None },
                    Err(e) => unavailable(req, Some(route), &e),
                }
            }
            Selected::Scripted { route, script, params, part } => {
                // HEAD moves nothing (see `Router::route`): in the store, one read and no write.
                let head = req.method == Method::HEAD;
                let count = if script.shared {
                    let own;
                    let counter = if partition == state::DEFAULT_PARTITION {
                        script.counter.get_or_init(|| store.counter(partition, route.key))
                    } else {
                        own = store.counter(partition, route.key);
                        &own
                    };
                    let counted = if head {
                        store.peek(counter).await
                    } else {
                        let scenario = script.scenario.as_ref().and_then(RouteScenario::move_spec);
                        store.count(partition, counter, scenario).await
                    };
                    match counted {
                        Ok(count) => count.max(1),
                        Err(e) => return unavailable(req, Some(route), &e),
                    }
                } else if head {
                    peek_count(route, part.as_deref())
                } else {
                    next_count(route, part.as_deref())
                };
                let seen = states.as_ref().or(part.as_deref());
                let (response, pending, proxy) = self.scripted(route, script, &params, &data, seen, count);
                Answer { response, route: Some(route), pending, proxy }
            }
        }
    }

    /// A scripted route's answer to a `HEAD`: the answer the next `GET` would get (the count it would get, the
    /// scenario states as they are), and nothing moved. Kept out of line and cold: HEAD is rare, and the code of
    /// the common request stays as small as it was.
    #[cold]
    #[inline(never)]
    fn scripted_head<'r>(
        &'r self,
        route: &'r Route,
        script: &'r Script,
        params: &matchit::Params<'_, '_>,
        data: &RequestData<'_>,
        part: Option<&Partition>,
    ) -> Answer<'r> {
        let count = peek_count(route, part);
        let (response, pending, proxy) = self.scripted(route, script, params, data, part, count);
        Answer { response, route: Some(route), pending, proxy }
    }

    /// Renders a scripted route's answer number `count`; its templates see the scenario states of `part` (the
    /// default partition's when none).
    fn scripted(
        &self,
        route: &Route,
        script: &Script,
        params: &matchit::Params<'_, '_>,
        data: &RequestData<'_>,
        part: Option<&Partition>,
        count: u64,
    ) -> (Response<Body>, Option<Pending>, Option<proxy::ProxyTo>) {
        let req = data.view;
        let reply = script.pick(count);
        if let (Some((dir, param)), None) = (&script.dir, reply.fault) {
            let rest = param.as_deref().and_then(|p| params.get(p));
            // No capture for a catch-all route, and no slash: the folder's bare name, an alias made at load.
            let bare = param.is_some() && rest.is_none() && !req.uri.path().ends_with('/');
            let dir = Some(Box::new(DirRequest::new(Arc::clone(dir), rest.unwrap_or(""), req).bare(bare)));
            let pending = Pending { delay: reply.delay, dir, shape: script.shape };
            return (reply.head(), Some(pending), None);
        }
        let params: Vec<(&str, &str)> = params.iter().collect();
        let vars = Vars { req: data, params: &params, count, scenarios: &self.scenarios, partition: part };
        let mut response = reply.render(&self.templates, &vars, (route.key, count), req.method, &script.location);
        let mut to = None;
        if let Some(fault) = reply.fault {
            response.extensions_mut().insert(fault);
        } else if let Some(ws) = &script.websocket
            && response.extensions().get::<reply::RenderFailed>().is_none()
        {
            response = ws.handshake(response, &vars, (route.key, count));
        } else if let Some(upstream) = &script.proxy {
            let target = upstream.target(req.uri, &params);
            to = Some(proxy::ProxyTo { upstream: Arc::clone(upstream), target });
        } else if let Some(stream) = &script.stream
            && response.extensions().get::<reply::RenderFailed>().is_none()
        {
            let last_event_id = req.headers.get("last-event-id").and_then(|v| v.to_str().ok());
            match stream.body(&self.templates, &vars, (route.key, count), last_event_id) {
                // The length is not known ahead: HTTP/1.1 sends it chunked, HTTP/2 in DATA frames until the end.
                Ok(body) => {
                    response.headers_mut().remove(http::header::CONTENT_LENGTH);
                    if req.method != Method::HEAD {
                        *response.body_mut() = body;
                    }
                }
                Err(why) => response = reply::render_error(&script.location, &format!("stream {why}"), req.method),
            }
        }
        if let Some(shape) = script.shape
            && reply.fault.is_none()
            && req.method != Method::HEAD
        {
            response = response.map(|body| shape::shape_body(body, shape));
        }
        (response, reply.delay.map(|delay| Pending { delay: Some(delay), dir: None, shape: None }), to)
    }

    /// `[server] proxy`'s answer to a request no route answers: the upstream's, when one is set.
    fn fall_back<'r>(&'r self, req: &RequestView<'_>) -> Option<Answer<'r>> {
        let upstream = self.fallback.as_ref()?;
        let target = upstream.target(req.uri, &[]);
        let to = proxy::ProxyTo { upstream: Arc::clone(upstream), target };
        Some(Answer { response: Response::new(Body::default()), route: None, pending: None, proxy: Some(to) })
    }

    /// Whether `req` (whose body is not read yet) goes upstream whatever its body: the route that will answer it is
    /// a proxy route, or none will and `[server] proxy` is set, and no condition on the way looks at the body. The
    /// pipeline then streams the body upstream instead of reading it. No side effect: no count, no draw.
    pub fn will_proxy(&self, req: &RequestView<'_>) -> bool {
        if !self.proxies || (self.cors.is_some() && Cors::is_preflight(req)) {
            return false;
        }
        // A recording fallback writes the request body with the answer: it is read first.
        let fallback = self.fallback.as_ref().is_some_and(|f| !f.records());
        let Ok(m) = self.tree.at(req.uri.path()) else { return fallback };
        let data = RequestData::new(req);
        for route in self.entries[*m.value].routes.iter().map(|&i| &self.routes[i]) {
            if !route.methods.allows(req.method) {
                continue;
            }
            if let Some(matcher) = &route.matcher {
                if proxy::needs_body(matcher) {
                    return false;
                }
                if matcher.first_failed(&data).is_some() {
                    continue;
                }
            }
            return match &route.responder {
                Responder::Static(_) | Responder::Resource(..) => false,
                Responder::Scripted(script) => {
                    if script.scenario.as_ref().is_some_and(|sc| !sc.holds()) {
                        continue;
                    }
                    script.proxy.is_some()
                }
            };
        }
        fallback
    }

    /// The answer when nothing matched: `[server] not_found`, or the near-miss 404. `entry` is the path's routes
    /// when the path matched but no route's conditions held.
    fn not_found<'r>(&'r self, data: &RequestData<'_>, entry: Option<&PathEntry>) -> Answer<'r> {
        let req = data.view;
        if let Some(answer) = self.fall_back(req) {
            return answer;
        }
        if let Some((reply, answers)) = &self.not_found {
            let count = answers.fetch_add(1, Ordering::Relaxed) + 1;
            let vars = Vars { req: data, params: &[], count, scenarios: &self.scenarios, partition: None };
            let mut response = reply.render(&self.templates, &vars, (0, count), req.method, "[server] not_found");
            if let Some(fault) = reply.fault {
                response.extensions_mut().insert(fault);
            }
            let pending = reply.delay.map(|delay| Pending { delay: Some(delay), dir: None, shape: None });
            return Answer { response, route: None, pending, proxy: None };
        }
        let text = self.near_miss(data, entry);
        let response = respond::text(StatusCode::NOT_FOUND, text, req.method);
        Answer { response, route: None, pending: None, proxy: None }
    }

    /// The default 404's text: the request, then the routes that came nearest and why they did not match.
    fn near_miss(&self, data: &RequestData<'_>, entry: Option<&PathEntry>) -> String {
        let req = data.view;
        let mut text = format!("404 not found: {} {}\n", req.method, req.uri.path());
        if let Some(entry) = entry {
            text.push_str("routes for this path did not match:\n");
            for route in entry.routes.iter().map(|&i| &self.routes[i]).filter(|r| r.methods.allows(req.method)) {
                let why = route
                    .matcher
                    .as_ref()
                    .and_then(|m| m.explain(data))
                    .or_else(|| route.scenario_miss())
                    .unwrap_or_default();
                if tracing::enabled!(tracing::Level::DEBUG) {
                    // The 404 hides what a header condition wants; the server's own log may say it.
                    let all = route.matcher.as_ref().and_then(|m| m.explain_all(data)).unwrap_or_default();
                    tracing::debug!("{} {} ({}) did not match: {all}", route.methods, route.path, route.location());
                }
                let _ = writeln!(text, "  {} {} ({}): {why}", route.methods, route.path, route.location());
            }
            return text;
        }
        let near = self.nearest(req.uri.path());
        if near.is_empty() {
            return text;
        }
        text.push_str("nearest routes:\n");
        for (route, why) in &near {
            let method = if route.methods.allows(req.method) {
                String::new()
            } else {
                format!("; the method differs too: the route answers {}", route.methods)
            };
            let _ = writeln!(text, "  {} {} ({}): {why}{method}", route.methods, route.path, route.location());
        }
        text
    }

    /// The routes whose pattern is one segment away from `path`, with how the path differs, in file order: the
    /// near-miss engine of both the 404 and the trace. Its index is made on first use.
    pub(crate) fn nearest(&self, path: &str) -> Vec<(&Route, String)> {
        let near = self.near.get_or_init(|| {
            NearMiss::new(self.entries.iter().enumerate().map(|(i, e)| (self.routes[e.routes[0]].path.as_str(), i)))
        });
        let mut out = Vec::new();
        for n in near.nearest(path) {
            out.extend(self.entries[n.entry].routes.iter().map(|&i| (&self.routes[i], n.why.clone())));
        }
        out
    }

    /// What the request's path captures by the pattern it matches: `{id}` and `{*rest}` names and values.
    pub(crate) fn captures(&self, path: &str) -> Vec<(String, String)> {
        self.tree
            .at(path)
            .map(|m| m.params.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect())
            .unwrap_or_default()
    }

    /// The routes of `path` (whatever their methods and conditions), in file order.
    pub(crate) fn routes_of(&self, path: &str) -> Vec<&Route> {
        self.tree
            .at(path)
            .map(|m| self.entries[*m.value].routes.iter().map(|&i| &self.routes[i]).collect())
            .unwrap_or_default()
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

const CA_HELP: &str = "give a PEM file of CA certificates (`-----BEGIN CERTIFICATE-----` blocks) as proxy.ca";

/// Counts one more answer of a scripted route, in the request's partition (the route's own counter when none): the
/// answer's 1-based count.
fn next_count(route: &Route, part: Option<&Partition>) -> u64 {
    match part {
        None => route.stats.answers.fetch_add(1, Ordering::Relaxed) + 1,
        Some(part) => part.next_count(route.key),
    }
}

/// The count the next answer of a scripted route would get, without counting it (for a `HEAD`).
fn peek_count(route: &Route, part: Option<&Partition>) -> u64 {
    match part {
        None => route.stats.answers.load(Ordering::Relaxed).saturating_add(1),
        Some(part) => part.peek_count(route.key),
    }
}

/// `insecure = true` is said at every load: a setting that turns certificate checks off should not go unnoticed.
fn warn_insecure(p: &crate::config::proxy::ProxyConfig, at: &str) {
    if p.insecure {
        tracing::warn!("{at}: proxy to {} does not verify the upstream's certificate (insecure = true)", p.url);
    }
}

/// The span of `key = ...` in the `[server]` table of `text` (the key's line; the whole text's start if not found).
fn span_of_server_key(text: &str, key: &str) -> std::ops::Range<usize> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if line.trim_start().starts_with(key) && line.trim_start()[key.len()..].trim_start().starts_with('=') {
            return offset..offset + line.trim_end().len();
        }
        offset += line.len();
    }
    0..0
}

const TEMPLATE_HELP: &str = "fix the template syntax; see https://docs.rs/minijinja for the language";

/// A plain route's prepared response, or a scripted route's compiled answers.
fn build_responder(rc: &RouteConfig, templates: &mut Templates, config: &Config) -> Result<Responder, LoadError> {
    let script = &rc.script;
    if script.is_plain()
        && let BodyConfig::Fixed(bytes) = &rc.body
    {
        return Ok(Responder::Static(Prepared::new(rc.status, rc.headers.clone(), bytes.clone())));
    }
    // Only scripted routes name themselves in templates and folders, so only they pay for the string.
    let location_string = format!("{}:{}", config.sources[rc.origin.source].path.display(), rc.origin.line);
    let location = location_string.as_str();
    let text = &config.sources[rc.origin.source].text;
    let error = |e: crate::route::reply::CompileError| {
        config.error_at(rc.origin.source, e.span, e.message, Some(TEMPLATE_HELP))
    };
    let replies = match &script.sequence {
        None => {
            let parts = ReplyParts {
                status: rc.status,
                headers: &rc.headers,
                header_templates: &script.header_templates,
                status_template: script.status_template.as_ref(),
                body: &rc.body,
                delay: script.delay,
                fault: script.fault,
            };
            vec![Reply::build(parts, templates, location, text).map_err(error)?]
        }
        Some(seq) => {
            let mut replies = Vec::with_capacity(seq.items.len());
            for (i, item) in seq.items.iter().enumerate() {
                let parts = ReplyParts {
                    status: item.status,
                    headers: &item.headers,
                    header_templates: &item.header_templates,
                    status_template: None,
                    body: &item.body,
                    delay: item.delay.or(script.delay),
                    fault: item.fault.or(script.fault),
                };
                let name = format!("{location} sequence[{i}]");
                replies.push(Reply::build(parts, templates, &name, text).map_err(error)?);
            }
            replies
        }
    };
    let dir = script.dir.as_ref().map(|d| {
        let dir = StaticDir::new(d.root.clone(), location.to_owned()).with_fallback(d.fallback.clone());
        (Arc::new(dir), d.param.clone())
    });
    let stream = match &script.stream {
        None => None,
        Some(s) => Some(StreamReply::build(s, templates, location, text).map_err(error)?),
    };
    let websocket = match &script.websocket {
        None => None,
        Some(w) => Some(Arc::new(websocket::WsReply::build(w, config.server.seed, location, text).map_err(error)?)),
    };
    let proxy = match &script.proxy {
        None => None,
        Some(p) => {
            warn_insecure(&p.target, location);
            let upstream = proxy::Upstream::new(p.target.clone(), Some(p))
                .map_err(|message| config.error_at(rc.origin.source, rc.path_span.clone(), message, Some(CA_HELP)))?;
            Some(upstream)
        }
    };
    let cycle = script.sequence.as_ref().is_some_and(|s| s.cycle);
    let shape = script.shape;
    Ok(Responder::Scripted(Box::new(Script {
        replies,
        cycle,
        dir,
        stream,
        location: location_string,
        scenario: None,
        shared: false,
        counter: OnceLock::new(),
        websocket,
        proxy,
        shape,
    })))
}

/// `path` as clients send it, or none when they send it as written: the characters of a URL path that the WHATWG URL
/// standard percent-encodes (controls, space, `"`, `<`, `>`, `` ` ``, `{`, `}` and every non-ASCII character), in
/// upper-case hex, outside `{param}` captures; `{{` and `}}` are literal braces.
fn as_sent(path: &str) -> Option<String> {
    const SENT_ENCODED: &percent_encoding::AsciiSet =
        &percent_encoding::CONTROLS.add(b' ').add(b'"').add(b'<').add(b'>').add(b'`').add(b'{').add(b'}');
    let needs = |c: char| !c.is_ascii() || c.is_ascii_control() || matches!(c, ' ' | '"' | '<' | '>' | '`');
    if !path.chars().any(needs) && !path.contains("{{") && !path.contains("}}") {
        return None;
    }
    let mut out = String::with_capacity(path.len() * 3);
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("{{") {
            out.push_str("%7B");
            rest = after;
        } else if let Some(after) = rest.strip_prefix("}}") {
            out.push_str("%7D");
            rest = after;
        } else if rest.starts_with('{') {
            // A capture, copied as is: its name is not part of what the client sends.
            let end = rest.find('}').map_or(rest.len(), |i| i + 1);
            out.push_str(&rest[..end]);
            rest = &rest[end..];
        } else {
            // Up to the next brace (a lone `}` is refused by the router before this, so `end` is past the start).
            let end = rest.find(['{', '}']).filter(|&i| i > 0).unwrap_or(rest.len());
            out.extend(percent_encoding::utf8_percent_encode(&rest[..end], SENT_ENCODED));
            rest = &rest[end..];
        }
    }
    (out != path).then_some(out)
}

/// `encoded` with the hex digits of each `%XX` in lower case.
fn lower_hex(encoded: &str) -> String {
    let mut out = String::with_capacity(encoded.len());
    let mut digits = 0;
    for c in encoded.chars() {
        if c == '%' {
            digits = 2;
            out.push(c);
        } else if digits > 0 {
            digits -= 1;
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The key of a resource's route: what coverage and sequences key on for ordinary routes.
fn resource_key(path: &str, target: Target) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    ("resource", path, target == Target::Item).hash(&mut h);
    h.finish()
}

/// The seed of `chance` draws: `[server] seed`, or one drawn from the OS when none is set.
fn chance_seed(seed: Option<u64>) -> u64 {
    seed.unwrap_or_else(|| {
        let mut bytes = [0u8; 8];
        // A failed OS generator leaves a fixed seed: the draws are then repeatable, not broken.
        let _ = getrandom::fill(&mut bytes);
        u64::from_le_bytes(bytes)
    })
}

/// Whether `earlier` answers every request that `later` would (on the methods they share): it has no `match`
/// conditions and requires no scenario state, or the same ones.
fn always_wins_over(earlier: &RouteConfig, later: &RouteConfig) -> bool {
    match (required_state(earlier), required_state(later)) {
        (None, _) => {}
        (Some(a), Some(b)) if a == b => {}
        _ => return false,
    }
    match (&earlier.script.matcher, &later.script.matcher) {
        (None, _) => true,
        (Some(a), Some(b)) => a.1 == b.1,
        (Some(_), None) => false,
    }
}

/// The scenario and state a route requires, if any.
fn required_state(route: &RouteConfig) -> Option<(&str, &str)> {
    let scenario = route.script.scenario.as_ref()?;
    Some((scenario.name.as_str(), scenario.state.as_deref()?))
}

fn overlaps(a: &Methods, b: &Methods) -> bool {
    match (a, b) {
        (Methods::Any, _) | (_, Methods::Any) => true,
        (Methods::List(x), Methods::List(y)) => x.iter().any(|m| y.contains(m)),
    }
}

fn clash(config: &Config, earlier: &RouteConfig, later: &RouteConfig) -> LoadError {
    let src = &config.sources[later.origin.source];
    // The earlier route is named by line in the same file, by file:line in another (an included file).
    let at = if earlier.origin.source == later.origin.source {
        format!("line {}", earlier.origin.line)
    } else {
        format!("{}:{}", config.sources[earlier.origin.source].path.display(), earlier.origin.line)
    };
    // A scenario `state` is a condition too: a route that requires one is not the fallback.
    let conditions = |r: &RouteConfig| r.script.matcher.is_some() || required_state(r).is_some();
    let (msg, help, label) = match (conditions(earlier), conditions(later)) {
        (false, false) => (
            format!(
                "route {} {} is defined twice; the one at {at} always answers first, so this one never would",
                later.methods, later.path
            ),
            "remove one of them, or give them different methods or `match` conditions".to_owned(),
            "first defined here",
        ),
        (false, true) => (
            format!(
                "route {} {} can never answer: the route at {at} has no `match` conditions or scenario `state`, so it answers all such requests first",
                later.methods, later.path
            ),
            format!(
                "routes are tried in file order and a route without `match` is the fallback: move the route at {at} below this one"
            ),
            "this fallback answers first",
        ),
        _ => (
            format!(
                "route {} {} can never answer: the route at {at} has the same `match` conditions and answers first",
                later.methods, later.path
            ),
            "change the conditions of one of them, or remove one".to_owned(),
            "same conditions, answers first",
        ),
    };
    if earlier.origin.source == later.origin.source {
        LoadError::with_context(
            &src.path,
            &src.text,
            later.path_span.clone(),
            msg,
            Some(&help),
            // The label goes on the earlier route's `[[route]]` line: the line the message names.
            Some((header_line(&src.text, earlier.origin.span.start), label)),
        )
    } else {
        LoadError::at(&src.path, &src.text, later.path_span.clone(), msg, Some(&help))
    }
}

/// The span of the line holding byte `at` (without its newline).
fn header_line(text: &str, at: usize) -> std::ops::Range<usize> {
    let at = at.min(text.len());
    let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let end = text[at..].find('\n').map_or(text.len(), |i| at + i);
    start..end
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
        matchit::InsertError::InvalidParamSegment => (
            format!("route path `{}` has two parameters in one segment", rc.path),
            "give each parameter a segment of its own, e.g. \"/files/{name}/{ext}\"; text around one parameter is \
             fine, e.g. \"/files/{name}.json\"",
        ),
        matchit::InsertError::InvalidParam => (
            format!("route path `{}` has a parameter without a name or an unclosed brace", rc.path),
            "write a parameter as `{name}` (letters, digits, `_`), e.g. \"/users/{id}\"; a literal brace is written \
             `{{` or `}}`",
        ),
        matchit::InsertError::InvalidCatchAll => (
            format!("route path `{}` has a catch-all `{{*...}}` before its end", rc.path),
            "a catch-all takes the rest of the path, so it comes last, e.g. \"/files/{*rest}\"",
        ),
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

/// The 503 of a stateful request whose shared store failed: what failed, where, and what to do.
fn unavailable<'r>(req: &RequestView<'_>, route: Option<&'r Route>, error: &state::StateError) -> Answer<'r> {
    let at = route.map_or_else(String::new, |r| format!(" (the route at {})", r.location()));
    let text = format!(
        "503 {} {} needs the shared state{at}, and {error}\nplain routes still answer; this one answers again once \
         the store is back\n",
        req.method,
        req.uri.path()
    );
    let mut response = respond::text(StatusCode::SERVICE_UNAVAILABLE, text, req.method);
    response.headers_mut().insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
    Answer { response, route, pending: None, proxy: None }
}
