//! Templated responses: the MiniJinja environment, what a template sees of the request, and the helpers.
//!
//! Templates are compiled once, when the routes load; a syntax error is a load error. Each compiled template knows
//! which request variables it uses ([`Needs`]), so a template that only prints `{{ path.id }}` does not pay for
//! parsing the query, copying the headers or parsing a JSON body. The environment has no loader (templates cannot
//! include files) and no access to the process environment; its fuel bounds the work of one render.
//!
//! Helpers: `now(format)`, `uuid()`, `random_int(a, b)` and `fake(kind)`. Their randomness comes from one generator per
//! render: seeded from `[server] seed`, the route and its count when a seed is set (the n-th answer of a route is then
//! the same on every run), from the thread's random generator otherwise.

use std::cell::{Cell, RefCell};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fake::Fake;
use fake::faker as fk;
use fake::rand::rngs::SmallRng;
use fake::rand::{Rng, SeedableRng};
use minijinja::value::{Enumerator, Object, ObjectExt, Serde, Value};
use minijinja::{AutoEscape, Environment, Error, ErrorKind};

use crate::request::RequestData;

/// The stack templates are compiled and rendered on. MiniJinja recurses as deep as a template's expressions nest
/// (`- - - 1`, `a.b.c`, `elif` chains: up to one level per source byte when compiling) and as deep as the values it
/// builds nest (up to one level per instruction, which the fuel bounds). Measured in debug builds at about 1.4 KiB
/// per level, the worst case of either is below this size.
pub const TEMPLATE_STACK: usize = 256 << 20;
/// Template work runs in place when this much stack is left, else on a fresh [`TEMPLATE_STACK`].
const TEMPLATE_RED_ZONE: usize = 192 << 20;
/// The stack size of the threads that render templates (see [`RENDER_THREADS`]): enough that template work never
/// needs a fresh stack. Only those threads get it; the async workers and tokio's blocking pool keep the default,
/// as a few hundred threads with this much reserved each would take tens of GiB of address space.
pub const WORKER_STACK: usize = TEMPLATE_STACK + (8 << 20);

/// Runs template work (compiling or rendering) with [`TEMPLATE_STACK`] of stack, so that a deeply nested template
/// is an error instead of a stack overflow that would abort the whole server. On threads with that much stack left
/// (the render threads, see [`WORKER_STACK`]) it runs in place; elsewhere it gets a stack of its own for the call
/// (a map and unmap, some microseconds).
pub fn on_template_stack<R>(f: impl FnOnce() -> R) -> R {
    stacker::maybe_grow(TEMPLATE_RED_ZONE, TEMPLATE_STACK, f)
}

/// The longest one answer's templates may render. Fuel bounds the instructions a template runs, but not the work
/// of one instruction: printing or comparing a value built of shared nested parts (`{% set a = [a, a] %}` 24 times)
/// is one instruction that visits 2^24 parts. Output is checked against this deadline as it is written, and the
/// request waits no longer than this for its render, so a template never holds a request or a worker for longer.
pub const RENDER_TIMEOUT: Duration = Duration::from_secs(1);

/// How long a request waits for its render before it lets the other tasks of its async worker move elsewhere.
const RENDER_QUICK: Duration = Duration::from_millis(2);

/// How many threads render templates. A render runs there, never on an async worker; a render that overruns
/// [`RENDER_TIMEOUT`] in a comparison (which has no place to stop it) keeps its thread until it ends, so there
/// are a few.
pub const RENDER_THREADS: usize = 4;

/// How many answers may wait for a render thread; more are refused at once with 503.
pub const RENDER_QUEUE: usize = 256;

type RenderJob = Box<dyn FnOnce() + Send>;

/// The render threads' queue, started on first use; `None` if not even one thread could be started.
fn render_pool() -> Option<&'static std::sync::mpsc::SyncSender<RenderJob>> {
    static POOL: OnceLock<Option<std::sync::mpsc::SyncSender<RenderJob>>> = OnceLock::new();
    POOL.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<RenderJob>(RENDER_QUEUE);
        let rx = Arc::new(std::sync::Mutex::new(rx));
        let mut started = 0;
        for i in 0..RENDER_THREADS {
            let rx = rx.clone();
            let thread = std::thread::Builder::new().name(format!("hotroute-render-{i}")).stack_size(WORKER_STACK);
            let spawned = thread.spawn(move || {
                loop {
                    // The lock is held only to take a job, not to run it.
                    let job = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                }
            });
            match spawned {
                Ok(_) => started += 1,
                Err(e) => tracing::warn!("cannot start template render thread {i}: {e}"),
            }
        }
        (started > 0).then_some(tx)
    })
    .as_ref()
}

/// Why an answer's templates were not rendered: the server is too busy, or the render ran out of time.
#[derive(Debug, Clone)]
pub struct RenderRefused(pub String);

/// The most instructions one render may run before it is stopped with an error.
pub const FUEL: u64 = 100_000;

