//! The `flood RATE [SECONDS]` command: numbered 64-byte lines at a given rate, written straight into
//! the reader's buffer.
//!
//! A line is a ten-digit line number (from 1), a space, 51 characters of a rotating chargen pattern,
//! and `\r\n`, so a reader can check that nothing was lost or garbled. Lines are produced only as the
//! reader asks for them; the rate is a ceiling computed from the time since the flood started, and a
//! reader that falls behind does not get a catch-up burst larger than a tenth of a second's worth.

use std::io::Write as _;
use std::time::Duration;

use tokio::time::Instant;

/// Bytes per line of the sim's `flood` command, `\r\n` included.
pub const FLOOD_LINE_LEN: usize = 64;
pub(super) const LINE_LEN: usize = FLOOD_LINE_LEN;
const NUM_LEN: usize = 10;
const TEXT_LEN: usize = LINE_LEN - NUM_LEN - 3;
const PRINTABLE: usize = 95;

/// The printable ASCII characters, twice, so any rotation is one slice.
const RING: [u8; 2 * PRINTABLE] = {
    let mut ring = [0u8; 2 * PRINTABLE];
    let mut i = 0;
    while i < ring.len() {
        ring[i] = b' ' + (i % PRINTABLE) as u8;
        i += 1;
    }
    ring
};

/// How fast a flood goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Rate {
    /// As fast as the reader reads.
    Max,
    /// At most this many bytes per second.
    PerSec(u64),
}

/// Parse `max`, `500`, `100k`, `10M`, `1G` (decimal multiples; bytes per second).
pub(super) fn parse_rate(word: &[u8]) -> Option<Rate> {
    if word.eq_ignore_ascii_case(b"max") {
        return Some(Rate::Max);
    }
    let (digits, mult) = match word.split_last()? {
        (b'k' | b'K', rest) => (rest, 1_000),
        (b'm' | b'M', rest) => (rest, 1_000_000),
        (b'g' | b'G', rest) => (rest, 1_000_000_000),
        _ => (word, 1),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let value: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    let rate = value.checked_mul(mult)?;
    (1..=1_000_000_000_000)
        .contains(&rate)
        .then_some(Rate::PerSec(rate))
}

/// Parse a duration in seconds (`5`, `0.5`), up to a year.
pub(super) fn parse_seconds(word: &[u8]) -> Option<Duration> {
    let secs: f64 = std::str::from_utf8(word).ok()?.parse().ok()?;
    (secs.is_finite() && secs > 0.0 && secs <= 365.0 * 86_400.0)
        .then(|| Duration::from_secs_f64(secs))
}

/// What [`Flood::step`] did.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum FloodStep {
    /// This many bytes were written to the reader's buffer (never 0 for a non-empty buffer).
    Direct(usize),
    /// Nothing may be sent before this moment.
    Wait(Instant),
    /// The flood's time is up and its last line is complete.
    Finished,
}

/// A running flood.
#[derive(Debug)]
pub(super) struct Flood {
    rate: Rate,
    start: Instant,
    end: Option<Instant>,
    /// The rate is measured from here…
    base: Instant,
    /// …and this much has been sent since.
    sent_since_base: u64,
    /// The current line's number, in ASCII.
    digits: [u8; NUM_LEN],
    /// How much of the current line has been sent.
    col: usize,
    lines: u64,
    bytes: u64,
}

impl Flood {
    /// A flood starting now, for `seconds` or until interrupted.
    pub(super) fn new(rate: Rate, seconds: Option<Duration>, now: Instant) -> Self {
        Flood {
            rate,
            start: now,
            end: seconds.and_then(|secs| now.checked_add(secs)),
            base: now,
            sent_since_base: 0,
            digits: *b"0000000001",
            col: 0,
            lines: 0,
            bytes: 0,
        }
    }

    /// Append the closing summary line.
    pub(super) fn summary(&self, now: Instant, out: &mut Vec<u8>) {
        let secs = now.saturating_duration_since(self.start).as_secs_f64();
        // Writing to a Vec cannot fail.
        let _ = write!(
            out,
            "flood: {} lines, {} bytes in {secs:.1} s\r\n",
            self.lines, self.bytes
        );
    }

    /// Write what is due into `dst`.
    pub(super) fn step(&mut self, now: Instant, dst: &mut [u8]) -> FloodStep {
        if dst.is_empty() {
            return FloodStep::Direct(0);
        }
        if self.end.is_some_and(|end| now >= end) {
            if self.col == 0 {
                return FloodStep::Finished;
            }
            // Time is up: finish the line we are in, whatever the rate.
            return FloodStep::Direct(self.fill(dst, LINE_LEN - self.col));
        }
        match self.allowance(now) {
            Ok(allowed) => {
                let n = self.fill(dst, allowed);
                self.sent_since_base += n as u64;
                FloodStep::Direct(n)
            }
            Err(next) => FloodStep::Wait(self.end.map_or(next, |end| next.min(end))),
        }
    }

