//! The SSH shell's command history, one file per user: `DATA_DIR/history/USER` (mode 0600, in a
//! 0700 directory), one command a line, oldest first, the newest [`MAX`] kept. A user's sessions
//! share their file; no user ever reads another's.

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mo_core::door::line_edit::History;

use crate::Ctx;

/// Lines kept per user.
pub const MAX: usize = 500;

/// Serializes writes, so two sessions of one user never lose each other's lines.
static WRITING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The history directory of the daemon's data directory (beside the store's database).
fn dir(ctx: &Ctx) -> PathBuf {
    ctx.store
        .path()
        .parent()
        .map_or_else(|| PathBuf::from("history"), |d| d.join("history"))
}

/// A user name as a file name: letters, digits, `-` and `_` as they are, every other byte as
/// `%XX` (so no name can climb out of the directory or hide as a dot file).
fn file_name(user: &str) -> String {
    let mut s = String::with_capacity(user.len());
    for b in user.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            s.push(char::from(b));
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

fn read(path: &Path) -> History {
    match std::fs::read(path) {
        Ok(bytes) => History::from_text(&String::from_utf8_lossy(&bytes), MAX),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => History::new(MAX),
        Err(e) => {
            tracing::warn!("cannot read SSH shell history {}: {e}", path.display());
            History::new(MAX)
        }
    }
}

/// `user`'s history (empty if there is none yet or it cannot be read).
pub async fn load(ctx: &Arc<Ctx>, user: &str) -> History {
    let path = dir(ctx).join(file_name(user));
    tokio::task::spawn_blocking(move || read(&path))
        .await
        .unwrap_or_else(|_| History::new(MAX))
}

/// Add `line` to `user`'s history file (a failure is logged; the shell goes on).
pub async fn append(ctx: &Arc<Ctx>, user: &str, line: &str) {
    let dir = dir(ctx);
    let name = file_name(user);
    let line = line.to_string();
    let done = tokio::task::spawn_blocking(move || {
        let _held = WRITING
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let path = dir.join(&name);
        let mut history = read(&path);
        history.add(&line);
        write(&dir, &name, history.to_text().as_bytes())
            .map_err(|e| format!("cannot write SSH shell history {}: {e}", path.display()))
    })
    .await;
    match done {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!("{e}"),
        Err(e) => tracing::warn!("cannot write SSH shell history: {e}"),
    }
}

/// Replace `dir/name` with `data` (through a temporary file and a rename).
fn write(dir: &Path, name: &str, data: &[u8]) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(data)?;
    drop(f);
    std::fs::rename(&tmp, dir.join(name))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn user_names_become_safe_file_names() {
        assert_eq!(file_name("alice"), "alice");
        assert_eq!(file_name("../x"), "%2E%2E%2Fx");
        assert_eq!(file_name(".hidden"), "%2Ehidden");
        assert_eq!(file_name("a b_c-d"), "a%20b_c-d");
    }

    #[test]
    fn write_then_read() {
        let dir = std::env::temp_dir().join(format!("mo-history-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        write(&dir, "alice", b"list\nwho\n").unwrap();
        let h = read(&dir.join("alice"));
        assert_eq!(h.entries().collect::<Vec<_>>(), vec!["list", "who"]);
        assert!(read(&dir.join("bob")).is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
