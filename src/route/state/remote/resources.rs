//! `[[resource]]` data in the shared store, so that a resource written on one replica is read on another.
//!
//! One resource in one partition is four keys under `PREFIX:PARTITION:res:DEFINITION:` (the definition identity is
//! a hash of the resource's path, id field and start data, so that replicas serving the same file share the data and
//! a changed resource starts fresh, as sequences do):
//!
//! - `items`: a hash, id -> the item's JSON as the answer sends it;
//! - `order`: a sorted set, id -> insertion number, for the listing order;
//! - `anon`: a list of the start data's items without an id (listed, never addressable);
//! - `meta`: a hash of `loaded` (the start data is in), `seq` (the last insertion number), `maxint` (the largest
//!   integer id, for generated ids) and `strids` (the ids are strings: a `POST` without an id gets a UUID).
//!
//! Every write is one Lua script, so it is atomic across replicas: two `POST`s never get the same generated id, and
//! `max_items` is checked in the same step as the insert. A script finds the start data missing (first use, after
//! `POST /__admin/reset`, or a Redis restart) and answers `LOAD`: the caller then loads it once (guarded by
//! `HSETNX meta loaded`, so a race of replicas loads it once) and asks again.

use redis::Script;

use super::{RemoteState, StateError, partition_part};

/// The prelude of every script but [`LOAD`]: `LOAD` when the start data is not in yet.
macro_rules! script {
    ($body:literal) => {
        concat!("if redis.call('HEXISTS', KEYS[4], 'loaded') == 0 then return {'LOAD'} end\n", $body)
    };
}

/// Loads the start data unless it is in already. ARGV[1] `maxint`, ARGV[2] `strids` (`1`/`0`), then pairs of
/// (`i` + id, JSON) or (`a`, JSON) for an item without an id.
const LOAD: &str = r"
if redis.call('HSETNX', KEYS[4], 'loaded', '1') == 0 then return 0 end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
local seq = 0
for i = 3, #ARGV, 2 do
  local tag = ARGV[i]
  if tag == 'a' then
    redis.call('RPUSH', KEYS[3], ARGV[i + 1])
  else
    seq = seq + 1
    local id = string.sub(tag, 2)
    redis.call('HSET', KEYS[1], id, ARGV[i + 1])
    redis.call('ZADD', KEYS[2], seq, id)
  end
end
redis.call('HSET', KEYS[4], 'seq', seq, 'maxint', ARGV[1], 'strids', ARGV[2])
return 1
";

