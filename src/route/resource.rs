//! Resources: a fake REST backend that remembers writes (json-server style). A `[[resource]] path = "/users"`
//! answers `GET`/`POST /users` and `GET`/`PUT`/`PATCH`/`DELETE /users/{id}` from a [`Collection`] in memory.
//!
//! The data of one resource is a [`Collection`]: the only place that holds resource state, behind a mutex, so that
//! another store (e.g. Redis for replicas) can take its place later. The default partition's collection belongs to
//! the [`Resource`]; each isolated partition (see [`super::partition`]) has its own copy, made from the start data on
//! first use.
//!
//! With `persist = true` every change of the default partition is written back to the data file: off the tokio
//! workers (a blocking thread), coalesced (a burst of writes becomes one or two file writes), atomically (a temp file
//! in the same folder, then a rename). The file watcher sees that write as a change and reloads; the reload keeps the
//! data in memory because the file holds what the server wrote (see [`Resource::adopt`]), so there is no loop, and a
//! hand edit (anything else) replaces the data.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use serde_json::{Map, Value, json};

use super::respond::{self, Body};
use super::state::{Created, NewId, RemoteState, Replaced, StartData, StateError};
use crate::config::resource::{ResourceConfig, data_digest, id_key};
use crate::request::{RequestData, RequestView};

/// Items per page when `_page` is given without `_per_page` (json-server's default).
const DEFAULT_PER_PAGE: usize = 10;
/// The largest `_per_page`.
const MAX_PER_PAGE: usize = 10_000;
/// How long a persisted change waits for more before the file is written: a burst becomes one write.
const COALESCE: Duration = Duration::from_millis(20);

/// One item and its JSON, made when the item is written: a `GET` (the common case) sends the bytes as they are.
#[derive(Debug, Clone)]
struct Stored {
    map: Map<String, Value>,
    json: Box<[u8]>,
    /// Its place in the list order (see [`Collection::order`]).
    seq: u64,
}

/// An item's JSON as a response body that holds the item. Among many items a lookup is bound by cache misses: a
/// `Bytes` (or a stored `content-length` value) of the item's own is one more heap object whose reference count
/// each answer writes, where this touches only the item just read.
struct ItemJson(Arc<Stored>);

impl AsRef<[u8]> for ItemJson {
    fn as_ref(&self) -> &[u8] {
        &self.0.json
    }
}

impl Stored {
    fn new(map: Map<String, Value>, seq: u64) -> Self {
        let json = serde_json::to_vec(&map).unwrap_or_default().into_boxed_slice();
        Stored { map, json, seq }
    }

    /// An item as the shared store holds it: its JSON, and (with `parse`, for filters and sorts) its fields.
    fn from_json(json: Vec<u8>, parse: bool) -> Arc<Self> {
        let map = if parse {
            match serde_json::from_slice::<Value>(&json) {
                Ok(Value::Object(map)) => map,
                _ => Map::new(),
            }
        } else {
            Map::new()
        };
        Arc::new(Stored { map, json: json.into_boxed_slice(), seq: 0 })
    }

    /// Makes the JSON again after a change of `map`.
    fn refresh(&mut self) {
        self.json = serde_json::to_vec(&self.map).unwrap_or_default().into_boxed_slice();
    }

    /// The answer that sends this item: `200` to a `GET`, `201` to a `POST` (with its `Location`).
    fn answer(self: &Arc<Self>, status: StatusCode, method: &Method, location: Option<HeaderValue>) -> Response<Body> {
        let mut headers = HeaderMap::with_capacity(3);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        // Made per answer: a small allocation from the thread's hot heap costs less than reading a stored one.
        headers.insert(CONTENT_LENGTH, HeaderValue::from(self.json.len()));
        if let Some(location) = location {
            headers.insert(LOCATION, location);
        }
        let body = if method == Method::HEAD { Bytes::new() } else { Bytes::from_owner(ItemJson(Arc::clone(self))) };
        let mut res = Response::new(Body::full(body));
        *res.status_mut() = status;
        *res.headers_mut() = headers;
        res
    }
}

/// An item's id as the collection keys it. Ids compare as text (`5` and `"5"` are one id, as in the path); a text
/// that is a plain integer is kept as the integer, so that the usual ids are hashed and compared without reading a
/// string on the heap (a lookup among many items is bound by memory, not by arithmetic).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Int(i64),
    Text(Box<str>),
}

impl Key {
    fn of(text: &str) -> Key {
        // Only the integer's own spelling: `007`, `+7` and `-0` are other ids than `7` and `0`.
        let digits = text.strip_prefix('-').unwrap_or(text);
        let canonical = !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
            && (digits.len() == 1 || !digits.starts_with('0'))
            && !(digits == "0" && text.starts_with('-'));
        match text.parse::<i64>() {
            Ok(n) if canonical => Key::Int(n),
            _ => Key::Text(text.into()),
        }
    }
}

/// The items of one resource in one partition, by id, in insertion order.
///
/// Each item is held twice behind one `Arc`: by id (a `GET` is one hash lookup) and by its insertion sequence (the
/// list order). Removing an item is then O(log n) and keeps the order of the others, where removing from an
/// insertion-ordered map shifts every later item.
#[derive(Debug, Clone, Default)]
pub struct Collection {
    /// Items by id. The default hasher (SipHash, keyed per process): ids come from clients.
    by_id: HashMap<Key, Arc<Stored>>,
    /// Items with an id by insertion sequence: the list order.
    order: BTreeMap<u64, Arc<Stored>>,
    /// The sequence number of the next item.
    next_seq: u64,
    /// Items without an id (only from the start data): listed, but not addressable.
    anonymous: Vec<Stored>,
    /// The largest integer id, for the next `POST`.
    max_int: i64,
    /// Whether the ids are strings: a `POST` without an id then gets a UUID.
    string_ids: bool,
}

