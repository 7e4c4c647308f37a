//! The request as routes, templates and observers see it: a leaf that every layer may import.
//!
//! [`RequestView`] borrows the head and the body that the server read; [`RequestData`] adds what is parsed from it on
//! first use (the query, the JSON body), so that however many routes look at a request, it is parsed at most once.

use std::cell::OnceCell;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderMap, Method, Uri};

/// A request as the routes see it: the head, the whole body (already read, within the body limit) and the peer.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    /// Request method.
    pub method: &'a Method,
    /// Request target.
    pub uri: &'a Uri,
    /// Request headers.
    pub headers: &'a HeaderMap,
    /// The request body.
    pub body: &'a Bytes,
    /// The client's address.
    pub peer: SocketAddr,
}

/// A request as matching and templates see it: the view, and what is parsed from it on first use.
#[derive(Debug)]
pub struct RequestData<'a> {
    /// The request.
    pub view: &'a RequestView<'a>,
    query: OnceCell<Vec<(String, String)>>,
    json: OnceCell<Option<serde_json::Value>>,
}

impl<'a> RequestData<'a> {
    /// Wraps a request; nothing is parsed yet.
    pub fn new(view: &'a RequestView<'a>) -> Self {
        RequestData { view, query: OnceCell::new(), json: OnceCell::new() }
    }

    /// The query parameters, decoded (`+` is a space), in order; a name may repeat.
    pub fn query(&self) -> &[(String, String)] {
        self.query.get_or_init(|| self.view.uri.query().map(|q| query_pairs(q).collect()).unwrap_or_default())
    }

    /// The body parsed as JSON, or none when it is empty or not JSON.
    pub fn json(&self) -> Option<&serde_json::Value> {
        self.json.get_or_init(|| serde_json::from_slice(self.view.body).ok()).as_ref()
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn body_text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(self.view.body)
    }
}

/// Splits a query string into decoded `(name, value)` pairs (`+` is a space), in order.
pub(crate) fn query_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned()))
}
