//! `[server] tls`: HTTPS settings, checked when the route file loads. The files are read, and the TLS layer built,
//! by `crate::serve::tls` when the server starts.

use std::ops::Range;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::Deserialize;
use toml::Spanned;

/// `[server] tls`: `"self-signed"`, or a table naming PEM files.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum TlsSpec {
    /// `"self-signed"`: a certificate for `localhost`, `127.0.0.1` and `::1` made at start, its PEM written to a
    /// file whose path is printed on stderr.
    Mode(String),
    /// Certificate and key files.
    Files(TlsFilesSpec),
}

/// `[server] tls = { cert = "cert.pem", key = "key.pem" }`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsFilesSpec {
    /// PEM file with the server certificate, then any intermediate certificates (relative to the route file).
    pub cert: String,
    /// PEM file with the private key (PKCS#8, PKCS#1 RSA or SEC1 EC; RSA, ECDSA or Ed25519).
    pub key: String,
    /// PEM file with the CA certificates that sign client certificates: turns on mutual TLS.
    #[serde(default)]
    pub client_ca: Option<String>,
    /// With `client_ca`: `"required"` (default; a client without a valid certificate cannot connect) or
    /// `"optional"` (a certificate is asked for, and checked if sent).
    #[serde(default)]
    pub client_auth: Option<String>,
}

/// Whether clients must show a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// A client certificate signed by `client_ca` is required.
    Required,
    /// A client certificate is asked for and checked when sent; a client without one is served too.
    Optional,
}

/// The PEM files of `[server] tls = { ... }`, as absolute paths (or relative to the working directory when the
/// route file's was).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain.
    pub cert: PathBuf,
    /// The private key.
    pub key: PathBuf,
    /// The client CA certificates, and whether a client certificate is required, for mutual TLS.
    pub client_ca: Option<(PathBuf, ClientAuth)>,
}

/// How the server speaks TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsConfig {
    /// A self-signed certificate made at start.
    SelfSigned,
    /// Certificate and key from files.
    Files(TlsFiles),
}

type Report<'a> = dyn FnMut(Range<usize>, String, &str) + 'a;

/// `tls` from `[server]`, reporting what is wrong through `error`. Files are resolved against `base_dir` and must
/// exist; their contents are checked when the server starts.
pub(crate) fn from_spec(spec: Option<&Spanned<TlsSpec>>, base_dir: &Path, error: &mut Report<'_>) -> Option<TlsConfig> {
    let spec = spec?;
    let span = spec.span();
    match spec.get_ref() {
        TlsSpec::Mode(mode) if mode == "self-signed" => Some(TlsConfig::SelfSigned),
        TlsSpec::Mode(mode) => {
            error(
                span,
                format!("`{mode}` is not a TLS setting"),
                "write tls = \"self-signed\", or tls = { cert = \"cert.pem\", key = \"key.pem\" }",
            );
            None
        }
        TlsSpec::Files(files) => {
            let file = |name: &str, what: &str, error: &mut Report<'_>| -> Option<PathBuf> {
                let path = base_dir.join(name);
                if path.is_file() {
                    return Some(path);
                }
                error(
                    span.clone(),
                    format!("tls.{what}: `{}` is not a file", path.display()),
                    "give the path of a PEM file, relative to the route file",
                );
                None
            };
            let cert = file(&files.cert, "cert", error);
            let key = file(&files.key, "key", error);
            let auth = match files.client_auth.as_deref() {
                None | Some("required") => Some(ClientAuth::Required),
                Some("optional") => Some(ClientAuth::Optional),
                Some(other) => {
                    error(
                        span.clone(),
                        format!("tls.client_auth: `{other}` is not a client authentication mode"),
                        "write client_auth = \"required\" (the default) or \"optional\"",
                    );
                    None
                }
            };
            let client_ca = match &files.client_ca {
                None => {
                    if files.client_auth.is_some() {
                        error(
                            span.clone(),
                            "tls.client_auth is set but tls.client_ca is not".into(),
                            "name the PEM file of the CA that signs client certificates: client_ca = \"ca.pem\"",
                        );
                    }
                    None
                }
                Some(ca) => Some((file(ca, "client_ca", error)?, auth?)),
            };
            Some(TlsConfig::Files(TlsFiles { cert: cert?, key: key?, client_ca }))
        }
    }
}
