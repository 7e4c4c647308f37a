//! The admin API's settings in `[server]`: `admin_token` and `journal_redact`, checked when the route file loads.
//! What they protect is enforced by `crate::admin` (the token) and `crate::observe::journal` (the redaction).

use std::ops::Range;
use std::sync::Arc;

use http::HeaderName;

use crate::config::ServerSpec;

/// The request headers whose values the journal stores as [`REDACTED`] unless `[server] journal_redact` says
/// otherwise: the ones that carry credentials.
pub const DEFAULT_JOURNAL_REDACT: &[&str] =
    &["authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"];

/// What the journal stores instead of a redacted header's value.
pub const REDACTED: &str = "<redacted>";

/// The shortest `admin_token` accepted: a short token can be guessed.
pub const MIN_ADMIN_TOKEN: usize = 16;

/// The default list of redacted headers, as header names.
pub fn default_journal_redact() -> Arc<[HeaderName]> {
    DEFAULT_JOURNAL_REDACT.iter().map(|n| HeaderName::from_static(n)).collect()
}

/// Checks whether `token` can be an admin token; the error says what is wrong.
pub fn check_admin_token(token: &str) -> Result<(), String> {
    if token.len() < MIN_ADMIN_TOKEN {
        return Err(format!("the admin token is {} characters, fewer than {MIN_ADMIN_TOKEN}", token.len()));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("the admin token has a space or a character that is not printable ASCII".into());
    }
    Ok(())
}

type Report<'a> = dyn FnMut(Range<usize>, String, &str) + 'a;

/// `admin_token` and `journal_redact` from `spec`, reporting what is wrong through `error`.
pub(crate) fn from_spec(spec: &ServerSpec, error: &mut Report<'_>) -> (Option<String>, Arc<[HeaderName]>) {
    let token = spec.admin_token.as_ref().and_then(|t| match check_admin_token(t.get_ref()) {
        Ok(()) => Some(t.get_ref().clone()),
        Err(why) => {
            error(
                t.span(),
                why,
                "use a random string of 16 or more letters and digits, e.g. from `openssl rand -hex 32`",
            );
            None
        }
    });
    let redact = match &spec.journal_redact {
        None => default_journal_redact(),
        Some(names) => names
            .iter()
            .filter_map(|n| match HeaderName::from_bytes(n.get_ref().as_bytes()) {
                Ok(name) => Some(name),
                Err(_) => {
                    error(
                        n.span(),
                        format!("`{}` is not a header name", n.get_ref()),
                        "write header names such as \"authorization\" or \"x-api-key\"",
                    );
                    None
                }
            })
            .collect(),
    };
    (token, redact)
}