/// How `fake()` makes one kind of value: from the render's generator and `n` (the word count of `words`/`lorem`).
type Faker = fn(&mut SmallRng, usize) -> String;

/// Every kind `fake()` knows and how it is made: one table, so that a kind cannot be listed without a maker, or made
/// without being listed (in the load-time check, the error message and the README).
const FAKERS: &[(&str, Faker)] = &[
    ("first_name", |r, _| fk::name::en::FirstName().fake_with_rng(r)),
    ("last_name", |r, _| fk::name::en::LastName().fake_with_rng(r)),
    ("name", |r, _| fk::name::en::Name().fake_with_rng(r)),
    ("email", |r, _| fk::internet::en::SafeEmail().fake_with_rng(r)),
    ("username", |r, _| fk::internet::en::Username().fake_with_rng(r)),
    ("password", |r, _| fk::internet::en::Password(12..17).fake_with_rng(r)),
    ("phone", |r, _| fk::phone_number::en::PhoneNumber().fake_with_rng(r)),
    ("street", |r, _| street(r)),
    ("city", |r, _| fk::address::en::CityName().fake_with_rng(r)),
    ("state", |r, _| fk::address::en::StateName().fake_with_rng(r)),
    ("country", |r, _| fk::address::en::CountryName().fake_with_rng(r)),
    ("country_code", |r, _| fk::address::en::CountryCode().fake_with_rng(r)),
    ("zip", |r, _| fk::address::en::ZipCode().fake_with_rng(r)),
    ("address", |r, _| {
        let street = street(r);
        let city: String = fk::address::en::CityName().fake_with_rng(r);
        let state: String = fk::address::en::StateAbbr().fake_with_rng(r);
        let zip: String = fk::address::en::ZipCode().fake_with_rng(r);
        format!("{street}, {city}, {state} {zip}")
    }),
    ("latitude", |r, _| fk::address::en::Latitude().fake_with_rng(r)),
    ("longitude", |r, _| fk::address::en::Longitude().fake_with_rng(r)),
    ("company", |r, _| fk::company::en::CompanyName().fake_with_rng(r)),
    ("job_title", |r, _| fk::job::en::Title().fake_with_rng(r)),
    ("word", |r, _| fk::lorem::en::Word().fake_with_rng(r)),
    ("words", |r, n| fk::lorem::en::Words(n..n + 1).fake_with_rng::<Vec<String>, _>(r).join(" ")),
    ("sentence", |r, _| fk::lorem::en::Sentence(4..12).fake_with_rng(r)),
    ("paragraph", |r, _| fk::lorem::en::Paragraph(3..7).fake_with_rng(r)),
    ("lorem", |r, n| fk::lorem::en::Words(n..n + 1).fake_with_rng::<Vec<String>, _>(r).join(" ")),
    ("ipv4", |r, _| fk::internet::en::IPv4().fake_with_rng(r)),
    ("ipv6", |r, _| fk::internet::en::IPv6().fake_with_rng(r)),
    ("user_agent", |r, _| fk::internet::en::UserAgent().fake_with_rng(r)),
    ("color", |r, _| format!("#{:06x}", r.random_range(0..0x0100_0000u32))),
];

/// The kinds `fake()` knows, in the table's order.
pub fn fake_kinds() -> impl Iterator<Item = &'static str> {
    FAKERS.iter().map(|(kind, _)| *kind)
}

fn fake_kind_list() -> String {
    fake_kinds().collect::<Vec<_>>().join(", ")
}

/// The name of the filter that `json` templates use for their strings (not meant for route files).
const JSON_FILTER: &str = "hotroute_json";

/// Which request variables a template uses; only those are built for a render.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs(u16);

impl Needs {
    fn of(names: impl IntoIterator<Item = String>) -> Needs {
        let bits =
            names.into_iter().filter_map(|name| VARS.iter().position(|(n, _)| *n == name)).fold(0, |b, i| b | 1 << i);
        Needs(bits)
    }

    /// Both sets of variables.
    pub fn union(self, other: Needs) -> Needs {
        Needs(self.0 | other.0)
    }

    fn has(self, var: usize) -> bool {
        self.0 & (1 << var) != 0
    }
}

/// A compiled template: its name in the environment and the variables it uses.
#[derive(Debug, Clone)]
pub struct Compiled {
    name: String,
    /// The request variables it uses.
    pub needs: Needs,
    /// Whether it renders in place on the calling thread (see [`is_light`]); others go to a render thread.
    pub light: bool,
}

/// The deepest bracket nesting a template may have and still render in place: its values then nest no deeper than
/// this plus the request's JSON (serde_json stops at 128 levels), well inside [`LIGHT_RED_ZONE`].
const LIGHT_MAX_NESTING: usize = 32;

/// The stack a light template renders with: in place when this much is left (an async worker has 2 MiB), else on a
/// fresh [`LIGHT_STACK`].
const LIGHT_RED_ZONE: usize = 512 << 10;
/// See [`LIGHT_RED_ZONE`].
const LIGHT_STACK: usize = 8 << 20;

