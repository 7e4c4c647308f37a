//! `proxy` routes and `[server] proxy` against the binary, with a local upstream started in the test (a hyper server
//! on 127.0.0.1:0, in cleartext or over HTTPS with a CA made here): forwarding, header rules, streaming with flat
//! memory, failures as answers, and what the journal, access log and metrics say.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::bin::Bin;

type UpBody = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;

/// The test upstream's answers:
/// - `/json`, `/pretty`, `/binary`, `/large` (100 KiB of text), `/empty` (204), `/secret` (secrets in headers and
///   JSON): fixed answers of each kind, for recording;
/// - `/slow`: waits 5 s, then answers;
/// - `/big?n=N`: N bytes of `x`, streamed in 64 KiB chunks;
/// - `/upload`: reads the whole body as it comes and answers `x-received: N`;
/// - `/created`: 201;
/// - anything else: a JSON echo of the request (method, target, version, headers, body length), with a header named
///   in `Connection` and a `Keep-Alive` header, which a proxy must not pass on.
pub(crate) async fn upstream_answer(req: Request<Incoming>) -> Result<Response<UpBody>, Infallible> {
    let full = |status: u16, text: String| {
        let mut res = Response::new(Full::new(Bytes::from(text)).map_err(|never| match never {}).boxed());
        *res.status_mut() = http::StatusCode::from_u16(status).unwrap();
        res
    };
    let path = req.uri().path().to_owned();
    if path.ends_with("/slow") {
        tokio::time::sleep(Duration::from_secs(5)).await;
        return Ok(full(200, "slow".into()));
    }
    if path.ends_with("/stall") {
        // A head and a first chunk, then nothing, for ever.
        let first = futures_lite_once(Bytes::from_static(b"partial"));
        return Ok(Response::new(BodyExt::boxed(first)));
    }
    if path.ends_with("/big") {
        let n: usize = req.uri().query().and_then(|q| q.strip_prefix("n=")).unwrap().parse().unwrap();
        let body = Big { left: n, chunk: Bytes::from(vec![b'x'; 64 * 1024]) };
        return Ok(Response::new(BodyExt::boxed(body)));
    }
    if path.ends_with("/upload") {
        let mut body = req.into_body();
        let mut n = 0usize;
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.unwrap().into_data() {
                n += data.len();
            }
        }
        let mut res = full(200, format!("{n}"));
        res.headers_mut().insert("x-received", n.to_string().parse().unwrap());
        return Ok(res);
    }
    if path.ends_with("/created") {
        return Ok(full(201, "created upstream".into()));
    }
    let typed = |status: u16, content_type: &str, body: Vec<u8>| {
        let mut res = Response::new(Full::new(Bytes::from(body)).map_err(|never| match never {}).boxed());
        *res.status_mut() = http::StatusCode::from_u16(status).unwrap();
        res.headers_mut().insert("content-type", content_type.parse().unwrap());
        res
    };
    match path.as_str() {
        "/json" => {
            let body = br#"{"id":7,"name":"Ada","tags":["a","b"],"nested":{"ok":true,"ratio":0.5}}"#.to_vec();
            return Ok(typed(200, "application/json", body));
        }
        "/pretty" => return Ok(typed(200, "application/json", b"{\n  \"a\": 1\n}\n".to_vec())),
        "/binary" => return Ok(typed(200, "application/octet-stream", (0..=255u8).collect())),
        "/large" => return Ok(typed(200, "text/plain", b"0123456789abcdef".repeat(100 * 1024 / 16))),
        "/empty" => {
            let mut res = typed(204, "text/plain", Vec::new());
            res.headers_mut().remove("content-type");
            return Ok(res);
        }
        "/secret" => {
            let mut res = typed(200, "application/json", br#"{"user":"ada","token":"t0p-secret"}"#.to_vec());
            res.headers_mut().insert("set-cookie", "session=abc123".parse().unwrap());
            res.headers_mut().insert("x-api-key", "key-123".parse().unwrap());
            res.headers_mut().insert("x-custom-secret", "s3cret".parse().unwrap());
            res.headers_mut().insert("x-plain", "kept".parse().unwrap());
            return Ok(res);
        }
        _ => {}
    }
    let headers: serde_json::Map<String, serde_json::Value> = req
        .headers()
        .keys()
        .map(|k| {
            let values: Vec<&str> = req.headers().get_all(k).iter().map(|v| v.to_str().unwrap()).collect();
            (k.as_str().to_owned(), values.join(", ").into())
        })
        .collect();
    let (method, target, version) =
        (req.method().to_string(), req.uri().path_and_query().unwrap().to_string(), format!("{:?}", req.version()));
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let echo = serde_json::json!({
        "method": method, "target": target, "version": version, "headers": headers, "body": String::from_utf8_lossy(&body),
    });
    let mut res = full(200, echo.to_string());
    res.headers_mut().insert("content-type", "application/json".parse().unwrap());
    res.headers_mut().insert("x-upstream", "yes".parse().unwrap());
    if version != "HTTP/2.0" {
        res.headers_mut().insert("connection", "x-hop".parse().unwrap());
        res.headers_mut().insert("x-hop", "must not pass".parse().unwrap());
        res.headers_mut().insert("keep-alive", "timeout=5".parse().unwrap());
    }
    Ok(res)
}

