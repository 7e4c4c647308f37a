//! HTTPS: the rustls server configuration built from `[server] tls` (or `--tls`), and the start of each TLS
//! connection: a first look at its bytes, then the handshake, both bounded by the header-read timeout.
//!
//! A connection whose first byte is not a TLS record (0x16, a handshake) gets no handshake: an HTTP request is
//! answered with a short plain-text 400 that says to use https (as nginx does), anything else is closed. Either way,
//! and when a handshake fails (an unknown client certificate, garbage), the error is logged for that connection
//! alone.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use std::sync::Mutex;

use arc_swap::ArcSwap;
use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::config::tls::{ClientAuth, PemFile, TlsConfig};
use crate::observe::ObservedStream;
use crate::serve::ServeError;

/// The first byte of a TLS record that carries a handshake message (a ClientHello, on a new connection).
const TLS_HANDSHAKE: u8 = 0x16;

/// The answer to a plain-HTTP request on the HTTPS port.
const PLAIN_HTTP_BODY: &str =
    "400 bad request: this port speaks HTTPS; send the request to https:// instead of http://\n";

/// The most bytes of a plain-HTTP request head read before it is answered (the rest is not read).
const PLAIN_HTTP_HEAD: usize = 16 * 1024;

/// The names the self-signed certificate is valid for.
pub const SELF_SIGNED_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// A server's TLS layer, ready for connections.
#[derive(Clone)]
pub(crate) struct Tls {
    acceptor: TlsAcceptor,
    /// The certificate in service; None for a self-signed one, which is never reloaded.
    certs: Option<Arc<Certs>>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").field("certs", &self.certs).finish_non_exhaustive()
    }
}

/// The certificate and key in service, and the files they came from. New handshakes take the current one; a reload
/// of the routes that read other files replaces it, or, when the new ones are bad, logs why and keeps it.
struct Certs {
    current: ArcSwap<CertifiedKey>,
    /// The certificate and key files last seen, good or bad (a bad pair is reported once, not per handshake).
    seen: Mutex<(PemFile, PemFile)>,
    provider: Arc<CryptoProvider>,
}

impl std::fmt::Debug for Certs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certs").finish_non_exhaustive()
    }
}

impl ResolvesServerCert for Certs {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// Builds the TLS layer for `config`. A self-signed certificate is made now and its PEM written to
/// `self_signed_pem`'s path, which is returned for the caller to print: call this at start, off the async workers.
pub(crate) fn build(config: &TlsConfig, self_signed_pem: &Path) -> Result<(Tls, Option<PathBuf>), ServeError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(format!("no TLS version available: {e}"), "this is a bug in hotroute"))?;
    let (mut server, certs, written) = match config {
        TlsConfig::SelfSigned => {
            let (chain, key, pem) = self_signed()?;
            write_new(self_signed_pem, pem.as_bytes()).map_err(|e| {
                tls_error(
                    format!("cannot write the self-signed certificate to {}: {e}", self_signed_pem.display()),
                    "make the temporary folder writable (TMPDIR), or give your own certificate: [server] tls = { cert = \"cert.pem\", key = \"key.pem\" }",
                )
            })?;
            let server = builder.with_no_client_auth().with_single_cert(chain, key).map_err(|e| {
                tls_error(format!("the self-signed certificate cannot be used: {e}"), "this is a bug in hotroute")
            })?;
            (server, None, Some(self_signed_pem.to_path_buf()))
        }
        TlsConfig::Files(files) => {
            let certified = certified_key(&provider, &files.cert, &files.key)?;
            let builder = match &files.client_ca {
                None => builder.with_no_client_auth(),
                Some((ca, auth)) => {
                    let mut roots = RootCertStore::empty();
                    for cert in read_certs(ca, "tls.client_ca")? {
                        roots.add(cert).map_err(|e| {
                            tls_error(
                                format!(
                                    "tls.client_ca: a certificate in {} is not a usable CA: {e}",
                                    ca.path.display()
                                ),
                                "give the PEM of the CA certificate(s) that sign your client certificates",
                            )
                        })?;
                    }
                    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
                    let verifier = match auth {
                        ClientAuth::Required => verifier,
                        ClientAuth::Optional => verifier.allow_unauthenticated(),
                    };
                    let verifier = verifier.build().map_err(|e| {
                        tls_error(
                            format!("tls.client_ca: {} cannot check client certificates: {e}", ca.path.display()),
                            "give the PEM of the CA certificate(s) that sign your client certificates",
                        )
                    })?;
                    builder.with_client_cert_verifier(verifier)
                }
            };
            let certs = Arc::new(Certs {
                current: ArcSwap::from_pointee(certified),
                seen: Mutex::new((files.cert.clone(), files.key.clone())),
                provider,
            });
            (builder.with_cert_resolver(certs.clone()), Some(certs), None)
        }
    };
    // ALPN: HTTP/2 when the client offers it, else HTTP/1.1. hyper's auto builder then reads the protocol from the
    // connection's first bytes, so a client that offers no ALPN is served too.
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((Tls { acceptor: TlsAcceptor::from(Arc::new(server)), certs }, written))
}

