//! Fuzz `mo restore` (mo_store::backup::restore_backup) on arbitrary archives: never a panic,
//! nothing written outside the target directory, and an archive that is refused leaves no store
//! behind.
//!
//! Input: the archive's bytes (tar, or zstd when they start with its magic).

#![no_main]

use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;

fn scratch() -> PathBuf {
    std::env::temp_dir().join(format!("mo-fuzz-backup-{}", std::process::id()))
}

fuzz_target!(|data: &[u8]| {
    let root = scratch();
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).expect("scratch directory");
    let archive = root.join("backup.tar");
    std::fs::write(&archive, data).expect("write the archive");
    let dest = root.join("restored");
    let result = mo_store::backup::restore_backup(&archive, &dest, false, "fuzz", &mut |_| {});
    if result.is_err() {
        assert!(
            !dest.join(mo_store::DB_FILE).exists(),
            "a refused archive left a store behind"
        );
    }
    // Nothing but the archive and the target directory in the scratch directory.
    for entry in std::fs::read_dir(&root).expect("list scratch") {
        let name = entry.expect("entry").file_name();
        assert!(
            name == "backup.tar" || name == "restored",
            "restore wrote {name:?} outside its target"
        );
    }
    let _ = std::fs::remove_dir_all(&root);
});