/// A body that sends `first`, then never ends.
fn futures_lite_once(first: Bytes) -> Stall {
    Stall(Some(first))
}

struct Stall(Option<Bytes>);

impl hyper::body::Body for Stall {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        match self.get_mut().0.take() {
            Some(first) => std::task::Poll::Ready(Some(Ok(Frame::data(first)))),
            None => std::task::Poll::Pending,
        }
    }
}

/// `n` bytes of `x`, made 64 KiB at a time as the proxy reads them.
struct Big {
    left: usize,
    chunk: Bytes,
}

impl hyper::body::Body for Big {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let this = self.get_mut();
        if this.left == 0 {
            return std::task::Poll::Ready(None);
        }
        let n = this.left.min(this.chunk.len());
        this.left -= n;
        std::task::Poll::Ready(Some(Ok(Frame::data(this.chunk.slice(..n)))))
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(self.left as u64)
    }
}

/// Starts the test upstream on 127.0.0.1:0, in cleartext or (with `tls`) over HTTPS offering h2 and http/1.1.
pub(crate) async fn upstream(tls: Option<Arc<rustls::ServerConfig>>) -> SocketAddr {
    upstream_stoppable(tls).await.0
}

/// Like [`upstream`], with the handle that stops it listening (connections already open are the client's to close).
pub(crate) async fn upstream_stoppable(
    tls: Option<Arc<rustls::ServerConfig>>,
) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let tls = tls.clone();
            tokio::spawn(async move {
                let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                let service = service_fn(upstream_answer);
                match tls {
                    None => {
                        let _ = builder.serve_connection(TokioIo::new(stream), service).await;
                    }
                    Some(config) => {
                        let Ok(tls) = tokio_rustls::TlsAcceptor::from(config).accept(stream).await else { return };
                        let _ = builder.serve_connection(TokioIo::new(tls), service).await;
                    }
                }
            });
        }
    });
    (addr, handle)
}

/// A CA (its PEM) and a server config for `localhost`/`127.0.0.1` signed by it, offering h2 and http/1.1.
fn tls_upstream_config() -> (String, Arc<rustls::ServerConfig>) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "proxy test CA");
    let ca_pem = ca_params.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, "localhost");
    let cert = params.signed_by(&key, &issuer).unwrap();
    let chain: Vec<CertificateDer<'static>> = vec![cert.der().clone()];
    let key = PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes()).unwrap();
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    (ca_pem, Arc::new(config))
}

/// Sends `request` (raw HTTP/1.1, `Connection: close` added by the caller) and returns the status, the headers (lower
/// case) and the body.
async fn raw(addr: SocketAddr, request: &str) -> (u16, Vec<(String, String)>, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut out)).await.unwrap().unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let headers = head
        .split("\r\n")
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, body.to_owned())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

