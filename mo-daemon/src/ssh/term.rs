//! A viewer's terminal at the far end of an SSH channel: input events in, output bytes out.
//!
//! Output goes through a small bounded queue to a writer task, so a slow SSH client never blocks
//! the code that reads its keystrokes, and a console session simply stops pulling from the hub
//! (and is later told what it missed) when the queue is full.

use bytes::Bytes;
use mo_core::door::line_edit::{Event, LineEditor};
use russh::ChannelMsg;
use russh::server::Msg;
use russh::{ChannelReadHalf, ChannelWriteHalf};
use tokio::sync::mpsc;

/// Output chunks queued for one SSH channel before the console session stops pulling.
const OUT_QUEUE: usize = 16;

/// What the user's side sent.
#[derive(Debug)]
pub enum TermInput {
    /// Keystrokes or piped bytes.
    Data(Bytes),
    /// The terminal was resized.
    Resize { cols: u16, rows: u16 },
    /// The client closed its input or the channel.
    Closed,
}

/// One SSH channel as a terminal.
pub struct Term {
    rd: ChannelReadHalf,
    out: mpsc::Sender<Bytes>,
    writer: tokio::task::JoinHandle<ChannelWriteHalf<Msg>>,
    /// The client asked for a pty (interactive; we echo and use CR LF).
    pub pty: bool,
    /// The client's terminal size, if known.
    pub size: Option<(u16, u16)>,
    eof: bool,
}

fn clamp(v: u32) -> u16 {
    u16::try_from(v).unwrap_or(u16::MAX)
}

impl Term {
    /// Wrap a channel whose pty (if any) is already known.
    pub fn new(rd: ChannelReadHalf, wr: ChannelWriteHalf<Msg>, pty: Option<(u32, u32)>) -> Term {
        let (out, mut rx) = mpsc::channel::<Bytes>(OUT_QUEUE);
        let writer = tokio::spawn(async move {
            while let Some(b) = rx.recv().await {
                if wr.data_bytes(b).await.is_err() {
                    break;
                }
            }
            wr
        });
        Term {
            rd,
            out,
            writer,
            pty: pty.is_some(),
            size: pty.map(|(c, r)| (clamp(c), clamp(r))),
            eof: false,
        }
    }

    /// The next input event. Cancel-safe.
    pub async fn input(&mut self) -> TermInput {
        if self.eof {
            return std::future::pending().await;
        }
        loop {
            match self.rd.wait().await {
                Some(ChannelMsg::Data { data }) => return TermInput::Data(data),
                Some(ChannelMsg::WindowChange {
                    col_width,
                    row_height,
                    ..
                }) => {
                    let (cols, rows) = (clamp(col_width), clamp(row_height));
                    self.size = Some((cols, rows));
                    return TermInput::Resize { cols, rows };
                }
                Some(ChannelMsg::Eof) | Some(ChannelMsg::Close) | None => {
                    self.eof = true;
                    return TermInput::Closed;
                }
                Some(_) => {}
            }
        }
    }

    /// A sender for output; awaiting `reserve` on it is how a console session waits for room.
    pub fn out(&self) -> &mpsc::Sender<Bytes> {
        &self.out
    }

    /// Queue output (waits while the client is slow).
    pub async fn write(&self, data: impl Into<Bytes>) {
        let _ = self.out.send(data.into()).await;
    }

    /// Queue a line of text, ending it the way this terminal wants.
    pub async fn line(&self, text: &str) {
        self.write(self.crlf(text)).await;
    }

    /// `text` with every `\n` turned into CR LF (interactive terminals need both).
    pub fn crlf(&self, text: &str) -> Bytes {
        let mut s = String::with_capacity(text.len() + 8);
        for l in text.split_inclusive('\n') {
            match l.strip_suffix('\n') {
                Some(body) => {
                    s.push_str(body.strip_suffix('\r').unwrap_or(body));
                    s.push_str("\r\n");
                }
                None => s.push_str(l),
            }
        }
        if !text.ends_with('\n') {
            s.push_str("\r\n");
        }
        Bytes::from(s)
    }

