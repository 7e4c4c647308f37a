//! Hot reload: watch the files the routes were loaded from and reload when one of them changes.
//!
//! Editors and deploy tools save files in many ways: writing in place, truncating then writing, writing a temporary
//! file and renaming it over the old one (vim, JetBrains "safe write"), deleting and recreating, or, in a Kubernetes
//! ConfigMap mount, swapping a `..data` symlink to a new folder. Watching a file's inode misses most of these, so
//! the watcher watches **folders** (non-recursively): the folder of the route file, of every included file and body
//! file, of every include pattern, and of every symlink met on the way to each of them. The event kinds are not
//! trusted either: an event about a path that matters only means "look again". The watcher then re-reads every file
//! the routes depend on and compares content hashes with what the last load read ([`crate::config::inputs`]); only a
//! real change reloads, and the reload builds the new router off the request path before swapping it in ([`Live`]).
//!
//! Timing: notify-debouncer-full merges the raw events of each path for [`DEBOUNCE`]; the watcher then waits until
//! no relevant event came for [`QUIET`] (a save is several events; a tool may write a thousand times), but never
//! longer than [`MAX_DELAY`] after the first, so that a file written without pause still reloads, a few times a
//! second. The last content always wins: every burst ends with a look at the files as they are. A lost-events
//! signal from the OS (notify's rescan flag, an inotify queue overflow) reloads unconditionally.

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use notify_debouncer_full::notify::{self, RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};

use crate::reload::Live;

/// How long notify-debouncer-full holds a path's events before passing them on (also its polling tick).
pub const DEBOUNCE: Duration = Duration::from_millis(5);

/// How long the watcher waits after the last relevant event before it looks at the files. Longer than the
/// debouncer's tick, so that a burst that goes on is seen as one.
pub const QUIET: Duration = Duration::from_millis(10);

/// The longest the watcher waits after the first event of a burst before it looks at the files anyway.
pub const MAX_DELAY: Duration = Duration::from_millis(100);

/// How long stopping the watcher waits for its thread to end.
const STOP_WAIT: Duration = Duration::from_secs(2);

/// Symlinks followed from one file before giving up (the same bound as the kernel's).
const MAX_HOPS: usize = 40;

/// Why the watcher could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WatchError {
    /// The routes were not loaded from a file.
    #[error("there is no route file to watch: these routes were not loaded from a file")]
    NoFile,
    /// The OS refused a watch.
    #[error("cannot watch `{}` for changes: {source}\n  help: {}", path.display(), help(source))]
    Watch {
        /// The folder that could not be watched.
        path: PathBuf,
        /// What notify said.
        source: notify::Error,
    },
}

fn help(e: &notify::Error) -> &'static str {
    let limit = matches!(e.kind, notify::ErrorKind::MaxFilesWatch)
        || matches!(&e.kind, notify::ErrorKind::Io(io) if io.raw_os_error() == Some(24));
    if limit {
        "the OS limit on watches is reached; on Linux raise it, e.g. `sudo sysctl fs.inotify.max_user_watches=524288 \
         fs.inotify.max_user_instances=512`, or run with --no-watch and reload with SIGHUP or POST /__admin/reload"
    } else {
        "check that the folder exists and is readable, or run with --no-watch and reload with SIGHUP or POST \
         /__admin/reload"
    }
}

/// A running watcher. Dropping it (or [`WatchHandle::stop`]) stops watching.
#[derive(Debug)]
pub struct WatchHandle {
    tx: mpsc::Sender<Msg>,
    thread: Option<JoinHandle<()>>,
    checks: Arc<AtomicU64>,
}

impl WatchHandle {
    /// How many times the watcher has looked at the files after events (whether or not it reloaded). Tests wait on
    /// it to see that an event was handled even when it changed nothing.
    pub fn checks(&self) -> u64 {
        self.checks.load(Ordering::Acquire)
    }

