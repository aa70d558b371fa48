//! `mo macro`: the macro files the daemon plays (`DIR/macros/NAME.macro`).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use mo_core::automation::macros::Macro;
use mo_store::{DataDir, MacroStore};

/// `mo macro …`
#[derive(Debug, Subcommand)]
pub enum MacroCommand {
    /// List the macros with their step count and parameters.
    List {
        /// Print a JSON array (name, steps, parameters; with --server: the names).
        #[arg(long)]
        json: bool,
    },
    /// Print a macro's text.
    Show {
        /// The macro's name.
        name: String,
    },
    /// Check a macro file (or a stored macro by name); errors name their line.
    #[command(after_help = "Examples:\n  mo macro check ./upgrade.macro\n  mo macro check upgrade")]
    Check {
        /// A file path, or the name of a stored macro.
        what: String,
        /// Print JSON: `{"macro", "ok", "steps", "parameters"}`, or `{"macro", "ok": false,
        /// "errors"}` (exit status 1 as without it).
        #[arg(long)]
        json: bool,
    },
    /// Store a macro from a file (`-` reads standard input) after checking it.
    #[command(after_help = "Examples:\n  mo macro add upgrade ./upgrade.macro\n  \
        mo macro add reboot - < reboot.macro")]
    Add {
        /// The macro's name: letters, digits, `.`, `_`, `-` (1–64).
        name: String,
        /// The file, or `-` for standard input.
        file: PathBuf,
        /// Replace a macro of that name.
        #[arg(long)]
        replace: bool,
    },
    /// Play a stored macro on devices through the daemon at --server (needs `macro.run` on each),
    /// as the SSH shell's `macro play` does; exit status 1 when a device failed.
    #[command(after_help = "Examples:\n  \
        mo --server http://127.0.0.1:8022 macro play upgrade 'web-*' --arg version=2.1\n  \
        mo --server http://127.0.0.1:8022 macro play reboot @rack3 --dry-run")]
    Play {
        /// The macro's name.
        name: String,
        /// The devices: names, globs or `@GROUP`.
        #[arg(required = true)]
        targets: Vec<String>,
        /// A parameter of the macro, `KEY=VALUE`; repeatable.
        #[arg(long = "arg", value_name = "KEY=VALUE", value_parser = crate::automation_cli::parse_arg)]
        args: Vec<(String, String)>,
        /// Only show what would be played on which devices.
        #[arg(long)]
        dry_run: bool,
        /// Print the daemon's JSON report.
        #[arg(long)]
        json: bool,
    },
    /// Remove a macro.
    Rm {
        /// The macro's name.
        name: String,
    },
}

/// The text of stored macro `name` (a missing one says how to list them).
fn read_macro(macros: &MacroStore, name: &str) -> Result<String> {
    macros.read(name).map_err(|e| match e {
        mo_store::Error::NoMacro { .. } => anyhow::anyhow!("{e} (`mo macro list` shows them)"),
        e => e.into(),
    })
}

/// Every problem of `text` as `ORIGIN: line N: what`, or the macro.
fn parse(origin: &str, text: &str) -> std::result::Result<Macro, Vec<String>> {
    match mo_store::check_macro(origin, text) {
        Ok(m) => Ok(m),
        Err(mo_store::Error::BadMacro { origin, errors }) => {
            Err(errors.iter().map(|e| format!("{origin}: {e}")).collect())
        }
        Err(e) => Err(vec![e.to_string()]),
    }
}

/// A macro's parameters as JSON: `[{"name", "default"}]`.
fn params_json(m: &Macro) -> Vec<serde_json::Value> {
    m.params()
        .iter()
        .map(|p| serde_json::json!({"name": p.name, "default": p.default}))
        .collect()
}

