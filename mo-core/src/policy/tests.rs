#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::error::Error;

/// rack3: web01, web02 and rack3-??; web: web*; dbs: re:^db[0-9]+$; lab: sim-01.
/// ops = {alice, carol}; dba = {dave}.
fn site() -> Policy {
    let mut p = Policy::new();
    p.add_device_group(
        DeviceGroup::new("rack3")
            .member("web01")
            .member("web02")
            .pattern("rack3-??")
            .unwrap(),
    )
    .unwrap()
    .add_device_group(DeviceGroup::new("web").pattern("web*").unwrap())
    .unwrap()
    .add_device_group(DeviceGroup::new("dbs").pattern("re:^db[0-9]+$").unwrap())
    .unwrap()
    .add_device_group(DeviceGroup::new("lab").member("sim-01"))
    .unwrap()
    .add_user_group(UserGroup::new("ops").member("alice").member("carol"))
    .unwrap()
    .add_user_group(UserGroup::new("dba").member("dave"))
    .unwrap()
    .add_role(Role::new("boss", [Permission::Admin]))
    .unwrap();
    for grant in [
        Grant::to_user("alice", Role::VIEWER, "dbs"),
        Grant::to_group("ops", Role::OPERATOR, "rack3"),
        Grant::to_group("dba", Role::ADMIN, "dbs"),
        Grant::to_user("erin", Role::VIEWER, "web"),
        Grant::to_user("erin", Role::OPERATOR, "rack3"),
        Grant::to_user("erin", Role::OPERATOR, "lab"),
        Grant::to_user("root", Role::ADMIN, ALL_DEVICES),
        Grant::to_user("gail", "boss", "lab"),
    ] {
        p.add_grant(grant).unwrap();
    }
    p
}

#[test]
fn decisions() {
    use Permission::*;
    let p = site();
    let cases: &[(&str, Permission, &str, bool, &str)] = &[
        // deny by default / unknown user
        (
            "bob",
            List,
            "web01",
            false,
            "bob may not list web01: bob has no grants",
        ),
        (
            "",
            Spy,
            "web01",
            false,
            " may not spy on web01:  has no grants",
        ),
        // user grant
        (
            "alice",
            Spy,
            "db1",
            true,
            "alice may spy on db1: role viewer on group dbs",
        ),
        (
            "alice",
            LogRead,
            "db42",
            true,
            "alice may read the log of db42: role viewer on group dbs",
        ),
        // user-group grant
        (
            "carol",
            Attach,
            "web01",
            true,
            "carol may attach web01: role operator on group rack3 (through user group ops)",
        ),
        // explicit member vs pattern
        (
            "carol",
            Attach,
            "rack3-ab",
            true,
            "carol may attach rack3-ab: role operator on group rack3 (through user group ops)",
        ),
        (
            "carol",
            Attach,
            "rack3-abc",
            false,
            "carol may not attach rack3-abc: no grant covers rack3-abc",
        ),
        (
            "carol",
            Attach,
            "web03",
            false,
            "carol may not attach web03: no grant covers web03",
        ),
        // several grants: direct (dbs) and through a group (rack3)
        (
            "alice",
            Attach,
            "web01",
            true,
            "alice may attach web01: role operator on group rack3 (through user group ops)",
        ),
        (
            "alice",
            Attach,
            "db1",
            false,
            "alice may not attach db1: role viewer on group dbs lacks attach",
        ),
        (
            "alice",
            Force,
            "web01",
            false,
            "alice may not force web01: role operator on group rack3 lacks force (through user group ops)",
        ),
        (
            "alice",
            Spy,
            "sim-01",
            false,
            "alice may not spy on sim-01: no grant covers sim-01",
        ),
        // any grant allowing wins, even after one that lacks the action
        (
            "erin",
            Attach,
            "web01",
            true,
            "erin may attach web01: role operator on group rack3",
        ),
        (
            "erin",
            Attach,
            "web77",
            false,
            "erin may not attach web77: role viewer on group web lacks attach",
        ),
        (
            "erin",
            Break,
            "sim-01",
            true,
            "erin may send a break to sim-01: role operator on group lab",
        ),
        (
            "erin",
            PowerControl,
            "web01",
            false,
            "erin may not switch the power of web01: role viewer on group web lacks power.control",
        ),
        // admin implies everything, on what it covers only
        (
            "root",
            PowerControl,
            "anything",
            true,
            "root may switch the power of anything: role admin on group all",
        ),
        (
            "dave",
            Force,
            "db7",
            true,
            "dave may force db7: role admin on group dbs (through user group dba)",
        ),
        (
            "dave",
            Force,
            "web01",
            false,
            "dave may not force web01: no grant covers web01",
        ),
        (
            "gail",
            EventsAck,
            "sim-01",
            true,
            "gail may acknowledge events of sim-01: role boss on group lab",
        ),
        (
            "gail",
            Gang,
            "sim-02",
            false,
            "gail may not gang sim-02: no grant covers sim-02",
        ),
        // names are case-sensitive
        (
            "Alice",
            Spy,
            "db1",
            false,
            "Alice may not spy on db1: Alice has no grants",
        ),
        (
            "alice",
            Spy,
            "DB1",
            false,
            "alice may not spy on DB1: no grant covers DB1",
        ),
    ];
    for &(user, action, device, allowed, reason) in cases {
        let d = p.decide(user, action, device);
        assert_eq!(d.allowed(), allowed, "{user} {action} {device}: {d}");
        assert_eq!(d.reason(), reason, "{user} {action} {device}");
        assert_eq!(p.allows(user, action, device), allowed);
        assert_eq!((d.user(), d.action(), d.device()), (user, action, device));
        assert_eq!(d.into_result().is_ok(), allowed);
    }
}

