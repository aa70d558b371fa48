//! Fuzz the SSH shell's `macro …` lines (mo_core::door::macros): never a panic; `play` keeps its
//! bounds (targets never empty and never options, `--parallel` 1..=1000, argument names not
//! empty and without `=`); a `play` written back as a line reads to the same command; whether a
//! line reads stored macros agrees with what it parses to; an error names the word at fault.
//!
//! Input: the line's text.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mo_core::door::args::ArgError;
use mo_core::door::macros::{MacroCommand, PlayArgs, parse_macro_args};

fn line_of(name: &str, play: &PlayArgs) -> String {
    let mut line = format!("macro play {name} {}", play.targets.join(" "));
    line.push_str(&format!(" --parallel {}", play.parallel));
    if play.dry_run {
        line.push_str(" -n");
    }
    if play.keep_going {
        line.push_str(" --continue");
    }
    if !play.args.is_empty() {
        line.push_str(" --");
        for (k, v) in &play.args {
            line.push_str(&format!(" {k}={v}"));
        }
    }
    line
}

fuzz_target!(|data: &[u8]| {
    let line = String::from_utf8_lossy(data);
    let line = format!("macro {line}");
    let parsed = MacroCommand::parse(&line);
    match &parsed {
        Ok(MacroCommand::Play { name, play }) => {
            assert!(!play.targets.is_empty());
            assert!(play.targets.iter().all(|t| !t.starts_with('-')));
            assert!((1..=1000).contains(&play.parallel));
            assert!(
                play.args
                    .iter()
                    .all(|(k, _)| !k.is_empty() && !k.contains('='))
            );
            let again = line_of(name, play);
            assert_eq!(
                MacroCommand::parse(&again).as_ref(),
                Ok(&MacroCommand::Play {
                    name: name.clone(),
                    play: play.clone()
                }),
                "{again}"
            );
            let words: Vec<String> = play.args.iter().map(|(k, v)| format!("{k}={v}")).collect();
            assert_eq!(parse_macro_args(&words).as_ref(), Ok(&play.args));
        }
        Ok(_) => {}
        Err(ArgError::Usage { command }) => assert_eq!(*command, "macro"),
        Err(e @ (ArgError::MissingValue { option } | ArgError::UnknownOption { option })) => {
            assert!(option.starts_with('-') && e.to_string().contains(option.as_str()));
        }
        Err(e @ ArgError::BadValue { value, .. }) => {
            assert!(e.to_string().contains(value.as_str()))
        }
        Err(e @ ArgError::BadMacroArgument { word }) => {
            assert!(!word.is_empty() && e.to_string().contains(word.as_str()));
        }
        Err(ArgError::NoTargets) => {}
        Err(other) => panic!("macro line gave {other:?}"),
    }
    if let Ok(cmd) = &parsed {
        let stored = !matches!(cmd, MacroCommand::Record { .. })
            && !matches!(cmd, MacroCommand::Check { what } if what == "-");
        assert_eq!(MacroCommand::reads_stored(&line), stored, "{line:?}");
    }
});