    /// Flush all output, send the exit status and close the channel.
    pub async fn finish(self, status: u32) {
        let Term { out, writer, .. } = self;
        drop(out);
        if let Ok(wr) = writer.await {
            let _ = wr.exit_status(status).await;
            let _ = wr.eof().await;
            let _ = wr.close().await;
        }
    }

    /// Read one line with the line editor (pty sessions of the shell): the editor writes the
    /// prompt, echoes and redraws; `complete` answers Tab. Ctrl-C gives an empty line; `None`
    /// when the client went away (a half-typed line is dropped) or pressed Ctrl-D on an empty
    /// line. Bytes after the line stay in `pending`.
    pub async fn read_edited(
        &mut self,
        editor: &mut LineEditor,
        complete: &mut (dyn FnMut(&str) -> Vec<String> + Send),
        pending: &mut Vec<u8>,
    ) -> Option<String> {
        if let Some((cols, _)) = self.size {
            editor.set_width(cols);
        }
        let mut out = Vec::new();
        editor.start(&mut out);
        self.write(out).await;
        loop {
            let data = if pending.is_empty() {
                match self.input().await {
                    TermInput::Data(d) => d.to_vec(),
                    TermInput::Resize { cols, .. } => {
                        editor.set_width(cols);
                        continue;
                    }
                    // A line without its Enter is not run: the user never confirmed it.
                    TermInput::Closed => return None,
                }
            } else {
                std::mem::take(pending)
            };
            let mut out = Vec::new();
            let done = editor.feed_all(&data, complete, &mut out);
            if !out.is_empty() {
                self.write(out).await;
            }
            if let Some((event, rest)) = done {
                pending.extend_from_slice(rest);
                return match event {
                    Event::Line(line) => Some(line),
                    Event::Interrupt => Some(String::new()),
                    Event::Eof => None,
                };
            }
        }
    }

    /// Read one line of input, echoing it and handling backspace, Ctrl-U and Ctrl-C (which
    /// returns an empty line). `None` when the client went away.
    pub async fn read_line(&mut self, pending: &mut Vec<u8>) -> Option<String> {
        let mut line: Vec<u8> = Vec::new();
        loop {
            // Bytes left over from the last read come first.
            let data = if pending.is_empty() {
                match self.input().await {
                    TermInput::Data(d) => d.to_vec(),
                    TermInput::Resize { .. } => continue,
                    TermInput::Closed => {
                        return (!line.is_empty())
                            .then(|| String::from_utf8_lossy(&line).into_owned());
                    }
                }
            } else {
                std::mem::take(pending)
            };
            let mut echo = Vec::new();
            for (i, &b) in data.iter().enumerate() {
                match b {
                    b'\r' | b'\n' => {
                        // Swallow the LF of a CR LF pair.
                        let mut rest = &data[i + 1..];
                        if b == b'\r' && rest.first() == Some(&b'\n') {
                            rest = &rest[1..];
                        }
                        pending.extend_from_slice(rest);
                        if self.pty {
                            echo.extend_from_slice(b"\r\n");
                            self.write(echo).await;
                        }
                        return Some(String::from_utf8_lossy(&line).into_owned());
                    }
                    0x7f | 0x08 => {
                        let erased = line.pop().is_some();
                        if erased && self.pty {
                            echo.extend_from_slice(b"\x08 \x08");
                        }
                    }
                    0x15 => {
                        if self.pty {
                            for _ in 0..line.len() {
                                echo.extend_from_slice(b"\x08 \x08");
                            }
                        }
                        line.clear();
                    }
                    0x03 => {
                        if self.pty {
                            echo.extend_from_slice(b"^C\r\n");
                            self.write(echo).await;
                        }
                        pending.extend_from_slice(&data[i + 1..]);
                        return Some(String::new());
                    }
                    0x04 if line.is_empty() => return None,
                    b if (b >= 0x20 || b == b'\t') && line.len() < 4096 => {
                        line.push(b);
                        if self.pty {
                            echo.push(b);
                        }
                    }
                    _ => {}
                }
            }
            if !echo.is_empty() {
                self.write(echo).await;
            }
        }
    }
}
