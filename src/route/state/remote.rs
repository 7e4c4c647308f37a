//! The shared state store: Redis or Valkey through the `redis` crate's [`ConnectionManager`], which reconnects by
//! itself (with exponential backoff) after the connection breaks.
//!
//! Every call is bounded by `state_timeout`: a store that is down or slow makes a stateful request fail fast (the
//! router answers 503), never hang. An outage is logged once when it starts and once when it ends, not per request.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::config::state::StateConfig;

mod resources;

pub use resources::{Created, NewId, Replaced, ResourceKeys, StartData};

/// Appends a batch of journal records to the shared stream as one entry, and trims the stream to about ARGV[1]
/// records: whole oldest entries go. The counter KEYS[2] counts the records ever appended, and an entry's id is
/// `0-N`, N that count after its records: so the entries whose records are all older than the newest ARGV[1] are
/// those below `0-(N - ARGV[1] + 1)`, which `XTRIM MINID` drops without reading them. (One entry per batch, not one
/// per request: the per-request `XADD` was most of Redis's work for a plain route, BENCHMARKS.md, issue 19.)
///
/// KEYS[1] the stream, KEYS[2] the record counter; ARGV[1] the cap, ARGV[2] the batch's record count, ARGV[3] its
/// header, ARGV[4] its records. A stream ahead of its counter (the counter deleted alone, or entries of an older
/// format) starts over.
const JOURNAL_APPEND: &str = r"
local n = tonumber(ARGV[2])
local last = redis.call('INCRBY', KEYS[2], n)
local added = redis.pcall('XADD', KEYS[1], '0-' .. last, 'h', ARGV[3], 'b', ARGV[4])
if type(added) == 'table' and added.err then
  redis.call('DEL', KEYS[1])
  redis.call('SET', KEYS[2], n)
  last = n
  redis.call('XADD', KEYS[1], '0-' .. last, 'h', ARGV[3], 'b', ARGV[4])
end
local keep = last - tonumber(ARGV[1]) + 1
if keep > 1 then
  redis.call('XTRIM', KEYS[1], 'MINID', '0-' .. keep)
end
return last
";

/// The entries holding the newest ARGV[1] records of the shared journal (see [`JOURNAL_APPEND`]), newest first: at
/// most ARGV[1] entries, as each holds at least one record.
///
/// KEYS[1] the stream, KEYS[2] the record counter.
const JOURNAL_READ: &str = r"
local last = tonumber(redis.call('GET', KEYS[2]) or '0')
local from = last - tonumber(ARGV[1]) + 1
if from < 1 then
  from = 1
end
return redis.call('XREVRANGE', KEYS[1], '+', '0-' .. from, 'COUNT', ARGV[1])
";

/// Moves a route's counter and, when the route has a `next_state`, its scenario, in one round trip and atomically:
/// `INCR` gives each request its own position (two replicas never hand out the same item), and the scenario moves
/// only if it is still in the state the request matched in (compare-and-set), so a move made meanwhile by another
/// replica is not overwritten by one decided on an older state.
///
/// KEYS[1] the counter; KEYS[2] (optional) the scenario. ARGV[1] the state the request matched in (`""`: any),
/// ARGV[2] the next state, ARGV[3] the start state (what a missing key means).
const COUNT_AND_MOVE: &str = r"
local n = redis.call('INCR', KEYS[1])
if #KEYS > 1 then
  local now = redis.call('GET', KEYS[2]) or ARGV[3]
  if ARGV[1] == '' or now == ARGV[1] then
    redis.call('SET', KEYS[2], ARGV[2])
  end
end
return n
";

/// A route's counter in the store: its key, and its `INCR` command made once (a route's requests reuse it).
#[derive(Debug)]
pub struct Counter {
    key: String,
    incr: redis::Cmd,
}