impl Collection {
    /// A collection holding `data` (already checked: objects, unique string or number ids).
    pub fn new(data: &[Map<String, Value>], id: &str) -> Self {
        let mut c = Collection { by_id: HashMap::with_capacity(data.len()), ..Collection::default() };
        for item in data {
            match item.get(id) {
                Some(value) => {
                    c.note_id(value);
                    if let Some(key) = id_key(value) {
                        c.insert(Key::of(&key), item.clone());
                    }
                }
                None => c.anonymous.push(Stored::new(item.clone(), 0)),
            }
        }
        c
    }

    /// Adds an item at the end of the list order, and answers it.
    fn insert(&mut self, key: Key, map: Map<String, Value>) -> Arc<Stored> {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.put(key, Stored::new(map, seq))
    }

    /// Puts `stored` under `key` and at its sequence place, replacing what was there.
    fn put(&mut self, key: Key, stored: Stored) -> Arc<Stored> {
        let stored = Arc::new(stored);
        self.order.insert(stored.seq, Arc::clone(&stored));
        self.by_id.insert(key, Arc::clone(&stored));
        stored
    }

    fn get(&self, id: &str) -> Option<&Arc<Stored>> {
        self.by_id.get(&Key::of(id))
    }

    /// Takes the item with `id` out of the collection, in O(log n).
    fn remove(&mut self, id: &str) -> Option<(Key, Stored)> {
        let (key, stored) = self.by_id.remove_entry(&Key::of(id))?;
        self.order.remove(&stored.seq);
        // Both references are gone now, so the item is moved out, not copied.
        Some((key, Arc::try_unwrap(stored).unwrap_or_else(|shared| (*shared).clone())))
    }

    fn note_id(&mut self, value: &Value) {
        match value {
            Value::String(_) => self.string_ids = true,
            Value::Number(n) => self.max_int = self.max_int.max(n.as_i64().unwrap_or(0)),
            _ => {}
        }
    }

    /// How many items it holds.
    pub(crate) fn len(&self) -> usize {
        self.by_id.len() + self.anonymous.len()
    }

    fn all(&self) -> impl Iterator<Item = &Stored> {
        self.anonymous.iter().chain(self.order.values().map(|s| &**s))
    }

    /// The items as the data file holds them: a JSON array.
    fn to_json_bytes(&self) -> Vec<u8> {
        let all: Vec<&Map<String, Value>> = self.all().map(|s| &s.map).collect();
        let mut bytes = serde_json::to_vec_pretty(&all).unwrap_or_else(|_| b"[]".to_vec());
        bytes.push(b'\n');
        bytes
    }
}

/// Where a persisted resource writes, and what it last wrote.
#[derive(Debug)]
struct Persist {
    file: PathBuf,
    /// A write is queued and has not taken its snapshot yet: later changes ride along with it.
    scheduled: AtomicBool,
    /// Held while one write takes its snapshot and renames, so that writes land in the order of their snapshots.
    writing: Mutex<()>,
    /// The digests of the bytes last written (newest last), so that a reload can tell the server's own writes from
    /// a hand edit: a reload may read the file one write behind the latest, so a few are kept.
    written: Mutex<std::collections::VecDeque<u64>>,
    /// Set when a hand edit replaced the data: a write still queued must not overwrite the edit.
    retired: AtomicBool,
}

/// How many of the server's own writes a reload recognises.
const WRITES_REMEMBERED: usize = 16;

impl Persist {
    fn record(&self, digest: u64) {
        let mut w = self.written.lock().unwrap_or_else(|e| e.into_inner());
        if w.len() >= WRITES_REMEMBERED {
            w.pop_front();
        }
        w.push_back(digest);
    }

    fn wrote(&self, digest: u64) -> bool {
        self.written.lock().unwrap_or_else(|e| e.into_inner()).contains(&digest)
    }
}

/// One `[[resource]]`, ready to answer: its config and the default partition's data.
#[derive(Debug)]
pub struct Resource {
    config: Arc<ResourceConfig>,
    data: Arc<Mutex<Collection>>,
    persist: Option<Arc<Persist>>,
    /// The definition identity in a shared store: replicas serving the same resource share its data there, and a
    /// changed one (path, id field or start data) starts fresh, as a changed sequence does.
    definition: u64,
    /// The start data as the shared store loads it, made on first need (never without a store).
    start: OnceLock<Arc<StartData>>,
}

/// What a request asks of a resource: the collection, or one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// `/users`.
    Collection,
    /// `/users/{id}`.
    Item,
}

