//! Recording a macro from a live session: each typed line becomes `expect` of the prompt shown
//! before it, then `sendline` of the line.

use std::future::Future;

use super::{DEVICE_PARAM, Macro, escape};
use crate::console::{Session, ViewerEvent};
use crate::error::Result;
use crate::record::{Chunk, RecordKind};
use crate::scan::{AnsiStripper, Piece};

/// The longest prompt line kept (its end), in characters.
const MAX_PROMPT: usize = 200;

/// Turns a console's timeline (output, and input typed by one user or anyone) into a macro.
///
/// Feed it every chunk in order ([`Recorder::observe`], or let [`Recorder::record`] read a
/// session — a spy session sees everyone's input). When a typed line begins, the partial output
/// line standing at that moment is the prompt; when the line is finished with Enter the recorder
/// writes `expect /PROMPT$/` and `sendline LINE`. The device's name in a prompt becomes
/// `${device}`, so the macro plays on other devices; a line typed at a password prompt becomes
/// `${password}` (declared as a parameter) and is never written down. Backspace, Ctrl-U and
/// arrow keys are applied or skipped as a terminal would; Ctrl-C and Ctrl-D become `send \x03`.
#[derive(Debug)]
pub struct Recorder {
    device: String,
    user: Option<String>,
    stripper: AnsiStripper,
    /// The output line being shown (stripped).
    out_line: String,
    /// The prompt standing when the current input line began.
    prompt: Option<String>,
    input: Vec<u8>,
    /// Inside an escape sequence typed by the user.
    in_escape: bool,
    lines: Vec<String>,
    needs_password: bool,
}

impl Recorder {
    /// A recorder for device `device` (its name is generalised to `${device}` in prompts).
    pub fn new(device: &str) -> Recorder {
        Recorder {
            device: device.to_string(),
            user: None,
            stripper: AnsiStripper::new(),
            out_line: String::new(),
            prompt: None,
            input: Vec::new(),
            in_escape: false,
            lines: Vec::new(),
            needs_password: false,
        }
    }

    /// Record only the input typed by `user`.
    pub fn only_user(mut self, user: &str) -> Recorder {
        self.user = Some(user.to_string());
        self
    }

    /// Take one chunk of the console's timeline.
    pub fn observe(&mut self, chunk: &Chunk) {
        match chunk.kind {
            RecordKind::Output => self.output(&chunk.bytes),
            RecordKind::Input if self.user.as_deref().is_none_or(|u| u == &*chunk.user) => {
                for &b in chunk.bytes.iter() {
                    self.typed(b);
                }
            }
            _ => {}
        }
    }

    fn output(&mut self, bytes: &[u8]) {
        let mut text = Vec::new();
        let mut ended = false;
        self.stripper.feed(bytes, |piece| match piece {
            Piece::Text(t) => text.extend_from_slice(t),
            Piece::LineEnd => {
                text.clear();
                ended = true;
            }
        });
        if ended {
            self.out_line.clear();
        }
        self.out_line.push_str(&String::from_utf8_lossy(&text));
        if self.out_line.len() > MAX_PROMPT * 4 {
            let keep = super::super::expect::tail_chars(&self.out_line, MAX_PROMPT).to_string();
            self.out_line = keep;
        }
    }

    fn typed(&mut self, b: u8) {
        if self.in_escape {
            // Skip `ESC [ ... final` and `ESC O x`.
            if b.is_ascii_alphabetic() || b == b'~' {
                self.in_escape = false;
            }
            return;
        }
        if self.prompt.is_none() && !matches!(b, b'\r' | b'\n') {
            self.prompt = Some(self.out_line.clone());
        }
        match b {
            b'\r' | b'\n' => self.finish_line(),
            0x08 | 0x7f => {
                self.input.pop();
            }
            0x15 => self.input.clear(),
            0x1b => self.in_escape = true,
            0x03 | 0x04 => {
                self.emit_expect();
                self.lines.push(format!("send \\x{b:02x}"));
                self.input.clear();
                self.prompt = None;
            }
            b if b >= 0x20 || b == b'\t' => self.input.push(b),
            _ => {}
        }
    }

    fn emit_expect(&mut self) {
        let prompt = self.prompt.take().unwrap_or_else(|| self.out_line.clone());
        let prompt = super::super::expect::tail_chars(&prompt, MAX_PROMPT).to_string();
        if prompt.trim().is_empty() {
            return;
        }
        let mut regex = regex::escape(&prompt);
        if !self.device.is_empty() {
            let name = regex::escape(&self.device);
            regex = regex.replace(&name, &format!("${{{DEVICE_PARAM}}}"));
        }
        // `/` ends the expression in the file format: a prompt with `/` uses a class for it.
        let regex = regex.replace('/', "[/]");
        self.lines.push(format!("expect /{regex}$/"));
    }

    fn finish_line(&mut self) {
        let is_password = self
            .prompt
            .as_deref()
            .or(Some(self.out_line.as_str()))
            .is_some_and(|p| {
                let p = p.to_ascii_lowercase();
                p.contains("password") || p.contains("passphrase")
            });
        self.emit_expect();
        if is_password {
            self.needs_password = true;
            self.lines.push("sendline ${password}".to_string());
        } else {
            let text = String::from_utf8_lossy(&self.input).into_owned();
            let text = escape(&text).replace("${", "\\${");
            self.lines
                .push(format!("sendline {text}").trim_end().to_string());
        }
        self.input.clear();
        self.prompt = None;
    }

    /// The macro text so far, ending with `expect` of the prompt now standing (if any).
    pub fn text(&self) -> String {
        let mut out = String::from("# recorded\n");
        if self.needs_password {
            out.push_str("param password\n");
        }
        for l in &self.lines {
            out.push_str(l);
            out.push('\n');
        }
        let mut tail = Recorder::new(&self.device);
        tail.out_line = self.out_line.clone();
        if !self.lines.is_empty() && self.input.is_empty() {
            tail.emit_expect();
            for l in tail.lines {
                out.push_str(&l);
                out.push('\n');
            }
        }
        out
    }

    /// The macro recorded so far.
    pub fn finish(&self) -> Result<Macro> {
        Macro::parse_named("recording", &self.text())
    }

    /// Record from `session` until `stop` resolves or the console closes. Lost output (the
    /// session fell behind) is no reason to stop; the prompt is taken from what arrives next.
    pub async fn record(
        mut self,
        session: &mut Session,
        stop: impl Future<Output = ()>,
    ) -> Result<Macro> {
        let mut stop = std::pin::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => break,
                event = session.recv() => match event {
                    ViewerEvent::Chunk(c) => self.observe(&c),
                    ViewerEvent::Closed => break,
                    _ => {}
                },
            }
        }
        self.finish()
    }
}
