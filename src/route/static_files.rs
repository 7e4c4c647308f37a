//! Static folders: `dir = "public"` serves the files under a folder, with ETag, Last-Modified, 304 and Range.
//!
//! The folder is checked when the routes load (it must exist and lie under the route file's folder) and kept as its
//! canonical path. A request's path is decoded and checked segment by segment: an encoded slash or backslash, a
//! `.`/`..` segment, a hidden file, an absolute path, a NUL all answer 404 before the disk is touched. What remains is
//! joined to the folder, canonicalized (which resolves every symlink) and served only if the result still lies under
//! the folder, so a symlink that leads out answers 404 too. The canonical path is what gets opened.
//!
//! File bodies are streamed in chunks of at most [`CHUNK`] bytes, read as the client takes them, so a download holds
//! one chunk in memory whatever the file's size; a Range request reads only its range. Nothing is allocated from
//! the file's metadata (which a file growing or shrinking meanwhile makes wrong): a file that ends early ends the
//! response with an error, which closes the connection rather than send a short body.

use std::io::SeekFrom;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use bytes::Bytes;
use http::header::{
    ACCEPT_RANGES, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE,
    LAST_MODIFIED, LOCATION, RANGE,
};
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use std::pin::Pin;
use std::task::{Context, Poll};

use http_body_util::combinators::BoxBody;
use hyper::body::{Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncSeekExt, ReadBuf};

use crate::request::RequestView;
use crate::route::respond::{self, Body};

/// A folder served by a `dir` route.
#[derive(Debug)]
pub struct StaticDir {
    root: PathBuf,
    /// The route, as `file:line`, for 404 messages.
    route: String,
    /// The file that answers a path with no file of its own (a single-page app's `index.html`), canonical.
    fallback: Option<PathBuf>,
}

impl StaticDir {
    /// Serves the folder at `root`, which must be canonical (see [`std::fs::canonicalize`]).
    pub fn new(root: PathBuf, route: String) -> Self {
        StaticDir { root, route, fallback: None }
    }

    /// Answers paths with no file of their own with `file` (canonical, inside the folder) instead of a 404.
    pub fn with_fallback(mut self, file: Option<PathBuf>) -> Self {
        self.fallback = file;
        self
    }
}

/// One request for a file under a [`StaticDir`], owning what it needs so that it can be awaited without the router.
#[derive(Debug)]
pub struct DirRequest {
    dir: Arc<StaticDir>,
    rest: String,
    method: Method,
    target: String,
    path: String,
    query: Option<String>,
    if_none_match: Option<HeaderValue>,
    if_modified_since: Option<HeaderValue>,
    range: Option<HeaderValue>,
    if_range: Option<HeaderValue>,
    /// The request named the route's folder without its slash (`/docs` for `/docs/{*rest}`): it is redirected.
    bare: bool,
}

impl DirRequest {
    /// A request for `rest` (the route's `{*rest}` capture, still percent-encoded) under `dir`.
    pub fn new(dir: Arc<StaticDir>, rest: &str, req: &RequestView<'_>) -> Self {
        let h = req.headers;
        DirRequest {
            dir,
            rest: rest.to_owned(),
            method: req.method.clone(),
            target: format!("{} {}", req.method, req.uri.path()),
            path: req.uri.path().to_owned(),
            query: req.uri.query().map(str::to_owned),
            if_none_match: h.get(IF_NONE_MATCH).cloned(),
            if_modified_since: h.get(IF_MODIFIED_SINCE).cloned(),
            range: h.get(RANGE).cloned(),
            if_range: h.get(IF_RANGE).cloned(),
            bare: false,
        }
    }

    /// Marks a request for the route's folder named without its slash (`/docs` for `/docs/{*rest}`), which is
    /// redirected to the folder (`/docs/`) like any folder below it.
    pub fn bare(mut self, bare: bool) -> Self {
        self.bare = bare;
        self
    }

    /// Answers with the file, keeping the status and headers of `head` (the route's own, CORS) where they apply.
    pub async fn serve(self, head: Response<Body>) -> Response<Body> {
        let (parts, _) = head.into_parts();
        let mut headers = parts.headers;
        headers.remove(CONTENT_LENGTH);
        match self.find().await {
            Found::File(path) => self.file(&path, parts.status, headers).await,
            Found::Folder => {
                let location = match &self.query {
                    Some(q) => format!("{}/?{q}", self.path),
                    None => format!("{}/", self.path),
                };
                headers.remove(CONTENT_TYPE);
                let mut res = respond::with_body(StatusCode::MOVED_PERMANENTLY, headers, Bytes::new(), &self.method);
                if let Ok(v) = HeaderValue::from_str(&location) {
                    res.headers_mut().insert(LOCATION, v);
                }
                res
            }
            Found::Nothing => self.not_found(headers),
        }
    }