fn lock(m: &Mutex<Collection>) -> MutexGuard<'_, Collection> {
    // A panic while holding the lock cannot leave a half-made change: every change is one map operation.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Resource {
    /// A resource with its start data.
    pub fn new(config: ResourceConfig) -> Self {
        let data = Arc::new(Mutex::new(Collection::new(&config.data, &config.id)));
        let persist = match (&config.file, config.persist) {
            (Some(file), true) => Some(Arc::new(Persist {
                file: file.clone(),
                scheduled: AtomicBool::new(false),
                writing: Mutex::new(()),
                written: Mutex::new(std::collections::VecDeque::from([config.digest])),
                retired: AtomicBool::new(false),
            })),
            _ => None,
        };
        let definition = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            ("resource", &config.path, &config.id, config.digest).hash(&mut h);
            h.finish()
        };
        Resource { config: Arc::new(config), data, persist, definition, start: OnceLock::new() }
    }

    /// The start data as the shared store loads it: each item's key and JSON (made once).
    fn start_data(&self) -> Arc<StartData> {
        Arc::clone(self.start.get_or_init(|| {
            let c = self.start_collection();
            let mut items = Vec::with_capacity(c.len());
            items.extend(c.anonymous.iter().map(|s| (None, s.json.to_vec())));
            let id_field = &self.config.id;
            items.extend(c.order.values().map(|s| (s.map.get(id_field).and_then(id_key), s.json.to_vec())));
            Arc::new(StartData { max_int: c.max_int, string_ids: c.string_ids, items })
        }))
    }

    /// The collection path, e.g. `/users`.
    pub fn path(&self) -> &str {
        &self.config.path
    }

    /// The item path, e.g. `/users/{id}`.
    pub fn item_path(&self) -> String {
        format!("{}/{{id}}", self.config.path)
    }

    /// The checked config.
    pub fn config(&self) -> &ResourceConfig {
        &self.config
    }

    /// How many items the default partition holds.
    pub fn len(&self) -> usize {
        lock(&self.data).len()
    }

    /// Whether the default partition holds no item.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the resource writes its data to `path`.
    pub(crate) fn persists_to(&self, path: &std::path::Path) -> bool {
        self.persist.as_ref().is_some_and(|p| p.file == path)
    }

    /// Whether data with `digest` is among what the resource wrote last.
    pub(crate) fn wrote(&self, digest: u64) -> bool {
        self.persist.as_ref().is_some_and(|p| p.wrote(digest))
    }

    /// A fresh collection with the start data, for a new partition.
    pub(crate) fn start_collection(&self) -> Collection {
        Collection::new(&self.config.data, &self.config.id)
    }

    /// Takes over `previous`'s data on a reload when this is the same resource and its data source did not change,
    /// or holds what the server wrote itself; otherwise (a hand edit, new inline data) the new start data stands.
    pub(crate) fn adopt(&mut self, previous: &Resource) {
        let (a, b) = (&*self.config, &*previous.config);
        let same = a.path == b.path && a.id == b.id && a.file == b.file && a.persist == b.persist;
        if !same {
            return;
        }
        let own_write = previous.persist.as_ref().is_some_and(|p| p.wrote(a.digest));
        if a.digest == b.digest || own_write {
            self.data = Arc::clone(&previous.data);
            if let Some(p) = &previous.persist {
                self.persist = Some(Arc::clone(p));
            }
        } else if let Some(p) = &previous.persist {
            p.retired.store(true, Ordering::Release);
        }
    }

    /// Puts the default partition's data back to the start data (written back when persisted).
    pub fn reset(&self) {
        *lock(&self.data) = self.start_collection();
        self.persist_later();
    }

    /// Answers a request for the collection or an item. `data` is the partition's collection, or none for the
    /// default partition (the only one written back to the file).
    pub(crate) fn answer(
        &self,
        target: Target,
        raw_id: Option<&str>,
        req: &RequestData<'_>,
        data: Option<&Mutex<Collection>>,
    ) -> Response<Body> {
        let (store, default) = match data {
            Some(d) => (d, false),
            None => (&*self.data, true),
        };
        let method = req.view.method;
        // Borrowed unless the id holds a `%` escape: most ids are plain, and a GET then allocates nothing for it.
        let id = raw_id.map(|raw| percent_encoding::percent_decode_str(raw).decode_utf8_lossy());
        let (response, changed) = match (target, method, id) {
            (Target::Collection, &Method::GET | &Method::HEAD, _) => (self.list(store, req), false),
            (Target::Collection, &Method::POST, _) => self.create(store, req),
            (Target::Item, &Method::GET | &Method::HEAD, Some(id)) => (self.get(store, &id, method), false),
            (Target::Item, &Method::PUT, Some(id)) => self.replace(store, &id, req, false),
            (Target::Item, &Method::PATCH, Some(id)) => self.replace(store, &id, req, true),
            (Target::Item, &Method::DELETE, Some(id)) => self.delete(store, &id),
            // The router sends only the methods each path lists.
            _ => (error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed here".to_owned(), ""), false),
        };
        if changed && default {
            self.persist_later();
        }
        response
    }

    fn list(&self, store: &Mutex<Collection>, req: &RequestData<'_>) -> Response<Body> {
        let query = match Query::parse(req.query()) {
            Ok(q) => q,
            Err((message, help)) => return error(StatusCode::BAD_REQUEST, message, &help),
        };
        let data = lock(store);
        list_answer(&query, data.all(), req.view)
    }
}