/// Writes a new file at `path`, replacing a file left there by an earlier run with the same process id and port.
/// Never through a link: the temporary folder is shared, and a link planted there must not make the server
/// overwrite the file it points to.
fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    std::fs::OpenOptions::new().write(true).create_new(true).open(path)?.write_all(bytes)
}

fn tls_error(reason: String, help: &'static str) -> ServeError {
    ServeError::Tls { reason, help }
}

/// A certificate for [`SELF_SIGNED_NAMES`], its key, and the certificate's PEM.
fn self_signed() -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>, String), ServeError> {
    let names: Vec<String> = SELF_SIGNED_NAMES.iter().map(|n| n.to_string()).collect();
    let certified = rcgen::generate_simple_self_signed(names).map_err(|e| {
        tls_error(
            format!("cannot make a self-signed certificate: {e}"),
            "give your own with [server] tls = { cert, key }",
        )
    })?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der()));
    Ok((vec![certified.cert.der().clone()], key, certified.cert.pem()))
}

/// The certificate chain and the signing key from their PEM files, checked to belong together.
fn certified_key(provider: &CryptoProvider, cert: &PemFile, key: &PemFile) -> Result<CertifiedKey, ServeError> {
    let chain = read_certs(cert, "tls.cert")?;
    let der = PrivateKeyDer::from_pem_slice(&key.pem.0).map_err(|e| {
        tls_error(
            format!("tls.key: cannot read a private key from {}: {e}", key.path.display()),
            "give a PEM file with a `PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE KEY` block",
        )
    })?;
    let signing = provider.key_provider.load_private_key(der).map_err(|e| {
        tls_error(
            format!("tls.key: the key in {} cannot sign: {e}", key.path.display()),
            "give an RSA (2048 bits or more), ECDSA (P-256 or P-384) or Ed25519 key",
        )
    })?;
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(|e| {
        tls_error(
            format!(
                "the certificate {} and the key {} cannot be used together: {e}",
                cert.path.display(),
                key.path.display()
            ),
            "check that the key is the certificate's (the first certificate in tls.cert is the server's own)",
        )
    })?;
    Ok(certified)
}

fn read_certs(file: &PemFile, key: &str) -> Result<Vec<CertificateDer<'static>>, ServeError> {
    let help = "give a PEM file with one or more `CERTIFICATE` blocks";
    let path = file.path.display();
    let certs = CertificateDer::pem_slice_iter(&file.pem.0)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_error(format!("{key}: cannot read certificates from {path}: {e}"), help))?;
    if certs.is_empty() {
        return Err(tls_error(format!("{key}: {path} has no certificate"), help));
    }
    Ok(certs)
}

