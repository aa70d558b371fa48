//! Gang input on real peers (issue 8, "verified by"): one line sent through the SSH shell to a
//! serial console (a socat pty pair whose far end answers like a machine) and 50 `sim`
//! machines; every device's record log holds only its own output, and the device that answers
//! unlike the majority is flagged.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mo_testsupport::{Login, SocatPty, WAIT, ensure, run_test};

/// Echo every line mo types into the serial line (as a tty does) and answer `got: LINE`, until
/// `stop`.
fn answer_lines(mut line: SocatPty, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut seen = 0usize;
        let mut pending = String::new();
        while !stop.load(Ordering::Relaxed) {
            let text = line.peer_text();
            if text.len() > seen {
                pending.push_str(&text[seen..]);
                seen = text.len();
                while let Some(end) = pending.find(['\r', '\n']) {
                    let l: String = pending.drain(..=end).collect();
                    let l = l.trim_end_matches(['\r', '\n']);
                    if !l.is_empty() {
                        let _ = line.write_peer(format!("{l}\r\ngot: {l}\r\n").as_bytes());
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    })
}

#[test]
fn gang_on_a_serial_line_and_sims() {
    run_test("gang-peers", |w| {
        let line = SocatPty::start_named(w.dir(), "ttyGANG", "ttyGANGPEER")?;
        let url = format!("serial://{}?baud=115200", line.device_path().display());
        w.add_device("ser1", &url, &[])?;
        let sims: Vec<String> = (1..=50).map(|i| format!("sim{i:02}")).collect();
        for name in &sims {
            w.add_device(name, &format!("sim://{name}?boot=none"), &[])?;
        }
        w.add_echo_device("echo1", &[])?;
        let alice = w.add_user("alice", "alice-pw")?;
        let stop = Arc::new(AtomicBool::new(false));
        let answering = answer_lines(line, stop.clone());
        w.start_daemon(&[])?;
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let list = alice.run(Login::Shell, &["list"], None)?.ok()?;
            if list.stdout.lines().filter(|l| l.contains(" up ")).count() == 52 {
                break;
            }
            ensure!(
                std::time::Instant::now() < deadline,
                "not all up:\n{}",
                list.stdout
            );
            std::thread::sleep(Duration::from_millis(200));
        }

        // 50 sims at their login prompt answer alike; the serial machine answers otherwise.
        let out = alice.run(
            Login::Shell,
            &["gang", "sim*", "ser1", "--", "gang-user"],
            None,
        )?;
        for sim in &sims {
            ensure!(
                out.stdout.contains(&format!("{sim}: Password:")),
                "{sim}'s answer missing:\n{}",
                out.combined()
            );
        }
        ensure!(
            out.stdout.contains("ser1: got: gang-user")
                && out
                    .stdout
                    .contains("divergent: ser1 (majority: 50 devices)"),
            "the serial console not flagged:\n{}",
            out.combined()
        );
        // The serial line and an exec console that answer alike are not flagged.
        let out = alice.run(
            Login::Shell,
            &["gang", "ser1", "echo1", "--", "same-answer"],
            None,
        )?;
        ensure!(
            out.stdout.contains("ser1: got: same-answer")
                && out.stdout.contains("echo1: got: same-answer")
                && out.stdout.contains("all 2 devices answered alike"),
            "{}",
            out.combined()
        );
        stop.store(true, Ordering::Relaxed);
        let _ = answering.join();

        // Each log holds its own device's output only.
        let ser = w.mo_ok(&["log", "show", "ser1", "--kind", "output"], None)?;
        ensure!(
            ser.stdout.contains("got: gang-user") && !ser.stdout.contains("login:"),
            "ser1's log:\n{}",
            ser.stdout
        );
        for sim in &sims {
            let log = w.mo_ok(&["log", "show", sim, "--kind", "output"], None)?;
            ensure!(
                log.stdout.contains(&format!("{sim} login:")) && !log.stdout.contains("got:"),
                "{sim}'s log:\n{}",
                log.stdout
            );
            for other in sims.iter().filter(|o| *o != sim) {
                ensure!(
                    !log.stdout.contains(&format!("{other} login:")),
                    "{sim}'s log holds {other}'s output"
                );
            }
        }
        Ok(())
    });
}
