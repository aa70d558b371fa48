//! Per-console TCP ports (issue 18 item 2, docs/listen-ports.md): `mo device add NAME URL
//! --listen ADDR:PORT/MODE` makes the daemon serve the console on its own port, like ser2net.
//! Real clients against the real `mod` and a `sim` console: pyserial's `rfc2217://` changes the
//! baud rate, sends BREAK (the sim enters its boot monitor), reads and writes; labgrid's
//! `NetworkSerialPort` with `SerialDriver` and `ShellDriver` logs in and runs a command; on a
//! console with a real line (an RFC 2217 console, pyserial's loop server) a baud change is refused
//! and answered with the current rate; `telnet` and
//! `socat` through telnet and raw ports (named `tcp:ADDR:PORT` in `who` and in the record log);
//! `/telnet+login` asks for a mo user; a client from outside `--listen-allow` is refused and
//! audited; garbage on the RFC 2217 port is answered with an error and dropped, and `mod` goes
//! on. Ports close when the device is changed or removed.

use std::path::Path;
use std::process::{Command, Stdio};

use mo_testsupport::{
    Error, Login, Result, WAIT, World, ensure, free_port, run_test, venv_bin, wait_until,
};

/// Wait until the daemon says it listens on 127.0.0.1:`port` (it opens device ports as their
/// consoles start). Its log, not a probe connection: a probe would be a viewer for a moment and
/// could hold the write lock when the test's client arrives.
fn wait_listening(w: &mut World, port: u16) -> Result<()> {
    w.daemon()?
        .wait_log(&format!("listening on 127.0.0.1:{port}/"), WAIT)
}

/// Whether 127.0.0.1:`port` takes connections (a probe; only where no client follows).
fn wait_port(port: u16) -> Result<()> {
    wait_until(&format!("mod listening on 127.0.0.1:{port}"), WAIT, || {
        Ok(match std::net::TcpStream::connect(("127.0.0.1", port)) {
            Ok(_) => Ok(()),
            Err(e) => Err(e.to_string()),
        })
    })
}

/// Wait until 127.0.0.1:`port` refuses connections (the port was closed).
fn wait_port_closed(port: u16) -> Result<()> {
    wait_until(&format!("127.0.0.1:{port} closed"), WAIT, || {
        Ok(match std::net::TcpStream::connect(("127.0.0.1", port)) {
            Ok(_) => Err("still accepting".to_string()),
            Err(_) => Ok(()),
        })
    })
}

/// Run a Python script with the peers venv's python (pyserial is there); its stdout.
fn python(dir: &Path, name: &str, script: &str, args: &[String]) -> Result<String> {
    let python = venv_bin("python");
    ensure!(
        python.exists(),
        "{} is missing: run scripts/setup.sh (it installs pyserial in the peers venv)",
        python.display()
    );
    let path = dir.join(name);
    std::fs::write(&path, script).map_err(|e| Error::io(format!("write {name}"), e))?;
    let out = Command::new(&python)
        .arg(&path)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::io(format!("run {}", python.display()), e))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    ensure!(
        out.status.success(),
        "{name} failed ({}):\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(stdout)
}

const PYSERIAL_CLIENT: &str = r#"
import sys, time, serial
port = sys.argv[1]
s = serial.serial_for_url("rfc2217://127.0.0.1:%s" % port, baudrate=115200, timeout=0.2)
seen = b""
def until(needle, limit=60):
    global seen
    end = time.monotonic() + limit
    while time.monotonic() < end:
        seen += s.read(4096)
        i = seen.find(needle)
        if i >= 0:
            seen = seen[i + len(needle):]
            return
    sys.exit("no %r within %ss; saw %r" % (needle, limit, seen[-800:]))
# A baud change the sim (no real line) accepts: pyserial waits for the server's answer.
s.baudrate = 9600
assert s.baudrate == 9600
s.write(b"\r")
until(b"lab login: ")
s.write(b"root\r")
until(b"Password: ")
s.write(b"pw\r")
until(b"lab:~$ ")
s.write(b"uname -s\r")
until(b"\nLinux\r\n")
print("SHELL-OK", flush=True)
s.send_break(0.25)
until(b"SimBoot monitor")
until(b"ok ")
s.write(b"printenv\r")
until(b"ok ")
print("BREAK-OK", flush=True)
s.close()
"#;