async fn get_json(url: &str) -> (u16, serde_json::Value) {
    let res = reqwest::get(url).await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mocked_routes_win_and_proxy_routes_and_the_fallback_forward_path_and_query() {
    let up = upstream(None).await;
    let bin = Bin::start(&format!(
        r#"
[server]
proxy = "http://{up}"

[[route]]
path = "/api/users/1"
body = "mocked"

[[route]]
path = "/api/{{*rest}}"
method = "ANY"
proxy = {{ url = "http://{up}/base/", path = "/v2/{{rest}}" }}

[[route]]
path = "/plain/{{*rest}}"
proxy = "http://{up}/prefix"
"#
    ));
    let mocked = reqwest::get(bin.url("/api/users/1")).await.unwrap().text().await.unwrap();
    assert_eq!(mocked, "mocked");
    let (status, echo) = get_json(&bin.url("/api/things/7?x=1&y=%20")).await;
    assert_eq!(status, 200);
    assert_eq!(echo["target"], "/base/v2/things/7?x=1&y=%20");
    let (_, echo) = get_json(&bin.url("/plain/a/b?q")).await;
    assert_eq!(echo["target"], "/prefix/plain/a/b?q");
    // Unmatched, and a path whose only route does not take the method: both go to `[server] proxy`.
    let (_, echo) = get_json(&bin.url("/nowhere?page=2")).await;
    assert_eq!(echo["target"], "/nowhere?page=2");
    let res = reqwest::Client::new().post(bin.url("/plain/x")).body("posted body").send().await.unwrap();
    let echo: serde_json::Value = serde_json::from_str(&res.text().await.unwrap()).unwrap();
    assert_eq!((echo["method"].as_str(), echo["target"].as_str()), (Some("POST"), Some("/plain/x")));
    assert_eq!(echo["body"], "posted body");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hop_by_hop_headers_are_dropped_and_host_forwarded_for_and_via_are_set() {
    let up = upstream(None).await;
    let bin = Bin::start(&format!(
        r#"
[[route]]
path = "/a"
proxy = "http://{up}"

[[route]]
path = "/keep"
proxy = {{ url = "http://{up}", preserve_host = true }}
"#
    ));
    let request = "GET /a HTTP/1.1\r\nHost: front.example:8080\r\nConnection: close, x-private\r\nX-Private: 1\r\n\
                   Keep-Alive: timeout=5\r\nTE: trailers\r\nTrailer: x-t\r\nProxy-Authorization: Basic eDp5\r\n\
                   Proxy-Foo: bar\r\nX-Forwarded-For: 10.0.0.1\r\nX-Kept: yes\r\n\r\n";
    let (status, headers, body) = raw(bin.addr, request).await;
    assert_eq!(status, 200, "{body}");
    let echo: serde_json::Value = serde_json::from_str(&body).unwrap();
    let sent = echo["headers"].as_object().unwrap();
    for gone in ["connection", "x-private", "keep-alive", "te", "trailer", "proxy-authorization", "proxy-foo"] {
        assert!(!sent.contains_key(gone), "{gone} reached the upstream: {sent:?}");
    }
    assert_eq!(sent["x-kept"], "yes");
    assert_eq!(sent["host"], up.to_string());
    assert_eq!(sent["x-forwarded-for"], "10.0.0.1, 127.0.0.1");
    assert_eq!(sent["x-forwarded-proto"], "http");
    assert_eq!(sent["x-forwarded-host"], "front.example:8080");
    let via = sent["via"].as_str().unwrap();
    assert!(via.starts_with("1.1 hotroute-"), "{via}");
    // The upstream's own hop-by-hop headers stay between it and the proxy.
    assert_eq!(header(&headers, "x-upstream"), Some("yes"));
    assert_eq!(header(&headers, "x-hop"), None, "{headers:?}");
    assert_eq!(header(&headers, "keep-alive"), None, "{headers:?}");

    let (_, _, body) = raw(bin.addr, "GET /keep HTTP/1.1\r\nHost: front.example\r\nConnection: close\r\n\r\n").await;
    let echo: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(echo["headers"]["host"], "front.example");
}

/// Headers the client names in `Connection` are hop-by-hop and go before the forwarding headers are set: the proxy's
/// one pass over the request's headers (which also notes the forwarding headers sent) looks again once they are gone,
/// so a client cannot keep the proxy from writing `X-Forwarded-*` by sending its own and naming them there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_headers_named_in_connection_are_set_by_the_proxy() {
    let up = upstream(None).await;
    let bin = Bin::start(&format!("[server]\nproxy = \"http://{up}\"\n"));
    let request = "GET /named?q=1 HTTP/1.1\r\nHost: front.example\r\n\
                   Connection: close, x-forwarded-for, X-Forwarded-Proto, x-forwarded-host\r\n\
                   X-Forwarded-For: 192.0.2.1\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: evil.example\r\n\r\n";
    let (status, _, body) = raw(bin.addr, request).await;
    assert_eq!(status, 200, "{body}");
    let echo: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(echo["target"], "/named?q=1");
    let sent = echo["headers"].as_object().unwrap();
    assert_eq!(sent.get("x-forwarded-for").and_then(|v| v.as_str()), Some("127.0.0.1"), "{sent:?}");
    assert_eq!(sent.get("x-forwarded-proto").and_then(|v| v.as_str()), Some("http"), "{sent:?}");
    assert_eq!(sent.get("x-forwarded-host").and_then(|v| v.as_str()), Some("front.example"), "{sent:?}");
}

/// The kept-alive path (no `Connection` header: the client connection's own upstream connection, and no hop-by-hop
/// header to strip) sets the forwarding headers as the other path does: `X-Forwarded-For` made or appended (an IPv6
/// peer written as such), `-Proto` and `-Host` kept when the client sent them, `Host` replaced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_alive_requests_from_an_ipv6_peer_get_the_forwarding_headers() {
    let up = upstream(None).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("routes.toml"), format!("[server]\nproxy = \"http://{up}\"\n")).unwrap();
    let bin = Bin::command()
        .in_dir(dir)
        .args(["routes.toml", "--listen", "[::1]:0", "--no-watch", "--log-level", "warn"])
        .start();
    let client = reqwest::Client::new();
    let url = format!("http://{}/echo", bin.addr);
    let echo = |res: reqwest::Response| async move {
        assert_eq!(res.status(), 200);
        let echo: serde_json::Value = serde_json::from_str(&res.text().await.unwrap()).unwrap();
        echo["headers"].as_object().unwrap().clone()
    };
    let sent = echo(client.get(&url).send().await.unwrap()).await;
    assert_eq!(sent["x-forwarded-for"], "::1", "{sent:?}");
    assert_eq!(sent["x-forwarded-proto"], "http");
    assert_eq!(sent["x-forwarded-host"], bin.addr.to_string());
    assert_eq!(sent["host"], up.to_string());
    assert!(sent["via"].as_str().unwrap().starts_with("1.1 hotroute-"), "{sent:?}");
    // The same client connection again, with forwarding headers of an earlier proxy.
    let res = client
        .get(&url)
        .header("x-forwarded-for", "192.0.2.7, 10.20.30.40")
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "front.example")
        .header("x-kept", "yes")
        .send()
        .await
        .unwrap();
    let sent = echo(res).await;
    assert_eq!(sent["x-forwarded-for"], "192.0.2.7, 10.20.30.40, ::1");
    assert_eq!(sent["x-forwarded-proto"], "https");
    assert_eq!(sent["x-forwarded-host"], "front.example");
    assert_eq!(sent["x-kept"], "yes");
    assert!(!sent.contains_key("connection") && !sent.contains_key("keep-alive"), "{sent:?}");
    // And again without: the connection's own `X-Forwarded-For` (made once per connection) is the peer alone, not
    // what the request before sent.
    let sent = echo(client.get(&url).send().await.unwrap()).await;
    assert_eq!(sent["x-forwarded-for"], "::1", "{sent:?}");
}

