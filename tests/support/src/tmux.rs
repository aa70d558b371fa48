//! A terminal for interactive clients: a tmux session on a private socket, driven with
//! `send-keys` and read with `capture-pane`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::process::{CmdOutput, run_with_timeout};

/// Settings for every test session: panes stay after their program exits (so its last words can
/// be read), a long history, no status line, no escape delay.
const CONFIG: &str = "set -g remain-on-exit on\n\
set -g history-limit 50000\n\
set -g status off\n\
set -g escape-time 0\n";

/// One tmux server (private socket `DIR/tmux-NAME.sock`) with one session running one command in
/// a pane of fixed size. The server is killed (`kill-server` on that socket) when dropped.
#[derive(Debug)]
pub struct Tmux {
    name: String,
    socket: PathBuf,
    config: PathBuf,
}

impl Tmux {
    /// Default pane width.
    pub const WIDTH: u16 = 200;
    /// Default pane height.
    pub const HEIGHT: u16 = 50;

    /// Start session `name` running `argv` (no shell) with `env` set, in a 200x50 pane.
    pub fn start(
        dir: &Path,
        name: &str,
        argv: &[String],
        env: &[(String, String)],
    ) -> Result<Tmux> {
        Self::start_sized(dir, name, argv, env, Self::WIDTH, Self::HEIGHT)
    }

    /// Start session `name` running `argv` (no shell) with `env` set, in a `width`x`height` pane.
    pub fn start_sized(
        dir: &Path,
        name: &str,
        argv: &[String],
        env: &[(String, String)],
        width: u16,
        height: u16,
    ) -> Result<Tmux> {
        let config = dir.join("tmux.conf");
        std::fs::write(&config, CONFIG)
            .map_err(|e| Error::io(format!("write {}", config.display()), e))?;
        let tmux = Tmux {
            name: name.to_string(),
            socket: dir.join(format!("tmux-{name}.sock")),
            config,
        };
        let mut args: Vec<String> = vec![
            "new-session".into(),
            "-d".into(),
            "-s".into(),
            name.into(),
            "-x".into(),
            width.to_string(),
            "-y".into(),
            height.to_string(),
        ];
        for (k, v) in env {
            args.push("-e".into());
            args.push(format!("{k}={v}"));
        }
        args.push("--".into());
        args.extend(argv.iter().cloned());
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        tmux.tmux(&refs)?.ok()?;
        Ok(tmux)
    }

    fn tmux(&self, args: &[&str]) -> Result<CmdOutput> {
        let mut cmd = Command::new("tmux");
        cmd.arg("-S")
            .arg(&self.socket)
            .arg("-f")
            .arg(&self.config)
            .args(args)
            .env_remove("TMUX")
            .env("TERM", "xterm-256color");
        run_with_timeout(cmd, None, Duration::from_secs(20))
    }

    /// The session name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Type `text` literally (no key names interpreted).
    pub fn send_text(&self, text: &str) -> Result<()> {
        self.tmux(&["send-keys", "-t", &self.name, "-l", "--", text])?
            .ok()
            .map(|_| ())
    }

    /// Press keys by tmux name, e.g. `"C-e"`, `"Enter"`, `"c"`.
    pub fn send_keys(&self, keys: &[&str]) -> Result<()> {
        let mut args = vec!["send-keys", "-t", &self.name];
        args.extend_from_slice(keys);
        self.tmux(&args)?.ok().map(|_| ())
    }

    /// Type `text` and press Enter.
    pub fn send_line(&self, text: &str) -> Result<()> {
        self.send_text(text)?;
        self.send_keys(&["Enter"])
    }

    /// The pane's whole text: history and screen, wrapped lines joined. tmux trims trailing
    /// blanks of every line, so wait for `mo>` rather than `mo> `.
    pub fn capture(&self) -> Result<String> {
        let out = self
            .tmux(&["capture-pane", "-p", "-J", "-S", "-", "-t", &self.name])?
            .ok()?;
        Ok(out.stdout.trim_end().to_string())
    }

    /// Poll the pane until `pred` holds for its text; the timeout error shows the pane.
    pub fn wait_until(
        &self,
        what: &str,
        limit: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Result<String> {
        let deadline = Instant::now() + limit;
        loop {
            let text = self.capture()?;
            if pred(&text) {
                return Ok(text);
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    what: what.to_string(),
                    waited: limit,
                    context_name: format!("pane {}", self.name),
                    context: text,
                });
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Wait until the pane shows `needle`.
    pub fn wait_for(&self, needle: &str, limit: Duration) -> Result<String> {
        self.wait_until(&format!("{needle:?} in pane {}", self.name), limit, |t| {
            t.contains(needle)
        })
    }

    /// Wait until the pane shows `needle` at least `count` times.
    pub fn wait_for_count(&self, needle: &str, count: usize, limit: Duration) -> Result<String> {
        self.wait_until(
            &format!("{count} x {needle:?} in pane {}", self.name),
            limit,
            |t| t.matches(needle).count() >= count,
        )
    }

    /// Wait until the text after the last `marker` in the pane contains every one of `needles`.
    pub fn wait_after(&self, marker: &str, needles: &[&str], limit: Duration) -> Result<String> {
        self.wait_until(
            &format!(
                "{needles:?} after the last {marker:?} in pane {}",
                self.name
            ),
            limit,
            |t| after_last(t, marker).is_some_and(|rest| needles.iter().all(|n| rest.contains(n))),
        )
        .map(|t| after_last(&t, marker).unwrap_or_default().to_string())
    }

    /// Whether the pane's program has exited.
    pub fn is_dead(&self) -> Result<bool> {
        let out = self
            .tmux(&["display-message", "-p", "-t", &self.name, "#{pane_dead}"])?
            .ok()?;
        Ok(out.stdout.trim() == "1")
    }

    /// Wait until the pane's program has exited; returns the pane text.
    pub fn wait_dead(&self, limit: Duration) -> Result<String> {
        let deadline = Instant::now() + limit;
        loop {
            if self.is_dead()? {
                return self.capture();
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    what: format!("the program in pane {} to exit", self.name),
                    waited: limit,
                    context_name: format!("pane {}", self.name),
                    context: self.capture().unwrap_or_default(),
                });
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The text after the last occurrence of `marker`, if any.
pub fn after_last<'a>(text: &'a str, marker: &str) -> Option<&'a str> {
    text.rfind(marker).map(|i| &text[i + marker.len()..])
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]);
        let _ = std::fs::remove_file(&self.socket);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pane_runs_a_program_and_shows_its_output() -> Result<()> {
        let dir = crate::ports::temp_dir("tmux-test")?;
        let t = Tmux::start(
            dir.path(),
            "cat",
            &[
                "sh".into(),
                "-c".into(),
                "echo \"$GREETING\"; exec cat".into(),
            ],
            &[("GREETING".into(), "hello from env".into())],
        )?;
        t.wait_for("hello from env", Duration::from_secs(10))?;
        t.send_line("typed-line")?;
        t.wait_for_count("typed-line", 2, Duration::from_secs(10))?;
        let width = t
            .tmux(&[
                "display-message",
                "-p",
                "-t",
                "cat",
                "#{pane_width}x#{pane_height}",
            ])?
            .ok()?;
        assert_eq!(width.stdout.trim(), "200x50");
        t.send_keys(&["C-d"])?;
        t.wait_dead(Duration::from_secs(10))?;
        Ok(())
    }

    #[test]
    fn after_last_finds_the_tail() {
        assert_eq!(after_last("a M b M c", "M"), Some(" c"));
        assert_eq!(after_last("abc", "M"), None);
    }
}
