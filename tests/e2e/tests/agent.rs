//! The console-server agent (issue 15): a real `mo-agent` holding socat pty pairs dials a real
//! `mod`; its ports become consoles (`agent://cs1/pN`) whose output lands in the right device's
//! log and whose input, typed through the stock OpenSSH client, reaches the right pty.
//! Enrollment is one-time, another agent's name is refused, a removed agent is cut off, and the
//! agent's spool carries what the ports printed while the daemon was down.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mo_testsupport::{
    Error, Login, Peer, Result, SocatPty, Tmux, WAIT, World, add_agent, agent_cmd, ensure,
    run_test, wait_until,
};

/// `mo-agent --enroll TOKEN …`: its exit status and output.
fn enroll(w: &World, name: &str, token: &str, key: &Path) -> Result<(bool, String)> {
    let mut cmd = agent_cmd(w, name, key)?;
    cmd.arg("--enroll").arg(token);
    let out = mo_testsupport::run_with_timeout(cmd, None, WAIT)?;
    Ok((out.success(), out.combined()))
}

/// Start `mo-agent` for `name` with `ports` (NAME=URL); its log is `DIR/agent-NAME.log`.
fn start_agent(
    w: &World,
    name: &str,
    key: &Path,
    ports: &[String],
    extra: &[&str],
) -> Result<Peer> {
    let mut cmd = agent_cmd(w, name, key)?;
    for p in ports {
        cmd.arg("--port").arg(p);
    }
    cmd.args(extra);
    let log = w.dir().join(format!("agent-{name}.log"));
    Peer::spawn("mo-agent", cmd, Some(&log))
}

fn log_of(w: &World, device: &str) -> Result<String> {
    Ok(w.mo(&["log", "show", device], None)?.stdout)
}

fn wait_log(w: &World, device: &str, needle: &str) -> Result<String> {
    wait_until(&format!("`{needle}` in the log of {device}"), WAIT, || {
        let text = log_of(w, device)?;
        Ok(if text.contains(needle) {
            Ok(text)
        } else {
            Err(text)
        })
    })
}

fn wait_ports(w: &World, agent: &str, count: usize) -> Result<String> {
    wait_until(&format!("{count} ports of agent {agent}"), WAIT, || {
        let out = w.mo(&["agent", "ports", agent], None)?;
        let n = out.stdout.matches(&format!("agent://{agent}/")).count();
        Ok(if n == count {
            Ok(out.stdout)
        } else {
            Err(out.combined())
        })
    })
}

fn key_path(w: &World, name: &str) -> PathBuf {
    w.dir().join(format!("{name}.key"))
}

/// `mo agent add NAME`, then `mo-agent --enroll` with its token: the agent's key file.
fn enrolled(w: &World, name: &str) -> Result<PathBuf> {
    let token = add_agent(w, name)?;
    let key = key_path(w, name);
    let (ok, said) = enroll(w, name, &token, &key)?;
    ensure!(ok, "enrollment of {name} failed:\n{said}");
    ensure!(said.contains("pinned"), "enrollment said:\n{said}");
    Ok(key)
}

#[test]
fn agent_ports_become_consoles() {
    run_test("agent-ports", |w| {
        w.start_daemon(&[])?;
        let key = enrolled(w, "cs1")?;

        let mut lines = Vec::new();
        let mut ports = Vec::new();
        for i in 0..8 {
            let line =
                SocatPty::start_named(w.dir(), &format!("ttyDEV{i}"), &format!("ttyPEER{i}"))?;
            ports.push(format!("p{i}=serial://{}", line.device_path().display()));
            lines.push(line);
        }
        let _agent = start_agent(w, "cs1", &key, &ports, &[])?;
        let listed = wait_ports(w, "cs1", 8)?;
        ensure!(listed.contains("serial://"), "ports listed:\n{listed}");
        let show = w.mo_ok(&["agent", "show", "cs1"], None)?.stdout;
        ensure!(show.contains("connected"), "agent show:\n{show}");
        for i in 0..8 {
            w.add_device(&format!("web{i}"), &format!("agent://cs1/p{i}"), &[])?;
        }
        for (i, line) in lines.iter_mut().enumerate() {
            wait_log(w, &format!("web{i}"), "link up")?;
            line.write_peer(format!("output of port {i} here\r\n").as_bytes())?;
        }
        for i in 0..8 {
            let text = wait_log(w, &format!("web{i}"), &format!("output of port {i} here"))?;
            for j in (0..8).filter(|j| *j != i) {
                ensure!(
                    !text.contains(&format!("output of port {j} here")),
                    "port {j}'s output is in web{i}'s log:\n{text}"
                );
            }
        }

        // Typing through the stock OpenSSH client reaches the right pty, and only it.
        let alice = w.add_user("alice", "alice-pw")?;
        let pane = w.terminal("alice", &alice, Login::Attach("web3"), &[])?;
        pane.wait_for("attached read-write", WAIT)?;
        pane.send_line("typed-into-web3")?;
        lines[3].wait_peer_text("typed-into-web3", WAIT)?;
        lines[4].write_peer(b"barrier-4\r\n")?;
        wait_log(w, "web4", "barrier-4")?;
        ensure!(
            !lines[4].peer_text().contains("typed-into-web3"),
            "web3's input reached port 4"
        );
        // The echo from the device reaches the viewer through the agent.
        lines[3].write_peer(b"device answers web3\r\n")?;
        pane.wait_for("device answers web3", WAIT)?;
        Ok(())
    });
}

