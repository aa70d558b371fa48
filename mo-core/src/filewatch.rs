//! The file-change monitor: watches a list of files for changes of size, content (BLAKE3),
//! modification time, permissions and owner, and for disappearance and reappearance, by polling.
//!
//! ```
//! use mo_core::filewatch::{FileWatcher, ChangeKind};
//!
//! # fn main() -> std::io::Result<()> {
//! let dir = std::env::temp_dir().join(format!("mo-filewatch-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let path = dir.join("hosts");
//! std::fs::write(&path, "127.0.0.1 localhost\n")?;
//! let mut watcher = FileWatcher::new([path.clone()]);
//! std::fs::write(&path, "127.0.0.1 localhost evil\n")?;
//! let changes = watcher.poll();
//! assert!(changes.iter().any(|c| c.what == ChangeKind::Size));
//! assert!(changes.iter().any(|c| c.what == ChangeKind::Checksum));
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok(())
//! # }
//! ```
//!
//! [`cert_profile`] is the classic list of system files whose change on a server should alert
//! someone (after the CERT intruder-detection checklists). Files missing when watching starts
//! are kept on the list silently and reported when they appear.

use std::fmt;
use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::record::now_ns;

/// The CERT profile: system files that should rarely change, and whose change may mean an
/// intrusion (accounts, privileges, remote access, name resolution, scheduled jobs, boot).
pub const CERT_FILES: &[&str] = &[
    "/etc/passwd",
    "/etc/shadow",
    "/etc/group",
    "/etc/gshadow",
    "/etc/sudoers",
    "/etc/ssh/sshd_config",
    "/etc/ssh/ssh_config",
    "/etc/hosts",
    "/etc/hosts.allow",
    "/etc/hosts.deny",
    "/etc/hosts.equiv",
    "/etc/resolv.conf",
    "/etc/nsswitch.conf",
    "/etc/crontab",
    "/etc/inetd.conf",
    "/etc/xinetd.conf",
    "/etc/services",
    "/etc/inittab",
    "/etc/rc.local",
    "/etc/profile",
    "/etc/shells",
    "/etc/securetty",
    "/etc/login.defs",
    "/etc/pam.d/common-auth",
    "/etc/pam.d/sshd",
    "/etc/ld.so.preload",
    "/etc/ld.so.conf",
    "/etc/exports",
    "/etc/fstab",
    "/etc/syslog.conf",
    "/etc/rsyslog.conf",
    "/root/.rhosts",
    "/root/.ssh/authorized_keys",
];

/// The [`CERT_FILES`] as paths.
pub fn cert_profile() -> Vec<PathBuf> {
    CERT_FILES.iter().map(PathBuf::from).collect()
}

/// What changed about a watched file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    /// The file exists again (or for the first time) after being missing.
    Appeared,
    /// The file is gone (or cannot be read any more; the new value says why).
    Disappeared,
    /// Its size changed.
    Size,
    /// Its contents changed (BLAKE3 of the bytes), possibly with the same size.
    Checksum,
    /// Its modification time changed.
    Mtime,
    /// Its permission bits (including setuid/setgid/sticky) or file type changed.
    Permissions,
    /// Its owner or group changed.
    Owner,
}

impl ChangeKind {
    /// A short lower-case name: `appeared`, `disappeared`, `size`, `checksum`, `mtime`,
    /// `permissions`, `owner`.
    pub fn name(self) -> &'static str {
        match self {
            ChangeKind::Appeared => "appeared",
            ChangeKind::Disappeared => "disappeared",
            ChangeKind::Size => "size",
            ChangeKind::Checksum => "checksum",
            ChangeKind::Mtime => "mtime",
            ChangeKind::Permissions => "permissions",
            ChangeKind::Owner => "owner",
        }
    }
}

/// One change found by [`FileWatcher::poll`], with the old and new values as text (sizes in
/// bytes, checksums as hex, times in RFC 3339, modes in octal, owners as `uid:gid`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    /// When the change was noticed, ns since the Unix epoch.
    pub time_ns: u64,
    /// The file.
    pub path: PathBuf,
    /// What changed.
    pub what: ChangeKind,
    /// The value before (`missing` for a file that appeared).
    pub old: String,
    /// The value now (`missing`, or the reason it cannot be read, for a file that disappeared).
    pub new: String,
}

impl fmt::Display for FileChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} changed: {} -> {}",
            self.path.display(),
            self.what.name(),
            self.old,
            self.new
        )
    }
}

/// What is known about a file at one poll.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileState {
    size: u64,
    mtime_ns: i128,
    mode: u32,
    uid: u32,
    gid: u32,
    hash: blake3::Hash,
}

#[derive(Debug)]
struct Watched {
    path: PathBuf,
    /// `Err(reason)` while the file is missing or unreadable.
    state: Result<FileState, String>,
    /// The state before the file went missing, to compare with when it comes back.
    last_seen: Option<FileState>,
}

