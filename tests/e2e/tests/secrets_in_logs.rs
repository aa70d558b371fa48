//! Secrets stay out of logs (issue 13, item 10): a password typed through the SSH door at a
//! device's `Password:` prompt (echo off, `stty -echo`) is recorded as `<redacted N bytes>`
//! unless the device is set `--log-secrets`; a `viewer` reads input records as `<input hidden>`
//! through the API; `${secret:password}` in an `exec:` address reaches the program and nothing
//! that is displayed.

use std::time::{Duration, Instant};

use mo_testsupport::http::{add_token, start_daemon_with_http};
use mo_testsupport::{Login, WAIT, World, ensure, run_test};

/// The password typed in the tests (9 bytes).
const TYPED: &str = "hunter2xy";
/// The secret given to the program through `${secret:password}`.
const ARG_SECRET: &str = "argsecret-7Q";

/// A device asking for a login and a password, the password read with echo off; it says whether
/// the password arrived, never echoing it, then echoes lines.
const LOGIN_DEVICE: &str = r#"#!/bin/sh
printf 'login: '
read user
stty -echo
printf 'Password: '
read pw
stty echo
if [ "$pw" = "hunter2xy" ]; then printf '\r\nPASSWORD-OK\r\n'; else printf '\r\nPASSWORD-BAD\r\n'; fi
while read line; do echo "got: $line"; done
"#;

/// A program that checks its first argument against the secret and says so.
const ARG_DEVICE: &str = r#"#!/bin/sh
if [ "$1" = "argsecret-7Q" ]; then echo "ARG-OK"; else echo "ARG-BAD"; fi
while read line; do echo "got: $line"; done
"#;

/// `mo log show NAME` (the local reader: every record as stored).
fn log_of(w: &World, device: &str) -> mo_testsupport::Result<String> {
    Ok(w.mo_ok(&["log", "show", device], None)?.stdout)
}

/// Log in on `device` through the SSH door as `user`, typing the password at the prompt, then a
/// marker line whose echo proves everything before it was handled.
fn type_password(
    w: &mut World,
    client: &mo_testsupport::SshClient,
    device: &str,
) -> mo_testsupport::Result<()> {
    let t = w.terminal(device, client, Login::Shell, &["console", device])?;
    t.wait_for("login:", WAIT)?;
    t.send_line("root")?;
    t.wait_for("Password:", WAIT)?;
    t.send_line(TYPED)?;
    t.wait_for("PASSWORD-OK", WAIT)?;
    t.send_line("marker-after")?;
    t.wait_for("got: marker-after", WAIT)?;
    Ok(())
}

