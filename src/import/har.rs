//! `hotroute import har`: a HAR file (what browsers' devtools save: "Save all as HAR") to a route file, through the
//! record writer ([`super::record`]): the same dedupe, body kinds, body files and redaction as `hotroute record`.

use std::path::Path;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use serde::Deserialize;

use super::record::{Exchange, Recorder, Redaction, strip_hop_by_hop};
use super::{ImportError, Imported, MAX_DOCUMENT, Note};

#[derive(Deserialize)]
struct Har {
    log: Log,
}

#[derive(Deserialize)]
struct Log {
    #[serde(default)]
    entries: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    request: HarRequest,
    response: HarResponse,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HarRequest {
    method: String,
    url: String,
    #[serde(default)]
    post_data: Option<PostData>,
}

#[derive(Deserialize)]
struct PostData {
    #[serde(default)]
    text: Option<String>,
}

#[derive(Deserialize)]
struct HarResponse {
    status: i64,
    #[serde(default)]
    headers: Vec<NameValue>,
    #[serde(default)]
    content: Option<Content>,
}

#[derive(Deserialize)]
struct NameValue {
    name: String,
    value: String,
}

#[derive(Deserialize)]
struct Content {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    encoding: Option<String>,
}

/// Converts the HAR file at `har` into a route file whose body files go to `<out_dir>/<stem>.bodies/`. The route
/// file's text is returned (not written); entries that cannot be converted become notes.
pub fn har_file(har: &Path, out_dir: &Path, stem: &str, redaction: Redaction) -> Result<Imported, ImportError> {
    let name = har.display().to_string();
    let bytes = super::record::read_bounded(har, MAX_DOCUMENT)
        .map_err(|reason| ImportError::Open { file: name.clone(), reason })?;
    // A byte-order mark is no JSON: "expected value at line 1 column 1" otherwise.
    let json = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&bytes);
    let doc: Har = serde_json::from_slice(json).map_err(|e| ImportError::NotOpenApi {
        name: name.clone(),
        reason: format!(
            "not a HAR file: {e}\nhelp: a HAR file is JSON with `log.entries`, as the browser's network panel saves it \
             (\"Save all as HAR\")"
        ),
    })?;
    let mut recorder = Recorder::in_folder(out_dir, stem, redaction);
    let mut notes = Vec::new();
    for (i, entry) in doc.log.entries.iter().enumerate() {
        let location = format!("{name}#/log/entries/{i}");
        match exchange(entry) {
            Ok(ex) => match recorder.push(&ex) {
                Ok(true) => {}
                Ok(false) => {}
                Err(e) => notes.push(Note { location, message: e.to_string() }),
            },
            Err(message) => notes.push(Note { location, message }),
        }
    }
    Ok(Imported { routes: recorder.render(), route_count: recorder.len(), notes })
}

fn exchange(entry: &Entry) -> Result<Exchange, String> {
    let req = &entry.request;
    let method = Method::from_bytes(req.method.as_bytes()).map_err(|_| format!("`{}` is not a method", req.method))?;
    let uri: http::Uri = req.url.parse().map_err(|e| format!("`{}` is not a URL: {e}", req.url))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err(format!("`{}` is not an http(s) URL; left out", req.url));
    }
    let status =
        u16::try_from(entry.response.status).ok().and_then(|s| StatusCode::from_u16(s).ok()).ok_or_else(|| {
            format!("status {} is not an HTTP status (an aborted request?); left out", entry.response.status)
        })?;
    let mut headers = HeaderMap::new();
    for h in &entry.response.headers {
        // HTTP/2 pseudo-headers (`:status`) are not headers; the body is saved decoded, so its encoding goes too.
        let lower = h.name.to_ascii_lowercase();
        if lower.starts_with(':') || lower == "content-encoding" {
            continue;
        }
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(lower.as_bytes()), HeaderValue::from_str(&h.value)) {
            headers.append(n, v);
        }
    }
    strip_hop_by_hop(&mut headers);
    let body = match entry.response.content.as_ref().and_then(|c| c.text.as_ref().map(|t| (t, c.encoding.as_deref()))) {
        None => Bytes::new(),
        Some((text, Some("base64"))) => {
            Bytes::from(decode_base64(text).ok_or("the response body is marked base64 but is not base64; left out")?)
        }
        Some((text, _)) => Bytes::from(text.clone()),
    };
    let request_body = req.post_data.as_ref().and_then(|p| p.text.clone()).map(Bytes::from).unwrap_or_default();
    Ok(Exchange {
        method,
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        request_body,
        status,
        headers,
        body,
    })
}

/// Standard base64 (padding optional, whitespace ignored), as HAR files hold binary bodies.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => break,
            c if c.is_ascii_whitespace() => continue,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}