/// An upstream's `Connection` header is about its own connection, so it is not passed on: an upstream that answers
/// `Connection: close` (and closes) leaves the client's kept-alive connection open for its next request, whose
/// answer carries no `Connection` header either. (The header alone, with no other hop-by-hop header, takes the
/// shortest way out of the answer.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstreams_connection_close_does_not_close_the_clients_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut head, mut buf) = (Vec::new(), [0u8; 1024]);
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let answer = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok";
                let _ = stream.write_all(answer).await;
            });
        }
    });
    let bin = Bin::start(&format!("[server]\nproxy = \"http://{up}\"\n"));
    let mut client = TcpStream::connect(bin.addr).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    for n in 1..=3 {
        client.write_all(b"GET /a HTTP/1.1\r\nHost: front.example\r\n\r\n").await.unwrap();
        let res = crate::support::http::read_response(&mut client, deadline).await;
        let res = res.unwrap_or_else(|| panic!("request {n}: the connection closed before an answer"));
        assert_eq!((res.status, res.text().as_str()), (200, "ok"), "request {n}");
        assert_eq!(res.header("connection"), None, "request {n}: {:?}", res.headers);
    }
}

/// A kept-alive client connection's requests share one timer for the proxy's `timeout` (moved only when it fires):
/// each request is still bounded by its own route's timeout, whether the timer was last set for a longer timeout, for
/// an earlier request's deadline that has passed, or not at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_request_on_a_kept_alive_connection_keeps_its_own_timeout() {
    let up = upstream(None).await;
    let bin = Bin::start(&format!(
        r#"
[[route]]
path = "/long/{{*rest}}"
proxy = {{ url = "http://{up}", timeout = "60s" }}

[[route]]
path = "/short/{{*rest}}"
proxy = {{ url = "http://{up}", timeout = "300ms" }}
"#
    ));
    // One client, one connection (its own upstream connection): the timer is set by the first request.
    let client = reqwest::Client::builder().pool_max_idle_per_host(1).build().unwrap();
    let get = |path: &str| client.get(bin.url(path)).send();
    assert_eq!(get("/long/fast").await.unwrap().status(), 200);
    // The timer waits for the 60 s deadline; this request's is 300 ms away (the upstream answers `/slow` after 5 s).
    let started = Instant::now();
    assert_eq!(get("/short/slow").await.unwrap().status(), 504);
    assert!(started.elapsed() < Duration::from_secs(4), "the 504 waited for the upstream");
    // Answered, then the timer fires for that request's deadline while the connection is idle; the next one still
    // gets its own 300 ms.
    assert_eq!(get("/short/fast").await.unwrap().status(), 200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    assert_eq!(get("/short/slow").await.unwrap().status(), 504);
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(250) && took < Duration::from_secs(4), "504 after {took:?}");
    assert_eq!(get("/long/fast").await.unwrap().status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_answers_502_504_508_and_a_stalled_body_ends() {
    let up = upstream(None).await;
    // A port nothing listens on: bound, then closed.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let own = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let routes = format!(
        r#"
[[route]]
path = "/down"
proxy = "http://{closed}"

[[route]]
path = "/slow/{{*rest}}"
proxy = {{ url = "http://{up}", timeout = "300ms" }}

[[route]]
path = "/slow"
proxy = {{ url = "http://{up}", timeout = "300ms" }}

[[route]]
path = "/loop"
proxy = "http://{own}"
"#
    );
    std::fs::write(dir.path().join("routes.toml"), routes).unwrap();
    let port = own.port().to_string();
    let bin = Bin::command().in_dir(dir).args(["routes.toml", "--port", &port, "--no-watch"]).start();

    let res = reqwest::get(bin.url("/down")).await.unwrap();
    assert_eq!(res.status(), 502);
    let text = res.text().await.unwrap();
    assert!(text.contains(&format!("cannot get an answer from the upstream http://{closed}")), "{text}");
    assert!(text.to_lowercase().contains("connection refused"), "{text}");

    let started = Instant::now();
    let res = reqwest::get(bin.url("/slow")).await.unwrap();
    assert_eq!(res.status(), 504);
    let text = res.text().await.unwrap();
    assert!(text.contains("did not answer within 300ms") && text.contains("timeout = \"60s\""), "{text}");
    assert!(started.elapsed() < Duration::from_secs(4), "the 504 waited for the upstream");

    // An upstream that stops mid-body: the same timeout ends the answer (the client sees the connection break).
    let mut res = reqwest::get(bin.url("/slow/stall")).await.unwrap();
    assert_eq!(res.status(), 200);
    let started = Instant::now();
    let mut result = Ok(Some(Bytes::new()));
    while let Ok(Some(_)) = &result {
        result =
            tokio::time::timeout(Duration::from_secs(10), res.chunk()).await.expect("the stalled body never ended");
    }
    assert!(result.is_err(), "the stalled body ended cleanly: {result:?} after {:?}", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(5));

    // The route sends the request to this same server: the second pass sees its own Via token.
    let res = reqwest::get(bin.url("/loop")).await.unwrap();
    assert_eq!(res.status(), 508);
    let text = res.text().await.unwrap();
    assert!(text.contains("loop detected"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_bodies_stream_both_ways_and_memory_stays_flat() {
    const SIZE: usize = 256 * 1024 * 1024;
    let up = upstream(None).await;
    let bin = Bin::start(&format!(
        "[[route]]\npath = \"/big\"\nproxy = \"http://{up}\"\n\n[[route]]\npath = \"/upload\"\nmethod = \"POST\"\n\
         proxy = \"http://{up}\"\n"
    ));
    // Warm up (the client pool, the allocator), then take the baseline.
    let _ = reqwest::get(bin.url("/big?n=1000000")).await.unwrap().bytes().await.unwrap();
    let before = bin.proc_status_kib("VmRSS");

    let mut res = reqwest::get(bin.url(&format!("/big?n={SIZE}"))).await.unwrap();
    assert_eq!(res.status(), 200);
    let mut got = 0usize;
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(60), res.chunk()).await.unwrap().unwrap() {
        got += chunk.len();
    }
    assert_eq!(got, SIZE);
    let after_download = bin.proc_status_kib("VmHWM");

    // Upload: chunked, written as fast as the proxy takes it.
    let s = TcpStream::connect(bin.addr).await.unwrap();
    let (mut rd, mut wr) = s.into_split();
    let writer = tokio::spawn(async move {
        wr.write_all(b"POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n").await.unwrap();
        let chunk = 256 * 1024;
        let mut frame = format!("{chunk:x}\r\n").into_bytes();
        frame.extend(std::iter::repeat_n(b'u', chunk));
        frame.extend_from_slice(b"\r\n");
        for _ in 0..SIZE / chunk {
            wr.write_all(&frame).await.unwrap();
        }
        wr.write_all(b"0\r\n\r\n").await.unwrap();
        wr
    });
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(120), rd.read(&mut byte)).await.unwrap().unwrap();
        assert_eq!(n, 1, "connection closed; head so far: {}", String::from_utf8_lossy(&head));
        head.push(byte[0]);
    }
    let _wr = writer.await.unwrap();
    let head = String::from_utf8_lossy(&head).to_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains(&format!("x-received: {SIZE}")), "{head}");
    let after_upload = bin.proc_status_kib("VmHWM");
    eprintln!(
        "RSS before {before} KiB; peak after the download {after_download} KiB, after the upload {after_upload} KiB"
    );
    // 256 MiB went each way; the process grew by a few buffers at most (the bound is generous for allocator noise).
    assert!(after_download < before + 48 * 1024, "RSS {before} KiB before, peak {after_download} KiB after download");
    assert!(after_upload < before + 48 * 1024, "RSS {before} KiB before, peak {after_upload} KiB after upload");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_upstreams_h2_with_a_private_ca_refused_without_it_and_insecure_warns() {
    let (ca_pem, config) = tls_upstream_config();
    let up = upstream(Some(config)).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), &ca_pem).unwrap();
    let routes = format!(
        r#"
[[route]]
path = "/trusted"
proxy = {{ url = "https://localhost:{port}", ca = "ca.pem" }}

[[route]]
path = "/untrusted"
proxy = "https://localhost:{port}"

[[route]]
path = "/insecure"
proxy = {{ url = "https://127.0.0.1:{port}", insecure = true }}
"#,
        port = up.port()
    );
    std::fs::write(dir.path().join("routes.toml"), routes).unwrap();
    let mut bin = Bin::command().in_dir(dir).args(["routes.toml", "--port", "0", "--no-watch"]).start();

    let (status, echo) = get_json(&bin.url("/trusted")).await;
    assert_eq!(status, 200);
    assert_eq!(echo["version"], "HTTP/2.0", "ALPN chose h2 with the upstream");
    assert_eq!(echo["target"], "/trusted");
    let res = reqwest::get(bin.url("/untrusted")).await.unwrap();
    assert_eq!(res.status(), 502);
    let text = res.text().await.unwrap();
    assert!(text.to_lowercase().contains("certificate"), "{text}");
    let (status, _) = get_json(&bin.url("/insecure")).await;
    assert_eq!(status, 200);
    let log = bin.stderr_until("the insecure warning", |t| t.contains("does not verify the upstream's certificate"));
    assert!(log.contains("insecure = true"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_delay_and_fault_apply_on_top_and_proxied_exchanges_are_marked() {
    let up = upstream(None).await;
    let dir = tempfile::tempdir().unwrap();
    let routes = format!(
        r#"
[server]
proxy = "http://{up}"
headers = {{ x-upstream = "server-wide loses", x-served-by = "hotroute" }}

[[route]]
path = "/created"
proxy = "http://{up}"
headers = {{ x-extra = "added", content-type = "text/x-overridden" }}
delay = "300ms"

[[route]]
path = "/broken"
proxy = "http://{up}"
fault = "reset"
"#
    );
    std::fs::write(dir.path().join("routes.toml"), routes).unwrap();
    let mut bin =
        Bin::command().in_dir(dir).args(["routes.toml", "--port", "0", "--no-watch", "--log-requests"]).start();

    let started = Instant::now();
    let res = reqwest::get(bin.url("/created")).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300), "the delay was not applied");
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["x-extra"], "added");
    assert_eq!(res.headers()["content-type"], "text/x-overridden");
    assert_eq!(res.headers()["x-served-by"], "hotroute");
    assert_eq!(res.text().await.unwrap(), "created upstream");
    // `[server] headers` fill in what the upstream did not send; they do not replace its headers.
    let res = reqwest::get(bin.url("/echo")).await.unwrap();
    assert_eq!(res.headers()["x-upstream"], "yes");
    assert!(reqwest::get(bin.url("/broken")).await.is_err(), "a reset fault sends no answer");

    let (_, journal) = get_json(&bin.url("/__admin/requests")).await;
    let requests = journal["requests"].as_array().unwrap();
    let created = requests.iter().find(|r| r["path"] == "/created").unwrap();
    assert_eq!(created["proxied"], format!("http://{up}"));
    assert_eq!(created["status"], 201, "the journal has the upstream's status");
    let echo = requests.iter().find(|r| r["path"] == "/echo").unwrap();
    assert_eq!(echo["proxied"], format!("http://{up}"));
    assert_eq!(echo["route"], serde_json::Value::Null);
    let metrics = reqwest::get(bin.url("/__admin/metrics")).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("hotroute_proxied_requests_total 2"), "{metrics}");
    assert!(metrics.contains("route=\"proxy\""), "{metrics}");
    let log = bin.stderr_until("access-log lines", |t| t.contains("/created") && t.contains("/echo"));
    let line = log.lines().find(|l| l.contains("GET /created ")).unwrap();
    assert!(line.contains(" 201 ") && line.ends_with(&format!("proxy=http://{up}")), "{line}");
    let line = log.lines().find(|l| l.contains("GET /echo ")).unwrap();
    assert!(line.contains(" proxy ") && line.ends_with(&format!("proxy=http://{up}")), "{line}");

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("routes.toml"), format!("[server]\nproxy = \"http://{up}\"\n")).unwrap();
    let mut traced = Bin::command().in_dir(dir).args(["routes.toml", "--port", "0", "--no-watch", "--trace"]).start();
    assert_eq!(reqwest::get(traced.url("/echo")).await.unwrap().status(), 200);
    let trace = traced.stderr_until("the trace of the proxied request", |t| t.contains("(proxied)"));
    assert!(trace.contains(&format!("the answer of the upstream http://{up} (proxied)")), "{trace}");
}

