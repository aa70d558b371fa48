//! Shell completions and man pages for the packages (docs/packaging.md): `mo`, `mod` and
//! `mo-agent` each answer two hidden first arguments, before their own parsing,
//!
//!   BIN --generate-completions bash|zsh|fish   the completion script on standard output
//!   BIN --generate-man DIR                     BIN.1 (and BIN-SUBCOMMAND….1) written into DIR
//!
//! scripts/package.sh runs them on the release binaries. This file is shared by the three
//! binaries (mo-daemon and mo-agent include it by path), so the generator is not a crate of its
//! own that would compile each command line a second time.

use std::ffi::OsString;
use std::io::Write as _;
use std::path::PathBuf;

/// The hidden first argument that prints a completion script.
pub const COMPLETIONS: &str = "--generate-completions";
/// The hidden first argument that writes man pages.
pub const MAN: &str = "--generate-man";

/// If `argv` asks for completions or man pages, make them for `cmd` and return the exit status
/// (0, or 1 with the error on standard error); `None` otherwise, for the normal run.
pub fn intercept(argv: &[OsString], cmd: impl FnOnce() -> clap::Command) -> Option<i32> {
    let first = argv.get(1)?.to_str()?;
    if first != COMPLETIONS && first != MAN {
        return None;
    }
    let mut cmd = cmd();
    let bin = cmd.get_name().to_owned();
    let Some(value) = argv.get(2).filter(|_| argv.len() == 3) else {
        let want = if first == MAN { "DIR" } else { "bash|zsh|fish" };
        eprintln!("{bin}: {first} takes one argument: {want}");
        return Some(2);
    };
    let result = if first == MAN {
        let dir = PathBuf::from(value);
        std::fs::create_dir_all(&dir)
            .and_then(|()| clap_mangen::generate_to(cmd, &dir))
            .map_err(|e| format!("cannot write the man pages into {}: {e}", dir.display()))
    } else {
        use clap_complete::Shell;
        let shell = match value.to_str() {
            Some("bash") => Shell::Bash,
            Some("zsh") => Shell::Zsh,
            Some("fish") => Shell::Fish,
            _ => {
                eprintln!(
                    "{bin}: {COMPLETIONS}: unknown shell {}: bash, zsh or fish",
                    value.to_string_lossy()
                );
                return Some(2);
            }
        };
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut cmd, bin.clone(), &mut out);
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(&out)
            .and_then(|()| stdout.flush())
            .map_err(|e| format!("cannot write the completions: {e}"))
    };
    match result {
        Ok(()) => Some(0),
        Err(e) => {
            eprintln!("{bin}: {e}");
            Some(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    fn cmd() -> clap::Command {
        clap::Command::new("tool").subcommand(clap::Command::new("sub").about("A subcommand."))
    }

    #[test]
    fn other_arguments_run_the_program() {
        assert_eq!(intercept(&argv(&["tool"]), cmd), None);
        assert_eq!(intercept(&argv(&["tool", "sub", MAN]), cmd), None);
    }

    #[test]
    fn a_wrong_use_is_refused() {
        assert_eq!(
            intercept(&argv(&["tool", COMPLETIONS, "tcsh"]), cmd),
            Some(2)
        );
        assert_eq!(intercept(&argv(&["tool", COMPLETIONS]), cmd), Some(2));
        assert_eq!(intercept(&argv(&["tool", MAN, "a", "b"]), cmd), Some(2));
    }

    #[test]
    fn man_pages_are_written_for_the_command_and_its_subcommands() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let out = dir.path().join("man");
        let given = argv(&["tool", MAN, &out.display().to_string()]);
        assert_eq!(intercept(&given, cmd), Some(0));
        for page in ["tool.1", "tool-sub.1"] {
            let text = std::fs::read_to_string(out.join(page))?;
            assert!(
                text.starts_with(".ie") || text.contains(".TH"),
                "{page}: {text}"
            );
        }
        Ok(())
    }
}
