use super::*;

fn words(line: &str) -> Vec<String> {
    split_args(line).unwrap_or_default()
}

#[test]
fn commands() {
    assert_eq!(ShellCommand::parse("  "), ShellCommand::Empty);
    assert_eq!(
        ShellCommand::parse("spy web01 50"),
        ShellCommand::Attach {
            mode: Mode::Spy,
            device: "web01".into(),
            replay: Some(50)
        }
    );
    assert!(matches!(
        ShellCommand::parse("c web01 100001"),
        ShellCommand::Usage(m) if m.contains("bad line count")
    ));
    assert!(matches!(
        ShellCommand::parse("console"),
        ShellCommand::Usage(_)
    ));
    assert_eq!(
        ShellCommand::parse("events web 5000000"),
        ShellCommand::Events {
            device: Some("web".into()),
            limit: 10_000
        }
    );
    assert_eq!(ShellCommand::parse("ack #12"), ShellCommand::Ack(12));
    assert!(matches!(
        ShellCommand::parse("ack x"),
        ShellCommand::Usage(_)
    ));
    assert_eq!(
        ShellCommand::parse("ack 1 2"),
        ShellCommand::Unknown("ack".into())
    );
    assert_eq!(ShellCommand::parse("power"), ShellCommand::PowerUsage);
    assert_eq!(
        ShellCommand::parse("power on web*"),
        ShellCommand::Power {
            sub: "on".into(),
            args: vec!["web*".into()]
        }
    );
    assert!(
        matches!(ShellCommand::parse("who a b"), ShellCommand::Usage(m) if m == "usage: who [NAME]")
    );
    assert_eq!(
        ShellCommand::parse("frob"),
        ShellCommand::Unknown("frob".into())
    );
}

#[test]
fn words_are_split_like_a_shell() {
    assert_eq!(
        words("log  search web 'a b|c'"),
        ["log", "search", "web", "a b|c"]
    );
    assert_eq!(
        words(r#"x "say \"hi\" \d" y\ z ''"#),
        ["x", r#"say "hi" \d"#, "y z", ""]
    );
    assert!(split_args("log 'open").is_err());
    assert!(split_args("log \"open").is_err());
    assert!(split_args("log x\\").is_err());
}

#[test]
fn log_options() {
    let parse = |line: &str| LogArgs::parse(&words(line));
    let p = parse("search web panic -B 2 --after=3 -i --since 1h");
    assert_eq!(
        p.as_ref()
            .map(|p| (p.sub, p.device.as_str(), p.before, p.after, p.ignore_case)),
        Ok((LogSub::Search, "web", Some(2), Some(3), true))
    );
    assert!(
        parse("search web panic -A=3").is_err_and(|e| e.reason.contains("unknown option `-A=3`"))
    );
    assert!(parse("show web --around 3 --tail 2").is_err());
    assert!(parse("show").is_err_and(|e| e.reason.contains("needs a device")));
}

#[test]
fn dtr_and_rts_commands() {
    use crate::link::Signal;
    assert_eq!(
        ShellCommand::parse("dtr web off"),
        ShellCommand::Signal {
            line: Signal::Dtr,
            device: "web".into(),
            to: Some(false)
        }
    );
    assert_eq!(
        ShellCommand::parse("rts web toggle"),
        ShellCommand::Signal {
            line: Signal::Rts,
            device: "web".into(),
            to: None
        }
    );
    for bad in ["dtr", "dtr web", "rts web maybe", "dtr web on now"] {
        assert!(
            matches!(ShellCommand::parse(bad), ShellCommand::Usage(u) if u.contains("NAME on|off|toggle")),
            "{bad}"
        );
    }
}
