//! Mass power-off: `mo power off|soft-off` on more than one device (a glob or `@GROUP` matching
//! several, several names, or `--all`) asks for confirmation on the terminal unless `--yes`, and
//! refuses without a terminal. With `--server`, globs and `@GROUP`s are expanded against the
//! daemon's device list with the selector (`mo_core::selector`) the data directory, the SSH
//! shell and the API use.

use std::io::{self, BufRead, IsTerminal, Write};

use anyhow::{Result, bail};

/// True for the actions that cut power.
pub fn cuts_power(action: &str) -> bool {
    matches!(action, "off" | "soft-off" | "softoff")
}

/// Ask before `action` switches `devices` (already expanded) when that is a mass power-off;
/// `yes` skips the question.
pub fn confirm(action: &str, devices: &[String], all: bool, yes: bool) -> Result<()> {
    if !cuts_power(action) || yes || (devices.len() <= 1 && !all) {
        return Ok(());
    }
    let shown: Vec<&str> = devices.iter().take(10).map(String::as_str).collect();
    let more = devices.len().saturating_sub(shown.len());
    let list = if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    };
    let n = devices.len();
    if !io::stdin().is_terminal() {
        bail!(
            "mo power {action} would switch off {n} devices ({list}): give --yes to confirm \
             (there is no terminal to ask on)"
        );
    }
    let mut err = io::stderr();
    write!(
        err,
        "power {action} {n} devices ({list})? type yes to confirm: "
    )?;
    err.flush()?;
    let mut answer = String::new();
    io::stdin().lock().read_line(&mut answer)?;
    if answer.trim() != "yes" {
        bail!("mo power {action}: not confirmed, nothing switched");
    }
    Ok(())
}

/// Expand `names` (names, globs, `@GROUP`) against the daemon's devices and their groups
/// with the selector every command uses ([`mo_core::selector`]); `all` puts every device first.
pub fn expand_remote(
    names: &[String],
    all: bool,
    devices: &[mo_client::Device],
) -> Result<Vec<String>> {
    let list: Vec<&str> = devices.iter().map(|d| d.name.as_str()).collect();
    let mut out: Vec<String> = Vec::new();
    if all {
        out.extend(list.iter().map(|d| d.to_string()));
    }
    let picked = mo_core::selector::select(names, &list, |group| {
        let group = group.to_string();
        Ok(move |name: &str| {
            group == "all"
                || devices
                    .iter()
                    .any(|d| d.name == name && d.groups.contains(&group))
        })
    })?;
    for name in picked {
        if !out.iter().any(|n| n == name) {
            out.push(name.to_string());
        }
    }
    Ok(out)
}

/// [`expand_remote`] when `names` hold a glob or `@GROUP` (or `all`), reading the daemon's
/// device list; the names as given otherwise (an unknown one gets the daemon's own error).
pub async fn expand_with(
    client: &mo_client::Client,
    names: &[String],
    all: bool,
) -> Result<Vec<String>> {
    if all || mo_core::selector::any_many(names) {
        expand_remote(names, all, &client.devices().await?)
    } else {
        Ok(names.to_vec())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn device(name: &str, groups: &[&str]) -> mo_client::Device {
        let mut d = mo_client::Device::new(name, "sim://x", mo_client::DeviceState::Up);
        d.groups = groups.iter().map(|g| g.to_string()).collect();
        d
    }

    #[test]
    fn globs_and_groups_expand_like_the_data_directory() {
        let all = [
            device("web-1", &["web"]),
            device("web-2", &["web"]),
            device("db-1", &[]),
        ];
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            expand_remote(&names(&["web-*"]), false, &all).unwrap(),
            names(&["web-1", "web-2"])
        );
        assert_eq!(
            expand_remote(&names(&["@web", "db-1", "web-1"]), false, &all).unwrap(),
            names(&["web-1", "web-2", "db-1"])
        );
        assert_eq!(expand_remote(&[], true, &all).unwrap().len(), 3);
        assert_eq!(
            expand_remote(&names(&["@all"]), false, &all).unwrap(),
            names(&["web-1", "web-2", "db-1"])
        );
        let e = expand_remote(&names(&["web-1", "ghost"]), false, &all).unwrap_err();
        assert_eq!(e.to_string(), "unknown device `ghost`");
        assert!(expand_remote(&names(&["x*"]), false, &all).is_err());
        assert!(expand_remote(&names(&["@nope"]), false, &all).is_err());
    }

    #[test]
    fn only_mass_power_off_asks() {
        let two = vec!["a".to_string(), "b".to_string()];
        assert!(confirm("status", &two, false, false).is_ok());
        assert!(confirm("on", &two, true, false).is_ok());
        assert!(confirm("off", &two[..1], false, false).is_ok());
        assert!(confirm("off", &two, false, true).is_ok());
    }
}
