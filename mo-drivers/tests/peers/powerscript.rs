//! A power script for the `exec` power controller tests.

#![allow(dead_code, missing_docs)]

use std::path::Path;
use std::sync::Arc;

use anyhow::Result;
use mo_core::power::PowerController;
use mo_drivers::DriverOptions;
use mo_drivers::power::power_controller_for;

/// A power script: `ctl ACTION DEVICE` keeps DEVICE's state in `$DIR/DEVICE`, logs to `$DIR/log`.
pub fn script(dir: &Path) -> Result<String> {
    let path = dir.join("ctl.sh");
    std::fs::write(
        &path,
        r#"#!/bin/sh
echo "$(date +%s.%N) $2 $1" >> "$DIR/log"
case "$1" in
  status) [ -f "$DIR/$2" ] && cat "$DIR/$2" || echo "Power is off" ;;
  on|cycle|reset) echo "Power is on" > "$DIR/$2" ;;
  off|soft-off) echo "Power is off" > "$DIR/$2" ;;
esac
case "$2" in
  broken*) echo "relay stuck" >&2; exit 3 ;;
  slow*) sleep 5 ;;
esac
exit 0
"#,
    )?;
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    Ok(path.display().to_string())
}

pub fn controller(dir: &Path, device: &str) -> Result<Arc<dyn PowerController>> {
    let ctl = script(dir)?;
    Ok(power_controller_for(
        &format!(
            "exec://{ctl}?arg={{action}}&arg={{device}}&device={device}&env=DIR={}&timeout=1s",
            dir.display()
        ),
        &DriverOptions::default(),
    )?)
}
