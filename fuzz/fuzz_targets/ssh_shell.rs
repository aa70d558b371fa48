//! Fuzz the SSH shell's command lines (mo_core::door::shell: the first word's dispatch, the
//! POSIX-like word splitting and the `log` command's options): never a panic; more blanks between
//! words change nothing; replay counts and event limits stay in their bounds; any words, quoted
//! (`'…'`, `"…"` or with `\`), split back to themselves; `log` options that parse keep counts
//! within 0..=1000000 and a device.
//!
//! Input: the command line's text; its bytes also give a list of words to quote.

#![no_main]

use libfuzzer_sys::arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use mo_core::door::shell::{LogArgs, MAX_REPLAY, ShellCommand, split_args};

fn single(word: &str) -> String {
    format!("'{}'", word.replace('\'', "'\\''"))
}

fn double(word: &str) -> String {
    format!("\"{}\"", word.replace('\\', "\\\\").replace('"', "\\\""))
}

fn backslashed(word: &str) -> String {
    if word.is_empty() {
        return "''".to_string();
    }
    word.chars().flat_map(|c| ['\\', c]).collect()
}

fuzz_target!(|data: &[u8]| {
    let line = String::from_utf8_lossy(data);

    let cmd = ShellCommand::parse(&line);
    let spread = line.split_whitespace().collect::<Vec<_>>().join(" \t ");
    assert_eq!(ShellCommand::parse(&format!("  {spread}\t")), cmd);
    match &cmd {
        ShellCommand::Attach { replay, device, .. } => {
            assert!(replay.is_none_or(|n| n <= MAX_REPLAY));
            assert!(!device.is_empty());
        }
        ShellCommand::Events { limit, .. } => assert!((1..=10_000).contains(limit)),
        ShellCommand::Power { args, .. } => assert!(!args.is_empty()),
        ShellCommand::Empty => assert!(line.trim().is_empty()),
        _ => {}
    }

    if let Ok(words) = split_args(&line) {
        if let Some((first, rest)) = words.split_first()
            && first == "log"
            && let Ok(args) = LogArgs::parse(rest)
        {
            let counts = [args.tail, args.before, args.after, args.context];
            assert!(counts.iter().flatten().all(|&n| n <= 1_000_000));
            assert!(
                args.around.is_none()
                    || (args.since.is_none() && args.until.is_none() && args.tail.is_none())
            );
        }
    }

    // Any words, quoted three ways, split back to themselves.
    let mut u = Unstructured::new(data);
    let words: Vec<String> = u.arbitrary().unwrap_or_default();
    for quote in [single, double, backslashed] {
        let quoted: Vec<String> = words.iter().map(|w| quote(w)).collect();
        let joined = quoted.join(" ");
        assert_eq!(split_args(&joined).as_ref(), Ok(&words), "{joined:?}");
    }
});