    fn not_found(&self, mut headers: HeaderMap) -> Response<Body> {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
        let text = format!(
            "404 not found: {}\nno such file in the folder served by the route at {}\n",
            self.target, self.dir.route
        );
        respond::with_body(StatusCode::NOT_FOUND, headers, Bytes::from(text), &self.method)
    }

    /// The file for the request, or the folder's fallback when it has none (never for a refused path).
    async fn find(&self) -> Found {
        match self.find_own().await {
            Found::Nothing if safe_relative(&self.rest).is_some() => match &self.dir.fallback {
                // Checked again: it may have been removed since the load.
                Some(file) => match self.inside(file).await {
                    Some(file) if tokio::fs::metadata(&file).await.is_ok_and(|m| m.is_file()) => Found::File(file),
                    _ => Found::Nothing,
                },
                None => Found::Nothing,
            },
            found => found,
        }
    }

    async fn find_own(&self) -> Found {
        let Some(relative) = safe_relative(&self.rest) else {
            tracing::debug!(request = %self.target, "dir: refused path `{}`", self.rest);
            return Found::Nothing;
        };
        let Some(target) = self.inside(&self.dir.root.join(&relative)).await else { return Found::Nothing };
        match tokio::fs::metadata(&target).await {
            Ok(m) if m.is_file() => Found::File(target),
            Ok(m) if m.is_dir() => {
                // A folder named without its slash, the route's own (`/docs` for `/docs/{*rest}`) too: relative links
                // in its `index.html` resolve against the folder only with the slash.
                if self.bare || (!self.rest.is_empty() && !self.rest.ends_with('/')) {
                    return Found::Folder;
                }
                match self.inside(&target.join("index.html")).await {
                    Some(index) if tokio::fs::metadata(&index).await.is_ok_and(|m| m.is_file()) => Found::File(index),
                    _ => Found::Nothing,
                }
            }
            _ => Found::Nothing,
        }
    }

    /// `path` with every symlink resolved, if it exists and lies under the folder.
    async fn inside(&self, path: &Path) -> Option<PathBuf> {
        let real = tokio::fs::canonicalize(path).await.ok()?;
        if real.starts_with(&self.dir.root) {
            Some(real)
        } else {
            tracing::debug!(request = %self.target, "dir: `{}` leads out of the folder", path.display());
            None
        }
    }