#[test]
fn enrollment_is_one_time_and_revocation_cuts_off() {
    run_test("agent-enroll", |w| {
        w.start_daemon(&[])?;
        let token = add_agent(w, "cs1")?;
        let key1 = key_path(w, "cs1");
        let (ok, said) = enroll(w, "cs1", &token, &key1)?;
        ensure!(ok, "enrollment failed:\n{said}");

        // The same token again, with another key: refused.
        let (ok, said) = enroll(w, "cs1", &token, &key_path(w, "thief"))?;
        ensure!(!ok, "a used token enrolled again:\n{said}");
        ensure!(said.contains("refused"), "second use said:\n{said}");
        // A token for another agent's name: refused.
        let token2 = add_agent(w, "cs2")?;
        let (ok, said) = enroll(w, "cs1", &token2, &key_path(w, "thief2"))?;
        ensure!(!ok, "cs2's token enrolled cs1:\n{said}");
        let key2 = key_path(w, "cs2");
        let (ok, said) = enroll(w, "cs2", &token2, &key2)?;
        ensure!(ok, "cs2's enrollment failed:\n{said}");

        // cs2's key presented under cs1's name: refused (the pinned host key is the same
        // daemon's, so only the name differs).
        let mut cmd = agent_cmd(w, "cs1", &key2)?;
        cmd.arg("--host-key")
            .arg(w.dir().join("cs1.key.daemon.pub"))
            .arg("--port")
            .arg("x=exec:///bin/cat");
        let log = w.dir().join("agent-impostor.log");
        let _impostor = Peer::spawn("mo-agent", cmd, Some(&log))?;
        wait_until("the impostor refused", WAIT, || {
            let text = mo_testsupport::read_lossy(&log);
            Ok(if text.contains("refused the key of agent cs1") {
                Ok(())
            } else {
                Err(text)
            })
        })?;
        let list = w.mo_ok(&["agent", "list"], None)?.stdout;
        ensure!(
            !list
                .lines()
                .any(|l| l.split_whitespace().nth(1) == Some("connected")),
            "an agent is connected:\n{list}"
        );

        // The real cs1 connects; removing it cuts it off.
        let line = SocatPty::start(w.dir())?;
        let port = format!("p0=serial://{}", line.device_path().display());
        let agent = start_agent(w, "cs1", &key1, &[port], &[])?;
        wait_ports(w, "cs1", 1)?;
        w.add_device("web0", "agent://cs1/p0", &[])?;
        wait_log(w, "web0", "link up")?;
        w.mo_ok(&["agent", "rm", "cs1"], None)?;
        wait_log(w, "web0", "link down")?;
        wait_until("the agent told it was refused", WAIT, || {
            let text = agent.log_text();
            Ok(if text.contains("refused the key of agent cs1") {
                Ok(())
            } else {
                Err(text)
            })
        })?;
        let daemon_log = w.daemon()?.log_text();
        ensure!(
            !daemon_log.contains(
                token
                    .trim_start_matches("moenroll_")
                    .split('_')
                    .next()
                    .unwrap_or("x")
            ),
            "the enrollment secret is in the daemon's log"
        );
        Ok(())
    });
}

#[test]
fn ports_spool_while_the_daemon_is_down() {
    run_test("agent-spool", |w| {
        w.start_daemon(&[])?;
        let key = enrolled(w, "cs1")?;
        let mut line = SocatPty::start(w.dir())?;
        let port = format!("p0=serial://{}", line.device_path().display());
        let _agent = start_agent(w, "cs1", &key, &[port], &[])?;
        wait_ports(w, "cs1", 1)?;
        w.add_device("web0", "agent://cs1/p0", &[])?;
        wait_log(w, "web0", "link up")?;
        line.write_peer(b"before-0\r\n")?;
        wait_log(w, "web0", "before-0")?;

        w.daemon()?.stop()?;
        for i in 1..=40 {
            line.write_peer(format!("numbered line {i:03}\r\n").as_bytes())?;
            std::thread::sleep(Duration::from_millis(25));
        }
        w.start_daemon(&[])?;
        line.write_peer(b"after-restart\r\n")?;
        let text = wait_log(w, "web0", "after-restart")?;
        let mut last = 0;
        for i in 1..=40 {
            let needle = format!("numbered line {i:03}");
            let count = text.matches(&needle).count();
            ensure!(
                count == 1,
                "`{needle}` is {count} times in the log:\n{text}"
            );
            let at = text.find(&needle).unwrap_or(0);
            ensure!(at > last, "`{needle}` is out of order:\n{text}");
            last = at;
        }
        ensure!(
            text.matches("before-0").count() == 1,
            "the line before the restart is not in the log once:\n{text}"
        );
        ensure!(
            text.contains("agent: link to the daemon was down for"),
            "no notice of how long the link was down:\n{text}"
        );
        Ok(())
    });
}

