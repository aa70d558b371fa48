//! The site allowlist: which programs, local paths and hosts device admins may point the daemon
//! at (docs/security.md, "Addresses that reach the host").
//!
//! Console and power addresses run as the daemon's user, which can read `secret.key` and every
//! device secret. So an address that runs a program (`exec:`), opens a local path (`unix:`,
//! `serial:`) or connects to a host (`tcp:`, `telnet:`, `rfc2217:`, `ssh:`, `ipmi:`, `cs:`, and
//! the power schemes `ipmi:`, `redfish:`, `snmp:`) is accepted from a door only when the caller
//! is a global admin (admin on the built-in group `all`) or an `[[allow]]` entry of the site file
//! covers it:
//!
//! ```toml
//! [[allow]]
//! program = "/usr/local/bin/console-wrap"   # exact path, any arguments
//! env = true                                # also allow env= parameters (default false)
//! [[allow]]
//! path = "/dev/ttyUSB*"                     # glob over socket and serial-device paths
//! [[allow]]
//! host = "cs*.example.net"                  # glob over the host as written (no DNS)
//! ports = "7000-7999"                       # optional: one port or a range
//! ```
//!
//! The file is `mod --site FILE`, by default `DATA_DIR/site.toml` (absent: no entries). It is
//! read again when it changes; a file that cannot be read or parsed allows nothing until fixed.

use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use anyhow::Context as _;
use mo_core::policy::NamePattern;
use mo_drivers::reach::{Reach, console_reach, power_reach};
use mo_store::Device;
use serde::Deserialize;

/// One `[[allow]]` entry as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryConfig {
    program: Option<PathBuf>,
    #[serde(default)]
    env: bool,
    path: Option<String>,
    host: Option<String>,
    ports: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    allow: Vec<EntryConfig>,
}

/// One entry, checked and compiled.
#[derive(Debug)]
enum Entry {
    Program {
        program: PathBuf,
        env: bool,
    },
    Path(NamePattern),
    Host {
        host: NamePattern,
        ports: (u16, u16),
    },
}

/// The parsed `[[allow]]` entries.
#[derive(Debug, Default)]
pub struct Allowlist {
    entries: Vec<Entry>,
}

impl Allowlist {
    /// Parse the site file's text; errors name the entry and what is wrong.
    pub fn parse(text: &str) -> anyhow::Result<Allowlist> {
        let file: FileConfig = toml::from_str(text)?;
        let mut entries = Vec::new();
        for (i, e) in file.allow.into_iter().enumerate() {
            let at = format!("[[allow]] entry {}", i + 1);
            let kinds = [e.program.is_some(), e.path.is_some(), e.host.is_some()];
            if kinds.iter().filter(|k| **k).count() != 1 {
                anyhow::bail!("{at}: give exactly one of program, path, host");
            }
            if e.env && e.program.is_none() {
                anyhow::bail!("{at}: `env` goes with `program`");
            }
            if e.ports.is_some() && e.host.is_none() {
                anyhow::bail!("{at}: `ports` goes with `host`");
            }
            let entry = if let Some(program) = e.program {
                if !program.is_absolute() && program.components().count() != 1 {
                    anyhow::bail!(
                        "{at}: program `{}` must be an absolute path or a bare name",
                        program.display()
                    );
                }
                Entry::Program {
                    program,
                    env: e.env,
                }
            } else if let Some(path) = e.path {
                if !path.starts_with('/') {
                    anyhow::bail!("{at}: path `{path}` must be absolute");
                }
                Entry::Path(NamePattern::parse(&path).with_context(|| at.clone())?)
            } else {
                let host = e.host.unwrap_or_default().to_ascii_lowercase();
                let ports = match &e.ports {
                    None => (1, u16::MAX),
                    Some(p) => parse_ports(p).with_context(|| format!("{at}: ports"))?,
                };
                Entry::Host {
                    host: NamePattern::parse(&host).with_context(|| at.clone())?,
                    ports,
                }
            };
            entries.push(entry);
        }
        Ok(Allowlist { entries })
    }

