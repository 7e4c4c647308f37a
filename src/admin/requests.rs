//! `GET /__admin/requests`: a page of the journal, written out as the client reads it.
//!
//! The page is copied under the journal's lock as reference counts (a few microseconds for 1000 requests), so that
//! `Journal::record`, on every request's path, never waits for an admin read. The JSON is then made a chunk at a
//! time as the client reads: a reader that reads nothing holds one chunk and its page, not a copy of the journal.
//! The read holds one of the [`super::access::MAX_ADMIN_READS`] places until the answer is sent or dropped.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Method, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Frame;
use serde_json::json;
use tokio::sync::OwnedSemaphorePermit;

use crate::observe::journal::RecordedRequest;
use crate::reload::Live;
use crate::request::query_pairs;
use crate::route::respond::{self, Body};

/// How many requests a page holds unless `?limit=` says otherwise.
pub const DEFAULT_LIMIT: usize = 100;

/// The most requests a page holds, whatever `?limit=` says.
pub const MAX_LIMIT: usize = 1000;

/// About how many bytes of JSON are made at a time.
const CHUNK: usize = 64 * 1024;

/// The journal; `?after=ID` keeps the requests after that id, `?limit=N` the newest N of them (default
/// [`DEFAULT_LIMIT`], at most [`MAX_LIMIT`]), `?bodies=true` adds their bodies.
pub(super) fn get(live: &Live, query: Option<&str>, permit: OwnedSemaphorePermit) -> Response<Body> {
    let (mut after, mut limit, mut bodies, mut isolate) = (0, DEFAULT_LIMIT, false, None);
    for (name, value) in query.map(query_pairs).into_iter().flatten() {
        let parsed = match name.as_str() {
            "after" => value.parse().map(|v| after = v).is_ok(),
            "limit" => value.parse().map(|v: usize| limit = v.min(MAX_LIMIT)).is_ok(),
            "isolate" => {
                isolate = Some(value.clone());
                true
            }
            "bodies" => match value.as_str() {
                "true" | "1" => {
                    bodies = true;
                    true
                }
                "false" | "0" => {
                    bodies = false;
                    true
                }
                _ => false,
            },
            _ => true,
        };
        if !parsed {
            let text = format!(
                "400 bad query parameter {name}={value:?}: a whole number is expected for after and limit, true or \
                 false for bodies, e.g. /__admin/requests?after=41&limit=100&bodies=true\n"
            );
            return respond::text(StatusCode::BAD_REQUEST, text, &Method::GET);
        }
    }
    let page = live.journal().page_of(after, limit, isolate.as_deref());
    let head = json!({
        "capacity": live.router().server().journal,
        "dropped": page.dropped,
        "last_id": page.last_id,
        "omitted": page.omitted,
        "limit": limit,
    });
    // `{"capacity":..,"limit":..}` opened up to take the list: the object's keys, then `"requests":[`.
    let mut head = head.to_string();
    head.pop();
    head.push_str(",\"requests\":[");
    let body = JournalBody {
        head: Some(head),
        requests: page.requests.into_iter(),
        first: true,
        bodies,
        base: super::base_dir(live),
        done: false,
        _permit: permit,
    };
    let mut res = Response::new(Body::stream(body.boxed()));
    res.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// `GET /__admin/requests` with a shared state store: the newest `?limit=N` requests (default [`DEFAULT_LIMIT`], at
/// most [`MAX_LIMIT`]) of every replica, oldest first, from the shared journal. Each request keeps the id its
/// replica gave it; `?after=` is not supported here (ids are per replica) and is refused with a 400 that says so.
/// `?isolate=ID` keeps that partition's requests among them.
pub(super) async fn get_shared(live: &Live, query: Option<&str>, _permit: OwnedSemaphorePermit) -> Response<Body> {
    let Some(store) = live.state() else { return get(live, query, _permit) };
    let (mut limit, mut bodies, mut isolate) = (DEFAULT_LIMIT, false, None);
    for (name, value) in query.map(query_pairs).into_iter().flatten() {
        let parsed = match name.as_str() {
            "limit" => value.parse().map(|v: usize| limit = v.min(MAX_LIMIT)).is_ok(),
            "isolate" => {
                isolate = Some(value.clone());
                true
            }
            "bodies" => match value.as_str() {
                "true" | "1" => {
                    bodies = true;
                    true
                }
                "false" | "0" => true,
                _ => false,
            },
            "after" => {
                let text = "400 ?after= is not supported with a shared state store: request ids are per replica\n\
                            use ?limit=N for the newest N requests of every replica\n";
                return respond::text(StatusCode::BAD_REQUEST, text.to_owned(), &Method::GET);
            }
            _ => true,
        };
        if !parsed {
            let text = format!(
                "400 bad query parameter {name}={value:?}: a whole number is expected for limit, true or false for \
                 bodies, e.g. /__admin/requests?limit=100&bodies=true\n"
            );
            return respond::text(StatusCode::BAD_REQUEST, text, &Method::GET);
        }
    }
    // The newest `limit` requests, and no more than the journal keeps (the stream holds whole batches, so a few
    // more).
    let capacity = live.router().server().journal;
    let want = if capacity == 0 { limit } else { limit.min(capacity) };
    let mut requests = match store.journal_batches(want).await {
        Ok(batches) => crate::observe::journal::shared_requests(&batches, want),
        Err(e) => {
            let text = format!("503 {e}\nthe shared journal cannot be read; try again once the store is back\n");
            return respond::text(StatusCode::SERVICE_UNAVAILABLE, text, &Method::GET);
        }
    };
    if let Some(id) = &isolate {
        // Of the newest `limit` of every partition, that partition's (the stream is not kept per partition).
        requests.retain(|r| r["isolate"].as_str() == Some(id.as_str()));
    }
    if !bodies {
        for r in &mut requests {
            if let Some(r) = r.as_object_mut() {
                r.remove("body");
                r.remove("body_base64");
            }
        }
    }
    let page = json!({
        "capacity": live.router().server().journal,
        "shared": true,
        "dropped": store.journal_dropped(),
        "limit": limit,
        "requests": requests,
    });
    let mut res = respond::json(StatusCode::OK, &page);
    res.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// The page as JSON, made a chunk at a time when hyper asks for the next one (after the last was sent).
struct JournalBody {
    head: Option<String>,
    requests: std::vec::IntoIter<RecordedRequest>,
    first: bool,
    bodies: bool,
    base: String,
    done: bool,
    _permit: OwnedSemaphorePermit,
}

impl hyper::body::Body for JournalBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        let mut chunk = this.head.take().map(String::into_bytes).unwrap_or_default();
        while chunk.len() < CHUNK {
            // Each request is dropped once written: the page's memory goes as the client reads.
            let Some(r) = this.requests.next() else {
                chunk.extend_from_slice(b"]}\n");
                this.done = true;
                break;
            };
            if !std::mem::take(&mut this.first) {
                chunk.push(b',');
            }
            serde_json::to_writer(&mut chunk, &r.to_json_with(this.bodies, &this.base))
                .map_err(std::io::Error::other)?;
        }
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(chunk)))))
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }
}
