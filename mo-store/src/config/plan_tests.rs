#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use super::*;
use crate::config::{Format, parse, parse_toml, to_toml};

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILM+rvN+ot98qgEN796jTiQfZfG1KaT0PtFDJ/XFSqti a@b";

fn store() -> (tempfile::TempDir, Store) {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path().join("mo.db")).unwrap();
    (tmp, store)
}

#[test]
fn add_change_keep_and_prune() {
    let (_tmp, store) = store();
    store
        .add_device(&Device::new("old1", "sim://old1"))
        .unwrap();
    store
        .add_device(&Device::new("web01", "sim://web01"))
        .unwrap();
    store.add_user("bob", Some("pw")).unwrap();
    let csv = "name,url,on_demand\nweb01,serial:///dev/ttyS0,yes\nnew1,sim://new1,\n";
    let site = parse(csv, "d.csv", Format::Csv).unwrap();
    let p = plan(&site, &store, &PlanOptions::default()).unwrap();
    assert_eq!(
        p.adds,
        [Change::AddDevice(site.device("new1").unwrap().clone())]
    );
    let Change::ChangeDevice { fields, .. } = &p.changes[0] else {
        panic!("{p:?}")
    };
    let names: Vec<_> = fields.iter().map(|f| f.field.as_str()).collect();
    assert_eq!(names, ["url", "on_demand"]);
    assert!(p.removals.is_empty());
    assert_eq!(
        p.not_in_file,
        ["device old1"],
        "users are not compared: the sheet has none"
    );
    let text = p.to_string();
    assert!(text.contains("+ device new1 (sim://new1)"), "{text}");
    assert!(
        text.contains("~ device web01: url `sim://web01` → `serial:///dev/ttyS0`"),
        "{text}"
    );
    apply(&p, &store).unwrap();
    assert!(store.device("web01").unwrap().settings.on_demand);
    assert!(
        plan(&site, &store, &PlanOptions::default())
            .unwrap()
            .is_empty()
    );
    let pruned = plan(&site, &store, &PlanOptions { prune: true }).unwrap();
    assert_eq!(pruned.removals, [Change::RemoveDevice("old1".into())]);
    apply(&pruned, &store).unwrap();
    assert!(store.get_device("old1").unwrap().is_none());
}

#[test]
fn users_hashes_and_keys_round_trip() {
    let (_tmp, store) = store();
    store.add_user("alice", Some("s3cret")).unwrap();
    store.add_ssh_key("alice", KEY).unwrap();
    store.add_user("carol", None).unwrap();
    let exported = export(&store).unwrap();
    let text = to_toml(&exported).unwrap();
    assert!(text.contains("$argon2id$"), "{text}");
    assert!(!text.contains("s3cret"));
    let (_tmp2, other) = self::store();
    let site = parse_toml(&text, "site.toml").unwrap();
    let p = plan(&site, &other, &PlanOptions::default()).unwrap();
    assert_eq!(p.adds.len(), 2);
    apply(&p, &other).unwrap();
    assert!(
        other.verify_password("alice", "s3cret").unwrap(),
        "the hash carried over"
    );
    assert_eq!(other.ssh_keys("alice").unwrap().len(), 1);
    assert!(
        plan(&site, &other, &PlanOptions::default())
            .unwrap()
            .is_empty()
    );
    assert_eq!(to_toml(&export(&other).unwrap()).unwrap(), text);
    // Without a hash in the file the password stays; a key not in the file is listed, then pruned.
    let bare = parse_toml("[[user]]\nname = \"alice\"\n", "u.toml").unwrap();
    let p = plan(&bare, &other, &PlanOptions::default()).unwrap();
    assert!(p.is_empty());
    assert!(
        p.not_in_file
            .iter()
            .any(|s| s.starts_with("SSH key SHA256:") && s.ends_with("of user alice")),
        "{p:?}"
    );
    assert!(p.not_in_file.contains(&"user carol".to_string()));
    let p = plan(&bare, &other, &PlanOptions { prune: true }).unwrap();
    apply(&p, &other).unwrap();
    assert!(other.ssh_keys("alice").unwrap().is_empty());
    assert!(other.verify_password("alice", "s3cret").unwrap());
    assert!(
        other
            .list_users()
            .unwrap()
            .iter()
            .all(|u| u.name != "carol")
    );
}

#[test]
fn failing_apply_changes_nothing() {
    let (_tmp, store) = store();
    store.add_user("bob", None).unwrap();
    store.add_ssh_key("bob", KEY).unwrap();
    let text = format!(
        "[[device]]\nname = \"a1\"\nurl = \"sim://a1\"\n\n[[user]]\nname = \"zed\"\nssh_keys = [\"{KEY}\"]\n\n[[user]]\nname = \"bob\"\nssh_keys = [\"{KEY}\"]\n"
    );
    let site = parse_toml(&text, "s.toml").unwrap();
    let p = plan(&site, &store, &PlanOptions::default()).unwrap();
    let generation = store.generation().unwrap();
    let err = apply(&p, &store).unwrap_err().to_string();
    assert!(err.contains("already registered for user `bob`"), "{err}");
    assert!(store.get_device("a1").unwrap().is_none(), "rolled back");
    assert_eq!(store.generation().unwrap(), generation);
    assert!(store.list_users().unwrap().iter().all(|u| u.name != "zed"));
}

