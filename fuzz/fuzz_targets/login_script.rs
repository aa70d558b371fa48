//! Fuzz login scripts (mo_core::console::LoginScript, set per device from the API and the CLI):
//! never a panic; errors name a line; a script that parses without a password parses with one
//! too, with as many steps; and the password never reaches a logged `send` step — it lands only
//! in `secret` steps, whatever the script says.
//!
//! Input: one byte of user-name length, the user name, then the script's text.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mo_core::console::{LoginScript, LoginStep};
use mo_core::secret::Secret;

/// A password with a byte that no escape of the script notation produces.
const PASSWORD: &str = "\u{7}pw";

fuzz_target!(|data: &[u8]| {
    let (len, rest) = match data.split_first() {
        Some((len, rest)) => (usize::from(*len).min(rest.len()), rest),
        None => (0, data),
    };
    let user = String::from_utf8_lossy(&rest[..len]).into_owned();
    let text = String::from_utf8_lossy(&rest[len..]).into_owned();

    let with = LoginScript::parse(&text, &user, Some(Secret::new(PASSWORD)));
    let without = LoginScript::parse(&text, &user, None);
    if let Err(e) = &with {
        assert!(e.to_string().contains("line "), "{e}");
    }
    if let Ok(without) = &without {
        let with = with.as_ref().ok();
        assert_eq!(with.map(|s| s.steps().len()), Some(without.steps().len()));
    }
    if let Ok(script) = &with
        && !text.contains('\u{7}')
        && !user.contains('\u{7}')
    {
        for step in script.steps() {
            if let LoginStep::Send(bytes) = step {
                assert!(
                    !bytes.contains(&7),
                    "the password reached a send step: {text:?}"
                );
            }
        }
    }
});
