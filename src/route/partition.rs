//! Partitions: per-test copies of the runtime state, for `[server] isolate = "header:x-test-id"`.
//!
//! Parallel tests sharing one server each send their own id; every piece of runtime state a request touches
//! (sequence positions and `count`, scenario states, resource data) is then kept per id, in a [`Partition`] made on
//! first use. Requests without the id use the default partition: the state the routes hold themselves, so a server
//! without `isolate` pays nothing.
//!
//! The partitions live in [`Partitions`], shared by the routers of successive reloads, bounded in number: past
//! [`MAX_PARTITIONS`] the oldest is dropped, with a log line. This is the one place that holds partitioned state, so
//! that another store can back it later.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use indexmap::IndexMap;

use super::resource::{Collection, Resource};
use crate::config::resource::IsolateKey;
use crate::request::RequestView;

/// The most partitions kept at once; the oldest goes first.
pub const MAX_PARTITIONS: usize = 1024;

/// The longest partition id taken (bytes); a longer one is cut, so a huge header cannot become a huge key.
pub const MAX_ID: usize = 256;

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every change under these locks is one map operation: a panic cannot leave one half made.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One partition's state.
#[derive(Debug, Default)]
pub struct Partition {
    /// Answer counts (sequence positions) by route key.
    counts: Mutex<HashMap<u64, u64>>,
    /// Scenario states by name; a scenario not here is in its start state.
    scenarios: Mutex<HashMap<String, Arc<String>>>,
    /// Resource data by resource path, made from the start data on first use.
    resources: Mutex<HashMap<String, Arc<Mutex<Collection>>>>,
}

impl Partition {
    /// Counts one more answer of the route with `key`: its 1-based count in this partition.
    pub(crate) fn next_count(&self, key: u64) -> u64 {
        let mut counts = locked(&self.counts);
        let n = counts.entry(key).or_insert(0);
        *n += 1;
        *n
    }

    /// The count the next answer of the route with `key` would get, without counting it (for a `HEAD`, which
    /// moves nothing).
    pub(crate) fn peek_count(&self, key: u64) -> u64 {
        locked(&self.counts).get(&key).copied().unwrap_or(0).saturating_add(1)
    }

    /// The state of scenario `name` in this partition, if it moved from its start.
    pub(crate) fn scenario(&self, name: &str) -> Option<Arc<String>> {
        locked(&self.scenarios).get(name).cloned()
    }

    /// Moves scenario `name` to `state` in this partition.
    pub(crate) fn set_scenario(&self, name: &str, state: Arc<String>) {
        locked(&self.scenarios).insert(name.to_owned(), state);
    }

    /// The partition's data of `resource`, made from its start data on first use.
    pub(crate) fn collection(&self, resource: &Resource) -> Arc<Mutex<Collection>> {
        let mut map = locked(&self.resources);
        if let Some(c) = map.get(resource.path()) {
            return Arc::clone(c);
        }
        let c = Arc::new(Mutex::new(resource.start_collection()));
        map.insert(resource.path().to_owned(), Arc::clone(&c));
        c
    }
}

/// Every partition, by id, oldest first.
#[derive(Debug, Default)]
pub struct Partitions {
    map: Mutex<IndexMap<String, Arc<Partition>>>,
}

impl Partitions {
    /// The partition `id`, made on first use; the oldest is dropped past [`MAX_PARTITIONS`].
    pub(crate) fn get(&self, id: &str) -> Arc<Partition> {
        let mut map = locked(&self.map);
        if let Some(p) = map.get(id) {
            return Arc::clone(p);
        }
        if map.len() >= MAX_PARTITIONS
            && let Some((old, _)) = map.shift_remove_index(0)
        {
            tracing::warn!(
                "isolate: {MAX_PARTITIONS} partitions in use, dropped the oldest (`{old}`); its state starts again if \
                 it is used again. Reset partitions a test is done with: POST /__admin/reset?isolate=ID"
            );
        }
        let p = Arc::new(Partition::default());
        map.insert(id.to_owned(), Arc::clone(&p));
        p
    }

    /// Drops partition `id` (its state starts again on its next request): whether it existed.
    pub fn reset(&self, id: &str) -> bool {
        locked(&self.map).shift_remove(id).is_some()
    }

    /// Drops every partition.
    pub fn clear(&self) -> usize {
        let mut map = locked(&self.map);
        let n = map.len();
        map.clear();
        n
    }

    /// How many partitions there are.
    pub fn len(&self) -> usize {
        locked(&self.map).len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The ids, oldest first.
    pub fn ids(&self) -> Vec<String> {
        locked(&self.map).keys().cloned().collect()
    }
}

/// The partition id `req` names by `key`, if any (cut to [`MAX_ID`] bytes).
pub fn id_of(key: &IsolateKey, req: &RequestView<'_>) -> Option<String> {
    let id = match key {
        IsolateKey::Header(name) => req.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned),
        IsolateKey::Query(name) => {
            req.uri.query().and_then(|q| crate::request::query_pairs(q).find(|(k, _)| k == name).map(|(_, v)| v))
        }
        IsolateKey::Cookie(name) => req
            .headers
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|kv| kv.trim().split_once('='))
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.to_owned()),
    }?;
    if id.is_empty() {
        return None;
    }
    let mut end = id.len().min(MAX_ID);
    while !id.is_char_boundary(end) {
        end -= 1;
    }
    Some(id[..end].to_owned())
}