/// Whether a template can render in place, on the async worker that answers: it has no statements (`{% ... %}`: no
/// loops, `set`, macros, calls or recursion), so each of its instructions runs once and its fuel is spent in a few
/// microseconds of simple steps, and its brackets nest at most [`LIGHT_MAX_NESTING`] deep. What such a template can
/// build is bounded by its source and the request (itself bounded by `max_body`), and the deadline writer still stops
/// it at [`RENDER_TIMEOUT`]. The one statement allowed is the `{% filter hotroute_json %}` block that `json` templates
/// wrap text in, which runs its body once. Anything else (a `{% for %}`, a `{% set a = [a, a] %}` doubling a value)
/// goes to a render thread, where a slow comparison holds no async worker.
pub fn is_light(source: &str) -> bool {
    let open = format!("{{% filter {JSON_FILTER} %}}");
    let stripped = source.replace(&open, "").replace("{% endfilter %}", "");
    if stripped.contains("{%") {
        return false;
    }
    let mut depth = 0usize;
    for b in stripped.bytes() {
        match b {
            b'(' | b'[' | b'{' => {
                depth += 1;
                if depth > LIGHT_MAX_NESTING + 2 {
                    return false;
                }
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    true
}

/// The template environment of one router.
#[derive(Debug)]
pub struct Templates {
    /// Shared with the render threads, which may still run a render that overran its deadline after the answer.
    env: Arc<Environment<'static>>,
    seed: Option<u64>,
}

impl Templates {
    /// An environment with the helpers and nothing from the outside world. `seed` makes the helpers repeatable.
    pub fn new(seed: Option<u64>) -> Self {
        let mut env = Environment::new();
        // Bounded work per render, so a runaway loop in a template answers 500 instead of hanging a worker.
        env.set_fuel(Some(FUEL));
        // Responses are JSON, text or headers, not HTML: never escape, whatever the template's name looks like.
        env.set_auto_escape_callback(|_| AutoEscape::None);
        env.add_function("now", now);
        env.add_function("uuid", uuid);
        env.add_function("random_int", random_int);
        env.add_function("fake", fake_data);
        env.add_filter(JSON_FILTER, json_filter);
        // MiniJinja's own `int` says "invalid float literal" for `/users/abc`: say what the value is instead.
        env.add_filter("int", int_filter);
        // Python's string, list and dict methods (`'a,b'.split(',')`, `name.startswith('x')`, `d.items()`), which
        // users of Jinja2 expect; minijinja-contrib is MiniJinja's own companion crate.
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_filter("b64encode", b64encode);
        env.add_filter("b64decode", b64decode);
        env.add_filter("sha256", sha256);
        env.add_filter("fromjson", fromjson);
        Templates { env: Arc::new(env), seed }
    }

    /// Compiles `source` under `name` (unique per template, e.g. `routes.toml:12 body`).
    /// Sources over [`crate::config::limits::MAX_TEMPLATE_SOURCE`] are refused: their nesting bounds the stack needed.
    pub fn compile(&mut self, name: String, source: String) -> Result<Compiled, Error> {
        let limit = crate::config::limits::MAX_TEMPLATE_SOURCE;
        if source.len() > limit {
            let detail = format!(
                "the template is {} bytes, over the limit of {limit} bytes; serve large fixed content without \
                 `template = true`, e.g. with `file =`",
                source.len()
            );
            return Err(Error::new(minijinja::ErrorKind::InvalidOperation, detail));
        }
        // An unknown kind written as a literal is known now: say it at load, like a syntax error, not per request.
        if let Some(kind) = unknown_fake_kind(&source) {
            let hint = crate::util::text::did_you_mean(&kind, fake_kinds())
                .map(|k| format!("did you mean `{k}`? "))
                .unwrap_or_default();
            let detail = format!("fake('{kind}'): unknown kind; {hint}the kinds are {}", fake_kind_list());
            return Err(Error::new(minijinja::ErrorKind::InvalidOperation, detail));
        }
        // Compiling recurses as deep as the template nests: on a stack big enough for the worst case.
        crate::route::template::on_template_stack(|| {
            // Unique while the routes load, so this clones nothing.
            let env = Arc::make_mut(&mut self.env);
            env.add_template_owned(name.clone(), source)?;
            let light = is_light(self.env.get_template(&name)?.source());
            let needs = Needs::of(self.env.get_template(&name)?.undeclared_variables(false));
            Ok(Compiled { name, needs, light })
        })
    }

    /// Starts the renders of one answer on this thread: its helpers draw from one generator, seeded from `rng_key`
    /// (the route and its count) when the environment has a seed.
    pub fn begin(&self, rng_key: (u64, u64)) {
        let seed = self.seed.map(|s| mix(mix(s, rng_key.0), rng_key.1));
        SEED.with(|c| c.set(seed));
        RNG.with(|r| r.borrow_mut().take());
    }

    /// Renders a compiled template with `ctx` (made by [`context`]), after [`Templates::begin`].
    /// Runs on a stack big enough for the deepest values the fuel allows (see [`crate::route::template::on_template_stack`]);
    /// the error is formatted there too, as it can hold the template's values.
    #[cfg(test)]
    pub fn render(&self, template: &Compiled, ctx: &Value) -> Result<String, RenderError> {
        crate::route::template::on_template_stack(|| {
            self.env.get_template(&template.name).and_then(|t| t.render(ctx)).map_err(|e| RenderError(format!("{e:#}")))
        })
    }

    /// Renders the templates of one answer, in order, on a render thread (see [`RENDER_THREADS`]), with the helpers
    /// drawing from the generator of `rng_key` (as [`Templates::begin`]). Stops at the first error. Waits for the
    /// result for at most [`RENDER_TIMEOUT`], and the render itself stops writing output at that deadline.
    ///
    /// The wait blocks the calling thread, for at most [`RENDER_TIMEOUT`]: the router answers synchronously.
    pub fn render_answer(
        &self,
        rng_key: (u64, u64),
        ctx: Value,
        templates: Vec<Compiled>,
    ) -> Result<Vec<Result<String, RenderError>>, RenderRefused> {
        if templates.iter().all(|t| t.light) {
            return Ok(self.render_inline(rng_key, &ctx, &templates));
        }
        let Some(pool) = render_pool() else {
            return Err(RenderRefused("no thread could be started to render templates".into()));
        };
        let deadline = Instant::now() + RENDER_TIMEOUT;
        let (env, seed) = (self.env.clone(), self.seed);
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let job: RenderJob = Box::new(move || {
            if Instant::now() >= deadline {
                return; // Waited in the queue past its deadline: the request has been answered already.
            }
            let renderer = Templates { env, seed };
            renderer.begin(rng_key);
            let mut out = Vec::with_capacity(templates.len());
            for t in &templates {
                let result = renderer.render_until(t, &ctx, deadline);
                let failed = result.is_err();
                out.push(result);
                if failed {
                    break;
                }
            }
            let _ = tx.send(out);
        });
        if let Err(e) = pool.try_send(job) {
            let why = match e {
                std::sync::mpsc::TrySendError::Full(_) => {
                    format!("{RENDER_QUEUE} answers already wait for a template render thread; try again shortly")
                }
                std::sync::mpsc::TrySendError::Disconnected(_) => "the template render threads are gone".to_owned(),
            };
            return Err(RenderRefused(why));
        }
        // Most renders take microseconds: wait for them in place. A longer one would hold this async worker and
        // every task queued on it, so the wait goes on inside `block_in_place`, which hands the worker's other
        // tasks to another thread meanwhile (on a multi-thread runtime; elsewhere there is no one to hand them to).
        let waited = match rx.recv_timeout(RENDER_QUICK) {
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                let left = deadline.saturating_duration_since(Instant::now());
                let multi_thread = tokio::runtime::Handle::try_current()
                    .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
                if multi_thread { tokio::task::block_in_place(|| rx.recv_timeout(left)) } else { rx.recv_timeout(left) }
            }
            other => other,
        };
        waited.map_err(|_| {
            RenderRefused(format!(
                "the templates took longer than {} ms to render (printing or comparing a large nested value?)",
                RENDER_TIMEOUT.as_millis()
            ))
        })
    }

    /// Renders light templates (see [`is_light`]) here, on the calling thread: a handoff to a render thread costs
    /// more than such a render. The deadline writer still stops it at [`RENDER_TIMEOUT`], and it runs with at least
    /// [`LIGHT_RED_ZONE`] of stack.
    fn render_inline(
        &self,
        rng_key: (u64, u64),
        ctx: &Value,
        templates: &[Compiled],
    ) -> Vec<Result<String, RenderError>> {
        let deadline = Instant::now() + RENDER_TIMEOUT;
        stacker::maybe_grow(LIGHT_RED_ZONE, LIGHT_STACK, || {
            self.begin(rng_key);
            let mut out = Vec::with_capacity(templates.len());
            for t in templates {
                let result = self.render_plain(t, ctx, deadline);
                let failed = result.is_err();
                out.push(result);
                if failed {
                    break;
                }
            }
            out
        })
    }

    /// Renders like [`Templates::render`], stopping with an error once `deadline` has passed (checked whenever
    /// output is written).
    fn render_until(&self, template: &Compiled, ctx: &Value, deadline: Instant) -> Result<String, RenderError> {
        crate::route::template::on_template_stack(|| self.render_plain(template, ctx, deadline))
    }

    /// One render with the deadline writer, on this thread's stack as it is.
    fn render_plain(&self, template: &Compiled, ctx: &Value, deadline: Instant) -> Result<String, RenderError> {
        {
            let mut out = DeadlineWriter { out: Vec::new(), deadline };
            let rendered =
                self.env.get_template(&template.name).and_then(|t| t.render_captured_to(ctx.clone(), &mut out));
            match rendered {
                Ok(_) => String::from_utf8(out.out).map_err(|e| RenderError(format!("the output is not UTF-8: {e}"))),
                Err(_) if Instant::now() >= deadline => Err(RenderError(format!(
                    "the template took longer than {} ms to render (printing a large nested value?)",
                    RENDER_TIMEOUT.as_millis()
                ))),
                Err(e) => Err(RenderError(format!("{e:#}"))),
            }
        }
    }
}

/// Collects a render's output and fails the render once its deadline has passed: writing is where printing a huge
/// value spends its time, and the only place it can be stopped.
struct DeadlineWriter {
    out: Vec<u8>,
    deadline: Instant,
}

impl std::io::Write for DeadlineWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if Instant::now() >= self.deadline {
            return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "the render ran out of time"));
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Why a render failed, already formatted (with MiniJinja's details).
#[derive(Debug, Clone)]
pub struct RenderError(pub String);

impl std::fmt::Display for RenderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The variables of one render.
#[derive(Debug)]
pub struct Vars<'a, 'r> {
    /// The request.
    pub req: &'a RequestData<'r>,
    /// Captured path parameters.
    pub params: &'a [(&'a str, &'a str)],
    /// How many times the route has answered, this answer included.
    pub count: u64,
    /// The router's scenarios, for `scenario.<name>`.
    pub scenarios: &'a super::Scenarios,
    /// The request's partition (`[server] isolate`), whose scenario states templates see; none: the default's.
    pub partition: Option<&'a super::partition::Partition>,
}

/// How one request variable is made for a render.
type Maker = fn(&Vars<'_, '_>) -> Value;

/// Every request variable templates see and how it is made: one table for the names (what a template uses, what it
/// can list) and the values, so that a variable cannot be added in one place and forgotten in another. Its index is
/// its bit in [`Needs`] (at most 16).
const VARS: &[(&str, Maker)] = &[
    ("method", |v| Value::from(v.req.view.method.as_str())),
    // Decoded like `query`: `/users/Jos%C3%A9` gives `José`, as the user wrote it, not as the client escaped it.
    ("path", |v| {
        let decoded = |raw: &str| Value::from(percent_encoding::percent_decode_str(raw).decode_utf8_lossy().as_ref());
        Value::from_object(Pairs(v.params.iter().map(|(k, v)| ((*k).to_owned(), decoded(v))).collect()))
    }),
    ("url", |v| {
        let uri = v.req.view.uri;
        Value::from(uri.path_and_query().map_or_else(|| uri.path(), |pq| pq.as_str()))
    }),
    ("url_path", |v| Value::from(v.req.view.uri.path())),
    ("query", |v| {
        let mut query: Vec<(String, Value)> = Vec::new();
        for (k, val) in v.req.query() {
            if !query.iter().any(|(seen, _)| seen == k) {
                query.push((k.clone(), Value::from(val.as_str())));
            }
        }
        Value::from_object(Pairs(query))
    }),
    ("headers", |v| {
        let mut headers: Vec<(String, String)> = Vec::with_capacity(v.req.view.headers.len());
        for (name, value) in v.req.view.headers {
            let value = String::from_utf8_lossy(value.as_bytes());
            match headers.iter_mut().find(|(n, _)| n == name.as_str()) {
                Some((_, joined)) => {
                    joined.push_str(", ");
                    joined.push_str(&value);
                }
                None => headers.push((name.as_str().to_owned(), value.into_owned())),
            }
        }
        Value::from_object(Pairs(headers.into_iter().map(|(k, v)| (k, Value::from(v))).collect()))
    }),
    ("body", |v| Value::from(v.req.body_text().into_owned())),
    ("json", |v| v.req.json().map_or(Value::from(()), |j| Value::from(Serde(j)))),
    ("count", |v| Value::from(v.count)),
    ("scenario", |v| {
        let state = |name: &str, default: std::sync::Arc<String>| match v.partition {
            None => default,
            Some(p) => {
                p.scenario(name).unwrap_or_else(|| std::sync::Arc::new(crate::config::SCENARIO_START.to_owned()))
            }
        };
        Value::from_object(Pairs(
            v.scenarios.states().map(|(k, s)| (k.to_owned(), Value::from(state(k, s).as_str()))).collect(),
        ))
    }),
];

// Each variable is a bit of `Needs(u16)`.
const _: () = assert!(VARS.len() <= 16);

/// Builds the context for templates that use `needs`: only those variables are made.
pub fn context(vars: &Vars<'_, '_>, needs: Needs) -> Value {
    let mut ctx = RenderContext::default();
    for (i, (_, make)) in VARS.iter().enumerate() {
        if needs.has(i) {
            ctx.values[i] = Some(make(vars));
        }
    }
    Value::from_object(ctx)
}

/// The variables of one render, looked up by name: cheaper to make than a map, and only what is used is there.
#[derive(Debug, Default)]
struct RenderContext {
    /// By the index of [`VARS`].
    values: [Option<Value>; VARS.len()],
}

impl Object for RenderContext {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let key = key.as_str()?;
        VARS.iter().position(|(name, _)| *name == key).and_then(|i| self.values[i].clone())
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(VARS.iter().map(|(name, _)| Value::from(*name)).collect())
    }
}

/// A small map from names to values (path parameters, query parameters, headers), searched in order.
#[derive(Debug)]
struct Pairs(Vec<(String, Value)>);

impl Object for Pairs {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let key = key.as_str()?;
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        self.mapped_enumerator(|this| Box::new(this.0.iter().map(|(k, _)| Value::from(k.as_str()))))
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(self.0.len())
    }
}

