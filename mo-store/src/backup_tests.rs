#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::{Device, DeviceSettings};

fn data_dir(root: &Path) -> (DataDir, Store) {
    let dir = DataDir::open(root).unwrap();
    let store = dir.open_store().unwrap();
    store
        .add_device(&Device {
            name: "web01".into(),
            url: "sim://web01".into(),
            settings: DeviceSettings::default(),
        })
        .unwrap();
    store.add_user("alice", Some("pw")).unwrap();
    (dir, store)
}

fn backup(dir: &DataDir, store: &Store, dest: &Path, opts: &BackupOptions) -> Manifest {
    create_backup(dir, store, dest, opts, &mut |_| {}).unwrap()
}

#[test]
fn round_trip_plain_and_zstd() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, store) = data_dir(&tmp.path().join("data"));
    fs::write(dir.host_key_path(), b"host key").unwrap();
    fs::write(dir.path().join("known_hosts"), b"cs1 ssh-ed25519 AAAA").unwrap();
    fs::create_dir(dir.path().join("tls")).unwrap();
    fs::write(dir.path().join("tls/self-signed.crt"), b"cert").unwrap();
    fs::write(dir.path().join("tls/.hidden"), b"x").unwrap();
    for zstd in [false, true] {
        let file = tmp.path().join(format!("b-{zstd}.tar"));
        let opts = BackupOptions {
            zstd,
            ..Default::default()
        };
        let manifest = backup(&dir, &store, &file, &opts);
        assert_eq!(manifest.schema_version, store.schema_version().unwrap());
        let paths: Vec<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [DB_FILE, HOST_KEY_FILE, "known_hosts", "tls/self-signed.crt"]
        );
        let dest = tmp.path().join(format!("restored-{zstd}"));
        let report = restore_backup(&file, &dest, false, "tester", &mut |_| {}).unwrap();
        assert_eq!(
            (report.devices, report.users, report.sealed_secrets),
            (1, 1, 0)
        );
        assert_eq!(fs::read(dest.join(HOST_KEY_FILE)).unwrap(), b"host key");
        assert_eq!(fs::read(dest.join("tls/self-signed.crt")).unwrap(), b"cert");
        let restored = Store::open(dest.join(DB_FILE)).unwrap();
        assert!(restored.verify_password("alice", "pw").unwrap());
    }
}

#[test]
fn secret_key_only_when_asked() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, store) = data_dir(&tmp.path().join("data"));
    let key = dir.secret_key().unwrap();
    store
        .set_secret(
            &key,
            "web01",
            crate::SecretKind::Password,
            &mo_core::secret::Secret::new("s"),
        )
        .unwrap();
    let without = tmp.path().join("without.tar");
    backup(&dir, &store, &without, &BackupOptions::default());
    let dest = tmp.path().join("r1");
    let report = restore_backup(&without, &dest, false, "t", &mut |_| {}).unwrap();
    assert_eq!(report.sealed_secrets, 1);
    assert!(!report.manifest.with_secret_key);
    assert!(!dest.join(SECRET_KEY_FILE).exists());

    let with = tmp.path().join("with.tar");
    let opts = BackupOptions {
        with_secret_key: true,
        ..Default::default()
    };
    backup(&dir, &store, &with, &opts);
    let dest = tmp.path().join("r2");
    restore_backup(&with, &dest, false, "t", &mut |_| {}).unwrap();
    let restored = DataDir::existing(&dest).unwrap();
    let value = restored
        .open_store()
        .unwrap()
        .secret(
            &restored.secret_key().unwrap(),
            "web01",
            crate::SecretKind::Password,
        )
        .unwrap()
        .unwrap();
    assert_eq!(value.expose(), "s");
}

#[test]
fn refuses_non_empty_target_unless_forced() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, store) = data_dir(&tmp.path().join("data"));
    let file = tmp.path().join("b.tar");
    backup(&dir, &store, &file, &BackupOptions::default());
    let dest = tmp.path().join("busy");
    fs::create_dir(&dest).unwrap();
    fs::write(dest.join("other"), b"x").unwrap();
    let err = restore_backup(&file, &dest, false, "t", &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("not empty") && err.contains("--force"),
        "{err}"
    );
    restore_backup(&file, &dest, true, "t", &mut |_| {}).unwrap();
    assert!(dest.join(DB_FILE).exists());
}