#[test]
fn a_full_spool_drops_the_oldest_and_says_so() {
    run_test("agent-spool-full", |w| {
        w.start_daemon(&[])?;
        let key = enrolled(w, "cs1")?;
        let mut line = SocatPty::start(w.dir())?;
        let port = format!("p0=serial://{}", line.device_path().display());
        // 4 KiB of spool; 100 lines of 64 bytes do not fit.
        let _agent = start_agent(w, "cs1", &key, &[port], &["--spool-mib", "0.00390625"])?;
        wait_ports(w, "cs1", 1)?;
        w.add_device("web0", "agent://cs1/p0", &[])?;
        wait_log(w, "web0", "link up")?;
        w.daemon()?.stop()?;
        for i in 1..=100 {
            line.write_peer(format!("spooled line {i:03} {}\r\n", "x".repeat(44)).as_bytes())?;
            std::thread::sleep(Duration::from_millis(10));
        }
        w.start_daemon(&[])?;
        line.write_peer(b"after-restart\r\n")?;
        let text = wait_log(w, "web0", "after-restart")?;
        ensure!(
            text.contains("agent: spool of port p0 full:") && text.contains("dropped"),
            "the drop is not reported:\n{text}"
        );
        ensure!(
            !text.contains("spooled line 001 "),
            "the oldest line was not dropped:\n{text}"
        );
        // What was kept is the newest lines, each once, in order, with no hole among them.
        let kept: Vec<usize> = (1..=100)
            .filter(|i| text.contains(&format!("spooled line {i:03} ")))
            .collect();
        ensure!(!kept.is_empty(), "no spooled line arrived:\n{text}");
        let first = kept[0];
        ensure!(
            kept == (first..=100).collect::<Vec<_>>(),
            "kept lines have holes: {kept:?}\n{text}"
        );
        for i in kept {
            let needle = format!("spooled line {i:03} ");
            ensure!(
                text.matches(&needle).count() == 1,
                "`{needle}` twice:\n{text}"
            );
        }
        Ok(())
    });
}

#[test]
fn rfc2217_modem_lines_and_break_travel_through_the_agent() {
    run_test("agent-rfc2217", |w| {
        // pyserial's RFC 2217 server on loop:// (DSR follows DTR, CTS follows RTS; `carrier
        // off`/`carrier on` switch DCD; a BREAK prints BREAK-SEEN).
        let server = mo_testsupport::PyserialRfc2217::start(w.dir())?;
        let port = server.port;

        let api = mo_testsupport::http::start_daemon_with_http(w, &[])?;
        let key = enrolled(w, "cs1")?;
        let ports = [format!("r0=rfc2217://127.0.0.1:{port}?baud=9600")];
        let _agent = start_agent(w, "cs1", &key, &ports, &[])?;
        let listed = wait_ports(w, "cs1", 1)?;
        ensure!(
            listed.contains("modem"),
            "no modem lines offered:\n{listed}"
        );
        w.add_device("lab", "agent://cs1/r0?baud=19200", &[])?;
        wait_log(w, "lab", "link up")?;
        // The line settings of the device address are pushed to the agent and applied there.
        wait_log(w, "lab", "line settings applied: baud=19200")?;

        let alice = w.add_user("alice", "alice-pw")?;
        let pane = w.terminal("alice", &alice, Login::Attach("lab"), &[])?;
        pane.wait_for("attached read-write", WAIT)?;
        pane.send_line("hello loop")?;
        wait_log(w, "lab", "hello loop")?;

        // DCD through the modem state: a console notice in the log and on the screen.
        pane.send_line("carrier off")?;
        wait_log(w, "lab", "DCD down (carrier lost)")?;
        pane.wait_for("DCD down (carrier lost)", WAIT)?;
        pane.send_line("carrier on")?;
        wait_log(w, "lab", "DCD up (carrier back)")?;
        // ... and rule-ready events, raised and listed.
        wait_until("carrier events listed", WAIT, || {
            let out = w.mo(&["events"], None)?;
            let text = out.combined();
            Ok(
                if text.contains("carrier lost on lab — unplugged or powered off?")
                    && text.contains("carrier back on lab")
                {
                    Ok(())
                } else {
                    Err(text)
                },
            )
        })?;

        // BREAK from the viewer's escape sequence reaches the RFC 2217 port.
        pane.send_keys(&["C-e", "c", "l", "1"])?;
        wait_log(w, "lab", "BREAK-SEEN")?;

        // DTR and RTS reach the port through the agent: on loop:// DSR follows DTR and CTS
        // follows RTS, and the answer comes back as modem notices and events.
        pane.send_keys(&["C-e", "c", "D", "0"])?;
        wait_log(w, "lab", "DTR dropped by alice")?;
        wait_log(w, "lab", "DSR down (was up)")?;
        pane.wait_for("DSR down (was up)", WAIT)?;
        pane.send_keys(&["C-e", "c", "R", "0"])?;
        wait_log(w, "lab", "CTS down (was up)")?;
        wait_event(w, "DSR down on lab", WAIT)?;
        wait_event(w, "CTS down on lab", WAIT)?;
        // ... and through the API, by the lock's holder; the device's modem state follows.
        let token = mo_testsupport::http::add_token(w, "alice", "all")?;
        let set = w.mo(
            &[
                "--server", &api.base, "--token", &token, "device", "signal", "lab", "--dtr", "on",
                "--rts", "on",
            ],
            None,
        )?;
        ensure!(set.success(), "device signal failed:\n{}", set.combined());
        wait_log(w, "lab", "DSR up (was down)")?;
        wait_event(w, "DSR up on lab", WAIT)?;
        wait_until("DSR and CTS up in the device's modem state", WAIT, || {
            let (status, body) = api_get(&api.url("/api/v1/devices/lab"), &token)?;
            let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            Ok(
                if status == 200 && v["modem"]["dsr"] == true && v["modem"]["cts"] == true {
                    Ok(())
                } else {
                    Err(format!("{status} {body}"))
                },
            )
        })?;
        Ok(())
    });
}