/// The filter that turns a value into JSON text inside a `json` template. Unlike MiniJinja's `tojson`, it does not
/// escape `<`, `>`, `&` and `'` (the output is a JSON body, not HTML).
fn json_filter(value: &Value) -> Result<Value, Error> {
    if let Some(s) = value.as_str() {
        return Ok(Value::from_safe_string(serde_json::Value::from(s).to_string()));
    }
    serde_json::to_string(value)
        .map(Value::from_safe_string)
        .map_err(|e| invalid(format!("cannot write this value as JSON: {e}")))
}

thread_local! {
    static SEED: Cell<Option<u64>> = const { Cell::new(None) };
    static RNG: RefCell<Option<SmallRng>> = const { RefCell::new(None) };
}

/// Runs `f` with this render's generator, made on first use: renders are synchronous, so the thread-local one is
/// the current render's.
fn with_rng<T>(f: impl FnOnce(&mut SmallRng) -> T) -> T {
    RNG.with(|r| {
        let mut slot = r.borrow_mut();
        let rng = slot.get_or_insert_with(|| match SEED.with(Cell::get) {
            Some(seed) => SmallRng::seed_from_u64(seed),
            None => SmallRng::from_rng(&mut fake::rand::rng()),
        });
        f(rng)
    })
}

/// SplitMix64's finalizer over two words: a well-spread seed from (seed, route) and (that, count).
fn mix(a: u64, b: u64) -> u64 {
    let mut z = a ^ b.wrapping_add(0x9e37_79b9_7f4a_7c15).wrapping_add(a << 6).wrapping_add(a >> 2);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn invalid(message: String) -> Error {
    Error::new(ErrorKind::InvalidOperation, message)
}

/// `now()`: the current time in UTC. Without a format, RFC 3339 (`2024-05-01T12:30:00Z`); `"http"` gives the
/// HTTP date form, `"unix"` and `"unix_ms"` numbers, anything else is a strftime-like format (`%Y-%m-%d`).
fn now(format: Option<&str>) -> Result<Value, Error> {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    match format.unwrap_or("rfc3339") {
        "unix" => Ok(Value::from(since.as_secs())),
        "unix_ms" => Ok(Value::from(u64::try_from(since.as_millis()).unwrap_or(u64::MAX))),
        "http" => Ok(Value::from(httpdate::fmt_http_date(UNIX_EPOCH + since))),
        "rfc3339" | "iso" => Ok(Value::from(strftime("%Y-%m-%dT%H:%M:%SZ", since.as_secs(), since.subsec_nanos())?)),
        f => Ok(Value::from(strftime(f, since.as_secs(), since.subsec_nanos())?)),
    }
}

/// Formats a UTC time given as seconds since 1970 with a strftime-like format.
pub fn strftime(format: &str, secs: u64, nanos: u32) -> Result<String, Error> {
    const DAYS: [&str; 7] = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (hour, minute, second) = (rem / 3600, rem % 3600 / 60, rem % 60);
    let (year, month, day) = crate::util::time::civil_from_days(days);
    let weekday = (days + 4).rem_euclid(7) as usize;
    let yday = days - crate::util::time::days_from_civil(year, 1, 1) + 1;
    let mut out = String::with_capacity(format.len() + 16);
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('Y') => push_num(&mut out, year.unsigned_abs(), 4),
            Some('y') => push_num(&mut out, year.rem_euclid(100) as u64, 2),
            Some('m') => push_num(&mut out, month.into(), 2),
            Some('d') => push_num(&mut out, day.into(), 2),
            Some('e') => {
                if day < 10 {
                    out.push(' ');
                }
                push_num(&mut out, day.into(), 1);
            }
            Some('H') => push_num(&mut out, hour, 2),
            Some('I') => push_num(&mut out, if hour % 12 == 0 { 12 } else { hour % 12 }, 2),
            Some('p') => out.push_str(if hour < 12 { "AM" } else { "PM" }),
            Some('M') => push_num(&mut out, minute, 2),
            Some('S') => push_num(&mut out, second, 2),
            Some('f') => push_num(&mut out, (nanos / 1000).into(), 6),
            Some('3') if chars.next() == Some('f') => push_num(&mut out, (nanos / 1_000_000).into(), 3),
            Some('j') => push_num(&mut out, yday as u64, 3),
            Some('a') => out.push_str(&DAYS[weekday][..3]),
            Some('A') => out.push_str(DAYS[weekday]),
            Some('b') => out.push_str(&MONTHS[(month - 1) as usize][..3]),
            Some('B') => out.push_str(MONTHS[(month - 1) as usize]),
            Some('s') => push_num(&mut out, secs, 1),
            Some('z') => out.push_str("+0000"),
            Some('Z') => out.push_str("UTC"),
            Some('T') => {
                push_num(&mut out, hour, 2);
                out.push(':');
                push_num(&mut out, minute, 2);
                out.push(':');
                push_num(&mut out, second, 2);
            }
            Some('F') => {
                push_num(&mut out, year.unsigned_abs(), 4);
                out.push('-');
                push_num(&mut out, month.into(), 2);
                out.push('-');
                push_num(&mut out, day.into(), 2);
            }
            Some('%') => out.push('%'),
            other => {
                let spec = other.map_or_else(|| "%".to_owned(), |c| format!("%{c}"));
                return Err(invalid(format!(
                    "now(): unknown format `{spec}`; use %Y %m %d %H %M %S %3f %f %j %a %A %b %B %y %e %I %p %s %z %Z %T %F, or \"rfc3339\", \"http\", \"unix\", \"unix_ms\""
                )));
            }
        }
    }
    Ok(out)
}

