//! The `mo` admin CLI, run on a data directory.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::binaries::bin_path;
use crate::error::Result;
use crate::process::{CmdOutput, run_with_timeout};

/// Runs the workspace's `mo` binary.
#[derive(Debug, Clone, Copy)]
pub struct Cli;

impl Cli {
    /// How long one `mo` invocation may take before it counts as hung.
    pub const TIMEOUT: Duration = Duration::from_secs(60);

    /// Run `mo --data-dir DATA_DIR ARGS...` with `stdin` as its input; any exit status is returned.
    pub fn run(data_dir: &Path, args: &[&str], stdin: Option<&str>) -> Result<CmdOutput> {
        let mut cmd = Command::new(bin_path("mo")?);
        cmd.arg("--data-dir").arg(data_dir).args(args);
        run_with_timeout(cmd, stdin.map(str::as_bytes), Self::TIMEOUT)
    }

    /// Like [`Cli::run`], but a non-zero exit is an error carrying the whole output.
    pub fn run_ok(data_dir: &Path, args: &[&str], stdin: Option<&str>) -> Result<CmdOutput> {
        Self::run(data_dir, args, stdin)?.ok()
    }
}
