//! The `exec` action: a program run with an argv template — no shell —, a timeout, and its
//! exit status and output captured.

use std::process::Stdio;
use std::time::Duration;

use mo_core::event::Event;
use mo_core::{Error, Result};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

use super::ActionOutcome;
use super::template::Template;

/// How long a program may run by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The most output kept from each of stdout and stderr; the rest is read and dropped.
pub const MAX_OUTPUT: usize = 64 * 1024;

/// A program to run per event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecAction {
    argv: Vec<Template>,
    timeout: Duration,
}

impl ExecAction {
    /// An action from parsed templates (the first is the program); `None` if `argv` is empty
    /// (it must name at least the program).
    pub fn new(argv: Vec<Template>, timeout: Duration) -> Option<Self> {
        if argv.is_empty() {
            return None;
        }
        Some(ExecAction { argv, timeout })
    }

    /// The argv for an event.
    pub fn argv(&self, event: &Event) -> Vec<String> {
        self.argv.iter().map(|t| t.render(event)).collect()
    }

    /// Run the program for `event`: its stdin is empty, the environment inherited. An exit
    /// status other than 0 is an [`Error::Protocol`] carrying the start of its stderr; running
    /// past the timeout kills it and is an [`Error::Timeout`].
    pub async fn run(&self, event: &Event) -> Result<ActionOutcome> {
        let argv = self.argv(event);
        let (program, args) = argv.split_first().ok_or_else(|| Error::BadSpec {
            what: "exec action",
            input: String::new(),
            reason: "empty argv".to_owned(),
        })?;
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| Error::io(format!("exec action: cannot start `{program}`"), e))?;
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let run = async {
            let (out, err, status) =
                tokio::join!(read_capped(stdout), read_capped(stderr), child.wait());
            (out, err, status)
        };
        let (stdout, stderr, status) = match tokio::time::timeout(self.timeout, run).await {
            Ok(done) => done,
            Err(_) => {
                // The child is killed when dropped (kill_on_drop); make it explicit and reap it.
                let _ = child.start_kill();
                let _ = child.wait().await;
                return Err(Error::Timeout {
                    what: format!("exec action `{program}`"),
                    after: self.timeout,
                });
            }
        };
        let status =
            status.map_err(|e| Error::io(format!("exec action: waiting for `{program}`"), e))?;
        match status.code() {
            Some(0) => Ok(ActionOutcome::Exited { code: 0, stdout }),
            code => {
                let shown = code.map_or_else(|| "a signal".to_owned(), |c| format!("status {c}"));
                let stderr = String::from_utf8_lossy(&stderr);
                let stderr = stderr.trim();
                Err(Error::Protocol {
                    peer: format!("exec action `{program}`"),
                    reason: if stderr.is_empty() {
                        format!("exited with {shown}")
                    } else {
                        format!("exited with {shown}: {}", truncate(stderr, 500))
                    },
                })
            }
        }
    }
}

/// Read a pipe to its end, keeping at most [`MAX_OUTPUT`] bytes.
async fn read_capped(pipe: Option<impl AsyncRead + Unpin>) -> Vec<u8> {
    let mut kept = Vec::new();
    let Some(mut pipe) = pipe else {
        return kept;
    };
    let mut buf = [0u8; 8192];
    loop {
        match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => return kept,
            Ok(n) => {
                let room = MAX_OUTPUT.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
}

fn truncate(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
