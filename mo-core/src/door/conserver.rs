//! The client protocol of conserver 8.2 (what its stock `console` command speaks), parsed without
//! I/O, for the daemon's conserver door (`mod --conserver ADDR`, docs/conserver.md).
//!
//! A connection starts in line mode: the server greets with `ok`, the client sends commands
//! (`login USER`, the password, `call NAME`, `groups`, `examine`, …) one per line, each
//! answered with one or more lines ([`Request`], read by [`LineReader`]). After a successful
//! `call` on a group port the same connection carries the console: keystrokes go to the
//! device except the escape sequence (`Ctrl-E c` by default) and the command after it
//! ([`Keys`]). Both directions quote the byte 0xff (telnet's IAC) by doubling it ([`Unquote`],
//! [`quote`]).
//!
//! ```
//! use mo_core::door::conserver::{Key, Keys, LineReader, Request, Unquote};
//!
//! let mut unquote = Unquote::default();
//! let mut lines = LineReader::default();
//! lines.push(&unquote.feed(b"login alice\r\ncall web01\r\n"));
//! assert_eq!(lines.next_line().unwrap().as_deref(), Some("login alice"));
//! let call = Request::parse(&lines.next_line().unwrap().unwrap());
//! assert_eq!(call, Request::Call("web01".into()));
//!
//! let mut keys = Keys::new(0x05, b'c');
//! keys.set_may_write(true);
//! let got = keys.feed(b"ls\r\x05c.");
//! assert_eq!(got[0], Key::Data(b"ls\r".to_vec()));
//! assert_eq!(got.last(), Some(&Key::Command(b'.')));
//! ```

use super::BadInput;

/// The telnet IAC byte: quoted by doubling in both directions.
pub const IAC: u8 = 0xff;

/// The longest command line (or password) accepted in line mode.
pub const MAX_LINE: usize = 1024;

/// The longest note text gathered after `Ctrl-E c n`.
pub const MAX_NOTE: usize = 512;

/// The version number the server reports to `Ctrl-E c` 0xD6 (conserver 8.2.7's encoding,
/// `major * 1000000 + minor * 1000 + patch`), so that the client uses the 8.2 features.
pub const PROTOCOL_VERSION: u32 = 8_002_007;

/// Removes the IAC quoting from what a client sends: `IAC IAC` is one 0xff byte, `IAC` and any
/// other byte is a signal for the server (the client sends `IAC .` when a local command ends)
/// and is dropped. Keeps state across calls, so an IAC at the end of one read pairs with the
/// first byte of the next.
#[derive(Debug, Default, Clone)]
pub struct Unquote {
    saw_iac: bool,
}

impl Unquote {
    /// The plain bytes of `data`.
    pub fn feed(&mut self, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len());
        for &b in data {
            if self.saw_iac {
                self.saw_iac = false;
                if b == IAC {
                    out.push(IAC);
                }
            } else if b == IAC {
                self.saw_iac = true;
            } else {
                out.push(b);
            }
        }
        out
    }
}

/// `data` with every 0xff doubled, as the client expects it from the server.
pub fn quote(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 8);
    for &b in data {
        out.push(b);
        if b == IAC {
            out.push(IAC);
        }
    }
    out
}

/// Collects line-mode input (already unquoted) into lines ending in `\n`, without the `\r\n`.
#[derive(Debug, Default, Clone)]
pub struct LineReader {
    buf: Vec<u8>,
}

impl LineReader {
    /// Add bytes that arrived.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete line (invalid UTF-8 replaced), `None` until one has arrived, or an
    /// error when the line grows past [`MAX_LINE`] bytes.
    pub fn next_line(&mut self) -> Result<Option<String>, BadInput> {
        let Some(end) = self.buf.iter().position(|&b| b == b'\n') else {
            if self.buf.len() > MAX_LINE {
                return Err(too_long(self.buf.len()));
            }
            return Ok(None);
        };
        if end > MAX_LINE {
            return Err(too_long(end));
        }
        let mut line: Vec<u8> = self.buf.drain(..=end).collect();
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        Ok(Some(String::from_utf8_lossy(&line).into_owned()))
    }