#[test]
fn bad_proxy_settings_are_load_errors() {
    for (toml, want) in [
        ("[[route]]\npath = \"/a\"\nproxy = \"ftp://x\"\n", "not http or https"),
        ("[[route]]\npath = \"/a\"\nproxy = \"http://x\"\nbody = \"b\"\n", "cannot have body"),
        ("[[route]]\npath = \"/a/{*r}\"\nproxy = { url = \"http://x\", path = \"/v2/{rest}\" }\n", "does not capture"),
        ("[[route]]\npath = \"/a\"\nproxy = { url = \"http://x\", timeout = \"soon\" }\n", "not a duration"),
        ("[[route]]\npath = \"/a\"\nproxy = { url = \"https://x\", ca = \"missing.pem\" }\n", "cannot read"),
        ("[server]\nproxy = { url = \"http://x\", path = \"/b\" }\n", "for routes"),
        ("[server]\nproxy = \"http://x\"\nnot_found = { status = 418 }\n", "would never answer"),
    ] {
        let err = crate::support::server::load_error(toml);
        assert!(err.contains(want), "{toml}\nwanted {want:?} in:\n{err}");
    }
}

/// An upstream that answers each request with the port its connection came from (`x-from-port`) and counts its open
/// connections; with `close`, it closes every connection after one answer. `/big`: 16 MiB of `x`.
async fn port_upstream(close: bool) -> (SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let open = Arc::new(AtomicUsize::new(0));
    let counted = open.clone();
    tokio::spawn(async move {
        while let Ok((stream, peer)) = listener.accept().await {
            let open = counted.clone();
            open.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<Incoming>| async move {
                    let body: UpBody = if req.uri().path() == "/big" {
                        BodyExt::boxed(Big { left: 16 << 20, chunk: Bytes::from(vec![b'x'; 64 * 1024]) })
                    } else {
                        Full::new(Bytes::from_static(b"ok")).map_err(|never| match never {}).boxed()
                    };
                    let mut res = Response::new(body);
                    res.headers_mut().insert("x-from-port", peer.port().into());
                    Ok::<_, Infallible>(res)
                });
                let mut builder = hyper::server::conn::http1::Builder::new();
                builder.keep_alive(!close);
                let _ = builder.serve_connection(TokioIo::new(stream), service).await;
                open.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    (addr, open)
}

/// A kept-alive HTTP/1.1 client connection to hotroute, sending GETs one after the other.
async fn client_connection(addr: SocketAddr) -> hyper::client::conn::http1::SendRequest<http_body_util::Empty<Bytes>> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    sender
}

/// The upstream port that answered a GET of `path` on `client`'s connection.
async fn from_port(client: &mut hyper::client::conn::http1::SendRequest<http_body_util::Empty<Bytes>>) -> String {
    client.ready().await.unwrap();
    let req = Request::get("/who").header("host", "hotroute").body(http_body_util::Empty::new()).unwrap();
    let res = tokio::time::timeout(Duration::from_secs(20), client.send_request(req)).await.unwrap().unwrap();
    assert_eq!(res.status(), 200);
    let port = res.headers().get("x-from-port").map(|v| v.to_str().unwrap().to_owned());
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"ok");
    port.unwrap_or_else(|| panic!("no x-from-port: not the upstream's answer"))
}