/// Writes `n` in decimal, zero-padded to `width` digits.
fn push_num(out: &mut String, mut n: u64, width: usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for _ in (digits.len() - i)..width {
        out.push('0');
    }
    out.extend(digits[i..].iter().map(|&d| char::from(d)));
}

/// `uuid()`: a random version 4 UUID.
fn uuid() -> String {
    let mut bytes: [u8; 16] = with_rng(|r| r.random());
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(36);
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    s
}

/// `random_int(a, b)`: a random integer from `a` to `b`, both included.
fn random_int(a: i64, b: i64) -> Result<i64, Error> {
    if a > b {
        return Err(invalid(format!("random_int({a}, {b}): the first bound is larger than the second")));
    }
    Ok(with_rng(|r| r.random_range(a..=b)))
}

/// The first `fake('kind')` or `fake("kind")` call in `source` whose literal kind is not one of [`fake_kinds`]. A kind
/// computed at render time is checked then.
fn unknown_fake_kind(source: &str) -> Option<String> {
    static CALL: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r#"\bfake\(\s*(?:'([^'\\]*)'|"([^"\\]*)")"#).expect("the fake() pattern compiles")
    });
    CALL.captures_iter(source)
        .filter_map(|c| c.get(1).or_else(|| c.get(2)))
        .map(|m| m.as_str())
        .find(|kind| !fake_kinds().any(|k| k == *kind))
        .map(str::to_owned)
}

