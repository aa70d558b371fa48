//! Fuzz the conman.conf reader (mo_store::config::parse_conman): any bytes give a configuration or an error naming
//! a line, never a panic.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Err(e) = mo_store::config::parse_conman(&text, "fuzz") {
        assert!(!e.to_string().is_empty());
    }
});
