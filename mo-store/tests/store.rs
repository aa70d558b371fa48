//! The store's behaviour through its public API: devices, the change counter, two handles on one
//! file, passwords and SSH keys.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use mo_store::{DataDir, Device, DeviceSettings, Error, SshPublicKey, Store};

fn temp_store() -> (tempfile::TempDir, DataDir, Store) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = DataDir::open(tmp.path().join("data")).unwrap();
    let store = dir.open_store().unwrap();
    (tmp, dir, store)
}

fn keygen(dir: &Path, name: &str, kind: &str, comment: &str) -> String {
    let path = dir.join(name);
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", kind, "-N", "", "-C", comment, "-f"])
        .arg(&path)
        .status()
        .expect("ssh-keygen runs");
    assert!(status.success());
    std::fs::read_to_string(path.with_extension("pub")).unwrap()
}

#[test]
fn device_crud() {
    let (_tmp, _dir, store) = temp_store();
    assert!(store.list_devices().unwrap().is_empty());

    let mut breaks = BTreeMap::new();
    breaks.insert(3, "#.".to_string());
    breaks.insert(5, "\\r~^b".to_string());
    let web = Device {
        name: "web01".into(),
        url: "serial:///dev/ttyS0?baud=115200".into(),
        settings: DeviceSettings {
            on_demand: true,
            replay_lines: 50,
            allow_join: false,
            escape: Some("^Ec".into()),
            break_sequences: breaks,
            description: Some("front web server".into()),
            login: Some("linux".into()),
            login_user: Some("root".into()),
            trust_host_key: true,
            power: vec!["snmp://pdu1/apc/3".into(), "snmp://pdu2/apc/3".into()],
            log_policy: Some(mo_store::LogPolicy::Strict),
            retain_days: Some(90),
            retain_gib: mo_store::RetainSize::from_mib(1536),
            ..Default::default()
        },
    };
    store.add_device(&web).unwrap();
    store
        .add_device(&Device::new("db01", "sim://db01"))
        .unwrap();

    assert_eq!(store.device("web01").unwrap(), web);
    let names: Vec<String> = store
        .list_devices()
        .unwrap()
        .into_iter()
        .map(|d| d.name)
        .collect();
    assert_eq!(names, ["db01", "web01"]);
    let db = store.device("db01").unwrap();
    assert_eq!(db.settings, DeviceSettings::default());
    assert_eq!(db.settings.replay_lines, 20);
    assert!(db.settings.allow_join);

    // Resolved settings.
    let seqs = web.break_sequences().unwrap();
    assert_eq!(seqs.get(3).map(|s| s.text()), Some("#."));
    assert_eq!(seqs.get(5).map(|s| s.text()), Some("\\r~^b"));
    assert_eq!(seqs.get(1).map(|s| s.text()), Some("\\z"), "defaults stay");
    assert_eq!(web.escape_bytes().unwrap(), Some([5, b'c']));
    assert_eq!(db.escape_bytes().unwrap(), None);

    // Duplicate add names the device.
    let err = store
        .add_device(&Device::new("web01", "sim://x"))
        .unwrap_err();
    assert!(matches!(err, Error::DeviceExists(_)));
    assert_eq!(err.to_string(), "device `web01` already exists");

    // Update.
    let mut changed = store.device("db01").unwrap();
    changed.url = "tcp://127.0.0.1:4001".into();
    changed.settings.replay_lines = 0;
    store.update_device(&changed).unwrap();
    assert_eq!(store.device("db01").unwrap(), changed);
    let err = store
        .update_device(&Device::new("nope", "sim://nope"))
        .unwrap_err();
    assert_eq!(err.to_string(), "unknown device `nope`");

    // Remove.
    store.remove_device("web01").unwrap();
    assert!(store.get_device("web01").unwrap().is_none());
    let err = store.remove_device("web01").unwrap_err();
    assert_eq!(err.to_string(), "unknown device `web01`");
    assert_eq!(
        store.device("web01").unwrap_err().to_string(),
        "unknown device `web01`"
    );
    assert_eq!(store.list_devices().unwrap().len(), 1);
}

