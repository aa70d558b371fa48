//! Upgrades: a store written by an earlier release opens with this build (its migrations run)
//! and everything in it is still there.
//!
//! `tests/fixtures/store-vN/` (at the workspace root) holds a small data directory made with
//! schema version N: `mo.db`, its `secret.key` and `token.txt` (the API token made in it). Each
//! release whose schema moved adds one, made with `scripts/make-store-fixture.sh` (which runs
//! [`generate`] below); fixtures are never edited afterwards.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};

use mo_core::policy::{DeviceGroup, Grant, NamePattern};
use mo_core::secret::Secret;
use mo_store::{DataDir, Device, DeviceSettings, SecretKind, TokenScope};

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

/// Every `store-vN` fixture, oldest first.
fn fixtures() -> Vec<(i64, PathBuf)> {
    let mut found: Vec<(i64, PathBuf)> = std::fs::read_dir(fixtures_dir())
        .expect("tests/fixtures is missing from the checkout")
        .filter_map(|e| {
            let e = e.ok()?;
            let name = e.file_name().to_str()?.to_string();
            let n: i64 = name.strip_prefix("store-v")?.parse().ok()?;
            Some((n, e.path()))
        })
        .collect();
    found.sort();
    found
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let copy = to.join(entry.file_name());
        std::fs::copy(entry.path(), &copy).unwrap();
        // A checkout does not keep modes, and secret.key must be private to be used.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

#[test]
fn fixtures_of_earlier_schemas_open_and_keep_everything() {
    let all = fixtures();
    assert!(!all.is_empty(), "no tests/fixtures/store-vN directory");
    for (version, path) in all {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("data");
        copy_dir(&path, &root);
        let raw = rusqlite::Connection::open(root.join("mo.db")).unwrap();
        let before: i64 = raw
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(
            before,
            version,
            "{} is not schema {version}",
            path.display()
        );
        drop(raw);

        let dir = DataDir::existing(&root).unwrap();
        let store = dir.open_store().unwrap();
        assert!(store.schema_version().unwrap() >= version);
        let shown = path.display();

        let devices: Vec<String> = store
            .list_devices()
            .unwrap()
            .into_iter()
            .map(|d| d.name)
            .collect();
        assert_eq!(devices, ["db01", "web01"], "{shown}");
        assert_eq!(
            store.device("web01").unwrap().settings.replay_lines,
            42,
            "{shown}"
        );
        let users: Vec<String> = store
            .list_users()
            .unwrap()
            .into_iter()
            .map(|u| u.name)
            .collect();
        assert_eq!(users, ["alice", "bob"], "{shown}");
        assert!(
            store.verify_password("alice", "alice-pw").unwrap(),
            "{shown}"
        );
        assert!(
            store
                .list_grants()
                .unwrap()
                .iter()
                .any(|g| g.role == "operator" && g.device_group == "web"),
            "{shown}: grant missing"
        );
        assert!(store.device_group("web").is_ok(), "{shown}");
        let token = std::fs::read_to_string(root.join("token.txt")).unwrap();
        let verified = store.verify_token(token.trim()).unwrap();
        assert_eq!(verified.user, "bob", "{shown}");
        let key = dir.secret_key().unwrap();
        let secret = store
            .secret(&key, "db01", SecretKind::Password)
            .unwrap()
            .unwrap();
        assert_eq!(secret.expose(), "db-secret", "{shown}");
        let events = store.query_events(&Default::default()).unwrap();
        assert!(
            events
                .iter()
                .any(|e| e.device == "web01" && e.message == "fixture event"),
            "{shown}: event missing: {events:?}"
        );
    }
}

/// Writes a fixture for the current schema into `$MO_FIXTURE_OUT` (see
/// `scripts/make-store-fixture.sh`). Ignored in normal runs.
#[test]
#[ignore = "generator, run by scripts/make-store-fixture.sh"]
fn generate() {
    let out = PathBuf::from(std::env::var("MO_FIXTURE_OUT").expect("set MO_FIXTURE_OUT"));
    let tmp = tempfile::tempdir().unwrap();
    let dir = DataDir::open(tmp.path().join("data")).unwrap();
    let store = dir.open_store().unwrap();
    for (name, replay) in [("web01", 42), ("db01", 20)] {
        store
            .add_device(&Device {
                name: name.into(),
                url: format!("sim://{name}"),
                settings: DeviceSettings {
                    replay_lines: replay,
                    ..Default::default()
                },
            })
            .unwrap();
    }
    store.add_user("alice", Some("alice-pw")).unwrap();
    store.add_user("bob", None).unwrap();
    let mut group = DeviceGroup::new("web");
    group.patterns.push(NamePattern::parse("web*").unwrap());
    store.add_device_group(&group).unwrap();
    store
        .add_grant(&Grant::to_user("alice", "operator", "web"))
        .unwrap();
    let token = store.add_token("bob", TokenScope::All, None).unwrap();
    let key = dir.secret_key().unwrap();
    store
        .set_secret(
            &key,
            "db01",
            SecretKind::Password,
            &Secret::new("db-secret"),
        )
        .unwrap();
    store
        .insert_event(&mo_core::event::Event {
            id: 0,
            time_ns: 1_700_000_000_000_000_000,
            last_ns: 1_700_000_000_000_000_000,
            device: "web01".into(),
            source: mo_core::event::EventSource::Manual,
            severity: mo_core::scan::Severity::Warning,
            message: "fixture event".into(),
            context: vec!["line before".into()],
            count: 1,
            suppressed: false,
            acked_by: None,
            acked_ns: None,
            node: None,
        })
        .unwrap();
    let version = store.schema_version().unwrap();
    let target = out.join(format!("store-v{version}"));
    std::fs::create_dir_all(&target).unwrap();
    store.snapshot_into(&target.join("mo.db")).unwrap();
    std::fs::copy(dir.secret_key_path(), target.join("secret.key")).unwrap();
    std::fs::write(
        target.join("token.txt"),
        format!("{}\n", token.token.expose()),
    )
    .unwrap();
    println!("wrote {}", target.display());
}
