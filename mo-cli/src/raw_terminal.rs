//! The local terminal in raw mode for as long as a console is bridged (`mo console`, and
//! `mo-agent tty`, which includes this file): keystrokes go through unchanged, escapes included.

use std::io;

/// The terminal in raw mode while it lives (if standard input is a terminal).
pub struct RawTerminal {
    saved: Option<rustix::termios::Termios>,
}

impl RawTerminal {
    /// Put standard input in raw mode (nothing happens if it is not a terminal).
    pub fn enter() -> RawTerminal {
        let stdin = io::stdin();
        if !rustix::termios::isatty(&stdin) {
            return RawTerminal { saved: None };
        }
        let Ok(saved) = rustix::termios::tcgetattr(&stdin) else {
            return RawTerminal { saved: None };
        };
        let mut raw = saved.clone();
        raw.make_raw();
        if rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &raw).is_err()
        {
            return RawTerminal { saved: None };
        }
        RawTerminal { saved: Some(saved) }
    }

    /// The terminal's size (columns, rows), when it is one.
    pub fn size(&self) -> Option<(u16, u16)> {
        self.saved.as_ref()?;
        let ws = rustix::termios::tcgetwinsize(io::stdout()).ok()?;
        (ws.ws_col > 0 && ws.ws_row > 0).then_some((ws.ws_col, ws.ws_row))
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let _ = rustix::termios::tcsetattr(
                io::stdin(),
                rustix::termios::OptionalActions::Now,
                saved,
            );
        }
    }
}