#[test]
fn device_validation_errors_name_what_is_wrong() {
    let (_tmp, _dir, store) = temp_store();
    let cases: Vec<(Device, &str)> = vec![
        (
            Device::new("bad/name", "sim://x"),
            "bad device name `bad/name`: contains `/`",
        ),
        (
            Device::new(".x", "sim://x"),
            "must not start with `.` or `-`",
        ),
        (
            Device::new("web01", "/dev/ttyS0"),
            "bad URL `/dev/ttyS0` for device `web01`: not a URL",
        ),
        (
            Device::new("web01", "tcp://[::1"),
            "bad URL `tcp://[::1` for device `web01`",
        ),
        (
            Device::new("web01", " sim://x"),
            "spaces or control characters",
        ),
        (
            Device {
                settings: DeviceSettings {
                    escape: Some("^E".into()),
                    ..Default::default()
                },
                ..Device::new("web01", "sim://x")
            },
            "bad escape `^E` for device `web01`: has only one character",
        ),
        (
            Device {
                settings: DeviceSettings {
                    break_sequences: [(10, "#.".to_string())].into_iter().collect(),
                    ..Default::default()
                },
                ..Device::new("web01", "sim://x")
            },
            "bad break sequence 10 `#.` for device `web01`: the number must be 1 to 9",
        ),
        (
            Device {
                settings: DeviceSettings {
                    break_sequences: [(2, "\\q".to_string())].into_iter().collect(),
                    ..Default::default()
                },
                ..Device::new("web01", "sim://x")
            },
            "bad break sequence 2 `\\q` for device `web01`: unknown escape `\\q`",
        ),
        (
            Device {
                settings: DeviceSettings {
                    replay_lines: 1_000_000,
                    ..Default::default()
                },
                ..Device::new("web01", "sim://x")
            },
            "bad replay lines `1000000` for device `web01`",
        ),
        (
            Device {
                settings: DeviceSettings {
                    description: Some("two\nlines".into()),
                    ..Default::default()
                },
                ..Device::new("web01", "sim://x")
            },
            "contains control characters",
        ),
    ];
    for (device, expected) in cases {
        let err = store.add_device(&device).unwrap_err().to_string();
        assert!(err.contains(expected), "expected {expected:?} in {err:?}");
    }
    assert!(
        store.list_devices().unwrap().is_empty(),
        "nothing invalid was stored"
    );
    assert_eq!(store.generation().unwrap(), 0);
}

#[test]
fn generation_moves_with_every_device_change() {
    let (_tmp, _dir, store) = temp_store();
    let g0 = store.generation().unwrap();
    store.add_device(&Device::new("a", "sim://a")).unwrap();
    let g1 = store.generation().unwrap();
    assert!(g1 > g0);
    let mut a = store.device("a").unwrap();
    a.settings.on_demand = true;
    store.update_device(&a).unwrap();
    let g2 = store.generation().unwrap();
    assert!(g2 > g1);
    store.remove_device("a").unwrap();
    let g3 = store.generation().unwrap();
    assert!(g3 > g2);
    // Failed changes and user changes leave it alone.
    assert!(store.remove_device("a").is_err());
    store.add_user("alice", Some("pw")).unwrap();
    assert_eq!(store.generation().unwrap(), g3);
}

#[test]
fn two_handles_on_one_file_see_each_other() {
    let (_tmp, dir, daemon) = temp_store();
    let cli = Store::open(dir.db_path()).unwrap();
    let seen = daemon.generation().unwrap();

    cli.add_device(&Device::new("web01", "sim://web01"))
        .unwrap();
    assert!(daemon.generation().unwrap() > seen);
    assert_eq!(daemon.device("web01").unwrap().url, "sim://web01");

    daemon.add_user("bob", Some("hunter2")).unwrap();
    assert!(cli.verify_password("bob", "hunter2").unwrap());

    // Writers in both handles from several threads at once: nothing is lost, nobody sees "busy".
    let mut threads = Vec::new();
    for (t, store) in [daemon.clone(), cli.clone(), daemon.clone(), cli.clone()]
        .into_iter()
        .enumerate()
    {
        threads.push(std::thread::spawn(move || {
            for i in 0..25 {
                store
                    .add_device(&Device::new(format!("d{t}-{i}"), "sim://x"))
                    .unwrap();
            }
        }));
    }
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(cli.list_devices().unwrap().len(), 101);
    assert_eq!(daemon.list_devices().unwrap().len(), 101);
}

#[test]
fn passwords() {
    let (_tmp, _dir, store) = temp_store();
    store.add_user("alice", Some("correct horse")).unwrap();
    store.add_user("keyonly", None).unwrap();
    assert!(store.verify_password("alice", "correct horse").unwrap());
    assert!(!store.verify_password("alice", "correct horse ").unwrap());
    assert!(!store.verify_password("alice", "").unwrap());
    assert!(!store.verify_password("keyonly", "").unwrap());
    assert!(!store.verify_password("mallory", "correct horse").unwrap());

    // The hash is an argon2id PHC string, never the password.
    let users = store.list_users().unwrap();
    assert_eq!(users.len(), 2);
    assert!(users[0].has_password && !users[1].has_password);

    store.set_password("alice", "battery staple").unwrap();
    assert!(!store.verify_password("alice", "correct horse").unwrap());
    assert!(store.verify_password("alice", "battery staple").unwrap());
    store.set_password("keyonly", "now one").unwrap();
    assert!(store.verify_password("keyonly", "now one").unwrap());
    store.clear_password("keyonly").unwrap();
    assert!(!store.verify_password("keyonly", "now one").unwrap());

    assert_eq!(
        store.set_password("nobody", "x").unwrap_err().to_string(),
        "unknown user `nobody`"
    );
    let err = store.add_user("alice", Some("x")).unwrap_err();
    assert_eq!(err.to_string(), "user `alice` already exists");
    let err = store.add_user("bob", Some("")).unwrap_err().to_string();
    assert!(err.contains("empty"), "{err}");
    let err = store.add_user("Bob:x", Some("pw")).unwrap_err().to_string();
    assert!(err.starts_with("bad user name `Bob:x`"), "{err}");

    // An unknown user costs about as much as a known one (the dummy hash runs).
    store.verify_password("nobody", "x").unwrap();
    let start = Instant::now();
    store.verify_password("nobody", "x").unwrap();
    let unknown = start.elapsed();
    let start = Instant::now();
    store.verify_password("alice", "x").unwrap();
    let known = start.elapsed();
    assert!(
        unknown * 4 > known,
        "unknown {unknown:?} vs known {known:?}"
    );

    store.remove_user("alice").unwrap();
    assert!(!store.verify_password("alice", "battery staple").unwrap());
    assert_eq!(
        store.remove_user("alice").unwrap_err().to_string(),
        "unknown user `alice`"
    );
}

