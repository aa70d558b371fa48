//! Console-loop detection (issue 23 item 7): mo's own notices coming back in a console's output.
//!
//! Every notice mo shows a viewer on a terminal is a line `[mo: …]` ([`super::view`]). A device
//! that prints that tag again and again is reading what mo writes to a viewer: the viewer's output
//! is wired into this console's (or another console's) input, and that console's output comes
//! back — a console loop, which echoes forever. The guard counts the tag in the output; when
//! [`LoopGuard::LIMIT`] of them arrive within [`LoopGuard::WINDOW`] it trips: the console stops
//! sending output and notices to its viewers (the record log and the event watcher still get
//! everything), which breaks the loop. Delivery resumes once the tag has not been seen for
//! [`LoopGuard::HOLD`].

use std::sync::LazyLock;
use std::time::Duration;

use tokio::time::Instant;

/// The tag every terminal notice of mo starts with.
pub(crate) const TAG: &[u8] = b"[mo: ";

/// The searcher for [`TAG`], built once (building one for each output chunk showed in profiles).
static TAG_FINDER: LazyLock<memchr::memmem::Finder<'static>> =
    LazyLock::new(|| memchr::memmem::Finder::new(TAG));

/// The start of the notice the guard writes when it trips (the event watcher raises an event on
/// it).
pub const LOOP_NOTICE_PREFIX: &str = "console loop: ";

/// What [`LoopGuard::feed`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Nothing changed.
    Same,
    /// The loop was just detected: stop delivering, say so with this text.
    Tripped(String),
    /// The tag has been quiet long enough: deliver again.
    Resumed,
}

/// Counts mo's notice tag in one console's output.
#[derive(Debug, Default)]
pub(crate) struct LoopGuard {
    /// The last bytes of the previous chunk (a tag split across chunks still counts).
    carry: Vec<u8>,
    /// When the tags of the current window were seen (at most `LIMIT`).
    seen: Vec<Instant>,
    /// When the tag was last seen.
    last: Option<Instant>,
    /// The console stopped delivering output to its viewers.
    stopped: bool,
}

impl LoopGuard {
    /// Tags within [`LoopGuard::WINDOW`] that make a loop.
    pub(crate) const LIMIT: usize = 20;
    /// The window the tags are counted in.
    pub(crate) const WINDOW: Duration = Duration::from_secs(10);
    /// How long the tag must stay away before output reaches the viewers again.
    pub(crate) const HOLD: Duration = Duration::from_secs(10);

    /// Whether output and notices are withheld from the viewers.
    #[cfg(test)]
    pub(crate) fn stopped(&self) -> bool {
        self.stopped
    }

    /// Look at one piece of output read at `now`.
    pub(crate) fn feed(&mut self, bytes: &[u8], now: Instant) -> Verdict {
        let found = self.count(bytes);
        if found > 0 {
            self.last = Some(now);
        }
        if self.stopped {
            return self.check_quiet(now);
        }
        if found == 0 {
            return Verdict::Same;
        }
        self.seen
            .retain(|t| now.saturating_duration_since(*t) < Self::WINDOW);
        for _ in 0..found.min(Self::LIMIT) {
            self.seen.push(now);
        }
        if self.seen.len() < Self::LIMIT {
            return Verdict::Same;
        }
        self.seen.clear();
        self.stopped = true;
        Verdict::Tripped(format!(
            "{LOOP_NOTICE_PREFIX}mo's own notices came back in this console's output {} times \
             within {}s (its output is fed back into its input); output to viewers is stopped \
             until that ends",
            Self::LIMIT,
            Self::WINDOW.as_secs()
        ))
    }

    /// While stopped: resume when the tag has been away for [`LoopGuard::HOLD`].
    pub(crate) fn check_quiet(&mut self, now: Instant) -> Verdict {
        let quiet = self
            .last
            .is_none_or(|t| now.saturating_duration_since(t) >= Self::HOLD);
        if self.stopped && quiet {
            self.stopped = false;
            return Verdict::Resumed;
        }
        Verdict::Same
    }