#[test]
fn garbage_and_vanishing_ports_are_survived() {
    run_test("agent-bad-input", |w| {
        w.start_daemon(&[])?;
        let key = enrolled(w, "cs1")?;

        // An "agent" (the OpenSSH client with the agent's key) that sends garbage on the
        // control channel is told why and cut off; a port channel without a control channel
        // is refused. The daemon lives on.
        let fake = mo_testsupport::SshKey {
            private: key.clone(),
            public: PathBuf::from(format!("{}.pub", key.display())),
        };
        let client = mo_testsupport::SshClient::with_key(w.port(), "cs1", &fake);
        let out = client.run(
            Login::Shell,
            &["mo-agent", "control"],
            Some("GET / HTTP/1.0\r\n\r\n"),
        )?;
        ensure!(
            out.combined().contains("out of range"),
            "garbage on the control channel was not answered with the reason:\n{}",
            out.combined()
        );
        let out = client.run(Login::Shell, &["mo-agent", "port", "p0"], Some("x"))?;
        ensure!(
            out.combined()
                .contains("control channel before port channels"),
            "a lone port channel was not refused:\n{}",
            out.combined()
        );
        let out = client.run(Login::Shell, &["ls"], None)?;
        ensure!(
            out.combined()
                .contains("agent's; it runs mo-agent commands only")
                || out.combined().contains("unknown agent command"),
            "an agent login ran a shell command:\n{}",
            out.combined()
        );
        ensure!(w.daemon()?.is_running(), "the daemon died on garbage");
        let daemon_log = w.daemon()?.log_text();
        ensure!(
            daemon_log.contains("garbage on the agent's control channel"),
            "the daemon did not log the garbage:\n{daemon_log}"
        );

        // A port that disappears (its pty closed, as a USB adapter unplugged) is reported and
        // reopened when it is back; the real agent works after all this.
        let mut line = SocatPty::start(w.dir())?;
        let port = format!("p0=serial://{}", line.device_path().display());
        let agent = start_agent(w, "cs1", &key, &[port], &[])?;
        wait_ports(w, "cs1", 1)?;
        w.add_device("web0", "agent://cs1/p0", &[])?;
        wait_log(w, "web0", "link up")?;
        line.write_peer(b"before unplug\r\n")?;
        wait_log(w, "web0", "before unplug")?;
        line.stop()?;
        wait_log(w, "web0", "agent: port p0 closed")?;
        line.restart()?;
        wait_until("the port reopened", WAIT, || {
            let text = log_of(w, "web0")?;
            Ok(
                if text.matches("agent: port p0 open").count() >= 1
                    && text.rfind("agent: port p0 open") > text.rfind("agent: port p0 closed")
                {
                    Ok(())
                } else {
                    Err(text)
                },
            )
        })?;
        line.write_peer(b"after replug\r\n")?;
        wait_log(w, "web0", "after replug")?;
        ensure!(
            !agent.log_text().contains("panicked"),
            "the agent panicked:\n{}",
            agent.log_text()
        );
        ensure!(
            !w.daemon()?.log_text().contains("panicked"),
            "the daemon panicked"
        );
        Ok(())
    });
}

fn wait_event(w: &World, needle: &str, limit: Duration) -> Result<()> {
    wait_until(&format!("event `{needle}`"), limit, || {
        let text = w.mo(&["events"], None)?.combined();
        Ok(if text.contains(needle) {
            Ok(())
        } else {
            Err(text)
        })
    })
}

