//! The one way to run the real `hotroute` binary in a test: start it with arguments, folder and environment, read
//! its `listening on` line, watch its stderr lines, signal it, wait for its exit, read its `/proc` figures.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError, channel};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_hotroute");

/// The contract every test that runs the binary relies on: its first stdout line is `listening on http://IP:PORT`.
/// Reads that line (blocking until it comes, or the child ends) and parses the address in it. On anything else it
/// returns the line, so that the caller can fail with its own context.
pub fn read_address(child: &mut Child) -> Result<SocketAddr, String> {
    use std::io::{BufRead, BufReader};
    let mut line = String::new();
    let stdout = child.stdout.take().expect("the child's stdout is piped");
    BufReader::new(stdout).read_line(&mut line).map_err(|e| format!("cannot read stdout: {e}"))?;
    if !line.ends_with('\n') {
        return Err(line);
    }
    line.trim_end().strip_prefix("listening on http://").and_then(|a| a.parse().ok()).ok_or(line)
}

/// How to start the binary; [`Bin::command`] makes one, [`Launch::start`] runs it.
pub struct Launch {
    cmd: Command,
    dir: Option<tempfile::TempDir>,
    cwd: Option<PathBuf>,
    stderr: Option<Stdio>,
}

impl Launch {
    /// Sends stderr to `stderr` instead of collecting its lines ([`Bin::line`] and [`Bin::stderr`] then see none),
    /// e.g. a pipe the test never reads.
    pub fn stderr(mut self, stderr: Stdio) -> Launch {
        self.stderr = Some(stderr);
        self
    }

    /// Runs in `dir` (which the [`Bin`] then owns, and deletes when dropped).
    pub fn in_dir(mut self, dir: tempfile::TempDir) -> Launch {
        self.dir = Some(dir);
        self
    }

    /// Runs in `path`, a folder the test owns.
    pub fn current_dir(mut self, path: impl AsRef<Path>) -> Launch {
        self.cwd = Some(path.as_ref().to_path_buf());
        self
    }

