//! Console loops (issue 23 item 7): two `exec` consoles wired into each other through their
//! viewers — what mo shows a spy of `loopa` is written into `loopb`'s input, which `loopb` prints,
//! and what mo shows a spy of `loopb` goes into `loopa` — echo mo's own notices forever. mo sees
//! its notice tag coming back in the output, stops delivering to the viewers (which breaks the
//! loop) and raises a `log` event; once the tag stays away, output reaches the viewers again.

use std::fs::OpenOptions;
use std::io::Write;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use mo_testsupport::{Error, Login, Peer, ensure, run_test};

/// Generous: the loop itself trips in milliseconds.
const LOOP_WAIT: Duration = Duration::from_secs(60);

#[test]
fn two_consoles_fed_into_each_other_are_stopped_with_an_event() {
    run_test("console-loop", |w| {
        let mut fifos = Vec::new();
        for name in ["loopa", "loopb"] {
            let fifo = w.dir().join(format!("{name}.fifo"));
            let made = Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .map_err(|e| Error::io("run mkfifo (install coreutils)", e))?;
            ensure!(made.success(), "mkfifo {} failed", fifo.display());
            // The console prints whatever arrives in its fifo (opened read-write: never EOF).
            let script = w.write_script(
                &format!("console-{name}.sh"),
                &format!("#!/bin/sh\nexec cat <>'{}'\n", fifo.display()),
            )?;
            w.add_device(name, &format!("exec://{}", script.display()), &[])?;
            fifos.push(fifo);
        }
        let alice = w.add_user("alice", "alice-pw")?;
        w.start_daemon(&[])?;
        let ssh_log = w.dir().join("ssh-clients.log");

        // A spy of each console writes what it sees into the other console's fifo.
        let mut spies: Vec<Peer> = Vec::new();
        for (console, into) in [("loopa", &fifos[1]), ("loopb", &fifos[0])] {
            let sink = OpenOptions::new()
                .read(true)
                .write(true)
                .open(into)
                .map_err(|e| Error::io(format!("open {}", into.display()), e))?;
            let log = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&ssh_log)
                .map_err(|e| Error::io(format!("open {}", ssh_log.display()), e))?;
            let mut cmd = alice.command(Login::Spy(console), &[]);
            cmd.stdin(Stdio::piped())
                .stdout(Stdio::from(sink))
                .stderr(Stdio::from(log));
            spies.push(Peer::spawn(&format!("spy of {console}"), cmd, None)?);
        }

        // The spies' join notices go round; mo stops the loop and says so with an event.
        let deadline = Instant::now() + LOOP_WAIT;
        let listing = loop {
            let out = alice.run(Login::Shell, &["events"], None)?.ok()?;
            if out.stdout.contains("console loop:") {
                break out.stdout;
            }
            ensure!(
                Instant::now() < deadline,
                "no console-loop event:\n{}\nssh clients:\n{}",
                out.combined(),
                std::fs::read_to_string(&ssh_log).unwrap_or_default()
            );
            thread::sleep(Duration::from_millis(200));
        };
        let line = listing
            .lines()
            .find(|l| l.contains("console loop:"))
            .unwrap_or_default();
        ensure!(
            line.contains(" log ") && (line.contains("loopa") || line.contains("loopb")),
            "the loop event names the console and has source `log`:\n{listing}"
        );

        // The notice is in the console's record log too.
        let device = if line.contains("loopa") {
            "loopa"
        } else {
            "loopb"
        };
        let log = w.mo_ok(&["log", "show", device, "--kind", "notice"], None)?;
        ensure!(
            log.stdout.contains("console loop:"),
            "no loop notice in {device}'s log:\n{}",
            log.stdout
        );
        // The loop has stopped: once the tag stayed away for a while, new output (poked into the
        // console's fifo) reaches the viewers again, which the log records.
        let fifo = if device == "loopa" {
            &fifos[0]
        } else {
            &fifos[1]
        };
        let mut poke = OpenOptions::new()
            .read(true)
            .write(true)
            .open(fifo)
            .map_err(|e| Error::io(format!("open {}", fifo.display()), e))?;
        let deadline = Instant::now() + LOOP_WAIT;
        loop {
            poke.write_all(b"poke\n")
                .map_err(|e| Error::io(format!("write {}", fifo.display()), e))?;
            let log = w.mo_ok(&["log", "show", device, "--kind", "notice"], None)?;
            if log.stdout.contains("console loop ended") {
                break;
            }
            ensure!(
                Instant::now() < deadline,
                "{device} never left the loop-stopped state:\n{}",
                log.stdout
            );
            thread::sleep(Duration::from_millis(500));
        }
        for mut spy in spies {
            let _ = spy.kill();
        }
        Ok(())
    });
}