/// Why the shared state store could not be used.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StateError {
    /// The store did not answer in time.
    #[error(
        "the shared state store {url} did not answer within {timeout:?}{cause}; check that Redis is running and \
         reachable, or raise [server] state_timeout"
    )]
    Timeout {
        /// The store's URL, password hidden.
        url: String,
        /// `state_timeout`.
        timeout: Duration,
        /// Why the last attempt to connect failed, as ` (connecting failed: ...)`, or empty: the connection manager
        /// retries by itself and hides it, and it is what says what to do (e.g. a certificate not trusted).
        cause: String,
    },
    /// The store answered with an error, or could not be reached.
    #[error("the shared state store {url} is unavailable: {reason}; check that Redis is running and reachable")]
    Unavailable {
        /// The store's URL, password hidden.
        url: String,
        /// What the client said.
        reason: String,
    },
}

/// The state of every replica that names the same store and prefix: counters, scenarios, the journal.
#[derive(Debug)]
pub struct RemoteState {
    conn: ConnectionManager,
    prefix: String,
    url: String,
    timeout: Duration,
    count_and_move: redis::Script,
    /// Appends a batch of journal records as one stream entry (see [`JOURNAL_APPEND`]).
    journal_append: redis::Script,
    /// Reads the entries that hold the newest records (see [`JOURNAL_READ`]).
    journal_read: redis::Script,
    /// The journal's stream, `PREFIX:journal`, and its record counter, `PREFIX:journal-records` (not
    /// `journal:...`: a partition named `journal` owns the keys `PREFIX:journal:*`). Made once: every batch names
    /// them.
    journal_keys: (String, String),
    resource_scripts: resources::ResourceScripts,
    /// Whether the last call failed: the outage is logged when this turns on, and again when it turns off.
    down: AtomicBool,
    /// Journal entries dropped because the queue was full or the store was down.
    journal_dropped: AtomicU64,
    /// The client, for a direct connection attempt that tells why the manager cannot connect (see [`Self::probe`]).
    client: redis::Client,
    /// What that attempt said, when it failed.
    cause: Arc<std::sync::Mutex<Option<String>>>,
}

