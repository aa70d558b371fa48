//! Exponential backoff with jitter, for reopening ports and redialing the daemon.

use std::time::Duration;

use rand::Rng;

/// Delays that double from `first` up to `max`, each with ±25 % jitter so that many agents cut
/// off at once do not all redial at the same instant.
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// Start at `first`, never above `max`.
    pub fn new(first: Duration, max: Duration) -> Self {
        Backoff {
            first,
            max,
            next: first,
        }
    }

    /// The next delay (with jitter); the one after is twice as long (up to the max).
    pub fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        let jitter = rand::rng().random_range(0.75..1.25);
        base.mul_f64(jitter)
    }

    /// Back to the first delay (after a success).
    pub fn reset(&mut self) {
        self.next = self.first;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_max_with_jitter() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(800));
        let delays: Vec<Duration> = (0..6).map(|_| b.next_delay()).collect();
        for (d, base) in delays.iter().zip([100u64, 200, 400, 800, 800, 800]) {
            let base = Duration::from_millis(base);
            assert!(
                *d >= base.mul_f64(0.75) && *d <= base.mul_f64(1.25),
                "{d:?} vs {base:?}"
            );
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(125));
    }
}
