//! HTTPS and mutual TLS against the binary: certificates made in the test with rcgen (and openssl for RSA), real
//! TLS clients (tokio-rustls under hyper's client connections, Python's `ssl`, curl).

use crate::common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, SignatureAlgorithm,
};
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// A hotroute process; killed when dropped.
struct Running {
    child: Child,
    addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
}

impl Drop for Running {
    /// Stops the child with SIGTERM, so that it removes its self-signed certificate file; SIGKILL after 10 s.
    fn drop(&mut self) {
        // SAFETY: a signal to the child this test started (and has not reaped yet).
        if self.child.try_wait().ok().flatten().is_none() {
            unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    /// Waits (at most 10 s) for stderr to contain `needle`, and returns all of stderr.
    fn stderr_with(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = self.stderr.lock().unwrap().clone();
            if text.contains(needle) || Instant::now() > deadline {
                return text;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The self-signed certificate's PEM file, from the path stderr names.
    fn self_signed_pem(&self) -> String {
        let text = self.stderr_with("written to ");
        let path = text
            .lines()
            .find_map(|l| l.split_once("self-signed certificate for localhost, 127.0.0.1 and ::1 written to "))
            .map(|(_, p)| p.trim().to_owned())
            .unwrap_or_else(|| panic!("stderr names no certificate file:\n{text}"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
    }
}

/// Starts the binary on `routes` (written to `dir/routes.toml`) with `args` and without the file watcher, and reads
/// its `listening on https://` line.
fn start(dir: &Path, routes: &str, args: &[&str]) -> Running {
    start_watching(dir, routes, &[args, &["--no-watch"]].concat())
}

/// Like [`start`], with the file watcher on.
fn start_watching(dir: &Path, routes: &str, args: &[&str]) -> Running {
    let path = dir.join("routes.toml");
    std::fs::write(&path, routes).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_hotroute"))
        .arg(&path)
        .args(["--port", "0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = Arc::new(Mutex::new(String::new()));
    let mut pipe = BufReader::new(child.stderr.take().unwrap());
    let sink = stderr.clone();
    std::thread::spawn(move || {
        let mut line = String::new();
        while pipe.read_line(&mut line).is_ok_and(|n| n > 0) {
            sink.lock().unwrap().push_str(&line);
            line.clear();
        }
    });
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let Some(addr) = line.trim_end().strip_prefix("listening on https://").and_then(|a| a.parse().ok()) else {
        std::thread::sleep(Duration::from_millis(200));
        panic!("first stdout line {line:?}; stderr:\n{}", stderr.lock().unwrap());
    };
    Running { child, addr, stderr }
}

/// A certificate and its key, as PEM.
struct Pem {
    cert: String,
    key: String,
}

/// A test CA: its certificate's PEM and an issuer that signs with it.
struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn ca(name: &str, signed_by: Option<&Ca>) -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let cert = match signed_by {
        None => params.self_signed(&key).unwrap(),
        Some(parent) => params.signed_by(&key, &parent.issuer).unwrap(),
    };
    Ca { pem: cert.pem(), issuer: Issuer::new(params, key) }
}

/// A leaf certificate for `names` with common name `cn`, signed by `ca`, for a server or a client.
fn leaf(ca: &Ca, cn: &str, names: &[&str], key: KeyPair, client: bool) -> Pem {
    let mut params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.extended_key_usages =
        vec![if client { ExtendedKeyUsagePurpose::ClientAuth } else { ExtendedKeyUsagePurpose::ServerAuth }];
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    Pem { cert: cert.pem(), key: key.serialize_pem() }
}

fn server_leaf(ca: &Ca, alg: &'static SignatureAlgorithm) -> Pem {
    leaf(ca, "localhost", &["localhost", "127.0.0.1"], KeyPair::generate_for(alg).unwrap(), false)
}

fn tls_routes(extra: &str) -> String {
    format!(
        "[server]\ntls = {{ cert = \"cert.pem\", key = \"key.pem\"{extra} }}\n\n[[route]]\npath = \"/hello\"\nbody = \
         \"hello over TLS\"\n"
    )
}

/// What a request over TLS got.
#[derive(Debug)]
struct Answer {
    status: u16,
    version: http::Version,
    alpn: Option<Vec<u8>>,
    body: String,
}

/// A rustls client trusting `roots` (PEM), offering `alpn`, with an optional client certificate.
fn client_config(roots: &str, alpn: &[&[u8]], client: Option<&Pem>) -> Arc<rustls::ClientConfig> {
    let mut store = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(roots.as_bytes()) {
        store.add(cert.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(store);
    let mut config = match client {
        None => builder.with_no_client_auth(),
        Some(pem) => {
            let chain = CertificateDer::pem_slice_iter(pem.cert.as_bytes()).map(Result::unwrap).collect();
            let key = PrivateKeyDer::from_pem_slice(pem.key.as_bytes()).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// `method path` over TLS to `addr` as `name`, with `headers`; HTTP/2 when the server chose it by ALPN.
async fn request(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    name: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<Answer, String> {
    let tcp = tokio::net::TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let server_name = ServerName::try_from(name.to_owned()).unwrap();
    let tls = tokio_rustls::TlsConnector::from(config).connect(server_name, tcp).await.map_err(|e| e.to_string())?;
    let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
    let mut req = http::Request::builder().method(method).uri(format!("https://{name}{path}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let io = TokioIo::new(tls);
    let res = if alpn.as_deref() == Some(b"h2") {
        let (mut send, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await.map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        send.send_request(req.body(Full::new(Bytes::new())).unwrap()).await
    } else {
        let (mut send, conn) = hyper::client::conn::http1::handshake(io).await.map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let req = req.uri(path).header("host", name).body(Full::new(Bytes::new())).unwrap();
        send.send_request(req).await
    }
    .map_err(|e| format!("{e:?}"))?;
    let (status, version) = (res.status().as_u16(), res.version());
    let body = res.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok(Answer { status, version, alpn, body: String::from_utf8_lossy(&body).into_owned() })
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}

fn get(addr: SocketAddr, config: Arc<rustls::ClientConfig>, name: &str, path: &str) -> Result<Answer, String> {
    block_on(request(addr, config, name, "GET", path, &[]))
}

/// Writes `files` (name, content) into `dir`.
fn write(dir: &Path, files: &[(&str, &str)]) {
    for (name, content) in files {
        std::fs::write(dir.join(name), content).unwrap();
    }
}

#[test]
fn a_given_certificate_chain_serves_http1_and_h2_by_alpn() {
    let dir = tempfile::tempdir().unwrap();
    let root = ca("hotroute test root", None);
    let intermediate = ca("hotroute test intermediate", Some(&root));
    let server = server_leaf(&intermediate, &rcgen::PKCS_ECDSA_P256_SHA256);
    // The chain: the server's certificate, then the intermediate; clients know only the root.
    write(dir.path(), &[("cert.pem", &format!("{}{}", server.cert, intermediate.pem)), ("key.pem", &server.key)]);
    let running = start(dir.path(), &tls_routes(""), &[]);

    let h2 = get(running.addr, client_config(&root.pem, &[b"h2", b"http/1.1"], None), "localhost", "/hello").unwrap();
    assert_eq!((h2.status, h2.version, h2.alpn.as_deref()), (200, http::Version::HTTP_2, Some(&b"h2"[..])));
    assert_eq!(h2.body, "hello over TLS");
    let h1 = get(running.addr, client_config(&root.pem, &[b"http/1.1"], None), "localhost", "/hello").unwrap();
    assert_eq!((h1.status, h1.version, h1.alpn.as_deref()), (200, http::Version::HTTP_11, Some(&b"http/1.1"[..])));
    // A client that offers no ALPN gets HTTP/1.1, and the IP address is a name of the certificate too.
    let plain = get(running.addr, client_config(&root.pem, &[], None), "127.0.0.1", "/hello").unwrap();
    assert_eq!((plain.status, plain.version, plain.alpn), (200, http::Version::HTTP_11, None));
    // A client that does not trust the root cannot talk to the server, and the server logs it for that connection.
    let other = ca("another root", None);
    let refused = get(running.addr, client_config(&other.pem, &[], None), "localhost", "/hello");
    assert!(refused.is_err(), "{refused:?}");
    assert!(running.stderr_with("TLS handshake failed").contains("TLS handshake failed"));
    assert_eq!(get(running.addr, client_config(&root.pem, &[], None), "localhost", "/hello").unwrap().status, 200);
}

#[test]
fn ed25519_and_rsa_keys_serve_https() {
    let root = ca("hotroute test root", None);
    let dir = tempfile::tempdir().unwrap();
    let ed = server_leaf(&root, &rcgen::PKCS_ED25519);
    write(dir.path(), &[("cert.pem", &ed.cert), ("key.pem", &ed.key)]);
    let running = start(dir.path(), &tls_routes(""), &[]);
    let answer = get(running.addr, client_config(&root.pem, &[b"h2"], None), "localhost", "/hello").unwrap();
    assert_eq!((answer.status, answer.body.as_str()), (200, "hello over TLS"));
    drop(running);

    // ring cannot make RSA keys: openssl does, and its PKCS#1 form (`RSA PRIVATE KEY`) is the one served.
    let dir = tempfile::tempdir().unwrap();
    let pkcs8 = dir.path().join("rsa8.pem");
    let pkcs1 = dir.path().join("key.pem");
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl").args(args).output().expect("openssl is needed to make an RSA key");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    openssl(&["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", pkcs8.to_str().unwrap()]);
    openssl(&["rsa", "-in", pkcs8.to_str().unwrap(), "-traditional", "-out", pkcs1.to_str().unwrap()]);
    assert!(std::fs::read_to_string(&pkcs1).unwrap().starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    let key =
        KeyPair::from_pem_and_sign_algo(&std::fs::read_to_string(&pkcs8).unwrap(), &rcgen::PKCS_RSA_SHA256).unwrap();
    let rsa = leaf(&root, "localhost", &["localhost", "127.0.0.1"], key, false);
    write(dir.path(), &[("cert.pem", &rsa.cert)]);
    let running = start(dir.path(), &tls_routes(""), &[]);
    let answer = get(running.addr, client_config(&root.pem, &[b"http/1.1"], None), "localhost", "/hello").unwrap();
    assert_eq!((answer.status, answer.body.as_str()), (200, "hello over TLS"));
}

#[test]
fn self_signed_from_the_flag_and_the_file_is_trusted_through_the_pem_stderr_names() {
    let routes = "[[route]]\npath = \"/hello\"\nbody = \"hi\"\n";
    for (routes, args) in
        [(routes.to_owned(), &["--tls"][..]), (format!("[server]\ntls = \"self-signed\"\n\n{routes}"), &[][..])]
    {
        let dir = tempfile::tempdir().unwrap();
        let running = start(dir.path(), &routes, args);
        let pem = running.self_signed_pem();
        for name in ["localhost", "127.0.0.1"] {
            let answer = get(running.addr, client_config(&pem, &[b"h2", b"http/1.1"], None), name, "/hello").unwrap();
            assert_eq!((answer.status, answer.version, answer.body.as_str()), (200, http::Version::HTTP_2, "hi"));
        }
    }
}

#[test]
fn plain_http_on_the_tls_port_gets_a_short_400_that_says_https() {
    let dir = tempfile::tempdir().unwrap();
    let running = start(dir.path(), "[[route]]\npath = \"/hello\"\nbody = \"hi\"\n", &["--tls"]);
    let mut s = TcpStream::connect(running.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{answer}");
    assert!(answer.contains("content-type: text/plain"), "{answer}");
    assert!(answer.ends_with("send the request to https:// instead of http://\n"), "{answer}");
    assert!(answer.len() < 300, "{answer}");
    assert!(running.stderr_with("plain-HTTP request").contains("plain-HTTP request on the HTTPS port"));
    // The server goes on serving HTTPS.
    let pem = running.self_signed_pem();
    assert_eq!(get(running.addr, client_config(&pem, &[], None), "localhost", "/hello").unwrap().status, 200);
}

#[test]
fn garbage_and_a_stalled_handshake_end_only_their_own_connection() {
    let dir = tempfile::tempdir().unwrap();
    let routes = "[server]\nheader_read_timeout = \"1s\"\n\n[[route]]\npath = \"/hello\"\nbody = \"hi\"\n";
    let running = start(dir.path(), routes, &["--tls"]);
    let pem = running.self_signed_pem();
    let closed_within = |bytes: &[u8]| {
        let mut s = TcpStream::connect(running.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.write_all(bytes).unwrap();
        let started = Instant::now();
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        started.elapsed()
    };
    // Not TLS, not HTTP: closed.
    assert!(closed_within(b"\x00\x01\x02 not tls\r\n\r\n") < Duration::from_secs(10));
    // A TLS record header that never completes: the handshake is bounded by header_read_timeout (1 s), not the
    // idle timeout (60 s).
    assert!(closed_within(&[0x16, 0x03, 0x01]) < Duration::from_secs(10));
    // Garbage inside a TLS record: the handshake fails.
    assert!(closed_within(&[0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5]) < Duration::from_secs(10));
    // Logged for each connection (stderr is written by a queue of its own: wait for each line).
    for line in ["sent bytes that are not TLS", "TLS handshake not done within 1s", "TLS handshake failed"] {
        let stderr = running.stderr_with(line);
        assert!(stderr.contains(line), "{stderr}");
    }
    assert_eq!(get(running.addr, client_config(&pem, &[], None), "localhost", "/hello").unwrap().status, 200);
}

#[test]
fn the_admin_api_works_over_https() {
    let dir = tempfile::tempdir().unwrap();
    let running = start(dir.path(), "[[route]]\npath = \"/hello\"\nbody = \"hi\"\n", &["--tls"]);
    let pem = running.self_signed_pem();
    let config = client_config(&pem, &[b"h2", b"http/1.1"], None);
    let health = get(running.addr, config.clone(), "localhost", "/__admin/health").unwrap();
    assert_eq!(health.status, 200);
    assert!(health.body.contains("\"status\":\"ok\""), "{}", health.body);
    let reload =
        block_on(request(running.addr, config, "localhost", "POST", "/__admin/reload", &[("x-hotroute", "1")]))
            .unwrap();
    assert_eq!(reload.status, 200, "{}", reload.body);
}

#[test]
fn python_ssl_and_curl_talk_to_the_self_signed_server() {
    let dir = tempfile::tempdir().unwrap();
    let running = start(dir.path(), "[[route]]\npath = \"/hello\"\nbody = \"hi\"\n", &["--tls"]);
    let pem_path: PathBuf = dir.path().join("trust.pem");
    std::fs::write(&pem_path, running.self_signed_pem()).unwrap();
    let port = running.addr.port().to_string();
    let script = r#"
import ssl, socket, sys
ctx = ssl.create_default_context(cafile=sys.argv[1])
ctx.set_alpn_protocols(["http/1.1"])
with socket.create_connection(("127.0.0.1", int(sys.argv[2])), timeout=10) as raw:
    with ctx.wrap_socket(raw, server_hostname="localhost") as s:
        alpn = s.selected_alpn_protocol()
        s.sendall(b"GET /hello HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
print(alpn, data.split(b"\r\n")[0].decode(), data.split(b"\r\n\r\n", 1)[1].decode())
"#;
    match Command::new("python3").arg("-c").arg(script).arg(&pem_path).arg(&port).output() {
        Ok(out) => {
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
            assert_eq!(stdout.trim(), "http/1.1 HTTP/1.1 200 OK hi");
        }
        Err(e) => eprintln!("python3 not run ({e}): Python's ssl was not tried"),
    }
    let url = format!("https://localhost:{port}/hello");
    match Command::new("curl").args(["-sS", "--cacert"]).arg(&pem_path).args(["-w", " %{http_version}", &url]).output()
    {
        Ok(out) => {
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
            // curl offers h2 when it is built with nghttp2, else HTTP/1.1 only.
            assert!(stdout == "hi 2" || stdout == "hi 1.1", "{stdout}");
        }
        Err(e) => eprintln!("curl not run ({e}): curl was not tried"),
    }
}

#[test]
fn bad_tls_settings_are_load_errors() {
    let e = common::load_error("[server]\ntls = \"yes\"\n");
    assert!(e.contains("`yes` is not a TLS setting") && e.contains("self-signed"), "{e}");
    let e = common::load_error("[server]\ntls = { cert = \"nope.pem\", key = \"nope-key.pem\" }\n");
    assert!(e.contains("tls.cert: cannot read `") && e.contains("nope.pem`: No such file"), "{e}");
    assert!(e.contains("tls.key:"), "{e}");
}

#[test]
fn a_key_that_is_not_the_certificates_fails_at_start_and_says_which_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = ca("hotroute test root", None);
    let (a, b) =
        (server_leaf(&root, &rcgen::PKCS_ECDSA_P256_SHA256), server_leaf(&root, &rcgen::PKCS_ECDSA_P256_SHA256));
    write(dir.path(), &[("cert.pem", &a.cert), ("key.pem", &b.key), ("routes.toml", &tls_routes(""))]);
    let out = Command::new(env!("CARGO_BIN_EXE_hotroute"))
        .arg(dir.path().join("routes.toml"))
        .args(["--port", "0", "--no-watch"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("cannot serve HTTPS") && stderr.contains("cert.pem") && stderr.contains("help:"),
        "{stderr}"
    );
    write(dir.path(), &[("key.pem", "not a key")]);
    let out = Command::new(env!("CARGO_BIN_EXE_hotroute"))
        .arg(dir.path().join("routes.toml"))
        .args(["--port", "0", "--no-watch"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("tls.key: cannot read a private key from") && stderr.contains("PRIVATE KEY"), "{stderr}");
}

/// A server that asks for client certificates signed by a CA of its own, with `client_auth` (`""` for the default).
struct Mtls {
    running: Running,
    server_ca: Ca,
    client_ca: Ca,
    _dir: tempfile::TempDir,
}

fn mtls(client_auth: &str) -> Mtls {
    let dir = tempfile::tempdir().unwrap();
    let (server_ca, client_ca) = (ca("server CA", None), ca("client CA", None));
    let server = server_leaf(&server_ca, &rcgen::PKCS_ECDSA_P256_SHA256);
    write(dir.path(), &[("cert.pem", &server.cert), ("key.pem", &server.key), ("clients.pem", &client_ca.pem)]);
    let running = start(dir.path(), &tls_routes(&format!(", client_ca = \"clients.pem\"{client_auth}")), &[]);
    Mtls { running, server_ca, client_ca, _dir: dir }
}

impl Mtls {
    fn get_as(&self, client: Option<&Pem>) -> Result<Answer, String> {
        get(self.running.addr, client_config(&self.server_ca.pem, &[b"h2", b"http/1.1"], client), "localhost", "/hello")
    }
}

fn client_leaf(ca: &Ca, cn: &str) -> Pem {
    leaf(ca, cn, &[], KeyPair::generate().unwrap(), true)
}

#[test]
fn mtls_required_accepts_a_client_certificate_of_its_ca_and_refuses_others() {
    let server = mtls("");
    let alice = client_leaf(&server.client_ca, "alice");
    let answer = server.get_as(Some(&alice)).unwrap();
    assert_eq!((answer.status, answer.body.as_str()), (200, "hello over TLS"));
    // No certificate, or one from a CA the server does not trust: no answer, and a log line for that connection.
    assert!(server.get_as(None).is_err());
    let stranger = client_leaf(&ca("stranger CA", None), "mallory");
    assert!(server.get_as(Some(&stranger)).is_err());
    let stderr = server.running.stderr_with("TLS handshake failed");
    assert!(stderr.contains("TLS handshake failed"), "{stderr}");
    assert_eq!(server.get_as(Some(&alice)).unwrap().status, 200);
}

#[test]
fn mtls_optional_serves_clients_without_a_certificate_but_checks_those_that_send_one() {
    let server = mtls(", client_auth = \"optional\"");
    assert_eq!(server.get_as(None).unwrap().status, 200);
    assert_eq!(server.get_as(Some(&client_leaf(&server.client_ca, "alice"))).unwrap().status, 200);
    assert!(server.get_as(Some(&client_leaf(&ca("stranger CA", None), "mallory"))).is_err());
}

#[test]
fn bad_mtls_settings_are_load_errors() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &[("cert.pem", "x"), ("key.pem", "x"), ("ca.pem", "x")]);
    let load = |tls: &str| {
        let path = dir.path().join("routes.toml");
        std::fs::write(&path, format!("[server]\ntls = {{ cert = \"cert.pem\", key = \"key.pem\"{tls} }}\n")).unwrap();
        match hotroute::Router::load_file(&path) {
            Ok(_) => panic!("expected a load error for {tls}"),
            Err(e) => e.to_string(),
        }
    };
    let e = load(", client_auth = \"optional\"");
    assert!(e.contains("tls.client_auth is set but tls.client_ca is not"), "{e}");
    let e = load(", client_ca = \"ca.pem\", client_auth = \"maybe\"");
    assert!(e.contains("`maybe` is not a client authentication mode") && e.contains("\"optional\""), "{e}");
    let e = load(", client_ca = \"missing.pem\"");
    assert!(e.contains("tls.client_ca: cannot read `") && e.contains("missing.pem`"), "{e}");
}

#[test]
fn new_certificate_files_serve_new_handshakes_after_a_reload_and_bad_ones_keep_the_old() {
    let dir = tempfile::tempdir().unwrap();
    let (old_ca, new_ca) = (ca("old CA", None), ca("new CA", None));
    let old = server_leaf(&old_ca, &rcgen::PKCS_ECDSA_P256_SHA256);
    write(dir.path(), &[("cert.pem", &old.cert), ("key.pem", &old.key)]);
    let running = start(dir.path(), &tls_routes(""), &[]);
    let (trust_old, trust_new) = (client_config(&old_ca.pem, &[], None), client_config(&new_ca.pem, &[], None));
    assert_eq!(get(running.addr, trust_old.clone(), "localhost", "/hello").unwrap().status, 200);
    assert!(get(running.addr, trust_new.clone(), "localhost", "/hello").is_err());
    let reload = || {
        let answer = block_on(request(
            running.addr,
            trust_old.clone(),
            "localhost",
            "POST",
            "/__admin/reload",
            &[("x-hotroute", "1")],
        ));
        // The reload itself may be answered on a connection made before or after the new certificate.
        answer.or_else(|_| {
            block_on(request(
                running.addr,
                trust_new.clone(),
                "localhost",
                "POST",
                "/__admin/reload",
                &[("x-hotroute", "1")],
            ))
        })
    };

    // A certificate that does not parse: the reload goes through (the routes are fine), the old certificate stays.
    write(dir.path(), &[("cert.pem", "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n")]);
    assert_eq!(reload().unwrap().status, 200);
    assert_eq!(get(running.addr, trust_old.clone(), "localhost", "/hello").unwrap().status, 200);
    let stderr = running.stderr_with("the certificate in service stays");
    assert!(stderr.contains("tls.cert: cannot read certificates from") && stderr.contains("stays"), "{stderr}");

    // A good new pair: new handshakes use it.
    let new = server_leaf(&new_ca, &rcgen::PKCS_ED25519);
    write(dir.path(), &[("cert.pem", &new.cert), ("key.pem", &new.key)]);
    assert_eq!(reload().unwrap().status, 200);
    let answer = get(running.addr, trust_new.clone(), "localhost", "/hello").unwrap();
    assert_eq!((answer.status, answer.body.as_str()), (200, "hello over TLS"));
    // A fresh client (a resumed session skips the certificate) that trusts only the old CA is refused now.
    assert!(get(running.addr, client_config(&old_ca.pem, &[], None), "localhost", "/hello").is_err());
    assert!(running.stderr_with("TLS certificate reloaded").contains("TLS certificate reloaded"));
}

#[test]
fn the_file_watcher_reloads_the_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (old_ca, new_ca) = (ca("old CA", None), ca("new CA", None));
    let old = server_leaf(&old_ca, &rcgen::PKCS_ECDSA_P256_SHA256);
    write(dir.path(), &[("cert.pem", &old.cert), ("key.pem", &old.key)]);
    let running = start_watching(dir.path(), &tls_routes(""), &[]);
    let trust_new = client_config(&new_ca.pem, &[], None);
    let new = server_leaf(&new_ca, &rcgen::PKCS_ECDSA_P256_SHA256);
    // Two saves: between them the pair does not match, and the old certificate stays until the second.
    write(dir.path(), &[("key.pem", &new.key), ("cert.pem", &new.cert)]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while get(running.addr, trust_new.clone(), "localhost", "/hello").is_err() {
        assert!(Instant::now() < deadline, "the new certificate was not served within 20 s of the save");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_self_signed_pem_is_removed_when_the_server_stops() {
    let dir = tempfile::tempdir().unwrap();
    let mut running = start(dir.path(), "[[route]]\npath = \"/hello\"\nbody = \"hi\"\n", &["--tls"]);
    let text = running.stderr_with("written to ");
    let path = text.lines().find_map(|l| l.split_once(" written to ")).map(|(_, p)| PathBuf::from(p.trim())).unwrap();
    assert!(path.is_file(), "{}", path.display());
    // SAFETY: a signal to the child this test started.
    assert_eq!(unsafe { libc::kill(running.child.id() as libc::pid_t, libc::SIGTERM) }, 0);
    let deadline = Instant::now() + Duration::from_secs(20);
    while running.child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "hotroute did not stop within 20 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!path.exists(), "{} is still there", path.display());
}
