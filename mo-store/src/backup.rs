//! Online backups of a data directory and restores into a new one (`mo backup`, `mo restore`).
//!
//! A backup is a tar archive (zstd-compressed when its name ends in `.zst`, or on request) whose
//! first entry is `manifest.json` ([`Manifest`]: mo version, schema version, time, and every file
//! with its size and SHA-256), followed by the files under their data-directory paths:
//!
//! ```text
//! manifest.json
//! mo.db                          a consistent snapshot (SQLite VACUUM INTO), taken online
//! ssh_host_ed25519_key           the SSH door's host key, when there is one
//! schedule-state.json            the scheduler's state
//! known_hosts, site.toml         host keys of ssh:// devices, the site allowlist
//! macros/, audit-archive/,       stored macros, audit archives, the shell's per-user history,
//! history/, tls/                 the self-signed TLS pair (each directory's files)
//! secret.key                     only with --with-secret-key
//! logs/DEVICE/NNN.mlog[.zst]     only with --with-logs: closed segments as they are, the live
//!                                segment cut at its last complete record
//! ```
//!
//! The daemon keeps running: the database snapshot is one read transaction, and a record log is
//! copied up to the end of its last whole record at the moment it is read, so the copy verifies
//! (`mo log verify`) even while a console floods its log.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::datadir::{DB_FILE, DataDir, HOST_KEY_FILE, LOGS_DIR};
use crate::error::{Error, Result};
use crate::secrets::SECRET_KEY_FILE;
use crate::store::Store;

/// Name of the manifest entry, the first in every backup.
pub const MANIFEST_FILE: &str = "manifest.json";
/// Version of the backup layout this build writes and reads.
pub const BACKUP_FORMAT: u32 = 1;
/// Files of the data directory every backup holds when they exist (besides `mo.db`).
const EXTRA_FILES: &[&str] = &[
    HOST_KEY_FILE,
    crate::macros::SCHEDULE_STATE_FILE,
    "known_hosts",
    "site.toml",
];
/// Directories of the data directory whose files every backup holds: macros, audit archives,
/// the SSH shell's per-user history, the self-signed TLS pair.
const EXTRA_DIRS: &[&str] = &[crate::macros::MACROS_DIR, "audit-archive", "history", "tls"];
/// The four bytes every zstd frame starts with.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];
/// Largest manifest a restore reads (a backup with millions of files has a bigger one).
const MAX_MANIFEST: u64 = 64 * 1024 * 1024;

/// What a backup holds: written first into the archive, checked by a restore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`BACKUP_FORMAT`] of the writer.
    pub format: u32,
    /// The mo version that wrote it.
    pub mo_version: String,
    /// The store's schema version (`PRAGMA user_version`) at the snapshot.
    pub schema_version: i64,
    /// When the backup was taken (RFC 3339, UTC).
    pub created: String,
    /// The same, ns since the Unix epoch.
    pub created_ns: u64,
    /// Whether the record logs are in it.
    pub with_logs: bool,
    /// Whether the secret-sealing key (`secret.key`) is in it.
    pub with_secret_key: bool,
    /// Every file after the manifest, in archive order.
    pub files: Vec<ManifestFile>,
}

/// One file of a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    /// Path inside the data directory (`/`-separated, relative).
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the content, lowercase hex.
    pub sha256: String,
}

/// What to put into a backup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackupOptions {
    /// Add the record logs (`logs/`).
    pub with_logs: bool,
    /// Add `secret.key`, without which sealed device secrets cannot be opened.
    pub with_secret_key: bool,
    /// Compress the archive with zstd.
    pub zstd: bool,
}

/// What a restore found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreReport {
    /// The backup's manifest.
    pub manifest: Manifest,
    /// Devices in the restored store.
    pub devices: usize,
    /// Users in the restored store.
    pub users: usize,
    /// Sealed device secrets in the restored store.
    pub sealed_secrets: usize,
    /// Schema version after opening (migrations run).
    pub schema_version: i64,
}

