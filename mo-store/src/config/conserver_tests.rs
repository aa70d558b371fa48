#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use rand::{Rng, SeedableRng};

use super::*;

const SITE: &str = include_str!("../../../tests/e2e/fixtures/conserver/site.cf");
const INCLUDES: &str = include_str!("../../../tests/e2e/fixtures/conserver/includes.cf");
const INCLUDED: &str = include_str!("../../../tests/e2e/fixtures/conserver/includes-defaults.inc");

fn loader(name: &str) -> Result<String, String> {
    match name {
        "includes-defaults.inc" => Ok(INCLUDED.to_string()),
        other => Err(format!("{other}: not found")),
    }
}

fn url<'a>(site: &'a SiteConfig, name: &str) -> &'a str {
    &site
        .device(name)
        .unwrap_or_else(|| panic!("no device {name}"))
        .url
}

fn has_note(site: &SiteConfig, line: usize, text: &str) -> bool {
    site.unsupported
        .iter()
        .any(|u| u.line == line && u.what.contains(text))
}

#[test]
fn site_fixture_maps_every_console_type() {
    let site = parse_conserver(SITE, "site.cf", &no_includes).unwrap();
    assert_eq!(url(&site, "web1"), "telnet://ts1.example.net:2002");
    assert_eq!(url(&site, "web2"), "telnet://ts1.example.net:2003");
    assert_eq!(url(&site, "db1"), "tcp://192.0.2.10:10007");
    assert_eq!(url(&site, "modem1"), "serial:///dev/ttyC1?baud=9600");
    assert_eq!(
        url(&site, "modem2"),
        "serial:///dev/ttyC5?baud=9600&flow=hardware"
    );
    assert_eq!(
        url(&site, "ttyS0"),
        "serial:///dev/ttyS0?baud=115200&parity=even"
    );
    assert_eq!(
        url(&site, "lab-ssh"),
        "exec:///bin/sh?arg=-c&arg=ssh+-t+lab.example.net"
    );
    assert_eq!(
        url(&site, "lab-shell"),
        "exec:///usr/bin/socat?arg=-&arg=TCP%3A127.0.0.1%3A7001"
    );
    assert_eq!(url(&site, "vm1"), "unix:///run/vms/vm1.sock");
    assert_eq!(site.devices.len(), 9);
    let web1 = site.device("web1").unwrap();
    assert_eq!(
        web1.settings.description.as_deref(),
        Some("front web server, rack 3")
    );
    assert!(site.device("db1").unwrap().settings.on_demand);
    assert!(!web1.settings.on_demand);
    let breaks = &web1.settings.break_sequences;
    assert_eq!(breaks.get(&4).map(String::as_str), Some("+\\d+\\d+"));
    assert_eq!(breaks.get(&5).map(String::as_str), Some("\\033c"));
    assert_eq!(breaks.get(&6).map(String::as_str), Some("\\r~\\^b"));
    assert!(!breaks.contains_key(&1), "defaults are not repeated");
}

#[test]
fn site_fixture_access_and_groups() {
    let site = parse_conserver(SITE, "site.cf", &no_includes).unwrap();
    let ops = site.user_groups.iter().find(|g| g.name == "ops").unwrap();
    assert_eq!(ops.members, ["alice", "bob", "carol"]);
    let oncall = site
        .user_groups
        .iter()
        .find(|g| g.name == "oncall")
        .unwrap();
    assert_eq!(oncall.members, ["dave", "alice", "bob", "carol"]);
    let rule = |subject: &str, role: &str, device: &str| {
        site.access.iter().any(|r| {
            r.subject == subject
                && r.role == role
                && site.device_groups.iter().any(|g| {
                    g.name == r.devices
                        && (g.members.iter().any(|m| m == device) || g.patterns == ["*"])
                })
        })
    };
    assert!(rule("@ops", "operator", "web1"));
    assert!(rule("erin", "viewer", "web2"));
    assert!(!rule("erin", "viewer", "web1"));
    assert!(rule("alice", "admin", "vm1"));
    // `rw !bob` on modem2: the group is granted member by member, without bob.
    assert!(rule("alice", "operator", "modem2") && rule("carol", "operator", "modem2"));
    assert!(!rule("bob", "operator", "modem2") && !rule("@ops", "operator", "modem2"));
    assert!(rule("@everyone", "operator", "lab-ssh"));
    let everyone = site
        .user_groups
        .iter()
        .find(|g| g.name == "everyone")
        .unwrap();
    assert!(everyone.members.contains(&"erin".to_string()));
    for user in ["alice", "bob", "carol", "dave", "erin"] {
        assert!(site.users.iter().any(|u| u.name == user), "{user}");
    }
}