    pub fn arg(mut self, arg: impl AsRef<std::ffi::OsStr>) -> Launch {
        self.cmd.arg(arg);
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: AsRef<std::ffi::OsStr>>(mut self, args: I) -> Launch {
        self.cmd.args(args);
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Launch {
        self.cmd.env(key, value);
        self
    }

    pub fn env_remove(mut self, key: &str) -> Launch {
        self.cmd.env_remove(key);
        self
    }

    /// Starts the binary and waits for its `listening on` line; panics with its stderr if another line comes first.
    pub fn start(self) -> Bin {
        let Launch { mut cmd, dir, cwd, stderr } = self;
        let dir = match dir {
            Some(dir) => dir,
            None => tempfile::tempdir().unwrap(),
        };
        cmd.current_dir(cwd.as_deref().unwrap_or(dir.path())).stdin(Stdio::null()).stdout(Stdio::piped());
        let collect = stderr.is_none();
        cmd.stderr(stderr.unwrap_or_else(Stdio::piped));
        #[cfg(target_os = "linux")]
        {
            use std::os::unix::process::CommandExt;
            // If this test process dies (a failed test can abort it), the server goes with it instead of lingering.
            // (The signal comes when the thread that started it ends: each test's own thread, which outlives it.)
            // SAFETY: prctl is async-signal-safe and touches nothing of the parent's state.
            unsafe {
                cmd.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
        }
        let mut child = cmd.spawn().expect("the binary starts");
        // Stderr is read on a thread unless the test chose where it goes: a full pipe would stall the server, and a
        // failure can show it.
        let (tx, lines) = channel();
        if collect {
            let stderr = child.stderr.take().unwrap();
            std::thread::spawn(move || {
                use std::io::BufRead;
                for line in std::io::BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        } else {
            drop(tx);
        }
        match read_address(&mut child) {
            Ok(addr) => Bin { child, addr, dir, lines, seen: Vec::new(), taken: 0 },
            Err(line) => {
                let _ = child.kill();
                let _ = child.wait();
                let rest: Vec<String> = lines.iter().collect();
                panic!("first stdout line was {line:?}; stderr:\n{}", rest.join("\n"))
            }
        }
    }
}

/// The real `hotroute` binary, serving on a free port; killed on drop so that a failing test leaves nothing behind.
pub struct Bin {
    pub child: Child,
    pub addr: SocketAddr,
    /// The folder it runs in (a fresh one unless [`Launch::in_dir`] or [`Launch::current_dir`] said otherwise).
    pub dir: tempfile::TempDir,
    lines: Receiver<String>,
    /// Every stderr line received so far.
    seen: Vec<String>,
    /// How many of `seen` [`Bin::line`] has looked at.
    taken: usize,
}

impl Bin {
    /// Writes `toml` to `routes.toml` in a fresh folder and starts `hotroute routes.toml --port 0 --no-watch
    /// --log-level warn` there.
    pub fn start(toml: &str) -> Bin {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("routes.toml"), toml).unwrap();
        Bin::command().in_dir(dir).args(["routes.toml", "--port", "0", "--no-watch", "--log-level", "warn"]).start()
    }

    /// Like [`Bin::start`], with more arguments and stderr sent to `stderr` (not collected).
    pub fn start_with(toml: &str, args: &[&str], stderr: Stdio) -> Bin {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("routes.toml"), toml).unwrap();
        Bin::command()
            .in_dir(dir)
            .args(["routes.toml", "--port", "0", "--no-watch", "--log-level", "warn"])
            .args(args)
            .stderr(stderr)
            .start()
    }

    /// The binary with no arguments yet, in a fresh folder.
    pub fn command() -> Launch {
        Launch { cmd: Command::new(BIN), dir: None, cwd: None, stderr: None }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// The URL of `path` on this server.
    /// `hotroute_open_connections` from `/__admin/metrics` (the scrape's own connection included).
    pub async fn open_connections(&self) -> i64 {
        let res = crate::support::server::client().get(self.url("/__admin/metrics")).send().await.unwrap();
        let text = res.text().await.unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix("hotroute_open_connections "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no open_connections in:\n{text}"))
    }

    /// Waits (at most 10 s, else fails) until only the metrics scrape's own connection is open: clients that left
    /// freed theirs.
    pub async fn wait_until_connections_are_freed(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let open = self.open_connections().await;
            if open <= 1 {
                return;
            }
            assert!(Instant::now() < deadline, "{open} connections still open after the clients left");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Sends `signal` (e.g. `libc::SIGHUP`).
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill only sends a signal to our own child process.
        assert_eq!(unsafe { libc::kill(self.pid(), signal) }, 0, "kill({}, {signal})", self.pid());
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        self.signal(libc::SIGTERM);
    }

    /// Sends SIGINT.
    pub fn interrupt(&self) {
        self.signal(libc::SIGINT);
    }

    /// Sends SIGHUP.
    pub fn hangup(&self) {
        self.signal(libc::SIGHUP);
    }

    /// Waits up to `wait` for the process to exit; its exit code, or `None` if it is still running.
    pub async fn wait_exit(&mut self, wait: Duration) -> Option<i32> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status.code().unwrap_or(-1));
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Like [`Bin::wait_exit`], blocking; panics if the process is still running after `within`.
    pub fn wait_exit_blocking(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the server did not exit within {within:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// A figure from `/proc/PID/status` in KiB, e.g. `VmHWM` (peak resident memory).
    pub fn proc_status_kib(&self, key: &str) -> u64 {
        self.proc_status(key)
    }

    /// The number in a line of `/proc/PID/status`, e.g. `Threads`.
    pub fn proc_status(&self, key: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let line = status.lines().find(|l| l.starts_with(&format!("{key}:"))).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// The next stderr line not yet looked at that satisfies `pred`, waiting up to 10 s for it; lines before it are
    /// passed over for good.
    pub fn line(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            while self.taken < self.seen.len() {
                self.taken += 1;
                if pred(&self.seen[self.taken - 1]) {
                    return self.seen[self.taken - 1].clone();
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                    panic!("no stderr line {what} within 10 s; saw:\n{}", self.seen.join("\n"))
                }
            }
        }
    }

    /// Every stderr line so far, joined (does not wait).
    pub fn stderr(&mut self) -> String {
        loop {
            match self.lines.try_recv() {
                Ok(line) => self.seen.push(line),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => return self.seen.join("\n"),
            }
        }
    }

    /// All of stderr so far, joined, once it satisfies `pred` (a line logged after a change the test saw over HTTP
    /// may still be on its way through the pipe); panics with what it saw after 10 s.
    pub fn stderr_until(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = self.stderr();
            if pred(&text) {
                return text;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                    panic!("no stderr {what} within 10 s; saw:\n{}", self.seen.join("\n"))
                }
            }
        }
    }

    /// Stops the server with SIGTERM and returns all of its stderr lines (waiting up to 10 s for each new one).
    pub fn stop(mut self) -> Vec<String> {
        self.terminate();
        let mut all = std::mem::take(&mut self.seen);
        // The reader thread ends when the process closes stderr; recv then reports Disconnected.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(10)) {
            all.push(line);
        }
        all
    }
}

impl Drop for Bin {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
