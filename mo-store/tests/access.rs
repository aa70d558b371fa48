//! Access control, API tokens, device secrets and the audit log, through the store's public API.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use mo_core::policy::{DeviceGroup, Grant, NamePattern, Permission, PermissionSet};
use mo_core::secret::Secret;
use mo_store::{
    AuditEntry, AuditFilter, DataDir, Device, Error, Outcome, SecretKind, Store, TokenScope,
};

fn temp_store() -> (tempfile::TempDir, DataDir, Store) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = DataDir::open(tmp.path().join("data")).unwrap();
    let store = dir.open_store().unwrap();
    (tmp, dir, store)
}

fn device(store: &Store, name: &str) {
    store
        .add_device(&Device {
            name: name.into(),
            url: format!("sim://{name}"),
            settings: Default::default(),
        })
        .unwrap();
}

#[test]
fn policy_round_trips_through_the_store() {
    let (_tmp, _dir, store) = temp_store();
    store.add_user("alice", Some("pw")).unwrap();
    store.add_user("bob", Some("pw")).unwrap();
    let g0 = store.policy_generation().unwrap();
    store
        .add_device_group(
            &DeviceGroup::new("rack3")
                .member("web01")
                .pattern("rack3-??")
                .unwrap(),
        )
        .unwrap();
    store.add_user_group("ops", &["alice".into()]).unwrap();
    store
        .set_role(
            "poweruser",
            [Permission::PowerStatus, Permission::PowerControl]
                .into_iter()
                .collect(),
        )
        .unwrap();
    store
        .add_grant(&Grant::to_group("ops", "operator", "rack3"))
        .unwrap();
    store
        .add_grant(&Grant::to_user("bob", "poweruser", "all"))
        .unwrap();
    assert!(store.policy_generation().unwrap() > g0);

    let policy = store.load_policy().unwrap();
    assert!(policy.allows("alice", Permission::Attach, "web01"));
    assert!(policy.allows("alice", Permission::Spy, "rack3-17"));
    let no = policy.decide("alice", Permission::Force, "rack3-17");
    assert!(!no.allowed());
    assert_eq!(
        no.reason(),
        "alice may not force rack3-17: role operator on group rack3 lacks force (through user group ops)"
    );
    assert!(!policy.allows("alice", Permission::Spy, "db1"));
    assert!(policy.allows("bob", Permission::PowerControl, "db1"));
    assert!(!policy.allows("bob", Permission::Spy, "db1"));

    // Redefining a built-in role changes decisions; removing the redefinition restores it.
    store
        .set_role("operator", PermissionSet::empty().with(Permission::Spy))
        .unwrap();
    assert!(
        !store
            .load_policy()
            .unwrap()
            .allows("alice", Permission::Attach, "web01")
    );
    store.remove_role("operator").unwrap();
    assert!(
        store
            .load_policy()
            .unwrap()
            .allows("alice", Permission::Attach, "web01")
    );
    assert!(matches!(
        store.remove_role("operator"),
        Err(Error::InUse { .. })
    ));

    // Group changes.
    store
        .change_device_group(
            "rack3",
            &["db1".into()],
            &[NamePattern::parse("re:^x").unwrap()],
            &["web01".into()],
            &["rack3-??".into()],
        )
        .unwrap();
    let g = store.device_group("rack3").unwrap();
    assert_eq!(g.members.iter().collect::<Vec<_>>(), ["db1"]);
    assert_eq!(g.patterns.len(), 1);
    let policy = store.load_policy().unwrap();
    assert!(policy.allows("alice", Permission::Spy, "db1"));
    assert!(policy.allows("alice", Permission::Spy, "xyz"));
    assert!(!policy.allows("alice", Permission::Spy, "web01"));
    // The stored devices in it: a member and a pattern's match, not the others; `all` has all.
    for name in ["db1", "xa", "web01"] {
        device(&store, name);
    }
    assert_eq!(store.devices_in_group(&g).unwrap(), ["db1", "xa"]);
    let all = store.device_group("all").unwrap();
    assert_eq!(
        store.devices_in_group(&all).unwrap(),
        ["db1", "web01", "xa"]
    );
}

