//! Where the workspace's binaries (`mod`, `mo`) are: next to the running test executable, in the
//! same cargo target directory and profile.
//!
//! `CARGO_BIN_EXE_*` only exists inside a binary's own package, so the e2e tests find the binaries
//! on disk instead. They must be built first: `cargo build -p mo-daemon -p mo-cli` (the project's
//! `./scripts/test.sh` builds the whole workspace before testing). A binary older than the sources
//! earns a warning on stderr, since a stale daemon makes for confusing failures.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::SystemTime;

use crate::error::{Error, Result};

/// How to build the binaries, for error messages.
pub const BUILD_HINT: &str = "build them first with `cargo build -p mo-daemon -p mo-cli` (./scripts/test.sh builds everything)";

/// The workspace root (two levels above this crate's manifest).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| manifest.to_path_buf())
}

/// The directory holding the binaries of the current profile (e.g. `target/debug`).
///
/// `MO_BIN_DIR` overrides it; otherwise it is the directory above the running test executable's
/// `deps/`, falling back to `$CARGO_TARGET_DIR/debug` or `<workspace>/target/debug`.
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("MO_BIN_DIR") {
        return PathBuf::from(dir);
    }
    if let Ok(exe) = std::env::current_exe()
        && let Some(deps) = exe.parent()
        && deps.file_name().is_some_and(|n| n == "deps")
        && let Some(profile) = deps.parent()
    {
        return profile.to_path_buf();
    }
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                workspace_root().join(dir)
            }
        }
        None => workspace_root().join("target"),
    };
    target.join("debug")
}

/// The path of the workspace binary `name` (`"mod"` or `"mo"`); an error with a build hint if it
/// has not been built.
pub fn bin_path(name: &str) -> Result<PathBuf> {
    let path = bin_dir().join(name);
    if !path.is_file() {
        return Err(Error::MissingBinary {
            name: name.to_string(),
            path,
            hint: BUILD_HINT.to_string(),
        });
    }
    warn_if_stale(&path);
    Ok(path)
}

fn warn_if_stale(path: &Path) {
    static NEWEST_SOURCE: OnceLock<Option<(SystemTime, PathBuf)>> = OnceLock::new();
    let newest = NEWEST_SOURCE.get_or_init(|| {
        let root = workspace_root();
        let mut best: Option<(SystemTime, PathBuf)> = None;
        for krate in ["mo-core", "mo-drivers", "mo-store", "mo-daemon", "mo-cli"] {
            newest_in(&root.join(krate).join("src"), &mut best);
            newest_in_file(&root.join(krate).join("Cargo.toml"), &mut best);
        }
        best
    });
    let built = std::fs::metadata(path).and_then(|m| m.modified()).ok();
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if let (Some(built), Some((source_time, source))) = (built, newest)
        && *source_time > built
        && !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed)
    {
        eprintln!(
            "warning: {} is older than {}; {BUILD_HINT}",
            path.display(),
            source.display()
        );
    }
}

fn newest_in_file(path: &Path, best: &mut Option<(SystemTime, PathBuf)>) {
    if let Ok(modified) = std::fs::metadata(path).and_then(|m| m.modified())
        && best.as_ref().is_none_or(|(t, _)| modified > *t)
    {
        *best = Some((modified, path.to_path_buf()));
    }
}

fn newest_in(dir: &Path, best: &mut Option<(SystemTime, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_dir() {
            newest_in(&path, best);
        } else if path.extension().is_some_and(|e| e == "rs" || e == "sql") {
            newest_in_file(&path, best);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bin_dir_is_the_profile_dir_of_this_test() {
        let dir = bin_dir();
        assert!(dir.join("deps").is_dir(), "{} has no deps/", dir.display());
    }

    #[test]
    fn missing_binary_says_how_to_build() {
        let err = bin_path("no-such-binary-xyz")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("no-such-binary-xyz") && err.contains("cargo build"),
            "{err}"
        );
    }
}