/// The answer to a listing: `all` filtered, sorted and paged as `query` asks.
fn list_answer<'a>(query: &Query, all: impl Iterator<Item = &'a Stored>, view: &RequestView<'_>) -> Response<Body> {
    {
        let (body, total, link) = {
            let mut items: Vec<&Stored> = all.filter(|item| query.filters.iter().all(|f| f.holds(&item.map))).collect();
            if !query.sort.is_empty() {
                items.sort_by(|a, b| {
                    for (field, desc) in &query.sort {
                        let o = compare(a.map.get(field), b.map.get(field));
                        let o = if *desc { o.reverse() } else { o };
                        if o.is_ne() {
                            return o;
                        }
                    }
                    std::cmp::Ordering::Equal
                });
            }
            let total = items.len();
            let (page, link) = match query.page {
                None => (&items[..], None),
                Some((page, per)) => {
                    let start = (page - 1).saturating_mul(per).min(total);
                    let end = start.saturating_add(per).min(total);
                    (&items[start..end], Some(link_header(view.uri, page, per, total)))
                }
            };
            // The items' JSON as made when they were written, joined: nothing is serialized again.
            let mut body = Vec::with_capacity(2 + page.iter().map(|s| s.json.len() + 1).sum::<usize>());
            body.push(b'[');
            for (i, item) in page.iter().enumerate() {
                if i > 0 {
                    body.push(b',');
                }
                body.extend_from_slice(&item.json);
            }
            body.push(b']');
            (body, total, link)
        };
        let mut headers = json_headers();
        headers.insert("x-total-count", HeaderValue::from(total));
        if let Some(link) = link.and_then(|l| HeaderValue::from_str(&l).ok()) {
            headers.insert(http::header::LINK, link);
        }
        respond::with_body(StatusCode::OK, headers, Bytes::from(body), view.method)
    }
}

impl Resource {
    fn get(&self, store: &Mutex<Collection>, id: &str, method: &Method) -> Response<Body> {
        // Made under the lock: a few reference-count increments, no allocation but the header map.
        match lock(store).get(id) {
            Some(item) => item.answer(StatusCode::OK, method, None),
            None => self.not_found(id),
        }
    }

    fn not_found(&self, id: &str) -> Response<Body> {
        error(
            StatusCode::NOT_FOUND,
            format!("no item with {} `{id}` in {}", self.config.id, self.config.path),
            &format!("GET {} lists the items; POST {} adds one", self.config.path, self.config.path),
        )
    }

    fn create(&self, store: &Mutex<Collection>, req: &RequestData<'_>) -> (Response<Body>, bool) {
        let body = match body_object(req, false) {
            Ok(b) => b,
            Err(response) => return (*response, false),
        };
        let id_field = &self.config.id;
        let mut data = lock(store);
        if data.len() >= self.config.max_items {
            let message = format!("{} holds {} items, its max_items", self.config.path, self.config.max_items);
            let help = "delete items, reset (POST /__admin/reset), or raise `max_items` on the resource";
            return (error(StatusCode::INSUFFICIENT_STORAGE, message, help), false);
        }
        let (key, id_value) = match body.get(id_field) {
            Some(value) => match id_key(value) {
                Some(key) if data.by_id.contains_key(&Key::of(&key)) => {
                    let message = format!("an item with {id_field} `{key}` already exists in {}", self.config.path);
                    let help = format!(
                        "leave `{id_field}` out to get a new one, or PUT {}/{key} to replace it",
                        self.config.path
                    );
                    return (error(StatusCode::CONFLICT, message, &help), false);
                }
                Some(key) => (key, value.clone()),
                None => {
                    let message = format!("`{id_field}` must be a string or a number");
                    return (error(StatusCode::BAD_REQUEST, message, "leave it out to get a new one"), false);
                }
            },
            None if data.string_ids => {
                let id = uuid_v4();
                (id.clone(), Value::String(id))
            }
            None => {
                let next = data.max_int.saturating_add(1);
                (next.to_string(), Value::from(next))
            }
        };
        let location = self.location(&key);
        let key = Key::of(&key);
        data.note_id(&id_value);
        // The id first, then the fields as sent: moved to the front of the body's own map (a sent id is moved, not
        // repeated), so the item is not built and hashed a second time.
        let mut item = body;
        item.shift_insert(0, id_field.clone(), id_value);
        let stored = data.insert(key, item);
        drop(data);
        let response = stored.answer(StatusCode::CREATED, &Method::POST, location);
        (response, true)
    }

    /// The `Location` of the item with `key`: the collection path and the id as one segment, made in one buffer
    /// that the header value then owns (no copy).
    fn location(&self, key: &str) -> Option<HeaderValue> {
        let mut location = String::with_capacity(self.config.path.len() + 1 + key.len());
        location.push_str(&self.config.path);
        location.push('/');
        let _ = write!(location, "{}", percent_encoding::utf8_percent_encode(key, SEGMENT));
        HeaderValue::from_maybe_shared(Bytes::from(location)).ok()
    }

    fn replace(
        &self,
        store: &Mutex<Collection>,
        id: &str,
        req: &RequestData<'_>,
        patch: bool,
    ) -> (Response<Body>, bool) {
        let body = match body_object(req, patch) {
            Ok(b) => b,
            Err(response) => return (*response, false),
        };
        let mut data = lock(store);
        if data.get(id).is_none() {
            return (self.not_found(id), false);
        }
        if let Err(response) = self.check_id(&body, id, patch) {
            return (*response, false);
        }
        // Taken out and put back at its own sequence place: the list order does not change.
        let Some((key, mut stored)) = data.remove(id) else { return (self.not_found(id), false) };
        self.change(&mut stored.map, body, patch);
        stored.refresh();
        let stored = data.put(key, stored);
        drop(data);
        let response = stored.answer(StatusCode::OK, req.view.method, None);
        (response, true)
    }

