//! The local terminal as a console's keyboard and screen: [`interact`], pexpect's `interact()`
//! for the Python and Node bindings (`mo console` has its own, with the daemon's commands).
//!
//! Standard input goes into raw mode (if it is a terminal) and is restored on the way out, on
//! every path. Keys are read by a thread that polls standard input and stops within
//! [`POLL_INTERVAL`] of the end, without reading a byte more: after the escape, the program's
//! own `input()` or `readline` gets what is typed next. Keys pass through mo's escape parser
//! ([`mo_core::escape`], `^Ec.` by default, configurable): `.` ends, `l` 0–9 sends a break, `n`
//! writes a note, `?` shows the help; the other escape commands need `mo console`.

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mo_core::console::terminal_notice;
use mo_core::escape::{Command, EscapeConfig, EscapeParser, Input, help_text};
use mo_core::facade::{ConsoleHandle, Output};
use mo_core::{Error, Result};
use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::termios::{OptionalActions, Termios, isatty};
use tokio::sync::mpsc;

/// How often the key reader looks whether it should stop.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Hand the local terminal to `console` until the escape (`escape`'s prefix, then `.`), the end
/// of standard input, or the end of the console. Output goes to standard output as it comes.
pub async fn interact(console: &ConsoleHandle, escape: EscapeConfig) -> Result<()> {
    let raw = RawTerminal::enter();
    if let Some((cols, rows)) = raw.size() {
        // A console that takes no window size still works.
        let _ = console.resize(cols, rows).await;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, mut keys) = mpsc::channel::<Vec<u8>>(16);
    let reader = {
        let stop = Arc::clone(&stop);
        std::thread::Builder::new()
            .name("mo-interact".into())
            .spawn(move || read_keys(&tx, &stop))
            .map_err(|e| Error::io("starting the key reader", e))?
    };
    let result = relay(console, &mut keys, escape).await;
    stop.store(true, Ordering::SeqCst);
    drop(keys);
    let _ = tokio::task::spawn_blocking(move || reader.join()).await;
    drop(raw);
    result
}

/// Keys and console output until the escape or an end.
async fn relay(
    console: &ConsoleHandle,
    keys: &mut mpsc::Receiver<Vec<u8>>,
    escape: EscapeConfig,
) -> Result<()> {
    let mut parser = EscapeParser::new(escape);
    loop {
        tokio::select! {
            typed = keys.recv() => {
                let Some(typed) = typed else {
                    return Ok(());
                };
                for input in parser.feed(&typed) {
                    if !act(console, &mut parser, input).await? {
                        return Ok(());
                    }
                }
            }
            item = console.read() => match item {
                Output::Data(bytes) => show(&bytes),
                Output::Closed(_) => return Ok(()),
                other => {
                    if let Some(text) = other.notice_text() {
                        show(&terminal_notice(&text));
                    }
                }
            },
        }
    }
}

/// Carry out one input; `false` for the escape that ends.
async fn act(console: &ConsoleHandle, parser: &mut EscapeParser, input: Input) -> Result<bool> {
    match input {
        Input::Data(bytes) => console.write(&bytes).await?,
        Input::Echo(bytes) => show(&bytes),
        Input::Error(message) => show(&terminal_notice(&message)),
        Input::Command(Command::Disconnect) => return Ok(false),
        Input::Command(Command::Break(number)) => {
            let said = match console.send_break(number).await {
                Ok(sent) => sent,
                Err(e) => e.to_string(),
            };
            show(&terminal_notice(&said));
        }
        Input::Command(Command::Note(text)) => {
            let said = match console.note(&text).await {
                Ok(()) => "note written".to_string(),
                Err(e) => e.to_string(),
            };
            show(&terminal_notice(&said));
        }
        Input::Command(Command::Help) => {
            show(help_text(parser.config()).replace('\n', "\r\n").as_bytes());
        }
        Input::Command(_) => {
            parser.reset();
            show(&terminal_notice(
                "not here: this escape command needs `mo console`",
            ));
        }
        _ => {}
    }
    Ok(true)
}

/// Write to standard output now.
fn show(bytes: &[u8]) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(bytes);
    let _ = out.flush();
}

/// Read standard input into `keys` until `stop`, its end, or an error; never a read after
/// `stop` was seen.
fn read_keys(keys: &mpsc::Sender<Vec<u8>>, stop: &AtomicBool) {
    let stdin = std::io::stdin();
    let interval = Timespec {
        tv_sec: 0,
        tv_nsec: i64::try_from(POLL_INTERVAL.as_nanos()).unwrap_or(50_000_000),
    };
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::SeqCst) {
        let mut fds = [PollFd::new(&stdin, PollFlags::IN)];
        match poll(&mut fds, Some(&interval)) {
            Ok(0) | Err(rustix::io::Errno::INTR) => continue,
            Ok(_) => {}
            Err(_) => return,
        }
        if stop.load(Ordering::SeqCst) {
            return;
        }
        match rustix::io::read(&stdin, &mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if keys.blocking_send(buf[..n].to_vec()).is_err() {
                    return;
                }
            }
            Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => {}
            Err(_) => return,
        }
    }
}

/// Standard input in raw mode while it lives (if it is a terminal); `mo console` uses it too.
#[derive(Debug)]
pub struct RawTerminal {
    saved: Option<Termios>,
}

impl RawTerminal {
    /// Put standard input into raw mode if it is a terminal (else nothing changes).
    pub fn enter() -> RawTerminal {
        let stdin = std::io::stdin();
        if !isatty(&stdin) {
            return RawTerminal { saved: None };
        }
        let Ok(saved) = rustix::termios::tcgetattr(&stdin) else {
            return RawTerminal { saved: None };
        };
        let mut raw = saved.clone();
        raw.make_raw();
        if rustix::termios::tcsetattr(&stdin, OptionalActions::Now, &raw).is_err() {
            return RawTerminal { saved: None };
        }
        RawTerminal { saved: Some(saved) }
    }

    /// The terminal's columns and rows; `None` when standard input is no terminal.
    pub fn size(&self) -> Option<(u16, u16)> {
        self.saved.as_ref()?;
        let ws = rustix::termios::tcgetwinsize(std::io::stdout()).ok()?;
        (ws.ws_col > 0 && ws.ws_row > 0).then_some((ws.ws_col, ws.ws_row))
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let _ = rustix::termios::tcsetattr(std::io::stdin(), OptionalActions::Now, saved);
        }
    }
}
