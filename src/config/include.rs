//! `include = ["routes.d/*.toml"]`: routes from other files, added after the route file's own, in order.
//!
//! Patterns are tried in the order written, and the files each matches in alphabetical order. An included file holds
//! only `[[route]]` tables (the `[server]` settings and the includes live in the main file); its body files are
//! relative to its own folder. Every included file becomes a [`Source`], so its errors name it and its lines.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use http::HeaderMap;
use toml::Spanned;

use super::{Checker, RouteConfig, Source, base_dir_of, parse, read_route_file};
use crate::config::error::{LineIndex, LoadError};
use crate::config::inputs::Inputs;

/// Where the included files' sources, routes, errors and body files go.
pub(super) struct Merged<'a> {
    pub sources: &'a mut Vec<Source>,
    pub routes: &'a mut Vec<RouteConfig>,
    pub errors: &'a mut Vec<LoadError>,
    pub body_files: &'a mut Vec<PathBuf>,
}

/// Reads and checks the files that `patterns` (written in `out.sources[0]`) name, relative to `base_dir`.
pub(super) fn add_included(
    patterns: &[Spanned<String>],
    base_dir: &Path,
    server_headers: &HeaderMap,
    mut out: Merged<'_>,
    inputs: &mut Inputs,
) {
    // The route file itself is never included again (`include = ["*.toml"]` next to it), nor is a file twice.
    let mut seen: HashSet<PathBuf> = out.sources[0].path.canonicalize().into_iter().collect();
    for pattern in patterns {
        let rel = pattern.get_ref();
        let main = &out.sources[0];
        let error =
            |message: String, help: &str| LoadError::at(&main.path, &main.text, pattern.span(), message, Some(help));
        if rel.trim().is_empty() {
            out.errors
                .push(error("an empty include pattern".into(), "write a path or pattern, e.g. \"routes.d/*.toml\""));
            continue;
        }
        let full = if Path::new(rel).is_absolute() || base_dir == Path::new(".") {
            rel.clone()
        } else {
            // The folder is taken literally: a `[` in its name is not a wildcard.
            format!("{}/{rel}", glob::Pattern::escape(&base_dir.to_string_lossy()))
        };
        match inputs.glob(&full) {
            Err(e) => out.errors.push(error(
                format!("cannot use include pattern `{rel}`: {e}"),
                "write a path or a glob relative to this file's folder, e.g. \"routes.d/*.toml\"",
            )),
            Ok(files) if files.is_empty() && !rel.contains(['*', '?', '[']) => {
                let literal = base_dir.join(rel);
                out.errors.push(if literal.is_dir() {
                    error(
                        format!("include `{rel}` is a folder"),
                        &format!(
                            "include the route files in it with a pattern, e.g. \"{}/*.toml\"",
                            rel.trim_end_matches('/')
                        ),
                    )
                } else {
                    error(
                        format!("included file `{}` does not exist", literal.display()),
                        "create it, or remove it from `include`; the path is relative to this file's folder",
                    )
                });
            }
            Ok(files) => {
                for file in files {
                    if seen.insert(file.canonicalize().unwrap_or_else(|_| file.clone())) {
                        add_file(&file, server_headers, &mut out, inputs);
                    }
                }
            }
        }
    }
}

fn add_file(path: &Path, server_headers: &HeaderMap, out: &mut Merged<'_>, inputs: &mut Inputs) {
    let text = match read_route_file(path, inputs) {
        Ok(text) => text,
        Err(e) => return out.errors.push(e),
    };
    let source = Source { path: path.to_path_buf(), text };
    let spec = match parse(&source) {
        Ok(spec) => spec,
        Err(e) => return out.errors.push(e),
    };
    if let Some(server) = &spec.server {
        out.errors.push(LoadError::at(
            path,
            &source.text,
            server.span(),
            "an included file cannot have a `[server]` table",
            Some("move these settings to the route file that includes this one"),
        ));
    }
    if let Some(first) = spec.include.first() {
        out.errors.push(LoadError::at(
            path,
            &source.text,
            first.span(),
            "an included file cannot include other files",
            Some("list the pattern in the main route file's `include` instead"),
        ));
    }
    let index = out.sources.len();
    out.sources.push(source);
    let base = base_dir_of(path);
    let mut checker = Checker {
        source: &out.sources[index],
        source_index: index,
        base_dir: &base,
        errors: Vec::new(),
        body_files: Vec::new(),
        inputs,
        lines: LineIndex::new(&out.sources[index].text),
    };
    for route in &spec.route {
        if let Some(rc) = checker.route(route, server_headers) {
            out.routes.push(rc);
        }
    }
    let Checker { errors, body_files, .. } = checker;
    out.errors.extend(errors);
    out.body_files.extend(body_files);
}