    /// A `PUT` or `PATCH` body may name the item's id only as it is (or, in a patch, as `null`).
    fn check_id(&self, body: &Map<String, Value>, id: &str, patch: bool) -> Result<(), Box<Response<Body>>> {
        let id_field = &self.config.id;
        if let Some(sent) = body.get(id_field)
            && id_key(sent).as_deref() != Some(id)
            && !(patch && sent.is_null())
        {
            let message = format!("the body's `{id_field}` is {sent}, and the path's is `{id}`: an id cannot change");
            let help = format!("leave `{id_field}` out of the body, or send the same value");
            return Err(Box::new(error(StatusCode::BAD_REQUEST, message, &help)));
        }
        Ok(())
    }

    /// Makes `item` what a `PUT` (or, with `patch`, a `PATCH`) of `body` asks (checked by [`Resource::check_id`]);
    /// its id stays.
    fn change(&self, item: &mut Map<String, Value>, body: Map<String, Value>, patch: bool) {
        let id_field = &self.config.id;
        let current = item.get(id_field).cloned().unwrap_or(Value::Null);
        if patch {
            let mut value = Value::Object(std::mem::take(item));
            merge_patch(&mut value, &Value::Object(body));
            *item = match value {
                Value::Object(m) => m,
                _ => Map::new(),
            };
        } else {
            let mut new = Map::with_capacity(body.len() + 1);
            new.insert(id_field.clone(), Value::Null);
            new.extend(body.into_iter().filter(|(k, _)| k != id_field));
            *item = new;
        }
        // The id stays what it was (a merge patch of `null` would have removed it).
        item.insert(id_field.clone(), current);
    }

    fn delete(&self, store: &Mutex<Collection>, id: &str) -> (Response<Body>, bool) {
        if lock(store).remove(id).is_none() {
            return (self.not_found(id), false);
        }
        let mut res = Response::new(Body::full(Bytes::new()));
        *res.status_mut() = StatusCode::NO_CONTENT;
        (res, true)
    }

    /// Queues a write of the default partition's data to the file, unless one is queued already (it will take this
    /// change along: its snapshot is taken after it starts).
    fn persist_later(&self) {
        let Some(persist) = &self.persist else { return };
        if persist.scheduled.swap(true, Ordering::AcqRel) {
            return;
        }
        let (persist, data) = (Arc::clone(persist), Arc::clone(&self.data));
        let job = move || {
            std::thread::sleep(COALESCE);
            let _writing = persist.writing.lock().unwrap_or_else(|e| e.into_inner());
            // From here a change queues another write, which waits for this one to finish.
            persist.scheduled.store(false, Ordering::Release);
            if persist.retired.load(Ordering::Acquire) {
                return;
            }
            let bytes = lock(&data).to_json_bytes();
            // Recorded before the rename: the watcher may reload as soon as the file changes.
            persist.record(data_digest(&bytes));
            if let Err(e) = write_atomic(&persist.file, &bytes) {
                tracing::warn!(
                    "cannot write resource data to `{}`: {e}; the change is kept in memory only. Check that the \
                     folder is writable and has space",
                    persist.file.display()
                );
            }
        };
        // Off the tokio workers: file writes block.
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => drop(handle.spawn_blocking(job)),
            Err(_) => drop(std::thread::spawn(job)),
        }
    }
}

/// How many times a `PUT` or `PATCH` in the shared store reads and writes again when another replica changed the
/// item in between: a few, as each retry follows a write that did land.
const SHARED_RETRIES: usize = 16;

/// A resource whose data lives in the shared store (`[server] state`): the same answers as in process, each made
/// with one atomic script (two for `PUT` and `PATCH`: a read, then a compare-and-set write). The data file is not
/// written back (`persist`): the store is where the data lives.
impl Resource {
    /// Answers a request for the collection or an item from partition `partition` of `store`. Err: the store
    /// failed or did not answer in time (the caller answers 503).
    pub(crate) async fn answer_shared(
        &self,
        target: Target,
        raw_id: Option<&str>,
        view: &RequestView<'_>,
        store: &RemoteState,
        partition: &str,
    ) -> Result<Response<Body>, StateError> {
        let keys = store.resource_keys(partition, self.definition);
        let start = || self.start_data();
        let method = view.method;
        let id = raw_id.map(|raw| percent_encoding::percent_decode_str(raw).decode_utf8_lossy());
        // What needs the parsed request is done before the first await: `RequestData` is not `Sync`.
        Ok(match (target, method, id) {
            (Target::Collection, &Method::GET | &Method::HEAD, _) => {
                let query = match Query::parse(RequestData::new(view).query()) {
                    Ok(q) => q,
                    Err((message, help)) => return Ok(error(StatusCode::BAD_REQUEST, message, &help)),
                };
                // Filters, sorts and pages are applied here, to every item fetched: one round trip, and work
                // (and bytes from Redis) in proportion to the resource's size.
                let parse = !query.filters.is_empty() || !query.sort.is_empty();
                let items: Vec<Arc<Stored>> = (store.list_items(&keys, &start).await?.into_iter())
                    .map(|json| Stored::from_json(json, parse))
                    .collect();
                list_answer(&query, items.iter().map(|s| &**s), view)
            }
            (Target::Collection, &Method::POST, _) => {
                let body = match body_object(&RequestData::new(view), false) {
                    Ok(b) => b,
                    Err(response) => return Ok(*response),
                };
                self.create_shared(body, view.body, store, &keys, &start).await?
            }
            (Target::Item, &Method::GET | &Method::HEAD, Some(id)) => match store.get_item(&keys, &id, &start).await? {
                Some(json) => Stored::from_json(json, false).answer(StatusCode::OK, method, None),
                None => self.not_found(&id),
            },
            (Target::Item, &Method::PUT | &Method::PATCH, Some(id)) => {
                let patch = method == Method::PATCH;
                let body = match body_object(&RequestData::new(view), patch) {
                    Ok(b) => b,
                    Err(response) => return Ok(*response),
                };
                self.replace_shared(body, method, store, &keys, &id, patch, &start).await?
            }
            (Target::Item, &Method::DELETE, Some(id)) => {
                if store.delete_item(&keys, &id, &start).await? {
                    let mut res = Response::new(Body::full(Bytes::new()));
                    *res.status_mut() = StatusCode::NO_CONTENT;
                    res
                } else {
                    self.not_found(&id)
                }
            }
            _ => error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed here".to_owned(), ""),
        })
    }

