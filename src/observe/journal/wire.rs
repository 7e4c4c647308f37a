//! The shared journal's records as bytes: what [`super::Journal::share`] appends to Redis, one stream entry per batch.
//!
//! Writing is on every request's path when `[server] state` is set, reading only when someone looks
//! (`GET /__admin/requests`), so the format is made cheap to write: integers little-endian at fixed places and the
//! request's target, headers and body as the one buffer [`RecordedRequest`] already keeps, copied as is (no JSON,
//! no escaping). Reading turns a record into the JSON `to_json_with(true, "")` gives, plus `"replica"`: what the
//! admin API showed when the stream held that JSON (`a_record_reads_back_as_to_json_with_the_replica` checks it).
//!
//! A batch is a stream entry of two fields: `h`, the header ([`VERSION`], then the replica's name), and `b`, the
//! records, each a `u32` length then the record. A record is the flags byte ([`FAULT`], ...), the id (`u64`), the
//! time (`u64` nanoseconds since 1970), the status as shown (`u16`, 0 for a fault), the body size (`u64`), where the
//! target and the head end in the request's bytes (`u32` each), then byte strings (a `u32` length, the bytes): the
//! method, the optional parts the flags name (a route: a count byte, its methods, path and location), and last the
//! request's bytes.
//! Reading never panics: a record that does not parse (a damaged entry, another version) is skipped.

use std::time::{Duration, UNIX_EPOCH};

use serde_json::{Map, Value};

use super::RecordedRequest;

/// The format's version, the first byte of a batch's header.
pub(super) const VERSION: u8 = 1;

/// Flag: the route cut the connection; a byte string with the fault's name follows.
const FAULT: u8 = 1;
/// Flag: a route answered; its methods (a count, then each), path and location follow.
const ROUTE: u8 = 1 << 1;
/// Flag: the request was proxied; the upstream's URL follows.
const PROXIED: u8 = 1 << 2;
/// Flag: the request named a partition; its id follows.
const ISOLATE: u8 = 1 << 3;
/// Flag: a WebSocket upgrade; the conversation's log as JSON follows.
const WEBSOCKET: u8 = 1 << 4;
/// Flag: the OpenAPI checks found problems; they follow as JSON.
const OPENAPI: u8 = 1 << 5;

/// A batch's header for the records of `replica`.
pub(super) fn header(replica: &str) -> Vec<u8> {
    let mut header = Vec::with_capacity(1 + replica.len());
    header.push(VERSION);
    header.extend_from_slice(replica.as_bytes());
    header
}

/// Appends `r` to `out` as one record, length first. False (and `out` as it was) for a record too large for its
/// length fields, which a request cannot be (its head is capped by the HTTP parser and its body at 64 KiB).
///
/// On every request's path with a shared journal, so made of few writes: the fixed part at once from the stack,
/// then each byte string with its length, into space reserved once.
pub(super) fn encode(r: &RecordedRequest, out: &mut Vec<u8>) -> bool {
    let route = r.route.as_deref();
    let fault = r.fault();
    // Rare (an upgrade, a request the OpenAPI checks refused): JSON is fine here. The conversation's log is as it
    // is when the request is recorded, before the upgrade's answer is sent.
    let websocket = r.websocket.as_ref().map(|log| log.to_json().to_string());
    let openapi = r.openapi.as_ref().map(|found| found.to_string());
    let flags = if fault.is_some() { FAULT } else { 0 }
        | if route.is_some() { ROUTE } else { 0 }
        | if r.proxied.is_some() { PROXIED } else { 0 }
        | if r.isolate.is_some() { ISOLATE } else { 0 }
        | if websocket.is_some() { WEBSOCKET } else { 0 }
        | if openapi.is_some() { OPENAPI } else { 0 };
    let (Ok(target_end), Ok(headers_end)) = (u32::try_from(r.target_end), u32::try_from(r.headers_end)) else {
        return false;
    };
    let nanos = r.time.duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    let status = if fault.is_some() { 0 } else { r.status.as_u16() };
    let mut fixed = [0u8; FIXED];
    fixed[4] = flags;
    fixed[5..13].copy_from_slice(&r.id.to_le_bytes());
    fixed[13..21].copy_from_slice(&nanos.to_le_bytes());
    fixed[21..23].copy_from_slice(&status.to_le_bytes());
    fixed[23..31].copy_from_slice(&(r.body_size as u64).to_le_bytes());
    fixed[31..35].copy_from_slice(&target_end.to_le_bytes());
    fixed[35..39].copy_from_slice(&headers_end.to_le_bytes());
    let start = out.len();
    out.reserve(FIXED + 64 + r.data.len());
    out.extend_from_slice(&fixed);
    string(out, r.method.as_str().as_bytes());
    if let Some(fault) = fault {
        string(out, fault.as_bytes());
    }
    if let Some(route) = route {
        match &route.methods {
            crate::config::Methods::Any => {
                out.push(1);
                string(out, b"ANY");
            }
            crate::config::Methods::List(list) => {
                // A route lists each method once, and there are a few dozen; more would be cut, never wrapped.
                out.push(list.len().min(255) as u8);
                for m in list.iter().take(255) {
                    string(out, m.as_str().as_bytes());
                }
            }
        }
        string(out, route.path.as_bytes());
        string(out, route.location.as_bytes());
    }
    for part in
        [r.proxied.as_deref(), r.isolate.as_deref(), websocket.as_deref(), openapi.as_deref()].into_iter().flatten()
    {
        string(out, part.as_bytes());
    }
    string(out, &r.data);
    match u32::try_from(out.len() - start - 4) {
        Ok(len) => {
            out[start..start + 4].copy_from_slice(&len.to_le_bytes());
            true
        }
        _ => {
            out.truncate(start);
            false
        }
    }
}

