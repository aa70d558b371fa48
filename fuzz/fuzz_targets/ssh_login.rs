//! Fuzz SSH login names (mo_core::door::login::Login, `ssh alice:web01:spy@host`): never a
//! panic; an accepted name has a user without `:`, a non-empty device if any, and a mode that
//! the door accepts by that name; `user:device:mode` built from the parts reads back to them.
//!
//! Input: the login name's text.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mo_core::console::Mode;
use mo_core::door::login::Login;

fuzz_target!(|data: &[u8]| {
    let name = String::from_utf8_lossy(data);
    match Login::parse(&name) {
        Ok(login) => {
            assert!(!login.user.is_empty() && !login.user.contains(':'));
            assert!(login.device.as_ref().is_none_or(|d| !d.is_empty()));
            let mut parts = name.splitn(3, ':');
            assert_eq!(parts.next(), Some(login.user.as_str()));
            assert_eq!(parts.next(), login.device.as_deref());
            let mode = parts.next().map_or(Some(Mode::Attach), Mode::by_name);
            assert_eq!(mode, Some(login.mode));
            // Written back with the mode's canonical name, it reads the same.
            if let Some(device) = &login.device {
                let again = Login::parse(&format!("{}:{device}:{}", login.user, login.mode));
                assert_eq!(again.as_ref(), Ok(&login));
            }
        }
        Err(e) => assert!(e.reason.contains(&*name), "{e} does not name {name:?}"),
    }
});