/// Run `mo macro …`.
pub fn run(dir: &DataDir, command: MacroCommand, out: &mut (dyn Write + Send)) -> Result<ExitCode> {
    let macros = dir.macros();
    match command {
        MacroCommand::List { json: true } => {
            let mut list = Vec::new();
            for name in macros.names()? {
                let text = read_macro(&macros, &name)?;
                list.push(match parse(&name, &text) {
                    Ok(m) => serde_json::json!({"name": name, "steps": m.steps().len(),
                        "parameters": params_json(&m)}),
                    Err(errors) => serde_json::json!({"name": name, "errors": errors}),
                });
            }
            writeln!(out, "{}", serde_json::to_string_pretty(&list)?)?;
        }
        MacroCommand::List { json: false } => {
            let names = macros.names()?;
            if names.is_empty() {
                writeln!(
                    out,
                    "no macros in {} (`mo macro add NAME FILE` stores one)",
                    macros.dir().display()
                )?;
                return Ok(ExitCode::SUCCESS);
            }
            writeln!(out, "{:<24} {:<6} PARAMETERS", "MACRO", "STEPS")?;
            for name in names {
                let text = read_macro(&macros, &name)?;
                match parse(&name, &text) {
                    Ok(m) => {
                        let params: Vec<String> = m
                            .params()
                            .iter()
                            .map(|p| match &p.default {
                                Some(d) => format!("{}={d}", p.name),
                                None => p.name.clone(),
                            })
                            .collect();
                        writeln!(
                            out,
                            "{name:<24} {:<6} {}",
                            m.steps().len(),
                            params.join(" ")
                        )?;
                    }
                    Err(errors) => writeln!(
                        out,
                        "{name:<24} {:<6} ({} error(s): `mo macro check {name}`)",
                        "bad",
                        errors.len()
                    )?,
                }
            }
        }
        MacroCommand::Play { .. } => bail!(
            "mo macro play plays on the daemon's consoles: give its API with --server URL (or \
             MO_SERVER), e.g. --server http://127.0.0.1:8022"
        ),
        MacroCommand::Show { name } => {
            out.write_all(read_macro(&macros, &name)?.as_bytes())?;
        }
        MacroCommand::Check { what, json } => {
            let path = Path::new(&what);
            let (origin, text) = if path.is_file() || what.contains('/') {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                (what.clone(), text)
            } else {
                (format!("{what}.macro"), read_macro(&macros, &what)?)
            };
            match parse(&origin, &text) {
                Ok(m) if json => {
                    let report = serde_json::json!({"macro": origin, "ok": true,
                        "steps": m.steps().len(), "parameters": params_json(&m)});
                    writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
                }
                Err(errors) if json => {
                    let report = serde_json::json!({"macro": origin, "ok": false,
                        "errors": errors});
                    writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
                    return Ok(ExitCode::from(1));
                }
                Ok(m) => writeln!(
                    out,
                    "{origin}: ok ({} steps, {} parameter(s))",
                    m.steps().len(),
                    m.params().len()
                )?,
                Err(errors) => {
                    for e in errors {
                        writeln!(out, "{e}")?;
                    }
                    return Ok(ExitCode::from(1));
                }
            }
        }
        MacroCommand::Add {
            name,
            file,
            replace,
        } => {
            mo_store::validate_macro_name(&name)?;
            let text = if file.as_os_str() == "-" {
                let mut text = String::new();
                std::io::stdin()
                    .read_to_string(&mut text)
                    .context("cannot read the macro from standard input")?;
                text
            } else {
                std::fs::read_to_string(&file)
                    .with_context(|| format!("cannot read {}", file.display()))?
            };
            let origin = if file.as_os_str() == "-" {
                "stdin".to_string()
            } else {
                file.display().to_string()
            };
            if let Err(errors) = parse(&origin, &text) {
                let mut err = std::io::stderr();
                for e in &errors {
                    writeln!(err, "{e}")?;
                }
                bail!(
                    "macro {name} not stored: {} error(s) in {origin}",
                    errors.len()
                );
            }
            if macros.exists(&name)? && !replace {
                bail!("macro `{name}` exists already (give --replace to replace it)");
            }
            // A macro stored from the host is the site's: whoever recorded the old text through
            // the daemon no longer owns it (docs/security.md, "Macros have owners").
            let path = macros.save(&name, &text, None, replace)?;
            writeln!(out, "macro {name} stored in {}", path.display())?;
        }
        MacroCommand::Rm { name } => match macros.remove(&name) {
            Ok(()) => writeln!(out, "macro {name} removed")?,
            Err(mo_store::Error::NoMacro { .. }) => bail!("no macro `{name}`"),
            Err(e) => return Err(e.into()),
        },
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn errors_carry_line_numbers() {
        let errors = parse("f.macro", "sendline ok\nexpect /(/\nfrobnicate\n").unwrap_err();
        assert!(
            errors.iter().any(|e| e.starts_with("f.macro: line 3:")),
            "{errors:?}"
        );
    }
}