#[test]
fn references_and_names_are_checked() {
    let (_tmp, _dir, store) = temp_store();
    store
        .add_user("alice", None::<&str>.or(Some("pw")))
        .unwrap();
    let err = store
        .add_grant(&Grant::to_user("alice", "nosuch", "all"))
        .unwrap_err();
    assert_eq!(err.to_string(), "unknown role `nosuch`");
    let err = store
        .add_grant(&Grant::to_user("alice", "viewer", "rack9"))
        .unwrap_err();
    assert_eq!(err.to_string(), "unknown device group `rack9`");
    let err = store
        .add_grant(&Grant::to_user("zed", "viewer", "all"))
        .unwrap_err();
    assert_eq!(err.to_string(), "unknown user `zed`");
    assert!(matches!(
        store.add_grant(&Grant::to_group("ops", "viewer", "all")),
        Err(Error::UnknownName {
            what: "user group",
            ..
        })
    ));
    assert!(matches!(
        store.add_user_group("ops", &["zed".into()]),
        Err(Error::UnknownUser(_))
    ));
    // The failed add left nothing behind.
    assert!(store.list_user_groups().unwrap().is_empty());
    assert!(matches!(
        store.add_device_group(&DeviceGroup::new("all")),
        Err(Error::NameExists { .. })
    ));
    assert!(matches!(
        store.add_device_group(&DeviceGroup::new("@x")),
        Err(Error::BadName {
            what: "device group",
            ..
        })
    ));
    assert!(matches!(
        store.set_role("a b", PermissionSet::all()),
        Err(Error::BadName { what: "role", .. })
    ));
    assert!(matches!(
        store.set_role("empty", PermissionSet::empty()),
        Err(Error::BadValue { .. })
    ));

    store.add_device_group(&DeviceGroup::new("web")).unwrap();
    store
        .set_role("ro", PermissionSet::empty().with(Permission::List))
        .unwrap();
    let grant = Grant::to_user("alice", "ro", "web");
    store.add_grant(&grant).unwrap();
    assert!(matches!(
        store.add_grant(&grant),
        Err(Error::NameExists { what: "grant", .. })
    ));
    let err = store.remove_device_group("web").unwrap_err().to_string();
    assert!(err.contains("is used by 1 grant"), "{err}");
    assert!(matches!(store.remove_role("ro"), Err(Error::InUse { .. })));
    // Removing the user takes its grants along.
    store.remove_user("alice").unwrap();
    assert!(store.list_grants().unwrap().is_empty());
    store.remove_device_group("web").unwrap();
    let err = store.remove_device_group("all").unwrap_err().to_string();
    assert_eq!(
        err,
        "device group `all` is built in (every device) and cannot be removed"
    );
    store.remove_role("ro").unwrap();
    assert!(matches!(
        store.remove_grant(&grant),
        Err(Error::UnknownName { .. })
    ));
}

#[test]
fn tokens_verify_expire_and_revoke() {
    let (_tmp, _dir, store) = temp_store();
    store.add_user("alice", Some("pw")).unwrap();
    let scope = TokenScope::parse("list,spy").unwrap();
    let new = store.add_token("alice", scope, None).unwrap();
    let text = new.token.expose().to_string();
    assert!(text.starts_with(&format!("mo_{}_", new.info.id)));
    assert_eq!(format!("{:?}", new.token), "Secret(***)");
    let ok = store.verify_token(&text).unwrap();
    assert_eq!(ok.user, "alice");
    assert!(ok.scope.permits(Permission::Spy) && !ok.scope.permits(Permission::Attach));
    assert!(
        store.list_tokens(Some("alice")).unwrap()[0]
            .last_used_ns
            .is_some()
    );

    // A wrong secret with a right id, and garbage, are refused alike.
    let mut wrong = text.clone();
    let last = wrong.pop().unwrap();
    wrong.push(if last == '0' { '1' } else { '0' });
    let e1 = store.verify_token(&wrong).unwrap_err().to_string();
    let e2 = store.verify_token("mo_nonsense").unwrap_err().to_string();
    assert_eq!(e1, e2);

    // The database holds no clear secret.
    let db = std::fs::read(store.path()).unwrap();
    let secret_part = text.rsplit('_').next().unwrap();
    assert!(
        !db.windows(secret_part.len())
            .any(|w| w == secret_part.as_bytes())
    );

    let expired = store.add_token("alice", TokenScope::All, Some(1)).unwrap();
    let err = store
        .verify_token(expired.token.expose())
        .unwrap_err()
        .to_string();
    assert!(err.contains("expired"), "{err}");

    store.revoke_token(&new.info.id).unwrap();
    let err = store.verify_token(&text).unwrap_err().to_string();
    assert!(err.contains("revoked"), "{err}");
    assert!(store.revoke_token(&new.info.id).is_err());
    assert!(store.add_token("zed", TokenScope::All, None).is_err());
    assert_eq!(store.list_tokens(None).unwrap().len(), 2);
}

