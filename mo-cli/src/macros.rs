//! `mo macro`: the macro files the daemon plays (`DIR/macros/NAME.macro`).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use mo_core::automation::macros::Macro;
use mo_store::DataDir;

/// `mo macro …`
#[derive(Debug, Subcommand)]
pub enum MacroCommand {
    /// List the macros with their step count and parameters.
    List,
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
    /// Remove a macro.
    Rm {
        /// The macro's name.
        name: String,
    },
}

fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with(['.', '-'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !ok {
        bail!(
            "bad macro name `{name}`: use letters, digits, `.`, `_`, `-` (1–64, not starting with `.` or `-`)"
        );
    }
    Ok(())
}

fn macros_dir(dir: &DataDir) -> PathBuf {
    dir.path().join("macros")
}

fn macro_path(dir: &DataDir, name: &str) -> Result<PathBuf> {
    check_name(name)?;
    Ok(macros_dir(dir).join(format!("{name}.macro")))
}

/// `DIR/macros/NAME.owner`: the user who recorded the macro through the daemon.
fn remove_owner(dir: &DataDir, name: &str) -> Result<()> {
    let path = macros_dir(dir).join(format!("{name}.owner"));
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("cannot remove {}", path.display()))
        }
        _ => Ok(()),
    }
}

fn read_macro(dir: &DataDir, name: &str) -> Result<String> {
    let path = macro_path(dir, name)?;
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("no macro `{name}` (`mo macro list` shows them)")
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Every problem of `text` as `ORIGIN: line N: what`, or the macro.
fn parse(origin: &str, text: &str) -> std::result::Result<Macro, Vec<String>> {
    Macro::check(text).map_err(|errors| {
        errors
            .into_iter()
            .map(|e| format!("{origin}: {e}"))
            .collect()
    })
}

fn names(dir: &DataDir) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(macros_dir(dir))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    n.strip_suffix(".macro").map(str::to_string)
                })
                .filter(|n| check_name(n).is_ok())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Run `mo macro …`.
pub fn run(dir: &DataDir, command: MacroCommand, out: &mut (dyn Write + Send)) -> Result<ExitCode> {
    match command {
        MacroCommand::List => {
            let names = names(dir);
            if names.is_empty() {
                writeln!(
                    out,
                    "no macros in {} (`mo macro add NAME FILE` stores one)",
                    macros_dir(dir).display()
                )?;
                return Ok(ExitCode::SUCCESS);
            }
            writeln!(out, "{:<24} {:<6} PARAMETERS", "MACRO", "STEPS")?;
            for name in names {
                let text = read_macro(dir, &name)?;
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
        MacroCommand::Show { name } => {
            out.write_all(read_macro(dir, &name)?.as_bytes())?;
        }
        MacroCommand::Check { what } => {
            let path = Path::new(&what);
            let (origin, text) = if path.is_file() || what.contains('/') {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                (what.clone(), text)
            } else {
                (format!("{what}.macro"), read_macro(dir, &what)?)
            };
            match parse(&origin, &text) {
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
            let path = macro_path(dir, &name)?;
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
            if path.exists() && !replace {
                bail!("macro `{name}` exists already (give --replace to replace it)");
            }
            let mdir = macros_dir(dir);
            std::fs::create_dir_all(&mdir)
                .with_context(|| format!("cannot create {}", mdir.display()))?;
            let tmp = mdir.join(format!(".{name}.macro.tmp"));
            std::fs::write(&tmp, &text)
                .and_then(|()| std::fs::rename(&tmp, &path))
                .with_context(|| format!("cannot write {}", path.display()))?;
            // A macro stored from the host is the site's: whoever recorded the old text through
            // the daemon no longer owns it (docs/security.md, "Macros have owners").
            remove_owner(dir, &name)?;
            writeln!(out, "macro {name} stored in {}", path.display())?;
        }
        MacroCommand::Rm { name } => {
            let path = macro_path(dir, &name)?;
            match std::fs::remove_file(&path) {
                Ok(()) => {
                    remove_owner(dir, &name)?;
                    writeln!(out, "macro {name} removed")?
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!("no macro `{name}`"),
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot remove {}", path.display()));
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(check_name("upgrade-1.2").is_ok());
        for bad in ["", ".x", "-x", "a/b", "a b", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn errors_carry_line_numbers() {
        let errors = parse("f.macro", "sendline ok\nexpect /(/\nfrobnicate\n").unwrap_err();
        assert!(
            errors.iter().any(|e| e.starts_with("f.macro: line 3:")),
            "{errors:?}"
        );
    }
}