/// Every item, the ones without an id first, then by insertion (what the in-process listing gives).
const LIST: &str = script!(
    r"
local out = redis.call('LRANGE', KEYS[3], 0, -1)
local ids = redis.call('ZRANGE', KEYS[2], 0, -1)
-- HMGET in slices: Lua's unpack has a bound on how many values it spreads.
for i = 1, #ids, 1000 do
  local j = math.min(i + 999, #ids)
  local got = redis.call('HMGET', KEYS[1], unpack(ids, i, j))
  for k = 1, #got do
    if got[k] then out[#out + 1] = got[k] end
  end
end
table.insert(out, 1, 'OK')
return out
"
);

/// One item: `OK` and its JSON, or `OK` alone.
const GET: &str = script!(
    r"
local v = redis.call('HGET', KEYS[1], ARGV[1])
if v then return {'OK', v} end
return {'OK'}
"
);

/// Adds an item. ARGV[1] `max_items`; ARGV[2] `k` (the id is known: ARGV[3] the key, ARGV[4] the JSON, ARGV[5] `s`
/// for a string id or the integer id to raise `maxint` to, or `-`) or `g` (generate one: ARGV[3] a UUID, ARGV[4]
/// the JSON up to the id's value, ARGV[5] the JSON after it). Answers `OK`, the key and the JSON; `FULL`; or
/// `CONFLICT`.
const CREATE: &str = script!(
    r#"
if redis.call('HLEN', KEYS[1]) + redis.call('LLEN', KEYS[3]) >= tonumber(ARGV[1]) then return {'FULL'} end
local key, json
if ARGV[2] == 'k' then
  key, json = ARGV[3], ARGV[4]
  if redis.call('HEXISTS', KEYS[1], key) == 1 then return {'CONFLICT'} end
  if ARGV[5] == 's' then
    redis.call('HSET', KEYS[4], 'strids', '1')
  elseif ARGV[5] ~= '-' then
    local now = tonumber(redis.call('HGET', KEYS[4], 'maxint') or '0') or 0
    if tonumber(ARGV[5]) > now then redis.call('HSET', KEYS[4], 'maxint', ARGV[5]) end
  end
elseif redis.call('HGET', KEYS[4], 'strids') == '1' then
  key = ARGV[3]
  json = ARGV[4] .. '"' .. key .. '"' .. ARGV[5]
else
  key = tostring(redis.call('HINCRBY', KEYS[4], 'maxint', 1))
  json = ARGV[4] .. key .. ARGV[5]
end
if redis.call('HEXISTS', KEYS[1], key) == 1 then return {'CONFLICT'} end
redis.call('HSET', KEYS[1], key, json)
redis.call('ZADD', KEYS[2], redis.call('HINCRBY', KEYS[4], 'seq', 1), key)
return {'OK', key, json}
"#
);

/// Replaces item ARGV[1] with ARGV[3] if it still holds ARGV[2] (compare-and-set: the new item was made from that
/// one). Answers `OK`, `MISSING` or `CHANGED`.
const REPLACE: &str = script!(
    r"
local now = redis.call('HGET', KEYS[1], ARGV[1])
if not now then return {'MISSING'} end
if now ~= ARGV[2] then return {'CHANGED'} end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return {'OK'}
"
);

/// Deletes item ARGV[1]: `OK` or `MISSING`.
const DELETE: &str = script!(
    r"
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return {'MISSING'} end
redis.call('ZREM', KEYS[2], ARGV[1])
return {'OK'}
"
);

/// The scripts, hashed once per store (a call sends the SHA1 with `EVALSHA`, the text only after a `NOSCRIPT`).
#[derive(Debug)]
pub(super) struct ResourceScripts {
    load: Script,
    list: Script,
    get: Script,
    create: Script,
    replace: Script,
    delete: Script,
}

impl Default for ResourceScripts {
    fn default() -> Self {
        ResourceScripts {
            load: Script::new(LOAD),
            list: Script::new(LIST),
            get: Script::new(GET),
            create: Script::new(CREATE),
            replace: Script::new(REPLACE),
            delete: Script::new(DELETE),
        }
    }
}

/// A resource's start data as the store loads it.
#[derive(Debug, Default)]
pub struct StartData {
    /// The largest integer id.
    pub max_int: i64,
    /// Whether some id is a string.
    pub string_ids: bool,
    /// Each item's key (none: no id) and JSON, in order.
    pub items: Vec<(Option<String>, Vec<u8>)>,
}

/// The keys of one resource in one partition.
#[derive(Debug)]
pub struct ResourceKeys([String; 4]);

/// A new item's id, as [`RemoteState::create_item`] is told it.
#[derive(Debug)]
pub enum NewId<'a> {
    /// Known: the key, the whole JSON, and what it says of the ids (`Some(n)` an integer id, `None` a string one).
    Known { key: &'a str, json: &'a [u8], int: Option<Option<i64>> },
    /// To make: a UUID if the ids are strings, else the next integer, put between `head` and `tail`.
    Generated { uuid: &'a str, head: &'a [u8], tail: &'a [u8] },
}

/// What [`RemoteState::create_item`] did.
#[derive(Debug)]
pub enum Created {
    /// Added: its key and JSON.
    Added(String, String),
    /// The resource holds `max_items` already.
    Full,
    /// An item with that id exists.
    Conflict,
}

/// What [`RemoteState::replace_item`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Replaced {
    /// Replaced.
    Done,
    /// No item with that id.
    Missing,
    /// The item changed since it was read: read it again and retry.
    Changed,
}

/// A call of `script` with `keys` and `args`.
fn invocation<'s>(script: &'s Script, keys: &ResourceKeys, args: &[&[u8]]) -> redis::ScriptInvocation<'s> {
    let mut inv = script.prepare_invoke();
    for k in &keys.0 {
        inv.key(k);
    }
    for a in args {
        inv.arg(*a);
    }
    inv
}

type Reply = Vec<Option<Vec<u8>>>;

fn first_is(reply: &Reply, word: &str) -> bool {
    reply.first().and_then(|w| w.as_deref()) == Some(word.as_bytes())
}

impl RemoteState {
    /// The keys of resource `definition` (its identity hash) in `partition`.
    pub fn resource_keys(&self, partition: &str, definition: u64) -> ResourceKeys {
        let base = format!("{}:{}:res:{definition:016x}:", self.prefix, partition_part(partition));
        ResourceKeys(["items", "order", "anon", "meta"].map(|k| format!("{base}{k}")))
    }

