//! conserver's stock `console` client (Debian `conserver-client`, in tmux panes) against
//! `mod --conserver`: it lists the consoles, attaches and types (the log has the input as the
//! user who logged in), a second client spies and cannot type, `-w` and `Ctrl-E c w` show both,
//! `-f` forces, `Ctrl-E c .` leaves, `Ctrl-E c ;` moves to another console (or back),
//! `Ctrl-E c o` reopens the line, `Ctrl-E c L` keeps logging on, a wrong password is refused,
//! garbage is dropped.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use mo_testsupport::{Result, WAIT, World, ensure, free_port, run_test};

/// Generous: a loaded machine runs the client, the daemon and the devices at once.
const SLOW: Duration = Duration::from_secs(60);

/// Start the daemon with the conserver door on a free port; returns the port.
fn start(w: &mut World) -> Result<u16> {
    let port = free_port()?;
    let addr = format!("127.0.0.1:{port}");
    w.start_daemon(&["--conserver", &addr])?;
    w.daemon()?
        .wait_log(&format!("listening on {addr} (conserver"), WAIT)?;
    Ok(port)
}

/// Poll `mo log show DEVICE` until every needle is in it; returns the text.
fn wait_log_show(w: &World, device: &str, needles: &[&str]) -> Result<String> {
    let deadline = Instant::now() + SLOW;
    loop {
        let out = w.mo_ok(&["log", "show", device], None)?;
        if needles.iter().all(|n| out.stdout.contains(n)) {
            return Ok(out.stdout);
        }
        ensure!(
            Instant::now() < deadline,
            "`mo log show {device}` lacks one of {needles:?}:\n{}",
            out.stdout
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Poll `mo audit` until it has a line with `action`.
fn wait_audit(w: &World, action: &str) -> Result<()> {
    let deadline = Instant::now() + SLOW;
    loop {
        let out = w.mo_ok(&["audit"], None)?;
        if out
            .stdout
            .lines()
            .any(|l| l.contains(&format!(" {action} ")))
        {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "`mo audit` has no `{action}` line:\n{}",
            out.stdout
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn console_client_attaches_spies_lists_and_leaves() {
    run_test("conserver-client", |w| {
        w.add_echo_device("ex1", &[])?;
        w.add_echo_device("ex2", &[])?;
        w.add_user("alice", "alice-pw")?;
        w.add_user("bob", "bob-pw")?;
        let port = start(w)?;

        // -x lists the consoles (through master, groups, then the group port).
        let list = w.conserver_client("list", port, "alice", "alice-pw", &["-x"])?;
        let text = list.wait_dead(SLOW)?;
        ensure!(
            text.contains("ex1") && text.contains("ex2") && text.contains(" on "),
            "`console -x` did not list ex1 and ex2:\n{text}"
        );
        // -u shows the states.
        let states = w.conserver_client("states", port, "alice", "alice-pw", &["-u"])?;
        let text = states.wait_dead(SLOW)?;
        ensure!(
            text.lines()
                .any(|l| l.contains("ex1") && l.contains("<none>")),
            "`console -u` did not show ex1 free:\n{text}"
        );

        // alice attaches and types.
        let a = w.conserver_client("alice", port, "alice", "alice-pw", &["ex1"])?;
        a.wait_for("[attached]", SLOW)?;
        a.send_line("hello-from-alice")?;
        a.wait_for("got: hello-from-alice", SLOW)?;

        // bob spies: his typing is refused with conserver's hint, nothing reaches the device.
        let b = w.conserver_client("bob", port, "bob", "bob-pw", &["-s", "ex1"])?;
        b.wait_for("[Enter `^Ec?' for help]", SLOW)?;
        b.send_line("typed-by-bob")?;
        b.wait_for("[read-only -- use ^E c ? for help]", SLOW)?;
        a.send_line("after-bob")?;
        a.wait_for("got: after-bob", SLOW)?;
        b.wait_for("got: after-bob", SLOW)?;

        // -w shows both, with their roles.
        let who = w.conserver_client("who", port, "alice", "alice-pw", &["-w"])?;
        let text = who.wait_dead(SLOW)?;
        let line_of = |user: &str| {
            text.lines()
                .find(|l| l.trim_start().starts_with(&format!("{user}@127.0.0.1 ")))
                .unwrap_or_default()
                .to_string()
        };
        ensure!(
            line_of("alice").contains("attach") && line_of("alice").contains("ex1"),
            "`console -w` lacks alice attached to ex1:\n{text}"
        );
        ensure!(
            line_of("bob").contains("spy") && line_of("bob").contains("ex1"),
            "`console -w` lacks bob spying on ex1:\n{text}"
        );

        // The escape commands: who, then leave.
        a.send_keys(&["C-e", "c", "w"])?;
        a.wait_after("[who ex1]", &["bob@127.0.0.1", "spy"], SLOW)?;
        a.send_keys(&["C-e", "c", "."])?;
        let text = a.wait_dead(SLOW)?;
        ensure!(
            text.contains("[disconnect]"),
            "`^Ec.` did not answer [disconnect]:\n{text}"
        );

        // The log has alice's input as hers and nothing of bob's.
        let log = wait_log_show(w, "ex1", &["got: hello-from-alice", "got: after-bob"])?;
        ensure!(
            log.lines()
                .any(|l| l.contains("<alice>") && l.contains("hello-from-alice")),
            "no input line `<alice> hello-from-alice` in the log:\n{log}"
        );
        ensure!(
            !log.contains("typed-by-bob"),
            "the spy's typing reached the log:\n{log}"
        );
        b.send_keys(&["C-e", "c", "."])?;
        b.wait_dead(SLOW)?;
        Ok(())
    });
}

#[test]
fn console_client_forces_and_wrong_password_is_refused() {
    run_test("conserver-force", |w| {
        w.add_echo_device("ex1", &[])?;
        w.add_user("alice", "alice-pw")?;
        w.add_user("bob", "bob-pw")?;
        let port = start(w)?;

        let a = w.conserver_client("alice", port, "alice", "alice-pw", &["ex1"])?;
        a.wait_for("[attached]", SLOW)?;
        a.send_line("one-from-alice")?;
        a.wait_for("got: one-from-alice", SLOW)?;

        // bob forces: he writes, alice is told and becomes a spy.
        let b = w.conserver_client("bob", port, "bob", "bob-pw", &["-f", "ex1"])?;
        b.wait_for("[bumped alice@127.0.0.1]", SLOW)?;
        b.send_line("two-from-bob")?;
        b.wait_for("got: two-from-bob", SLOW)?;
        a.send_line("three-from-alice")?;
        a.wait_for("[read-only -- use ^E c ? for help]", SLOW)?;
        let log = wait_log_show(w, "ex1", &["got: two-from-bob"])?;
        ensure!(
            log.lines()
                .any(|l| l.contains("<bob>") && l.contains("two-from-bob")),
            "no input line `<bob> two-from-bob` in the log:\n{log}"
        );
        ensure!(
            !log.contains("three-from-alice"),
            "the bumped client's typing reached the log:\n{log}"
        );

        // A wrong password: the client says so, three times, and gives up.
        let bad = w.conserver_client("bad", port, "alice", "wrong-pw", &["ex1"])?;
        let text = bad.wait_for("invalid password", SLOW)?;
        ensure!(
            !text.contains("[attached]"),
            "a wrong password attached:\n{text}"
        );
        Ok(())
    });
}

#[test]
fn console_client_moves_to_another_console_and_comes_back() {
    run_test("conserver-goto", |w| {
        w.add_echo_device("ex1", &[])?;
        w.add_echo_device("ex2", &[])?;
        w.add_user("alice", "alice-pw")?;
        let port = start(w)?;

        let a = w.conserver_client("alice", port, "alice", "alice-pw", &["ex1"])?;
        a.wait_for("[attached]", SLOW)?;
        a.send_line("on-ex1-first")?;
        a.wait_for("got: on-ex1-first", SLOW)?;

        // `^Ec;`: the client asks for another console (tmux reads a lone `;` as its command
        // separator: the byte goes by its code). No name: back to ex1, attached again.
        a.send_keys(&["C-e", "c"])?;
        a.send_keys(&["-H", "3b"])?;
        a.wait_for("[console:", SLOW)?;
        a.send_line("")?;
        a.wait_for("[returning to `ex1'", SLOW)?;
        a.wait_for(" -- attached]", SLOW)?;
        a.send_line("on-ex1-again")?;
        a.wait_for("got: on-ex1-again", SLOW)?;

        // A name: the client calls it on a new connection (same login, mo's checks) and
        // closes the old one.
        a.send_keys(&["C-e", "c"])?;
        a.send_keys(&["-H", "3b"])?;
        a.wait_for_count("[console:", 2, SLOW)?;
        a.send_line("ex2")?;
        a.wait_for_count("[attached]", 2, SLOW)?;
        a.send_line("on-ex2")?;
        a.wait_for("got: on-ex2", SLOW)?;
        let who = w.conserver_client("who", port, "alice", "alice-pw", &["-w"])?;
        let text = who.wait_dead(SLOW)?;
        ensure!(
            text.lines()
                .any(|l| l.contains("alice@") && l.contains("attach") && l.contains("ex2"))
                && !text.lines().any(|l| l.contains("ex1")),
            "`console -w` does not show alice on ex2 only:\n{text}"
        );
        let log = wait_log_show(w, "ex1", &["got: on-ex1-again"])?;
        ensure!(
            !log.contains("on-ex2"),
            "ex2's input reached ex1's log:\n{log}"
        );
        wait_log_show(w, "ex2", &["got: on-ex2"])?;
        a.send_keys(&["C-e", "c", "."])?;
        a.wait_dead(SLOW)?;
        Ok(())
    });
}

#[test]
fn console_client_reopens_the_line_and_logging_stays_on() {
    run_test("conserver-reopen", |w| {
        w.add_echo_device("ex1", &[])?;
        w.add_user("alice", "alice-pw")?;
        w.add_user("bob", "bob-pw")?;
        let port = start(w)?;

        let a = w.conserver_client("alice", port, "alice", "alice-pw", &["ex1"])?;
        a.wait_for("[attached]", SLOW)?;
        a.send_line("before-reopen")?;
        a.wait_for("got: before-reopen", SLOW)?;

        // A spy may not reopen nor toggle logging, as with conserver.
        let b = w.conserver_client("bob", port, "bob", "bob-pw", &["-s", "ex1"])?;
        b.wait_for("[Enter `^Ec?' for help]", SLOW)?;
        b.send_keys(&["C-e", "c", "o"])?;
        b.wait_for("[attach to reopen]", SLOW)?;
        b.send_keys(&["C-e", "c", "L"])?;
        b.wait_for("[attach to toggle logging]", SLOW)?;

        // The writer reopens: the link is reconnected and the console works on.
        a.send_keys(&["C-e", "c", "o"])?;
        a.wait_for("[up]", SLOW)?;
        let deadline = Instant::now() + SLOW;
        let mut n = 0;
        // The new link may still be coming up: type until one line comes back through it.
        loop {
            n += 1;
            let line = format!("after-reopen-{n}");
            a.send_line(&line)?;
            if a.wait_for(&format!("got: {line}"), Duration::from_secs(5))
                .is_ok()
            {
                break;
            }
            ensure!(
                Instant::now() < deadline,
                "no echo through the reopened link:\n{}",
                a.capture()?
            );
        }
        wait_audit(w, "reconnect")?;

        // Logging cannot be switched off: the answer says it stays on, the attempt is audited.
        a.send_keys(&["C-e", "c", "L"])?;
        a.wait_for("[logging on]", SLOW)?;
        wait_audit(w, "logging.toggle")?;
        a.send_keys(&["C-e", "c", "."])?;
        a.wait_dead(SLOW)?;
        b.send_keys(&["C-e", "c", "."])?;
        b.wait_dead(SLOW)?;
        Ok(())
    });
}

#[test]
fn garbage_on_the_conserver_port_is_dropped() {
    run_test("conserver-garbage", |w| {
        w.add_echo_device("ex1", &[])?;
        let port = start(w)?;
        let mut s = TcpStream::connect(("127.0.0.1", port))
            .map_err(|e| mo_testsupport::Error::io("connect to the conserver door", e))?;
        s.set_read_timeout(Some(SLOW))
            .map_err(|e| mo_testsupport::Error::io("set a read timeout", e))?;
        // One line of 8 KiB without a newline, then binary noise.
        let mut junk = vec![b'x'; 8192];
        junk.extend_from_slice(&[0xff, 0x00, 0xfe, 0xff, 0xff, b'\r']);
        let _ = s.write_all(&junk);
        let mut got = Vec::new();
        let _ = s.read_to_end(&mut got);
        let text = String::from_utf8_lossy(&got);
        ensure!(
            text.starts_with("ok\r\n") && text.contains("line too long"),
            "the door did not answer the garbage with an error before closing: {text:?}"
        );
        // The daemon lives on: a new connection is greeted.
        let mut s = TcpStream::connect(("127.0.0.1", port))
            .map_err(|e| mo_testsupport::Error::io("connect again", e))?;
        s.set_read_timeout(Some(SLOW))
            .map_err(|e| mo_testsupport::Error::io("set a read timeout", e))?;
        let mut hello = [0u8; 4];
        s.read_exact(&mut hello)
            .map_err(|e| mo_testsupport::Error::io("read the greeting", e))?;
        ensure!(&hello == b"ok\r\n", "greeting was {hello:?}");
        ensure!(w.daemon()?.is_running(), "the daemon died");
        Ok(())
    });
}
