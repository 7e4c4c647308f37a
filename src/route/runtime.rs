//! Runtime routes: routes sent over `POST /__admin/routes`, kept beside the route file's and tried before them.
//!
//! One router answers everything: each load of the route file, and each change to the runtime routes, builds a
//! router from the file's checked config with the runtime routes in front (newest first), so that matching, the
//! near-miss 404, coverage and the journal treat both alike and the plain-route path pays nothing for them.

use std::path::Path;
use std::sync::Arc;

use crate::config::error::{LoadError, LoadErrors};
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
    /// The route.
    pub route: RouteConfig,
}

/// Checks `text` (one or more `[[route]]` tables) as `POST /__admin/routes` receives it: with the route file's
/// checks, body files relative to `base_dir`. Ids are given from `next_id` on.
pub fn check(text: &str, base_dir: &Path, post: u64, next_id: u64) -> Result<Vec<RuntimeRoute>, LoadErrors> {
    let name = Path::new(RUNTIME_SOURCE);
    // `[server]` and `include` belong to the file: say so, rather than apply or ignore them.
    if let Ok(table) = text.parse::<toml::Table>() {
        if let Some(key) = table.keys().find(|k| k.as_str() != "route") {
            let message = format!("runtime routes take only `[[route]]` tables, and this text has `{key}`");
            let help = "put `[server]` settings and `include` in the route file; send only `[[route]]` tables here";
            return Err(LoadErrors(vec![LoadError::file(name, message, help)]));
        }
        if !table.contains_key("route") {
            let message = "the text has no `[[route]]` table".to_owned();
            let help = "send one or more routes, e.g.\n[[route]]\npath = \"/hello\"\nbody = \"hi\"";
            return Err(LoadErrors(vec![LoadError::file(name, message, help)]));
        }
    }
    let (config, errors) = crate::config::check_str(text, name, base_dir)?;
    if !errors.is_empty() {
        return Err(LoadErrors(errors));
    }
    let source = Arc::new(Source { path: name.to_path_buf(), text: text.to_owned() });
    Ok(config
        .routes
        .into_iter()
        .enumerate()
        .map(|(i, route)| RuntimeRoute { id: next_id + i as u64, post, source: Arc::clone(&source), route })
        .collect())
}

/// The file's config with `runtime` (newest first) in front, and each route's runtime id (none for the file's).
/// Without runtime routes it is the file's config as it is.
pub(crate) fn merge(file: &Config, runtime: &[RuntimeRoute]) -> (Config, Vec<Option<u64>>) {
    let mut config = file.clone();
    let mut routes = Vec::with_capacity(runtime.len() + config.routes.len());
    let mut ids = Vec::with_capacity(runtime.len() + config.routes.len());
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
        let mut route = r.route.clone();
        route.origin.source = source;
        routes.push(route);
        ids.push(Some(r.id));
    }
    ids.resize(ids.len() + config.routes.len(), None);
    routes.append(&mut config.routes);
    config.routes = routes;
    (config, ids)
}