/// Take a backup of the data directory `dir` into `dest` (created mode 0600; an existing file is
/// replaced only once the new archive is complete). `progress` gets one line per step.
pub fn create_backup(
    dir: &DataDir,
    store: &Store,
    dest: &Path,
    opts: &BackupOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<Manifest> {
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let staging = tempfile::Builder::new()
        .prefix(".mo-backup-")
        .tempdir_in(&parent)
        .map_err(|e| {
            Error::io(
                format!("cannot make a staging directory in {}", parent.display()),
                e,
            )
        })?;
    let stage = staging.path();

    progress("snapshot of the store");
    let db = stage.join(DB_FILE);
    store.snapshot_into(&db)?;
    let schema_version = Store::open(&db)?.schema_version()?;
    remove_sidecars(&db);

    let mut files: Vec<String> = vec![DB_FILE.to_string()];
    let mut copy_plain = |rel: &str| -> Result<()> {
        let from = dir.path().join(rel);
        match fs::read(&from) {
            Ok(bytes) => {
                write_file(&stage.join(rel), &bytes)?;
                files.push(rel.to_string());
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(format!("cannot read {}", from.display()), e)),
        }
    };
    for name in EXTRA_FILES {
        copy_plain(name)?;
    }
    if opts.with_secret_key {
        if !dir.secret_key_path().exists() {
            return Err(Error::BadValue {
                what: "--with-secret-key".into(),
                value: dir.secret_key_path().display().to_string(),
                reason: "there is no secret key in the data directory (no secret was ever sealed)"
                    .into(),
            });
        }
        copy_plain(SECRET_KEY_FILE)?;
    }
    for sub in EXTRA_DIRS {
        let from = dir.path().join(sub);
        for name in sorted_names(&from)? {
            if !name.starts_with('.') && !name.ends_with(".tmp") && from.join(&name).is_file() {
                copy_plain(&format!("{sub}/{name}"))?;
            }
        }
    }
    if opts.with_logs {
        for device in sorted_names(&dir.logs_dir())? {
            if crate::names::validate_device_name(&device).is_err()
                || !dir.logs_dir().join(&device).is_dir()
            {
                continue;
            }
            progress(&format!("record log of {device}"));
            for rel in copy_log(&dir.logs_dir().join(&device), stage, &device)? {
                files.push(rel);
            }
        }
    }

    progress("checksums");
    let mut entries = Vec::with_capacity(files.len());
    for rel in &files {
        let (size, sha256) = hash_file(&stage.join(rel))?;
        entries.push(ManifestFile {
            path: rel.clone(),
            size,
            sha256,
        });
    }
    let created_ns = crate::device::now_ns().max(0).unsigned_abs();
    let manifest = Manifest {
        format: BACKUP_FORMAT,
        mo_version: env!("CARGO_PKG_VERSION").to_string(),
        schema_version,
        created: mo_core::log::format_timestamp(created_ns),
        created_ns,
        with_logs: opts.with_logs,
        with_secret_key: opts.with_secret_key,
        files: entries,
    };

    progress(&format!("writing {}", dest.display()));
    let part = stage.join(".archive");
    write_archive(&part, stage, &manifest, opts.zstd)?;
    fs::rename(&part, dest).map_err(|e| {
        Error::io(
            format!("cannot move the backup into place at {}", dest.display()),
            e,
        )
    })?;
    Ok(manifest)
}

/// Copy a device's record log into `stage/logs/DEVICE/`: closed segments as they are, the live
/// (newest, plain) segment up to the end of its last complete record. Returns the paths added.
fn copy_log(src: &Path, stage: &Path, device: &str) -> Result<Vec<String>> {
    let segments = mo_core::log::list_segments(src)
        .map_err(|e| Error::Backup(format!("record log of {device}: {e}")))?;
    let mut added = Vec::new();
    let last = segments.len().saturating_sub(1);
    for (i, seg) in segments.iter().enumerate() {
        let name = seg.name();
        let mut bytes = match read_segment(&seg.path)? {
            Some(b) => b,
            None => {
                // Compressed (or removed by retention) since listed: take the compressed form.
                let zst = mo_core::log::compressed_path(&seg.path);
                match read_segment(&zst)? {
                    Some(b) if !seg.is_compressed() => {
                        let rel = format!("{LOGS_DIR}/{device}/{}", file_name(&zst));
                        write_file(&stage.join(&rel), &b)?;
                        added.push(rel);
                        continue;
                    }
                    _ => continue,
                }
            }
        };
        if i == last && !seg.is_compressed() {
            bytes.truncate(complete_prefix(&bytes));
            if bytes.is_empty() {
                continue;
            }
        }
        let rel = format!("{LOGS_DIR}/{device}/{name}");
        write_file(&stage.join(&rel), &bytes)?;
        added.push(rel);
    }
    Ok(added)
}

/// The length of the segment `bytes` up to the end of its last complete record (0 when even the
/// header is incomplete).
fn complete_prefix(bytes: &[u8]) -> usize {
    use mo_core::log::format::{HEADER_LEN, check_record};
    if bytes.len() < HEADER_LEN {
        return 0;
    }
    let mut pos = HEADER_LEN;
    while let Some(rest) = bytes.get(pos..) {
        if rest.is_empty() {
            break;
        }
        match check_record(rest) {
            Ok(len) => pos += len,
            Err(_) => break,
        }
    }
    pos
}

fn read_segment(path: &Path) -> Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(format!("cannot read {}", path.display()), e)),
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The names in `dir`, sorted; none if it does not exist.
fn sorted_names(dir: &Path) -> Result<Vec<String>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(format!("cannot list {}", dir.display()), e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(format!("cannot list {}", dir.display()), e))?;
        if let Some(name) = entry.file_name().to_str() {
            names.push(name.to_string());
        }
    }
    names.sort();
    Ok(names)
}