/// Watches files by polling; see the [module documentation](self).
#[derive(Debug)]
pub struct FileWatcher {
    files: Vec<Watched>,
}

impl FileWatcher {
    /// Watch `paths`, taking their current state as the baseline. Missing files are watched for
    /// appearance without a report now.
    pub fn new(paths: impl IntoIterator<Item = PathBuf>) -> Self {
        let files = paths
            .into_iter()
            .map(|path| {
                let state = snapshot(&path);
                Watched {
                    path,
                    state,
                    last_seen: None,
                }
            })
            .collect();
        FileWatcher { files }
    }

    /// Watch the [`cert_profile`] files.
    pub fn cert() -> Self {
        FileWatcher::new(cert_profile())
    }

    /// The watched paths and whether each exists (and is readable) now.
    pub fn files(&self) -> impl Iterator<Item = (&Path, bool)> {
        self.files
            .iter()
            .map(|w| (w.path.as_path(), w.state.is_ok()))
    }

    /// Look at every file once and return what changed since the last poll (or the baseline).
    /// A vanished file gives one [`ChangeKind::Disappeared`]; a file that reappears gives
    /// [`ChangeKind::Appeared`] plus the changes against its last known state, if it had one.
    pub fn poll(&mut self) -> Vec<FileChange> {
        let time_ns = now_ns();
        let mut changes = Vec::new();
        for w in &mut self.files {
            let now = snapshot(&w.path);
            let mut push = |what, old: String, new: String| {
                changes.push(FileChange {
                    time_ns,
                    path: w.path.clone(),
                    what,
                    old,
                    new,
                });
            };
            let next = match (&w.state, now) {
                (Ok(old), Err(reason)) => {
                    push(ChangeKind::Disappeared, "present".into(), reason.clone());
                    w.last_seen = Some(old.clone());
                    Err(reason)
                }
                (Err(_), Ok(new)) => {
                    push(ChangeKind::Appeared, "missing".into(), "present".into());
                    if let Some(old) = w.last_seen.take() {
                        compare(&old, &new, &mut push);
                    }
                    Ok(new)
                }
                (Ok(old), Ok(new)) => {
                    compare(old, &new, &mut push);
                    Ok(new)
                }
                (Err(_), Err(reason)) => Err(reason),
            };
            w.state = next;
        }
        changes
    }

    /// Poll every `interval` and send each change to `tx`, until the receiver is dropped.
    pub async fn run(mut self, interval: Duration, tx: mpsc::Sender<FileChange>) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            // Hashing reads files: keep it off the async worker threads.
            let (back, changes) = match tokio::task::spawn_blocking(move || {
                let changes = self.poll();
                (self, changes)
            })
            .await
            {
                Ok(done) => done,
                Err(e) => {
                    tracing::error!("file watcher poll failed: {e}");
                    return;
                }
            };
            self = back;
            for change in changes {
                if tx.send(change).await.is_err() {
                    return;
                }
            }
            if tx.is_closed() {
                return;
            }
        }
    }
}

fn compare(old: &FileState, new: &FileState, push: &mut impl FnMut(ChangeKind, String, String)) {
    if old.size != new.size {
        push(ChangeKind::Size, old.size.to_string(), new.size.to_string());
    }
    if old.hash != new.hash {
        push(
            ChangeKind::Checksum,
            old.hash.to_hex().to_string(),
            new.hash.to_hex().to_string(),
        );
    }
    if old.mtime_ns != new.mtime_ns {
        push(
            ChangeKind::Mtime,
            mtime_text(old.mtime_ns),
            mtime_text(new.mtime_ns),
        );
    }
    if old.mode != new.mode {
        push(
            ChangeKind::Permissions,
            format!("{:o}", old.mode),
            format!("{:o}", new.mode),
        );
    }
    if (old.uid, old.gid) != (new.uid, new.gid) {
        push(
            ChangeKind::Owner,
            format!("{}:{}", old.uid, old.gid),
            format!("{}:{}", new.uid, new.gid),
        );
    }
}

fn mtime_text(ns: i128) -> String {
    match u64::try_from(ns) {
        Ok(ns) => crate::log::format_timestamp(ns),
        Err(_) => format!("{ns}ns"),
    }
}

