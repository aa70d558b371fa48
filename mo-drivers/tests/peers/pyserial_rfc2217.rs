//! pyserial 3.5's RFC 2217 server (`serial.rfc2217.PortManager`, in the peers venv built by
//! scripts/setup.sh) in front of a pyserial `loop://` port, on a loopback port of its own.
//!
//! Why this peer and not ser2net: modem lines need a serial port with modem lines. ser2net's
//! only port here is a pty, which has none (TIOCMGET fails): ser2net reports "all lines down"
//! once after connect and never a change. pyserial's loop port is wired like a loopback plug —
//! CTS follows RTS and DSR follows DTR — so the client's own SET-CONTROL DTR/RTS commands make
//! pyserial's server report real modem-state changes; the script adds a carrier (DCD) line the
//! test switches through the data stream, as a modem or a device would. Lines the device
//! receives (after pyserial's telnet filter, so exactly what reached the "port"):
//!
//! - `carrier off` / `carrier on`: DCD goes down / up (reported on the next poll);
//! - `repeat`: the server sends NOTIFY-MODEMSTATE again with unchanged lines.
//!
//! Everything written to the port comes back (loop). Included with `#[path]`.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Stdio;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::peers::{STEP, terminate};

/// The server: one connection at a time, each on a fresh loop port (DTR, RTS and DCD up).
const SERVER: &str = r#"
import socket, sys, threading
import serial, serial.rfc2217
from serial.urlhandler.protocol_loop import Serial as Loop

class Line(Loop):
    carrier = True
    @property
    def cd(self):
        return self.carrier

class Net:
    def __init__(self, sock):
        self.sock, self.lock = sock, threading.Lock()
    def write(self, data):
        with self.lock:
            self.sock.sendall(data)

srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0))
srv.listen(1)
print(srv.getsockname()[1], flush=True)
while True:
    sock, _ = srv.accept()
    line = Line("loop://", timeout=0.05)
    net = Net(sock)
    pm = serial.rfc2217.PortManager(line, net)
    alive = [True]
    def port_to_net():
        try:
            while alive[0]:
                data = line.read(line.in_waiting or 1)
                if data:
                    net.write(b"".join(pm.escape(data)))
                pm.check_modem_lines()
        except OSError:
            pass
    pump = threading.Thread(target=port_to_net, daemon=True)
    pump.start()
    text = b""
    try:
        while True:
            data = sock.recv(4096)
            if not data:
                break
            data = b"".join(pm.filter(data))
            line.write(data)
            text += data
            while b"\r" in text:
                cmd, text = text.split(b"\r", 1)
                cmd = cmd.strip()
                if cmd == b"carrier off":
                    line.carrier = False
                elif cmd == b"carrier on":
                    line.carrier = True
                elif cmd == b"repeat":
                    pm.check_modem_lines(force_notification=True)
    except OSError:
        pass
    alive[0] = False
    pump.join()
    sock.close()
    line.close()
"#;

/// The peers venv's Python (scripts/setup.sh installs pyserial there).
pub fn python() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/peers-venv/bin/python")
}

/// A running pyserial RFC 2217 server.
pub struct PyserialRfc2217 {
    /// Its TCP port on 127.0.0.1.
    pub port: u16,
    child: Option<Child>,
}

impl PyserialRfc2217 {
    /// Start the server and wait until it listens.
    pub async fn start() -> Result<Self> {
        let python = python();
        if !python.exists() {
            bail!("{} is missing: run scripts/setup.sh", python.display());
        }
        let mut child = Command::new(&python)
            .arg("-c")
            .arg(SERVER)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting the pyserial RFC 2217 server")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut first = String::new();
        tokio::time::timeout(STEP, BufReader::new(stdout).read_line(&mut first))
            .await
            .context("the pyserial RFC 2217 server did not start (is pyserial installed?)")??;
        let port = first
            .trim()
            .parse()
            .with_context(|| format!("pyserial server printed {first:?}, not its port"))?;
        Ok(Self {
            port,
            child: Some(child),
        })
    }

    /// `rfc2217://127.0.0.1:PORT` followed by `query`.
    pub fn address(&self, query: &str) -> String {
        format!("rfc2217://127.0.0.1:{}{query}", self.port)
    }

    /// Stop the server (by its pid).
    pub async fn stop(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child).await?;
        }
        Ok(())
    }
}