    async fn file(&self, path: &Path, status: StatusCode, mut headers: HeaderMap) -> Response<Body> {
        let mut file = match tokio::fs::File::open(path).await {
            Ok(f) => f,
            Err(_) => return self.not_found(headers),
        };
        let meta = match file.metadata().await {
            Ok(m) if m.is_file() => m,
            _ => return self.not_found(headers),
        };
        let len = meta.len();
        let modified = meta.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok());
        let etag = modified.map(|m| format!("\"{:x}.{:x}-{len:x}\"", m.as_secs(), m.subsec_nanos()));
        let last_modified =
            modified.map(|m| httpdate::fmt_http_date(UNIX_EPOCH + std::time::Duration::from_secs(m.as_secs())));
        if !headers.contains_key(CONTENT_TYPE)
            && let Ok(v) = HeaderValue::from_str(&content_type(path))
        {
            headers.insert(CONTENT_TYPE, v);
        }
        if let Some(v) = etag.as_deref().and_then(|e| HeaderValue::from_str(e).ok()) {
            headers.insert(ETAG, v);
        }
        if let Some(v) = last_modified.as_deref().and_then(|l| HeaderValue::from_str(l).ok()) {
            headers.insert(LAST_MODIFIED, v);
        }
        headers.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));

        if self.not_modified(etag.as_deref(), modified.map(|m| m.as_secs())) {
            headers.remove(CONTENT_TYPE);
            return respond::with_body(StatusCode::NOT_MODIFIED, headers, Bytes::new(), &Method::HEAD);
        }

        let range = match &self.range {
            Some(r) if self.range_applies(etag.as_deref(), last_modified.as_deref()) => parse_range(r, len),
            _ => RangeAsked::Whole,
        };
        let (status, start, count) = match range {
            RangeAsked::Whole => (status, 0, len),
            RangeAsked::Part(start, end) => {
                let v = format!("bytes {start}-{end}/{len}");
                headers.insert(CONTENT_RANGE, HeaderValue::from_str(&v).unwrap_or(HeaderValue::from_static("")));
                (StatusCode::PARTIAL_CONTENT, start, end - start + 1)
            }
            RangeAsked::Unsatisfiable => {
                let v = format!("bytes */{len}");
                headers.insert(CONTENT_RANGE, HeaderValue::from_str(&v).unwrap_or(HeaderValue::from_static("")));
                headers.remove(CONTENT_TYPE);
                return respond::with_body(StatusCode::RANGE_NOT_SATISFIABLE, headers, Bytes::new(), &self.method);
            }
        };
        if self.method == Method::HEAD {
            headers.insert(CONTENT_LENGTH, HeaderValue::from(count));
            let mut res = Response::new(Body::default());
            *res.status_mut() = status;
            *res.headers_mut() = headers;
            return res;
        }
        if start > 0
            && let Err(e) = file.seek(SeekFrom::Start(start)).await
        {
            tracing::warn!(request = %self.target, "dir: cannot read `{}`: {e}", path.display());
            let text = format!("500 cannot read the file for {}: {e}\n", self.target);
            return crate::route::respond::text(StatusCode::INTERNAL_SERVER_ERROR, text, &self.method);
        }
        headers.insert(CONTENT_LENGTH, HeaderValue::from(count));
        let body = FileBody { file, left: count, target: self.target.clone() };
        let mut res = Response::new(Body::stream(BoxBody::new(body)));
        *res.status_mut() = status;
        *res.headers_mut() = headers;
        res
    }

    /// Whether the client's copy is current: `If-None-Match` when sent, else `If-Modified-Since`.
    fn not_modified(&self, etag: Option<&str>, modified: Option<u64>) -> bool {
        if let Some(inm) = self.if_none_match.as_ref().and_then(|v| v.to_str().ok()) {
            return etag.is_some_and(|e| etag_listed(inm, e));
        }
        let since = self
            .if_modified_since
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok());
        match (since, modified) {
            (Some(since), Some(m)) => since.duration_since(UNIX_EPOCH).is_ok_and(|s| m <= s.as_secs()),
            _ => false,
        }
    }

    /// `If-Range`: a Range applies only when the validator sent is the current one.
    fn range_applies(&self, etag: Option<&str>, last_modified: Option<&str>) -> bool {
        match self.if_range.as_ref().and_then(|v| v.to_str().ok()) {
            None => true,
            Some(v) if v.starts_with('"') => etag == Some(v),
            Some(v) => last_modified == Some(v),
        }
    }
}

/// The largest chunk of a file read and sent at once.
pub const CHUNK: usize = 32 * 1024;

/// The rest of a file's body: `left` bytes from where `file` stands, read a chunk at a time as the client reads.
struct FileBody {
    file: tokio::fs::File,
    left: u64,
    /// The request, for the log line of a failed read.
    target: String,
}

impl hyper::body::Body for FileBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if this.left == 0 {
            return Poll::Ready(None);
        }
        let want = usize::try_from(this.left).map_or(CHUNK, |left| left.min(CHUNK));
        let mut chunk = vec![0u8; want];
        let mut buf = ReadBuf::new(&mut chunk);
        match Pin::new(&mut this.file).poll_read(cx, &mut buf) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => {
                tracing::warn!(request = %this.target, "dir: cannot read the file: {e}");
                this.left = 0;
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(Ok(())) => {
                let n = buf.filled().len();
                if n == 0 {
                    // The file got shorter since its length was sent: end the response as broken.
                    tracing::warn!(request = %this.target, "dir: the file ended {} bytes early", this.left);
                    this.left = 0;
                    return Poll::Ready(Some(Err(std::io::ErrorKind::UnexpectedEof.into())));
                }
                this.left -= n as u64;
                chunk.truncate(n);
                Poll::Ready(Some(Ok(Frame::data(Bytes::from(chunk)))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.left)
    }
}

enum Found {
    File(PathBuf),
    Folder,
    Nothing,
}

#[derive(Debug, PartialEq, Eq)]
enum RangeAsked {
    Whole,
    Part(u64, u64),
    Unsatisfiable,
}

/// Parses a `Range` header for a file of `len` bytes. One range is served; several, or a syntax error, get the
/// whole file (which RFC 9110 allows).
fn parse_range(value: &HeaderValue, len: u64) -> RangeAsked {
    let Some(spec) = value.to_str().ok().and_then(|v| v.trim().strip_prefix("bytes=")) else {
        return RangeAsked::Whole;
    };
    if spec.contains(',') {
        return RangeAsked::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else { return RangeAsked::Whole };
    let (a, b) = (a.trim(), b.trim());
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(start), Ok(end)) if start <= end => {
            if start >= len {
                RangeAsked::Unsatisfiable
            } else {
                RangeAsked::Part(start, end.min(len - 1))
            }
        }
        (Ok(start), Err(_)) if b.is_empty() => {
            if start >= len {
                RangeAsked::Unsatisfiable
            } else {
                RangeAsked::Part(start, len - 1)
            }
        }
        (Err(_), Ok(suffix)) if a.is_empty() => {
            if suffix == 0 || len == 0 {
                RangeAsked::Unsatisfiable
            } else {
                RangeAsked::Part(len.saturating_sub(suffix), len - 1)
            }
        }
        _ => RangeAsked::Whole,
    }
}

