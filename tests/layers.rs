//! The architecture, checked: each top-level module of `src/` imports only the layers below it. The order is the
//! one `src/lib.rs` documents under "Layout"; an import that goes up (or a new top-level module not placed in the
//! order) fails this test, so that the layers cannot drift back into a cycle.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The layers, lowest first. A module may import its own layer and any layer listed before it.
const LAYERS: &[&[&str]] = &[
    &["util", "request"],
    &["config"],
    &["import"],
    &["route"],
    &["observe"],
    &["reload"],
    &["admin"],
    &["serve"],
    &["mock"],
];

fn rank(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules a source file names through `crate::`, including `use crate::{a::X, b::Y}` groups.
fn crate_references(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (i, _) in text.match_indices("crate::") {
        // Skip doc and line comments: a comment may name any module.
        let line_start = text[..i].rfind('\n').map_or(0, |n| n + 1);
        if text[line_start..i].contains("//") {
            continue;
        }
        let rest = &text[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                found.insert(name);
            }
        } else {
            found.insert(rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect());
        }
    }
    found.retain(|m| !m.is_empty());
    found
}

#[test]
fn every_import_goes_down_the_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut problems = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap();
        let top = rel.components().next().unwrap().as_os_str().to_string_lossy().trim_end_matches(".rs").to_owned();
        if top == "lib" || top == "main" {
            continue;
        }
        let Some(own) = rank(&top) else {
            problems.push(format!("src/{}: module `{top}` is not in the layer list of tests/layers.rs", rel.display()));
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        for used in crate_references(&text) {
            match rank(&used) {
                Some(r) if r <= own => {}
                Some(_) => {
                    problems.push(format!("src/{} ({top}) imports `crate::{used}`, a layer above it", rel.display()))
                }
                // Root re-exports (`crate::Live`) are the public API: a layer must name the module instead.
                None => problems
                    .push(format!("src/{} ({top}) names `crate::{used}`: import it from its module", rel.display())),
            }
        }
    }
    assert!(problems.is_empty(), "imports that break the layering of src/lib.rs:\n{}", problems.join("\n"));
}

#[test]
fn the_checker_sees_groups_and_ignores_comments() {
    let refs =
        crate_references("use crate::{serve::X, route::Y};\n// crate::mock in a comment\nlet a = crate::config::Z;");
    assert_eq!(refs.into_iter().collect::<Vec<_>>(), ["config", "route", "serve"]);
}
