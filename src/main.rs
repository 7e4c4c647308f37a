//! The `hotroute` command: parses arguments and calls the library.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use hotroute::{Live, LogFormat, ServeOptions, Server, WatchHandle};

/// mimalloc instead of glibc's malloc: a reload allocates the new router while the old one is still alive and frees
/// the old one afterwards, and after a few reloads glibc spends most of the load consolidating its fragmented heap
/// (a 10,000-route reload: ~160 ms with glibc, ~60 ms with mimalloc). benches/reload.rs uses the same allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Serve the routes in a TOML file; edit the file and the running server answers with the new routes.
#[derive(Debug, Parser)]
#[command(version, about, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// The route file to serve.
    #[arg(default_value = "routes.toml")]
    routes: PathBuf,
    /// Address to listen on, e.g. 0.0.0.0:8080; overrides [server].listen.
    #[arg(long, value_name = "ADDR", conflicts_with = "port")]
    listen: Option<String>,
    /// Shorthand for --listen 127.0.0.1:PORT; 0 picks a free port.
    #[arg(short, long)]
    port: Option<u16>,
    /// Serve the operations of this OpenAPI 3.0 or 3.1 document (JSON or YAML) after the route file's routes, like
    /// [server] openapi (which it overrides); watched and reloaded with them.
    #[arg(long, value_name = "FILE")]
    openapi: Option<PathBuf>,
    /// Do not reload the routes when the files change (SIGHUP and POST /__admin/reload still reload).
    #[arg(long)]
    no_watch: bool,
    /// At shutdown, write the coverage report (routes never hit, requests no route answered) to FILE as JSON.
    #[arg(long, value_name = "FILE")]
    coverage: Option<PathBuf>,
    /// Log level for stderr: error, warn, info, debug, trace or off, or a filter like `hotroute=debug`; RUST_LOG
    /// takes precedence where it names a level for hotroute.
    #[arg(long, value_name = "LEVEL", default_value = "info", value_parser = parse_log_level)]
    log_level: String,
    /// Write one access-log line per request to stderr (also `[server] log_requests = true`).
    #[arg(long)]
    log_requests: bool,
    /// Access-log format: text or json (one JSON object per line). Implies --log-requests.
    #[arg(long, value_name = "FORMAT")]
    log_format: Option<LogFormat>,
    /// Trace each connection and request on stderr: accept, socket fd, task, protocol, routing, write, close.
    #[arg(long)]
    trace: bool,
    /// The admin API's token: admin requests must send `Authorization: Bearer TOKEN` (the dashboard takes it as
    /// /__admin/#token=TOKEN). Also HOTROUTE_ADMIN_TOKEN or [server] admin_token. Off loopback, one is made and
    /// printed on stderr when none is given.
    #[arg(long, value_name = "TOKEN")]
    admin_token: Option<String>,
    /// Worker threads serving requests (default: one per CPU core). Fewer leave cores to a load generator or the
    /// code under test on the same machine.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
    /// Serve HTTPS with a self-signed certificate for localhost, 127.0.0.1 and ::1, made at start; its PEM is
    /// written to a file whose path is printed on stderr (like [server] tls = "self-signed").
    #[arg(long)]
    tls: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check a route file: exit 0 if it is good, or print every error and exit 1.
    Check {
        /// The route file to check.
        #[arg(default_value = "routes.toml")]
        routes: PathBuf,
    },
    /// Print the JSON Schema of the route file (editors use it to complete and check routes.toml).
    Schema,
    /// Write a route file from another description of an API.
    #[command(subcommand)]
    Import(Import),
    /// Run a recording proxy: forward every request to the upstream, and write each new exchange to a route file
    /// as a [[route]] (rewritten atomically after each, so another hotroute can serve it hot).
    Record {
        /// The upstream, http(s)://host[:port][/base].
        #[arg(long, value_name = "URL")]
        upstream: String,
        /// The route file to write (its existing routes are kept).
        #[arg(short, long, value_name = "FILE", default_value = "recorded.toml")]
        out: PathBuf,
        /// Port to listen on, on 127.0.0.1; 0 picks a free port.
        #[arg(short, long, default_value_t = 3000)]
        port: u16,
        /// Another response header to write as "<redacted>" (besides authorization, cookie, set-cookie,
        /// x-api-key); repeatable.
        #[arg(long, value_name = "HEADER")]
        redact: Vec<String>,
        /// A JSON key whose values are written as "<redacted>"; repeatable.
        #[arg(long, value_name = "KEY")]
        redact_json: Vec<String>,
        /// Log level for stderr, as for serving.
        #[arg(long, value_name = "LEVEL", default_value = "info", value_parser = parse_log_level)]
        log_level: String,
    },
}