    /// Tags in `bytes`, counting one that starts in the previous piece (no copy of `bytes`).
    fn count(&mut self, bytes: &[u8]) -> usize {
        let head = bytes
            .get(..bytes.len().min(TAG.len() - 1))
            .unwrap_or_default();
        let mut edge = std::mem::take(&mut self.carry);
        let carried = edge.len();
        edge.extend_from_slice(head);
        // Tags that start in the carried bytes (those wholly inside `bytes` are counted below).
        let across = edge
            .windows(TAG.len())
            .enumerate()
            .filter(|(i, w)| *i < carried && *w == TAG)
            .count();
        // Every output chunk passes here: a SIMD substring search, not a window compare.
        let inside = TAG_FINDER.find_iter(bytes).count();
        // Keep the last TAG.len() - 1 bytes of what was seen for the next piece.
        let keep = TAG.len() - 1;
        if bytes.len() >= keep {
            edge.clear();
            edge.extend_from_slice(bytes.get(bytes.len() - keep..).unwrap_or_default());
        } else {
            let drop = edge.len().saturating_sub(keep);
            edge.drain(..drop);
        }
        self.carry = edge;
        across + inside
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice() -> &'static [u8] {
        b"\r\n[mo: alice attached read-write]\r\n"
    }

    #[test]
    fn a_few_notices_in_the_output_are_no_loop() {
        let mut g = LoopGuard::default();
        let now = Instant::now();
        for i in 0..LoopGuard::LIMIT - 1 {
            assert_eq!(
                g.feed(notice(), now + Duration::from_millis(i as u64)),
                Verdict::Same
            );
        }
        assert!(!g.stopped());
    }

    #[test]
    fn notices_coming_back_fast_trip_and_quiet_resumes() {
        let mut g = LoopGuard::default();
        let t0 = Instant::now();
        let mut verdict = Verdict::Same;
        for i in 0..LoopGuard::LIMIT {
            verdict = g.feed(notice(), t0 + Duration::from_millis(i as u64));
        }
        assert!(matches!(&verdict, Verdict::Tripped(text) if text.starts_with(LOOP_NOTICE_PREFIX)));
        assert!(g.stopped());
        // Still looping: stays stopped.
        let t1 = t0 + Duration::from_secs(5);
        assert_eq!(g.feed(notice(), t1), Verdict::Same);
        assert_eq!(
            g.feed(b"plain output", t1 + Duration::from_secs(1)),
            Verdict::Same
        );
        assert!(g.stopped());
        // Quiet for HOLD: delivering again.
        assert_eq!(
            g.feed(b"plain output", t1 + LoopGuard::HOLD),
            Verdict::Resumed
        );
        assert!(!g.stopped());
    }

    #[test]
    fn notices_spread_over_more_than_the_window_are_no_loop() {
        let mut g = LoopGuard::default();
        let t0 = Instant::now();
        for i in 0..(LoopGuard::LIMIT * 3) as u64 {
            assert_eq!(g.feed(notice(), t0 + Duration::from_secs(i)), Verdict::Same);
        }
    }

    #[test]
    fn a_tag_split_across_pieces_counts() {
        let mut g = LoopGuard::default();
        let t0 = Instant::now();
        let mut verdict = Verdict::Same;
        for _ in 0..LoopGuard::LIMIT {
            assert_eq!(g.feed(b"xx[m", t0), Verdict::Same);
            verdict = g.feed(b"o: hi]\r\n", t0);
        }
        assert!(matches!(verdict, Verdict::Tripped(_)));
    }

    #[test]
    fn tags_are_counted_once_however_the_output_is_cut() {
        let text = b"ab[mo: x][mo: y]z[mo: [mo: [m".repeat(3);
        for size in 1..text.len() {
            let mut g = LoopGuard::default();
            let counted: usize = text.chunks(size).map(|c| g.count(c)).sum();
            assert_eq!(counted, 12, "pieces of {size}");
        }
    }

    #[test]
    fn a_burst_in_one_piece_trips() {
        let mut g = LoopGuard::default();
        let burst = notice().repeat(LoopGuard::LIMIT);
        assert!(matches!(
            g.feed(&burst, Instant::now()),
            Verdict::Tripped(_)
        ));
    }
}
