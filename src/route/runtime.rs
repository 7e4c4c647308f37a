//! Runtime routes: routes sent over `POST /__admin/routes`, kept beside the route file's and tried before them.
//!
//! One router answers everything: each load of the route file, and each change to the runtime routes, builds a
//! router from the file's checked config with the runtime routes in front (newest first), so that matching, the
//! near-miss 404, coverage and the journal treat both alike and the plain-route path pays nothing for them.

use std::path::Path;
use std::sync::Arc;

use crate::config::error::{LoadError, LoadErrors};
use crate::config::resource::ResourceConfig;
use crate::config::{Config, RouteConfig, Source};

/// The name runtime routes' text goes by in errors and locations (`runtime:3`).
pub const RUNTIME_SOURCE: &str = "runtime";

/// One route sent over `POST /__admin/routes`, checked.
#[derive(Debug, Clone)]
pub struct RuntimeRoute {
    /// Its id, for `DELETE /__admin/routes/{id}`.
    pub id: u64,
    /// Which `POST` sent it (routes of one `POST` share their text, and clash with each other as in a file).
    pub post: u64,
    /// The text of that `POST`.
    pub source: Arc<Source>,
    /// The route, or the resource.
    pub item: RuntimeItem,
}

/// What one runtime entry is: a `[[route]]` or a `[[resource]]`.
#[derive(Debug, Clone)]
pub enum RuntimeItem {
    /// A `[[route]]` table.
    Route(Box<RouteConfig>),
    /// A `[[resource]]` table.
    Resource(ResourceConfig),
}

/// Checks `text` (one or more `[[route]]` or `[[resource]]` tables) as `POST /__admin/routes` receives it: with the route file's
/// checks, body files relative to `base_dir`. Ids are given from `next_id` on.
pub fn check(text: &str, base_dir: &Path, post: u64, next_id: u64) -> Result<Vec<RuntimeRoute>, LoadErrors> {
    let name = Path::new(RUNTIME_SOURCE);
    // `[server]` and `include` belong to the file: say so, rather than apply or ignore them.
    if let Ok(table) = text.parse::<toml::Table>() {
        if let Some(key) = table.keys().find(|k| k.as_str() != "route" && k.as_str() != "resource") {
            let message =
                format!("runtime routes take only `[[route]]` and `[[resource]]` tables, and this text has `{key}`");
            let help = "put `[server]` settings and `include` in the route file; send only `[[route]]` or \
                        `[[resource]]` tables here";
            return Err(LoadErrors(vec![LoadError::file(name, message, help)]));
        }
        if !table.contains_key("route") && !table.contains_key("resource") {
            let message = "the text has no `[[route]]` or `[[resource]]` table".to_owned();
            let help = "send one or more routes, e.g.\n[[route]]\npath = \"/hello\"\nbody = \"hi\"";
            return Err(LoadErrors(vec![LoadError::file(name, message, help)]));
        }
    }
    let (config, errors) = crate::config::check_str(text, name, base_dir)?;
    if !errors.is_empty() {
        return Err(LoadErrors(errors));
    }
    let source = Arc::new(Source { path: name.to_path_buf(), text: text.to_owned() });
    let items = config.routes.into_iter().map(|r| RuntimeItem::Route(Box::new(r)));
    let items = items.chain(config.resources.into_iter().map(RuntimeItem::Resource));
    Ok(items
        .enumerate()
        .map(|(i, item)| RuntimeRoute { id: next_id + i as u64, post, source: Arc::clone(&source), item })
        .collect())
}

/// The runtime ids of a merged config's routes and resources (none for the file's), index for index.
#[derive(Debug, Default)]
pub(crate) struct RuntimeIds {
    pub(crate) routes: Vec<Option<u64>>,
    pub(crate) resources: Vec<Option<u64>>,
}

/// The file's config with `runtime` (newest first) in front, and each route's and resource's runtime id (none for
/// the file's). Without runtime routes it is the file's config as it is.
pub(crate) fn merge(file: &Config, runtime: &[RuntimeRoute]) -> (Config, RuntimeIds) {
    let mut config = file.clone();
    let mut routes = Vec::with_capacity(runtime.len() + config.routes.len());
    let mut ids = Vec::with_capacity(runtime.len() + config.routes.len());
    let (mut resources, mut resource_ids) = (Vec::new(), Vec::new());
    let mut posts: Vec<(u64, usize)> = Vec::new();
    for r in runtime {
        let source = match posts.iter().find(|(post, _)| *post == r.post) {
            Some(&(_, index)) => index,
            None => {
                config.sources.push((*r.source).clone());
                posts.push((r.post, config.sources.len() - 1));
                config.sources.len() - 1
            }
        };
        match &r.item {
            RuntimeItem::Route(route) => {
                let mut route = (**route).clone();
                route.origin.source = source;
                routes.push(route);
                ids.push(Some(r.id));
            }
            RuntimeItem::Resource(resource) => {
                let mut resource = resource.clone();
                resource.origin.source = source;
                resources.push(resource);
                resource_ids.push(Some(r.id));
            }
        }
    }
    ids.resize(ids.len() + config.routes.len(), None);
    routes.append(&mut config.routes);
    config.routes = routes;
    resource_ids.resize(resource_ids.len() + config.resources.len(), None);
    resources.append(&mut config.resources);
    config.resources = resources;
    (config, RuntimeIds { routes: ids, resources: resource_ids })
}