impl RemoteState {
    /// Makes the store's client. Does not wait for a connection (the first request, or [`RemoteState::ping`], makes
    /// it), so a replica starts while Redis is still coming up. Must be called on a tokio runtime.
    pub fn new(config: &StateConfig) -> Result<Arc<RemoteState>, StateError> {
        let url = config.redacted_url();
        let unavailable = |e: redis::RedisError| StateError::Unavailable { url: url.clone(), reason: reason(&e) };
        let client = match &config.ca {
            // `state_ca`: that CA's certificates are the roots the store's certificate must chain to.
            Some(pem) => redis::Client::build_with_tls(
                config.url.as_str(),
                redis::TlsCertificates { client_tls: None, root_cert: Some(pem.clone()) },
            ),
            None => redis::Client::open(config.url.as_str()),
        }
        .map_err(unavailable)?;
        // Each attempt is bounded by the timeout; retries back off exponentially up to 2 s, and after the last one
        // the next request starts a new round.
        let manager = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.timeout))
            .set_response_timeout(Some(config.timeout))
            .set_number_of_retries(6)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_secs(2));
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), manager).map_err(unavailable)?;
        let state = Arc::new(RemoteState {
            conn,
            prefix: config.prefix.clone(),
            url,
            timeout: config.timeout,
            count_and_move: redis::Script::new(COUNT_AND_MOVE),
            journal_append: redis::Script::new(JOURNAL_APPEND),
            journal_read: redis::Script::new(JOURNAL_READ),
            journal_keys: (format!("{}:journal", config.prefix), format!("{}:journal-records", config.prefix)),
            resource_scripts: resources::ResourceScripts::default(),
            down: AtomicBool::new(false),
            journal_dropped: AtomicU64::new(0),
            client,
            cause: Arc::default(),
        });
        state.probe();
        Ok(state)
    }

    /// Connects once, directly and in the background, to learn why the store cannot be reached (the connection
    /// manager only times out): at start and when an outage starts, never per request.
    fn probe(&self) {
        let (client, cause, timeout) = (self.client.clone(), Arc::clone(&self.cause), self.timeout);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        runtime.spawn(async move {
            let why = match tokio::time::timeout(timeout, client.get_multiplexed_async_connection()).await {
                Ok(Err(e)) => Some(reason(&e)),
                _ => None,
            };
            *cause.lock().unwrap_or_else(|e| e.into_inner()) = why;
        });
    }

    fn timed_out(&self) -> StateError {
        let cause = self.cause.lock().unwrap_or_else(|e| e.into_inner()).clone();
        StateError::Timeout {
            url: self.url.clone(),
            timeout: self.timeout,
            cause: cause.map(|c| format!(" (connecting failed: {c})")).unwrap_or_default(),
        }
    }

    /// The store's URL, password hidden.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `state_timeout`.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Whether the last call to the store succeeded (true before the first).
    pub fn is_up(&self) -> bool {
        !self.down.load(Ordering::Relaxed)
    }

    fn key(&self, partition: &str, kind: &str, name: &str) -> String {
        format!("{}:{}:{kind}:{name}", self.prefix, partition_part(partition))
    }

    /// The counter of the route with definition identity `route_key` in `partition`.
    pub fn counter(&self, partition: &str, route_key: u64) -> Counter {
        let key = format!("{}:{}:count:{route_key:016x}", self.prefix, partition_part(partition));
        let mut incr = redis::cmd("INCR");
        incr.arg(&key);
        Counter { key, incr }
    }

    fn scenario_key(&self, partition: &str, name: &str) -> String {
        self.key(partition, "scenario", name)
    }

    /// Runs `call` within the timeout, and logs the start and the end of an outage (once each).
    async fn run<T>(&self, what: &str, call: impl Future<Output = redis::RedisResult<T>>) -> Result<T, StateError> {
        let result = match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(StateError::Unavailable { url: self.url.clone(), reason: reason(&e) }),
            Err(_) => Err(self.timed_out()),
        };
        match &result {
            Ok(_) => {
                if self.down.swap(false, Ordering::Relaxed) {
                    *self.cause.lock().unwrap_or_else(|e| e.into_inner()) = None;
                    tracing::warn!("the shared state store {} is back: stateful routes answer again", self.url);
                }
            }
            Err(e) => {
                if !self.down.swap(true, Ordering::Relaxed) {
                    self.probe();
                    tracing::error!(
                        "{e} (while {what}); stateful routes answer 503 until it is back, plain routes are not \
                         affected; hotroute reconnects by itself"
                    );
                }
            }
        }
        result
    }

    /// Checks that the store answers (`PING`), for health and readiness.
    pub async fn ping(&self) -> Result<(), StateError> {
        let mut conn = self.conn.clone();
        self.run("checking it (PING)", async move { redis::cmd("PING").query_async::<String>(&mut conn).await })
            .await
            .map(drop)
    }

    /// Counts one more answer of the route whose counter is `counter` (from [`RemoteState::counter`]) and returns
    /// the count (1 for the first), moving scenario `scenario.0` of `partition` from state `scenario.1` (`""`: from
    /// any) to `scenario.2` in the same atomic step. One round trip: the counter's own `INCR` when there is no move
    /// (no script for Redis to run, and no command to build), the script otherwise.
    pub async fn count(
        &self,
        partition: &str,
        counter: &Counter,
        scenario: Option<(&str, &str, &str)>,
    ) -> Result<u64, StateError> {
        let mut conn = self.conn.clone();
        let Some((name, from, to)) = scenario else {
            let incr = &counter.incr;
            return self
                .run("counting a route's answer", async move { incr.query_async::<u64>(&mut conn).await })
                .await;
        };
        let mut invocation = self.count_and_move.key(&counter.key);
        invocation.key(self.scenario_key(partition, name)).arg(from).arg(to).arg(crate::config::SCENARIO_START);
        self.run("counting a route's answer", async move { invocation.invoke_async::<u64>(&mut conn).await }).await
    }

    /// The count the next answer of the route whose counter is `counter` would get (1 for the first), without
    /// counting it or moving a scenario: one `GET`, for a `HEAD` request, which must leave the state as it was.
    pub async fn peek(&self, counter: &Counter) -> Result<u64, StateError> {
        let mut conn = self.conn.clone();
        // Made here rather than kept with the counter: `HEAD` is rare, and every counter would pay for it.
        let mut get = redis::cmd("GET");
        get.arg(&counter.key);
        let now = self
            .run("reading a route's answer count", async move { get.query_async::<Option<u64>>(&mut conn).await })
            .await?;
        Ok(now.unwrap_or(0).saturating_add(1))
    }

    /// The states of scenarios `names`, in order (none: never moved, so in the start state).
    pub async fn scenario_states(&self, partition: &str, names: &[&str]) -> Result<Vec<Option<String>>, StateError> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = names.iter().map(|n| self.scenario_key(partition, n)).collect();
        let mut conn = self.conn.clone();
        // MGET of one key answers a list too; the `redis` crate would read one value as a scalar otherwise.
        let mut cmd = redis::cmd("MGET");
        cmd.arg(&keys);
        self.run("reading scenario states", async move { cmd.query_async::<Vec<Option<String>>>(&mut conn).await })
            .await
    }

    /// Puts scenario `name` in `state`.
    pub async fn set_scenario(&self, partition: &str, name: &str, state: &str) -> Result<(), StateError> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.scenario_key(partition, name)).arg(state);
        let mut conn = self.conn.clone();
        self.run("setting a scenario", async move { cmd.query_async::<()>(&mut conn).await }).await
    }

    /// Puts scenarios `names` back in the start state.
    pub async fn reset_scenarios(&self, partition: &str, names: &[&str]) -> Result<(), StateError> {
        if names.is_empty() {
            return Ok(());
        }
        let keys: Vec<String> = names.iter().map(|n| self.scenario_key(partition, n)).collect();
        let mut cmd = redis::cmd("DEL");
        cmd.arg(&keys);
        let mut conn = self.conn.clone();
        self.run("resetting scenarios", async move { cmd.query_async::<()>(&mut conn).await }).await
    }

    /// Deletes every key under the prefix (counters, scenarios, the journal of every partition): what
    /// `POST /__admin/reset` does to the shared state. Returns how many keys went.
    pub async fn reset(&self) -> Result<u64, StateError> {
        self.delete_matching(format!("{}:*", glob_escape(&self.prefix))).await
    }

    /// Deletes partition `partition`'s counters and scenario states (`POST /__admin/reset?isolate=ID`); other
    /// partitions and the journal stay. Returns how many keys went.
    pub async fn reset_partition(&self, partition: &str) -> Result<u64, StateError> {
        // The partition part of a key has no `:` (see `partition_part`), so this matches that partition's keys only.
        let pattern = format!("{}:{}:*", glob_escape(&self.prefix), glob_escape(&partition_part(partition)));
        self.delete_matching(pattern).await
    }

    /// Deletes every key matching the glob `pattern`: how many went.
    async fn delete_matching(&self, pattern: String) -> Result<u64, StateError> {
        let mut conn = self.conn.clone();
        // SCAN walks the keyspace in steps without blocking Redis (KEYS would); the whole walk gets a wider bound
        // than one call, as a big keyspace takes many steps.
        let walk = async move {
            let (mut cursor, mut deleted) = (0u64, 0u64);
            loop {
                let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(1000)
                    .query_async(&mut conn)
                    .await?;
                if !keys.is_empty() {
                    deleted += redis::cmd("UNLINK").arg(&keys).query_async::<u64>(&mut conn).await?;
                }
                if next == 0 {
                    return Ok(deleted);
                }
                cursor = next;
            }
        };
        let bound = (self.timeout * 20).max(Duration::from_secs(5));
        match tokio::time::timeout(bound, self.run("clearing the state (SCAN, UNLINK)", walk)).await {
            Ok(result) => result,
            Err(_) => Err(StateError::Timeout { url: self.url.clone(), timeout: bound, cause: String::new() }),
        }
    }

    /// Counts journal entries that could not be queued.
    pub fn journal_drop(&self, n: u64) {
        self.journal_dropped.fetch_add(n, Ordering::Relaxed);
    }

    /// Journal entries dropped (queue full, or the store down when they were written).
    pub fn journal_dropped(&self) -> u64 {
        self.journal_dropped.load(Ordering::Relaxed)
    }

    /// Appends a batch of `n` journal records (`records`, as `header` says they are written) to the shared
    /// journal, the stream `PREFIX:journal`, as one entry, keeping about the newest `capacity` records; counts them
    /// as dropped if that fails.
    pub async fn append_journal(&self, header: &[u8], records: &[u8], n: usize, capacity: usize) {
        if n == 0 {
            return;
        }
        // The `EVALSHA` made directly: a `ScriptInvocation` would copy the records twice more (its arguments, then
        // its command), and this runs for every batch.
        let mut cmd = redis::cmd("EVALSHA");
        let (stream, counter) = &self.journal_keys;
        cmd.arg(self.journal_append.get_hash()).arg(2).arg(stream).arg(counter);
        cmd.arg(capacity.max(1)).arg(n).arg(header).arg(records);
        let (mut conn, script) = (self.conn.clone(), &self.journal_append);
        let append = async move {
            match cmd.query_async::<()>(&mut conn).await {
                // Redis lost its scripts (a restart, `SCRIPT FLUSH`): loaded again, then once more.
                Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                    script.load_async(&mut conn).await?;
                    cmd.query_async::<()>(&mut conn).await
                }
                done => done,
            }
        };
        if self.run("writing the journal (XADD)", append).await.is_err() {
            self.journal_dropped.fetch_add(n as u64, Ordering::Relaxed);
        }
    }

    /// The shared journal's entries that hold its newest `records` records (of every replica), oldest first: each
    /// entry's header and records, as [`RemoteState::append_journal`] got them.
    pub async fn journal_batches(&self, records: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StateError> {
        let mut invocation = self.journal_read.key(&self.journal_keys.0);
        invocation.key(&self.journal_keys.1).arg(records.max(1));
        let mut conn = self.conn.clone();
        let read = async move { invocation.invoke_async::<Vec<(String, Vec<Vec<u8>>)>>(&mut conn).await };
        let entries = self.run("reading the journal (XREVRANGE)", read).await?;
        Ok(entries
            .into_iter()
            .rev()
            .filter_map(|(_, fields)| {
                // Field names and values alternate: `h` the header, `b` the records. An entry without them (an
                // older format) is left out.
                let (mut header, mut batch, mut fields) = (None, None, fields.into_iter());
                while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
                    match name.as_slice() {
                        b"h" => header = Some(value),
                        b"b" => batch = Some(value),
                        _ => {}
                    }
                }
                Some((header?, batch?))
            })
            .collect())
    }

    /// Empties the shared journal.
    pub async fn clear_journal(&self) -> Result<(), StateError> {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(&self.journal_keys.0).arg(&self.journal_keys.1);
        let mut conn = self.conn.clone();
        self.run("clearing the journal", async move { cmd.query_async::<()>(&mut conn).await }).await
    }
}

/// What the client said, with what to do when it is the store's certificate that was not trusted.
fn reason(e: &redis::RedisError) -> String {
    let text = e.to_string();
    let lower = text.to_ascii_lowercase();
    if lower.contains("certificate") || lower.contains("unknownissuer") {
        format!(
            "{text}: the store's TLS certificate is not trusted; set [server] state_ca (or HOTROUTE_STATE_CA) to the \
             PEM file of the CA that signed it"
        )
    } else {
        text
    }
}

/// A partition id as it appears in key names: `%` and `:` percent-encoded, so that an id cannot reach into another
/// partition's keys (`a` and `a:count` stay apart) and one partition's keys can be matched alone.
fn partition_part(partition: &str) -> std::borrow::Cow<'_, str> {
    if !partition.contains([':', '%']) {
        return partition.into();
    }
    partition.replace('%', "%25").replace(':', "%3A").into()
}

/// `text` with the characters that are special in a Redis glob pattern escaped.
fn glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