    async fn create_shared(
        &self,
        body: Map<String, Value>,
        sent: &[u8],
        store: &RemoteState,
        keys: &super::state::ResourceKeys,
        start: &(dyn Fn() -> Arc<StartData> + Sync),
    ) -> Result<Response<Body>, StateError> {
        let id_field = &self.config.id;
        let created = match body.get(id_field) {
            Some(value) => {
                let Some(key) = id_key(value) else {
                    let message = format!("`{id_field}` must be a string or a number");
                    return Ok(error(StatusCode::BAD_REQUEST, message, "leave it out to get a new one"));
                };
                let int = match value {
                    Value::String(_) => Some(None),
                    Value::Number(n) => n.as_i64().map(Some),
                    _ => None,
                };
                // The id first, then the fields as sent (as in process).
                let mut item = body;
                let id_value = value_clone(&item, id_field);
                item.shift_insert(0, id_field.clone(), id_value);
                let json = serde_json::to_vec(&item).unwrap_or_default();
                let new = NewId::Known { key: &key, json: &json, int };
                store.create_item(keys, self.config.max_items, new, start).await?
            }
            None => {
                // The id is made in the store (the next integer, or this UUID when the ids are strings): the item's
                // JSON is sent in two halves, and the store puts the id between them.
                let mut head = b"{".to_vec();
                head.extend_from_slice(&serde_json::to_vec(id_field).unwrap_or_default());
                head.push(b':');
                let rest = serde_json::to_vec(&body).unwrap_or_default();
                let tail = if body.is_empty() {
                    b"}".to_vec()
                } else {
                    let mut t = b",".to_vec();
                    t.extend_from_slice(rest.get(1..).unwrap_or_default());
                    t
                };
                let uuid = uuid_v4();
                let new = NewId::Generated { uuid: &uuid, head: &head, tail: &tail };
                store.create_item(keys, self.config.max_items, new, start).await?
            }
        };
        Ok(match created {
            Created::Added(key, json) => Stored::from_json(json.into_bytes(), false).answer(
                StatusCode::CREATED,
                &Method::POST,
                self.location(&key),
            ),
            Created::Full => {
                let message = format!("{} holds {} items, its max_items", self.config.path, self.config.max_items);
                let help = "delete items, reset (POST /__admin/reset), or raise `max_items` on the resource";
                error(StatusCode::INSUFFICIENT_STORAGE, message, help)
            }
            Created::Conflict => {
                let key = body_key(sent, id_field).unwrap_or_default();
                let message = format!("an item with {id_field} `{key}` already exists in {}", self.config.path);
                let help =
                    format!("leave `{id_field}` out to get a new one, or PUT {}/{key} to replace it", self.config.path);
                error(StatusCode::CONFLICT, message, &help)
            }
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn replace_shared(
        &self,
        body: Map<String, Value>,
        method: &Method,
        store: &RemoteState,
        keys: &super::state::ResourceKeys,
        id: &str,
        patch: bool,
        start: &(dyn Fn() -> Arc<StartData> + Sync),
    ) -> Result<Response<Body>, StateError> {
        for _ in 0..SHARED_RETRIES {
            let Some(old) = store.get_item(keys, id, start).await? else { return Ok(self.not_found(id)) };
            let mut item = match serde_json::from_slice::<Value>(&old) {
                Ok(Value::Object(map)) => map,
                _ => Map::new(),
            };
            if let Err(response) = self.check_id(&body, id, patch) {
                return Ok(*response);
            }
            self.change(&mut item, body.clone(), patch);
            let new = serde_json::to_vec(&item).unwrap_or_default();
            match store.replace_item(keys, id, &old, &new, start).await? {
                Replaced::Done => return Ok(Stored::from_json(new, false).answer(StatusCode::OK, method, None)),
                Replaced::Missing => return Ok(self.not_found(id)),
                Replaced::Changed => continue,
            }
        }
        let message = format!(
            "the item with {} `{id}` in {} changed {SHARED_RETRIES} times while this request changed it",
            self.config.id, self.config.path
        );
        Ok(error(StatusCode::CONFLICT, message, "send the request again; fewer writers of one item at once help"))
    }
}

/// The value of `field` in `map` (cloned), null when absent.
fn value_clone(map: &Map<String, Value>, field: &str) -> Value {
    map.get(field).cloned().unwrap_or(Value::Null)
}

/// The id key the request body sends in `field`, for an error message.
fn body_key(sent: &[u8], field: &str) -> Option<String> {
    let body: Value = serde_json::from_slice(sent).ok()?;
    id_key(body.get(field)?)
}

/// Writes `bytes` to `file` through a temp file in the same folder and a rename, so that a reader (or a crash)
/// sees the old content or the new, never half of it.
fn write_atomic(file: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "data".to_owned());
    let tmp = file.with_file_name(format!(".{name}.hotroute-tmp"));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, file)
}

/// A query of `GET /users`: field filters, sort keys, page.
#[derive(Debug, Default)]
struct Query {
    filters: Vec<Filter>,
    /// Fields and whether descending.
    sort: Vec<(String, bool)>,
    /// Page (1-based) and items per page.
    page: Option<(usize, usize)>,
}

/// `?field=value`: an item's field equals one of the values given for it.
#[derive(Debug)]
struct Filter {
    field: String,
    values: Vec<String>,
}

impl Filter {
    fn holds(&self, item: &Map<String, Value>) -> bool {
        let Some(v) = item.get(&self.field) else { return false };
        let text = match v {
            Value::String(s) => std::borrow::Cow::Borrowed(s.as_str()),
            Value::Null => std::borrow::Cow::Borrowed("null"),
            other => std::borrow::Cow::Owned(other.to_string()),
        };
        self.values.iter().any(|want| *want == text)
    }
}

impl Query {
    fn parse(pairs: &[(String, String)]) -> Result<Query, (String, String)> {
        let mut q = Query::default();
        let (mut sort, mut order, mut page, mut per) = (None, None, None, None);
        for (k, v) in pairs {
            match k.as_str() {
                "_sort" => sort = Some(v.as_str()),
                "_order" => order = Some(v.as_str()),
                "_page" => page = Some(number(k, v)?),
                "_per_page" | "_limit" => per = Some(number(k, v)?),
                _ if k.starts_with('_') => {
                    return Err((
                        format!("unknown query parameter `{k}`"),
                        "the parameters are field filters (`?role=admin`), `_sort`, `_order`, `_page` and \
                         `_per_page`"
                            .to_owned(),
                    ));
                }
                _ => match q.filters.iter_mut().find(|f| f.field == *k) {
                    Some(f) => f.values.push(v.clone()),
                    None => q.filters.push(Filter { field: k.clone(), values: vec![v.clone()] }),
                },
            }
        }
        if let Some(sort) = sort {
            let orders: Vec<&str> = order.map(|o| o.split(',').collect()).unwrap_or_default();
            for (i, field) in sort.split(',').filter(|f| !f.is_empty()).enumerate() {
                let (field, minus) = match field.strip_prefix('-') {
                    Some(f) => (f, true),
                    None => (field, false),
                };
                let desc = match orders.get(i).copied() {
                    None | Some("asc") => minus,
                    Some("desc") => !minus,
                    Some(other) => {
                        return Err((
                            format!("`_order` value `{other}` is neither `asc` nor `desc`"),
                            "write `_order=asc` or `_order=desc` (one per `_sort` field, comma-separated)".to_owned(),
                        ));
                    }
                };
                q.sort.push((field.to_owned(), desc));
            }
        }
        if page.is_some() || per.is_some() {
            let per = per.unwrap_or(DEFAULT_PER_PAGE);
            if per > MAX_PER_PAGE {
                return Err((
                    format!("`_per_page` {per} is over {MAX_PER_PAGE}"),
                    "ask for fewer items per page".to_owned(),
                ));
            }
            q.page = Some((page.unwrap_or(1), per));
        }
        Ok(q)
    }
}

fn number(key: &str, value: &str) -> Result<usize, (String, String)> {
    value
        .parse::<usize>()
        .ok()
        .filter(|&n| n >= 1)
        .ok_or_else(|| (format!("`{key}` is `{value}`, not a whole number from 1"), format!("write e.g. `{key}=2`")))
}

/// Orders two field values: numbers by value, strings by text, other values by their JSON; a missing field last.
fn compare(a: Option<&Value>, b: Option<&Value>) -> std::cmp::Ordering {
    use std::cmp::Ordering::*;
    match (a, b) {
        (None, None) => Equal,
        (None, Some(_)) => Greater,
        (Some(_), None) => Less,
        (Some(Value::Number(x)), Some(Value::Number(y))) => {
            x.as_f64().unwrap_or(0.0).partial_cmp(&y.as_f64().unwrap_or(0.0)).unwrap_or(Equal)
        }
        (Some(Value::String(x)), Some(Value::String(y))) => x.cmp(y),
        (Some(x), Some(y)) => x.to_string().cmp(&y.to_string()),
    }
}

/// The `Link` header of a page, as json-server sends it: first, prev, next and last, each the request's own URL
/// with `_page` changed.
fn link_header(uri: &http::Uri, page: usize, per: usize, total: usize) -> String {
    let last = total.div_ceil(per).max(1);
    let others: Vec<(String, String)> =
        uri.query().map(|q| crate::request::query_pairs(q).filter(|(k, _)| k != "_page").collect()).unwrap_or_default();
    let url = |p: usize| {
        let mut ser = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &others {
            ser.append_pair(k, v);
        }
        ser.append_pair("_page", &p.to_string());
        format!("<{}?{}>", uri.path(), ser.finish())
    };
    let mut links = String::new();
    let _ = write!(links, "{}; rel=\"first\"", url(1));
    if page > 1 {
        let _ = write!(links, ", {}; rel=\"prev\"", url((page - 1).min(last)));
    }
    if page < last {
        let _ = write!(links, ", {}; rel=\"next\"", url(page + 1));
    }
    let _ = write!(links, ", {}; rel=\"last\"", url(last));
    links
}

/// The request body as a JSON object, after checking its content type: 415 when it is not JSON, 400 when it is
/// not an object. `patch` also accepts `application/merge-patch+json`.
fn body_object(req: &RequestData<'_>, patch: bool) -> Result<Map<String, Value>, Box<Response<Body>>> {
    let ct = req.view.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    // Compared without case and without a lowercased copy: this runs on every write.
    let essence = ct.split(';').next().unwrap_or("").trim();
    let (prefix, suffix) = ("application/", "+json");
    let json = essence.eq_ignore_ascii_case("application/json")
        || (essence.get(..prefix.len()).is_some_and(|p| p.eq_ignore_ascii_case(prefix))
            && essence.len() >= prefix.len() + suffix.len()
            && essence.get(essence.len() - suffix.len()..).is_some_and(|s| s.eq_ignore_ascii_case(suffix)));
    if !json {
        let got = if ct.is_empty() { "no content type".to_owned() } else { format!("content type `{ct}`") };
        let help = if patch {
            "send the body as JSON with `content-type: application/json` (or `application/merge-patch+json`)"
        } else {
            "send the body as JSON with `content-type: application/json`"
        };
        return Err(Box::new(error(StatusCode::UNSUPPORTED_MEDIA_TYPE, format!("the body has {got}, not JSON"), help)));
    }
    match serde_json::from_slice::<Value>(req.view.body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => {
            let kind = match other {
                Value::Array(_) => "an array",
                Value::String(_) => "a string",
                Value::Number(_) => "a number",
                Value::Bool(_) => "a boolean",
                _ => "null",
            };
            Err(Box::new(error(StatusCode::BAD_REQUEST, format!("the body is {kind}, not a JSON object"), OBJECT_HELP)))
        }
        Err(e) => {
            Err(Box::new(error(StatusCode::BAD_REQUEST, format!("the body is not valid JSON: {e}"), OBJECT_HELP)))
        }
    }
}

const OBJECT_HELP: &str = "send one item as a JSON object, e.g. {\"name\": \"Ada\"}";

/// RFC 7396 JSON merge patch: `null` removes a field, an object merges into an object, anything else replaces.
pub(crate) fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(map) = target {
        for (k, v) in patch {
            if v.is_null() {
                map.shift_remove(k);
            } else {
                merge_patch(map.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

fn json_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers
}

/// A resource's error: JSON `{"error": ..., "help": ...}`.
fn error(status: StatusCode, message: String, help: &str) -> Response<Body> {
    let mut body = serde_json::to_vec(&json!({ "error": message, "help": help })).unwrap_or_default();
    body.push(b'\n');
    // Error answers carry a body whatever the method: GET stands for "not HEAD".
    respond::with_body(status, json_headers(), Bytes::from(body), &Method::GET)
}

/// What an id escapes to be one path segment.
const SEGMENT: &percent_encoding::AsciiSet =
    &percent_encoding::CONTROLS.add(b' ').add(b'/').add(b'?').add(b'#').add(b'%').add(b'"').add(b'<').add(b'>');

/// A random (version 4) UUID from the OS generator.
fn uuid_v4() -> String {
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        // No OS generator: a counter keeps ids unique within the process.
        static N: AtomicU64 = AtomicU64::new(1);
        b[8..].copy_from_slice(&N.fetch_add(1, Ordering::Relaxed).to_be_bytes());
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_patch_follows_rfc_7396_appendix_a() {
        let cases = [
            (json!({"a":"b"}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"b"}), json!({"b":"c"}), json!({"a":"b","b":"c"})),
            (json!({"a":"b"}), json!({"a":null}), json!({})),
            (json!({"a":{"b":"c"}}), json!({"a":{"b":"d","c":null}}), json!({"a":{"b":"d"}})),
            (json!({"a":[{"b":"c"}]}), json!({"a":[1]}), json!({"a":[1]})),
            (json!({"e":null}), json!({"a":1}), json!({"e":null,"a":1})),
            (json!([1, 2]), json!({"a":"b","c":null}), json!({"a":"b"})),
        ];
        for (mut target, patch, want) in cases {
            merge_patch(&mut target, &patch);
            assert_eq!(target, want);
        }
    }

    #[test]
    fn keys_are_integers_only_in_their_own_spelling() {
        assert_eq!(Key::of("7"), Key::Int(7));
        assert_eq!(Key::of("-12"), Key::Int(-12));
        assert_eq!(Key::of("0"), Key::Int(0));
        for text in ["007", "+7", "-0", "", "-", "7.0", "1e3", "9223372036854775808", "a7"] {
            assert_eq!(Key::of(text), Key::Text(text.into()), "{text}");
        }
    }

    #[test]
    fn uuid_v4_has_the_version_and_variant_bits() {
        let id = uuid_v4();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"));
    }
}