    /// What arrived after the last complete line: the first keystrokes once the connection
    /// switches to console mode.
    pub fn take_rest(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }
}

fn too_long(len: usize) -> BadInput {
    BadInput {
        what: "a conserver protocol line",
        reason: format!("line too long ({len} bytes without a newline; at most {MAX_LINE})"),
    }
}

/// One line-mode command of the client (the password line is read as it is, not parsed).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Request {
    /// `ssl`: start TLS.
    Ssl,
    /// `gssapi SIZE`: log in with Kerberos.
    Gssapi,
    /// `login USER` (`None`: no user named).
    Login(Option<String>),
    /// `exit`: say goodbye and close.
    Exit,
    /// `help`.
    Help,
    /// `call NAME`: where the console is (master), or attach to it (group).
    Call(String),
    /// `groups`: the group ports.
    Groups,
    /// `master`: the master servers.
    Master,
    /// `pid`.
    Pid,
    /// `version`.
    Version,
    /// `info [NAME]` (`console -i`).
    Info(Option<String>),
    /// `examine [NAME]` (`console -x`).
    Examine(Option<String>),
    /// `group [NAME]` (`console -w`).
    Group(Option<String>),
    /// `hosts [NAME]` (`console -u`).
    Hosts(Option<String>),
    /// An administrative command mo does not offer through this door (`quit`, `reconfig`,
    /// `up`, `newlogs`, `restart`, `broadcast`, `textmsg`, `disconnect`).
    Admin(String),
    /// Anything else, or a command that needs an argument and has none (the word as sent).
    Unknown(String),
}

impl Request {
    /// Read one command line. Never fails: what is not a command is [`Request::Unknown`].
    pub fn parse(line: &str) -> Request {
        let line = line.trim();
        let (word, arg) = match line.find([' ', ':']) {
            Some(i) => (&line[..i], line[i + 1..].trim()),
            None => (line, ""),
        };
        let arg = (!arg.is_empty()).then(|| arg.to_string());
        match word {
            "ssl" => Request::Ssl,
            "gssapi" => Request::Gssapi,
            "login" => Request::Login(arg),
            "exit" => Request::Exit,
            "help" => Request::Help,
            "call" => match arg {
                Some(name) => Request::Call(name),
                None => Request::Unknown(word.to_string()),
            },
            "groups" => Request::Groups,
            "master" => Request::Master,
            "pid" => Request::Pid,
            "version" => Request::Version,
            "info" => Request::Info(arg),
            "examine" => Request::Examine(arg),
            "group" => Request::Group(arg),
            "hosts" => Request::Hosts(arg),
            "quit" | "reconfig" | "up" | "newlogs" | "restart" | "broadcast" | "textmsg"
            | "disconnect" => Request::Admin(word.to_string()),
            other => Request::Unknown(other.chars().take(64).collect()),
        }
    }
}

/// What the keystrokes of an attached client mean.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Key {
    /// Bytes for the device (if the viewer may write).
    Data(Vec<u8>),
    /// Text for the client only (the `[` that opens a command's answer, prompts, echo).
    Reply(Vec<u8>),
    /// The escape sequence and this command byte (`.`, `a`, `f`, `s`, `w`, `=`, `;`, …) that
    /// the door answers; `P` and `R` are followed by [`Key::Playback`] / [`Key::Replay`].
    Command(u8),
    /// `Ctrl-E c l N`: send break sequence N (0–35: `0`–`9`, `a`–`z`).
    Break(u8),
    /// `Ctrl-E c l ?`: list the break sequences.
    ListBreaks,
    /// `Ctrl-E c n TEXT`: a note for the log.
    Note(String),
    /// `Ctrl-E c P N`: set the playback length (`None`: show it).
    Playback(Option<u16>),
    /// `Ctrl-E c R N`: set the replay length (`None`: show it).
    Replay(Option<u16>),
    /// `Ctrl-E c \ OOO`: this byte, given in octal, for the device.
    Quote(u8),
    /// The first byte after [`Keys::suspend`]: the client is back (it sends a newline when it
    /// returns from `Ctrl-E c ;` or `Ctrl-E c z`). The byte itself is not for the device.
    Resume,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Normal,
    Esc1,
    Cmd,
    Halt,
    Note,
    Number { replay: bool },
    Octal,
    RedefAttn,
    RedefEsc,
    Suspended,
}

