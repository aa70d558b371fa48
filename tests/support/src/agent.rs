//! The console-server agent `mo-agent` (a workspace binary) dialing the test's daemon.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::binaries::bin_path;
use crate::error::{Error, Result};
use crate::world::World;

/// `mo agent add NAME`: the enrollment token it prints.
pub fn add_agent(w: &World, name: &str) -> Result<String> {
    let out = w.mo_ok(&["agent", "add", name], None)?;
    let token = out.stdout.trim().to_owned();
    if !token.starts_with("moenroll_") {
        return Err(Error::Check(format!(
            "mo agent add printed no token: {}",
            out.combined()
        )));
    }
    Ok(token)
}

/// `mo-agent` dialing `w`'s daemon as agent `name` with the key in `key` (arguments for what it
/// does are added by the caller).
pub fn agent_cmd(w: &World, name: &str, key: &Path) -> Result<Command> {
    let mut cmd = Command::new(bin_path("mo-agent")?);
    cmd.arg("--connect")
        .arg(format!("ssh://{name}@127.0.0.1:{}", w.port()))
        .arg("--key")
        .arg(key)
        .env("NO_COLOR", "1")
        .env("MO_AGENT_LOG", "info,russh=warn")
        .stdin(Stdio::null());
    Ok(cmd)
}
