//! `mo power verify NAME [--yes]`: prove a device's power binding is wired right by switching its
//! outlet(s) off and on and watching its console through the daemon's record log. While the power
//! is off the console must fall quiet (no output for [`QUIET`]); once it is back on the console
//! must print again. A console that keeps printing means the outlet does not feed the device.
//!
//! Runs on the data directory of a running daemon (the daemon records the console); the device's
//! console must print while the device runs.
//!
//! A device whose power is bound to its BMC only (`ipmi://`, `redfish://`) is checked through the
//! BMC's own power state instead: it must read off after the switch off and on after the switch
//! on (no daemon needed).

use std::io::{BufRead as _, IsTerminal as _, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use mo_core::log::{LogLock, tail};
use mo_core::power::{PowerAction, PowerController as _, PowerState};
use mo_core::record::RecordKind;
use mo_store::{AuditEntry, DataDir, Outcome};

/// How long the console must stay silent after the power went off.
const QUIET: Duration = Duration::from_secs(5);
/// How often the record log is looked at.
const POLL: Duration = Duration::from_millis(200);
/// How often a BMC's power state is read while waiting for it to change.
const BMC_POLL: Duration = Duration::from_millis(500);
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
    let bmc = !device.settings.power.is_empty()
        && device
            .settings
            .power
            .iter()
            .all(|p| p.starts_with("ipmi://") || p.starts_with("redfish"));
    if bmc {
        confirm(name, &outlets, yes)?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let result = rt.block_on(verify_bmc(name, &outlets, binding.as_ref(), wait))?;
        return finish(&store, name, result, out);
    }
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
    confirm(name, &outlets, yes)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;

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
    finish(&store, name, result, out)
}

/// Ask before switching, unless `yes`; refuse without a terminal.
fn confirm(name: &str, outlets: &str, yes: bool) -> Result<()> {
    if yes {
        return Ok(());
    }
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
    Ok(())
}

/// Poll the BMC's power state until it reads `want`, up to `wait`; the last state read.
async fn wait_state(
    binding: &impl mo_core::power::PowerController,
    want: PowerState,
    wait: Duration,
) -> String {
    let deadline = Instant::now() + wait;
    loop {
        let state = match binding.status().await {
            Ok(s) if s == want => return String::new(),
            Ok(s) => s.to_string(),
            Err(e) => format!("an error ({e})"),
        };
        if Instant::now() >= deadline {
            return state;
        }
        tokio::time::sleep(BMC_POLL).await;
    }
}

/// Switch a BMC-bound device off and on and check that the BMC's power state follows.
async fn verify_bmc(
    name: &str,
    bmc: &str,
    binding: &impl mo_core::power::PowerController,
    wait: Duration,
) -> Result<std::result::Result<String, String>> {
    eprintln!("{name}: switching {bmc} off…");
    binding
        .perform(PowerAction::Off)
        .await
        .with_context(|| format!("cannot switch {bmc} off"))?;
    let off = wait_state(binding, PowerState::Off, wait).await;
    eprintln!("{name}: switching {bmc} on…");
    binding
        .perform(PowerAction::On)
        .await
        .with_context(|| format!("cannot switch {bmc} back on"))?;
    if !off.is_empty() {
        return Ok(Err(format!(
            "{bmc} does not switch {name}: its power status read {off}, not off, {}s after \
             switching off",
            wait.as_secs()
        )));
    }
    let on = wait_state(binding, PowerState::On, wait).await;
    if !on.is_empty() {
        return Ok(Err(format!(
            "{bmc} may not switch {name}: its power status read off after switching off but \
             {on}, not on, {}s after switching on",
            wait.as_secs()
        )));
    }
    Ok(Ok(format!(
        "{bmc} switches {name}: its power status read off after switching off and on after \
         switching on"
    )))
}

/// Audit the result and print it; exit status 1 for a mismatch.
fn finish(
    store: &mo_store::Store,
    name: &str,
    result: std::result::Result<String, String>,
    out: &mut (dyn Write + Send),
) -> Result<ExitCode> {
    let user = crate::access::invoking_user();
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
