#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rand::{Rng, SeedableRng};

use super::*;
use crate::record::{Chunk, RecordKind};

const GOOD: &str = "\
# log in and check
param user root
param password
param greeting hello world

expect /${device} login: $/ timeout=30s
sendline ${user}
expect /Password: $/
sendline ${password}
expect /\\$ $/
send echo ${greeting}\\r
wait 250ms
break
break 3
";

#[test]
fn parses_every_step() {
    let m = Macro::parse(GOOD).unwrap();
    assert_eq!(m.params().len(), 3);
    assert_eq!(m.params()[2].default.as_deref(), Some("hello world"));
    assert_eq!(m.steps().len(), 9);
    assert_eq!(m.steps()[0].line, 6);
    assert_eq!(
        m.steps()[0].step,
        Step::Expect {
            regex: "${device} login: $".into(),
            timeout: Some(Duration::from_secs(30))
        }
    );
    assert_eq!(m.steps()[6].step, Step::Wait(Duration::from_millis(250)));
    assert_eq!(m.steps()[7].step, Step::Break(1));
    assert_eq!(m.steps()[8].step, Step::Break(3));
    // Text form parses back to the same macro (line numbers aside).
    let again = Macro::parse(&m.to_text()).unwrap();
    let steps = |m: &Macro| m.steps().iter().map(|l| l.step.clone()).collect::<Vec<_>>();
    assert_eq!(steps(&again), steps(&m));
    assert_eq!(again.params().len(), 3);
}

#[test]
fn binds_parameters_and_hides_secrets() {
    let m = Macro::parse(GOOD).unwrap();
    let e = m.bind(&[]).unwrap_err().to_string();
    assert!(e.contains("line 3") && e.contains("password"), "{e}");
    let plan = m
        .bind_for(Some("web.01"), &[("password", "s3cret")])
        .unwrap();
    let Instruction::Expect { pattern, .. } = &plan.steps[0].action else {
        panic!("not an expect")
    };
    // The device name is matched literally: the dot is no wildcard.
    assert!(pattern.as_regex().is_match("web.01 login: "));
    assert!(!pattern.as_regex().is_match("webx01 login: "));
    let Instruction::Send(bytes) = &plan.steps[3].action else {
        panic!("not a send")
    };
    assert_eq!(bytes, b"s3cret\r");
    let Instruction::Send(bytes) = &plan.steps[5].action else {
        panic!("not a send")
    };
    assert_eq!(bytes, b"echo hello world\r");
    let shown = plan.describe().join("\n");
    assert!(!shown.contains("s3cret"), "{shown}");
    assert!(shown.contains("line 9: sendline \"***\""), "{shown}");
    assert!(
        shown.contains("line 6: expect /web\\.01 login: $/ within 30s"),
        "{shown}"
    );
    assert!(dry_run("demo", &plan).starts_with("macro demo: 9 steps (dry run)\n"));
    // Unknown arguments are refused.
    assert!(m.bind(&[("nope", "1"), ("password", "x")]).is_err());
}

#[test]
fn bad_files_are_refused_with_line_numbers() {
    let bad = "\
sendline ok
sned typo
expect login
expect /(unclosed/
wait 5
wait 3 parsecs
break 12
sendline ${undeclared}
param 9lives
param user
param user
send \\q
expect /x/ timeout=forever
expect /a/ colour=red
";
    let errors = Macro::check(bad).unwrap_err();
    let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14]);
    assert!(errors[0].message.contains("unknown step `sned`"));
    assert!(errors[2].message.contains("bad expression"));
    assert!(errors[8].message.contains("already declared on line 10"));
    let e = Macro::parse_named("boot.macro", bad)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("bad macro `boot.macro`: line 2: unknown step"),
        "{e}"
    );
}

#[test]
fn escapes() {
    let m = Macro::parse("send \\x03\\e[A\\t\\\\ \\$HOME\nsend \\x20 spaced \\x20\n").unwrap();
    let plan = m.bind(&[]).unwrap();
    let Instruction::Send(bytes) = &plan.steps[0].action else {
        panic!()
    };
    assert_eq!(bytes, b"\x03\x1b[A\t\\ $HOME");
    let Instruction::Send(bytes) = &plan.steps[1].action else {
        panic!()
    };
    assert_eq!(bytes, b"  spaced  ");
    let again = Macro::parse(&m.to_text()).unwrap().bind(&[]).unwrap();
    let Instruction::Send(bytes) = &again.steps[1].action else {
        panic!()
    };
    assert_eq!(bytes, b"  spaced  ");
    assert!(Macro::parse("send \\xff\n").is_err());
    assert!(Macro::parse("send trailing\\\n").is_err());
}

