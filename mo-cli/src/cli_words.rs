//! The words of the command line stay one per meaning (issue 21 item 5): removal is `rm`
//! everywhere (old spellings only as hidden aliases), the newest N of something is `--tail`, and
//! the old spellings still parse.

#![allow(clippy::unwrap_used, clippy::panic)]

use clap::{CommandFactory, Parser};

use crate::cli::{Cli, Command, DeviceCommand, LogCommand, UserCommand};

/// Every command below `cmd`, with its words.
fn walk(cmd: &clap::Command, path: &str, out: &mut Vec<(String, clap::Command)>) {
    for sub in cmd.get_subcommands() {
        let words = format!("{path} {}", sub.get_name()).trim().to_string();
        out.push((words.clone(), sub.clone()));
        walk(sub, &words, out);
    }
}

fn parse(args: &[&str]) -> Cli {
    Cli::try_parse_from(std::iter::once("mo").chain(args.iter().copied()))
        .unwrap_or_else(|e| panic!("mo {args:?}: {e}"))
}

#[test]
fn removal_is_rm_and_old_spellings_are_hidden() {
    let mut all = Vec::new();
    walk(&Cli::command(), "", &mut all);
    let mut removals = 0;
    for (words, cmd) in &all {
        let about = cmd.get_about().map(|a| a.to_string()).unwrap_or_default();
        // `logout` revokes the profile's token as part of logging out: a meaning of its own.
        if (about.starts_with("Remove") || about.starts_with("Revoke")) && words != "logout" {
            removals += 1;
            assert_eq!(cmd.get_name(), "rm", "`mo {words}` removes: call it rm");
        }
        let shown: Vec<&str> = cmd.get_visible_aliases().collect();
        assert!(
            !shown
                .iter()
                .any(|a| ["remove", "del", "delete", "revoke"].contains(a)),
            "`mo {words}` shows the alias {shown:?}"
        );
        for arg in cmd.get_arguments() {
            let long = arg.get_long().unwrap_or_default();
            assert!(
                !["limit", "records", "lines", "last"].contains(&long),
                "`mo {words} --{long}`: the newest N is --tail"
            );
        }
    }
    assert!(removals >= 10, "only {removals} removal commands found");
}

#[test]
fn old_spellings_still_parse() {
    assert!(matches!(
        parse(&["user", "remove", "alice"]).command,
        Command::User(UserCommand::Rm { .. })
    ));
    assert!(matches!(
        parse(&["device", "remove", "web1"]).command,
        Command::Device(DeviceCommand::Rm { .. })
    ));
    assert!(matches!(
        parse(&["token", "revoke", "3"]).command,
        Command::Token(crate::access::TokenCommand::Rm { .. })
    ));
    for tail in [["--tail", "5"], ["-n", "5"], ["--records", "5"]] {
        let cli = parse(&["log", "tail", "web1", tail[0], tail[1]]);
        let Command::Log(LogCommand::Tail { lines, .. }) = cli.command else {
            panic!("not log tail");
        };
        assert_eq!(lines, 5, "{tail:?}");
    }
    for flag in ["--tail", "--limit"] {
        let Command::Events(args) = parse(&["events", flag, "3"]).command else {
            panic!("not events");
        };
        assert_eq!(args.limit, 3, "events {flag}");
        let Command::Audit(args) = parse(&["audit", flag, "7"]).command else {
            panic!("not audit");
        };
        assert_eq!(args.limit, 7, "audit {flag}");
    }
}