#[test]
fn site_fixture_lists_what_it_drops() {
    let site = parse_conserver(SITE, "site.cf", &no_includes).unwrap();
    let line_of = |needle: &str| SITE.lines().position(|l| l.contains(needle)).unwrap() + 1;
    assert!(has_note(
        &site,
        line_of("delay 300"),
        "mo's `\\d` pauses 500 ms"
    ));
    assert!(has_note(&site, line_of("confirm yes"), "confirmation"));
    assert!(has_note(&site, line_of("console modem1"), "default break"));
    assert!(has_note(&site, line_of("rw !bob"), "`!bob`"));
    assert!(!has_note(&site, line_of("options crtscts"), "`!hupcl`"));
    assert!(has_note(&site, line_of("idlestring"), "`idlestring`"));
    assert!(has_note(&site, line_of("logfile /var"), "record log"));
    assert!(has_note(&site, line_of("logfile \"\""), "logging was off"));
    assert!(has_note(&site, line_of("allowed 10."), "not client hosts"));
    assert!(has_note(&site, line_of("trusted"), "not client hosts"));
    assert!(has_note(&site, line_of("primaryport"), "config *"));
    assert!(site.unsupported.iter().all(|u| u.file == "site.cf"));
}

#[test]
fn includes_and_quoted_names() {
    let site = parse_conserver(INCLUDES, "includes.cf", &loader).unwrap();
    assert_eq!(url(&site, "r3-sw1"), "telnet://cs3.example.net:7004");
    assert!(site.device("rack 3 console").is_none());
    assert!(
        site.unsupported
            .iter()
            .any(|u| u.file == "includes.cf" && u.line == 3 && u.what.contains("not imported"))
    );
    assert!(
        site.unsupported
            .iter()
            .any(|u| u.line == 4 && u.what.contains("aliases"))
    );
    assert!(
        site.unsupported
            .iter()
            .any(|u| u.line == 6 && u.what.contains("noop"))
    );
    assert!(
        site.unsupported
            .iter()
            .any(|u| u.line == 7 && u.what.contains("task"))
    );
    assert!(
        site.unsupported
            .iter()
            .any(|u| u.file == "includes-defaults.inc" && u.what.contains("initcmd"))
    );
    let admins = site
        .user_groups
        .iter()
        .find(|g| g.name == "admins")
        .unwrap();
    assert_eq!(admins.members, ["root", "zed"]);
    assert!(
        site.access
            .iter()
            .any(|r| r.subject == "@admins" && r.role == "operator")
    );
}

#[test]
fn ipmi_console_and_substitutions() {
    let text = "default * { master localhost; }\n\
        console bmc1 { type ipmi; host 10.1.0.21; username ADMIN; password secret; }\n\
        default c { type exec; exec /usr/bin/console-helper H P; execsubst H=hs,P=P04d; host cs9; portbase 100; portinc 10; }\n\
        console x1 { include c; port 3; }\n";
    let site = parse_conserver(text, "i.cf", &no_includes).unwrap();
    assert_eq!(url(&site, "bmc1"), "ipmi://ADMIN@10.1.0.21");
    assert!(has_note(&site, 2, "IPMI password"));
    assert_eq!(
        url(&site, "x1"),
        "exec:///usr/bin/console-helper?arg=cs9&arg=0130"
    );
    assert_eq!(radix36(71, true), "1Z");
}

#[test]
fn errors_name_file_and_line() {
    for (text, line, needle) in [
        (
            "console a { include nothere; type exec; }\n",
            1,
            "include nothere",
        ),
        (
            "default x { type exec; }\n\nconsole b { exec a; \n",
            3,
            "not closed",
        ),
        ("console c { type exec; exec \"abc; }\n", 1, "unterminated"),
        ("\n}\n", 2, "expected a block type"),
    ] {
        let e = parse_conserver(text, "bad.cf", &no_includes)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(&format!("bad.cf line {line}:")),
            "{text:?}: {e}"
        );
        assert!(e.contains(needle), "{e}");
    }
}

#[test]
fn random_input_never_panics() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0xc0_5e);
    let alphabet =
        b"{};#\\\" \n\tabcdefconsoledefaultbreakincludetypeexechostport0123456789!*@,=.-/&";
    for round in 0..3000 {
        let base = if round % 2 == 0 { SITE } else { INCLUDES };
        let mut b = base.as_bytes().to_vec();
        for _ in 0..rng.random_range(1..12) {
            let i = rng.random_range(0..b.len());
            match rng.random_range(0..3) {
                0 => b[i] = alphabet[rng.random_range(0..alphabet.len())],
                1 => {
                    b.remove(i);
                }
                _ => b.insert(i, alphabet[rng.random_range(0..alphabet.len())]),
            }
        }
        let _ = parse_conserver(&String::from_utf8_lossy(&b), "f.cf", &loader);
    }
    for _ in 0..1000 {
        let len = rng.random_range(0..120);
        let b: Vec<u8> = (0..len)
            .map(|_| alphabet[rng.random_range(0..alphabet.len())])
            .collect();
        let _ = parse_conserver(&String::from_utf8_lossy(&b), "f.cf", &loader);
    }
}
