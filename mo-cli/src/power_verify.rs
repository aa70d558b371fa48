//! `mo power verify NAME [--yes]`: prove a device's power binding is wired right by switching its
//! outlet(s) off and on and watching its console through the daemon's record log. While the power
//! is off the console must fall quiet (no output for [`QUIET`]); once it is back on the console
//! must print again. A console that keeps printing means the outlet does not feed the device.
//!
//! Runs on the data directory of a running daemon (the daemon records the console); the device's
//! console must print while the device runs.

use std::io::{BufRead as _, IsTerminal as _, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use mo_core::log::{LogLock, tail};
use mo_core::power::{PowerAction, PowerController as _};
use mo_core::record::RecordKind;
use mo_store::{AuditEntry, DataDir, Outcome};

/// How long the console must stay silent after the power went off.
const QUIET: Duration = Duration::from_secs(5);
/// How often the record log is looked at.
const POLL: Duration = Duration::from_millis(200);
/// How many records at the end of the log are looked at per poll.
const TAIL: usize = 512;

/// Run `mo power verify NAME`; `wait_secs` bounds each step (output before, quiet after off,
/// output after on). Exit status 1 when the wiring is wrong or cannot be proven.
pub fn run(
    dir: &DataDir,
    names: &[String],
    yes: bool,
    wait_secs: u64,
    out: &mut (dyn Write + Send),
) -> Result<ExitCode> {
    let wait = Duration::from_secs(wait_secs.max(1));
    let [name] = names else {
        bail!("`mo power verify` takes one device (got {})", names.len());
    };
    let store = dir.open_store()?;
    let device = store
        .device(name)
        .with_context(|| format!("unknown device `{name}`"))?;
    let key = dir
        .secret_key()
        .context("cannot open the device-secret key")?;
    let binding = crate::power::binding(&store, &key, &device).map_err(anyhow::Error::msg)?;
    let outlets = device.settings.power.join(", ");
    let logs = dir.device_log_dir(name)?;
    let daemon_hint = "start `mod` on this data directory: `mo power verify` watches the \
                       console through the daemon's record log";
    if !logs.exists() {
        bail!("no daemon records {name}'s console (it has no record log yet): {daemon_hint}");
    }
    if let Ok(lock) = LogLock::try_acquire(&logs) {
        drop(lock);
        bail!(
            "no daemon records {name}'s console (its record log {} is free): {daemon_hint}",
            logs.display()
        );
    }
    if !yes {
        if !std::io::stdin().is_terminal() {
            bail!(
                "`mo power verify {name}` switches {outlets} off: confirm on a terminal or pass --yes"
            );
        }
        eprint!("Switch off {name}'s power ({outlets}) and back on to verify the wiring? [y/N] ");
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            bail!("not confirmed; nothing switched");
        }
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let user = crate::access::invoking_user();

    eprintln!("{name}: waiting for console output while powered on…");
    let result = if !wait_output(&logs, wait)? {
        Err(format!(
            "cannot verify {name}: its console printed nothing in {}s while powered on (the check \
             needs a console that prints while the device runs)",
            wait.as_secs()
        ))
    } else {
        eprintln!("{name}: switching {outlets} off…");
        rt.block_on(binding.perform(PowerAction::Off))
            .with_context(|| format!("cannot switch {outlets} off"))?;
        let quiet = wait_quiet(&logs, wait)?;
        eprintln!("{name}: switching {outlets} on…");
        rt.block_on(binding.perform(PowerAction::On))
            .with_context(|| format!("cannot switch {outlets} back on"))?;
        if !quiet {
            Err(format!(
                "outlet {outlets} does not feed {name}: its console kept printing for {}s while \
                 the outlet was off",
                wait.as_secs()
            ))
        } else if !wait_output(&logs, wait)? {
            Err(format!(
                "outlet {outlets} may not feed {name}: its console fell quiet when switched off but \
                 printed nothing in {}s after switching back on",
                wait.as_secs()
            ))
        } else {
            Ok(format!(
                "outlet {outlets} feeds {name}: its console fell quiet when switched off and printed \
                 again when switched on"
            ))
        }
    };
    let (outcome, line) = match &result {
        Ok(line) => (Outcome::Ok, line.clone()),
        Err(line) => (Outcome::Failed, line.clone()),
    };
    let entry = AuditEntry::new(Some(&user), "power.verify".to_owned(), outcome)
        .source(Some("cli"))
        .device(Some(name))
        .detail(line.clone());
    if let Err(e) = store.append_audit(&entry) {
        eprintln!("mo: cannot write the audit log: {e}");
    }
    match result {
        Ok(_) => {
            writeln!(out, "{line}")?;
            Ok(ExitCode::SUCCESS)
        }
        Err(_) => {
            writeln!(out, "mismatch: {line}")?;
            Ok(ExitCode::FAILURE)
        }
    }
}

/// The sequence number of the newest record in the log (0 for an empty log).
fn newest_seq(logs: &Path) -> Result<u64> {
    let records = tail(logs, 1).with_context(|| format!("cannot read {}", logs.display()))?;
    Ok(records.last().map_or(0, |r| r.seq))
}

/// Whether an output record newer than `after` is in the log.
fn output_since(logs: &Path, after: u64) -> Result<bool> {
    let records = tail(logs, TAIL).with_context(|| format!("cannot read {}", logs.display()))?;
    Ok(records
        .iter()
        .any(|r| r.seq > after && r.kind == RecordKind::Output))
}

/// Wait up to `wait` for new console output; false when none came.
fn wait_output(logs: &Path, wait: Duration) -> Result<bool> {
    let after = newest_seq(logs)?;
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        if output_since(logs, after)? {
            return Ok(true);
        }
        std::thread::sleep(POLL);
    }
    Ok(false)
}

/// Wait up to `wait` for the console to print nothing for [`QUIET`]; false when it
/// kept printing.
fn wait_quiet(logs: &Path, wait: Duration) -> Result<bool> {
    let deadline = Instant::now() + wait;
    let mut seen = newest_seq(logs)?;
    let mut quiet_since = Instant::now();
    while Instant::now() < deadline {
        std::thread::sleep(POLL);
        if output_since(logs, seen)? {
            seen = newest_seq(logs)?;
            quiet_since = Instant::now();
        } else if quiet_since.elapsed() >= QUIET {
            return Ok(true);
        }
    }
    Ok(false)
}