/// Whether `etag` is in an `If-None-Match` list (weak comparison, as RFC 9110 asks for it).
fn etag_listed(list: &str, etag: &str) -> bool {
    let bare = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    list.trim() == "*" || list.split(',').any(|t| bare(t) == bare(etag))
}

/// The part of the folder a request names, or none when the request is refused. `raw` is still percent-encoded.
pub fn safe_relative(raw: &str) -> Option<PathBuf> {
    let lower = raw.to_ascii_lowercase();
    // An encoded separator would turn one segment into several after decoding: refuse it outright.
    if lower.contains("%2f") || lower.contains("%5c") || lower.contains("%00") {
        return None;
    }
    let decoded = percent_encoding::percent_decode_str(raw).decode_utf8().ok()?;
    if decoded.starts_with('/') || decoded.contains('\\') || decoded.contains('\0') {
        return None;
    }
    let mut path = PathBuf::new();
    for segment in decoded.split('/').filter(|s| !s.is_empty()) {
        // `.`, `..` and hidden files (`.env`, `.git`) are never served.
        if segment.starts_with('.') {
            return None;
        }
        let mut parts = Path::new(segment).components();
        if !matches!((parts.next(), parts.next()), (Some(Component::Normal(_)), None)) {
            return None;
        }
        path.push(segment);
    }
    Some(path)
}

/// The content-type of a file from its extension; text gets `charset=utf-8`.
pub fn content_type(path: &Path) -> String {
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    if mime.type_() == mime_guess::mime::TEXT && mime.get_param("charset").is_none() {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_paths() {
        for bad in ["..", "../x", "a/../b", "%2e%2e/x", "%2E%2E", "a%2fb", "a%2Fb", "/etc/passwd", ".env", "a/.git/x"] {
            assert_eq!(safe_relative(bad), None, "{bad}");
        }
        for bad in ["a%5cb", "a\\b", "a%00b", "%ff"] {
            assert_eq!(safe_relative(bad), None, "{bad}");
        }
        assert_eq!(safe_relative("a/b.txt"), Some(PathBuf::from("a/b.txt")));
        assert_eq!(safe_relative("a%20b/"), Some(PathBuf::from("a b")));
        assert_eq!(safe_relative(""), Some(PathBuf::new()));
    }

    #[test]
    fn ranges() {
        let r = |s: &str, len| parse_range(&HeaderValue::from_str(s).unwrap(), len);
        assert_eq!(r("bytes=0-3", 10), RangeAsked::Part(0, 3));
        assert_eq!(r("bytes=5-", 10), RangeAsked::Part(5, 9));
        assert_eq!(r("bytes=-4", 10), RangeAsked::Part(6, 9));
        assert_eq!(r("bytes=-40", 10), RangeAsked::Part(0, 9));
        assert_eq!(r("bytes=8-100", 10), RangeAsked::Part(8, 9));
        assert_eq!(r("bytes=10-", 10), RangeAsked::Unsatisfiable);
        assert_eq!(r("bytes=0-1,3-4", 10), RangeAsked::Whole);
        assert_eq!(r("items=0-1", 10), RangeAsked::Whole);
        assert_eq!(r("bytes=4-2", 10), RangeAsked::Whole);
    }

    #[test]
    fn etags() {
        assert!(etag_listed("\"a\", W/\"b\"", "\"b\""));
        assert!(etag_listed("*", "\"x\""));
        assert!(!etag_listed("\"a\"", "\"b\""));
    }
}