#[test]
fn device_secrets_are_sealed_at_rest() {
    use std::os::unix::fs::PermissionsExt;
    let (_tmp, dir, store) = temp_store();
    let key = dir.secret_key().unwrap();
    let mode = std::fs::metadata(dir.secret_key_path())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    device(&store, "web01");
    let pw = Secret::new("correct horse battery staple");
    store
        .set_secret(&key, "web01", SecretKind::Password, &pw)
        .unwrap();
    store
        .set_secret(&key, "web01", SecretKind::SnmpAuth, &Secret::new("public"))
        .unwrap();
    assert!(matches!(
        store.set_secret(&key, "nosuch", SecretKind::Password, &pw),
        Err(Error::UnknownDevice(_))
    ));
    let creds = store.device_credentials(&key, "web01").unwrap();
    assert_eq!(creds.get(&SecretKind::Password), Some(&pw));
    assert_eq!(creds.len(), 2);
    assert_eq!(
        store.secret_kinds("web01").unwrap(),
        [SecretKind::Password, SecretKind::SnmpAuth]
    );

    // Not in the database file in clear (checkpoint the WAL first).
    drop(store);
    let store = dir.open_store().unwrap();
    let db = std::fs::read(dir.db_path()).unwrap();
    assert!(!db.windows(11).any(|w| w == b"horse batte"));

    // The same key file is read back; an export opens only with it.
    let again = dir.secret_key().unwrap();
    assert_eq!(
        store.secret(&again, "web01", SecretKind::Password).unwrap(),
        Some(pw.clone())
    );
    let exported = store
        .export_secret("web01", SecretKind::Password)
        .unwrap()
        .unwrap();
    assert!(!exported.contains("horse"));
    device(&store, "web02");
    // Sealed for web01: does not open as web02's.
    assert!(
        store
            .import_secret(&key, "web02", SecretKind::Password, &exported)
            .is_err()
    );
    store.remove_secret("web01", SecretKind::Password).unwrap();
    store
        .import_secret(&key, "web01", SecretKind::Password, &exported)
        .unwrap();
    assert_eq!(
        store.secret(&key, "web01", SecretKind::Password).unwrap(),
        Some(pw)
    );
    let other = mo_store::SecretKey::from_bytes([9; 32]);
    assert!(
        store
            .import_secret(&other, "web01", SecretKind::Password, &exported)
            .is_err()
    );

    // Secrets go with their device.
    store.remove_device("web01").unwrap();
    assert!(store.secret_kinds("web01").unwrap().is_empty());

    // A key file others can read is refused.
    std::fs::set_permissions(
        dir.secret_key_path(),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let err = dir.secret_key().unwrap_err().to_string();
    assert!(err.contains("chmod 600"), "{err}");
}

#[test]
fn concurrent_key_creation_agrees() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("secret.key");
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let path = path.clone();
            std::thread::spawn(move || mo_store::SecretKey::load_or_create(&path).unwrap())
        })
        .collect();
    let keys: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    // All keys open what the first sealed: they are the same key.
    let (_t2, dir, store) = temp_store();
    let _ = dir;
    device(&store, "d");
    store
        .set_secret(&keys[0], "d", SecretKind::BmcKey, &Secret::new("k"))
        .unwrap();
    for key in &keys {
        assert_eq!(
            store
                .secret(key, "d", SecretKind::BmcKey)
                .unwrap()
                .unwrap()
                .expose(),
            "k"
        );
    }
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        1,
        "no temporary files left"
    );
}

