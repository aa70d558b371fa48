//! Giving freed memory back to the operating system.
//!
//! Thousands of quiet consoles give their replay buffers up at about the same time (see the
//! console hub). glibc's allocator keeps the holes they leave among live allocations resident
//! until it is asked to trim: 10,000 idle consoles stayed at 145 MiB resident with 69 MiB in use,
//! and went to 98 MiB after one `malloc_trim` (12 ms, on a blocking thread). So released bytes are
//! counted, and once 4 MiB of them add up a trim is made a second later (the rest of
//! the wave is released by then), at most one at a time. Other allocators and C libraries: nothing
//! is done.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// Bytes released since the last trim that make the next one worth its pause.
pub(crate) const TRIM_AFTER: usize = 4 << 20;
/// How long after the bytes added up the trim is made.
pub(crate) const TRIM_DELAY: Duration = Duration::from_secs(1);

static RELEASED: AtomicUsize = AtomicUsize::new(0);
static SCHEDULED: AtomicBool = AtomicBool::new(false);
static TRIMS: AtomicUsize = AtomicUsize::new(0);

/// `bytes` of long-lived memory were freed; a trim follows once enough were (needs a tokio
/// runtime to schedule it; without one, nothing happens).
pub(crate) fn released(bytes: usize) {
    let total = RELEASED.fetch_add(bytes, Ordering::Relaxed) + bytes;
    if total < TRIM_AFTER || SCHEDULED.swap(true, Ordering::AcqRel) {
        return;
    }
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        SCHEDULED.store(false, Ordering::Release);
        return;
    };
    runtime.spawn_blocking(|| {
        std::thread::sleep(TRIM_DELAY);
        RELEASED.store(0, Ordering::Relaxed);
        let started = std::time::Instant::now();
        let gave_back = trim();
        TRIMS.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(
            gave_back,
            took_ms = started.elapsed().as_millis(),
            "memory freed by quiet consoles given back"
        );
        SCHEDULED.store(false, Ordering::Release);
    });
}

/// How many trims were made (for tests).
#[cfg(test)]
pub(crate) fn trims() -> usize {
    TRIMS.load(Ordering::Relaxed)
}

/// Ask the allocator to return the memory it holds free to the operating system now (glibc's
/// `malloc_trim`; elsewhere nothing is done). Whether any was returned. mo-core does this by
/// itself after quiet consoles gave their replay buffers up; a program may call it after other
/// waves of freeing (a benchmark between its runs).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn trim() -> bool {
    // SAFETY: malloc_trim takes the allocator's own locks and only releases free memory; it
    // touches nothing Rust owns.
    unsafe { libc::malloc_trim(0) != 0 }
}

/// Ask the allocator to return the memory it holds free to the operating system now (glibc's
/// `malloc_trim`; elsewhere nothing is done). Whether any was returned.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn trim() -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Enough released memory brings a trim about, on its own, about [`TRIM_DELAY`] later.
    #[tokio::test]
    async fn a_trim_follows_enough_released_memory() {
        let before = trims();
        released(TRIM_AFTER);
        let deadline = tokio::time::Instant::now() + TRIM_DELAY * 10;
        while trims() == before {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no trim within {:?}",
                TRIM_DELAY * 10
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