#[test]
fn ssh_keys() {
    let (tmp, _dir, store) = temp_store();
    let ed = keygen(tmp.path(), "ed", "ed25519", "alice@laptop");
    let rsa = keygen(tmp.path(), "rsa", "rsa", "alice@old");
    let ecdsa = keygen(tmp.path(), "ec", "ecdsa", "");
    let other = keygen(tmp.path(), "other", "ed25519", "bob@desk");

    store.add_user("alice", None).unwrap();
    for line in [&ed, &rsa, &ecdsa] {
        store.add_ssh_key("alice", line).unwrap();
    }
    let lines = store.ssh_keys("alice").unwrap();
    assert_eq!(lines, [ed.trim(), rsa.trim(), ecdsa.trim()]);
    assert_eq!(store.user("alice").unwrap().ssh_keys, 3);

    for line in [&ed, &rsa, &ecdsa] {
        let key = SshPublicKey::parse(line).unwrap();
        assert_eq!(
            store
                .find_user_by_key(key.key_type(), key.blob_base64())
                .unwrap()
                .as_deref(),
            Some("alice")
        );
    }
    let bob_key = SshPublicKey::parse(&other).unwrap();
    assert_eq!(
        store
            .find_user_by_key("ssh-ed25519", bob_key.blob_base64())
            .unwrap(),
        None
    );
    let ed_key = SshPublicKey::parse(&ed).unwrap();
    assert_eq!(
        store
            .find_user_by_key("ssh-rsa", ed_key.blob_base64())
            .unwrap(),
        None
    );

    // Duplicates, for the same or another user, name the owner.
    store.add_user("bob", None).unwrap();
    let err = store.add_ssh_key("bob", &ed).unwrap_err();
    assert!(
        matches!(&err, Error::DuplicateSshKey { user, .. } if user == "alice"),
        "{err}"
    );
    assert!(err.to_string().contains(ed_key.fingerprint()), "{err}");
    assert!(store.add_ssh_key("alice", &ed).is_err());

    // Garbage and unknown users.
    let err = store
        .add_ssh_key("bob", "ssh-ed25519 garbage")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("bad SSH public key"), "{err}");
    let private = std::fs::read_to_string(tmp.path().join("other")).unwrap();
    let err = store.add_ssh_key("bob", &private).unwrap_err().to_string();
    assert!(err.contains("private key"), "{err}");
    let err = store.add_ssh_key("carol", &other).unwrap_err().to_string();
    assert_eq!(err, "unknown user `carol`");

    // A user added with keys is all or nothing.
    let dup = SshPublicKey::parse(&rsa).unwrap();
    let err = store
        .add_user_with_keys("carol", Some("pw"), &[bob_key.clone(), dup])
        .unwrap_err();
    assert!(matches!(err, Error::DuplicateSshKey { .. }));
    assert!(store.user("carol").is_err(), "carol was rolled back");
    assert_eq!(
        store
            .find_user_by_key("ssh-ed25519", bob_key.blob_base64())
            .unwrap(),
        None
    );
    store
        .add_user_with_keys("carol", None, std::slice::from_ref(&bob_key))
        .unwrap();
    assert_eq!(
        store
            .find_user_by_key("ssh-ed25519", bob_key.blob_base64())
            .unwrap()
            .as_deref(),
        Some("carol")
    );

    // Remove a key by fingerprint; removing a user drops their keys.
    store.remove_ssh_key("alice", ed_key.fingerprint()).unwrap();
    assert_eq!(store.ssh_keys("alice").unwrap().len(), 2);
    assert!(store.remove_ssh_key("alice", ed_key.fingerprint()).is_err());
    store.remove_user("alice").unwrap();
    let rsa_key = SshPublicKey::parse(&rsa).unwrap();
    assert_eq!(
        store
            .find_user_by_key("ssh-rsa", rsa_key.blob_base64())
            .unwrap(),
        None
    );
    store.add_ssh_key("bob", &rsa).unwrap();
    assert_eq!(
        store.ssh_keys("nobody").unwrap_err().to_string(),
        "unknown user `nobody`"
    );
}
