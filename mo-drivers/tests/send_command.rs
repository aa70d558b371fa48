//! The facade's `send_command` and `find_prompt` on `sim` consoles, with and without the sim's
//! `--More--` pager, and a transcript of what went by.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use mo_core::Error;
use mo_core::automation::ExpectPattern;
use mo_core::facade::{CommandOptions, ConsoleHandle, FileTranscript, LocalOptions, open_local};
use mo_drivers::{DriverOptions, connector_for};

const T: Duration = Duration::from_secs(20);

/// A logged-in sim console.
async fn logged_in(query: &str, transcript: Option<Arc<FileTranscript>>) -> ConsoleHandle {
    let url = format!("sim://web01?boot=none{query}");
    let connector = connector_for(&url, &DriverOptions::default()).unwrap();
    let con = open_local("web01", connector, LocalOptions::default())
        .await
        .unwrap();
    if let Some(t) = transcript {
        con.set_transcript(Some(t));
    }
    con.expect(&[ExpectPattern::literal("login: ").unwrap()], T)
        .await
        .unwrap();
    con.send_line("root").await.unwrap();
    con.expect(&[ExpectPattern::literal("Password: ").unwrap()], T)
        .await
        .unwrap();
    con.send_line("pw").await.unwrap();
    con.expect(&[ExpectPattern::literal("web01:~$ ").unwrap()], T)
        .await
        .unwrap();
    con
}

#[tokio::test]
async fn output_is_between_the_echo_and_the_learnt_prompt() {
    let con = logged_in("", None).await;
    let opts = CommandOptions::new().timeout(T);
    assert_eq!(
        con.send_command("echo hello", &opts).await.unwrap(),
        "hello"
    );
    assert_eq!(con.send_command("seq 3", &opts).await.unwrap(), "1\n2\n3");
    assert_eq!(con.send_command("true", &opts).await.unwrap(), "");
    assert_eq!(con.find_prompt(T).await.unwrap(), "web01:~$");
    // A prompt given: no learning.
    let prompt = CommandOptions::new()
        .timeout(T)
        .prompt(ExpectPattern::regex(r"web01:~\$ $").unwrap());
    assert_eq!(con.send_command("uname", &prompt).await.unwrap(), "Linux");
    con.close().await.unwrap();
}

#[tokio::test]
async fn pagers_are_answered_and_taken_out() {
    let con = logged_in("&pager=4", None).await;
    let opts = CommandOptions::new().timeout(T);
    let want: Vec<String> = (1..=30).map(|n| n.to_string()).collect();
    assert_eq!(
        con.send_command("seq 30", &opts).await.unwrap(),
        want.join("\n")
    );
    // Without pager answers the command never ends.
    let no_pager = CommandOptions::new()
        .timeout(Duration::from_millis(500))
        .pagers(Vec::new());
    let err = con.send_command("seq 30", &no_pager).await.unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert!(err.to_string().contains("--More--"), "{err}");
    con.write(b"q").await.unwrap();
    con.expect(&[ExpectPattern::literal("web01:~$ ").unwrap()], T)
        .await
        .unwrap();
    assert_eq!(con.send_command("echo next", &opts).await.unwrap(), "next");
    con.close().await.unwrap();
}

#[tokio::test]
async fn a_command_that_never_prompts_times_out() {
    let con = logged_in("", None).await;
    let opts = CommandOptions::new().timeout(Duration::from_millis(300));
    con.find_prompt(T).await.unwrap();
    let err = con.send_command("cat", &opts).await.unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    con.write(b"\x04").await.unwrap();
    con.expect(&[ExpectPattern::literal("web01:~$ ").unwrap()], T)
        .await
        .unwrap();
    assert_eq!(
        con.send_command("echo back", &CommandOptions::new().timeout(T))
            .await
            .unwrap(),
        "back"
    );
    con.close().await.unwrap();
}

#[tokio::test]
async fn the_transcript_gets_what_was_read_and_sent() {
    let dir = tempfile::tempdir().unwrap();
    let read_only = dir.path().join("read.log");
    let both = dir.path().join("both.log");
    for (path, with_sent) in [(&read_only, false), (&both, true)] {
        let t = Arc::new(FileTranscript::append(path, with_sent).unwrap());
        let con = logged_in("&pager=2", Some(t)).await;
        let out = con
            .send_command("seq 5", &CommandOptions::new().timeout(T))
            .await
            .unwrap();
        assert_eq!(out, "1\n2\n3\n4\n5");
        con.close().await.unwrap();
    }
    let read = std::fs::read_to_string(&read_only).unwrap();
    assert!(read.contains("web01 login: "), "{read:?}");
    assert!(read.contains("seq 5\r\n1\r\n2\r\n--More--"), "{read:?}");
    // The password is never echoed, so only the log with what was sent has it.
    assert!(!read.contains("pw\r"), "{read:?}");
    let both = std::fs::read_to_string(&both).unwrap();
    assert!(both.contains("pw\r"), "{both:?}");
}

/// `close()` of an embedded console with a record log returns once the log is final: a program
/// that exits right after it loses nothing, and nothing is written later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_returns_once_the_record_log_is_final() {
    let dir = tempfile::tempdir().unwrap();
    let connector = connector_for("sim://logged?boot=none", &DriverOptions::default()).unwrap();
    let con = open_local(
        "logged",
        connector,
        LocalOptions::default().user("dave").log_dir(dir.path()),
    )
    .await
    .unwrap();
    con.expect(&[ExpectPattern::literal("login: ").unwrap()], T)
        .await
        .unwrap();
    con.send_line("root").await.unwrap();
    con.close().await.unwrap();
    let count = || {
        mo_core::log::read(dir.path(), &mo_core::log::ReadOptions::default())
            .unwrap()
            .count()
    };
    let at_close = count();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(count(), at_close, "records written after close() returned");
}
