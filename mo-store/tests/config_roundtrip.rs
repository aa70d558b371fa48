//! Migration fixtures end to end: conserver and ConMan configurations are imported into a store,
//! exported as TOML and imported again with no changes; bad files leave the store untouched.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use mo_store::Store;
use mo_store::config::{self, Format, PlanOptions};

fn fixtures(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/e2e/fixtures")
        .join(kind)
}

fn store() -> (tempfile::TempDir, Store) {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path().join("mo.db")).unwrap();
    (tmp, store)
}

/// Import `path`, export, import the export into the same and into a fresh store: no changes.
fn round_trip(path: &Path, format: Format) -> config::SiteConfig {
    let (_tmp, store) = store();
    let site = config::read_file(path, Some(format)).unwrap();
    assert!(!site.devices.is_empty(), "{}: no devices", path.display());
    let plan = config::plan(&site, &store, &PlanOptions::default()).unwrap();
    let groups = site.user_groups.len()
        + site
            .device_groups
            .iter()
            .filter(|g| g.name != mo_core::policy::ALL_DEVICES)
            .count();
    assert_eq!(
        plan.adds.len(),
        site.devices.len() + site.users.len() + groups + site.access.len(),
        "{plan}"
    );
    config::apply(&plan, &store).unwrap();
    let again = config::plan(&site, &store, &PlanOptions::default()).unwrap();
    assert!(
        again.is_empty(),
        "{}: second import changes:\n{again}",
        path.display()
    );

    let text = config::to_toml(&config::export(&store).unwrap()).unwrap();
    let exported = config::parse_toml(&text, "export.toml").unwrap();
    let plan = config::plan(&exported, &store, &PlanOptions { prune: true }).unwrap();
    assert!(
        plan.is_empty(),
        "{}: export re-import changes:\n{plan}\n{text}",
        path.display()
    );

    let (_tmp2, fresh) = self::store();
    config::apply(
        &config::plan(&exported, &fresh, &PlanOptions::default()).unwrap(),
        &fresh,
    )
    .unwrap();
    assert_eq!(fresh.list_devices().unwrap(), store.list_devices().unwrap());
    assert_eq!(fresh.list_grants().unwrap().len(), site.access.len());
    assert_eq!(
        config::to_toml(&config::export(&fresh).unwrap()).unwrap(),
        text
    );
    site
}

