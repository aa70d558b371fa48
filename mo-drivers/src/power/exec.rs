//! `exec` power: run a program for each power operation (anything mo has no driver for).
//!
//! Address: `exec:///PROGRAM?arg=TEMPLATE&arg=…&device=NAME&timeout=30s&actions=on,off,status`.
//! Each `arg` is one argv element (no shell, no word splitting) in which `{action}` becomes the
//! operation (`status`, `on`, `off`, `cycle`, `reset`, `soft-off`) and `{device}` the `device`
//! parameter. The program must exit 0; for `status` its standard output must contain the word
//! `on` or `off` (case-insensitive; the first one found wins). `actions` limits what is offered
//! (default: all). A program still running after `timeout` (default 30 s) is killed.
//!
//! ```
//! use mo_drivers::{DriverOptions, power::power_controller_for};
//! let c = power_controller_for(
//!     "exec:///usr/local/bin/pdu-ctl?arg=--host=pdu9&arg={action}&arg={device}&device=web1",
//!     &DriverOptions::default(),
//! ).unwrap();
//! assert!(c.capabilities().reset);
//! ```

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use mo_core::power::{PowerAction, PowerCapabilities, PowerController, PowerState};
use mo_core::{Error, Result};
use tokio::io::AsyncReadExt;
use url::Url;

use crate::address::{self, DriverOptions, Query};

/// The parameters an `exec` power address takes.
const PARAMETERS: &[&str] = &["arg", "device", "timeout", "actions", "env"];

/// How long a program may run by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The most output kept from a program (the rest is discarded).
const OUTPUT_LIMIT: usize = 64 * 1024;

/// A power controller that runs a program per operation.
#[derive(Debug, Clone)]
pub struct ExecPowerController {
    address: String,
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    device: String,
    timeout: Duration,
    caps: PowerCapabilities,
}

impl ExecPowerController {
    /// Read an `exec:` power address (see the module docs).
    pub fn from_url(url: &Url, address: &str, opts: &DriverOptions) -> Result<Self> {
        address::expect_local(url, address)?;
        let raw = address::raw_path(url, address)?;
        let program = if address::is_bare_name(&raw) {
            raw
        } else {
            address::resolve(raw, address, opts)?
        };
        let query = Query::parse(url, address, PARAMETERS)?;
        let device = query.single("device")?.unwrap_or_default().to_owned();
        let mut args = Vec::new();
        for arg in query.all("arg") {
            if arg.contains('\0') {
                return Err(address::bad(address, "an `arg` contains a NUL byte"));
            }
            if arg.contains("{device}") && device.is_empty() {
                return Err(address::bad(
                    address,
                    "an `arg` uses {device} but no `device=NAME` is given",
                ));
            }
            args.push(arg.to_owned());
        }
        let mut env = Vec::new();
        for pair in query.all("env") {
            match pair.split_once('=') {
                Some((name, value)) if !name.is_empty() && !pair.contains('\0') => {
                    env.push((name.to_owned(), value.to_owned()));
                }
                _ => {
                    return Err(address::bad(
                        address,
                        format!("`env={pair}` must be NAME=VALUE"),
                    ));
                }
            }
        }
        let timeout = query
            .parsed("timeout", super::parse_duration)?
            .unwrap_or(DEFAULT_TIMEOUT);
        let caps = match query.single("actions")? {
            None => PowerCapabilities::ALL,
            Some(list) => parse_actions(list).map_err(|reason| address::bad(address, reason))?,
        };
        Ok(Self {
            address: address::display(url),
            program,
            args,
            env,
            device,
            timeout,
            caps,
        })
    }

    /// The argv (after the program) for `action`.
    pub fn argv(&self, action: &str) -> Vec<String> {
        self.args
            .iter()
            .map(|a| {
                a.replace("{action}", action)
                    .replace("{device}", &self.device)
            })
            .collect()
    }