/// Write `bytes` to `path` (mode 0600), creating its parent directories (mode 0700).
fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(parent) = path.parent() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(|e| Error::io(format!("cannot create directory {}", parent.display()), e))?;
    }
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io(format!("cannot create {}", path.display()), e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))
}

fn hash_file(path: &Path) -> Result<(u64, String)> {
    let mut file =
        File::open(path).map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
    hash_reader(&mut file).map_err(|e| Error::io(format!("cannot read {}", path.display()), e))
}

fn hash_reader(r: &mut dyn Read) -> io::Result<(u64, String)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(buf.get(..n).unwrap_or(&[]));
        size += n as u64;
    }
    Ok((size, hex(&hasher.finalize())))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Delete SQLite's `-wal` and `-shm` files next to a closed database.
fn remove_sidecars(db: &Path) {
    for suffix in ["-wal", "-shm"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        let _ = fs::remove_file(PathBuf::from(name));
    }
}

fn write_archive(path: &Path, stage: &Path, manifest: &Manifest, zstd: bool) -> Result<()> {
    let ctx = |e: io::Error| Error::io(format!("cannot write the backup {}", path.display()), e);
    let file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(ctx)?;
    let out: Box<dyn Write> = if zstd {
        zstd_writer(file, path)?
    } else {
        Box::new(file)
    };
    let mut tar = tar::Builder::new(out);
    let json = serde_json::to_vec_pretty(manifest)
        .map_err(|e| Error::Backup(format!("cannot encode the backup manifest: {e}")))?;
    append(
        &mut tar,
        MANIFEST_FILE,
        &mut json.as_slice(),
        json.len() as u64,
        manifest.created_ns,
    )
    .map_err(ctx)?;
    for f in &manifest.files {
        let mut file = File::open(stage.join(&f.path)).map_err(ctx)?;
        append(&mut tar, &f.path, &mut file, f.size, manifest.created_ns).map_err(ctx)?;
    }
    let out = tar.into_inner().map_err(ctx)?;
    drop(out);
    File::open(path).and_then(|f| f.sync_all()).map_err(ctx)
}

fn append<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &str,
    data: &mut dyn Read,
    size: u64,
    time_ns: u64,
) -> io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(size);
    header.set_mode(0o600);
    header.set_mtime(time_ns / 1_000_000_000);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    tar.append_data(&mut header, path, data)
}

/// Restore the backup `file` into the data directory `dest`, which must be empty or missing
/// unless `force` (then files of the backup replace those there). Every file is checked against
/// the manifest before anything lands in `dest`; then the store is opened (running migrations
/// for a backup of an older release) and the restore is recorded in its audit log by `actor`.
pub fn restore_backup(
    file: &Path,
    dest: &Path,
    force: bool,
    actor: &str,
    progress: &mut dyn FnMut(&str),
) -> Result<RestoreReport> {
    let existed = dest.exists();
    let mut was_empty = true;
    if existed {
        if !dest.is_dir() {
            return Err(Error::Backup(format!(
                "cannot restore into {}: it is not a directory",
                dest.display()
            )));
        }
        let non_empty = fs::read_dir(dest)
            .map_err(|e| Error::io(format!("cannot list {}", dest.display()), e))?
            .next()
            .is_some();
        if non_empty && !force {
            return Err(Error::Backup(format!(
                "cannot restore into {}: it is not empty (restore into a new directory, or give \
                 --force to replace the files the backup holds)",
                dest.display()
            )));
        }
        was_empty = !non_empty;
    }
    let result = restore_into(file, dest, force, actor, progress);
    if result.is_err() && was_empty {
        // Leave the directory as it was, so the next attempt finds it empty (or absent).
        if existed {
            for entry in fs::read_dir(dest).into_iter().flatten().flatten() {
                let path = entry.path();
                let _ = fs::remove_dir_all(&path).or_else(|_| fs::remove_file(&path));
            }
        } else {
            let _ = fs::remove_dir_all(dest);
        }
    }
    result
}

