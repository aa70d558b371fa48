//! `mo listen` (issue 21 item 5) against a real `mod --demo`: the output of two consoles, named
//! by a glob, arrives on standard output with each line tagged with its device; the listener
//! is a spy on each (nothing it is given on standard input reaches a console); an `@GROUP`
//! selector names the same consoles as in the SSH shell; without --server it refuses.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use mo_testsupport::http::{add_token, start_daemon_with_http};
use mo_testsupport::{Peer, Signal, WAIT, bin_path, ensure, read_lossy, run_test};

/// How long the demo's simulated machines may take to reach their login prompts.
const BOOT: Duration = Duration::from_secs(60);

/// `mo --server URL --token TOKEN listen ARGS…` in the background, stdin piped, its output
/// (stdout and stderr) in `log`.
fn listen(w: &mo_testsupport::World, url: &str, token: &str, args: &[&str], log: &str) -> Peer {
    let mut cmd = Command::new(bin_path("mo").unwrap());
    cmd.args(["--server", url, "--token", token, "listen"])
        .args(args)
        .env_remove("MO_DATA_DIR")
        .stdin(Stdio::piped());
    Peer::spawn("mo listen", cmd, Some(&w.dir().join(log))).unwrap()
}

/// Wait until `log` in the world's directory has every one of `needles`; its text.
fn wait_log(
    w: &mo_testsupport::World,
    log: &str,
    needles: &[&str],
) -> mo_testsupport::Result<String> {
    // The simulated machines take a while to boot in a debug build.
    let deadline = Instant::now() + BOOT;
    loop {
        let text = read_lossy(&w.dir().join(log));
        if needles.iter().all(|n| text.contains(n)) {
            return Ok(text);
        }
        ensure!(
            Instant::now() < deadline,
            "mo listen never printed {needles:?}:\n{text}"
        );
        thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn listen_tags_two_consoles_read_only() {
    run_test("listen-cli", |w| {
        let api = start_daemon_with_http(w, &["--demo"])?;
        let token = add_token(w, "demo", "all")?;
        let url = api.base.clone();
        let mo_server = |args: &[&str]| {
            let mut all = vec!["--server", url.as_str(), "--token", token.as_str()];
            all.extend_from_slice(args);
            w.mo(&all, None)
        };

        let mut peer = listen(w, &url, &token, &["sim-0[12]"], "listen.log");
        wait_log(
            w,
            "listen.log",
            &["listening to 2 console(s): sim-01, sim-02"],
        )?;
        // Typed at the listener: must reach no console.
        peer.stdin()
            .unwrap()
            .write_all(b"typed-into-listen\n")
            .unwrap();
        // Both listener sessions are spies.
        let who = mo_server(&["who", "--json"])?.ok()?;
        let sessions: serde_json::Value = serde_json::from_str(&who.stdout).unwrap();
        let spies = sessions
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["role"] == "spy" && s["user"] == "demo")
            .count();
        ensure!(
            spies == 2,
            "expected 2 spy sessions of demo:\n{}",
            who.stdout
        );

        // Once both have booted to their login prompts (partial lines, shown when they stand
        // still), a line typed into both through `mo gang` comes back tagged on each.
        wait_log(
            w,
            "listen.log",
            &["sim-01: sim-01 login:", "sim-02: sim-02 login:"],
        )?;
        mo_server(&["gang", "sim-01", "sim-02", "--command", "listen-probe"])?;
        let deadline = Instant::now() + WAIT;
        let text = loop {
            let text = read_lossy(&w.dir().join("listen.log"));
            let both = ["sim-01", "sim-02"].iter().all(|d| {
                text.lines()
                    .any(|l| l.starts_with(&format!("{d}: ")) && l.contains("listen-probe"))
            });
            if both {
                break text;
            }
            ensure!(
                Instant::now() < deadline,
                "probe not on both consoles:\n{text}"
            );
            thread::sleep(Duration::from_millis(100));
        };
        ensure!(
            !text.lines().any(|l| l.starts_with("sim-03")),
            "a console not selected was shown:\n{text}"
        );
        ensure!(
            !text.contains("typed-into-listen"),
            "what was typed into listen came back:\n{text}"
        );
        for device in ["sim-01", "sim-02"] {
            let log = w.mo_ok(&["log", "show", device], None)?;
            ensure!(
                log.stdout.contains("listen-probe") && !log.stdout.contains("typed-into-listen"),
                "{device}'s log:\n{}",
                log.stdout
            );
        }
        // Ctrl-C leaves with status 0.
        peer.signal(Signal::SIGINT)?;
        let status = peer.wait_timeout(WAIT)?;
        ensure!(
            status.is_some_and(|s| s.success()),
            "mo listen after SIGINT: {status:?}\n{}",
            read_lossy(&w.dir().join("listen.log"))
        );
        wait_log(w, "listen.log", &["stopped listening"])?;

        // An @GROUP selects the group's members, as everywhere.
        w.mo_ok(
            &[
                "group", "add", "pair", "--member", "sim-04", "--member", "sim-03",
            ],
            None,
        )?;
        let mut peer = listen(w, &url, &token, &["@pair"], "group.log");
        wait_log(
            w,
            "group.log",
            &["listening to 2 console(s): sim-03, sim-04"],
        )?;
        peer.signal(Signal::SIGINT)?;
        peer.wait_timeout(WAIT)?;

        // Selectors naming nothing, and no --server, are refused.
        let ghost = mo_server(&["listen", "ghost-*"])?;
        ensure!(
            !ghost.success() && ghost.stderr.contains("no device matches `ghost-*`"),
            "{}",
            ghost.combined()
        );
        let local = w.mo(&["listen", "sim-01"], None)?;
        ensure!(
            !local.success() && local.stderr.contains("--server"),
            "{}",
            local.combined()
        );
        Ok(())
    });
}
