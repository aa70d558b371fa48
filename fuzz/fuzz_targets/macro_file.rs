//! Fuzz macro files (mo_core::automation::macros, uploaded over the API, the SSH shell and the
//! CLI): never a panic; a file that parses writes back (`to_text`) to text that parses to the
//! same parameters and steps; and once bound, the value of a secret parameter (`password`…)
//! never shows in the plan's text.
//!
//! Input: the file's text.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mo_core::automation::macros::{self, Macro};

/// A value with a byte that `shown` always escapes and the file cannot hold unless it has it.
const HIDDEN: &str = "\u{1}hidden";

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let parsed = match Macro::check(&text) {
        Ok(m) => m,
        Err(errors) => {
            assert!(!errors.is_empty() && errors.len() <= 20);
            assert!(errors.windows(2).all(|w| w[0].line <= w[1].line));
            return;
        }
    };

    let written = parsed.to_text();
    let back = match Macro::check(&written) {
        Ok(m) => m,
        Err(e) => panic!("{text:?} wrote {written:?}, which does not parse: {e:?}"),
    };
    let names = |m: &Macro| {
        m.params()
            .iter()
            .map(|p| (p.name.clone(), p.default.clone()))
            .collect::<Vec<_>>()
    };
    let steps = |m: &Macro| m.steps().iter().map(|l| l.step.clone()).collect::<Vec<_>>();
    assert_eq!(names(&back), names(&parsed), "{text:?} -> {written:?}");
    assert_eq!(steps(&back), steps(&parsed), "{text:?} -> {written:?}");

    let args: Vec<(&str, &str)> = parsed
        .params()
        .iter()
        .map(|p| {
            let value = if macros::is_secret(&p.name) {
                HIDDEN
            } else {
                "v"
            };
            (p.name.as_str(), value)
        })
        .collect();
    if let Ok(plan) = parsed.bind_for(Some("dev"), &args) {
        assert_eq!(plan.steps.len(), parsed.steps().len());
        if !text.contains('\u{1}') {
            for step in &plan.steps {
                assert!(!step.shown.contains('\u{1}'), "{text:?}: {}", step.shown);
            }
        }
    }
});