#[test]
fn via_names_the_grant_the_decision_rests_on() {
    let p = site();
    let ops = Grant::to_group("ops", Role::OPERATOR, "rack3");
    assert_eq!(
        p.decide("alice", Permission::Attach, "web01").via(),
        Some(&ops)
    );
    assert_eq!(
        p.decide("alice", Permission::Force, "web01").via(),
        Some(&ops)
    );
    assert_eq!(p.decide("alice", Permission::Spy, "sim-01").via(), None);
    assert_eq!(p.decide("nobody", Permission::List, "web01").via(), None);
    let err = p
        .decide("alice", Permission::Force, "web01")
        .into_result()
        .unwrap_err();
    assert!(
        matches!(&err, Error::Denied { reason: m } if m.starts_with("alice may not force web01: "))
    );
}

#[test]
fn empty_policy_denies_everything() {
    let p = Policy::new();
    for action in Permission::ALL {
        let d = p.decide("root", action, "web01");
        assert!(!d.allowed());
        assert!(d.reason().ends_with("root has no grants"), "{d}");
    }
    assert_eq!(p.roles().count(), 3);
    assert_eq!(
        p.device_groups()
            .map(|g| g.name.as_str())
            .collect::<Vec<_>>(),
        ["all"]
    );
}

#[test]
fn allowed_devices_filters_in_order() {
    let p = site();
    let devices = ["db1", "web01", "rack3-xy", "sim-01", "web99", "db"];
    let cases: &[(&str, Permission, &[&str])] = &[
        ("alice", Permission::List, &["db1", "web01", "rack3-xy"]),
        ("alice", Permission::Attach, &["web01", "rack3-xy"]),
        ("alice", Permission::Force, &[]),
        (
            "erin",
            Permission::List,
            &["web01", "rack3-xy", "sim-01", "web99"],
        ),
        ("erin", Permission::Attach, &["web01", "rack3-xy", "sim-01"]),
        ("root", Permission::Admin, &devices),
        ("nobody", Permission::List, &[]),
    ];
    for &(user, action, want) in cases {
        assert_eq!(
            p.allowed_devices(user, action, &devices),
            want,
            "{user} {action}"
        );
        for device in devices {
            assert_eq!(p.allows(user, action, device), want.contains(&device));
        }
    }
}

