//! What one load of the routes read from disk: every file (route file, included files, body files) with a hash of
//! its content, and every include pattern with what it matched.
//!
//! The loader records the exact bytes it used, so the watcher can later re-read the same files and tell whether
//! anything changed since: a save that writes the same content, or an event about an unrelated file, costs a few
//! reads and no reload. Recording what was read (rather than re-reading after the load) matters: a save that lands
//! while a load runs must show up as a difference, not be absorbed into the stored hash.

use std::collections::HashSet;
use std::hash::Hasher;
use std::path::{Path, PathBuf};

/// The length and a 64-bit hash of a file's content; `None` where the file could not be read.
type Digest = Option<(u64, u64)>;

/// Every file and include pattern one load read, with what it found.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    files: Vec<(PathBuf, Digest)>,
    seen: HashSet<PathBuf>,
    globs: Vec<GlobInput>,
}

/// An include pattern and the files it matched, in order.
#[derive(Debug, Clone)]
struct GlobInput {
    pattern: String,
    root: PathBuf,
    matches: Vec<PathBuf>,
}

impl Inputs {
    /// Reads the file at `path` and records what was read (or that it could not be read).
    pub(crate) fn read(&mut self, path: &Path) -> std::io::Result<Vec<u8>> {
        let result = std::fs::read(path);
        self.record(path, digest(result.as_deref().ok()));
        result
    }

    /// Records that the routes depend on `path`, which could not be read (e.g. a body file that does not exist yet).
    pub(crate) fn record_missing(&mut self, path: &Path) {
        self.record(path, None);
    }

    fn record(&mut self, path: &Path, digest: Digest) {
        // The first read wins: it is the content the routes were built from.
        if self.seen.insert(path.to_path_buf()) {
            self.files.push((path.to_path_buf(), digest));
        }
    }

    /// Expands the glob `pattern` (matches in alphabetical order, folders left out) and records the result.
    pub(crate) fn glob(&mut self, pattern: &str) -> Result<Vec<PathBuf>, GlobError> {
        let matches = expand(pattern)?;
        self.globs.push(GlobInput { pattern: pattern.to_owned(), root: glob_root(pattern), matches: matches.clone() });
        Ok(matches)
    }

    /// Whether a file or a pattern's matches differ from what was recorded. Reads every recorded file.
    pub fn changed(&self) -> bool {
        self.files.iter().any(|(path, recorded)| digest(std::fs::read(path).ok().as_deref()) != *recorded)
            || self.globs.iter().any(|g| expand(&g.pattern).map_or(true, |now| now != g.matches))
    }

    /// Whether nothing was recorded (the routes did not come from a file).
    pub fn is_empty(&self) -> bool {
        self.files.is_empty() && self.globs.is_empty()
    }

    /// The files read (or looked for), in the order they were first read.
    pub fn files(&self) -> impl Iterator<Item = &Path> {
        self.files.iter().map(|(p, _)| p.as_path())
    }

    /// For each include pattern, the folder where a new matching file would appear (the pattern's part before its
    /// first wildcard).
    pub fn glob_roots(&self) -> impl Iterator<Item = &Path> {
        self.globs.iter().map(|g| g.root.as_path())
    }
}

/// A bad glob pattern, or a folder it could not list.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub(crate) struct GlobError(pub String);

fn expand(pattern: &str) -> Result<Vec<PathBuf>, GlobError> {
    let options = glob::MatchOptions { require_literal_leading_dot: true, ..glob::MatchOptions::new() };
    let paths = glob::glob_with(pattern, options).map_err(|e| GlobError(e.to_string()))?;
    let mut out = Vec::new();
    for entry in paths {
        let path = entry.map_err(|e| GlobError(e.to_string()))?;
        if !path.is_dir() {
            out.push(path);
        }
    }
    Ok(out)
}

/// The longest leading part of `pattern` without wildcards.
fn glob_root(pattern: &str) -> PathBuf {
    let mut root = PathBuf::new();
    for component in Path::new(pattern).components() {
        let text = component.as_os_str().to_string_lossy();
        if text.contains(['*', '?', '[']) {
            break;
        }
        root.push(component);
    }
    if root == Path::new(pattern) { root.parent().map(Path::to_path_buf).unwrap_or_default() } else { root }
}

fn digest(bytes: Option<&[u8]>) -> Digest {
    // SipHash with fixed keys: stable for the life of the process, which is all a change check needs.
    bytes.map(|b| {
        let mut h = std::hash::DefaultHasher::new();
        h.write(b);
        (b.len() as u64, h.finish())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_glob_root_is_the_part_before_the_first_wildcard() {
        assert_eq!(glob_root("/a/routes.d/*.toml"), Path::new("/a/routes.d"));
        assert_eq!(glob_root("/a/*/x.toml"), Path::new("/a"));
        assert_eq!(glob_root("/a/b/x.toml"), Path::new("/a/b"));
    }

    #[test]
    fn a_changed_missing_or_new_file_is_a_change_and_the_same_content_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.toml");
        let b = dir.path().join("b.toml");
        std::fs::write(&a, "one").unwrap();
        let mut inputs = Inputs::default();
        inputs.read(&a).unwrap();
        inputs.record_missing(&b);
        let pattern = format!("{}/*.txt", glob::Pattern::escape(&dir.path().display().to_string()));
        assert!(inputs.glob(&pattern).unwrap().is_empty());
        assert!(!inputs.changed());
        std::fs::write(&a, "one").unwrap();
        assert!(!inputs.changed(), "rewriting the same bytes is no change");
        std::fs::write(&a, "two").unwrap();
        assert!(inputs.changed());
        std::fs::write(&a, "one").unwrap();
        std::fs::write(&b, "").unwrap();
        assert!(inputs.changed(), "a file that appeared is a change");
        std::fs::remove_file(&b).unwrap();
        std::fs::write(dir.path().join("new.txt"), "").unwrap();
        assert!(inputs.changed(), "a new match of an include pattern is a change");
    }
}
