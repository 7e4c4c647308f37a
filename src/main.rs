//! The `hotroute` command: parses arguments and calls the library.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use hotroute::{Live, Router, ServeError, ServeOptions, Server, config};

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
    /// Do not reload the routes when the file changes.
    #[arg(long)]
    no_watch: bool,
    /// Log level for stderr (error, warn, info, debug, trace); RUST_LOG takes precedence.
    #[arg(long, value_name = "LEVEL", default_value = "info")]
    log_level: String,
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
            print!("{}", config::json_schema());
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Deep enough for any template without a stack switch per render (see limits::on_template_stack).
        .thread_stack_size(hotroute::limits::WORKER_STACK)
        .build()
        .context("cannot start the async runtime")?;
    let options = ServeOptions::from_config(live.router().server());
    // Without this, a soft limit of 1024 open files would refuse clients long before max_connections.
    match hotroute::limits::raise_fd_limit() {
        Ok(n) if (n as usize) < options.max_connections => tracing::warn!(
            "this process may open only {n} files, fewer than max_connections ({}); raise it with `ulimit -n`",
            options.max_connections
        ),
        Ok(_) => {}
        Err(e) => tracing::debug!("cannot raise the open-file limit: {e}"),
    }
    runtime.block_on(async move {
        let server = Server::bind(addr, live.clone()).await?.with_options(options);
        let shutdown = shutdown_signal();
        // The first stdout line is a contract: tests in any language read the address from it.
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on http://{}", server.local_addr())?;
        out.flush()?;
        drop(out);
        tracing::info!(routes = live.router().routes().len(), file = %args.routes.display(), "serving");
        if args.no_watch {
            tracing::debug!("file watching is off (--no-watch)");
        }
        server.serve(shutdown).await?;
        tracing::info!("stopped");
        Ok(())
    })
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
