//! HTTP/2 frames written and read by hand (prior knowledge, no TLS), so that limits can be tested on the wire.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};

pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const SETTINGS: u8 = 0x4;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const RST_STREAM: u8 = 0x3;
pub const WINDOW_UPDATE: u8 = 0x8;
pub const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;
pub const SETTINGS_INITIAL_WINDOW_SIZE: u16 = 0x4;

/// A SETTINGS frame with these (identifier, value) pairs.
pub fn settings(pairs: &[(u16, u32)]) -> Vec<u8> {
    let payload: Vec<u8> =
        pairs.iter().flat_map(|(id, v)| [id.to_be_bytes().as_slice(), &v.to_be_bytes()].concat()).collect();
    frame(SETTINGS, 0, 0, &payload)
}

/// A PING frame (not an ACK).
pub fn ping(n: u64) -> Vec<u8> {
    frame(PING, 0, 0, &n.to_be_bytes())
}
pub const END_STREAM: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;
pub const ACK: u8 = 0x1;

/// One frame: 24-bit length, type, flags, stream id, payload.
pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An HPACK header block without Huffman or dynamic table: `:method` and `:scheme` from the static table,
/// `:path` and `:authority` as literals with indexed names.
pub fn request_headers(method_post: bool, path: &str) -> Vec<u8> {
    let mut b = vec![if method_post { 0x83 } else { 0x82 }, 0x86];
    for (index, value) in [(4u8, path), (1u8, "t")] {
        assert!(value.len() < 127);
        b.push(index); // literal without indexing, indexed name (4-bit prefix)
        b.push(value.len() as u8);
        b.extend_from_slice(value.as_bytes());
    }
    b
}

/// Splits `buf` into complete frames (type, flags, stream, payload), leaving an incomplete tail.
pub fn parse(buf: &mut Vec<u8>) -> Vec<(u8, u8, u32, Vec<u8>)> {
    let mut out = Vec::new();
    loop {
        if buf.len() < 9 {
            return out;
        }
        let len = (usize::from(buf[0]) << 16) | (usize::from(buf[1]) << 8) | usize::from(buf[2]);
        if buf.len() < 9 + len {
            return out;
        }
        let stream = u32::from_be_bytes([buf[5], buf[6], buf[7], buf[8]]) & 0x7fff_ffff;
        out.push((buf[3], buf[4], stream, buf[9..9 + len].to_vec()));
        buf.drain(..9 + len);
    }
}

/// Sends one HTTP/2 request (prior knowledge) with `block` as its HPACK header block and no body, and returns the
/// frames the server sent until stream 1 ended, the connection closed, or `wait` passed.
pub async fn h2_exchange(addr: SocketAddr, block: &[u8], wait: Duration) -> Vec<(u8, u8, u32, Vec<u8>)> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut out = PREFACE.to_vec();
    out.extend(frame(SETTINGS, 0, 0, &[]));
    out.extend(frame(HEADERS, END_HEADERS | END_STREAM, 1, block));
    s.write_all(&out).await.unwrap();
    let deadline = Instant::now() + wait;
    let (mut buf, mut frames) = (Vec::new(), Vec::new());
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        for f in parse(&mut buf) {
            if f.0 == SETTINGS && f.1 & ACK == 0 {
                let _ = s.write_all(&frame(SETTINGS, ACK, 0, &[])).await;
            }
            let done = f.2 == 1 && f.1 & END_STREAM != 0 && (f.0 == DATA || f.0 == HEADERS);
            frames.push(f);
            if done {
                return frames;
            }
        }
        match timeout_at(deadline, s.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => return frames,
        }
    }
}

/// The body of stream 1: its DATA frames, joined.
pub fn h2_body(frames: &[(u8, u8, u32, Vec<u8>)]) -> String {
    let data: Vec<u8> = frames.iter().filter(|f| f.0 == DATA && f.2 == 1).flat_map(|f| f.3.clone()).collect();
    String::from_utf8_lossy(&data).into_owned()
}