    /// Stops watching and waits for the watcher's thread to end.
    pub fn stop(self) {}
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        let _ = self.tx.send(Msg::Stop);
        let Some(thread) = self.thread.take() else { return };
        // A bounded wait: a reload stuck in a read (a FIFO, a hung mount) must not keep the process from exiting.
        // The thread then ends on its own when the read does, or with the process.
        let deadline = Instant::now() + STOP_WAIT;
        while !thread.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        if thread.is_finished() {
            let _ = thread.join();
        } else {
            tracing::warn!("the file watcher is still busy reading the route files; not waiting for it");
        }
    }
}

enum Msg {
    Events(DebounceEventResult),
    Stop,
}

/// Starts watching the files `live` was loaded from, reloading it on change, on a thread of its own. The watches
/// are in place when this returns, so a change made after it is seen.
pub fn spawn(live: Arc<Live>) -> Result<WatchHandle, WatchError> {
    if live.source().is_none() {
        return Err(WatchError::NoFile);
    }
    let (tx, rx) = mpsc::channel();
    let events = tx.clone();
    let debouncer = new_debouncer(DEBOUNCE, Some(DEBOUNCE), move |result| {
        let _ = events.send(Msg::Events(result));
    })
    .map_err(|source| WatchError::Watch { path: live.source().unwrap_or(Path::new(".")).to_path_buf(), source })?;
    let checks = Arc::new(AtomicU64::new(0));
    let mut watcher = Watcher {
        live,
        debouncer,
        watched: BTreeSet::new(),
        failed: BTreeSet::new(),
        targets: Targets::default(),
        checks: checks.clone(),
    };
    let failures = watcher.rewatch();
    if watcher.watched.is_empty()
        && let Some((path, source)) = failures.into_iter().next()
    {
        return Err(WatchError::Watch { path, source });
    }
    let source = watcher.live.source().map(Path::display).map(|d| d.to_string()).unwrap_or_default();
    let folders = watcher.watched.len();
    tracing::info!("watching {source} for changes ({folders} folder{})", if folders == 1 { "" } else { "s" });
    tracing::debug!("watched folders: {:?}", watcher.watched);
    let thread = std::thread::Builder::new()
        .name("hotroute-watch".into())
        .spawn(move || watcher.run(rx))
        .map_err(|e| WatchError::Watch { path: PathBuf::from(source), source: notify::Error::io(e) })?;
    Ok(WatchHandle { tx, thread: Some(thread), checks })
}

struct Watcher {
    live: Arc<Live>,
    debouncer: Debouncer<RecommendedWatcher, RecommendedCache>,
    /// Folders with a watch in place.
    watched: BTreeSet<PathBuf>,
    /// Folders whose watch failed, so each failure is logged once.
    failed: BTreeSet<PathBuf>,
    targets: Targets,
    checks: Arc<AtomicU64>,
}