/// The escape-sequence machine of an attached client, as conserver runs it: the escape bytes
/// (`Ctrl-E` `c` by default, changed with `Ctrl-E c e`), then one command byte; a few commands
/// read more (`l` a break number, `n` a note, `P`/`R` a number, `\` three octal digits).
#[derive(Debug, Clone)]
pub struct Keys {
    attn: u8,
    esc: u8,
    state: State,
    may_write: bool,
    gathered: Vec<u8>,
}

impl Keys {
    /// A machine for the escape sequence `attn` `esc` (conserver's default: 0x05, `c`).
    pub fn new(attn: u8, esc: u8) -> Keys {
        Keys {
            attn,
            esc,
            state: State::Normal,
            may_write: false,
            gathered: Vec::new(),
        }
    }

    /// Whether the viewer holds write access now (break and quote need it).
    pub fn set_may_write(&mut self, may: bool) {
        self.may_write = may;
    }

    /// The client went away for a while (`Ctrl-E c ;` to look for another console, `Ctrl-E c z`
    /// to stop itself): the next byte it sends is [`Key::Resume`], as conserver's suspended
    /// state reads it.
    pub fn suspend(&mut self) {
        self.state = State::Suspended;
    }

    /// The escape sequence in use.
    pub fn escape(&self) -> (u8, u8) {
        (self.attn, self.esc)
    }

    /// Read keystrokes (already unquoted); consecutive device bytes come as one [`Key::Data`].
    pub fn feed(&mut self, data: &[u8]) -> Vec<Key> {
        let mut out = Vec::new();
        let mut pending: Vec<u8> = Vec::new();
        for &b in data {
            match self.state {
                State::Normal => {
                    if b == self.attn {
                        self.state = State::Esc1;
                    } else {
                        pending.push(b);
                    }
                }
                State::Esc1 => {
                    if b == self.esc {
                        flush(&mut pending, &mut out);
                        out.push(Key::Reply(b"[".to_vec()));
                        self.state = State::Cmd;
                    } else if b == self.attn {
                        pending.push(self.attn);
                    } else {
                        pending.push(self.attn);
                        pending.push(b);
                        self.state = State::Normal;
                    }
                }
                State::Cmd => {
                    self.state = State::Normal;
                    self.command(b, &mut out);
                }
                State::Halt => {
                    self.state = State::Normal;
                    match b {
                        b'?' => out.push(Key::ListBreaks),
                        b'0'..=b'9' => out.push(Key::Break(b - b'0')),
                        b'a'..=b'z' => out.push(Key::Break(b - b'a' + 10)),
                        _ => out.push(Key::Reply(b"aborted]\r\n".to_vec())),
                    }
                }
                State::Note => self.note(b, &mut out),
                State::Number { replay } => self.number(b, replay, &mut out),
                State::Octal => self.octal(b, &mut out),
                State::RedefAttn => {
                    self.attn = b;
                    out.push(Key::Reply(format!("{} ", fmt_ctl(b)).into_bytes()));
                    self.state = State::RedefEsc;
                }
                State::Suspended => {
                    flush(&mut pending, &mut out);
                    self.state = State::Normal;
                    out.push(Key::Resume);
                }
                State::RedefEsc => {
                    self.esc = b;
                    out.push(Key::Reply(format!("{}  ok]\r\n", fmt_ctl(b)).into_bytes()));
                    self.state = State::Normal;
                }
            }
        }
        flush(&mut pending, &mut out);
        out
    }