/// The file's state now, or why it cannot be had (`missing`, or the error).
fn snapshot(path: &Path) -> Result<FileState, String> {
    let why = |e: io::Error| {
        if e.kind() == io::ErrorKind::NotFound {
            "missing".to_owned()
        } else {
            format!("unreadable: {e}")
        }
    };
    let mut file = File::open(path).map_err(why)?;
    let meta = file.metadata().map_err(why)?;
    let mut hasher = blake3::Hasher::new();
    if meta.is_file() {
        io::copy(&mut file, &mut hasher).map_err(why)?;
    }
    Ok(FileState {
        size: meta.len(),
        mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
        mode: meta.mode(),
        uid: meta.uid(),
        gid: meta.gid(),
        hash: hasher.finalize(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::time::SystemTime;

    use super::*;

    fn kinds(changes: &[FileChange]) -> Vec<ChangeKind> {
        changes.iter().map(|c| c.what).collect()
    }

    #[test]
    fn reports_size_checksum_mtime_and_permissions() {
        let tmp = tempfile::tempdir().unwrap();
        let a = tmp.path().join("passwd");
        std::fs::write(&a, "root:x:0:0\n").unwrap();
        let mut w = FileWatcher::new([a.clone()]);
        assert!(w.poll().is_empty(), "no change, no report");

        // Same size, different bytes, mtime put back: only the checksum gives it away.
        let mtime = std::fs::metadata(&a).unwrap().modified().unwrap();
        std::fs::write(&a, "r00t:x:0:0\n").unwrap();
        File::options()
            .write(true)
            .open(&a)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        let changes = w.poll();
        assert_eq!(kinds(&changes), [ChangeKind::Checksum]);
        assert_eq!(changes[0].path, a);
        assert_eq!(changes[0].old.len(), 64);
        assert_ne!(changes[0].old, changes[0].new);

        std::fs::write(&a, "root:x:0:0\nevil:x:0:0\n").unwrap();
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_341_600);
        File::options()
            .write(true)
            .open(&a)
            .unwrap()
            .set_modified(t)
            .unwrap();
        let changes = w.poll();
        assert_eq!(
            kinds(&changes),
            [ChangeKind::Size, ChangeKind::Checksum, ChangeKind::Mtime]
        );
        assert_eq!(
            (changes[0].old.as_str(), changes[0].new.as_str()),
            ("11", "22")
        );
        assert_eq!(changes[2].new, "2026-11-22T10:00:00.000Z");

        std::fs::set_permissions(&a, std::fs::Permissions::from_mode(0o4644)).unwrap();
        let changes = w.poll();
        assert_eq!(kinds(&changes), [ChangeKind::Permissions]);
        assert!(changes[0].new.ends_with("4644"), "{}", changes[0]);
        assert!(changes[0].to_string().contains("permissions changed"));
    }

    #[test]
    fn disappearance_and_reappearance() {
        let tmp = tempfile::tempdir().unwrap();
        let a = tmp.path().join("shadow");
        let late = tmp.path().join("rhosts");
        std::fs::write(&a, "x\n").unwrap();
        let mut w = FileWatcher::new([a.clone(), late.clone()]);
        assert_eq!(w.files().map(|(_, e)| e).collect::<Vec<_>>(), [true, false]);
        std::fs::remove_file(&a).unwrap();
        let changes = w.poll();
        assert_eq!(kinds(&changes), [ChangeKind::Disappeared]);
        assert_eq!(changes[0].new, "missing");
        assert!(w.poll().is_empty(), "reported once");

        std::fs::write(&a, "xy\n").unwrap();
        std::fs::write(&late, "+ +\n").unwrap();
        let changes = w.poll();
        let got: Vec<(&Path, ChangeKind)> =
            changes.iter().map(|c| (c.path.as_path(), c.what)).collect();
        assert_eq!(got[0], (a.as_path(), ChangeKind::Appeared));
        assert!(got.contains(&(a.as_path(), ChangeKind::Size)));
        assert!(got.contains(&(a.as_path(), ChangeKind::Checksum)));
        assert_eq!(got.last(), Some(&(late.as_path(), ChangeKind::Appeared)));
        assert!(w.poll().is_empty());
    }

    #[test]
    fn cert_profile_lists_the_classics() {
        for f in ["/etc/passwd", "/etc/shadow", "/etc/group", "/etc/sudoers"] {
            assert!(CERT_FILES.contains(&f), "{f}");
        }
        for f in [
            "/etc/ssh/sshd_config",
            "/etc/hosts",
            "/etc/crontab",
            "/etc/inetd.conf",
        ] {
            assert!(CERT_FILES.contains(&f), "{f}");
        }
        let w = FileWatcher::cert();
        let passwd = w
            .files()
            .find(|(p, _)| *p == Path::new("/etc/passwd"))
            .unwrap();
        assert!(passwd.1, "/etc/passwd exists and is readable here");
    }

    #[tokio::test]
    async fn run_sends_changes_until_the_receiver_goes() {
        let tmp = tempfile::tempdir().unwrap();
        let a = tmp.path().join("hosts");
        std::fs::write(&a, "1\n").unwrap();
        let (tx, mut rx) = mpsc::channel(16);
        let task = tokio::spawn(FileWatcher::new([a.clone()]).run(Duration::from_millis(20), tx));
        tokio::time::sleep(Duration::from_millis(50)).await;
        std::fs::remove_file(&a).unwrap();
        let change = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(change.what, ChangeKind::Disappeared);
        drop(rx);
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap();
    }
}