#[test]
fn durations() {
    assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
    assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
    assert!(parse_duration("25h").is_err());
    assert!(parse_duration("s").is_err());
    assert!(parse_duration("-1s").is_err());
}

fn chunk(kind: RecordKind, user: &str, bytes: &[u8]) -> Chunk {
    Chunk {
        seq: 0,
        time_ns: 0,
        kind,
        user: Arc::from(user),
        offset: 0,
        bytes: Bytes::copy_from_slice(bytes),
    }
}

#[test]
fn recorder_turns_a_session_into_a_macro() {
    let mut r = Recorder::new("web01").only_user("alice");
    let out = |r: &mut Recorder, b: &[u8]| r.observe(&chunk(RecordKind::Output, "", b));
    let typed =
        |r: &mut Recorder, who: &str, b: &[u8]| r.observe(&chunk(RecordKind::Input, who, b));
    out(&mut r, b"\x1b[1mBoot\x1b[0m\r\nweb01 login: ");
    typed(&mut r, "alice", b"r");
    out(&mut r, b"r");
    typed(&mut r, "alice", b"ooz\x7ft\r");
    out(&mut r, b"oot\r\nPassword: ");
    typed(&mut r, "alice", b"hunter2\r");
    typed(&mut r, "bob", b"ignored\r");
    out(&mut r, b"\r\nweb01:/tmp$ ");
    typed(&mut r, "alice", b"ls \x1b[Acat /etc/motd\r");
    out(&mut r, b"ls cat /etc/motd\r\nhello\r\nweb01:/tmp$ ");
    let text = r.text();
    assert_eq!(
        text,
        "# recorded\nparam password\n\
         expect /${device} login: $/\nsendline root\n\
         expect /Password: $/\nsendline ${password}\n\
         expect /${device}:[/]tmp\\$ $/\nsendline ls cat [/]etc[/]motd\n\
         expect /${device}:[/]tmp\\$ $/\n"
            .replace("sendline ls cat [/]etc[/]motd", "sendline ls cat /etc/motd")
    );
    assert!(!text.contains("hunter2"));
    let m = r.finish().unwrap();
    let plan = m.bind_for(Some("db7"), &[("password", "pw")]).unwrap();
    let Instruction::Expect { pattern, .. } = &plan.steps[4].action else {
        panic!()
    };
    assert!(pattern.as_regex().is_match("db7:/tmp$ "));
}

#[test]
fn random_input_never_panics() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x6d61_6372);
    let words = [
        "param ",
        "send ",
        "sendline ",
        "expect /",
        "wait ",
        "break ",
        "# ",
        "${",
        "}",
        "\\x",
        "\\",
        "/",
        " timeout=",
        "5s",
        "ms",
        "\n",
        "a",
        "$",
        "(",
        "[",
        "9",
        "é",
        "device",
        "user",
    ];
    for _ in 0..3000 {
        let mut text = String::new();
        for _ in 0..rng.random_range(0..40) {
            if rng.random_bool(0.8) {
                text.push_str(words[rng.random_range(0..words.len())]);
            } else {
                text.push(char::from(rng.random_range(0u8..128)));
            }
        }
        if let Ok(m) = Macro::parse(&text) {
            let _ = m.bind_for(Some("dev"), &[]);
            let _ = Macro::parse(&m.to_text());
        }
        let mut r = Recorder::new("dev");
        let bytes: Vec<u8> = text.bytes().collect();
        r.observe(&chunk(RecordKind::Input, "", &bytes));
        r.observe(&chunk(RecordKind::Output, "", &bytes));
        let _ = r.finish();
    }
}

#[test]
fn result_lines_say_how_each_device_ended() {
    let report = |outcome: Outcome| Report {
        device: "web01".into(),
        outcome,
        steps_done: 2,
        elapsed: Duration::from_millis(1250),
    };
    assert_eq!(
        report(Outcome::Done).result_line(),
        "web01: done (2 steps, 1.2 s)"
    );
    assert_eq!(
        report(Outcome::Failed {
            line: 3,
            step: "expect /x/".into(),
            error: "no answer".into()
        })
        .result_line(),
        "web01: FAILED at line 3 (expect /x/) after 2 steps: no answer"
    );
    assert_eq!(
        report(Outcome::Busy {
            held_by: "bob".into()
        })
        .result_line(),
        "web01: FAILED: busy: held by bob"
    );
}