/// Wait until the record log of `device` holds `needle` (the writer is the console actor).
fn wait_log(w: &World, device: &str, needle: &str) -> mo_testsupport::Result<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let text = log_of(w, device)?;
        if text.contains(needle) {
            return Ok(text);
        }
        ensure!(
            Instant::now() < deadline,
            "the log of {device} never held `{needle}`:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn typed_passwords_are_redacted_unless_the_device_logs_secrets() {
    run_test("secret-redact", |w| {
        let script = w.write_script("login-device.sh", LOGIN_DEVICE)?;
        let url = format!("exec://{}", script.display());
        w.add_device("pw1", &url, &[])?;
        w.add_device("pw2", &url, &["--log-secrets"])?;
        let alice = w.add_user("alice", "alice-pw")?;
        let vera = w.add_user_with_role("vera", "vera-pw", Some(("viewer", "all")))?;
        let api = start_daemon_with_http(w, &[])?;

        type_password(w, &alice, "pw1")?;
        type_password(w, &alice, "pw2")?;

        let redacted = wait_log(w, "pw1", "marker-after")?;
        ensure!(
            redacted.contains("<alice> <redacted 9 bytes>"),
            "pw1's log should show the password as `<redacted 9 bytes>`:\n{redacted}"
        );
        ensure!(
            !redacted.contains(TYPED),
            "pw1's log holds the typed password:\n{redacted}"
        );
        ensure!(
            redacted.contains("<alice> root"),
            "the login name (not a secret) should be logged:\n{redacted}"
        );
        let raw = std::fs::read_dir(w.data_dir().join("logs/pw1"))
            .map_err(|e| mo_testsupport::Error::Check(format!("read logs/pw1: {e}")))?
            .filter_map(|e| e.ok())
            .map(|e| std::fs::read(e.path()).unwrap_or_default())
            .collect::<Vec<_>>()
            .concat();
        ensure!(
            !raw.windows(TYPED.len()).any(|win| win == TYPED.as_bytes()),
            "a segment file of pw1 holds the typed password"
        );

        let logged = wait_log(w, "pw2", "marker-after")?;
        ensure!(
            logged.contains(&format!("<alice> {TYPED}")),
            "pw2 is set --log-secrets: its log should hold the password as typed:\n{logged}"
        );

        // Through the API: alice (admin) reads input; vera (viewer) gets `<input hidden>`.
        let http = reqwest::blocking::Client::new();
        let get = |token: &str| -> mo_testsupport::Result<String> {
            let resp = http
                .get(api.url("/api/v1/devices/pw1/log"))
                .bearer_auth(token)
                .send()
                .map_err(|e| mo_testsupport::Error::Check(format!("GET log: {e}")))?;
            ensure!(resp.status().is_success(), "GET log: {}", resp.status());
            resp.text()
                .map_err(|e| mo_testsupport::Error::Check(format!("GET log body: {e}")))
        };
        let admin_view = get(&add_token(w, "alice", "all")?)?;
        ensure!(
            admin_view.contains("<alice> marker-after")
                && admin_view.contains("<alice> <redacted 9 bytes>"),
            "alice (admin) should read the input records:\n{admin_view}"
        );
        let viewer_view = get(&add_token(w, "vera", "all")?)?;
        ensure!(
            viewer_view.contains("<alice> <input hidden>")
                && !viewer_view.contains("<alice> marker-after")
                && !viewer_view.contains("<alice> root")
                && !viewer_view.contains("redacted"),
            "vera (viewer, no log.read_input) must see input as `<input hidden>`:\n{viewer_view}"
        );
        ensure!(
            viewer_view.contains("got: marker-after"),
            "vera still reads the device's output:\n{viewer_view}"
        );

        // And through the SSH shell's `log show`.
        let shown = vera
            .run(Login::Shell, &["log", "show", "pw1"], None)?
            .ok()?;
        ensure!(
            shown.stdout.contains("<input hidden>") && !shown.stdout.contains("<alice> root"),
            "the SSH shell's `log show` must hide input from vera:\n{}",
            shown.combined()
        );
        drop(vera);
        Ok(())
    });
}

#[test]
fn secret_references_reach_the_program_and_nothing_displayed() {
    run_test("secret-ref", |w| {
        let script = w.write_script("arg-device.sh", ARG_DEVICE)?;
        let url = format!("exec://{}?arg=${{secret:password}}", script.display());
        w.add_device("ipmi1", &url, &[])?;
        w.mo_ok(
            &["secret", "set", "ipmi1", "password", "--stdin"],
            Some(&format!("{ARG_SECRET}\n")),
        )?;
        w.add_user("alice", "alice-pw")?;
        let api = start_daemon_with_http(w, &[])?;

        let log = wait_log(w, "ipmi1", "ARG-")?;
        ensure!(
            log.contains("ARG-OK"),
            "the program should get the secret as its argument:\n{log}"
        );

        let list = w.mo_ok(&["device", "list"], None)?.stdout;
        let show = w.mo_ok(&["device", "show", "ipmi1"], None)?.stdout;
        let token = add_token(w, "alice", "all")?;
        let json = reqwest::blocking::Client::new()
            .get(api.url("/api/v1/devices/ipmi1"))
            .bearer_auth(&token)
            .send()
            .and_then(|r| r.text())
            .map_err(|e| mo_testsupport::Error::Check(format!("GET device: {e}")))?;
        let daemon_log = w.daemon()?.log_text();
        for (what, text) in [
            ("mo device list", &list),
            ("mo device show", &show),
            ("the API's device JSON", &json),
            ("the daemon log", &daemon_log),
        ] {
            ensure!(
                !text.contains(ARG_SECRET),
                "{what} shows the secret:\n{text}"
            );
        }
        ensure!(
            json.contains("${secret:password}"),
            "the API should show the reference:\n{json}"
        );

        // An unknown secret name is refused when the device is added.
        let bad = w.mo(
            &[
                "device",
                "add",
                "bad1",
                &format!("exec://{}?arg=${{secret:pasword}}", script.display()),
            ],
            None,
        )?;
        ensure!(
            !bad.success() && bad.combined().contains("unknown secret `pasword`"),
            "a misspelt secret reference should be refused:\n{}",
            bad.combined()
        );
        Ok(())
    });
}