/// Issue 14's throughput: a kept-alive client connection has its own upstream connection, driven in its own task
/// (no hand-off to a pooled connection's task). Requests of two clients taking turns stay each on its own upstream
/// connection (a pool would reuse the one idle connection for both), the upstream connection closes with its client
/// connection (a pool would keep it idle for a minute), and an upstream that closes after each answer costs nothing
/// but a new connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_kept_alive_client_connection_has_its_own_upstream_connection_closed_with_it() {
    use std::sync::atomic::Ordering;
    let (up, open) = port_upstream(false).await;
    let bin = Bin::start(&format!("[server]\nproxy = \"http://{up}\"\n"));
    let (mut a, mut b) = (client_connection(bin.addr).await, client_connection(bin.addr).await);
    let (mut from_a, mut from_b) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        from_a.push(from_port(&mut a).await);
        from_b.push(from_port(&mut b).await);
    }
    assert!(from_a.iter().all(|p| *p == from_a[0]), "client a's requests went on several connections: {from_a:?}");
    assert!(from_b.iter().all(|p| *p == from_b[0]), "client b's requests went on several connections: {from_b:?}");
    assert_ne!(from_a[0], from_b[0], "two clients shared one upstream connection");
    assert_eq!(open.load(Ordering::SeqCst), 2);

    // Client a goes away: so does its upstream connection; b's stays and still answers.
    drop(a);
    let deadline = Instant::now() + Duration::from_secs(10);
    while open.load(Ordering::SeqCst) != 1 {
        assert!(
            Instant::now() < deadline,
            "{} upstream connections open after a client left",
            open.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(from_port(&mut b).await, from_b[0]);

    // An upstream that closes after every answer: each request gets a new connection, and no request fails.
    let (up, _) = port_upstream(true).await;
    let bin = Bin::start(&format!("[server]\nproxy = \"http://{up}\"\n"));
    let mut c = client_connection(bin.addr).await;
    let mut ports = Vec::new();
    for _ in 0..5 {
        ports.push(from_port(&mut c).await);
    }
    ports.sort();
    ports.dedup();
    assert_eq!(ports.len(), 5, "{ports:?}");
}

/// A pipelining client: its second request is read while the first answer is still streaming from the client's own
/// upstream connection, which is then busy. The second request takes the pool, and the first answer arrives whole
/// (replacing the busy connection with a new one would cut it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipelined_request_does_not_cut_the_answer_still_streaming_before_it() {
    let (up, _) = port_upstream(false).await;
    let bin = Bin::start(&format!("[server]\nproxy = \"http://{up}\"\n"));
    let mut s = TcpStream::connect(bin.addr).await.unwrap();
    s.write_all(b"GET /big HTTP/1.1\r\nHost: t\r\n\r\nGET /who HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    // Read nothing for a while: the first answer fills the socket buffers and stays in progress upstream.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut out)).await.unwrap().unwrap();
    let text = String::from_utf8_lossy(&out);
    let (head, rest) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.to_lowercase().contains(&format!("content-length: {}", 16 << 20)), "{head}");
    let big = rest.bytes().take_while(|b| *b == b'x').count();
    assert_eq!(big, 16 << 20, "the first answer was cut");
    let second = &rest[big..];
    assert!(second.starts_with("HTTP/1.1 200") && second.ends_with("ok"), "{}", &second[..second.len().min(300)]);
}