fn restore_into(
    file: &Path,
    dest: &Path,
    force: bool,
    actor: &str,
    progress: &mut dyn FnMut(&str),
) -> Result<RestoreReport> {
    let shown = file.display().to_string();
    let dir = DataDir::open(dest)?;
    let staging = tempfile::Builder::new()
        .prefix(".mo-restore-")
        .tempdir_in(dir.path())
        .map_err(|e| {
            Error::io(
                format!("cannot make a staging directory in {}", dest.display()),
                e,
            )
        })?;
    progress(&format!("reading {shown}"));
    let manifest = unpack(file, staging.path())?;

    // Everything checked: move the files into place.
    progress(&format!("restoring into {}", dest.display()));
    if force {
        remove_sidecars(&dir.db_path());
    }
    for f in &manifest.files {
        let to = dir.path().join(&f.path);
        if let Some(parent) = to.parent() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .map_err(|e| Error::io(format!("cannot create {}", parent.display()), e))?;
        }
        fs::rename(staging.path().join(&f.path), &to)
            .map_err(|e| Error::io(format!("cannot move {} into place", to.display()), e))?;
    }
    drop(staging);

    progress("opening the restored store");
    let store = dir.open_store()?;
    let schema_version = store.schema_version()?;
    let devices = store.list_devices()?.len();
    let users = store.list_users()?.len();
    let sealed_secrets = store.read("count the sealed secrets", |c| {
        c.query_row("SELECT COUNT(*) FROM device_secrets", [], |r| {
            r.get::<_, i64>(0)
        })
    })?;
    let entry = crate::AuditEntry::new(Some(actor), "restore", crate::Outcome::Ok)
        .source(Some("cli"))
        .detail(format!(
            "from {shown} (taken {} by mo {}, schema {}{}{})",
            manifest.created,
            manifest.mo_version,
            manifest.schema_version,
            if manifest.with_logs {
                ", with logs"
            } else {
                ""
            },
            if manifest.with_secret_key {
                ", with secret key"
            } else {
                ""
            },
        ));
    store.append_audit(&entry)?;
    Ok(RestoreReport {
        devices,
        users,
        sealed_secrets: usize::try_from(sealed_secrets).unwrap_or(0),
        schema_version,
        manifest,
    })
}

/// `file` behind a zstd encoder (level 3); `path` names it in errors.
#[cfg(feature = "compress")]
fn zstd_writer(file: File, path: &Path) -> Result<Box<dyn Write>> {
    let encoder = zstd::Encoder::new(file, 3)
        .map_err(|e| Error::io(format!("cannot write the backup {}", path.display()), e))?;
    Ok(Box::new(encoder.auto_finish()))
}

/// `file` behind a zstd decoder; `shown` names it in errors.
#[cfg(feature = "compress")]
fn zstd_reader(file: File, shown: &str) -> Result<Box<dyn Read>> {
    let decoder =
        zstd::Decoder::new(file).map_err(|e| Error::io(format!("cannot read {shown}"), e))?;
    Ok(Box::new(decoder))
}

#[cfg(not(feature = "compress"))]
fn zstd_writer(_file: File, path: &Path) -> Result<Box<dyn Write>> {
    Err(no_zstd(&path.display().to_string()))
}

#[cfg(not(feature = "compress"))]
fn zstd_reader(_file: File, shown: &str) -> Result<Box<dyn Read>> {
    Err(no_zstd(shown))
}

/// A zstd backup met by a build without zstd.
#[cfg(not(feature = "compress"))]
fn no_zstd(shown: &str) -> Error {
    Error::Backup(format!(
        "{shown}: a zstd-compressed backup, and this build of mo-store has no zstd \
         (its Cargo feature `compress` is off)"
    ))
}