#[test]
fn water_marks_raise_and_clear_events() {
    run_test("agent-marks", |w| {
        w.start_daemon(&[])?;
        let key = enrolled(w, "cs1")?;
        let mut line = SocatPty::start(w.dir())?;
        let port = format!("p0=serial://{}", line.device_path().display());
        let _agent = start_agent(w, "cs1", &key, &[port], &[])?;
        wait_ports(w, "cs1", 1)?;
        let bad = w.mo(&["device", "add", "bad", "agent://cs1/p0?low=soon"], None)?;
        ensure!(
            !bad.success() && bad.combined().contains("low mark"),
            "a bad low mark was accepted:\n{}",
            bad.combined()
        );
        w.add_device("web0", "agent://cs1/p0?high=2000&low=2s", &[])?;
        wait_log(w, "web0", "link up")?;

        // Silent past the low mark: raised; output clears it.
        wait_event(w, "web0 silent for", WAIT)?;
        line.write_peer(b"a line at last\r\n")?;
        wait_event(w, "web0 prints again", WAIT)?;

        // 30 KB within the 10 s window is 3000 B/s, over the high mark of 2000: raised; once
        // the window has passed, cleared.
        let chunk = format!("{}\r\n", "f".repeat(998));
        for _ in 0..30 {
            line.write_peer(chunk.as_bytes())?;
        }
        wait_event(w, "output flood on web0:", WAIT)?;
        wait_event(w, "output flood on web0 over", Duration::from_secs(30))?;
        Ok(())
    });
}

#[test]
fn the_agent_sets_water_mark_defaults_and_addresses_override_them() {
    run_test("agent-mark-defaults", |w| {
        w.start_daemon(&[])?;
        let key = enrolled(w, "cs1")?;
        let mut line0 = SocatPty::start_named(w.dir(), "ttyM0", "ttyN0")?;
        let line1 = SocatPty::start_named(w.dir(), "ttyM1", "ttyN1")?;
        let ports = [
            format!("p0=serial://{}", line0.device_path().display()),
            format!("p1=serial://{}", line1.device_path().display()),
        ];
        let extra = ["--high-mark", "2000", "--low-mark", "2s"];
        let _agent = start_agent(w, "cs1", &key, &ports, &extra)?;
        wait_ports(w, "cs1", 2)?;
        // web0 takes the agent's marks; web1's address turns the low mark off.
        w.add_device("web0", "agent://cs1/p0", &[])?;
        w.add_device("web1", "agent://cs1/p1?low=0", &[])?;
        wait_log(w, "web0", "link up")?;
        wait_log(w, "web1", "link up")?;

        wait_event(w, "web0 silent for", WAIT)?;
        ensure!(
            w.mo(&["events"], None)?.stdout.contains("(low mark 2s)"),
            "the agent's low mark is not the one used"
        );
        // web1 has been as silent as web0 for as long, past the agent's 2 s, without an event.
        std::thread::sleep(Duration::from_secs(3));
        let events = w.mo(&["events"], None)?.stdout;
        ensure!(
            !events.contains("web1 silent"),
            "web1's address did not turn the agent's low mark off:\n{events}"
        );
        // 30 KB in the 10 s window is 3000 B/s: over the agent's 2000, under the built-in 8192.
        let chunk = format!("{}\r\n", "f".repeat(998));
        for _ in 0..30 {
            line0.write_peer(chunk.as_bytes())?;
        }
        wait_event(w, "output flood on web0:", WAIT)?;
        let events = w.mo(&["events"], None)?.stdout;
        ensure!(events.contains("(high mark 2000 B/s)"), "events:\n{events}");
        Ok(())
    });
}

/// `GET URL` with a bearer token: the status and the body.
fn api_get(url: &str, token: &str) -> Result<(u16, String)> {
    let resp = reqwest::blocking::Client::new()
        .get(url)
        .bearer_auth(token)
        .timeout(WAIT)
        .send()
        .map_err(|e| Error::Check(format!("GET {url}: {e}")))?;
    let status = resp.status().as_u16();
    Ok((status, resp.text().unwrap_or_default()))
}

