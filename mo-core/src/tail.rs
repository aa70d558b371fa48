//! The recent-output buffer a console keeps for replay ("the last N lines").

use std::collections::VecDeque;

/// The last few kilobytes of a console's output. Grows only as output arrives, up to its cap.
#[derive(Debug, Clone)]
pub struct TailBuffer {
    bytes: VecDeque<u8>,
    cap: usize,
}

impl TailBuffer {
    /// An empty buffer keeping at most `cap` bytes.
    pub fn new(cap: usize) -> Self {
        TailBuffer {
            bytes: VecDeque::new(),
            cap,
        }
    }

    /// Append output, dropping the oldest bytes beyond the cap.
    pub fn push(&mut self, data: &[u8]) {
        if self.cap == 0 {
            return;
        }
        let data = if data.len() > self.cap {
            &data[data.len() - self.cap..]
        } else {
            data
        };
        let overflow = (self.bytes.len() + data.len()).saturating_sub(self.cap);
        self.bytes.drain(..overflow);
        let need = self.bytes.len() + data.len();
        if need > self.bytes.capacity() {
            // Grow by an eighth rather than double: an idle console keeps what its boot printed
            // with little room to spare (thousands of them stay resident), and never more than
            // the cap. Still geometric, so appending stays amortised O(1).
            let target = (need + need / 8).clamp(need, self.cap);
            self.bytes.reserve_exact(target - self.bytes.len());
        }
        self.bytes.extend(data);
    }

    /// The last `n` lines: `n` newline-terminated lines plus the unfinished line after them (a
    /// prompt), oldest first. `n == 0` gives just the unfinished line.
    pub fn last_lines(&self, n: usize) -> Vec<u8> {
        let len = self.bytes.len();
        let partial_start = (0..len)
            .rev()
            .find(|&i| self.bytes[i] == b'\n')
            .map_or(0, |i| i + 1);
        let mut start = partial_start;
        if n > 0 {
            start = 0;
            let mut found = 0usize;
            for i in (0..partial_start.saturating_sub(1)).rev() {
                if self.bytes[i] == b'\n' {
                    found += 1;
                    if found == n {
                        start = i + 1;
                        break;
                    }
                }
            }
        }
        self.bytes.range(start..).copied().collect()
    }

    /// Whether the buffer holds exactly `bytes`.
    pub fn holds(&self, bytes: &[u8]) -> bool {
        let (a, b) = self.bytes.as_slices();
        bytes.len() == a.len() + b.len()
            && bytes.get(..a.len()) == Some(a)
            && bytes.get(a.len()..) == Some(b)
    }

    /// Empty the buffer and give its memory back (the cap stays).
    pub fn release(&mut self) {
        self.bytes = VecDeque::new();
    }

    /// Bytes of memory the buffer holds for its content.
    pub fn capacity(&self) -> usize {
        self.bytes.capacity()
    }

    /// The most bytes the buffer keeps.
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Bytes currently held.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// True if nothing is held.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_compares_the_whole_content_across_the_ring_edge() {
        let mut t = TailBuffer::new(8);
        t.push(b"abcdef");
        t.push(b"ghij"); // wraps: the deque's two slices
        assert!(t.holds(b"cdefghij"));
        assert!(!t.holds(b"cdefghi"));
        assert!(!t.holds(b"cdefghiX"));
        assert!(!t.holds(b"Xcdefghij"));
        t.release();
        assert!(t.is_empty() && t.holds(b""));
        t.push(b"after");
        assert!(t.holds(b"after"));
    }

    #[test]
    fn last_lines_counts_from_the_end() {
        let mut t = TailBuffer::new(1024);
        t.push(b"one\r\ntwo\r\nthree\r\nlogin: ");
        assert_eq!(t.last_lines(1), b"three\r\nlogin: ");
        assert_eq!(t.last_lines(2), b"two\r\nthree\r\nlogin: ");
        assert_eq!(t.last_lines(10), b"one\r\ntwo\r\nthree\r\nlogin: ");
        assert_eq!(t.last_lines(0), b"login: ");
        let mut u = TailBuffer::new(1024);
        u.push(b"a\nb\n");
        assert_eq!(u.last_lines(1), b"b\n");
        assert_eq!(u.last_lines(2), b"a\nb\n");
        assert_eq!(u.last_lines(0), b"");
    }

    #[test]
    fn holds_little_more_than_its_bytes_and_never_more_than_its_cap() {
        // A boot's worth of output in line-sized pieces: kept with at most an eighth to spare.
        let mut t = TailBuffer::new(32 * 1024);
        let line = b"[    0.123456] systemd[1]: Started some service of the machine.\r\n";
        for _ in 0..90 {
            t.push(line);
        }
        assert_eq!(t.len(), 90 * line.len());
        assert!(
            t.bytes.capacity() <= t.len() + t.len() / 8 + line.len(),
            "{} bytes held in {}",
            t.len(),
            t.bytes.capacity()
        );
        // A flood: the buffer stops at its cap and stays there.
        for _ in 0..2000 {
            t.push(line);
        }
        assert_eq!(t.len(), 32 * 1024);
        assert_eq!(t.bytes.capacity(), 32 * 1024);
        assert!(t.last_lines(1).ends_with(line));
    }

    #[test]
    fn cap_drops_oldest() {
        let mut t = TailBuffer::new(8);
        t.push(b"0123456789");
        assert_eq!(t.len(), 8);
        t.push(b"ab");
        assert_eq!(t.last_lines(5), b"456789ab");
    }
}
