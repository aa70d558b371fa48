//! Fuzz the SSH shell's `power ACTION [OPTIONS] TARGET…` words (mo_core::door::power::PowerArgs):
//! never a panic; what parses keeps its bounds (targets never empty, `--parallel` 1..=1000,
//! waits at most a day, `--order` patterns trimmed and without commas); written back as words
//! (targets quoted, options as `--opt=value`) it reads to the same arguments; an error names the
//! option or value at fault.
//!
//! Input: the words, separated by NUL bytes (so a word may hold blanks).

#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use mo_core::door::args::ArgError;
use mo_core::door::power::{MAX_PARALLEL, MAX_WAIT, PowerArgs};

fn close(a: Option<Duration>, b: Option<Duration>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.abs_diff(b) <= Duration::from_micros(1),
        (a, b) => a == b,
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let words: Vec<&str> = if text.is_empty() {
        Vec::new()
    } else {
        text.split('\0').collect()
    };
    let args = match PowerArgs::parse(&words) {
        Ok(args) => args,
        Err(e) => {
            let message = e.to_string();
            match &e {
                ArgError::MissingValue { option } | ArgError::UnknownOption { option } => {
                    assert!(option.starts_with("--") && message.contains(option.as_str()));
                }
                ArgError::BadValue { option, value, .. } => {
                    assert!(message.contains(option.as_str()) && message.contains(value.as_str()));
                }
                ArgError::NoTargets => {}
                other => panic!("power words gave {other:?}"),
            }
            return;
        }
    };
    assert!(!args.targets.is_empty());
    assert!(args.targets.iter().all(|t| !t.starts_with("--")));
    assert!(
        args.parallel
            .is_none_or(|n| (1..=MAX_PARALLEL).contains(&n))
    );
    assert!(args.delay.is_none_or(|d| d <= MAX_WAIT));
    assert!(args.stagger.is_none_or(|d| d <= MAX_WAIT));
    assert!(
        args.order
            .iter()
            .all(|p| !p.is_empty() && !p.contains(',') && p.trim() == p)
    );
    assert_eq!(
        args.is_group(),
        !args.order.is_empty()
            || args.delay.is_some()
            || args.parallel.is_some()
            || args.stagger.is_some()
            || args.stop_on_failure
    );

    let mut again: Vec<String> = args.targets.iter().map(|t| format!("'{t}'")).collect();
    if !args.order.is_empty() {
        again.push(format!("--order={}", args.order.join(",")));
    }
    if let Some(d) = args.delay {
        again.push("--delay".into());
        again.push(format!("{}", d.as_secs_f64()));
    }
    if let Some(d) = args.stagger {
        again.push(format!("--stagger={}ms", d.as_secs_f64() * 1000.0));
    }
    if let Some(n) = args.parallel {
        again.push(format!("--parallel={n}"));
    }
    if args.stop_on_failure {
        again.push("--stop-on-failure".into());
    }
    let back = PowerArgs::parse(&again).unwrap_or_else(|e| panic!("{again:?}: {e}"));
    assert_eq!(back.targets, args.targets);
    assert_eq!(back.order, args.order);
    assert_eq!(back.parallel, args.parallel);
    assert_eq!(back.stop_on_failure, args.stop_on_failure);
    assert!(close(back.delay, args.delay), "{again:?}");
    assert!(close(back.stagger, args.stagger), "{again:?}");
    let stage = args.stage_of(&args.targets[0], |p, n| p == n);
    assert!(stage <= args.order.len());
});
