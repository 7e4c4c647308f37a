//! The access log: one line per request on stderr, as text or JSON (`--log-requests`, `--log-format json`).
//!
//! Each line goes out in one `write` to stderr, so lines from connections served at the same time never interleave.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::SocketAddr;
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
}

/// Writes `bytes` to stderr in one call, ignoring errors.
pub(crate) fn write_stderr(bytes: &[u8]) {
    let _ = std::io::stderr().lock().write_all(bytes);
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