    fn command(&mut self, b: u8, out: &mut Vec<Key>) {
        match b {
            b'l' if !self.may_write => out.push(Key::Reply(b"attach to send break]\r\n".to_vec())),
            b'l' => {
                out.push(Key::Reply(b"halt ".to_vec()));
                self.state = State::Halt;
            }
            b'n' => {
                out.push(Key::Reply(b"Enter note: ".to_vec()));
                self.gathered.clear();
                self.state = State::Note;
            }
            b'P' | b'R' => {
                out.push(Key::Command(b));
                self.gathered.clear();
                self.state = State::Number { replay: b == b'R' };
            }
            b'\\' if !self.may_write => {
                out.push(Key::Reply(b"attach to send character]\r\n".to_vec()));
            }
            b'\\' => {
                out.push(Key::Reply(b"quote \\".to_vec()));
                self.gathered.clear();
                self.state = State::Octal;
            }
            b'e' => {
                out.push(Key::Reply(b"redef: ".to_vec()));
                self.state = State::RedefAttn;
            }
            other => out.push(Key::Command(other)),
        }
    }

    fn note(&mut self, b: u8, out: &mut Vec<Key>) {
        match b {
            b'\r' | b'\n' => {
                let text = String::from_utf8_lossy(&self.gathered).into_owned();
                self.gathered.clear();
                self.state = State::Normal;
                out.push(Key::Reply(b"]\r\n".to_vec()));
                out.push(Key::Note(text));
            }
            0x08 | 0x7f => self.rub_out(out),
            b if b >= b' ' && self.gathered.len() < MAX_NOTE => {
                self.gathered.push(b);
                out.push(Key::Reply(vec![b]));
            }
            _ => {}
        }
    }

    fn number(&mut self, b: u8, replay: bool, out: &mut Vec<Key>) {
        match b {
            b'\r' | b'\n' => {
                let value = std::str::from_utf8(&self.gathered)
                    .ok()
                    .and_then(|s| s.parse::<u16>().ok());
                self.gathered.clear();
                self.state = State::Normal;
                out.push(if replay {
                    Key::Replay(value)
                } else {
                    Key::Playback(value)
                });
            }
            b'0'..=b'9' if self.gathered.len() < 4 => {
                self.gathered.push(b);
                out.push(Key::Reply(vec![b]));
            }
            0x08 | 0x7f => self.rub_out(out),
            _ => {}
        }
    }

    /// Backspace while gathering: drop the last byte and erase it on the client's screen.
    fn rub_out(&mut self, out: &mut Vec<Key>) {
        if self.gathered.pop().is_some() {
            out.push(Key::Reply(b"\x08 \x08".to_vec()));
        }
    }

    fn octal(&mut self, b: u8, out: &mut Vec<Key>) {
        if !(b'0'..=b'7').contains(&b) {
            self.gathered.clear();
            self.state = State::Normal;
            out.push(Key::Reply(b" aborted]\r\n".to_vec()));
            return;
        }
        self.gathered.push(b);
        out.push(Key::Reply(vec![b]));
        if self.gathered.len() == 3 {
            let value = self
                .gathered
                .iter()
                .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
            self.gathered.clear();
            self.state = State::Normal;
            out.push(Key::Reply(b"]".to_vec()));
            out.push(Key::Quote((value & 0xff) as u8));
        }
    }
}

fn flush(pending: &mut Vec<u8>, out: &mut Vec<Key>) {
    if !pending.is_empty() {
        out.push(Key::Data(std::mem::take(pending)));
    }
}

/// A byte as conserver shows it: `^E` for control characters, `^?` for DEL, `\ooo` for bytes
/// with the high bit set, the character itself otherwise.
pub fn fmt_ctl(b: u8) -> String {
    match b {
        0..=0x1f => format!("^{}", char::from(b + 0x40)),
        0x7f => "^?".to_string(),
        0x80..=0xff => format!("\\{b:03o}"),
        _ => char::from(b).to_string(),
    }
}