impl Watcher {
    fn run(mut self, rx: mpsc::Receiver<Msg>) {
        'events: loop {
            let mut batch = Batch::default();
            match rx.recv() {
                Ok(Msg::Events(result)) => batch.add(result, &self.targets, &self.watched),
                Ok(Msg::Stop) | Err(_) => break,
            };
            if !batch.wanted() {
                continue;
            }
            let first = Instant::now();
            let mut quiet_until = first + QUIET;
            loop {
                let deadline = quiet_until.min(first + MAX_DELAY);
                let Some(left) = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) else {
                    break;
                };
                match rx.recv_timeout(left) {
                    Ok(Msg::Events(result)) => {
                        if batch.add(result, &self.targets, &self.watched) {
                            quiet_until = Instant::now() + QUIET;
                        }
                    }
                    Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => break 'events,
                    Err(RecvTimeoutError::Timeout) => break,
                }
            }
            self.process(batch);
        }
        self.debouncer.stop();
    }

    fn process(&mut self, batch: Batch) {
        for folder in &batch.stale {
            // The folder itself was removed or replaced: its watch is gone or points at the old inode.
            let _ = self.debouncer.unwatch(folder);
            self.watched.remove(folder);
        }
        if batch.rescan {
            tracing::warn!("the file watcher lost events (the OS queue overflowed); reloading the routes to be safe");
            let _ = self.live.reload();
        } else if self.live.reload_if_changed().is_none() {
            tracing::debug!("files changed on disk, but not their content: not reloading");
        }
        // A reload can change what to watch (a new include or body file, a ConfigMap's new data folder). A change
        // made after the reload read the files but before the new watch was in place would go unseen: look again
        // whenever a folder was added.
        for _ in 0..3 {
            let before = self.watched.len();
            self.rewatch();
            let added = self.watched.len() > before;
            if !added || self.live.reload_if_changed().is_none() {
                break;
            }
        }
        self.checks.fetch_add(1, Ordering::AcqRel);
    }

    /// Brings the watches in line with the files the routes now depend on. Returns the folders that could not be
    /// watched.
    fn rewatch(&mut self) -> Vec<(PathBuf, notify::Error)> {
        let targets = Targets::of(&self.live);
        let mut failures = Vec::new();
        for folder in &targets.folders {
            if self.watched.contains(folder) {
                continue;
            }
            match self.debouncer.watch(folder, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    self.failed.remove(folder);
                    self.watched.insert(folder.clone());
                }
                Err(e) => {
                    if self.failed.insert(folder.clone()) {
                        tracing::warn!("cannot watch `{}`: {e}; changes there are not seen", folder.display());
                    }
                    failures.push((folder.clone(), e));
                }
            }
        }
        let unused: Vec<PathBuf> = self.watched.difference(&targets.folders).cloned().collect();
        for folder in unused {
            let _ = self.debouncer.unwatch(&folder);
            self.watched.remove(&folder);
        }
        self.targets = targets;
        failures
    }
}

/// What came in since the watcher last looked at the files.
#[derive(Debug, Default)]
struct Batch {
    relevant: bool,
    rescan: bool,
    stale: Vec<PathBuf>,
}

impl Batch {
    /// Takes in one result from the debouncer; returns whether it mattered.
    fn add(&mut self, result: DebounceEventResult, targets: &Targets, watched: &BTreeSet<PathBuf>) -> bool {
        let mut mattered = false;
        match result {
            Ok(events) => {
                for event in events {
                    if event.need_rescan() {
                        self.rescan = true;
                        mattered = true;
                    }
                    for path in &event.paths {
                        if watched.contains(path) {
                            self.stale.push(path.clone());
                            mattered = true;
                        }
                        mattered |= targets.relevant(path);
                    }
                }
            }
            Err(errors) => {
                for e in errors {
                    tracing::warn!("file watcher: {e}; looking at the route files again");
                }
                mattered = true;
            }
        }
        self.relevant |= mattered;
        mattered
    }

    fn wanted(&self) -> bool {
        self.relevant || self.rescan
    }
}

/// What to watch: folders, and the paths in them whose events matter.
#[derive(Debug, Default)]
struct Targets {
    folders: BTreeSet<PathBuf>,
    /// Paths (as the watched folder joined with a name) whose events matter.
    paths: HashSet<PathBuf>,
    /// Folders where any new file matters (include patterns).
    roots: HashSet<PathBuf>,
}

impl Targets {
    fn of(live: &Live) -> Targets {
        let inputs = live.inputs();
        let mut t = Targets::default();
        for file in live.source().into_iter().chain(inputs.files()) {
            t.add_file(file);
        }
        for root in inputs.glob_roots() {
            t.add_file(root);
            if let Ok(dir) = root.canonicalize() {
                t.folders.insert(dir.clone());
                t.roots.insert(dir);
            }
        }
        t
    }

    fn relevant(&self, path: &Path) -> bool {
        self.paths.contains(path) || path.parent().is_some_and(|dir| self.roots.contains(dir))
    }