fn syntax_check(file: &Path) {
    let conserver = Path::new("/usr/sbin/conserver");
    assert!(
        conserver.exists(),
        "{} is missing, so {} cannot be checked with `conserver -S`: install conserver-server \
         (scripts/setup.sh installs it)",
        conserver.display(),
        file.display()
    );
    let out = Command::new(conserver)
        .arg("-S")
        .arg("-C")
        .arg(file.file_name().unwrap())
        .current_dir(file.parent().unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "conserver -S -C {} failed:\n{}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn conserver_fixtures_are_valid_and_round_trip() {
    let mut seen = 0;
    for entry in std::fs::read_dir(fixtures("conserver")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("cf") {
            continue;
        }
        syntax_check(&path);
        let site = round_trip(&path, Format::Conserver);
        assert!(
            site.unsupported
                .iter()
                .all(|u| u.line > 0 && !u.file.is_empty()),
            "{:?}",
            site.unsupported
        );
        seen += 1;
    }
    assert!(seen >= 3, "only {seen} conserver fixtures");
}

#[test]
fn conman_fixtures_round_trip() {
    let mut seen = 0;
    for entry in std::fs::read_dir(fixtures("conman")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("conf") {
            continue;
        }
        round_trip(&path, Format::Conman);
        seen += 1;
    }
    assert!(seen >= 2, "only {seen} conman fixtures");
}

#[test]
fn format_is_detected_from_the_name() {
    let site = config::read_file(&fixtures("conman").join("cluster.conf"), None).unwrap();
    assert!(site.device("bmc-a").is_some());
    let site = config::read_file(&fixtures("conserver").join("includes.cf"), None).unwrap();
    assert!(
        site.device("r3-sw1").is_some(),
        "#include read relative to the file"
    );
    let tmp = tempfile::tempdir().unwrap();
    let odd = tmp.path().join("devices.txt");
    std::fs::write(&odd, "just some words\n").unwrap();
    let err = config::read_file(&odd, None).unwrap_err();
    assert!(err.to_string().contains("--format"), "{err}");
    assert_eq!(Format::detect(Path::new("site.toml")), Some(Format::Toml));
    assert_eq!(
        Format::detect(Path::new("/etc/conserver.cf")),
        Some(Format::Conserver)
    );
    assert_eq!(
        Format::detect(Path::new("/etc/conman.conf")),
        Some(Format::Conman)
    );
    assert_eq!(Format::sniff("name,url\n"), Some(Format::Csv));
}

#[test]
fn bad_files_leave_the_store_untouched() {
    let (tmp, store) = store();
    let good = tmp.path().join("devices.csv");
    std::fs::write(&good, "name,url\nweb01,sim://web01\n").unwrap();
    let site = config::read_file(&good, None).unwrap();
    config::apply(
        &config::plan(&site, &store, &PlanOptions::default()).unwrap(),
        &store,
    )
    .unwrap();
    let generation = store.generation().unwrap();
    let before = store.list_devices().unwrap();

    let cases = [
        (
            "bad.csv",
            "name,url\nweb02,sim://web02\nweb03,not a url\n",
            "line 3, column 2 (url)",
        ),
        (
            "bad.toml",
            "[[device]]\nname = \"web02\"\nurl = \"sim://web02\"\nreplay_lines = -1\n",
            "line 4",
        ),
        (
            "conserver.cf",
            "console web02 { type exec; exec /bin/sh;\n\nconsole web03 { }\n",
            "conserver.cf line 3",
        ),
        (
            "conman.conf",
            "console name=\"web02\" dev=\"/dev/ttyS0\"\nconsole name=\"web03\" dev=\"/dev/ttyS1\" baud=9600\n",
            "conman.conf line 2",
        ),
    ];
    for (name, text, needle) in cases {
        let path = tmp.path().join(name);
        std::fs::write(&path, text).unwrap();
        let err = config::read_file(&path, None).unwrap_err().to_string();
        assert!(err.contains(needle), "{name}: {err}");
    }
    // A file that parses but fails to apply (a device in it has a URL the store refuses is not
    // possible after parsing, so use a key registered to another user) changes nothing either.
    let key =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILM+rvN+ot98qgEN796jTiQfZfG1KaT0PtFDJ/XFSqti a@b";
    store.add_user("bob", None).unwrap();
    store.add_ssh_key("bob", key).unwrap();
    let text = format!(
        "[[device]]\nname = \"web09\"\nurl = \"sim://web09\"\n\n[[user]]\nname = \"eve\"\nssh_keys = [\"{key}\"]\n"
    );
    let site = config::parse(&text, "t.toml", Format::Toml).unwrap();
    let plan = config::plan(&site, &store, &PlanOptions::default()).unwrap();
    assert!(config::apply(&plan, &store).is_err());
    assert_eq!(store.generation().unwrap(), generation);
    assert_eq!(store.list_devices().unwrap(), before);
    assert!(store.list_users().unwrap().iter().all(|u| u.name != "eve"));
}

/// The access lists of a conserver configuration become groups and grants that the policy
/// enforces, exactly as conserver would have.
#[test]
fn conserver_access_lists_become_the_policy() {
    use mo_core::policy::Permission;
    let (_tmp, store) = store();
    let site = config::read_file(&fixtures("conserver").join("site.cf"), None).unwrap();
    config::apply(
        &config::plan(&site, &store, &PlanOptions::default()).unwrap(),
        &store,
    )
    .unwrap();
    let policy = store.load_policy().unwrap();
    // `rw @ops` on web1: an operator may attach; `ro erin` on web2: a viewer may only spy.
    assert!(policy.allows("alice", Permission::Attach, "web1"));
    assert!(policy.allows("erin", Permission::Spy, "web2"));
    assert!(!policy.allows("erin", Permission::Attach, "web2"));
    assert!(!policy.allows("erin", Permission::Spy, "web1"));
    // `rw !bob` on modem2.
    assert!(policy.allows("carol", Permission::Attach, "modem2"));
    assert!(!policy.allows("bob", Permission::Attach, "modem2"));
    // An admin of the configuration may do anything anywhere.
    assert!(policy.allows("alice", Permission::Force, "vm1"));
    // A failing grant leaves nothing behind: one rule naming an unknown role.
    let (_tmp2, fresh) = self::store();
    let mut broken = site.clone();
    broken.access.push(config::AccessRule {
        subject: "erin".into(),
        role: "no-such-role".into(),
        devices: broken.access[0].devices.clone(),
    });
    let plan = config::plan(&broken, &fresh, &PlanOptions::default()).unwrap();
    let err = config::apply(&plan, &fresh).unwrap_err().to_string();
    assert!(err.contains("no-such-role"), "{err}");
    assert!(fresh.list_devices().unwrap().is_empty());
    assert!(fresh.list_user_groups().unwrap().is_empty());
    assert!(fresh.list_device_groups().unwrap().is_empty());
    assert!(fresh.list_grants().unwrap().is_empty());
}