#[test]
fn groups_and_grants_are_planned_kept_and_pruned() {
    let (_tmp, store) = store();
    let full = r#"
[[device]]
name = "web01"
url = "sim://web01"

[[user]]
name = "alice"

[[user]]
name = "bob"

[[user_group]]
name = "ops"
members = ["alice", "bob"]

[[device_group]]
name = "web"
patterns = ["web*"]

[[access]]
subject = "@ops"
role = "operator"
devices = "web"

[[access]]
subject = "bob"
role = "viewer"
devices = "all"
"#;
    let site = parse_toml(full, "site.toml").unwrap();
    let p = plan(&site, &store, &PlanOptions::default()).unwrap();
    let text = p.to_string();
    assert!(text.contains("+ user group ops (alice, bob)"), "{text}");
    assert!(text.contains("+ device group web (web*)"), "{text}");
    assert!(text.contains("+ grant operator on web to @ops"), "{text}");
    assert!(text.contains("+ grant viewer on all to bob"), "{text}");
    apply(&p, &store).unwrap();
    let policy = store.load_policy().unwrap();
    assert!(policy.allows("alice", mo_core::policy::Permission::Attach, "web01"));
    assert!(policy.allows("bob", mo_core::policy::Permission::Spy, "db9"));
    assert!(
        plan(&site, &store, &PlanOptions::default())
            .unwrap()
            .is_empty()
    );
    let exported = export(&store).unwrap();
    assert_eq!(exported.access.len(), 2);
    assert_eq!(exported.user_groups, site.user_groups);

    // A file with less: bob leaves ops, his own grant goes; kept unless pruned.
    let less = full
        .replace(r#"members = ["alice", "bob"]"#, r#"members = ["alice"]"#)
        .replace(
            "[[access]]\nsubject = \"bob\"\nrole = \"viewer\"\ndevices = \"all\"\n",
            "",
        );
    let site = parse_toml(&less, "site.toml").unwrap();
    let kept = plan(&site, &store, &PlanOptions::default()).unwrap();
    assert!(kept.is_empty(), "{kept}");
    assert!(
        kept.not_in_file
            .contains(&"member bob of user group ops".to_string()),
        "{:?}",
        kept.not_in_file
    );
    assert!(
        kept.not_in_file
            .contains(&"grant viewer on all to bob".to_string()),
        "{:?}",
        kept.not_in_file
    );
    let pruned = plan(&site, &store, &PlanOptions { prune: true }).unwrap();
    apply(&pruned, &store).unwrap();
    let policy = store.load_policy().unwrap();
    assert!(!policy.allows("bob", mo_core::policy::Permission::Spy, "db9"));
    assert!(!policy.allows("bob", mo_core::policy::Permission::Attach, "web01"));
    assert!(policy.allows("alice", mo_core::policy::Permission::Attach, "web01"));
    assert!(
        plan(&site, &store, &PlanOptions { prune: true })
            .unwrap()
            .is_empty()
    );
}

#[test]
fn device_secrets_travel_sealed_and_need_the_same_key() {
    use crate::secrets::{SecretKey, SecretKind};
    let (_tmp, store) = store();
    let key = SecretKey::from_bytes([3; 32]);
    store
        .add_device(&Device::new("bmc1", "ipmi://admin@bmc1"))
        .unwrap();
    store
        .set_secret(
            &key,
            "bmc1",
            SecretKind::Password,
            &mo_core::secret::Secret::new("hunter2"),
        )
        .unwrap();
    let text = to_toml(&export(&store).unwrap()).unwrap();
    assert!(text.contains("[[secret]]"), "{text}");
    assert!(
        !text.contains("hunter2"),
        "clear text in the export:\n{text}"
    );

    // Into a fresh store with the same key: the secret opens; importing again changes nothing.
    let (_tmp2, fresh) = self::store();
    let site = parse_toml(&text, "site.toml").unwrap();
    let p = plan(&site, &fresh, &PlanOptions::default()).unwrap();
    assert!(
        p.to_string()
            .contains("~ secret password of device bmc1 (sealed)"),
        "{p}"
    );
    let err = apply(&p, &fresh).unwrap_err().to_string();
    assert!(err.contains("secret key"), "{err}");
    assert!(fresh.list_devices().unwrap().is_empty(), "nothing lands");
    apply_with_key(&p, &fresh, Some(&key)).unwrap();
    assert_eq!(
        fresh
            .secret(&key, "bmc1", SecretKind::Password)
            .unwrap()
            .unwrap()
            .expose(),
        "hunter2"
    );
    assert!(
        plan(&site, &fresh, &PlanOptions::default())
            .unwrap()
            .is_empty()
    );

    // Another data directory's key cannot open it: refused, nothing lands.
    let (_tmp3, other) = self::store();
    let wrong = SecretKey::from_bytes([4; 32]);
    let p = plan(&site, &other, &PlanOptions::default()).unwrap();
    assert!(apply_with_key(&p, &other, Some(&wrong)).is_err());
    assert!(other.list_devices().unwrap().is_empty());

    // A file without a [[secret]] section leaves secrets alone, even with --prune.
    let bare = text.split("[[secret]]").next().unwrap().to_string();
    let site_bare = parse_toml(&bare, "site.toml").unwrap();
    assert!(
        plan(&site_bare, &fresh, &PlanOptions { prune: true })
            .unwrap()
            .is_empty()
    );
    // A secret the file does not list is kept, and removed with --prune.
    fresh
        .set_secret(
            &key,
            "bmc1",
            SecretKind::BmcKey,
            &mo_core::secret::Secret::new("00112233"),
        )
        .unwrap();
    let kept = plan(&site, &fresh, &PlanOptions::default()).unwrap();
    assert!(kept.is_empty(), "{kept}");
    assert!(
        kept.not_in_file
            .contains(&"secret bmc_key of device bmc1".to_string()),
        "{:?}",
        kept.not_in_file
    );
    let pruned = plan(&site, &fresh, &PlanOptions { prune: true }).unwrap();
    apply(&pruned, &fresh).unwrap();
    assert_eq!(fresh.secret_kinds("bmc1").unwrap(), [SecretKind::Password]);
}
