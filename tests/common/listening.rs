//! The contract every test that runs the binary relies on: its first stdout line is `listening on http://IP:PORT`.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::Child;

/// Reads the child's first stdout line (blocking until it comes, or the child ends) and parses the address in it.
/// On anything else it returns the line, so that the caller can fail with its own context.
pub fn read_address(child: &mut Child) -> Result<SocketAddr, String> {
    let mut line = String::new();
    let stdout = child.stdout.take().expect("the child's stdout is piped");
    BufReader::new(stdout).read_line(&mut line).map_err(|e| format!("cannot read stdout: {e}"))?;
    if !line.ends_with('\n') {
        return Err(line);
    }
    line.trim_end().strip_prefix("listening on http://").and_then(|a| a.parse().ok()).ok_or(line)
}