#[test]
fn host_info_of_the_daemon_and_of_an_agent() {
    run_test("agent-host", |w| {
        let api = mo_testsupport::http::start_daemon_with_http(w, &[])?;
        let key = enrolled(w, "cs1")?;
        let mut agent = start_agent(w, "cs1", &key, &["p0=exec:///bin/cat".into()], &[])?;
        wait_ports(w, "cs1", 1)?;
        w.add_user_with_role("olga", "olga-pw", Some(("operator", "all")))?;
        w.add_user_with_role("vic", "vic-pw", Some(("viewer", "all")))?;
        let olga = mo_testsupport::http::add_token(w, "olga", "all")?;
        let vic = mo_testsupport::http::add_token(w, "vic", "all")?;
        let mo = |token: &str, args: &[&str]| {
            let mut all = vec!["--server", api.base.as_str(), "--token", token, "host"];
            all.extend_from_slice(args);
            w.mo(&all, None)
        };
        let json = |out: &mo_testsupport::CmdOutput| -> Result<serde_json::Value> {
            ensure!(out.success(), "mo host show failed:\n{}", out.combined());
            serde_json::from_str(&out.stdout)
                .map_err(|e| Error::Check(format!("not JSON ({e}):\n{}", out.stdout)))
        };

        // The daemon's own host, as an operator.
        let cpu = json(&mo(&olga, &["show", "mod", "cpu", "--json"])?)?;
        ensure!(
            cpu["host"] == "mod" && cpu["what"] == "cpu" && cpu["columns"][0] == "CPU",
            "{cpu}"
        );
        ensure!(cpu["rows"][0][0] == "all", "{cpu}");
        let usage: f64 = cpu["rows"][0][1]
            .as_str()
            .unwrap_or("x")
            .parse()
            .unwrap_or(-1.0);
        ensure!((0.0..=100.0).contains(&usage), "usage {usage}: {cpu}");

        // The agent's host: its process list holds the agent itself, and the `cat` of its port.
        let procs = json(&mo(&olga, &["show", "cs1", "proc", "--json"])?)?;
        ensure!(procs["host"] == "cs1", "{procs}");
        let pid = agent.pid().to_string();
        let rows = procs["rows"].as_array().cloned().unwrap_or_default();
        ensure!(
            rows.iter()
                .any(|r| r[0] == pid.as_str() && r[2] == "mo-agent"),
            "the agent (pid {pid}) is not in its host's processes:\n{procs}"
        );
        ensure!(
            rows.iter().any(|r| r[1] == pid.as_str() && r[2] == "cat"),
            "the agent's port program is not in its host's processes"
        );
        let mem = mo(&olga, &["show", "cs1", "mem"])?;
        ensure!(mem.success(), "{}", mem.combined());
        let first = mem.stdout.lines().next().unwrap_or_default();
        ensure!(
            first.split_whitespace().collect::<Vec<_>>()
                == ["WHAT", "TOTAL", "USED", "FREE", "AVAILABLE"],
            "mem table:\n{}",
            mem.stdout
        );
        ensure!(
            mem.stdout.lines().any(|l| l.starts_with("mem ")),
            "{}",
            mem.stdout
        );
        let fs = json(&mo(&olga, &["show", "cs1", "fs", "--json"])?)?;
        ensure!(fs["columns"][0] == "MOUNT", "{fs}");

        // A viewer is denied (and audited); an unknown host is a 404, a bad `what` a 400.
        let denied = mo(&vic, &["show", "cs1", "cpu"])?;
        ensure!(
            !denied.success() && denied.combined().contains("host.show"),
            "a viewer saw host info:\n{}",
            denied.combined()
        );
        let (status, body) = api_get(&api.url("/api/v1/hosts/mod/mem"), &vic)?;
        ensure!(status == 403, "viewer: {status} {body}");
        let (status, body) = api_get(&api.url("/api/v1/hosts/nosuch/cpu"), &olga)?;
        ensure!(
            status == 404 && body.contains("no host `nosuch`"),
            "{status} {body}"
        );
        let (status, body) = api_get(&api.url("/api/v1/hosts/mod/disk"), &olga)?;
        ensure!(status == 400, "{status} {body}");
        let audit = w.mo_ok(&["audit", "--user", "vic"], None)?.stdout;
        ensure!(audit.contains("host.show"), "audit:\n{audit}");

        // A query to an agent that stops answering and then dies ends when its connection
        // does, not only after the 10 s wait.
        agent.signal(mo_testsupport::Signal::SIGSTOP)?;
        let (url, t) = (api.url("/api/v1/hosts/cs1/cpu"), olga.clone());
        let started = Instant::now();
        let asking = std::thread::spawn(move || api_get(&url, &t));
        std::thread::sleep(Duration::from_secs(1));
        agent.kill()?;
        let (status, body) = asking
            .join()
            .map_err(|_| Error::Check("the asking thread panicked".into()))??;
        ensure!(status == 504, "{status} {body}");
        ensure!(
            started.elapsed() < Duration::from_secs(8),
            "the query waited {:?} for a dead agent",
            started.elapsed()
        );
        // With the agent gone its host cannot answer; the daemon's still does.
        wait_until("the agent disconnected", WAIT, || {
            let (status, body) = api_get(&api.url("/api/v1/hosts/cs1/cpu"), &olga)?;
            Ok(if status == 503 && body.contains("not connected") {
                Ok(())
            } else {
                Err(format!("{status} {body}"))
            })
        })?;
        let (status, body) = api_get(&api.url("/api/v1/hosts/mod/fs"), &olga)?;
        ensure!(status == 200, "{status} {body}");
        Ok(())
    });
}

