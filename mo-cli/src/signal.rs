//! Line signals and modem state in the CLI: `mo device signal NAME --dtr on|off|toggle --rts …`
//! (through the daemon's API, `--server`), and the modem lines of `mo device show` and `mo
//! device list` — from the daemon's answer with `--server`, otherwise from what the device's
//! record log last recorded (`modem:` notices, `DTR dropped by alice`).

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::{Args, ValueEnum};
use mo_client::{Client, LineSetting, SignalRequest};
use mo_core::link::ModemState;
use mo_core::log::{LineHistory, format_timestamp, last_lines};
use mo_store::DataDir;

/// Options of `mo device signal`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    mo --server http://127.0.0.1:8022 device signal lab --dtr off\n  \
    mo --server http://127.0.0.1:8022 device signal lab --dtr toggle --rts on")]
pub struct SignalArgs {
    /// The device.
    pub name: String,
    /// Raise (on), drop (off) or toggle DTR.
    #[arg(long, value_enum, value_name = "on|off|toggle")]
    pub dtr: Option<Setting>,
    /// Raise (on), drop (off) or toggle RTS.
    #[arg(long, value_enum, value_name = "on|off|toggle")]
    pub rts: Option<Setting>,
}

/// What to do with a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Setting {
    /// Raise.
    On,
    /// Drop.
    Off,
    /// Toggle (from the level mo last set).
    Toggle,
}

impl Setting {
    fn api(self) -> LineSetting {
        LineSetting::from_to(match self {
            Setting::On => Some(true),
            Setting::Off => Some(false),
            Setting::Toggle => None,
        })
    }
}

/// `mo device signal` through the daemon at `client`.
pub async fn remote(
    client: &Client,
    args: &SignalArgs,
    out: &mut (dyn Write + Send),
) -> Result<ExitCode> {
    if args.dtr.is_none() && args.rts.is_none() {
        bail!(
            "say which line: --dtr on|off|toggle and/or --rts on|off|toggle (e.g. `mo device signal {} --dtr off`)",
            args.name
        );
    }
    let request = SignalRequest {
        dtr: args.dtr.map(Setting::api),
        rts: args.rts.map(Setting::api),
    };
    let report = client.set_signals(&args.name, &request).await?;
    for text in &report.done {
        writeln!(out, "{}: {text}", report.device)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `up`/`down` of a line.
fn level(on: bool) -> &'static str {
    if on { "up" } else { "down" }
}

/// The short form for a listing column: `DCD+ DSR- CTS+ RI-`.
fn modem_cell(m: ModemState) -> String {
    let sign = |on: bool| if on { '+' } else { '-' };
    format!(
        "DCD{} DSR{} CTS{} RI{}",
        sign(m.dcd),
        sign(m.dsr),
        sign(m.cts),
        sign(m.ri)
    )
}

/// The MODEM column of `mo device list --server`: the lines while the link reports them.
pub fn api_modem_cell(d: &mo_client::Device) -> String {
    d.modem
        .map(|m| {
            modem_cell(ModemState {
                dcd: m.dcd,
                dsr: m.dsr,
                cts: m.cts,
                ri: m.ri,
            })
        })
        .unwrap_or_else(|| "-".into())
}

/// The modem rows of `mo --server device show` (`field`, `value`) from the daemon's answer: the
/// live modem state and DTR/RTS as set, with when each changed; none for a link that has not
/// reported modem lines.
pub fn api_rows(d: &mo_client::Device) -> Vec<(String, String)> {
    let mut rows = Vec::new();
    if let Some(m) = &d.modem {
        let state = ModemState {
            dcd: m.dcd,
            dsr: m.dsr,
            cts: m.cts,
            ri: m.ri,
        };
        let since = d
            .lines
            .as_ref()
            .and_then(|l| l.modem_changed.as_deref())
            .map(|t| format!(" (since {t})"))
            .unwrap_or_default();
        rows.push(("modem".into(), format!("{state}{since}")));
    }
    if let Some(l) = &d.lines {
        for (name, on, when) in [
            ("DTR", l.dtr, l.dtr_changed.as_deref()),
            ("RTS", l.rts, l.rts_changed.as_deref()),
        ] {
            let when = when.map_or_else(
                || " (as opened: not set since the link came up)".to_string(),
                |t| format!(" (set {t})"),
            );
            rows.push((name.into(), format!("{}{when}", level(on))));
        }
    }
    rows
}

/// The modem rows of `mo device show` on the data directory: what the record log last said.
/// A log that never recorded modem lines gives one row saying so.
pub fn log_rows(dir: &DataDir, name: &str) -> Result<Vec<(String, String)>> {
    let log = dir.device_log_dir(name)?;
    let history = if log.exists() {
        last_lines(&log, true)?
    } else {
        LineHistory::default()
    };
    let mut rows = Vec::new();
    match history.modem {
        Some((m, t)) => rows.push((
            "modem".into(),
            format!(
                "{m} (last recorded {}; live state: --server)",
                format_timestamp(t)
            ),
        )),
        None => rows.push(("modem".into(), "none recorded".into())),
    }
    for (line, rec) in [("DTR", &history.dtr), ("RTS", &history.rts)] {
        if let Some(r) = rec {
            rows.push((
                line.into(),
                format!(
                    "{} (set by {} {})",
                    level(r.on),
                    r.user,
                    format_timestamp(r.time_ns)
                ),
            ));
        }
    }
    Ok(rows)
}

/// The MODEM column of `mo device list` on the data directory (the last recorded state), and
/// the same as JSON (`{"dcd":…,"dsr":…,"cts":…,"ri":…,"time":…}`) for `--json`.
pub fn log_modem(dir: &DataDir, name: &str) -> Result<Option<(String, serde_json::Value)>> {
    let log = dir.device_log_dir(name)?;
    if !log.exists() {
        return Ok(None);
    }
    Ok(last_lines(&log, false)?.modem.map(|(m, t)| {
        (
            modem_cell(m),
            serde_json::json!({
                "dcd": m.dcd,
                "dsr": m.dsr,
                "cts": m.cts,
                "ri": m.ri,
                "time": format_timestamp(t),
            }),
        )
    }))
}