#[test]
fn pyserial_rfc2217_changes_baud_sends_break_reads_and_writes() {
    run_test("listen-rfc2217", |w| {
        let port = free_port()?;
        w.add_device(
            "lab",
            "sim://lab?boot=none",
            &["--listen", &format!("127.0.0.1:{port}/rfc2217")],
        )?;
        w.start_daemon(&[])?;
        wait_listening(w, port)?;
        let out = python(
            w.dir(),
            "pyserial_client.py",
            PYSERIAL_CLIENT,
            &[port.to_string()],
        )?;
        ensure!(
            out.contains("SHELL-OK") && out.contains("BREAK-OK"),
            "pyserial client: {out}"
        );
        // The input is in the record log under the client's address.
        wait_until("pyserial's input in the log", WAIT, || {
            let shown = w.mo(&["log", "show", "lab", "--kind", "input"], None)?;
            Ok(
                if shown
                    .stdout
                    .lines()
                    .any(|l| l.contains("<tcp:127.0.0.1:") && l.contains("uname -s"))
                {
                    Ok(())
                } else {
                    Err(shown.combined())
                },
            )
        })?;
        Ok(())
    });
}

const FIXED_LINE_CLIENT: &str = r#"
import sys, time, serial
port = sys.argv[1]
s = serial.serial_for_url("rfc2217://127.0.0.1:%s" % port, baudrate=19200, timeout=0.2)
try:
    s.baudrate = 9600
    sys.exit("a baud change on a console with a real line was taken")
except ValueError as e:
    print("REFUSED", e, flush=True)
# The same connection goes on (a second one might find this one still holding the lock).
s.write(b"ping-through-mo\r")
seen = b""
end = time.monotonic() + 60
while time.monotonic() < end and b"ping-through-mo" not in seen:
    seen += s.read(4096)
if b"ping-through-mo" not in seen:
    sys.exit("the loop did not answer: %r" % seen)
print("LOOP-OK", flush=True)
s.close()
"#;

#[test]
fn a_real_line_keeps_its_settings() {
    run_test("listen-fixed-line", |w| {
        let peer = mo_testsupport::PyserialRfc2217::start(w.dir())?;
        let port = free_port()?;
        w.add_device(
            "line",
            &format!("rfc2217://127.0.0.1:{}?baud=19200", peer.port),
            &["--listen", &format!("127.0.0.1:{port}/rfc2217")],
        )?;
        w.start_daemon(&[])?;
        wait_listening(w, port)?;
        let out = python(
            w.dir(),
            "fixed_line_client.py",
            FIXED_LINE_CLIENT,
            &[port.to_string()],
        )?;
        ensure!(
            out.contains("REFUSED") && out.contains("LOOP-OK"),
            "pyserial client on a fixed line: {out}"
        );
        Ok(())
    });
}

/// labgrid's own Python API (no coordinator): a `NetworkSerialPort` at mo's RFC 2217 port,
/// `SerialDriver` on it, `ShellDriver` logging in to the sim and running commands with its own
/// `run` (output and exit status between markers, as on a real board).
const LABGRID_CLIENT: &str = r#"
import sys
from labgrid import Target
from labgrid.resource import NetworkSerialPort
from labgrid.driver import SerialDriver, ShellDriver
port = int(sys.argv[1])
t = Target("lab")
NetworkSerialPort(t, name=None, host="127.0.0.1", port=port, speed=115200, protocol="rfc2217")
console = SerialDriver(t, name=None)
shell = ShellDriver(t, name=None, prompt=r"lab:~\$ ", login_prompt=r"lab login: ",
                    username="root", password="pw", login_timeout=60)
t.activate(shell)
print("LOGGED-IN", flush=True)
out, _, code = shell.run("uname -s", timeout=60)
assert (out, code) == (["Linux"], 0), (out, code)
out, _, code = shell.run("nosuch-command", timeout=60)
assert code == 127 and "nosuch-command: command not found" in out[-1], (out, code)
shell.run_check("hostname", timeout=60)
print("RAN", flush=True)
t.cleanup()
"#;

#[test]
fn labgrid_logs_in_through_the_rfc2217_port() {
    run_test("listen-labgrid", |w| {
        let port = free_port()?;
        w.add_device(
            "lab",
            "sim://lab?boot=none",
            &["--listen", &format!("127.0.0.1:{port}/rfc2217")],
        )?;
        w.start_daemon(&[])?;
        wait_listening(w, port)?;
        let out = python(
            w.dir(),
            "labgrid_client.py",
            LABGRID_CLIENT,
            &[port.to_string()],
        )
        .map_err(|e| Error::Check(format!("{e}\n(labgrid is installed by scripts/setup.sh)")))?;
        ensure!(
            out.contains("LOGGED-IN") && out.contains("RAN"),
            "labgrid client: {out}"
        );
        wait_until("labgrid's input in the log", WAIT, || {
            let shown = w.mo(&["log", "show", "lab", "--kind", "input"], None)?;
            Ok(
                if shown
                    .stdout
                    .lines()
                    .any(|l| l.contains("<tcp:127.0.0.1:") && l.contains("uname -s"))
                {
                    Ok(())
                } else {
                    Err(shown.combined())
                },
            )
        })?;
        Ok(())
    });
}