/// The name of the user running the tests (what the agent reads from the socket's peer
/// credentials).
fn me() -> Result<String> {
    let out = std::process::Command::new("id")
        .arg("-un")
        .output()
        .map_err(|e| Error::io("run id -un", e))?;
    let name = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    ensure!(!name.is_empty(), "id -un printed nothing");
    Ok(name)
}

/// `mo-agent tty PORT --tty-socket SOCKET` in a tmux pane (a real terminal).
fn local_tty(w: &mut World, label: &str, socket: &Path, port: &str) -> Result<Arc<Tmux>> {
    let argv = vec![
        mo_testsupport::bin_path("mo-agent")?.display().to_string(),
        "tty".to_string(),
        port.to_string(),
        "--tty-socket".to_string(),
        socket.display().to_string(),
    ];
    w.tmux(label, &argv, &[])
}

/// `^Ec w` in `pane` until its answer lists every one of `users` (as `web0: USER`).
fn wait_who(pane: &Tmux, users: &[&str]) -> Result<String> {
    wait_until(&format!("{users:?} in who"), WAIT, || {
        pane.send_keys(&["C-e", "c", "w"])?;
        std::thread::sleep(Duration::from_millis(300));
        let text = pane.capture()?;
        Ok(
            if users.iter().all(|u| text.contains(&format!("web0: {u} "))) {
                Ok(text)
            } else {
                Err(text)
            },
        )
    })
}

/// `who web0` in the SSH shell of `client` until `want` says yes to it.
fn wait_shell_who(
    client: &mo_testsupport::SshClient,
    what: &str,
    want: impl Fn(&str) -> bool,
) -> Result<String> {
    wait_until(what, WAIT, || {
        let text = client.run(Login::Shell, &["who", "web0"], None)?.combined();
        Ok(if want(&text) { Ok(text) } else { Err(text) })
    })
}

/// A daemon, agent cs1 holding port p0 (a socat pty) with its local access socket
/// `DIR/tty.sock`, and device web0 on the port, up: the pty, the socket and the agent.
fn agent_with_tty(w: &mut World) -> Result<(SocatPty, PathBuf, Peer)> {
    w.start_daemon(&[])?;
    let key = enrolled(w, "cs1")?;
    let line = SocatPty::start(w.dir())?;
    let port = format!("p0=serial://{}", line.device_path().display());
    let socket = w.dir().join("tty.sock");
    let socket_arg = socket.display().to_string();
    let agent = start_agent(w, "cs1", &key, &[port], &["--tty-socket", &socket_arg])?;
    wait_ports(w, "cs1", 1)?;
    w.add_device("web0", "agent://cs1/p0", &[])?;
    wait_log(w, "web0", "link up")?;
    Ok((line, socket, agent))
}

#[test]
fn local_tty_is_shared_with_remote_viewers_and_logged() {
    run_test("agent-tty", |w| {
        let (mut line, socket, _agent) = agent_with_tty(w)?;
        let socket_arg = socket.display().to_string();
        let mode = std::fs::metadata(&socket)
            .map_err(|e| Error::io("stat the tty socket", e))?
            .permissions()
            .mode()
            & 0o777;
        ensure!(mode == 0o660, "the socket's mode is {mode:o}");

        let alice = w.add_user("alice", "alice-pw")?;
        let remote = w.terminal("alice", &alice, Login::Attach("web0"), &[])?;
        remote.wait_for("attached read-write", WAIT)?;

        let local_user = format!("local:{}@cs1", me()?);
        let local = local_tty(w, "local", &socket, "p0")?;
        local.wait_for(&format!("local access as {local_user}"), WAIT)?;

        // Both see each other in `who`: on the terminals (`^Ec w`) and in the daemon's shell.
        wait_who(&local, &[&local_user, "alice"])?;
        wait_who(&remote, &[&local_user, "alice"])?;
        let listed = |t: &str, u: &str| t.contains(&format!("web0: {u} "));
        let text = wait_shell_who(&alice, "both users in who", |t| {
            listed(t, &local_user) && listed(t, "alice")
        })?;
        ensure!(
            text.contains("local terminal on agent cs1"),
            "the local user's origin is not shown:\n{text}"
        );

        // What the local user types reaches the device, and the log has it as theirs; the
        // remote viewer holds the write lock all along.
        local.send_line("typed-on-the-console-server")?;
        line.wait_peer_text("typed-on-the-console-server", WAIT)?;
        let text = wait_log(w, "web0", &format!("<{local_user}>"))?;
        ensure!(
            text.lines().any(|l| l.contains(&format!("<{local_user}>"))
                && l.contains("typed-on-the-console-server")),
            "the local input is not attributed to {local_user}:\n{text}"
        );
        // The device's output reaches both terminals; the remote user's input the device.
        line.write_peer(b"device-answers-both\r\n")?;
        local.wait_for("device-answers-both", WAIT)?;
        remote.wait_for("device-answers-both", WAIT)?;
        remote.send_line("typed-by-alice")?;
        line.wait_peer_text("typed-by-alice", WAIT)?;

        // An unknown port is refused by name.
        let out = mo_testsupport::run_with_timeout(
            {
                let mut cmd = std::process::Command::new(mo_testsupport::bin_path("mo-agent")?);
                cmd.args(["tty", "nope", "--tty-socket", &socket_arg]);
                cmd
            },
            None,
            WAIT,
        )?;
        ensure!(
            !out.success() && out.combined().contains("holds no port `nope`"),
            "an unknown port was not refused:\n{}",
            out.combined()
        );

        // `^Ec .` ends the local terminal cleanly, and the user leaves `who`.
        local.send_keys(&["C-e", "c", "."])?;
        let text = local.wait_dead(WAIT)?;
        ensure!(text.contains("left p0"), "no goodbye:\n{text}");
        wait_shell_who(&alice, "the local user gone from who", |t| {
            !listed(t, &local_user) && listed(t, "alice")
        })?;
        Ok(())
    });
}

