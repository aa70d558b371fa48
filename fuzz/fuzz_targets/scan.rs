//! Fuzz the output scanner: device bytes fed in arbitrary pieces, with quiet periods in between,
//! must never panic, and the partial line must stay within its bound.
//!
//! Input layout: a byte choosing the piece size (1–64), then the device output.

#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use mo_core::scan::{Pattern, ScanConfig, Scanner, Severity};

fuzz_target!(|data: &[u8]| {
    let Some((&step, output)) = data.split_first() else {
        return;
    };
    let patterns = [
        Pattern::new(
            "panic",
            r"Kernel panic - not syncing: (.*)",
            Severity::Critical,
            "panic: $1",
        ),
        Pattern::new("login", r"login: $", Severity::Info, "{device} at login"),
        Pattern::new("prompt", r"^(=>|ok|boot>) ?$", Severity::Notice, ""),
    ];
    let Ok(mut scanner) = Scanner::new("fuzz", &patterns) else {
        return;
    };
    let max_line = ScanConfig::default().max_line;
    let mut now = Instant::now();
    for piece in output.chunks(usize::from(step % 64) + 1) {
        let _ = scanner.feed(piece, now);
        assert!(scanner.partial_line().len() <= max_line);
        now += Duration::from_millis(u64::from(step) * 7);
        let _ = scanner.poll_idle(now);
    }
    let _ = scanner.flush();
});