    /// Whether an entry covers `reach`; otherwise the entry that would, as TOML.
    pub fn covers(&self, reach: &Reach) -> Result<(), String> {
        match reach {
            Reach::Program { program, sets_env } => {
                let found = self.entries.iter().any(|e| {
                    matches!(e, Entry::Program { program: p, env } if p == program && (*env || !sets_env))
                });
                if found {
                    Ok(())
                } else if *sets_env {
                    Err(format!(
                        "an [[allow]] program = {:?} entry with env = true",
                        program.display().to_string()
                    ))
                } else {
                    Err(format!(
                        "an [[allow]] program = {:?} entry",
                        program.display().to_string()
                    ))
                }
            }
            Reach::Path { path } => {
                let text = path.to_string_lossy();
                let plain = path
                    .components()
                    .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
                let found = plain
                    && self
                        .entries
                        .iter()
                        .any(|e| matches!(e, Entry::Path(p) if p.matches(&text)));
                if found {
                    Ok(())
                } else {
                    Err(format!("an [[allow]] path = {text:?} entry"))
                }
            }
            Reach::Host { host, port, .. } => {
                let host = host.to_ascii_lowercase();
                let found = self.entries.iter().any(|e| {
                    matches!(e, Entry::Host { host: h, ports: (lo, hi) }
                        if h.matches(&host) && (*lo..=*hi).contains(port))
                });
                if found {
                    Ok(())
                } else {
                    Err(format!(
                        "an [[allow]] host = {host:?} entry (with ports including {port}, or none)"
                    ))
                }
            }
            _ => Ok(()),
        }
    }
}

fn parse_ports(text: &str) -> anyhow::Result<(u16, u16)> {
    let (lo, hi) = text.split_once('-').unwrap_or((text, text));
    let lo: u16 = lo.trim().parse().context("give PORT or LOW-HIGH")?;
    let hi: u16 = hi.trim().parse().context("give PORT or LOW-HIGH")?;
    if lo == 0 || hi < lo {
        anyhow::bail!("`{text}`: give PORT or LOW-HIGH with 1 <= LOW <= HIGH");
    }
    Ok((lo, hi))
}

/// The site file's identity, to notice changes.
type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// The site file in force, read again when it changes.
pub struct Site {
    path: PathBuf,
    cache: Mutex<(Stamp, Arc<Allowlist>)>,
}

impl Site {
    /// The site file `explicit` (`mod --site FILE`, which must exist and parse), or
    /// `DATA_DIR/site.toml` when present.
    pub fn load(explicit: Option<&Path>, data_dir: &Path) -> anyhow::Result<Site> {
        let path = match explicit {
            Some(p) => p.to_path_buf(),
            None => data_dir.join("site.toml"),
        };
        let list = if explicit.is_some() || path.exists() {
            read(&path)?
        } else {
            Allowlist::default()
        };
        Ok(Site {
            cache: Mutex::new((stamp(&path), Arc::new(list))),
            path,
        })
    }

    /// The site file's path (named in refusals).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The allowlist in force.
    pub fn allowlist(&self) -> Arc<Allowlist> {
        let now = stamp(&self.path);
        let Ok(mut cache) = self.cache.lock() else {
            return Arc::new(Allowlist::default());
        };
        if cache.0 != now {
            let list = if now.is_none() {
                Allowlist::default()
            } else {
                read(&self.path).unwrap_or_else(|e| {
                    tracing::error!("{e:#}; no [[allow]] entry applies until it is fixed");
                    Allowlist::default()
                })
            };
            *cache = (now, Arc::new(list));
        }
        cache.1.clone()
    }

    /// Whether `device` (its console address and every power address) may be set by a caller
    /// who is (`global_admin`) or is not a global admin. A refusal says which address needs
    /// which entry.
    pub fn check_device(&self, device: &Device, global_admin: bool) -> Result<(), String> {
        if global_admin {
            return Ok(());
        }
        let list = self.allowlist();
        let addresses = std::iter::once((&device.url, console_reach(&device.url)))
            .chain(device.settings.power.iter().map(|p| (p, power_reach(p))));
        for (address, reach) in addresses {
            let reach = reach.map_err(|e| {
                format!("denied: only a global admin may add an address mo cannot read ({e})")
            })?;
            list.covers(&reach).map_err(|entry| {
                format!(
                    "denied: {address} needs a global admin (admin on group all) or {entry} in {}",
                    self.path.display()
                )
            })?;
        }
        Ok(())
    }
}