    /// Watches the folder of `path` and records `path` in it; when it is a symlink, does the same for every link on
    /// the way to the real file (so that `routes.toml -> ..data/routes.toml` with `..data -> ..2024_01_01/` records
    /// `routes.toml` and `..data`, and watches the real file's folder too). A missing folder is stood in for by its
    /// nearest existing ancestor, so that its creation is seen.
    fn add_file(&mut self, path: &Path) {
        let Ok(abs) = std::path::absolute(path) else { return };
        let (mut dir, mut rest) = split_existing(&abs);
        let mut hops = 0;
        while let Some(name) = rest.pop_front() {
            if name == ".." {
                dir.pop();
                continue;
            }
            let next = dir.join(&name);
            let meta = std::fs::symlink_metadata(&next);
            let link = meta.as_ref().is_ok_and(|m| m.file_type().is_symlink()) && hops < MAX_HOPS;
            if rest.is_empty() || link || meta.is_err() {
                self.folders.insert(dir.clone());
                self.paths.insert(next.clone());
            }
            if link {
                hops += 1;
                let Ok(target) = std::fs::read_link(&next) else { return };
                let mut more = if target.is_absolute() {
                    let (anchor, more) = split_existing(&target);
                    dir = anchor;
                    more
                } else {
                    relative_components(&target)
                };
                more.extend(rest);
                rest = more;
            } else if meta.is_ok() {
                dir = next;
            } else {
                return;
            }
        }
    }
}

/// Splits an absolute path into its deepest existing folder (canonical) and the names after it, the file name at
/// least: the file itself is always walked, as it may be a symlink.
fn split_existing(path: &Path) -> (PathBuf, VecDeque<OsString>) {
    let mut rest = VecDeque::new();
    let mut cur = path;
    while let Some(name) = cur.file_name() {
        rest.push_front(name.to_owned());
        let Some(parent) = cur.parent() else { break };
        if let Ok(dir) = parent.canonicalize() {
            return (dir, rest);
        }
        cur = parent;
    }
    (cur.to_path_buf(), rest)
}

fn relative_components(path: &Path) -> VecDeque<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(name.to_owned()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, Event, EventKind, Flag};
    use notify_debouncer_full::DebouncedEvent;

    fn canonical(p: &Path) -> PathBuf {
        p.canonicalize().unwrap()
    }

    #[test]
    fn a_configmap_layout_records_the_links_and_watches_the_data_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let root = canonical(tmp.path());
        std::fs::create_dir(root.join("..2024_01_01")).unwrap();
        std::fs::write(root.join("..2024_01_01/routes.toml"), "").unwrap();
        std::os::unix::fs::symlink("..2024_01_01", root.join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/routes.toml", root.join("routes.toml")).unwrap();
        let mut t = Targets::default();
        t.add_file(&root.join("routes.toml"));
        assert!(t.paths.contains(&root.join("routes.toml")));
        assert!(t.paths.contains(&root.join("..data")));
        assert!(t.paths.contains(&root.join("..2024_01_01/routes.toml")));
        assert_eq!(t.folders, BTreeSet::from([root.clone(), root.join("..2024_01_01")]));
    }

    #[test]
    fn a_missing_folder_is_watched_through_its_existing_parent() {
        let tmp = tempfile::tempdir().unwrap();
        let root = canonical(tmp.path());
        let mut t = Targets::default();
        t.add_file(&root.join("data/deep/body.json"));
        assert_eq!(t.folders, BTreeSet::from([root.clone()]));
        assert!(t.paths.contains(&root.join("data")));
    }

    #[test]
    fn the_rescan_flag_asks_for_a_reload_and_unrelated_events_do_not() {
        let targets = Targets { paths: HashSet::from([PathBuf::from("/w/routes.toml")]), ..Targets::default() };
        let watched = BTreeSet::from([PathBuf::from("/w")]);
        let event = |path: &str| {
            DebouncedEvent::new(
                Event::new(EventKind::Create(CreateKind::File)).add_path(PathBuf::from(path)),
                Instant::now(),
            )
        };
        let mut batch = Batch::default();
        assert!(!batch.add(Ok(vec![event("/w/notes.txt")]), &targets, &watched));
        assert!(!batch.wanted());
        assert!(batch.add(Ok(vec![event("/w/routes.toml")]), &targets, &watched));
        assert!(batch.wanted() && !batch.rescan);
        let mut rescan = Batch::default();
        let overflow = DebouncedEvent::new(Event::new(EventKind::Other).set_flag(Flag::Rescan), Instant::now());
        assert!(rescan.add(Ok(vec![overflow]), &targets, &watched));
        assert!(rescan.rescan);
    }
}
