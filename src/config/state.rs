//! `[server] state`, `state_prefix`, `state_timeout` and `state_ca`: where replicas keep the state they share (sequence
//! positions, `count`, scenarios, the journal), checked when the route file loads. The store itself is
//! `crate::route::state`.

use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use crate::config::ServerSpec;
use crate::config::inputs::Inputs;

/// The key prefix used when `state_prefix` is not set.
pub const DEFAULT_STATE_PREFIX: &str = "hotroute";

/// How long a stateful request waits for the store when `state_timeout` is not set.
pub const DEFAULT_STATE_TIMEOUT: Duration = Duration::from_millis(500);

/// The longest `state_timeout` accepted: a stateful request waits this long at most before its 503.
pub const MAX_STATE_TIMEOUT: Duration = Duration::from_secs(60);

/// The longest `state_prefix` accepted.
pub const MAX_STATE_PREFIX: usize = 100;

/// The shared state store: a Redis (or Valkey) URL, the prefix of every key, and how long to wait for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateConfig {
    /// `redis://[user:password@]host:port/db`, or `rediss://` for TLS.
    pub url: String,
    /// Every key starts with `PREFIX:`, so that several mock servers share one Redis.
    pub prefix: String,
    /// A stateful request that waits longer than this for the store answers 503.
    pub timeout: Duration,
    /// `state_ca`: the PEM certificates trusted for a `rediss://` store instead of the system's roots.
    pub ca: Option<Vec<u8>>,
}

impl StateConfig {
    /// The store at `url`, with the default prefix and timeout.
    pub fn new(url: String) -> Self {
        StateConfig { url, prefix: DEFAULT_STATE_PREFIX.to_owned(), timeout: DEFAULT_STATE_TIMEOUT, ca: None }
    }

    /// The URL with any password replaced by `***`, for logs and error bodies.
    pub fn redacted_url(&self) -> String {
        redact(&self.url)
    }
}

/// `url` with the password of its user-info part (`user:password@`) replaced by `***`.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            format!("{scheme}://{user}:***@{host}{path}")
        }
        None => url.to_owned(),
    }
}

/// Checks a state URL: a scheme the client speaks and an address it can parse. Does not connect.
pub fn check_state_url(url: &str) -> Result<(), String> {
    if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
        return Err(format!("`{}` is not a Redis URL", redact(url)));
    }
    redis::Client::open(url).map(drop).map_err(|e| format!("`{}` is not a Redis URL: {e}", redact(url)))
}

type Report<'a> = dyn FnMut(Range<usize>, String, &str) + 'a;

const URL_HELP: &str = "write it as redis://HOST:PORT/DB, e.g. \"redis://127.0.0.1:6379/0\" (rediss:// for TLS)";

/// Checks the PEM text of `state_ca` (or `HOTROUTE_STATE_CA`): it must hold a certificate.
pub fn check_state_ca(pem: &[u8]) -> Result<(), String> {
    if pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
        Ok(())
    } else {
        Err("holds no PEM certificate (-----BEGIN CERTIFICATE-----)".to_owned())
    }
}

const CA_HELP: &str = "give the PEM file of the CA that signed the store's certificate, relative to the route file";

/// `state`, `state_prefix`, `state_timeout` and `state_ca` from `spec` (`state_ca` resolved against `base_dir` and
/// read through `inputs`), reporting what is wrong through `error`. None when `state` is not set (the other keys
/// alone do nothing).
pub(crate) fn from_spec(
    spec: &ServerSpec,
    base_dir: &Path,
    inputs: &mut Inputs,
    error: &mut Report<'_>,
) -> Option<StateConfig> {
    let ca = spec.state_ca.as_ref().and_then(|name| {
        let path = base_dir.join(name.get_ref());
        match inputs.read(&path) {
            Ok(pem) => match check_state_ca(&pem) {
                Ok(()) => Some(pem),
                Err(why) => {
                    error(name.span(), format!("`state_ca` file `{}` {why}", path.display()), CA_HELP);
                    None
                }
            },
            Err(e) => {
                error(name.span(), format!("`state_ca`: cannot read `{}`: {e}", path.display()), CA_HELP);
                None
            }
        }
    });
    let prefix = match &spec.state_prefix {
        None => DEFAULT_STATE_PREFIX.to_owned(),
        Some(p) => {
            let text = p.get_ref();
            if text.is_empty() || text.len() > MAX_STATE_PREFIX || !text.bytes().all(|b| b.is_ascii_graphic()) {
                error(
                    p.span(),
                    format!("`state_prefix` must be 1 to {MAX_STATE_PREFIX} printable ASCII characters without spaces"),
                    "use a short name such as \"hotroute\" or \"staging-mocks\"",
                );
            }
            text.clone()
        }
    };
    let timeout = match &spec.state_timeout {
        None => DEFAULT_STATE_TIMEOUT,
        Some(t) => match humantime::parse_duration(t.get_ref().trim()) {
            Ok(d) if !d.is_zero() && d <= MAX_STATE_TIMEOUT => d,
            Ok(_) => {
                error(
                    t.span(),
                    "`state_timeout` must be more than zero and at most 60s".into(),
                    "write a duration like \"500ms\" or \"2s\"",
                );
                DEFAULT_STATE_TIMEOUT
            }
            Err(e) => {
                error(
                    t.span(),
                    format!("`{}` is not a duration for `state_timeout`: {e}", t.get_ref()),
                    "write a duration like \"500ms\" or \"2s\"",
                );
                DEFAULT_STATE_TIMEOUT
            }
        },
    };
    let url = spec.state.as_ref()?;
    if let Err(why) = check_state_url(url.get_ref()) {
        error(url.span(), why, URL_HELP);
    }
    if let Some(name) = &spec.state_ca
        && !url.get_ref().starts_with("rediss://")
    {
        error(
            name.span(),
            "`state_ca` is set, but `state` is not a rediss:// (TLS) URL".to_owned(),
            "write state = \"rediss://HOST:PORT/DB\", or remove `state_ca`",
        );
    }
    Some(StateConfig { url: url.get_ref().clone(), prefix, timeout, ca })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("redis://:secret@host:6379/0"), "redis://:***@host:6379/0");
        assert_eq!(redact("rediss://u:p@h/1"), "rediss://u:***@h/1");
        assert_eq!(redact("redis://host:6379/0"), "redis://host:6379/0");
    }
}