/// Read the archive `file` into `stage`, checking every entry against the manifest.
fn unpack(file: &Path, stage: &Path) -> Result<Manifest> {
    let shown = file.display().to_string();
    let bad = |what: String| Error::Backup(format!("{shown}: {what}"));
    let mut f = File::open(file).map_err(|e| Error::io(format!("cannot open {shown}"), e))?;
    let mut magic = [0u8; 4];
    let got = f
        .read(&mut magic)
        .map_err(|e| Error::io(format!("cannot read {shown}"), e))?;
    let f = File::open(file).map_err(|e| Error::io(format!("cannot open {shown}"), e))?;
    let input: Box<dyn Read> = if got == 4 && magic == ZSTD_MAGIC {
        zstd_reader(f, &shown)?
    } else {
        Box::new(f)
    };
    let mut archive = tar::Archive::new(input);
    let io_err = |e: io::Error| {
        bad(format!(
            "not a readable mo backup (tar, optionally zstd): {e}"
        ))
    };
    let mut entries = archive.entries().map_err(io_err)?;
    let mut first = match entries.next() {
        Some(e) => e.map_err(io_err)?,
        None => return Err(bad("empty archive, not a mo backup".into())),
    };
    let first_path = entry_path(&first).map_err(&bad)?;
    if first_path != MANIFEST_FILE {
        return Err(bad(format!(
            "not a mo backup: its first entry is {first_path}, not {MANIFEST_FILE}"
        )));
    }
    let mut json = Vec::new();
    (&mut first)
        .take(MAX_MANIFEST)
        .read_to_end(&mut json)
        .map_err(io_err)?;
    let manifest: Manifest = serde_json::from_slice(&json)
        .map_err(|e| bad(format!("{MANIFEST_FILE} is not a valid manifest: {e}")))?;
    if manifest.format != BACKUP_FORMAT {
        return Err(bad(format!(
            "backup format {} is not one this mo reads ({BACKUP_FORMAT}); restore it with mo {}",
            manifest.format, manifest.mo_version
        )));
    }
    let mut expected: BTreeMap<&str, &ManifestFile> = BTreeMap::new();
    for f in &manifest.files {
        safe_relative(&f.path).map_err(&bad)?;
        if expected.insert(&f.path, f).is_some() {
            return Err(bad(format!("the manifest lists {} twice", f.path)));
        }
    }
    if !expected.contains_key(DB_FILE) {
        return Err(bad(format!("the manifest has no {DB_FILE}")));
    }
    let mut seen: BTreeMap<String, ()> = BTreeMap::new();
    for entry in entries {
        let mut entry = entry.map_err(io_err)?;
        let path = entry_path(&entry).map_err(&bad)?;
        let Some(want) = expected.get(path.as_str()) else {
            return Err(bad(format!(
                "{path} is in the archive but not in the manifest"
            )));
        };
        if entry.header().entry_type() != tar::EntryType::Regular {
            return Err(bad(format!("{path} is not a regular file")));
        }
        if seen.insert(path.clone(), ()).is_some() {
            return Err(bad(format!("{path} is in the archive twice")));
        }
        let to = stage.join(&path);
        if let Some(parent) = to.parent() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .map_err(|e| Error::io(format!("cannot create {}", parent.display()), e))?;
        }
        let mut out = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&to)
            .map_err(|e| Error::io(format!("cannot create {}", to.display()), e))?;
        let mut tee = TeeReader {
            inner: (&mut entry).take(want.size.saturating_add(1)),
            out: &mut out,
        };
        let (size, sha256) = hash_reader(&mut tee).map_err(io_err)?;
        if size != want.size || sha256 != want.sha256 {
            return Err(bad(format!(
                "{path} is damaged: its checksum does not match the manifest ({size} bytes, \
                 sha256 {sha256}; expected {} bytes, sha256 {})",
                want.size, want.sha256
            )));
        }
    }
    for path in expected.keys() {
        if !seen.contains_key(*path) {
            return Err(bad(format!(
                "{path} is in the manifest but missing from the archive (cut short?)"
            )));
        }
    }
    Ok(manifest)
}

/// A reader that copies what it reads into `out`.
struct TeeReader<'a, R> {
    inner: R,
    out: &'a mut File,
}

impl<R: Read> Read for TeeReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.out.write_all(buf.get(..n).unwrap_or(&[]))?;
        Ok(n)
    }
}

fn entry_path<R: Read>(entry: &tar::Entry<'_, R>) -> std::result::Result<String, String> {
    let path = entry
        .path()
        .map_err(|e| format!("an entry has an unreadable name: {e}"))?;
    let text = path
        .to_str()
        .ok_or_else(|| format!("entry name {} is not UTF-8", path.display()))?
        .to_string();
    safe_relative(&text)?;
    Ok(text)
}

/// Refuse a path that is absolute, has `..`, or is empty.
fn safe_relative(path: &str) -> std::result::Result<(), String> {
    let p = Path::new(path);
    if path.is_empty() || !p.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(format!("unsafe path {path:?} in the backup"));
    }
    Ok(())
}

#[cfg(test)]
#[path = "backup_tests.rs"]
mod tests;