/// `value | int`: a number as an integer (a float is cut toward zero), a string holding a number the same way, and
/// for anything else an error that quotes the value, e.g. for a path parameter that is not a number.
fn int_filter(value: Value) -> Result<Value, Error> {
    if let Ok(n) = i64::try_from(value.clone()) {
        return Ok(Value::from(n));
    }
    if let Ok(f) = f64::try_from(value.clone())
        && f.is_finite()
    {
        return Ok(Value::from(f.trunc() as i64));
    }
    if let Some(text) = value.as_str() {
        let text = text.trim();
        if let Ok(n) = text.parse::<i64>() {
            return Ok(Value::from(n));
        }
        if let Ok(f) = text.parse::<f64>()
            && f.is_finite()
        {
            return Ok(Value::from(f.trunc() as i64));
        }
        return Err(invalid(format!("`{text}` is not a number, so `int` cannot make it one")));
    }
    Err(invalid(format!("{value} ({}) is not a number, so `int` cannot make it one", value.kind())))
}

/// `value | b64encode`: the standard base64 (with padding) of a string's UTF-8 bytes.
fn b64encode(value: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(value)
}

/// `value | b64decode`: the text that standard or URL-safe base64 (padded or not) encodes; an error says why not.
fn b64decode(value: &str) -> Result<String, Error> {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let text = value.trim();
    let bytes = [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|e| e.decode(text).ok())
        .ok_or_else(|| invalid(format!("b64decode: `{}` is not base64", short_text(text))))?;
    String::from_utf8(bytes).map_err(|_| invalid("b64decode: the decoded bytes are not UTF-8 text".into()))
}