const GARBAGE_CLIENT: &str = r#"
import socket, sys, time
port, src, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
c = socket.create_connection(("127.0.0.1", port), timeout=30, source_address=(src, 0))
if mode == "garbage":
    # A well-formed start, then IAC followed by a byte that is no telnet command.
    c.sendall(bytes([255, 251, 44]) + b"hello" + bytes([255, 7]) + b"more")
got = b""
end = time.monotonic() + 30
while time.monotonic() < end:
    try:
        data = c.recv(4096)
    except socket.timeout:
        break
    if not data:
        print("CLOSED", flush=True)
        break
    got += data
print(repr(got), flush=True)
"#;

#[test]
fn allow_list_refuses_and_audits_and_garbage_is_dropped() {
    run_test("listen-allow", |w| {
        let port = free_port()?;
        w.add_device(
            "lab",
            "sim://lab?boot=none",
            &[
                "--listen",
                &format!("127.0.0.1:{port}/rfc2217"),
                "--listen-allow",
                "127.0.0.3/32",
            ],
        )?;
        w.start_daemon(&[])?;
        wait_listening(w, port)?;
        let args = |src: &str, mode: &str| vec![port.to_string(), src.into(), mode.into()];
        // From 127.0.0.2: refused with a message, and audited.
        let out = python(
            w.dir(),
            "client.py",
            GARBAGE_CLIENT,
            &args("127.0.0.2", "quiet"),
        )?;
        ensure!(
            out.contains("CLOSED") && out.contains("127.0.0.2 may not connect"),
            "a client outside --listen-allow was not refused: {out}"
        );
        wait_until("the refusal in the audit log", WAIT, || {
            let audit = w.mo(&["audit", "--action", "listen.refused"], None)?;
            Ok(if audit.stdout.contains("tcp:127.0.0.2:") {
                Ok(())
            } else {
                Err(audit.combined())
            })
        })?;
        // From 127.0.0.3 (allowed): garbage gets an error and the connection is dropped.
        let out = python(
            w.dir(),
            "client.py",
            GARBAGE_CLIENT,
            &args("127.0.0.3", "garbage"),
        )?;
        ensure!(
            out.contains("CLOSED") && out.contains("no telnet command"),
            "garbage on the RFC 2217 port was not answered with an error and dropped: {out}"
        );
        // mod is fine: the port still serves, the daemon still answers.
        wait_port(port)?;
        w.mo_ok(&["device", "list"], None)?;
        ensure!(
            w.daemon()?.is_running(),
            "mod is no longer running:\n{}",
            w.diagnostics()
        );
        Ok(())
    });
}