    /// How many bytes may go now (at least 1), or when some may.
    fn allowance(&mut self, now: Instant) -> Result<usize, Instant> {
        let Rate::PerSec(rate) = self.rate else {
            return Ok(usize::MAX);
        };
        let elapsed = now.saturating_duration_since(self.base).as_nanos();
        let earned = u64::try_from(elapsed * u128::from(rate) / 1_000_000_000).unwrap_or(u64::MAX);
        let available = earned.saturating_sub(self.sent_since_base);
        let burst = (rate / 10).max(LINE_LEN as u64);
        if available > burst {
            // The reader fell behind: start measuring afresh rather than bursting to catch up.
            self.base = now;
            self.sent_since_base = 0;
            return Ok(usize::try_from(burst).unwrap_or(usize::MAX));
        }
        if available > 0 {
            return Ok(usize::try_from(available).unwrap_or(usize::MAX));
        }
        // Wake when a chunk worth a timer tick (1/100 s, 1 B to 16 KiB) has been earned.
        let chunk = (rate / 100).clamp(1, 16 * 1024);
        // Rounded up, so that at that moment the chunk has been earned in full.
        let nanos = u128::from(self.sent_since_base + chunk) * 1_000_000_000 / u128::from(rate) + 1;
        let at = Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
        Err(self
            .base
            .checked_add(at)
            .unwrap_or(now + Duration::from_secs(1)))
    }

    /// Write up to `limit` bytes of lines into `dst`; returns how many.
    fn fill(&mut self, dst: &mut [u8], limit: usize) -> usize {
        let len = dst.len().min(limit);
        let mut n = 0;
        while n < len {
            if self.col == 0 && len - n >= LINE_LEN {
                self.render(&mut dst[n..n + LINE_LEN]);
                self.next_line();
                n += LINE_LEN;
            } else {
                let mut line = [0u8; LINE_LEN];
                self.render(&mut line);
                let take = (LINE_LEN - self.col).min(len - n);
                dst[n..n + take].copy_from_slice(&line[self.col..self.col + take]);
                self.col += take;
                n += take;
                if self.col == LINE_LEN {
                    self.col = 0;
                    self.next_line();
                }
            }
        }
        self.bytes += n as u64;
        n
    }

    /// The current line, into `line` (exactly [`LINE_LEN`] bytes).
    fn render(&self, line: &mut [u8]) {
        let (number, rest) = line.split_at_mut(NUM_LEN);
        number.copy_from_slice(&self.digits);
        let (space, rest) = rest.split_at_mut(1);
        space[0] = b' ';
        let (text, end) = rest.split_at_mut(TEXT_LEN);
        let offset = (self.lines % PRINTABLE as u64) as usize;
        text.copy_from_slice(&RING[offset..offset + TEXT_LEN]);
        end.copy_from_slice(b"\r\n");
    }

    fn next_line(&mut self) {
        self.lines += 1;
        for digit in self.digits.iter_mut().rev() {
            if *digit == b'9' {
                *digit = b'0';
            } else {
                *digit += 1;
                return;
            }
        }
    }
}

/// The line numbered `number` (from 1) exactly as the sim's `flood` command prints it: the number
/// in ten digits (modulo 10^10), a space, 51 characters of the chargen pattern rotated by
/// `number - 1`, and `\r\n`. Lets a reader of a flood's output or record log check it line by line.
pub fn flood_line(number: u64) -> [u8; FLOOD_LINE_LEN] {
    let mut line = [0u8; LINE_LEN];
    let (digits, rest) = line.split_at_mut(NUM_LEN);
    let mut n = number;
    for digit in digits.iter_mut().rev() {
        *digit = b'0' + (n % 10) as u8;
        n /= 10;
    }
    let (space, rest) = rest.split_at_mut(1);
    space[0] = b' ';
    let (text, end) = rest.split_at_mut(TEXT_LEN);
    let offset = (number.wrapping_sub(1) % PRINTABLE as u64) as usize;
    text.copy_from_slice(&RING[offset..offset + TEXT_LEN]);
    end.copy_from_slice(b"\r\n");
    line
}

