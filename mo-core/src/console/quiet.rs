//! A look, once a period, at whether something has gone quiet: used by the read size (a quiet
//! link goes back to small reads) and the hub (a quiet console gives its replay buffer up).

use std::time::Duration;

use tokio::time::Instant;

/// Armed by the first activity; at each look, activity since the last look arms it again, and
/// none means a whole period was quiet (then it is disarmed until the next activity). Reads the
/// clock once per period, not per activity.
#[derive(Debug)]
pub(super) struct QuietLook {
    period: Duration,
    /// When to look (armed).
    pub(super) at: Option<Instant>,
    /// Activity came since `at` was set.
    since_look: bool,
}

impl QuietLook {
    pub(super) fn new(period: Duration) -> Self {
        QuietLook {
            period,
            at: None,
            since_look: false,
        }
    }

    /// Something happened; `now` is read only when this arms the look.
    pub(super) fn activity(&mut self, now: impl FnOnce() -> Instant) {
        match self.at {
            None => self.at = Some(now() + self.period),
            Some(_) => self.since_look = true,
        }
    }

    /// The timer fired at `now`: true when the look was due and nothing happened for a whole
    /// period (the look is then disarmed).
    pub(super) fn quiet(&mut self, now: Instant) -> bool {
        if self.at.is_none_or(|t| t > now) {
            return false;
        }
        if std::mem::take(&mut self.since_look) {
            self.at = Some(now + self.period);
            false
        } else {
            self.at = None;
            true
        }
    }
}