/// `value | sha256`: the SHA-256 of a string's UTF-8 bytes, as 64 lowercase hex digits.
fn sha256(value: &str) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(value.as_bytes());
    let mut hex = String::with_capacity(64);
    for b in digest.iter() {
        let _ = std::fmt::Write::write_fmt(&mut hex, format_args!("{b:02x}"));
    }
    hex
}

/// `text | fromjson`: the value that JSON text holds (`tojson`'s reverse), e.g. a JSON string inside a form field
/// or a header. serde_json stops at 128 levels of nesting, and the text is at most the request's size.
fn fromjson(value: &str) -> Result<Value, Error> {
    serde_json::from_str::<serde_json::Value>(value)
        .map(|j| Value::from(Serde(j)))
        .map_err(|e| invalid(format!("fromjson: `{}` is not JSON: {e}", short_text(value))))
}

/// Text cut to a readable length for error messages.
fn short_text(s: &str) -> String {
    match s.char_indices().nth(40) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_owned(),
    }
}

/// `fake(kind)` or `fake(kind, n)`: realistic data of a kind from [`FAKERS`] (English locale).
fn fake_data(kind: &str, n: Option<u32>) -> Result<Value, Error> {
    let n = n.unwrap_or(5).clamp(1, 1000) as usize;
    let Some((_, make)) = FAKERS.iter().find(|(k, _)| *k == kind) else {
        return Err(invalid(format!("fake(\"{kind}\"): unknown kind; use one of {}", fake_kind_list())));
    };
    Ok(Value::from(with_rng(|r| make(r, n))))
}