#[test]
fn audit_log_is_append_only_and_queryable() {
    let (_tmp, _dir, store) = temp_store();
    store.add_user("alice", Some("pw")).unwrap();
    store
        .add_device_group(&DeviceGroup::new("web").pattern("web*").unwrap())
        .unwrap();
    store
        .add_grant(&Grant::to_user("alice", "viewer", "web"))
        .unwrap();
    let policy = store.load_policy().unwrap();
    store
        .audit_decision(
            &policy.decide("alice", Permission::Spy, "web01"),
            Some("127.0.0.1:5000"),
        )
        .unwrap();
    store
        .audit_decision(
            &policy.decide("alice", Permission::Force, "web01"),
            Some("127.0.0.1:5000"),
        )
        .unwrap();
    store
        .append_audit(
            &AuditEntry::new(Some("os:root"), "grant.add", Outcome::Ok)
                .source(Some("cli"))
                .detail("role viewer on group web for user alice"),
        )
        .unwrap();

    let all = store.query_audit(&AuditFilter::default()).unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].outcome, Outcome::Allowed);
    assert_eq!(all[1].action, "force");
    assert!(all[1].detail.contains("lacks force"), "{}", all[1].detail);
    let denied = store
        .query_audit(&AuditFilter {
            outcome: Some(Outcome::Denied),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(denied.len(), 1);
    let last = store
        .query_audit(&AuditFilter {
            limit: Some(1),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(last[0].action, "grant.add");
    let by_device = store
        .query_audit(&AuditFilter {
            device: Some("web01".into()),
            user: Some("alice".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(by_device.len(), 2);
    let future = store
        .query_audit(&AuditFilter {
            since_ns: Some(all[2].time_ns + 1),
            ..Default::default()
        })
        .unwrap();
    assert!(future.is_empty());
    let until = store
        .query_audit(&AuditFilter {
            until_ns: Some(all[1].time_ns),
            ..Default::default()
        })
        .unwrap();
    assert!(until.iter().all(|e| e.time_ns < all[1].time_ns));

    // The database itself refuses changes and deletions.
    let conn = rusqlite_conn(store.path());
    let err = conn
        .execute("UPDATE audit SET outcome = 'ok'", [])
        .unwrap_err()
        .to_string();
    assert!(err.contains("append-only"), "{err}");
    let err = conn
        .execute("DELETE FROM audit", [])
        .unwrap_err()
        .to_string();
    assert!(err.contains("append-only"), "{err}");
    assert_eq!(store.query_audit(&AuditFilter::default()).unwrap().len(), 3);
}

fn rusqlite_conn(path: &std::path::Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap()
}

#[test]
fn the_access_gate_audits_every_decision_through_its_writer() {
    let (_tmp, _dir, store) = temp_store();
    device(&store, "web1");
    store.add_user("alice", None).unwrap();
    store
        .add_grant(&Grant::to_user("alice", "operator", "all"))
        .unwrap();
    let writes = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = writes.clone();
    let gate = mo_store::AccessGate::new(
        store.clone(),
        Box::new(move |r| {
            assert_eq!(r, Ok(()));
            counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }),
    )
    .unwrap();
    assert_eq!(
        gate.check("alice", "ssh", Permission::Attach, "web1"),
        Ok(())
    );
    let denied = gate.check("bob", "ssh", Permission::Attach, "web1");
    assert!(denied.unwrap_err().starts_with("denied: "));
    gate.flush();
    let rows = store.query_audit(&AuditFilter::default()).unwrap();
    let who: Vec<_> = rows.iter().map(|e| (e.user.clone(), e.outcome)).collect();
    assert_eq!(
        who,
        [
            (Some("alice".into()), Outcome::Allowed),
            (Some("bob".into()), Outcome::Denied)
        ]
    );

    // The policy is reloaded when its generation moves: the next decision sees the new grant.
    store.add_user("bob", None).unwrap();
    store
        .add_grant(&Grant::to_user("bob", "operator", "all"))
        .unwrap();
    assert_eq!(gate.check("bob", "ssh", Permission::Attach, "web1"), Ok(()));

    // More entries than the queue holds, from four threads: callers wait for room, nothing is
    // dropped, each thread's entries in its order, all committed by the time the gate is gone.
    let per_thread = mo_store::AUDIT_QUEUE;
    std::thread::scope(|s| {
        for t in 0..4 {
            let gate = &gate;
            s.spawn(move || {
                for i in 0..per_thread {
                    gate.audit(
                        AuditEntry::new(Some("alice"), "bench", Outcome::Ok)
                            .detail(format!("{t}:{i}")),
                    );
                }
            });
        }
    });
    drop(gate);
    let rows = store
        .query_audit(&AuditFilter {
            action: Some("bench".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(rows.len(), 4 * per_thread);
    for t in 0..4 {
        let order: Vec<_> = rows
            .iter()
            .filter_map(|e| e.detail.strip_prefix(&format!("{t}:")))
            .map(|i| i.parse::<usize>().unwrap())
            .collect();
        assert_eq!(order, (0..per_thread).collect::<Vec<_>>(), "thread {t}");
    }
    // Fewer writes than rows: they were batched.
    assert!(writes.load(std::sync::atomic::Ordering::Relaxed) < 4 * per_thread);
}
