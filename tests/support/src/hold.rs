//! A TCP relay on loopback that can hold back what the server sends: a client behind it keeps
//! its connection (and may still send) but hears nothing until [`HoldProxy::release`], then
//! everything in order. Used to make one cluster node hear a change of the site late.
//!
//! The relay cuts what a NATS server sends into its protocol messages (`MSG`/`HMSG` with their
//! payload, or one line), so it can also hold back just one of them ([`HoldProxy::hold_one`]):
//! an answer that arrives after the client gave up waiting, while everything else passes.

use std::io::{Read as _, Write as _};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::{Error, Result};

/// What the relay keeps of what the server sends.
#[derive(Debug, Default)]
enum Mode {
    /// Nothing: everything passes.
    #[default]
    Pass,
    /// Everything, in order.
    All,
    /// The next message that contains these bytes (and only it).
    One(Vec<u8>),
    /// The message of [`Mode::One`] is kept; the others pass.
    Caught,
}

/// The relay: `127.0.0.1:port()` leads to the upstream port.
pub struct HoldProxy {
    port: u16,
    mode: Arc<Mutex<Mode>>,
    stop: Arc<AtomicBool>,
}

impl HoldProxy {
    /// Relay a free loopback port to `127.0.0.1:upstream`, every connection, until dropped.
    pub fn start(upstream: u16) -> Result<HoldProxy> {
        let listener =
            TcpListener::bind("127.0.0.1:0").map_err(|e| Error::io("bind the relay", e))?;
        let port = listener
            .local_addr()
            .map_err(|e| Error::io("the relay's address", e))?
            .port();
        listener
            .set_nonblocking(true)
            .map_err(|e| Error::io("the relay's listener", e))?;
        let mode = Arc::new(Mutex::new(Mode::Pass));
        let stop = Arc::new(AtomicBool::new(false));
        let (m, s) = (mode.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let _ = client.set_nonblocking(false);
                        if let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) {
                            relay(client, server, m.clone(), s.clone());
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Ok(HoldProxy { port, mode, stop })
    }

    /// The relay's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// From now on keep what the server sends.
    pub fn hold(&self) {
        self.set(Mode::All);
    }

    /// Keep the next message the server sends that contains `pattern` (on any connection), and
    /// only that one; everything else passes.
    pub fn hold_one(&self, pattern: &str) {
        self.set(Mode::One(pattern.as_bytes().to_vec()));
    }

    /// Whether the message [`HoldProxy::hold_one`] waits for came and is kept.
    pub fn caught(&self) -> bool {
        self.mode.lock().is_ok_and(|m| matches!(*m, Mode::Caught))
    }

    /// Pass on what was kept, and everything after.
    pub fn release(&self) {
        self.set(Mode::Pass);
    }

    fn set(&self, mode: Mode) {
        if let Ok(mut m) = self.mode.lock() {
            *m = mode;
        }
    }
}

impl Drop for HoldProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.set(Mode::Pass);
    }
}

/// The length of the first whole protocol message the server sent at the start of `buf`
/// (`MSG`/`HMSG` with its payload, whose length is the line's last field, or one line), once all
/// of it is there.
fn message_len(buf: &[u8]) -> Option<usize> {
    let eol = buf.windows(2).position(|w| w == b"\r\n")? + 2;
    let line = &buf[..eol - 2];
    let payload = if line.starts_with(b"MSG ") || line.starts_with(b"HMSG ") {
        std::str::from_utf8(line)
            .ok()
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|n| n.parse::<usize>().ok())
            .map_or(0, |n| n + 2)
    } else {
        0
    };
    (buf.len() >= eol + payload).then_some(eol + payload)
}

/// Whether `mode` keeps `message` (and note it when it is the one awaited).
fn keeps(mode: &Mutex<Mode>, message: &[u8]) -> bool {
    let Ok(mut mode) = mode.lock() else {
        return false;
    };
    match &*mode {
        Mode::Pass | Mode::Caught => false,
        Mode::All => true,
        Mode::One(pattern) => {
            let found = message.windows(pattern.len()).any(|w| w == &pattern[..]);
            if found {
                *mode = Mode::Caught;
            }
            found
        }
    }
}

/// Copy both ways: client to server at once, server to client unless held.
fn relay(client: TcpStream, server: TcpStream, mode: Arc<Mutex<Mode>>, stop: Arc<AtomicBool>) {
    let (Ok(mut c_read), Ok(mut s_write)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let stop_up = stop.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 16384];
        while !stop_up.load(Ordering::SeqCst) {
            match c_read.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if s_write.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = s_write.shutdown(Shutdown::Both);
    });
    let (mut s_read, mut c_write) = (server, client);
    std::thread::spawn(move || {
        let _ = s_read.set_read_timeout(Some(Duration::from_millis(20)));
        // Read but not yet a whole message; kept back; to pass on now.
        let (mut partial, mut kept, mut out) = (Vec::new(), Vec::new(), Vec::new());
        let mut buf = [0u8; 16384];
        while !stop.load(Ordering::SeqCst) {
            match s_read.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => partial.extend_from_slice(&buf[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => break,
            }
            let mut at = 0;
            while let Some(len) = message_len(&partial[at..]) {
                let message = &partial[at..at + len];
                if keeps(&mode, message) {
                    kept.extend_from_slice(message);
                } else {
                    out.extend_from_slice(message);
                }
                at += len;
            }
            partial.drain(..at);
            if !kept.is_empty() && mode.lock().is_ok_and(|m| matches!(*m, Mode::Pass)) {
                kept.append(&mut out);
                out = std::mem::take(&mut kept);
            }
            if !out.is_empty() {
                if c_write.write_all(&out).is_err() {
                    break;
                }
                out.clear();
            }
        }
        let _ = c_write.shutdown(Shutdown::Both);
    });
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_cut_whole() {
        let text = b"PING\r\nMSG a.b 1 _INBOX.x 5\r\nhe\r\no\r\nHMSG c 2 12 14\r\nNATS/1.0\r\n\r\nhi\r\n+OK\r\n";
        let mut at = 0;
        let mut cut = Vec::new();
        while let Some(n) = message_len(&text[at..]) {
            cut.push(String::from_utf8_lossy(&text[at..at + n]).into_owned());
            at += n;
        }
        assert_eq!(
            cut,
            [
                "PING\r\n",
                "MSG a.b 1 _INBOX.x 5\r\nhe\r\no\r\n",
                "HMSG c 2 12 14\r\nNATS/1.0\r\n\r\nhi\r\n",
                "+OK\r\n"
            ]
        );
        assert_eq!(at, text.len());
        assert_eq!(message_len(b"MSG a 1 5\r\nhel"), None);
    }

    #[test]
    fn one_message_is_kept_the_others_pass() {
        let mode = Mutex::new(Mode::One(b"\"stream\":\"s\"".to_vec()));
        assert!(!keeps(&mode, b"MSG a 1 2\r\nhi\r\n"));
        assert!(keeps(&mode, b"MSG a 1 13\r\n{\"stream\":\"s\"}\r\n"));
        assert!(!keeps(&mode, b"MSG a 1 13\r\n{\"stream\":\"s\"}\r\n"));
        assert!(matches!(*mode.lock().unwrap(), Mode::Caught));
    }
}