    /// Run the program for `action`; its standard output on success.
    async fn run(&self, action: &str) -> Result<String> {
        let mut cmd = tokio::process::Command::new(&self.program);
        cmd.args(self.argv(action))
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("MO_POWER_ACTION", action)
            .env("MO_DEVICE", &self.device)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| Error::Connect {
            address: self.address.clone(),
            reason: format!("cannot start {}: {e}", self.program.display()),
        })?;
        let mut stdout = child.stdout.take();
        let mut stderr = child.stderr.take();
        let work = async {
            let mut out = Vec::new();
            let mut err = Vec::new();
            let read_out = async {
                if let Some(s) = stdout.as_mut() {
                    let _ = s.take(OUTPUT_LIMIT as u64).read_to_end(&mut out).await;
                }
            };
            let read_err = async {
                if let Some(s) = stderr.as_mut() {
                    let _ = s.take(OUTPUT_LIMIT as u64).read_to_end(&mut err).await;
                }
            };
            tokio::join!(read_out, read_err);
            let status = child.wait().await;
            (status, out, err)
        };
        let (status, out, err) = tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| Error::Timeout {
                what: format!("{action} via {}", self.address),
                after: self.timeout,
            })?;
        let status = status.map_err(|e| Error::io(format!("waiting for {}", self.address), e))?;
        if !status.success() {
            let text = String::from_utf8_lossy(&err);
            let last = text
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("");
            return Err(Error::Protocol {
                peer: self.address.clone(),
                reason: format!(
                    "{action} failed: {} exited with {status}{}{}",
                    self.program.display(),
                    if last.is_empty() { "" } else { ": " },
                    last.trim()
                ),
            });
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
}

/// Parse `actions=on,off,status,…` into capabilities.
fn parse_actions(list: &str) -> std::result::Result<PowerCapabilities, String> {
    let mut caps = PowerCapabilities::ALL;
    caps.status = false;
    caps.on_off = false;
    caps = caps
        .with_cycle(false)
        .with_reset(false)
        .with_soft_off(false);
    for word in list.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        match word {
            "status" => caps.status = true,
            "on" | "off" => caps.on_off = true,
            "cycle" => caps.cycle = true,
            "reset" => caps.reset = true,
            "soft-off" => caps.soft_off = true,
            other => {
                return Err(format!(
                    "unknown action `{other}` in `actions` (known: status, on, off, cycle, reset, soft-off)"
                ));
            }
        }
    }
    Ok(caps)
}

/// The power state a status program printed: the first word `on` or `off`.
pub fn parse_status_output(text: &str) -> PowerState {
    for word in text.split(|c: char| !c.is_ascii_alphanumeric()) {
        if word.eq_ignore_ascii_case("on") {
            return PowerState::On;
        }
        if word.eq_ignore_ascii_case("off") {
            return PowerState::Off;
        }
    }
    PowerState::Unknown
}

#[async_trait]
impl PowerController for ExecPowerController {
    fn address(&self) -> &str {
        &self.address
    }

    fn capabilities(&self) -> PowerCapabilities {
        self.caps
    }

    async fn status(&self) -> Result<PowerState> {
        if !self.caps.status {
            return Err(Error::Unsupported {
                operation: "status",
                what: self.address.clone(),
            });
        }
        let out = self.run("status").await?;
        match parse_status_output(&out) {
            PowerState::Unknown => Err(Error::Protocol {
                peer: self.address.clone(),
                reason: format!(
                    "status output has no `on` or `off`: {:?}",
                    out.chars().take(80).collect::<String>()
                ),
            }),
            state => Ok(state),
        }
    }

    async fn perform(&self, action: PowerAction) -> Result<()> {
        if !self.caps.supports(action) {
            return Err(Error::Unsupported {
                operation: action.name(),
                what: self.address.clone(),
            });
        }
        self.run(action.name()).await.map(|_| ())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn parse(text: &str) -> Result<ExecPowerController> {
        ExecPowerController::from_url(&address::parse(text)?, text, &DriverOptions::default())
    }

    #[test]
    fn templates_fill_action_and_device() {
        let c = parse("exec:///bin/ctl?arg=-x&arg={action}:{device}&device=web%201").unwrap();
        assert_eq!(c.argv("cycle"), ["-x", "cycle:web 1"]);
        let c = parse("exec:///bin/ctl?arg={action}&actions=status,on,off").unwrap();
        assert!(!c.capabilities().cycle && c.capabilities().on_off);
        let err = parse("exec:///bin/ctl?arg={device}")
            .unwrap_err()
            .to_string();
        assert!(err.contains("no `device=NAME`"), "{err}");
        let err = parse("exec:///bin/ctl?actions=boot")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown action `boot`"), "{err}");
    }

    #[test]
    fn status_words() {
        assert_eq!(parse_status_output("Chassis Power is on\n"), PowerState::On);
        assert_eq!(parse_status_output("OFF"), PowerState::Off);
        assert_eq!(parse_status_output("online offline"), PowerState::Unknown);
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed_0005);
        for _ in 0..2_000 {
            let bytes: Vec<u8> = (0..rng.random_range(0..64)).map(|_| rng.random()).collect();
            let _ = parse_status_output(&String::from_utf8_lossy(&bytes));
        }
    }
}