#[test]
fn redefinitions_take_effect() {
    let mut p = site();
    assert!(!p.allows("erin", Permission::Attach, "web77"));
    let viewer = Role::new(
        Role::VIEWER,
        [Permission::List, Permission::Spy, Permission::Attach],
    );
    p.add_role(viewer.clone()).unwrap();
    assert_eq!(p.role(Role::VIEWER), Some(&viewer));
    assert!(p.allows("erin", Permission::Attach, "web77"));
    assert!(!p.allows("alice", Permission::LogRead, "db1"));

    p.add_user_group(UserGroup::new("ops").member("carol"))
        .unwrap();
    assert!(!p.allows("alice", Permission::Attach, "web01"));
    assert!(p.allows("carol", Permission::Attach, "web01"));
    assert_eq!(p.user_groups().count(), 2);

    p.add_device_group(DeviceGroup::new("rack3").member("web09"))
        .unwrap();
    assert!(!p.allows("carol", Permission::Attach, "web01"));
    assert!(p.allows("carol", Permission::Attach, "web09"));
    let groups: Vec<&str> = p.groups_of("web09").map(|g| g.name.as_str()).collect();
    assert_eq!(groups, ["all", "rack3", "web"]);

    let before = p.grants().count();
    p.add_grant(Grant::to_user("erin", Role::VIEWER, "web"))
        .unwrap();
    assert_eq!(
        p.grants().count(),
        before,
        "adding an existing grant changes nothing"
    );
}

#[test]
fn policy_errors_name_what_is_wrong() {
    let mut p = site();
    let checks: &[(Grant, &str)] = &[
        (
            Grant::to_user("alice", "operatr", "rack3"),
            "bad grant `role operatr on group rack3 for user alice`: unknown role `operatr`",
        ),
        (
            Grant::to_user("alice", Role::VIEWER, "rack4"),
            "bad grant `role viewer on group rack4 for user alice`: unknown device group `rack4`",
        ),
        (
            Grant::to_group("opz", Role::VIEWER, "rack3"),
            "bad grant `role viewer on group rack3 for user group opz`: unknown user group `opz`",
        ),
        (
            Grant::to_user("al ice", Role::VIEWER, "rack3"),
            "bad user `al ice`: names cannot",
        ),
        (
            Grant::to_user("", Role::VIEWER, "rack3"),
            "bad user ``: empty name",
        ),
    ];
    let grants = p.grants().count();
    for (grant, want) in checks {
        let err = p.add_grant(grant.clone()).unwrap_err().to_string();
        assert!(err.starts_with(want), "{err}");
    }
    assert_eq!(p.grants().count(), grants, "failed grants are not added");

    let err = p
        .add_device_group(DeviceGroup::new("all").member("x"))
        .unwrap_err();
    assert!(err.to_string().contains("built-in group `all`"), "{err}");
    let err = p.add_device_group(DeviceGroup::new("")).unwrap_err();
    assert_eq!(err.to_string(), "bad device group ``: empty name");
    let err = p.add_role(Role::new("a\tb", [])).unwrap_err();
    assert!(err.to_string().starts_with("bad role `a\tb`"), "{err}");
    let err = p
        .add_user_group(UserGroup::new("g").member("x y"))
        .unwrap_err();
    assert_eq!(err.to_string(), "bad user group `g`: bad member name `x y`");
    assert!(p.user_group("g").is_none());
    assert!(
        p.device_group("all")
            .is_some_and(|g| g.contains("whatever"))
    );
}

