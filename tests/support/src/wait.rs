//! Polling waits with a time limit, whose errors say what was last seen.

use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::world::World;

/// How often [`wait_until`] asks again.
const POLL: Duration = Duration::from_millis(100);

/// Poll `f` until it answers `Ok`, or fail after `limit` naming `what` and the last answer
/// (`Err(last seen)`); an error of `f` itself ends the wait at once.
pub fn wait_until<T>(
    what: &str,
    limit: Duration,
    mut f: impl FnMut() -> Result<std::result::Result<T, String>>,
) -> Result<T> {
    let deadline = Instant::now() + limit;
    loop {
        let last = match f()? {
            Ok(v) => return Ok(v),
            Err(last) => last,
        };
        if Instant::now() >= deadline {
            return Err(Error::Check(format!(
                "{what}: not within {limit:?}; last seen:\n{last}"
            )));
        }
        std::thread::sleep(POLL);
    }
}

/// Wait until `mo log show DEVICE` contains `needle` `count` times (within [`crate::WAIT`]);
/// the log as shown.
pub fn wait_log_count(w: &World, device: &str, needle: &str, count: usize) -> Result<String> {
    wait_until(
        &format!("`{needle}` x{count} in the log of {device}"),
        crate::WAIT,
        || {
            let text = w.mo(&["log", "show", device], None)?.stdout;
            Ok(if text.matches(needle).count() >= count {
                Ok(text)
            } else {
                Err(text)
            })
        },
    )
}
