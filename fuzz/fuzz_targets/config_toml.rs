//! Fuzz mo's TOML configuration reader (mo_store::config::parse_toml): any bytes give a configuration or an error naming
//! a line, never a panic.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Err(e) = mo_store::config::parse_toml(&text, "fuzz") {
        assert!(!e.to_string().is_empty());
    }
});