#[test]
fn patterns() {
    let cases: &[(&str, &str, bool)] = &[
        ("web*", "web", true),
        ("web*", "web01", true),
        ("web*", "xweb01", false),
        ("web*", "Web01", false),
        ("rack3-??", "rack3-01", true),
        ("rack3-??", "rack3-1", false),
        ("rack3-??", "rack3-001", false),
        ("re:^db[0-9]+$", "db1", true),
        ("re:^db[0-9]+$", "db12", true),
        ("re:^db[0-9]+$", "db", false),
        ("re:^db[0-9]+$", "xdb1", false),
        ("re:^db[0-9]+$", "db1x", false),
        ("re:db", "xdbx", true),
        ("re:(?i)^WEB", "web01", true),
        ("pdu[0-9]", "pdu5", true),
        ("pdu[0-9]", "pdua", false),
        ("pdu[!0-9]", "pdua", true),
        ("pdu[^0-9]", "pdu5", false),
        ("a.b", "a.b", true),
        ("a.b", "axb", false),
        ("a\\*b", "a*b", true),
        ("a\\*b", "axb", false),
        ("a+b", "aab", false),
        ("(x)|y", "(x)|y", true),
        ("(x)|y", "y", false),
        ("[-a]", "-", true),
        ("[a-]", "-", true),
        ("[a-]", "b", false),
        ("[]]", "]", true),
        ("[!]]", "]", false),
        ("[&&]", "&", true),
        ("[~~]", "~", true),
        ("[\\]]", "]", true),
        ("*", "", true),
        ("*", "any thing", true),
        ("?", "", false),
        ("é?", "éx", true),
        ("a*b*c", "abxbc", true),
        ("a*b*c", "acb", false),
        ("sim-0[1-5]", "sim-05", true),
        ("sim-0[1-5]", "sim-06", false),
    ];
    for &(pattern, name, want) in cases {
        let p = NamePattern::parse(pattern).unwrap();
        assert_eq!(p.matches(name), want, "{pattern} on {name}");
        assert_eq!(p.as_str(), pattern);
        assert_eq!(p.is_regex(), pattern.starts_with("re:"));
        // a group with this pattern and another one decides the same through its compiled form
        let group = DeviceGroup::new("g")
            .pattern(pattern)
            .unwrap()
            .pattern("zzz")
            .unwrap();
        let mut policy = Policy::new();
        policy.add_device_group(group.clone()).unwrap();
        policy
            .add_grant(Grant::to_user("u", Role::VIEWER, "g"))
            .unwrap();
        assert_eq!(group.contains(name), want, "{pattern} on {name} (group)");
        assert_eq!(
            policy.allows("u", Permission::Spy, name),
            want,
            "{pattern} on {name} (policy)"
        );
    }
}

#[test]
fn pattern_errors() {
    let long = "a".repeat(1025);
    let cases: &[(&str, &str)] = &[
        ("", "bad name pattern ``: empty pattern"),
        ("re:", "bad name pattern `re:`: empty regex after `re:`"),
        (
            "web\u{9b}*",
            "bad name pattern `web\u{9b}*`: control characters are not allowed",
        ),
        ("re:(", "bad name pattern `re:(`: invalid regex: "),
        (
            "[abc",
            "bad name pattern `[abc`: unclosed `[` (no matching `]`)",
        ),
        ("[", "bad name pattern `[`: unclosed `[`"),
        ("[!", "bad name pattern `[!`: unclosed `[`"),
        ("[a\\", "bad name pattern `[a\\`: unclosed `[`"),
        (
            "ab\\",
            "bad name pattern `ab\\`: `\\` at the end escapes nothing",
        ),
        (
            "[z-a]",
            "bad name pattern `[z-a]`: bad range `z-a` (end before start)",
        ),
        (&long, "longer than 1024 bytes"),
    ];
    for &(pattern, want) in cases {
        let err = NamePattern::parse(pattern).unwrap_err().to_string();
        assert!(
            err.starts_with(want) || err.ends_with(want),
            "{pattern}: {err}"
        );
        assert!(pattern.parse::<NamePattern>().is_err());
    }
}

