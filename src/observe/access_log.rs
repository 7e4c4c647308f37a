//! The access log: one line per request on stderr, as text or JSON (`--log-requests`, `--log-format json`).
//!
//! Each line goes out in one `write` to stderr, so lines from connections served at the same time never interleave.
//! The writes happen on a thread of their own behind a bounded queue ([`write_stderr`]): a stderr that blocks (a pipe
//! nobody reads) loses lines, counted and reported, instead of freezing the server.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

/// How access-log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// `TIME PEER METHOD PATH STATUS BYTES DURATION ROUTE`, space-separated.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!("unknown log format `{s}`: use `text` or `json`")),
        }
    }
}

/// One answered request, as the access log records it.
#[derive(Debug, Clone)]
pub struct Record<'a> {
    /// When the request head was read.
    pub time: SystemTime,
    /// The client's address.
    pub peer: SocketAddr,
    /// Request method.
    pub method: &'a str,
    /// Request path with its query string.
    pub path: &'a str,
    /// Response status.
    pub status: u16,
    /// Response body bytes (0 for `HEAD`).
    pub bytes: u64,
    /// From the request head being read to the response being ready.
    pub duration: Duration,
    /// `file:line` of the route that answered, `admin` for the admin API, or `None`.
    pub route: Option<&'a str>,
    /// The upstream's URL when the request was proxied (written last, `proxy=URL`, so other lines keep their shape).
    pub proxy: Option<&'a str>,
}

impl Record<'_> {
    /// The line for this record in `format`, with its newline.
    pub fn line(&self, format: LogFormat) -> String {
        let time = crate::util::time::rfc3339_millis(self.time);
        let ms = self.duration.as_secs_f64() * 1000.0;
        match format {
            LogFormat::Text => {
                let mut line = String::with_capacity(96 + self.path.len());
                let route = self.route.unwrap_or("-");
                let _ = writeln!(
                    line,
                    "{time} {} {} {} {} {} {ms:.3}ms {route}",
                    self.peer, self.method, self.path, self.status, self.bytes
                );
                if let Some(url) = self.proxy {
                    line.pop();
                    let _ = writeln!(line, " proxy={url}");
                }
                line
            }
            LogFormat::Json => {
                let line = JsonLine {
                    time: &time,
                    peer: self.peer,
                    method: self.method,
                    path: self.path,
                    status: self.status,
                    bytes: self.bytes,
                    duration_ms: (ms * 1000.0).round() / 1000.0,
                    route: self.route,
                    proxy: self.proxy,
                };
                // Serializing plain fields into a String cannot fail.
                let mut line = serde_json::to_string(&line).unwrap_or_default();
                line.push('\n');
                line
            }
        }
    }

    /// Writes the line to stderr. A closed stderr is ignored: logging never takes a request down.
    pub fn write(&self, format: LogFormat) {
        write_stderr(self.line(format).as_bytes());
    }
}

/// The JSON form of a [`Record`], serialized straight from its fields (no intermediate `Value`).
#[derive(serde::Serialize)]
struct JsonLine<'a> {
    time: &'a str,
    peer: SocketAddr,
    method: &'a str,
    path: &'a str,
    status: u16,
    bytes: u64,
    duration_ms: f64,
    route: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    proxy: Option<&'a str>,
}

/// How many lines may wait for stderr; more are dropped (and counted) rather than wait.
const QUEUE_LINES: usize = 16 * 1024;

/// The lines on their way to stderr: a bounded queue to one writer thread, so that a stderr nobody reads (a full
/// pipe) blocks that thread only, never a tokio worker. Lines that do not fit are dropped and counted; the count is
/// written before the next line that gets through.
struct StderrQueue {
    tx: Option<SyncSender<Vec<u8>>>,
    dropped: Arc<AtomicU64>,
    /// Lines queued and not yet written, for [`flush_stderr`].
    pending: Arc<AtomicUsize>,
}

fn queue() -> &'static StderrQueue {
    static QUEUE: OnceLock<StderrQueue> = OnceLock::new();
    QUEUE.get_or_init(|| {
        let (tx, rx) = sync_channel::<Vec<u8>>(QUEUE_LINES);
        let dropped = Arc::new(AtomicU64::new(0));
        let pending = Arc::new(AtomicUsize::new(0));
        let (d, p) = (dropped.clone(), pending.clone());
        let spawned = std::thread::Builder::new().name("hotroute-stderr".into()).spawn(move || {
            for line in rx {
                let mut err = std::io::stderr().lock();
                let lost = d.swap(0, Ordering::Relaxed);
                if lost > 0 {
                    let _ = writeln!(
                        err,
                        "hotroute: {lost} log line(s) dropped: stderr was not read fast enough (is it a pipe nobody reads?)"
                    );
                }
                let _ = err.write_all(&line);
                p.fetch_sub(1, Ordering::Release);
            }
        });
        // Without the thread, lines are written in place (as before): better than losing them all.
        StderrQueue { tx: spawned.ok().map(|_| tx), dropped, pending }
    })
}

/// Hands `bytes` (one or more whole lines) to the stderr writer thread without waiting; when its queue is full the
/// line is dropped and counted. Logging never holds up a request.
pub(crate) fn write_stderr(bytes: &[u8]) {
    let q = queue();
    let Some(tx) = &q.tx else {
        let _ = std::io::stderr().lock().write_all(bytes);
        return;
    };
    q.pending.fetch_add(1, Ordering::AcqRel);
    if tx.try_send(bytes.to_vec()).is_err() {
        q.pending.fetch_sub(1, Ordering::AcqRel);
        q.dropped.fetch_add(1, Ordering::Relaxed);
    }
}

/// A writer for a logging library (e.g. `tracing-subscriber`'s `with_writer(|| QueuedStderr)`) that goes through the
/// same queue as the access log: each `write` call is queued as one line, never waits, and is dropped if the queue is
/// full.
#[derive(Debug, Clone, Copy, Default)]
pub struct QueuedStderr;

impl std::io::Write for QueuedStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        write_stderr(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Waits up to `wait` for the lines already queued to reach stderr (call it before the process exits). Returns how
/// many lines were dropped and not yet reported.
pub fn flush_stderr(wait: Duration) -> u64 {
    let q = queue();
    let deadline = std::time::Instant::now() + wait;
    while q.pending.load(Ordering::Acquire) > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    q.dropped.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64, millis: u64) -> SystemTime {
        std::time::UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis)
    }

    #[test]
    fn text_and_json_lines() {
        let r = Record {
            time: at(1_709_251_199, 5),
            peer: "127.0.0.1:5555".parse().unwrap(),
            method: "GET",
            path: "/a\"b?x=1",
            status: 404,
            bytes: 20,
            duration: Duration::from_micros(1234),
            route: None,
            proxy: None,
        };
        assert_eq!(r.line(LogFormat::Text), "2024-02-29T23:59:59.005Z 127.0.0.1:5555 GET /a\"b?x=1 404 20 1.234ms -\n");
        let json: serde_json::Value = serde_json::from_str(&r.line(LogFormat::Json)).unwrap();
        assert_eq!(json["path"], "/a\"b?x=1");
        assert_eq!(json["route"], serde_json::Value::Null);
        assert_eq!(json["duration_ms"], 1.234);
        assert_eq!("JSON".parse::<LogFormat>(), Ok(LogFormat::Json));
        assert!("xml".parse::<LogFormat>().unwrap_err().contains("`text` or `json`"));
    }
}
