//! Fuzz the SSH shell's `gang` command (mo_core::door::gang): the line `gang NAME… [-- COMMAND]`
//! and each line typed in an interactive gang session. Never a panic; targets are words (never
//! empty, no blanks) and a command is trimmed and not empty; written back as a line it reads the
//! same; a session line is sent as typed exactly when its first word is not a `:` command, and
//! `:pause`/`:resume` name at least one device.
//!
//! Input: the text after `gang ` (also read as a session line).

#![no_main]

use libfuzzer_sys::fuzz_target;
use mo_core::door::args::ArgError;
use mo_core::door::gang::{GangInput, GangLine};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let line = format!("gang {text}");
    match GangLine::parse(&line) {
        Ok(gang) => {
            assert!(!gang.targets.is_empty());
            assert!(
                gang.targets
                    .iter()
                    .all(|t| !t.is_empty() && !t.contains(char::is_whitespace))
            );
            if let Some(command) = &gang.command {
                assert!(!command.is_empty() && command.trim() == command);
            }
            if !gang.targets.iter().any(|t| t == "--") {
                let again = match &gang.command {
                    Some(c) => format!("gang {} -- {c}", gang.targets.join(" ")),
                    None => format!("gang {}", gang.targets.join(" ")),
                };
                assert_eq!(GangLine::parse(&again).as_ref(), Ok(&gang), "{again:?}");
            }
        }
        Err(ArgError::NoTargets | ArgError::EmptyCommand) => {}
        Err(other) => panic!("gang line gave {other:?}"),
    }

    let input = GangInput::parse(&text);
    let colon = text
        .split_whitespace()
        .next()
        .is_some_and(|w| w.starts_with(':'));
    match &input {
        GangInput::Send(sent) => {
            assert!(!colon);
            assert_eq!(sent.as_str(), &*text);
        }
        GangInput::Pause { devices, .. } => assert!(!devices.is_empty() && colon),
        GangInput::Unknown(word) => assert!(word.starts_with(':')),
        _ => assert!(colon),
    }
});
