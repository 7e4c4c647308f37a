//! The `hotroute` command: parses arguments and calls the library.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use hotroute::{Live, LogFormat, Router, ServeError, ServeOptions, Server, WatchHandle};

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
    /// Do not reload the routes when the files change (SIGHUP and POST /__admin/reload still reload).
    #[arg(long)]
    no_watch: bool,
    /// At shutdown, write the coverage report (routes never hit, requests no route answered) to FILE as JSON.
    #[arg(long, value_name = "FILE")]
    coverage: Option<PathBuf>,
    /// Log level for stderr (error, warn, info, debug, trace); RUST_LOG takes precedence.
    #[arg(long, value_name = "LEVEL", default_value = "info")]
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Schema) => {
            print!("{}", hotroute::json_schema());
            ExitCode::SUCCESS
        }
        Some(Command::Check { routes }) => check(&routes),
        None => match serve(cli.serve) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

fn check(path: &std::path::Path) -> ExitCode {
    match Router::load_file(path) {
        Ok(router) => {
            println!("{}: {} routes, ok", path.display(), router.routes().len());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    init_logging(&args.log_level);
    let live = match Live::from_file(&args.routes) {
        Ok(live) => Arc::new(live),
        Err(e) => anyhow::bail!("{e}"),
    };
    let addr: SocketAddr = match (&args.listen, args.port) {
        (Some(listen), _) => listen.parse().map_err(|_| ServeError::BadAddr { addr: listen.clone() })?,
        (None, Some(port)) => SocketAddr::from(([127, 0, 0, 1], port)),
        (None, None) => live.router().server().listen,
    };
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.threads {
        runtime.worker_threads(usize::from(n));
    }
    let runtime = runtime
        .enable_all()
        // Deep enough for any template without a stack switch per render (see hotroute::WORKER_STACK).
        .thread_stack_size(hotroute::WORKER_STACK)
        .build()
        .context("cannot start the async runtime")?;
    let options = ServeOptions::from_config(live.router().server());
    // Without this, a soft limit of 1024 open files would refuse clients long before max_connections.
    match hotroute::raise_fd_limit() {
        Ok(n) if (n as usize) < options.limits.max_connections => tracing::warn!(
            "this process may open only {n} files, fewer than max_connections ({}); raise it with `ulimit -n`",
            options.limits.max_connections
        ),
        Ok(_) => {}
        Err(e) => tracing::debug!("cannot raise the open-file limit: {e}"),
    }
    runtime.block_on(async move {
        let log_requests = args.log_requests || args.log_format.is_some() || live.router().server().log_requests;
        let mut options = options;
        options.access_log = log_requests.then(|| args.log_format.unwrap_or_default());
        options.trace = args.trace;
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
        let mut server = Server::bind(addr, live.clone()).await?.with_options(options);
        // Made before the first stdout line, so that whoever reads that line can read the token already.
        if let Some(token) = server.require_admin_token()? {
            eprintln!(
                "{addr} is not loopback and no admin token was given, so the admin API needs this one (printed once):\n  \
                 {token}\n  send it as `Authorization: Bearer {token}`, or open the dashboard at \
                 http://{}/__admin/#token={token}\n  set your own with --admin-token or HOTROUTE_ADMIN_TOKEN",
                server.local_addr()
            );
        }
        // All in place before the first stdout line, so that a test that read it can edit the file or send SIGHUP
        // or SIGTERM at once (the default actions of those signals would end the process).
        let shutdown = shutdown_signal();
        let _watch = start_watching(&live, args.no_watch);
        reload_on_hangup(&live)?;
        // Written at start as well, so that a path that cannot be written fails now rather than after the tests.
        let write_coverage = || -> anyhow::Result<()> {
            let Some(path) = &args.coverage else { return Ok(()) };
            let report = serde_json::to_string_pretty(&live.journal().coverage(&live.router()).to_json())? + "\n";
            std::fs::write(path, report).with_context(|| {
                format!(
                    "cannot write the coverage report to {}\n  help: create its folder, or give --coverage another path",
                    path.display()
                )
            })
        };
        write_coverage()?;
        // The first stdout line is a contract: tests in any language read the address from it.
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on http://{}", server.local_addr())?;
        out.flush()?;
        drop(out);
        tracing::info!(routes = live.router().routes().len(), file = %args.routes.display(), "serving");
        server.serve(shutdown).await?;
        write_coverage()?;
        tracing::info!("stopped");
        Ok(())
    })
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
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (int, term) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate()));
        async move {
            let (Ok(mut int), Ok(mut term)) = (int, term) else { return std::future::pending().await };
            tokio::select! {
                _ = int.recv() => {},
                _ = term.recv() => {},
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn init_logging(level: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).init();
}