/// conserver's idle-time column: ` H:MM` under a day, ` 1 day`, `N days`.
pub fn idle_time(secs: u64) -> String {
    let minutes = secs / 60;
    let hours = minutes / 60;
    match hours {
        h if h < 24 => format!(" {h:2}:{:02}", minutes % 60),
        h if h < 48 => " 1 day".to_string(),
        h if h < 240 => format!("{} days", h / 24),
        h => format!("{:2}days", h / 24),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn unquote_pairs_across_reads() {
        let mut u = Unquote::default();
        assert_eq!(u.feed(b"a\xff"), b"a");
        assert_eq!(u.feed(b"\xffb\xff.c"), b"\xffbc");
        assert_eq!(quote(b"\xffx"), b"\xff\xffx");
    }

    #[test]
    fn lines_and_limits() {
        let mut r = LineReader::default();
        r.push(b"login bob\r\npass");
        assert_eq!(r.next_line().unwrap().as_deref(), Some("login bob"));
        assert_eq!(r.next_line().unwrap(), None);
        assert_eq!(r.take_rest(), b"pass");
        r.push(&[b'x'; MAX_LINE + 1]);
        let e = r.next_line().unwrap_err();
        assert!(e.reason.contains("line too long"), "{e}");
    }

    #[test]
    fn requests() {
        assert_eq!(Request::parse("login"), Request::Login(None));
        assert_eq!(Request::parse("call"), Request::Unknown("call".into()));
        assert_eq!(Request::parse("examine"), Request::Examine(None));
        assert_eq!(
            Request::parse("group  web01 "),
            Request::Group(Some("web01".into()))
        );
        assert_eq!(Request::parse("quit"), Request::Admin("quit".into()));
        assert_eq!(Request::parse("é:x"), Request::Unknown("é".into()));
    }

    #[test]
    fn escapes() {
        let mut k = Keys::new(0x05, b'c');
        assert_eq!(
            k.feed(b"\x05x\x05\x05"),
            vec![Key::Data(b"\x05x\x05".to_vec())]
        );
        assert_eq!(
            k.feed(b"c="),
            vec![Key::Reply(b"[".to_vec()), Key::Command(b'=')]
        );
        assert_eq!(
            k.feed(b"\x05cl1")[1],
            Key::Reply(b"attach to send break]\r\n".to_vec())
        );
        k.set_may_write(true);
        assert_eq!(k.feed(b"\x05clb").last(), Some(&Key::Break(11)));
        assert_eq!(k.feed(b"\x05cnhi\r").last(), Some(&Key::Note("hi".into())));
        assert_eq!(k.feed(b"\x05cR12\r").last(), Some(&Key::Replay(Some(12))));
        assert_eq!(k.feed(b"\x05c\\101").last(), Some(&Key::Quote(b'A')));
        k.feed(b"\x05ce\x01b");
        assert_eq!(k.escape(), (0x01, b'b'));
        assert_eq!(k.feed(b"\x01b.").last(), Some(&Key::Command(b'.')));
        assert_eq!(fmt_ctl(0x05), "^E");
        assert_eq!(idle_time(3 * 3600 + 7 * 60), "  3:07");
    }

    #[test]
    fn suspend_and_resume() {
        let mut k = Keys::new(0x05, b'c');
        assert_eq!(k.feed(b"\x05c;").last(), Some(&Key::Command(b';')));
        k.suspend();
        // The newline the client sends on its return resumes; what follows is typing again.
        assert_eq!(
            k.feed(b"\nab\x05cz"),
            vec![
                Key::Resume,
                Key::Data(b"ab".to_vec()),
                Key::Reply(b"[".to_vec()),
                Key::Command(b'z'),
            ]
        );
        k.suspend();
        assert_eq!(k.feed(b""), vec![]);
        assert_eq!(k.feed(b"x"), vec![Key::Resume]);
    }
}