/// Check that `stream` is a run of whole, consecutive flood lines starting at line `first`;
/// returns the number of lines. Used by tests.
#[cfg(test)]
pub(super) fn check_lines(stream: &[u8], first: u64) -> Result<u64, String> {
    if !stream.len().is_multiple_of(LINE_LEN) {
        return Err(format!(
            "{} bytes is not a whole number of lines",
            stream.len()
        ));
    }
    for (i, line) in stream.chunks(LINE_LEN).enumerate() {
        let expected_no = first + i as u64;
        if line != flood_line(expected_no).as_slice() {
            return Err(format!(
                "line {expected_no} is {:?}",
                String::from_utf8_lossy(line)
            ));
        }
    }
    Ok((stream.len() / LINE_LEN) as u64)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    #[test]
    fn rates_parse() {
        assert_eq!(parse_rate(b"max"), Some(Rate::Max));
        assert_eq!(parse_rate(b"MAX"), Some(Rate::Max));
        assert_eq!(parse_rate(b"500"), Some(Rate::PerSec(500)));
        assert_eq!(parse_rate(b"100k"), Some(Rate::PerSec(100_000)));
        assert_eq!(parse_rate(b"10M"), Some(Rate::PerSec(10_000_000)));
        assert_eq!(parse_rate(b"2g"), Some(Rate::PerSec(2_000_000_000)));
        for bad in [
            &b""[..],
            b"0",
            b"k",
            b"-5",
            b"1.5M",
            b"10x",
            b"99999999999999999999",
        ] {
            assert_eq!(parse_rate(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(parse_seconds(b"5"), Some(Duration::from_secs(5)));
        assert_eq!(parse_seconds(b"0.5"), Some(Duration::from_millis(500)));
        for bad in [&b"0"[..], b"-1", b"nan", b"inf", b"x", b"1e12"] {
            assert_eq!(parse_seconds(bad), None);
        }
    }

    #[test]
    fn output_is_the_same_whatever_the_buffer_sizes() {
        let now = Instant::now();
        let mut whole = Flood::new(Rate::Max, None, now);
        let mut expected = vec![0u8; 100 * LINE_LEN];
        assert_eq!(
            whole.step(now, &mut expected),
            FloodStep::Direct(expected.len())
        );
        assert_eq!(check_lines(&expected, 1), Ok(100));
        assert_eq!(
            &expected[..2 * LINE_LEN],
            b"0000000001  !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQR\r\n\
              0000000002 !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRS\r\n"
        );

        let mut rng = StdRng::seed_from_u64(7);
        let mut pieces = Flood::new(Rate::Max, None, now);
        let mut got = Vec::new();
        while got.len() < expected.len() {
            let mut buf = vec![0u8; rng.random_range(1..200).min(expected.len() - got.len())];
            let FloodStep::Direct(n) = pieces.step(now, &mut buf) else {
                panic!("max rate waited");
            };
            assert_eq!(n, buf.len());
            got.extend_from_slice(&buf);
        }
        assert_eq!(got, expected);
    }

    #[test]
    fn rate_is_a_ceiling_without_catch_up_bursts() {
        let start = Instant::now();
        let mut flood = Flood::new(Rate::PerSec(1000), Some(Duration::from_secs(10)), start);
        let mut buf = vec![0u8; 16 * 1024];
        // Nothing is earned at the start: wait 10 ms for a 10-byte chunk.
        assert_eq!(
            flood.step(start, &mut buf),
            FloodStep::Wait(start + Duration::from_nanos(10_000_001))
        );
        let ten_ms = start + Duration::from_millis(10);
        assert_eq!(flood.step(ten_ms, &mut buf), FloodStep::Direct(10));
        let later = start + Duration::from_millis(110);
        assert_eq!(flood.step(later, &mut buf), FloodStep::Direct(100));
        assert!(matches!(flood.step(later, &mut buf), FloodStep::Wait(_)));
        // Five seconds without reading: only a tenth of a second's worth comes at once.
        let six = start + Duration::from_secs(6);
        assert_eq!(flood.step(six, &mut buf), FloodStep::Direct(100));
        assert!(matches!(flood.step(six, &mut buf), FloodStep::Wait(_)));
        // At the end, the current line is finished, then the flood is over.
        let end = start + Duration::from_secs(10);
        let FloodStep::Direct(n) = flood.step(end, &mut buf) else {
            panic!("no last line");
        };
        assert_eq!((210 + n) % LINE_LEN, 0);
        assert_eq!(flood.step(end, &mut buf), FloodStep::Finished);
        let mut out = Vec::new();
        flood.summary(end, &mut out);
        assert_eq!(out, b"flood: 4 lines, 256 bytes in 10.0 s\r\n");
    }
}