#[test]
fn actions_parse_and_print() {
    for action in Permission::ALL {
        assert_eq!(action.to_string().parse::<Permission>().unwrap(), action);
        assert_eq!(action.to_string(), action.name());
    }
    let names: Vec<String> = Permission::ALL.iter().map(ToString::to_string).collect();
    assert_eq!(
        names.join(" "),
        "list spy attach force join break log.read log.read_input log.note power.status \
         power.control macro.run gang events.ack events.raise host.show admin"
    );
    let cases: &[(&str, &str)] = &[
        (
            "Force",
            "bad action `Force`: unknown action; expected one of list, spy, attach,",
        ),
        ("log", "bad action `log`: unknown action"),
        ("log.read ", "bad action `log.read `: unknown action"),
        (
            "power-control",
            "bad action `power-control`: unknown action",
        ),
        ("", "bad action ``: empty action name"),
    ];
    for &(input, want) in cases {
        let err = input.parse::<Permission>().unwrap_err().to_string();
        assert!(err.starts_with(want), "{input}: {err}");
    }
}

#[test]
fn action_sets() {
    let set: PermissionSet = "list, spy ,log.read".parse().unwrap();
    assert_eq!(set, Role::builtin()[0].actions);
    assert_eq!(set.to_string(), "list,spy,log.read");
    assert_eq!(set.len(), 3);
    assert!(set.allows(Permission::Spy) && !set.allows(Permission::Attach));
    assert_eq!("".parse::<PermissionSet>().unwrap(), PermissionSet::empty());
    let err = "list,frob"
        .parse::<PermissionSet>()
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("bad action set `list,frob`: `frob`: unknown action"),
        "{err}"
    );

    let admin_only = PermissionSet::empty().with(Permission::Admin);
    assert!(Permission::ALL.iter().all(|&a| admin_only.allows(a)));
    assert!(!admin_only.contains(Permission::Spy));
    let mut s = PermissionSet::all();
    assert_eq!(s.len(), Permission::ALL.len());
    assert!(s.remove(Permission::Admin) && !s.remove(Permission::Admin));
    assert!(!s.allows(Permission::Admin) && s.allows(Permission::Force));
    assert!(s.insert(Permission::Admin) && !s.insert(Permission::Admin));

    let [viewer, operator, admin] = Role::builtin();
    assert_eq!(
        operator.actions.to_string(),
        "list,spy,attach,join,break,log.read,log.read_input,log.note,power.status,host.show"
    );
    assert!(!viewer.actions.allows(Permission::LogReadInput));
    assert_eq!(viewer.actions.union(operator.actions), operator.actions);
    assert_eq!(admin.actions, PermissionSet::all());
}

/// A naive matcher for globs made of literals, `*` and `?`, to check the translation against.
fn naive_glob(pattern: &[char], name: &[char]) -> bool {
    match (pattern.first(), name.first()) {
        (None, _) => name.is_empty(),
        (Some('*'), _) => {
            naive_glob(&pattern[1..], name) || (!name.is_empty() && naive_glob(pattern, &name[1..]))
        }
        (Some('?'), Some(_)) => naive_glob(&pattern[1..], &name[1..]),
        (Some(p), Some(n)) if p == n => naive_glob(&pattern[1..], &name[1..]),
        _ => false,
    }
}

fn random_string(rng: &mut StdRng, alphabet: &[char], max_len: usize) -> String {
    let len = rng.random_range(0..=max_len);
    (0..len)
        .map(|_| alphabet[rng.random_range(0..alphabet.len())])
        .collect()
}

