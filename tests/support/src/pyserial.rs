//! pyserial 3.5's RFC 2217 server (`serial.rfc2217.PortManager`, in the peers venv built by
//! scripts/setup.sh) in front of a `loop://` port, on a free loopback port: the loop is wired like a
//! loopback plug (DSR follows DTR, CTS follows RTS), the line `carrier off`/`carrier on` written to
//! the port switches DCD, and a BREAK makes the port print `BREAK-SEEN`. Everything written to the
//! port comes back. One connection at a time, each on a fresh loop port. (mo-drivers' own tests
//! start the same server from `mo-drivers/tests/peers/pyserial_rfc2217.rs`, asynchronously.)

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::{Error, Peer, Result, WAIT, read_lossy, venv_bin};

/// The server script; it prints `port N` once it listens.
pub const PYSERIAL_RFC2217_SERVER: &str = r#"
import socket, threading
import serial, serial.rfc2217
from serial.urlhandler.protocol_loop import Serial as Loop

class Line(Loop):
    carrier = True
    @property
    def cd(self):
        return self.carrier
    def _update_break_state(self):
        if self._break_state:
            self.write(b"BREAK-SEEN\r\n")

srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0))
srv.listen(1)
print("port", srv.getsockname()[1], flush=True)
while True:
    sock, _ = srv.accept()
    line = Line("loop://", timeout=0.05)
    lock = threading.Lock()
    class Net:
        def write(self, data):
            with lock:
                sock.sendall(data)
    pm = serial.rfc2217.PortManager(line, Net())
    alive = [True]
    def pump():
        try:
            while alive[0]:
                data = line.read(line.in_waiting or 1)
                if data:
                    Net().write(b"".join(pm.escape(data)))
                pm.check_modem_lines()
        except OSError:
            pass
    t = threading.Thread(target=pump, daemon=True)
    t.start()
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
    except OSError:
        pass
    alive[0] = False
    t.join()
    sock.close()
    line.close()
"#;

/// A running pyserial RFC 2217 server on `loop://`; killed by PID when dropped.
#[derive(Debug)]
pub struct PyserialRfc2217 {
    /// Its TCP port on 127.0.0.1.
    pub port: u16,
    _peer: Peer,
}

impl PyserialRfc2217 {
    /// Start the server (script and log in `dir`) and wait until it listens.
    pub fn start(dir: &Path) -> Result<Self> {
        let python = venv_bin("python");
        if !python.exists() {
            return Err(Error::Check(format!(
                "{} is missing: run scripts/setup.sh (it installs pyserial in the peers venv)",
                python.display()
            )));
        }
        let script = dir.join("rfc2217_server.py");
        std::fs::write(&script, PYSERIAL_RFC2217_SERVER)
            .map_err(|e| Error::io("write the RFC 2217 server script", e))?;
        let mut cmd = Command::new(&python);
        cmd.arg(&script).stdin(Stdio::null());
        let log = dir.join("rfc2217.log");
        let peer = Peer::spawn("pyserial-rfc2217", cmd, Some(&log))?;
        let deadline = Instant::now() + WAIT;
        loop {
            let text = read_lossy(&log);
            if let Some(port) = text
                .lines()
                .find_map(|l| l.strip_prefix("port ")?.trim().parse().ok())
            {
                return Ok(PyserialRfc2217 { port, _peer: peer });
            }
            if Instant::now() > deadline {
                return Err(Error::PeerStart {
                    name: "pyserial-rfc2217".into(),
                    reason: format!(
                        "no port printed within {WAIT:?} (is pyserial installed? run scripts/setup.sh)"
                    ),
                    log: text,
                });
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}