impl Tls {
    /// Takes the certificate and key of the routes in service (`config`, their `[server] tls`) for the handshakes
    /// from now on, when they are other files or other contents than the ones in service. Bad ones are logged once
    /// and the certificate in service stays. Cheap when nothing changed: a pointer comparison.
    pub(crate) fn refresh(&self, config: Option<&TlsConfig>) {
        let (Some(certs), Some(TlsConfig::Files(files))) = (&self.certs, config) else { return };
        let mut seen = certs.seen.lock().unwrap_or_else(|e| e.into_inner());
        let same = |a: &PemFile, b: &PemFile| Arc::ptr_eq(&a.pem.0, &b.pem.0) && a.path == b.path;
        if same(&seen.0, &files.cert) && same(&seen.1, &files.key) {
            return;
        }
        let changed = seen.0 != files.cert || seen.1 != files.key;
        *seen = (files.cert.clone(), files.key.clone());
        drop(seen);
        if !changed {
            return;
        }
        match certified_key(&certs.provider, &files.cert, &files.key) {
            Ok(certified) => {
                certs.current.store(Arc::new(certified));
                tracing::info!(cert = %files.cert.path.display(), "TLS certificate reloaded: new connections use it");
            }
            Err(e) => tracing::error!("{e}\n  the certificate in service stays until the files are fixed"),
        }
    }
}

/// What the first byte of a connection said.
pub(crate) enum Sniffed {
    /// A TLS handshake: go on with [`Tls::accept`].
    Tls,
    /// Not TLS, and already answered or closed; logged.
    Refused,
}

/// Looks at the first byte of a new connection (without taking it), for at most `timeout`. Plain HTTP gets the 400
/// here; anything else that is not TLS is closed.
pub(crate) async fn sniff(stream: &mut ObservedStream, peer: SocketAddr, timeout: Duration) -> Sniffed {
    let mut first = [0u8; 1];
    let peeked = tokio::time::timeout(timeout, stream.tcp().peek(&mut first)).await;
    match peeked {
        Err(_) => {
            tracing::debug!(%peer, "no TLS handshake within {timeout:?} (header_read_timeout): closing the connection");
            Sniffed::Refused
        }
        Ok(Err(e)) => {
            tracing::debug!(%peer, "connection failed before its TLS handshake: {e}");
            Sniffed::Refused
        }
        Ok(Ok(0)) => Sniffed::Refused,
        Ok(Ok(_)) if first[0] == TLS_HANDSHAKE => Sniffed::Tls,
        Ok(Ok(_)) if first[0].is_ascii_uppercase() => {
            // Read the head before answering: closing with unread bytes would reset the connection, and the client
            // would see the reset instead of the answer.
            let _ = tokio::time::timeout(timeout, read_head(stream)).await;
            let answer = format!(
                "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\n\
                 connection: close\r\n\r\n{PLAIN_HTTP_BODY}",
                PLAIN_HTTP_BODY.len()
            );
            let written = tokio::time::timeout(timeout, async {
                stream.write_all(answer.as_bytes()).await?;
                stream.shutdown().await
            })
            .await;
            tracing::info!(%peer, "a plain-HTTP request on the HTTPS port: answered 400 (use https://)");
            if let Ok(Err(e)) = written {
                tracing::debug!(%peer, "cannot send the 400 to a plain-HTTP request: {e}");
            }
            Sniffed::Refused
        }
        Ok(Ok(_)) => {
            tracing::warn!(%peer, "a connection to the HTTPS port sent bytes that are not TLS (first byte {:#04x}): closed", first[0]);
            Sniffed::Refused
        }
    }
}

/// Reads a request head (up to [`PLAIN_HTTP_HEAD`] bytes) and drops it.
async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 2048];
    while head.len() < PLAIN_HTTP_HEAD {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
        if memchr::memmem::find(&head, b"\r\n\r\n").is_some() {
            break;
        }
    }
    Ok(())
}

impl Tls {
    /// The TLS handshake over `io`, for at most `timeout`; a failure is logged and gives `None`.
    pub(crate) async fn accept<IO>(&self, io: IO, peer: SocketAddr, timeout: Duration) -> Option<TlsStream<IO>>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        match tokio::time::timeout(timeout, self.acceptor.accept(io)).await {
            Ok(Ok(stream)) => Some(stream),
            Ok(Err(e)) => {
                tracing::warn!(%peer, "TLS handshake failed: {e}");
                None
            }
            Err(_) => {
                tracing::warn!(%peer, "TLS handshake not done within {timeout:?} (header_read_timeout): closed");
                None
            }
        }
    }
}
