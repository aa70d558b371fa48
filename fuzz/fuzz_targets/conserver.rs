//! Fuzz the conserver.cf reader (mo_store::config::parse_conserver): any bytes give a
//! configuration or an error naming a line, never a panic. `#include a` and `#include b` resolve
//! to the two halves of the input, so include handling (and its depth limit) is exercised too.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data).into_owned();
    let (a, b) = text.split_at(
        text.char_indices()
            .nth(text.chars().count() / 2)
            .map_or(0, |(i, _)| i),
    );
    let (a, b) = (a.to_string(), b.to_string());
    let loader = move |name: &str| -> Result<String, String> {
        match name {
            "a" => Ok(a.clone()),
            "b" => Ok(b.clone()),
            other => Err(format!("{other}: not found")),
        }
    };
    let _ = mo_store::config::parse_conserver(&text, "fuzz.cf", &loader);
});
