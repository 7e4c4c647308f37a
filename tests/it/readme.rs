//! The README's route-file examples load: every ```toml block is run through the loader, so the docs cannot drift
//! from the code. A block that is only part of a file (a table to paste into one) is marked ```toml fragment and is
//! checked as TOML only; the files a block names (`file`, `dir`, `include`) are made empty in a temp folder first.

use std::path::Path;

/// `(line, info string, text)` of each fenced block whose language is `toml`.
fn toml_blocks(readme: &str) -> Vec<(usize, String, String)> {
    let mut out = Vec::new();
    let mut open: Option<(usize, String, String)> = None;
    for (i, line) in readme.lines().enumerate() {
        match &mut open {
            None => {
                if let Some(info) = line.trim_start().strip_prefix("```")
                    && info.split_whitespace().next() == Some("toml")
                {
                    open = Some((i + 1, info.trim().to_owned(), String::new()));
                }
            }
            Some((_, _, text)) => {
                if line.trim_start().starts_with("```") {
                    out.push(open.take().unwrap());
                } else {
                    text.push_str(line);
                    text.push('\n');
                }
            }
        }
    }
    out
}

/// Creates what `text` names with `key = "value"` for `file`, `dir`, `fallback` and `include`, so that the
/// loader's checks of those files pass.
fn make_named_files(text: &str, dir: &Path) {
    let value: toml::Value = toml::from_str(text).unwrap();
    fn walk(v: &toml::Value, dir: &Path, folder: Option<&str>) {
        match v {
            toml::Value::Table(t) => {
                let own = t.get("dir").and_then(|d| d.as_str());
                for (k, v) in t {
                    match (k.as_str(), v) {
                        ("file", toml::Value::String(f)) => {
                            let p = dir.join(f);
                            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                            std::fs::write(p, "{}").unwrap();
                        }
                        ("dir", toml::Value::String(d)) => std::fs::create_dir_all(dir.join(d)).unwrap(),
                        ("fallback", toml::Value::String(f)) => {
                            let folder = dir.join(own.or(folder).unwrap_or("."));
                            std::fs::create_dir_all(&folder).unwrap();
                            std::fs::write(folder.join(f), "<h1>app</h1>").unwrap();
                        }
                        ("include", toml::Value::Array(list)) => {
                            for f in list.iter().filter_map(|f| f.as_str()) {
                                if !f.contains('*') {
                                    std::fs::write(dir.join(f), "").unwrap();
                                }
                            }
                        }
                        _ => walk(v, dir, own.or(folder)),
                    }
                }
            }
            toml::Value::Array(a) => a.iter().for_each(|v| walk(v, dir, folder)),
            _ => {}
        }
    }
    walk(&value, dir, None);
}

#[test]
fn every_toml_block_of_the_readme_loads() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let blocks = toml_blocks(&readme);
    assert!(blocks.len() >= 8, "found only {} toml blocks", blocks.len());
    let mut failures = Vec::new();
    for (line, info, text) in &blocks {
        if let Err(e) = toml::from_str::<toml::Value>(text) {
            failures.push(format!("README.md:{line}: not TOML: {e}"));
            continue;
        }
        if info.split_whitespace().any(|w| w == "fragment") {
            continue;
        }
        let dir = tempfile::tempdir().unwrap();
        make_named_files(text, dir.path());
        let path = dir.path().join("routes.toml");
        std::fs::write(&path, text).unwrap();
        if let Err(e) = hotroute::Router::load_file(&path) {
            failures.push(format!(
                "README.md:{line}: the block does not load (mark it ```toml fragment if it is part of a file):\n{e}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
