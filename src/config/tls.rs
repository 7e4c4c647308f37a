//! `[server] tls`: HTTPS settings, checked when the route file loads. The PEM files are read with the route file
//! (like body files: the watcher sees them change, and a reload reads them again); their contents are parsed, and
//! the TLS layer built, by `crate::serve::tls`.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::inputs::Inputs;

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

/// The contents of a PEM file as read when the routes loaded. Its `Debug` shows only the length: one holds the
/// private key.
#[derive(Clone, PartialEq, Eq)]
pub struct Pem(pub Arc<[u8]>);

impl std::fmt::Debug for Pem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pem({} bytes)", self.0.len())
    }
}

/// A PEM file of `[server] tls = { ... }`: its path (resolved against the route file's folder) and its contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PemFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// What was read.
    pub pem: Pem,
}

/// The PEM files of `[server] tls = { ... }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain.
    pub cert: PemFile,
    /// The private key.
    pub key: PemFile,
    /// The client CA certificates, and whether a client certificate is required, for mutual TLS.
    pub client_ca: Option<(PemFile, ClientAuth)>,
}

impl TlsConfig {
    /// Whether going from `self` to `new` takes a restart: another mode, or other mTLS settings. The certificate and
    /// key are reloaded in service.
    pub fn needs_restart(&self, new: &TlsConfig) -> bool {
        match (self, new) {
            (TlsConfig::Files(a), TlsConfig::Files(b)) => a.client_ca != b.client_ca,
            (TlsConfig::SelfSigned, TlsConfig::SelfSigned) => false,
            _ => true,
        }
    }
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

/// `tls` from `[server]`, reporting what is wrong through `error`. Files are resolved against `base_dir` and read
/// through `inputs` (so the watcher reloads the routes when they change); their contents are checked when the
/// server builds its TLS layer.
pub(crate) fn from_spec(
    spec: Option<&Spanned<TlsSpec>>,
    base_dir: &Path,
    inputs: &mut Inputs,
    error: &mut Report<'_>,
) -> Option<TlsConfig> {
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
            let mut file = |name: &str, what: &str, error: &mut Report<'_>| -> Option<PemFile> {
                let path = base_dir.join(name);
                match inputs.read(&path) {
                    Ok(bytes) => Some(PemFile { path, pem: Pem(bytes.into()) }),
                    Err(e) => {
                        error(
                            span.clone(),
                            format!("tls.{what}: cannot read `{}`: {e}", path.display()),
                            "give the path of a PEM file, relative to the route file",
                        );
                        None
                    }
                }
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