#[test]
fn globs_agree_with_a_naive_matcher() {
    let mut rng = StdRng::seed_from_u64(0x0090_11c7);
    for _ in 0..3000 {
        let pattern = random_string(&mut rng, &['a', 'b', '.', '*', '?'], 7);
        if pattern.is_empty() {
            continue;
        }
        let compiled = NamePattern::parse(&pattern).unwrap();
        let p: Vec<char> = pattern.chars().collect();
        for _ in 0..10 {
            let name = random_string(&mut rng, &['a', 'b', '.'], 8);
            let n: Vec<char> = name.chars().collect();
            assert_eq!(
                compiled.matches(&name),
                naive_glob(&p, &n),
                "{pattern} on {name}"
            );
        }
    }
}

#[test]
fn random_input_never_panics() {
    let mut rng = StdRng::seed_from_u64(0x5eed_0f90_11c7);
    let alphabet = [
        '*', '?', '[', ']', '!', '^', '-', '\\', 'r', 'e', ':', '.', '(', ')', '+', '{', '}', '|',
        'a', '0', '9', '&', '~', '$', ',', ' ', 'é', '\0', 'l', 'o', 'g',
    ];
    for _ in 0..2000 {
        let text = random_string(&mut rng, &alphabet, 16);
        if let Ok(pattern) = NamePattern::parse(&text) {
            let name = random_string(&mut rng, &alphabet, 12);
            let _ = pattern.matches(&name);
            let group = DeviceGroup::new("g")
                .pattern(&text)
                .unwrap()
                .pattern("x*")
                .unwrap();
            let mut policy = Policy::new();
            policy.add_device_group(group).unwrap();
            let _ = policy.groups_of(&name).count();
        }
        let _ = text.parse::<Permission>();
        let _ = text.parse::<PermissionSet>();
        let bytes: Vec<u8> = (0..rng.random_range(0..16)).map(|_| rng.random()).collect();
        let lossy = String::from_utf8_lossy(&bytes);
        let _ = NamePattern::parse(&lossy);
    }
}

/// Issue 13 item 5: a group whose patterns match every name is not the built-in `all`.
#[test]
fn only_the_builtin_all_group_is_global() {
    let mut policy = Policy::new();
    policy
        .add_device_group(DeviceGroup::new("star").pattern("*").unwrap())
        .unwrap()
        .add_device_group(DeviceGroup::new("dot").pattern("re:.").unwrap())
        .unwrap()
        .add_device_group(DeviceGroup::new("named").member("*"))
        .unwrap()
        .add_user_group(UserGroup::new("roots").member("root"))
        .unwrap()
        .add_grant(Grant::to_user("mallory", Role::ADMIN, "star"))
        .unwrap()
        .add_grant(Grant::to_user("mallory", Role::ADMIN, "dot"))
        .unwrap()
        .add_grant(Grant::to_user("mallory", Role::ADMIN, "named"))
        .unwrap()
        .add_grant(Grant::to_user("mallory", Role::VIEWER, "all"))
        .unwrap()
        .add_grant(Grant::to_group("roots", Role::ADMIN, "all"))
        .unwrap();
    // Matching every name makes mallory admin of each device, but not of every device.
    assert!(policy.allows("mallory", Permission::Admin, "web01"));
    assert!(policy.allows("mallory", Permission::Admin, EVERY_DEVICE));
    let no = policy.decide_global("mallory", Permission::Admin);
    assert!(!no.allowed());
    assert_eq!(no.device(), EVERY_DEVICE);
    assert_eq!(
        no.reason(),
        "mallory may not administer every device: role viewer on group all lacks admin"
    );
    assert!(policy.allows_global("mallory", Permission::List));
    assert!(policy.allows_global("root", Permission::Admin));
    assert_eq!(
        policy.decide_global("root", Permission::Admin).reason(),
        "root may administer every device: role admin on group all (through user group roots)"
    );
    assert!(!policy.allows_global("nobody", Permission::List));
    assert_eq!(
        policy.decide_global("nobody", Permission::List).reason(),
        "nobody may not list every device: only a grant on the built-in group all covers every device"
    );
    assert!(policy.allows_somewhere("mallory", Permission::MacroRun));
    assert!(!policy.allows_somewhere("nobody", Permission::List));
}
