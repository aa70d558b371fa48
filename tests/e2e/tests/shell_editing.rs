//! The SSH shell's line editor through the real OpenSSH client in tmux: Tab completes a partial
//! device name (twice lists the choices), Ctrl-A moves to the line's start for an insert, Up
//! recalls the previous command — also after logging in again — and one user's history is never
//! offered to another.

use mo_testsupport::{Login, Result, Tmux, WAIT, World, ensure, run_test};

/// Open alice's or bob's shell in a pane and wait for the first prompt.
fn shell(
    w: &mut World,
    label: &str,
    client: &mo_testsupport::SshClient,
) -> Result<std::sync::Arc<Tmux>> {
    let pane = w.terminal(label, client, Login::Shell, &[])?;
    pane.wait_for("mo>", WAIT)?;
    Ok(pane)
}

#[test]
fn tab_history_and_cursor_keys_in_the_shell() {
    run_test("shell-editing", |w| {
        w.add_echo_device("web01", &[])?;
        w.add_echo_device("web02", &[])?;
        w.add_echo_device("db01", &[])?;
        let alice = w.add_user("alice", "alice-pw")?;
        let bob = w.add_user_with_role("bob", "bob-pw", None)?;
        w.start_daemon(&[])?;

        let a = shell(w, "alice", &alice)?;
        // Tab completes the one device starting with `d`.
        a.send_text("who d")?;
        a.send_keys(&["Tab"])?;
        a.wait_for("who db01", WAIT)?;
        a.send_keys(&["Enter"])?;
        a.wait_for("db01: nobody", WAIT)?;

        // `web` extends to `web0`; a second Tab rings, a third lists both.
        a.send_text("who web")?;
        a.send_keys(&["Tab"])?;
        a.wait_for("who web0", WAIT)?;
        a.send_keys(&["Tab"])?;
        a.send_keys(&["Tab"])?;
        a.wait_until("both candidates listed", WAIT, |t| {
            t.lines()
                .any(|l| l.contains("web01") && l.contains("web02"))
        })?;
        a.send_text("2")?;
        a.send_keys(&["Enter"])?;
        a.wait_for("web02: nobody", WAIT)?;

        // Ctrl-A, then an insert at the start of the line.
        a.send_text("ho web01")?;
        a.send_keys(&["C-a"])?;
        a.send_text("w")?;
        a.send_keys(&["Enter"])?;
        a.wait_for("web01: nobody", WAIT)?;

        // Up recalls the previous command; Enter runs it again.
        a.send_keys(&["Up"])?;
        a.send_keys(&["Enter"])?;
        a.wait_for_count("web01: nobody", 2, WAIT)?;
        a.send_line("exit")?;
        a.wait_dead(WAIT)?;

        // A new login finds the history: `exit`, `who web01`, then `who web02`.
        let a2 = shell(w, "alice-again", &alice)?;
        a2.send_keys(&["Up"])?;
        a2.send_keys(&["Up"])?;
        a2.send_keys(&["Up"])?;
        a2.send_keys(&["Enter"])?;
        a2.wait_for("web02: nobody", WAIT)?;
        a2.send_line("exit")?;
        a2.wait_dead(WAIT)?;

        // Bob has none of it: Up gives nothing, so the line is only what he types; and he may
        // list no device, so Tab offers none.
        let b = shell(w, "bob", &bob)?;
        b.send_keys(&["Up"])?;
        b.send_keys(&["C-e"])?;
        b.send_text("zz")?;
        b.send_keys(&["Enter"])?;
        let seen = b.wait_for("unknown command `zz`", WAIT)?;
        ensure!(
            !seen.contains("web01zz") && !seen.contains("web02zz"),
            "bob was offered alice's history:\n{seen}"
        );
        b.send_text("who we")?;
        b.send_keys(&["Tab"])?;
        b.send_keys(&["Enter"])?;
        let seen = b.wait_for("unknown device `we`", WAIT)?;
        ensure!(
            !seen.contains("who web0"),
            "bob's Tab offered a device he may not list:\n{seen}"
        );
        let bob_file = w.data_dir().join("history").join("bob");
        let text = std::fs::read_to_string(&bob_file).unwrap_or_default();
        ensure!(
            !text.contains("web"),
            "bob's history file holds alice's commands:\n{text}"
        );
        let alice_file = w.data_dir().join("history").join("alice");
        let text = std::fs::read_to_string(&alice_file).unwrap_or_default();
        ensure!(
            text.contains("who web02\n") && text.contains("who web01\n"),
            "alice's history file {} lacks her commands:\n{text}",
            alice_file.display()
        );
        Ok(())
    });
}