#[test]
fn damage_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, store) = data_dir(&tmp.path().join("data"));
    fs::write(dir.host_key_path(), b"host key").unwrap();
    let file = tmp.path().join("b.tar");
    backup(&dir, &store, &file, &BackupOptions::default());
    let mut bytes = fs::read(&file).unwrap();
    let at = bytes
        .windows(8)
        .position(|w| w == b"host key")
        .expect("host key in the archive");
    bytes[at] = b'H';
    let damaged = tmp.path().join("damaged.tar");
    fs::write(&damaged, &bytes).unwrap();
    let dest = tmp.path().join("r");
    let err = restore_backup(&damaged, &dest, false, "t", &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("ssh_host_ed25519_key is damaged") && err.contains("damaged.tar"),
        "{err}"
    );
    assert!(!dest.exists(), "nothing restored from a damaged backup");
    // An empty directory stays empty after a refused archive, so a good one restores there.
    fs::create_dir(&dest).unwrap();
    restore_backup(&damaged, &dest, false, "t", &mut |_| {}).unwrap_err();
    assert_eq!(fs::read_dir(&dest).unwrap().count(), 0);
    restore_backup(&file, &dest, false, "t", &mut |_| {}).unwrap();

    let cut = tmp.path().join("cut.tar");
    fs::write(&cut, &bytes[..at.min(1024)]).unwrap();
    let err = restore_backup(&cut, &tmp.path().join("r2"), false, "t", &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(err.contains("cut.tar"), "{err}");

    let junk = tmp.path().join("junk.tar");
    fs::write(&junk, b"not a tar at all").unwrap();
    let err = restore_backup(&junk, &tmp.path().join("r3"), false, "t", &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(err.contains("junk.tar"), "{err}");
}

#[test]
fn live_segment_is_cut_at_its_last_complete_record() {
    use mo_core::record::{Chunk, RecordKind, RecordSink};
    let tmp = tempfile::tempdir().unwrap();
    let (dir, store) = data_dir(&tmp.path().join("data"));
    let log_dir = dir.create_device_log_dir("web01").unwrap();
    {
        let (mut writer, _) =
            mo_core::log::LogWriter::open(&log_dir, mo_core::log::LogOptions::default()).unwrap();
        for i in 0..10u64 {
            let seq = writer.next_seq();
            writer
                .append(&Chunk {
                    seq,
                    time_ns: 1_700_000_000_000_000_000 + i,
                    kind: RecordKind::Output,
                    user: "".into(),
                    offset: 0,
                    bytes: format!("line {i}\r\n").into_bytes().into(),
                })
                .unwrap();
        }
        writer.flush().unwrap();
    }
    // A record still being written: its first bytes only.
    let live = mo_core::log::list_segments(&log_dir)
        .unwrap()
        .pop()
        .unwrap();
    let mut f = fs::OpenOptions::new()
        .append(true)
        .open(&live.path)
        .unwrap();
    f.write_all(&[200, 0, 0, 0, 1, 2, 3]).unwrap();
    drop(f);

    let file = tmp.path().join("b.tar.zst");
    let opts = BackupOptions {
        with_logs: true,
        zstd: true,
        ..Default::default()
    };
    let manifest = backup(&dir, &store, &file, &opts);
    assert!(
        manifest
            .files
            .iter()
            .any(|f| f.path.starts_with("logs/web01/"))
    );
    let dest = tmp.path().join("r");
    restore_backup(&file, &dest, false, "t", &mut |_| {}).unwrap();
    let report = mo_core::log::verify(&dest.join("logs/web01")).unwrap();
    assert!(report.is_ok() && report.torn_tail.is_none(), "{report}");
    assert_eq!(report.records, 10, "{report}");
}
