//! What can go wrong when binding and serving.

/// Errors from binding and serving.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The port is taken, with what to do about it.
    #[error(
        "cannot listen on {addr}: address already in use\n  another program (perhaps another hotroute) is listening on that port.\n  help: stop it, or pick another port with `--port 8080` (or `--port 0` for any free port)"
    )]
    AddrInUse {
        /// The address that could not be bound.
        addr: String,
    },
    /// Any other failure to bind the listening socket.
    #[error(
        "cannot listen on {addr}: {source}\n  help: check the address (e.g. `127.0.0.1:3000` or `0.0.0.0:8080`) and your permissions"
    )]
    Bind {
        /// The address that could not be bound.
        addr: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The listen address is not an `IP:PORT`.
    #[error("`{addr}` is not a listen address\n  help: write it as IP:PORT, e.g. `127.0.0.1:3000` or `0.0.0.0:8080`")]
    BadAddr {
        /// What was given.
        addr: String,
    },
    /// No admin token could be made for a server that needs one (off loopback, none configured).
    #[error(
        "cannot make a random admin token: {reason}\n  help: give one with --admin-token, HOTROUTE_ADMIN_TOKEN or [server] admin_token, or turn the admin API off with [server] admin = false"
    )]
    Token {
        /// What the operating system's random generator said.
        reason: String,
    },
    /// The TLS settings cannot be used: a certificate or key file that cannot be read or parsed, a key that does not
    /// fit the certificate.
    #[error("cannot serve HTTPS: {reason}\n  help: {help}")]
    Tls {
        /// What is wrong, and with which file.
        reason: String,
        /// What to do about it.
        help: &'static str,
    },
    /// The shared state store (`[server] state` or `HOTROUTE_STATE`) cannot be used: its URL does not parse.
    #[error(
        "cannot use the shared state store: {reason}\n  help: write it as redis://HOST:PORT/DB (rediss:// for TLS), in [server] state or HOTROUTE_STATE"
    )]
    State {
        /// What is wrong.
        reason: String,
    },
    /// An I/O failure of the listening socket itself.
    #[error("the listening socket failed: {0}")]
    Io(#[from] std::io::Error),
}
