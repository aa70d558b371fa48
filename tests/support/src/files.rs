//! Files tests write as other programs would.

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};

/// Append one line to `path` as a logging program would (open, append, close), creating it.
pub fn append_line(path: &Path, line: &str) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| Error::io(format!("open {}", path.display()), e))?;
    writeln!(f, "{line}").map_err(|e| Error::io(format!("write {}", path.display()), e))
}