fn street(r: &mut SmallRng) -> String {
    use fk::address::en as addr;
    let number: String = addr::BuildingNumber().fake_with_rng(r);
    let name: String = addr::StreetName().fake_with_rng(r);
    let suffix: String = addr::StreetSuffix().fake_with_rng(r);
    format!("{number} {name} {suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strftime_agrees_with_known_dates() {
        // 2000-02-29T23:59:58Z, a Tuesday, day 60 of a leap year.
        let t = 951_868_798;
        assert_eq!(strftime("%Y-%m-%dT%H:%M:%SZ", t, 0).unwrap(), "2000-02-29T23:59:58Z");
        assert_eq!(strftime("%a %A %b %B %j %y %e %I %p", t, 0).unwrap(), "Tue Tuesday Feb February 060 00 29 11 PM");
        assert_eq!(strftime("%3f %f %s %z %Z %%", t, 123_456_789).unwrap(), "123 123456 951868798 +0000 UTC %");
        assert_eq!(strftime("%F %T", 0, 0).unwrap(), "1970-01-01 00:00:00");
        assert!(strftime("%Q", 0, 0).is_err());
        // Agrees with httpdate over a spread of times.
        for secs in (0..4_102_444_800u64).step_by(86_400 * 37 + 3_607) {
            let http = httpdate::fmt_http_date(UNIX_EPOCH + std::time::Duration::from_secs(secs));
            assert_eq!(strftime("%a, %d %b %Y %H:%M:%S GMT", secs, 0).unwrap(), http);
        }
    }

    #[test]
    fn json_template_keeps_the_structure_and_types() {
        let v = serde_json::json!({"id": "{{ path.id }}", "n": 3, "k{{x}}": "a {{ b }} c", "l": ["x", "{{ y }}"]});
        let src = crate::config::json_template::json_template_source(&v);
        let mut t = Templates::new(None);
        let c = t.compile("t".into(), src).unwrap();
        let ctx = minijinja::context! { path => minijinja::context!{ id => "7" }, b => "\"q\"", y => 5 };
        t.begin((0, 0));
        let out: serde_json::Value = serde_json::from_str(&t.render(&c, &ctx).unwrap()).unwrap();
        assert_eq!(out, serde_json::json!({"id": "7", "n": 3, "k{{x}}": "a \"q\" c", "l": ["x", 5]}));
    }

    #[test]
    fn only_statement_free_shallow_templates_render_in_place() {
        assert!(is_light("{{ path.id }} and {{ json.items | length }}"));
        assert!(is_light(&crate::config::json_template::json_template_source(
            &serde_json::json!({"a": "x {{ path.id }} y", "b": "{{ count }}"})
        )));
        assert!(!is_light("{% for i in range(10) %}{{ i }}{% endfor %}"));
        assert!(!is_light("{% set a = [1] %}{{ a }}"));
        assert!(!is_light("{% filter hotroute_json %}{% endfilter %}{% macro m() %}{% endmacro %}"));
        assert!(!is_light(&format!("{{{{ {}1{} }}}}", "[".repeat(40), "]".repeat(40))));
        let mut t = Templates::new(None);
        assert!(t.compile("a".into(), "{{ path.id }}".into()).unwrap().light);
        assert!(!t.compile("b".into(), "{% if 1 %}x{% endif %}".into()).unwrap().light);
    }

    #[test]
    fn needs_lists_only_the_variables_used() {
        let mut t = Templates::new(None);
        let c = t.compile("a".into(), "{{ path.id }} {{ count }}".into()).unwrap();
        let bit = |name: &str| 1 << VARS.iter().position(|(n, _)| *n == name).unwrap();
        assert_eq!(c.needs, Needs(bit("path") | bit("count")));
    }

    #[test]
    fn seeded_helpers_repeat() {
        let mut t = Templates::new(Some(42));
        let c = t.compile("a".into(), "{{ uuid() }} {{ random_int(1, 1000000) }} {{ fake('name') }}".into()).unwrap();
        let ctx = Value::from(());
        let render = |key| {
            t.begin(key);
            t.render(&c, &ctx).unwrap()
        };
        let a = render((1, 1));
        assert_eq!(a, render((1, 1)));
        assert_ne!(a, render((1, 2)));
    }
}