#[test]
fn local_tty_input_is_spooled_while_the_link_is_down() {
    run_test("agent-tty-down", |w| {
        let (mut line, socket, _agent) = agent_with_tty(w)?;

        w.daemon()?.stop()?;
        let local_user = format!("local:{}@cs1", me()?);
        let local = local_tty(w, "local", &socket, "p0")?;
        local.wait_for(&format!("local access as {local_user}"), WAIT)?;
        // The port answers without the daemon.
        local.send_line("typed-while-the-link-is-down")?;
        line.wait_peer_text("typed-while-the-link-is-down", WAIT)?;
        line.write_peer(b"device-answers-locally\r\n")?;
        local.wait_for("device-answers-locally", WAIT)?;
        // `who` says the daemon is out of reach and lists the local user.
        local.send_keys(&["C-e", "c", "w"])?;
        local.wait_for("did not answer", WAIT)?;

        w.start_daemon(&[])?;
        let text = wait_log(w, "web0", "typed-while-the-link-is-down")?;
        ensure!(
            text.lines().any(|l| l.contains(&format!("<{local_user}>"))
                && l.contains("typed-while-the-link-is-down")),
            "the spooled input is not attributed to {local_user}:\n{text}"
        );
        ensure!(
            text.contains("device-answers-locally"),
            "the device's answer was not replayed:\n{text}"
        );
        local.send_keys(&["C-e", "c", "."])?;
        local.wait_dead(WAIT)?;
        Ok(())
    });
}

/// A port that floods while no console reads it must not hold up the agent's other ports (nor
/// its control channel, on the same connection): the daemon drains every channel of the connection at once (russh stalls
/// the whole connection when one channel's queue is full) and tells the agent to hold that
/// port's output back; once a console reads the port, all of it arrives, in order.
#[test]
fn a_port_nobody_reads_does_not_stop_the_others() {
    run_test("agent-unread-port", |w| {
        w.start_daemon(&[])?;
        let key = enrolled(w, "cs1")?;
        // 8 MB at once: hundreds of SSH data messages, far more than a channel's queue holds.
        let flood = w.dir().join("flood.sh");
        std::fs::write(
            &flood,
            "#!/bin/sh\nhead -c 8000000 /dev/zero | tr '\\0' 'x' | fold -w 99\n\
             echo; echo end-of-flood\nexec cat >/dev/null\n",
        )
        .map_err(|e| Error::io("writing flood.sh", e))?;
        std::fs::set_permissions(&flood, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| Error::io("making flood.sh executable", e))?;
        let mut line = SocatPty::start(w.dir())?;
        let ports = [
            format!("p0=exec://{}", flood.display()),
            format!("p1=serial://{}", line.device_path().display()),
        ];
        let agent = start_agent(w, "cs1", &key, &ports, &[])?;
        wait_ports(w, "cs1", 2)?;
        // Give the flood time to pile up behind p0's channel, then use p1.
        std::thread::sleep(Duration::from_secs(2));
        w.add_device("web1", "agent://cs1/p1", &[])?;
        wait_log(w, "web1", "link up")?;
        line.write_peer(b"p1 is not held up\r\n")?;
        wait_log(w, "web1", "p1 is not held up")?;
        // Once a console reads the flooding port, all of its output arrives.
        w.add_device("flood", "agent://cs1/p0", &[])?;
        wait_until("the whole flood in the log", WAIT * 4, || {
            let out = w.mo(&["log", "show", "flood", "--tail", "3"], None)?;
            Ok(if out.stdout.contains("end-of-flood") {
                Ok(())
            } else {
                Err(out.combined())
            })
        })?;
        let daemon_log = w.daemon()?.log_text();
        ensure!(
            !agent.log_text().contains("up again"),
            "the agent reconnected:\n{}",
            agent.log_text()
        );
        ensure!(
            !daemon_log.contains("agent disconnected"),
            "the agent's link went down:\n{daemon_log}"
        );
        Ok(())
    });
}
