//! What one load of the routes read from disk: every file (route file, included files, body files) with a hash of
//! its content, and every include pattern with what it matched.
//!
//! The loader records the exact bytes it used, so the watcher can later re-read the same files and tell whether
//! anything changed since: a save that writes the same content, or an event about an unrelated file, costs a few
//! reads and no reload. Recording what was read (rather than re-reading after the load) matters: a save that lands
//! while a load runs must show up as a difference, not be absorbed into the stored hash.

use std::collections::HashSet;
use std::hash::Hasher;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The largest route file (or included file, or body file) read unless `[server] max_route_file` says otherwise.
pub const DEFAULT_MAX_ROUTE_FILE: u64 = 64 << 20;

/// Reads at most `limit` bytes of the file at `path`. A longer file is an error of kind `FileTooLarge` that names
/// its size (as far as it was read) and the setting, without reading the rest: a route file symlinked to a huge
/// file, or a FIFO that never ends, must not fill the memory. The buffer grows with what is read, never from the
/// file's metadata, which can lie (`/proc`, FIFOs, a file that grows while read).
pub fn read_bounded(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    // One byte past the limit tells "exactly at the limit" from "over it".
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        let size = std::fs::metadata(path).map(|m| m.len()).ok().filter(|&n| n > limit);
        let size = match size {
            Some(n) => format!("{n} bytes"),
            None => format!("more than {limit} bytes"),
        };
        return Err(std::io::Error::new(
            std::io::ErrorKind::FileTooLarge,
            format!(
                "the file is {size}, over the limit of {} ([server] max_route_file); raise the limit in the \
                 route file's [server] table, e.g. `max_route_file = \"256MiB\"`, or check that the path names the \
                 file you meant (a symlink to a large file?)",
                bytesize::ByteSize::b(limit).display().iec()
            ),
        ));
    }
    Ok(bytes)
}

/// The length and a 64-bit hash of a file's content; `None` where the file could not be read.
type Digest = Option<(u64, u64)>;

/// Every file and include pattern one load read, with what it found.
#[derive(Debug, Clone)]
pub struct Inputs {
    files: Vec<(PathBuf, Digest)>,
    seen: HashSet<PathBuf>,
    globs: Vec<GlobInput>,
    /// The most bytes read from one file (see [`read_bounded`]).
    limit: u64,
}

impl Default for Inputs {
    fn default() -> Self {
        Inputs { files: Vec::new(), seen: HashSet::new(), globs: Vec::new(), limit: DEFAULT_MAX_ROUTE_FILE }
    }
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
        let result = read_bounded(path, self.limit);
        self.record(path, digest(result.as_deref().ok()));
        result
    }

    /// Sets the most bytes read from one file from now on (`[server] max_route_file`, once the route file is read).
    pub(crate) fn set_limit(&mut self, limit: u64) {
        self.limit = limit;
    }

    /// The most bytes read from one file.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Whether the file at `path` still holds what this load read from it (false if it was not read).
    pub fn unchanged(&self, path: &Path) -> bool {
        self.files
            .iter()
            .any(|(p, recorded)| p == path && digest(read_bounded(p, self.limit).ok().as_deref()) == *recorded)
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
        self.files.iter().any(|(path, recorded)| digest(read_bounded(path, self.limit).ok().as_deref()) != *recorded)
            || self.globs.iter().any(|g| expand(&g.pattern).map_or(true, |now| now != g.matches))
    }

    /// Like [`Inputs::changed`], except that a file whose new content `ours` recognises (a resource's data the
    /// server wrote itself) counts as unchanged, and its record takes that content: the watcher then does not reload
    /// on the server's own writes.
    pub(crate) fn changed_except(&mut self, ours: impl Fn(&Path, &[u8]) -> bool) -> bool {
        let mut changed = false;
        for (path, recorded) in &mut self.files {
            let now = read_bounded(path, self.limit).ok();
            let d = digest(now.as_deref());
            if d == *recorded {
                continue;
            }
            match &now {
                Some(bytes) if ours(path, bytes) => *recorded = d,
                _ => changed = true,
            }
        }
        changed || self.globs.iter().any(|g| expand(&g.pattern).map_or(true, |now| now != g.matches))
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