/// The bytes of a record before its byte strings: length, flags, id, time, status, body size, target end, head end.
const FIXED: usize = 4 + 1 + 8 + 8 + 2 + 8 + 4 + 4;

/// A byte string: its length as a little-endian `u32`, then its bytes (a longer one is cut: `encode` then finds the
/// record too long and leaves it out).
fn string(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&u32::try_from(b.len()).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(b);
}

/// The records of `records`, in order, each without its length (stops at the first length that overruns).
pub(super) fn split(records: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = records;
    std::iter::from_fn(move || {
        let len = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        let record = rest.get(4..4 + len)?;
        rest = &rest[4 + len..];
        Some(record)
    })
}

/// How many bytes of `records` (from the start) make up at most `max_records` whole records and, past the first,
/// at most `max_bytes` bytes; and how many records that is.
pub(super) fn chunk(records: &[u8], max_records: usize, max_bytes: usize) -> (usize, usize) {
    let (mut len, mut n) = (0, 0);
    for record in split(records) {
        let next = len + 4 + record.len();
        if n == max_records || (n > 0 && next > max_bytes) {
            break;
        }
        (len, n) = (next, n + 1);
    }
    if n == 0 {
        // Nothing parses (cannot happen for what `encode` wrote): all of it, so that the writer moves on.
        return (records.len(), 0);
    }
    (len, n)
}

/// The records of a batch with header `header` after its first `skip`, oldest first, as the admin API shows them;
/// none for a header of another version. A record that does not parse is left out.
pub(super) fn decode_batch(header: &[u8], records: &[u8], skip: usize) -> impl Iterator<Item = Value> {
    let replica = match header.split_first() {
        Some((&VERSION, name)) => Some(String::from_utf8_lossy(name).into_owned()),
        _ => None,
    };
    let records = if replica.is_some() { records } else { &[][..] };
    split(records).skip(skip).filter_map(move |record| decode(record, replica.as_deref().unwrap_or_default()))
}

/// How many records `records` holds.
pub(super) fn count(records: &[u8]) -> usize {
    split(records).count()
}

/// Reads a record: the JSON of `RecordedRequest::to_json_with(true, "")`, with `"replica"` last.
fn decode(record: &[u8], replica: &str) -> Option<Value> {
    let mut r = Reader(record);
    let flags = r.take::<1>()?[0];
    let (id, nanos) = (u64::from_le_bytes(r.take()?), u64::from_le_bytes(r.take()?));
    let status = u16::from_le_bytes(r.take()?);
    let body_size = u64::from_le_bytes(r.take()?);
    let (target_end, headers_end) = (u32::from_le_bytes(r.take()?), u32::from_le_bytes(r.take()?));
    let method = r.str()?;
    let fault = if flags & FAULT != 0 { Some(r.str()?) } else { None };
    let route = if flags & ROUTE != 0 {
        let n = r.take::<1>()?[0];
        let mut methods = Vec::with_capacity(usize::from(n));
        for _ in 0..n {
            methods.push(Value::from(r.str()?));
        }
        let (path, location) = (r.str()?, r.str()?);
        let mut route = Map::new();
        route.insert("methods".into(), Value::Array(methods));
        route.insert("path".into(), path.into());
        route.insert("location".into(), location.into());
        Some(Value::Object(route))
    } else {
        None
    };
    let proxied = if flags & PROXIED != 0 { Some(r.str()?) } else { None };
    let isolate = if flags & ISOLATE != 0 { Some(r.str()?) } else { None };
    let websocket = if flags & WEBSOCKET != 0 { Some(serde_json::from_slice::<Value>(r.bytes()?).ok()?) } else { None };
    let openapi = if flags & OPENAPI != 0 { Some(serde_json::from_slice::<Value>(r.bytes()?).ok()?) } else { None };
    let data = r.bytes()?;
    let (target_end, headers_end) = (usize::try_from(target_end).ok()?, usize::try_from(headers_end).ok()?);
    let target = std::str::from_utf8(data.get(..target_end)?).ok()?;
    let head = data.get(target_end..headers_end)?;
    let body = &data[headers_end..];
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    };
    let time = UNIX_EPOCH.checked_add(Duration::from_nanos(nanos))?;
    let mut json = Map::new();
    json.insert("id".into(), id.into());
    json.insert("time".into(), crate::util::time::rfc3339_millis(time).into());
    json.insert("method".into(), method.into());
    json.insert("path".into(), path.into());
    json.insert("query".into(), query.into());
    json.insert("headers".into(), super::headers_json(super::header_pairs_in(head)));
    json.insert("body_size".into(), body_size.into());
    json.insert("body_truncated".into(), (body_size > body.len() as u64).into());
    json.insert("status".into(), status.into());
    json.insert("fault".into(), fault.into());
    json.insert("matched".into(), route.is_some().into());
    json.insert("route".into(), route.into());
    json.insert("proxied".into(), proxied.into());
    if let Some(id) = isolate {
        json.insert("isolate".into(), id.into());
    }
    json.insert("body".into(), String::from_utf8_lossy(body).into());
    if let Some(log) = websocket {
        json.insert("websocket".into(), log);
    }
    if let Some(found) = openapi {
        json.insert("openapi_violations".into(), found);
    }
    json.insert("replica".into(), replica.into());
    Some(Value::Object(json))
}

/// Reads a record front to back; every read is checked against its end.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = usize::try_from(u32::from_le_bytes(self.take()?)).ok()?;
        let b = self.0.get(..len)?;
        self.0 = &self.0[len..];
        Some(b)
    }

    fn str(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.bytes()?).ok()
    }
}