    /// Runs a resource script; on `LOAD`, loads `start` and runs it again. One bound for the whole call.
    async fn resource_call(
        &self,
        what: &str,
        script: &Script,
        keys: &ResourceKeys,
        args: &[&[u8]],
        start: &(dyn Fn() -> std::sync::Arc<StartData> + Sync),
    ) -> Result<Reply, StateError> {
        let mut conn = self.conn.clone();
        let scripts = &self.resource_scripts;
        let call = async move {
            let invocation = |script| invocation(script, keys, args);
            let reply: Reply = invocation(script).invoke_async(&mut conn).await?;
            if !first_is(&reply, "LOAD") {
                return Ok(reply);
            }
            let start = start();
            let mut load = scripts.load.prepare_invoke();
            for k in &keys.0 {
                load.key(k);
            }
            load.arg(start.max_int).arg(if start.string_ids { "1" } else { "0" });
            for (key, json) in &start.items {
                match key {
                    Some(key) => load.arg(format!("i{key}")),
                    None => load.arg("a"),
                };
                load.arg(json.as_slice());
            }
            load.invoke_async::<i64>(&mut conn).await?;
            invocation(script).invoke_async(&mut conn).await
        };
        self.run(what, call).await
    }

    /// Every item's JSON, in listing order.
    pub async fn list_items(
        &self,
        keys: &ResourceKeys,
        start: &(dyn Fn() -> std::sync::Arc<StartData> + Sync),
    ) -> Result<Vec<Vec<u8>>, StateError> {
        let reply = self.resource_call("listing a resource", &self.resource_scripts.list, keys, &[], start).await?;
        Ok(reply.into_iter().skip(1).flatten().collect())
    }

    /// The JSON of item `id`, if there is one.
    pub async fn get_item(
        &self,
        keys: &ResourceKeys,
        id: &str,
        start: &(dyn Fn() -> std::sync::Arc<StartData> + Sync),
    ) -> Result<Option<Vec<u8>>, StateError> {
        let args = [id.as_bytes()];
        let reply =
            self.resource_call("reading a resource item", &self.resource_scripts.get, keys, &args, start).await?;
        Ok(reply.into_iter().nth(1).flatten())
    }

    /// Adds an item, atomically checking `max_items` and the id.
    pub async fn create_item(
        &self,
        keys: &ResourceKeys,
        max_items: usize,
        id: NewId<'_>,
        start: &(dyn Fn() -> std::sync::Arc<StartData> + Sync),
    ) -> Result<Created, StateError> {
        let max = max_items.to_string();
        let int;
        let args: [&[u8]; 5] = match id {
            NewId::Known { key, json, int: kind } => {
                int = match kind {
                    None => "-".to_owned(),
                    Some(None) => "s".to_owned(),
                    Some(Some(n)) => n.to_string(),
                };
                [max.as_bytes(), b"k", key.as_bytes(), json, int.as_bytes()]
            }
            NewId::Generated { uuid, head, tail } => [max.as_bytes(), b"g", uuid.as_bytes(), head, tail],
        };
        let reply =
            self.resource_call("adding a resource item", &self.resource_scripts.create, keys, &args, start).await?;
        if first_is(&reply, "FULL") {
            return Ok(Created::Full);
        }
        if first_is(&reply, "CONFLICT") {
            return Ok(Created::Conflict);
        }
        let mut parts = reply.into_iter().skip(1).map(|p| String::from_utf8(p.unwrap_or_default()).unwrap_or_default());
        Ok(Created::Added(parts.next().unwrap_or_default(), parts.next().unwrap_or_default()))
    }

    /// Replaces item `id` by `new` if it still holds `old`.
    pub async fn replace_item(
        &self,
        keys: &ResourceKeys,
        id: &str,
        old: &[u8],
        new: &[u8],
        start: &(dyn Fn() -> std::sync::Arc<StartData> + Sync),
    ) -> Result<Replaced, StateError> {
        let args = [id.as_bytes(), old, new];
        let reply =
            self.resource_call("changing a resource item", &self.resource_scripts.replace, keys, &args, start).await?;
        Ok(if first_is(&reply, "OK") {
            Replaced::Done
        } else if first_is(&reply, "CHANGED") {
            Replaced::Changed
        } else {
            Replaced::Missing
        })
    }

    /// Deletes item `id`: whether there was one.
    pub async fn delete_item(
        &self,
        keys: &ResourceKeys,
        id: &str,
        start: &(dyn Fn() -> std::sync::Arc<StartData> + Sync),
    ) -> Result<bool, StateError> {
        let args = [id.as_bytes()];
        let reply =
            self.resource_call("deleting a resource item", &self.resource_scripts.delete, keys, &args, start).await?;
        Ok(first_is(&reply, "OK"))
    }
}