#[derive(Debug, Subcommand)]
enum Import {
    /// An OpenAPI 3.0 or 3.1 document (JSON or YAML): a route per operation answering its documented example.
    Openapi {
        /// The OpenAPI document; `$ref`s to other files are read relative to its folder.
        spec: PathBuf,
        /// Write the routes to FILE instead of standard output.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// WireMock stub mappings: a `mappings/` folder (with `__files/` beside it), a file of `mappings`, or one mapping.
    Wiremock {
        /// The mappings folder, the WireMock root holding it, or one JSON file.
        mappings: PathBuf,
        /// Write the routes to FILE instead of standard output.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// A Mockoon environment (its JSON data file or export): a route per response, its rules as `match`.
    Mockoon {
        /// The environment file; `filePath` bodies are read relative to its folder.
        environment: PathBuf,
        /// Write the routes to FILE instead of standard output.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// A HAR file (a browser's "Save all as HAR"): a route per distinct request, answering what it got, secrets
    /// redacted (as `hotroute record` writes them).
    Har {
        /// The HAR file.
        har: PathBuf,
        /// Write the routes to FILE instead of standard output (body files go beside it, in FILE-stem.bodies/).
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Another response header to write as "<redacted>"; repeatable.
        #[arg(long, value_name = "HEADER")]
        redact: Vec<String>,
        /// A JSON key whose values are written as "<redacted>"; repeatable.
        #[arg(long, value_name = "KEY")]
        redact_json: Vec<String>,
    },
}

/// Handing freed memory back to the system: mimalloc's purge delay and each worker's collection when it goes idle.
///
/// mimalloc returns an emptied page to the system (a purge) once its purge delay has passed, and a thread's own pages
/// only when that thread allocates, frees or collects. Workers that go quiet after a spike do none of that: 1000 clients
/// each holding a 1 MiB body left 290 MiB behind after they had gone. Purging at once (a delay of 0, the setting before
/// this) did not give those pages back either (180 to 220 MiB stayed), and it made every reuse of a page a page fault:
/// a proxied request paid 0.35 of them, 7% of its CPU (BENCHMARKS.md, issue 14). So the delay stays mimalloc's (1 s),
/// and a worker that parks (has nothing to do) collects its pages, forced, at most once a second; one that parks again
/// within the second owes a collection, and a watcher thread wakes the runtime once a second until none is owed.
mod memory {
    use std::cell::Cell;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    /// At most one forced collection per worker this often (each costs a walk over the worker's pages, and pages
    /// purged then fault in again when reused).
    const EVERY: Duration = Duration::from_secs(1);

    unsafe extern "C" {
        fn mi_collect(force: bool);
    }

    /// A worker parked without collecting: the watcher wakes the runtime so that it does.
    static OWED: AtomicBool = AtomicBool::new(false);

    thread_local! {
        static LAST: Cell<Option<Instant>> = const { Cell::new(None) };
    }

    /// tokio's `on_thread_park`: the worker has nothing to do.
    pub(super) fn on_park() {
        let now = Instant::now();
        if LAST.get().is_some_and(|last| now.duration_since(last) < EVERY) {
            OWED.store(true, Ordering::Relaxed);
            return;
        }
        LAST.set(Some(now));
        // SAFETY: mimalloc's collection of the calling thread's own heap; it takes no pointers.
        unsafe { mi_collect(true) };
    }

    /// Starts the watcher: once a second, while a collection is owed, it gives each worker an empty task, after which
    /// a worker parks again and collects. Best effort: tokio chooses which parked workers wake.
    pub(super) fn watch(runtime: tokio::runtime::Handle, workers: usize) {
        let watcher = std::thread::Builder::new().name("hotroute-memory".into()).spawn(move || {
            loop {
                std::thread::sleep(EVERY);
                if OWED.swap(false, Ordering::Relaxed) {
                    for _ in 0..workers {
                        drop(runtime.spawn(async {}));
                    }
                }
            }
        });
        if let Err(e) = watcher {
            tracing::debug!("no memory watcher thread: {e}; memory freed after a spike may stay with the process");
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Schema) => {
            print!("{}", hotroute::json_schema());
            ExitCode::SUCCESS
        }
        Some(Command::Check { routes }) => check(&routes),
        Some(Command::Import(Import::Openapi { spec, output })) => import_openapi(&spec, output.as_deref()),
        Some(Command::Import(Import::Wiremock { mappings, output })) => {
            write_imported(&mappings, output.as_deref(), hotroute::import::wiremock_path(&mappings).map_err(Into::into))
        }
        Some(Command::Import(Import::Mockoon { environment, output })) => write_imported(
            &environment,
            output.as_deref(),
            hotroute::import::mockoon_file(&environment).map_err(Into::into),
        ),
        Some(Command::Import(Import::Har { har, output, redact, redact_json })) => {
            import_har(&har, output.as_deref(), &redact, &redact_json)
        }
        Some(Command::Record { upstream, out, port, redact, redact_json, log_level }) => {
            exit(record(upstream, out, port, redact, redact_json, log_level))
        }
        None => exit(serve(cli.serve)),
    }
}

/// The exit code of a command that serves, after printing its error.
fn exit(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // A load error is rendered with its own `error:` heading; say it once.
            let text = format!("{e:#}");
            if text.starts_with("error") {
                eprintln!("{text}");
            } else {
                eprintln!("error: {text}");
            }
            ExitCode::FAILURE
        }
    }
}

fn check(path: &std::path::Path) -> ExitCode {
    // Loaded as served, so that the OpenAPI document `[server] openapi` names is read and checked too.
    match Live::from_file(path) {
        Ok(live) => {
            println!("{}: {}, ok", path.display(), plural(live.router().routes().len(), "route"));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn import_har(
    har: &std::path::Path,
    output: Option<&std::path::Path>,
    redact: &[String],
    redact_json: &[String],
) -> ExitCode {
    let imported = (|| {
        // Before the body files are written beside it.
        keep_hand_written(output)?;
        let redaction = hotroute::import::record::Redaction::with(redact, redact_json)?;
        // Body files go beside the output, or (on standard output) in the current folder, named after the HAR file.
        let (folder, stem) = match output {
            Some(out) => (
                out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new(".")).to_path_buf(),
                out.file_stem().map_or("recorded".into(), |s| s.to_string_lossy().into_owned()),
            ),
            None => (PathBuf::from("."), har.file_stem().map_or("har".into(), |s| s.to_string_lossy().into_owned())),
        };
        anyhow::Ok(hotroute::import::har_file(har, &folder, &stem, redaction)?)
    })();
    write_imported(har, output, imported)
}

fn import_openapi(spec: &std::path::Path, output: Option<&std::path::Path>) -> ExitCode {
    write_imported(spec, output, hotroute::import::openapi_file(spec).map_err(Into::into))
}

/// Refuses an `-o FILE` that holds something an importer did not write: `hotroute import ... -o routes.toml` replaced
/// a hand-written route file without a word. A file an import or a recording wrote (its first line says so) may be
/// written again, so that an import can be refreshed.
fn keep_hand_written(output: Option<&std::path::Path>) -> anyhow::Result<()> {
    let Some(path) = output else { return Ok(()) };
    let Ok(text) = std::fs::read(path) else { return Ok(()) };
    let text = String::from_utf8_lossy(&text[..text.len().min(64)]);
    let ours = ["# Imported by `hotroute import", "# Recorded by hotroute"].iter().any(|p| text.starts_with(p));
    if text.trim().is_empty() || ours {
        return Ok(());
    }
    let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
    anyhow::bail!(
        "`{}` exists and was not written by `hotroute import`: it is left as it is\n  help: write to another file, \
         e.g. `-o imported.toml`, and add it to your route file with `include = [\"imported.toml\"]`; or remove \
         `{name}` first",
        path.display()
    )
}

/// Writes an importer's route file to `output` (standard output without one) and its warnings to stderr.
fn write_imported(
    spec: &std::path::Path,
    output: Option<&std::path::Path>,
    imported: anyhow::Result<hotroute::Imported>,
) -> ExitCode {
    let imported = match imported {
        Ok(imported) => imported,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = keep_hand_written(output) {
        eprintln!("error: {e:#}");
        return ExitCode::FAILURE;
    }
    for note in &imported.notes {
        eprintln!("warning: {note}");
    }
    let written = match output {
        Some(path) => {
            std::fs::write(path, &imported.routes).with_context(|| format!("cannot write {}", path.display()))
        }
        None => std::io::stdout().write_all(imported.routes.as_bytes()).context("cannot write to standard output"),
    };
    if let Err(e) = written {
        eprintln!("error: {e:#}");
        return ExitCode::FAILURE;
    }
    eprintln!(
        "{}: {}, {}",
        spec.display(),
        plural(imported.route_count, "route"),
        plural(imported.notes.len(), "warning")
    );
    ExitCode::SUCCESS
}

/// `hotroute record`: a route file made here, whose `[server] proxy` forwards and records everything.
fn record(
    upstream: String,
    out: PathBuf,
    port: u16,
    redact: Vec<String>,
    redact_json: Vec<String>,
    log_level: String,
) -> anyhow::Result<()> {
    let cwd = std::env::current_dir().context("cannot read the current folder")?;
    let out = cwd.join(out);
    let list = |items: &[String]| {
        let quoted: Vec<String> = items.iter().map(|i| toml_string(i)).collect();
        format!("[{}]", quoted.join(", "))
    };
    let text = format!(
        "[server]\nproxy = {{ url = {}, record = {}, redact = {}, redact_json = {} }}\n",
        toml_string(&upstream),
        toml_string(&out.to_string_lossy()),
        list(&redact),
        list(&redact_json)
    );
    let router = hotroute::Router::load_str(&text, std::path::Path::new("hotroute record"), &cwd)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let args = ServeArgs {
        routes: out.clone(),
        listen: None,
        port: Some(port),
        no_watch: true,
        coverage: None,
        log_level,
        log_requests: false,
        log_format: None,
        trace: false,
        admin_token: None,
        threads: None,
        tls: false,
        openapi: None,
    };
    init_logging(&args.log_level);
    tracing::info!("recording {upstream} into {}", out.display());
    serve_live(args, Arc::new(Live::new(router, None)))
}

/// A TOML basic string holding `s`.
fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    init_logging(&args.log_level);
    let live = match Live::from_file_with_openapi(&args.routes, args.openapi.as_deref()) {
        Ok(live) => Arc::new(live),
        Err(e) => anyhow::bail!("{e}"),
    };
    serve_live(args, live)
}

/// Serves `live` as `args` say.
fn serve_live(args: ServeArgs, live: Arc<Live>) -> anyhow::Result<()> {
    let addr: SocketAddr = match (&args.listen, args.port) {
        (Some(listen), _) => resolve_listen(listen)?,
        (None, Some(port)) => SocketAddr::from(([127, 0, 0, 1], port)),
        (None, None) => live.router().server().listen,
    };
    // One thread: tokio's single-threaded scheduler, which has no work-stealing queues to keep in sync and runs
    // the accept loop and the connections on the same thread (BENCHMARKS.md, "Threads").
    let mut runtime = match args.threads.map(usize::from) {
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        Some(n) => {
            let mut runtime = tokio::runtime::Builder::new_multi_thread();
            runtime.worker_threads(n);
            runtime
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = runtime
        .on_thread_park(memory::on_park)
        // The default stack: templates render on threads of their own with a big stack (see
        // hotroute::WORKER_STACK); giving it to every worker and blocking-pool thread cost GiBs of address space.
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let workers = args.threads.map_or_else(|| std::thread::available_parallelism().map_or(1, usize::from), usize::from);
    memory::watch(runtime.handle().clone(), workers);
    let options = ServeOptions::from_config(live.router().server());
    let grace = options.limits.grace;
    // Without this, a soft limit of 1024 open files would refuse clients long before max_connections.
    match hotroute::raise_fd_limit() {
        Ok(n) if (n as usize) < options.limits.max_connections => tracing::warn!(
            "this process may open only {n} files, fewer than max_connections ({}); raise it with `ulimit -n`",
            options.limits.max_connections
        ),
        Ok(_) => {}
        Err(e) => tracing::debug!("cannot raise the open-file limit: {e}"),
    }
    let served = runtime.block_on(async move {
        let log_requests = args.log_requests || args.log_format.is_some() || live.router().server().log_requests;
        let mut options = options;
        options.access_log = log_requests.then(|| args.log_format.unwrap_or_default());
        options.trace = args.trace;
        if args.tls {
            options.tls = Some(hotroute::TlsConfig::SelfSigned);
        }
        // The command line wins over the environment, which wins over the route file.
        let token = args.admin_token.clone().or_else(|| std::env::var("HOTROUTE_ADMIN_TOKEN").ok().filter(|t| !t.is_empty()));
        if let Some(token) = token {
            hotroute::check_admin_token(&token).map_err(|why| {
                anyhow::anyhow!(
                    "{why} (--admin-token or HOTROUTE_ADMIN_TOKEN)\n  help: use a random string of 16 or more letters \
                     and digits, e.g. from `openssl rand -hex 32`"
                )
            })?;
            options.admin_token = Some(token);
        }
        // HOTROUTE_STATE wins over [server] state, whose prefix and timeout it keeps.
        if let Some(url) = std::env::var("HOTROUTE_STATE").ok().filter(|u| !u.is_empty()) {
            hotroute::check_state_url(&url).map_err(|why| {
                anyhow::anyhow!(
                    "{why} (HOTROUTE_STATE)\n  help: write it as redis://HOST:PORT/DB, e.g. redis://127.0.0.1:6379/0 \
                     (rediss:// for TLS)"
                )
            })?;
            let mut state = options.state.take().unwrap_or_else(|| hotroute::StateConfig::new(String::new()));
            state.url = url;
            options.state = Some(state);
        }
        // HOTROUTE_STATE_CA wins over [server] state_ca: a PEM file (relative to the working directory).
        if let (Some(ca), Some(state)) =
            (std::env::var_os("HOTROUTE_STATE_CA").filter(|c| !c.is_empty()), options.state.as_mut())
        {
            let pem = std::fs::read(&ca).map_err(|e| {
                anyhow::anyhow!(
                    "cannot read HOTROUTE_STATE_CA `{}`: {e}\n  help: give the PEM file of the CA that signed the \
                     state store's certificate",
                    std::path::Path::new(&ca).display()
                )
            })?;
            hotroute::check_state_ca(&pem).map_err(|why| {
                anyhow::anyhow!(
                    "HOTROUTE_STATE_CA `{}` {why}\n  help: give the PEM file of the CA that signed the state store's \
                     certificate",
                    std::path::Path::new(&ca).display()
                )
            })?;
            state.ca = Some(pem);
        }
        let mut server = Server::bind(addr, live.clone()).await?.with_options(options);
        // Made before the first stdout line, so that whoever reads that line can read the token already.
        if let Some(token) = server.require_admin_token()? {
            eprintln!(
                "{addr} is not loopback and no admin token was given, so the admin API needs this one (printed once):\n  \
                 {token}\n  send it as `Authorization: Bearer {token}`, or open the dashboard at \
                 {}://{}/__admin/#token={token}\n  set your own with --admin-token or HOTROUTE_ADMIN_TOKEN",
                server.scheme(),
                server.local_addr()
            );
        }
        // The certificate's file too: a test that read the first stdout line can trust it at once.
        if let Some(pem) = server.prepare_tls()? {
            eprintln!(
                "self-signed certificate for localhost, 127.0.0.1 and ::1 written to {}\n  trust it in clients, e.g. \
                 curl --cacert {}",
                pem.display(),
                pem.display()
            );
        }
        // All in place before the first stdout line, so that a test that read it can edit the file or send SIGHUP
        // or SIGTERM at once (the default actions of those signals would end the process).
        let shutdown = shutdown_signal(grace)?;
        let _watch = start_watching(&live, args.no_watch);
        reload_on_hangup(&live)?;
        // Written at start as well, so that a path that cannot be written fails now rather than after the tests.
        let write_coverage = || -> anyhow::Result<()> {
            let Some(path) = &args.coverage else { return Ok(()) };
            let report = serde_json::to_string_pretty(&live.journal().coverage(&live.router()).to_json())? + "\n";
            // The OS error goes in the first line, not after the help (where anyhow's `{:#}` would glue it).
            std::fs::write(path, report).map_err(|e| {
                anyhow::anyhow!(
                    "cannot write the coverage report to {}: {e}\n  help: create its folder, or give --coverage another path",
                    path.display()
                )
            })
        };
        write_coverage()?;
        // The first stdout line is a contract: tests in any language read the address from it.
        // An unspecified address (0.0.0.0, [::]) is not one a client can connect to: print the loopback address
        // of the same family, which reaches the server, and say that every interface is served.
        let bound = server.local_addr();
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {}://{}", server.scheme(), client_addr(bound))?;
        out.flush()?;
        drop(out);
        if bound.ip().is_unspecified() {
            tracing::info!("serving on all interfaces ({bound}): reach it on this machine's addresses, port {}", bound.port());
        }
        tracing::info!(routes = live.router().routes().len(), file = %args.routes.display(), "serving");
        server.serve(shutdown).await?;
        write_coverage()?;
        tracing::info!("stopped");
        Ok(())
    });
    // Dropping the runtime would wait for every blocking task (a file read that hangs) without end.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    hotroute::flush_stderr(std::time::Duration::from_secs(1));
    served
}

/// The file watcher, unless `--no-watch`; a watcher that cannot start leaves the server running without it.
fn start_watching(live: &Arc<Live>, no_watch: bool) -> Option<WatchHandle> {
    if no_watch {
        tracing::info!("file watching is off (--no-watch): reload with SIGHUP or POST /__admin/reload");
        return None;
    }
    match live.watch() {
        Ok(handle) => Some(handle),
        Err(e) => {
            tracing::warn!("{e}\nhot reload is off; SIGHUP and POST /__admin/reload still reload");
            None
        }
    }
}

/// Reloads the routes on each SIGHUP, off the async workers.
fn reload_on_hangup(live: &Arc<Live>) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangup = signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?;
        let live = live.clone();
        tokio::spawn(async move {
            while hangup.recv().await.is_some() {
                tracing::info!("SIGHUP: reloading the routes");
                let live = live.clone();
                let _ = tokio::task::spawn_blocking(move || live.reload()).await;
            }
        });
    }
    #[cfg(not(unix))]
    let _ = live;
    Ok(())
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM. The handlers are installed when this is called, not when the future is
/// first polled: a signal that arrives right after the "listening on" line must stop the server gracefully, not kill
/// it with the default action.
///
/// The signals are awaited on a thread of their own with its own small runtime: when every worker is busy (a long
/// render), the serving runtime would notice neither the signal nor the end of the grace period. That thread also
/// enforces the grace: if the process is still running a little after it, it exits.
fn shutdown_signal(grace: std::time::Duration) -> anyhow::Result<impl std::future::Future<Output = ()>> {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<std::io::Result<()>>();
    std::thread::Builder::new()
        .name("hotroute-signals".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(runtime) => runtime,
                Err(e) => return drop(ready_tx.send(Err(e))),
            };
            runtime.block_on(async move {
                #[cfg(unix)]
                {
                    use tokio::signal::unix::{SignalKind, signal};
                    let (mut int, mut term) = match (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
                        (Ok(int), Ok(term)) => (int, term),
                        (Err(e), _) | (_, Err(e)) => return drop(ready_tx.send(Err(e))),
                    };
                    let _ = ready_tx.send(Ok(()));
                    tokio::select! {
                        _ = int.recv() => {},
                        _ = term.recv() => {},
                    }
                }
                #[cfg(not(unix))]
                {
                    let _ = ready_tx.send(Ok(()));
                    let _ = tokio::signal::ctrl_c().await;
                }
            });
            let _ = tx.send(());
            // The serving loop closes what is still open when the grace is over; this is for when it cannot run.
            std::thread::sleep(grace + std::time::Duration::from_secs(1));
            tracing::warn!("grace period over and the workers are still busy: exiting now");
            hotroute::flush_stderr(std::time::Duration::from_millis(200));
            std::process::exit(0);
        })
        .context("cannot start the signal thread")?;
    ready_rx.recv().context("the signal thread stopped")?.context("cannot listen for SIGINT and SIGTERM")?;
    Ok(async move {
        let _ = rx.await;
    })
}

fn init_logging(level: &str) {
    let (filter, warning) = log_filter(std::env::var("RUST_LOG").ok().as_deref(), level);
    // Through the same bounded queue as the access log: a stderr nobody reads must not block a worker.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| hotroute::QueuedStderr)
        .with_target(false)
        .with_ansi(colour_stderr())
        .with_timer(MillisUtc)
        .init();
    if let Some(warning) = warning {
        tracing::warn!("{warning}");
    }
}

/// The log filter: `RUST_LOG` wins where it says something about hotroute; `--log-level` (already checked) covers
/// the rest. A `RUST_LOG` exported for another program (`myapp=debug`) silenced every line of hotroute, its errors
/// too, and one that does not parse silenced everything; the latter is said.
fn log_filter(env: Option<&str>, level: &str) -> (tracing_subscriber::EnvFilter, Option<String>) {
    use tracing_subscriber::EnvFilter;
    let Some(env) = env.filter(|e| !e.trim().is_empty()) else { return (EnvFilter::new(level), None) };
    let filter = match EnvFilter::builder().parse(env) {
        Ok(filter) => filter,
        Err(e) => {
            let warning = format!("RUST_LOG `{env}` is not a log filter ({e}); logging at --log-level {level} instead");
            return (EnvFilter::new(level), Some(warning));
        }
    };
    // A directive applies to hotroute when it is a bare level, or its target is a prefix of hotroute's targets
    // (EnvFilter matches targets by prefix), or it has no target (`[span]=debug`).
    let applies = |directive: &str| {
        let directive = directive.trim();
        let target = directive.split(['[', '=']).next().unwrap_or_default().trim();
        let bare_level = !directive.contains('=') && LOG_LEVELS.contains(&target.to_ascii_lowercase().as_str());
        bare_level || target.is_empty() || "hotroute".starts_with(target) || target.starts_with("hotroute::")
    };
    if env.split(',').filter(|d| !d.trim().is_empty()).any(applies) {
        return (filter, None);
    }
    let filter = level.split(',').filter_map(|d| d.trim().parse().ok()).fold(filter, EnvFilter::add_directive);
    (filter, None)
}

/// Colour codes only where a person reads them: stderr is a terminal, `NO_COLOR` is unset or empty
/// (<https://no-color.org>) and `TERM` is not `dumb`. CI logs, test runners and `docker logs` get plain text.
fn colour_stderr() -> bool {
    use std::io::IsTerminal;
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let dumb = std::env::var_os("TERM").is_some_and(|t| t == "dumb");
    std::io::stderr().is_terminal() && !no_color && !dumb
}

/// Log timestamps in the access log's form (`2026-05-01T10:11:12.345Z`), so that both kinds of line in one stream
/// have one precision.
struct MillisUtc;

impl tracing_subscriber::fmt::time::FormatTime for MillisUtc {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        w.write_str(&hotroute::__internals::rfc3339_millis(std::time::SystemTime::now()))
    }
}

/// The levels `--log-level` documents; a bare word that is none of them would be read by `EnvFilter` as a target
/// name and silence every log line.
const LOG_LEVELS: [&str; 6] = ["error", "warn", "info", "debug", "trace", "off"];

/// Accepts a level, or a filter whose every comma-separated part is a level or names one (`hotroute=debug`).
fn parse_log_level(value: &str) -> Result<String, String> {
    let help = "use one of error, warn, info, debug, trace, off, or a filter like `hotroute=debug`";
    for part in value.split(',').map(str::trim) {
        let level = part.rsplit_once('=').map_or(part, |(_, level)| level);
        if !LOG_LEVELS.contains(&level.to_ascii_lowercase().as_str()) {
            let guess = match level.to_ascii_lowercase().as_str() {
                "warning" => " (did you mean `warn`?)",
                "verbose" => " (did you mean `debug`?)",
                "err" | "fatal" => " (did you mean `error`?)",
                "none" | "quiet" | "silent" => " (did you mean `off`?)",
                _ => "",
            };
            return Err(format!("unknown log level `{level}`{guess}: {help}"));
        }
    }
    tracing_subscriber::EnvFilter::builder()
        .parse(value)
        .map_err(|e| format!("`{value}` is not a log filter ({e}): {help}"))?;
    Ok(value.to_owned())
}

/// `--listen`: an `IP:PORT`, or a `host:port` such as `localhost:3000`, resolved here (the first address wins).
fn resolve_listen(listen: &str) -> anyhow::Result<SocketAddr> {
    use std::net::ToSocketAddrs;
    if let Ok(addr) = listen.parse() {
        return Ok(addr);
    }
    match listen.to_socket_addrs() {
        Ok(mut addrs) => addrs.next().ok_or_else(|| {
            anyhow::anyhow!("`--listen {listen}`: the name resolves to no address\n  help: give an IP address and a port, e.g. 127.0.0.1:3000")
        }),
        Err(e) => anyhow::bail!(
            "`--listen {listen}` is not an address: {e}\n  help: give an IP address and a port, e.g. 127.0.0.1:3000 or 0.0.0.0:3000"
        ),
    }
}

/// The address a client on this machine connects to: loopback for an unspecified (all-interfaces) bind.
fn client_addr(bound: SocketAddr) -> SocketAddr {
    match bound.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::from(([127, 0, 0, 1], bound.port())),
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, bound.port()))
        }
        _ => bound,
    }
}

/// `1 route`, `2 routes`.
fn plural(n: usize, word: &str) -> String {
    if n == 1 { format!("{n} {word}") } else { format!("{n} {word}s") }
}