fn read(path: &Path) -> anyhow::Result<Allowlist> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the site file {}", path.display()))?;
    Allowlist::parse(&text).with_context(|| format!("site file {}", path.display()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const SITE: &str = r#"
[[allow]]
program = "/usr/local/bin/wrap"
[[allow]]
program = "/usr/bin/env-ok"
env = true
[[allow]]
path = "/dev/ttyUSB*"
[[allow]]
host = "CS*.example.net"
ports = "7000-7999"
[[allow]]
host = "10.1.2.*"
"#;

    fn device(url: &str, power: &[&str]) -> Device {
        let mut d = Device::new("d1", url);
        d.settings.power = power.iter().map(|p| p.to_string()).collect();
        d
    }

    #[test]
    fn entries_cover_what_they_name_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("site.toml"), SITE).unwrap();
        let site = Site::load(None, dir.path()).unwrap();
        for url in [
            "sim://x",
            "exec:///usr/local/bin/wrap?arg=-x",
            "exec:///usr/bin/env-ok?env=A%3Db",
            "serial:///dev/ttyUSB0",
            "telnet://cs1.example.net:7001",
            "cs://cs2.example.net/3?profile=ser2net&via=rfc2217&base=7000",
            "ssh://root@10.1.2.3",
        ] {
            site.check_device(&device(url, &[]), false)
                .unwrap_or_else(|e| panic!("{url}: {e}"));
        }
        for (url, needle) in [
            ("exec:///bin/sh", "program = \"/bin/sh\" entry in"),
            (
                "exec:///usr/local/bin/wrap?env=LD_PRELOAD%3D/x",
                "with env = true",
            ),
            ("exec:sh", "program = \"sh\""),
            (
                "unix:///var/run/docker.sock",
                "path = \"/var/run/docker.sock\"",
            ),
            ("serial:///dev/ttyUSB0/../pts/0", "path ="),
            ("tcp://10.0.0.5:22", "host = \"10.0.0.5\""),
            ("telnet://cs1.example.net", "ports including 23"),
            ("tcp://x", "cannot read"),
        ] {
            let e = site.check_device(&device(url, &[]), false).unwrap_err();
            assert!(e.contains(needle), "{url}: {e}");
            assert!(site.check_device(&device(url, &[]), true).is_ok());
        }
        let e = site
            .check_device(&device("sim://x", &["exec:///bin/sh?arg=-c"]), false)
            .unwrap_err();
        assert!(
            e.contains("exec:///bin/sh?arg=-c needs a global admin"),
            "{e}"
        );
        assert!(
            e.contains(&dir.path().join("site.toml").display().to_string()),
            "{e}"
        );
        // The file is read again when it changes.
        std::fs::write(
            dir.path().join("site.toml"),
            "[[allow]]\nprogram = \"/bin/sh\"\n# longer than before\n",
        )
        .unwrap();
        site.check_device(&device("exec:///bin/sh", &[]), false)
            .unwrap();
        assert!(
            site.check_device(&device("serial:///dev/ttyUSB0", &[]), false)
                .is_err()
        );
    }

    #[test]
    fn bad_entries_are_named() {
        for (text, needle) in [
            ("[[allow]]\nprogram = \"/a\"\nhost = \"b\"\n", "exactly one"),
            ("[[allow]]\npath = \"dev/x\"\n", "absolute"),
            ("[[allow]]\nhost = \"x\"\nports = \"9-1\"\n", "ports"),
            ("[[allow]]\nprog = \"/a\"\n", "unknown field"),
            ("[[allow]]\npath = \"/a\"\nenv = true\n", "`env` goes with"),
        ] {
            let e = format!("{:#}", Allowlist::parse(text).unwrap_err());
            assert!(e.contains(needle), "{text}: {e}");
        }
        let dir = tempfile::tempdir().unwrap();
        assert!(Site::load(Some(&dir.path().join("nope.toml")), dir.path()).is_err());
        assert!(Site::load(None, dir.path()).is_ok());
    }
}
