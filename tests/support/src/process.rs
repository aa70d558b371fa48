//! Child processes the tests start: a guard that kills exactly the PID it started, commands run to
//! completion with a time limit, and collectors that gather a stream's bytes in the background.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::error::{Error, Result};

/// A process started by a test. It records its PID and, when dropped, sends SIGKILL to exactly that
/// PID (only if it has not been reaped yet, so the PID cannot have been reused) and waits for it.
#[derive(Debug)]
pub struct Peer {
    name: String,
    child: Child,
    log: Option<PathBuf>,
    status: Option<ExitStatus>,
}

impl Peer {
    /// Spawn `cmd` under the name `name`. With `log`, its stdout and stderr are appended to that
    /// file (otherwise the command's own stdio settings are kept).
    pub fn spawn(name: &str, mut cmd: Command, log: Option<&Path>) -> Result<Peer> {
        if let Some(path) = log {
            let out = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| Error::io(format!("open log {} for {name}", path.display()), e))?;
            let err = out
                .try_clone()
                .map_err(|e| Error::io(format!("clone log handle for {name}"), e))?;
            cmd.stdout(out).stderr(err);
        }
        let child = cmd
            .spawn()
            .map_err(|e| Error::io(format!("spawn {name} ({})", describe(&cmd)), e))?;
        Ok(Peer {
            name: name.to_string(),
            child,
            log: log.map(Path::to_path_buf),
            status: None,
        })
    }

    /// The peer's name as given to [`Peer::spawn`].
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The process ID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The log file, if the peer writes to one.
    pub fn log_path(&self) -> Option<&Path> {
        self.log.as_deref()
    }

    /// Everything the peer wrote to its log so far (empty without a log).
    pub fn log_text(&self) -> String {
        self.log.as_deref().map(read_lossy).unwrap_or_default()
    }

    /// Take the peer's stdout pipe (when it was spawned with `Stdio::piped()`).
    pub fn take_stdout(&mut self) -> Option<ChildStdout> {
        self.child.stdout.take()
    }

    /// The peer's stdin pipe (when it was spawned with `Stdio::piped()`).
    pub fn stdin(&mut self) -> Option<&mut ChildStdin> {
        self.child.stdin.as_mut()
    }

    /// Close the peer's stdin (end of input).
    pub fn close_stdin(&mut self) {
        self.child.stdin = None;
    }

    /// The exit status if the process has ended (reaping it), `None` while it runs.
    pub fn exit_status(&mut self) -> Result<Option<ExitStatus>> {
        if self.status.is_none() {
            self.status = self.child.try_wait().map_err(|e| {
                Error::io(format!("wait for {} (pid {})", self.name, self.pid()), e)
            })?;
        }
        Ok(self.status)
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.exit_status(), Ok(None))
    }

    /// Send `signal` to the peer's PID (nothing if it has already been reaped).
    pub fn signal(&mut self, signal: Signal) -> Result<()> {
        if self.exit_status()?.is_some() {
            return Ok(());
        }
        let pid = Pid::from_raw(i32::try_from(self.pid()).unwrap_or(i32::MAX));
        kill(pid, signal).map_err(|e| {
            Error::io(
                format!("send {signal} to {} (pid {pid})", self.name),
                std::io::Error::from(e),
            )
        })
    }

    /// Wait up to `limit` for the process to end.
    pub fn wait_timeout(&mut self, limit: Duration) -> Result<Option<ExitStatus>> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.exit_status()? {
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL the process and wait for it.
    pub fn kill(&mut self) -> Result<ExitStatus> {
        self.signal(Signal::SIGKILL)?;
        let status = self
            .child
            .wait()
            .map_err(|e| Error::io(format!("wait for {} after SIGKILL", self.name), e))?;
        self.status = Some(status);
        Ok(status)
    }

    /// SIGTERM the process, give it `grace` to exit, then SIGKILL it.
    pub fn terminate(&mut self, grace: Duration) -> Result<ExitStatus> {
        self.signal(Signal::SIGTERM)?;
        match self.wait_timeout(grace)? {
            Some(status) => Ok(status),
            None => self.kill(),
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

/// The finished run of a command: its status and its output as text.
#[derive(Debug, Clone)]
pub struct CmdOutput {
    /// The command line, for messages.
    pub command: String,
    /// How it exited.
    pub status: ExitStatus,
    /// Standard output (lossy UTF-8).
    pub stdout: String,
    /// Standard error (lossy UTF-8).
    pub stderr: String,
}

impl CmdOutput {
    /// Whether it exited with status 0.
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// stdout followed by stderr.
    pub fn combined(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// `Ok(self)` on exit status 0, otherwise [`Error::CommandFailed`] with the whole output.
    pub fn ok(self) -> Result<CmdOutput> {
        if self.success() {
            Ok(self)
        } else {
            Err(self.into_error())
        }
    }

    /// This run as an [`Error::CommandFailed`] (for commands expected to fail that did not).
    pub fn into_error(self) -> Error {
        Error::CommandFailed {
            command: self.command,
            status: self.status.to_string(),
            stdout: self.stdout,
            stderr: self.stderr,
        }
    }
}

/// Run `cmd` to completion, feeding it `stdin` (then closing it), for at most `limit`.
/// On timeout the process is killed and [`Error::Timeout`] carries what it printed.
pub fn run_with_timeout(
    mut cmd: Command,
    stdin: Option<&[u8]>,
    limit: Duration,
) -> Result<CmdOutput> {
    let command = describe(&cmd);
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut peer = Peer::spawn(&command, cmd, None)?;
    let out = Collector::start(peer.child.stdout.take());
    let err = Collector::start(peer.child.stderr.take());
    if let (Some(data), Some(mut pipe)) = (stdin, peer.child.stdin.take()) {
        // A command that exits without reading its input is not an error here.
        let _ = pipe.write_all(data);
    }
    let status = peer.wait_timeout(limit)?;
    match status {
        Some(status) => {
            out.wait_closed(Duration::from_secs(5));
            err.wait_closed(Duration::from_secs(5));
            Ok(CmdOutput {
                command,
                status,
                stdout: out.text(),
                stderr: err.text(),
            })
        }
        None => {
            let _ = peer.kill();
            Err(Error::Timeout {
                what: format!("`{command}` to finish"),
                waited: limit,
                context_name: "its output so far".into(),
                context: format!("{}{}", out.text(), err.text()),
            })
        }
    }
}

/// Render a command line for messages.
pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Read a file as lossy UTF-8; a missing or unreadable file reads as a note saying so.
pub fn read_lossy(path: &Path) -> String {
    match std::fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

#[derive(Debug, Default)]
struct Collected {
    bytes: Vec<u8>,
    closed: bool,
}

/// Gathers everything read from a stream (a pipe, a pty) on a background thread, so a test can
/// wait for text to appear without ever blocking the writer.
#[derive(Debug, Clone)]
pub struct Collector {
    shared: Arc<(Mutex<Collected>, Condvar)>,
}

impl Collector {
    /// Start reading `source` (if any) on a background thread until end of file or an error.
    pub fn start<R: Read + Send + 'static>(source: Option<R>) -> Collector {
        let collector = Collector {
            shared: Arc::new((Mutex::new(Collected::default()), Condvar::new())),
        };
        let Some(mut source) = source else {
            collector.lock().closed = true;
            return collector;
        };
        let shared = collector.clone();
        thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match source.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        shared.lock().bytes.extend_from_slice(&buf[..n]);
                        shared.shared.1.notify_all();
                    }
                }
            }
            shared.lock().closed = true;
            shared.shared.1.notify_all();
        });
        collector
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Collected> {
        self.shared.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Everything read so far.
    pub fn bytes(&self) -> Vec<u8> {
        self.lock().bytes.clone()
    }

    /// Everything read so far, as lossy UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.lock().bytes).into_owned()
    }

    /// How many bytes have been read so far.
    pub fn len(&self) -> usize {
        self.lock().bytes.len()
    }

    /// Whether nothing has been read yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the stream has ended.
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Wait up to `limit` for the stream to end; returns whether it did.
    pub fn wait_closed(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let mut guard = self.lock();
        while !guard.closed {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            guard = match self.shared.1.wait_timeout(guard, deadline - now) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
        true
    }

    /// Wait until `needle` appears at or after byte offset `from`; returns the offset just past
    /// its first such occurrence. The timeout error shows the last 4 KiB read (`name` labels it).
    pub fn wait_for_from(
        &self,
        name: &str,
        from: usize,
        needle: &str,
        limit: Duration,
    ) -> Result<usize> {
        let deadline = Instant::now() + limit;
        let needle_bytes = needle.as_bytes();
        let mut guard = self.lock();
        // Where the next search starts: bytes before it were already searched.
        let mut start = from;
        loop {
            let begin = start.min(guard.bytes.len());
            if let Some(pos) = find(&guard.bytes[begin..], needle_bytes) {
                return Ok(begin + pos + needle_bytes.len());
            }
            start = start.max(
                guard
                    .bytes
                    .len()
                    .saturating_sub(needle_bytes.len().saturating_sub(1)),
            );
            let now = Instant::now();
            // A closed stream will not bring the needle any more: fail at once.
            if now >= deadline || guard.closed {
                let tail_from = guard.bytes.len().saturating_sub(4096);
                return Err(Error::Timeout {
                    what: format!(
                        "{needle:?} in {name}{}",
                        if guard.closed { " (stream closed)" } else { "" }
                    ),
                    waited: limit,
                    context_name: format!("last {} bytes of {name}", guard.bytes.len() - tail_from),
                    context: String::from_utf8_lossy(&guard.bytes[tail_from..]).into_owned(),
                });
            }
            guard = match self
                .shared
                .1
                .wait_timeout(guard, (deadline - now).min(Duration::from_millis(200)))
            {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
    }

    /// Wait until `needle` appears anywhere; returns the offset just past its first occurrence.
    pub fn wait_for(&self, name: &str, needle: &str, limit: Duration) -> Result<usize> {
        self.wait_for_from(name, 0, needle, limit)
    }
}

/// Position of `needle` in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The PIDs whose parent is `pid` (read from `/proc`).
pub fn child_pids(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in entries.flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // Fields after the command name (which is in parentheses and may contain spaces).
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let ppid = rest
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<u32>().ok());
        if ppid == Some(pid) {
            out.push(child);
        }
    }
    out
}

/// The command line of process `pid`, arguments joined by spaces (empty if it is gone).
pub fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            String::from_utf8_lossy(&b)
                .split('\0')
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// Send SIGKILL to `pid`, a process the test did not spawn itself but knows exactly (e.g. a
/// device program the daemon runs), identified by PID and checked against `expect_in_cmdline`.
pub fn kill_exact(pid: u32, expect_in_cmdline: &str) -> Result<()> {
    let line = cmdline(pid);
    if !line.contains(expect_in_cmdline) {
        return Err(Error::Check(format!(
            "refusing to kill pid {pid}: its command line {line:?} does not contain {expect_in_cmdline:?}"
        )));
    }
    let raw = i32::try_from(pid).map_err(|_| Error::Check(format!("pid {pid} out of range")))?;
    kill(Pid::from_raw(raw), Signal::SIGKILL).map_err(|e| {
        Error::io(
            format!("SIGKILL pid {pid} ({line})"),
            std::io::Error::from(e),
        )
    })
}

/// Open a file for appending (creating it), for logs.
pub(crate) fn append_file(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| Error::io(format!("open {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropping_a_peer_kills_exactly_its_pid() -> Result<()> {
        let mut cmd = Command::new("sleep");
        cmd.arg("300");
        let peer = Peer::spawn("sleep", cmd, None)?;
        let pid = peer.pid();
        // Right after fork the child may not have exec'd yet.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !cmdline(pid).contains("sleep 300") && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        assert!(cmdline(pid).contains("sleep 300"));
        drop(peer);
        // Reaped: no /proc entry (or not our sleep any more).
        assert!(!cmdline(pid).contains("sleep 300"));
        Ok(())
    }

    #[test]
    fn hung_command_times_out_with_its_output() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo partial; exec sleep 300"]);
        let err = run_with_timeout(cmd, None, Duration::from_millis(500)).err();
        let text = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(
            text.contains("timed out") && text.contains("partial"),
            "{text}"
        );
    }

    #[test]
    fn failed_command_reports_status_and_output() -> Result<()> {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "cat; echo oops >&2; exit 4"]);
        let out = run_with_timeout(cmd, Some(b"fed"), Duration::from_secs(10))?;
        assert_eq!(out.status.code(), Some(4));
        assert_eq!(out.stdout, "fed");
        let text = out.ok().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            text.contains("exit status: 4") && text.contains("oops"),
            "{text}"
        );
        Ok(())
    }

    #[test]
    fn collector_finds_text_after_an_offset() -> Result<()> {
        let c = Collector::start(Some(&b"one two one three"[..]));
        assert!(c.wait_closed(Duration::from_secs(5)));
        assert_eq!(c.wait_for("c", "one", Duration::from_secs(1))?, 3);
        assert_eq!(c.wait_for_from("c", 3, "one", Duration::from_secs(1))?, 11);
        assert!(
            c.wait_for_from("c", 11, "one", Duration::from_millis(100))
                .is_err()
        );
        Ok(())
    }

    /// Yields its pieces one read at a time, pausing between them.
    struct Pieces(Vec<&'static [u8]>);

    impl Read for Pieces {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            thread::sleep(Duration::from_millis(30));
            if self.0.is_empty() {
                return Ok(0);
            }
            let piece = self.0.remove(0);
            buf[..piece.len()].copy_from_slice(piece);
            Ok(piece.len())
        }
    }

    #[test]
    fn collector_finds_a_needle_split_across_reads() -> Result<()> {
        let c = Collector::start(Some(Pieces(vec![b"xx got: pi", b"n", b"g-1 yy", b" tail"])));
        assert_eq!(c.wait_for("c", "got: ping-1", Duration::from_secs(5))?, 14);
        assert!(c.wait_closed(Duration::from_secs(5)));
        // A closed stream without the needle fails at once, not at the deadline.
        let t0 = Instant::now();
        let err = c.wait_for("c", "absent", Duration::from_secs(30)).err();
        assert!(t0.elapsed() < Duration::from_secs(5));
        let text = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(
            text.contains("stream closed") && text.contains("tail"),
            "{text}"
        );
        Ok(())
    }

    #[test]
    fn find_and_children() -> Result<()> {
        assert_eq!(find(b"abcabc", b"ca"), Some(2));
        assert_eq!(find(b"abc", b"x"), None);
        let me = std::process::id();
        let mut cmd = Command::new("sleep");
        cmd.arg("300");
        let peer = Peer::spawn("sleep", cmd, None)?;
        let pid = peer.pid();
        assert!(child_pids(me).contains(&pid));
        drop(peer);
        assert!(!child_pids(me).contains(&pid));
        Ok(())
    }
}