#[test]
fn telnet_and_socat_through_telnet_and_raw_ports() {
    run_test("listen-telnet", |w| {
        let (tport, rport, lport) = (free_port()?, free_port()?, free_port()?);
        w.add_device(
            "lab",
            "sim://lab?boot=none",
            &[
                "--listen",
                &format!("127.0.0.1:{tport}/telnet"),
                "--listen",
                &format!("127.0.0.1:{rport}"),
                "--listen",
                &format!("127.0.0.1:{lport}/telnet+login"),
            ],
        )?;
        let admin = w.add_user("admin", "admin-pw")?;
        w.add_user_with_role("otto", "otto-pw", Some(("operator", "all")))?;
        w.start_daemon(&[])?;
        wait_listening(w, tport)?;
        wait_listening(w, rport)?;
        wait_listening(w, lport)?;

        // telnet: attaches (the write lock is free), logs in to the sim, runs a command.
        let telnet = w.tmux(
            "telnet",
            &["telnet".into(), "127.0.0.1".into(), tport.to_string()],
            &[],
        )?;
        telnet.wait_for("attached read-write", WAIT)?;
        telnet.send_line("")?;
        telnet.wait_for("lab login:", WAIT)?;
        telnet.send_line("root")?;
        telnet.wait_for("Password:", WAIT)?;
        telnet.send_line("pw")?;
        telnet.wait_for("lab:~$", WAIT)?;
        telnet.send_line("uname -s")?;
        telnet.wait_after("uname -s", &["Linux"], WAIT)?;

        // socat on the raw port: the lock is taken, so it spies; it sees what telnet runs.
        let socat = w.tmux(
            "socat",
            &[
                "socat".into(),
                "-,raw,echo=0,escape=0x1d".into(),
                format!("TCP:127.0.0.1:{rport}"),
            ],
            &[],
        )?;
        // Both viewers are in `who`, named after their address.
        let who = wait_until("both port viewers in who", WAIT, || {
            let out = admin.run(Login::Shell, &["who", "lab"], None)?;
            let text = out.combined();
            Ok(if text.matches("tcp:127.0.0.1:").count() >= 2 {
                Ok(text)
            } else {
                Err(text)
            })
        })?;
        ensure!(who.contains("spy"), "socat should spy: {who}");
        telnet.send_line("uname -n")?;
        socat.wait_after("uname -n", &["lab"], WAIT)?;
        // telnet leaves (Ctrl-] quit); socat then writes and runs a command.
        telnet.send_keys(&["C-]"])?;
        telnet.wait_for("telnet>", WAIT)?;
        telnet.send_line("quit")?;
        telnet.wait_dead(WAIT)?;
        // A spy stays a spy: reconnect socat (its escape is Ctrl-]) to take the free lock.
        socat.send_keys(&["C-]"])?;
        socat.wait_dead(WAIT)?;
        // Both connections are gone (the daemon has seen them close) before the next one.
        wait_until("no port viewers left", WAIT, || {
            let out = admin.run(Login::Shell, &["who", "lab"], None)?;
            let text = out.combined();
            Ok(if out.success() && !text.contains("tcp:127.0.0.1:") {
                Ok(())
            } else {
                Err(text)
            })
        })?;
        let socat = w.tmux(
            "socat2",
            &[
                "socat".into(),
                "-,raw,echo=0,escape=0x1d".into(),
                format!("TCP:127.0.0.1:{rport}"),
            ],
            &[],
        )?;
        wait_until("socat attached read-write", WAIT, || {
            let out = admin.run(Login::Shell, &["who", "lab"], None)?;
            let text = out.combined();
            Ok(
                if text
                    .lines()
                    .any(|l| l.contains("tcp:127.0.0.1:") && !l.contains("spy"))
                {
                    Ok(())
                } else {
                    Err(text)
                },
            )
        })?;
        socat.send_text("echo raw-port\r")?;
        socat.wait_after("echo raw-port", &["raw-port"], WAIT)?;
        wait_until("socat's input in the log", WAIT, || {
            let shown = w.mo(&["log", "show", "lab", "--kind", "input"], None)?;
            Ok(
                if shown
                    .stdout
                    .lines()
                    .any(|l| l.contains("<tcp:127.0.0.1:") && l.contains("echo raw-port"))
                {
                    Ok(())
                } else {
                    Err(shown.combined())
                },
            )
        })?;
        socat.send_keys(&["C-]"])?;
        socat.wait_dead(WAIT)?;

        // telnet+login: a wrong password is refused, otto's is taken; input is logged as otto.
        let bad = w.tmux(
            "login-bad",
            &["telnet".into(), "127.0.0.1".into(), lport.to_string()],
            &[],
        )?;
        bad.wait_for("lab login:", WAIT)?;
        bad.send_line("otto")?;
        bad.wait_for("Password:", WAIT)?;
        bad.send_line("wrong")?;
        bad.wait_for("Login incorrect", WAIT)?;
        bad.wait_dead(WAIT)?;
        let good = w.tmux(
            "login-good",
            &["telnet".into(), "127.0.0.1".into(), lport.to_string()],
            &[],
        )?;
        good.wait_for("lab login:", WAIT)?;
        good.send_line("otto")?;
        good.wait_for("Password:", WAIT)?;
        good.send_line("otto-pw")?;
        good.wait_for("attached read-write", WAIT)?;
        good.send_line("echo as-otto")?;
        good.wait_after("echo as-otto", &["as-otto"], WAIT)?;
        wait_until("otto's input in the log", WAIT, || {
            let shown = w.mo(&["log", "show", "lab", "--kind", "input"], None)?;
            Ok(
                if shown
                    .stdout
                    .lines()
                    .any(|l| l.contains("<otto>") && l.contains("echo as-otto"))
                {
                    Ok(())
                } else {
                    Err(shown.combined())
                },
            )
        })?;

        // Changing the device's ports closes the old ones and opens the new; --no-listen closes all.
        let nport = free_port()?;
        w.mo_ok(
            &[
                "device",
                "set",
                "lab",
                "--listen",
                &format!("127.0.0.1:{nport}/raw"),
            ],
            None,
        )?;
        wait_listening(w, nport)?;
        wait_port_closed(tport)?;
        w.mo_ok(&["device", "set", "lab", "--no-listen"], None)?;
        wait_port_closed(nport)?;
        Ok(())
    });
}
