//! The ANSI stripper: removes terminal escape sequences and control characters from console
//! output, keeping the text and the line ends.
//!
//! It is a state machine with no buffer (runs of plain text are skipped sixteen bytes at a
//! time), so a sequence split across any number of [`AnsiStripper::feed`] calls is removed
//! exactly as if it had arrived whole. It recognises:
//!
//! - CSI sequences (`ESC [` parameters, intermediates, final byte: colours, cursor movement),
//! - string sequences ended by BEL or ST (`ESC \`): OSC (`ESC ]`, window titles, hyperlinks),
//!   DCS (`ESC P`), SOS (`ESC X`), PM (`ESC ^`) and APC (`ESC _`),
//! - `ESC` with intermediates and a final byte (charset selects such as `ESC ( B`, `ESC # 8`),
//! - two-byte escapes (`ESC 7`, `ESC M`, `ESC =`, …).
//!
//! CR and LF both end a line ([`Piece::LineEnd`]); a CR LF pair therefore ends a line and then an
//! empty one, which the line assembler ignores. TAB is kept; NUL, BEL, BS, DEL and the other C0
//! controls are dropped. CAN and SUB abort a sequence. A line end inside a CSI or escape aborts the
//! sequence and still ends the line, so a broken sequence never swallows a line. A CSI longer than
//! [`MAX_CSI_LEN`] or a string longer than [`MAX_STRING_LEN`] is abandoned (the rest is text), so a
//! missing terminator cannot hide the output for ever.

/// The longest CSI sequence (after `ESC [`) before it is abandoned.
pub const MAX_CSI_LEN: usize = 64;
/// The longest OSC/DCS/SOS/PM/APC string before it is abandoned.
pub const MAX_STRING_LEN: usize = 4096;

/// Runs of text up to this long are copied as one block (see [`AnsiStripper::strip_into`]).
const SHORT_RUN: usize = 16;

const ESC: u8 = 0x1b;
const BEL: u8 = 0x07;
const CAN: u8 = 0x18;
const SUB: u8 = 0x1a;
const TAB: u8 = b'\t';
const DEL: u8 = 0x7f;

/// A piece of stripped output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece<'a> {
    /// Text with no escape sequences and no control characters but TAB.
    Text(&'a [u8]),
    /// A CR or an LF.
    LineEnd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Plain text.
    Ground,
    /// After `ESC`.
    Escape,
    /// After `ESC` and one or more intermediate bytes (`ESC (`).
    EscapeIntermediate,
    /// Inside `ESC [ …`.
    Csi,
    /// Inside an OSC/DCS/SOS/PM/APC string.
    String,
    /// After `ESC` inside a string: `\` ends it.
    StringEscape,
}

/// Removes escape sequences and control characters from a byte stream: the text a pattern is
/// matched against, with CSI, OSC and other escape sequences left out (even across chunks).
#[derive(Debug, Clone)]
pub struct AnsiStripper {
    state: State,
    /// Bytes consumed by the current sequence, to bound it.
    seq_len: usize,
}

impl Default for AnsiStripper {
    fn default() -> Self {
        Self::new()
    }
}

/// Whether `b` is kept as text in the ground state.
fn is_text(b: u8) -> bool {
    (b >= 0x20 && b != DEL) || b == TAB
}

/// Whether `b` is not kept as text in the ground state (the negation of [`is_text`], written
/// with no branch so that a loop over a block compiles to SIMD compares).
fn not_text(b: u8) -> bool {
    ((b < 0x20) & (b != TAB)) | (b == DEL)
}

/// Whether `b` is neither text nor a line end.
fn not_plain(b: u8) -> bool {
    not_text(b) & (b != b'\r') & (b != b'\n')
}

/// Whether any byte of `block` is `bad`, testing every byte (no early exit: SIMD).
fn any_in(block: &[u8], bad: fn(u8) -> bool) -> bool {
    block.iter().fold(0u8, |acc, &b| acc | u8::from(bad(b))) != 0
}

/// The length of the run of text bytes (see [`is_text`]) at the start of `bytes`, found sixteen
/// bytes at a time: output with no escape or control byte costs about a `memchr`.
pub(super) fn text_run(bytes: &[u8]) -> usize {
    const BLOCK: usize = 16;
    // Runs between colour sequences are often a word: look at the first bytes one by one.
    let head = bytes.len().min(BLOCK);
    if let Some(end) = bytes
        .get(..head)
        .and_then(|h| h.iter().position(|&b| not_text(b)))
    {
        return end;
    }
    let mut done = head;
    for block in bytes.get(head..).unwrap_or_default().chunks_exact(BLOCK) {
        if any_in(block, not_text) {
            break;
        }
        done += BLOCK;
    }
    let rest = bytes.get(done..).unwrap_or_default();
    done + rest.iter().position(|&b| not_text(b)).unwrap_or(rest.len())
}

/// The length of the CSI sequence at the start of `bytes` (`ESC [`, at most [`MAX_CSI_LEN`]
/// parameter and intermediate bytes, a final byte) if it is all there: what the state machine
/// would consume for it, ending in the ground state.
fn whole_csi(bytes: &[u8]) -> Option<usize> {
    let rest = bytes.strip_prefix(&[ESC, b'['])?;
    let params = rest
        .iter()
        .take(MAX_CSI_LEN)
        .take_while(|b| (0x20..=0x3f).contains(*b))
        .count();
    let last = *rest.get(params)?;
    (0x40..=0x7e).contains(&last).then_some(2 + params + 1)
}

/// Whether `bytes` holds nothing the stripper would remove or turn into a line end but CR and
/// LF: only text bytes, CR and LF (tested 32 bytes at a time).
pub(super) fn is_plain(bytes: &[u8]) -> bool {
    const BLOCK: usize = 32;
    let mut blocks = bytes.chunks_exact(BLOCK);
    for block in &mut blocks {
        if any_in(block, not_plain) {
            return false;
        }
    }
    !any_in(blocks.remainder(), not_plain)
}

impl AnsiStripper {
    /// A stripper in the ground state.
    pub fn new() -> Self {
        AnsiStripper {
            state: State::Ground,
            seq_len: 0,
        }
    }

    /// Whether the stripper is inside an escape sequence (waiting for more bytes of it).
    pub fn in_sequence(&self) -> bool {
        self.state != State::Ground
    }

    /// Strips `input`, calling `emit` for each run of text and each line end, in order. Runs of
    /// text are slices of `input`: nothing is allocated.
    pub fn feed<'a>(&mut self, input: &'a [u8], mut emit: impl FnMut(Piece<'a>)) {
        let mut i = 0;
        while let Some(&b) = input.get(i) {
            match self.state {
                State::Ground => {
                    if is_text(b) {
                        let rest = input.get(i..).unwrap_or_default();
                        let len = text_run(rest);
                        if let Some(run) = rest.get(..len) {
                            emit(Piece::Text(run));
                        }
                        i += len;
                        continue;
                    }
                    match b {
                        b'\n' | b'\r' => emit(Piece::LineEnd),
                        ESC => {
                            // A whole CSI (colours) in one go; anything else through the states.
                            if let Some(len) = whole_csi(input.get(i..).unwrap_or_default()) {
                                i += len;
                                continue;
                            }
                            self.enter(State::Escape);
                        }
                        _ => {}
                    }
                }
                State::Escape => match b {
                    b'[' => self.enter(State::Csi),
                    b']' | b'P' | b'X' | b'^' | b'_' => self.enter(State::String),
                    0x20..=0x2f => self.enter(State::EscapeIntermediate),
                    0x30..=0x7e => self.state = State::Ground,
                    ESC => {}
                    CAN | SUB => self.state = State::Ground,
                    _ => {
                        // Not an escape after all: let the ground state have this byte.
                        self.state = State::Ground;
                        continue;
                    }
                },
                State::EscapeIntermediate => match b {
                    0x20..=0x2f if self.seq_len < MAX_CSI_LEN => self.seq_len += 1,
                    0x30..=0x7e => self.state = State::Ground,
                    ESC => self.enter(State::Escape),
                    _ => {
                        self.state = State::Ground;
                        continue;
                    }
                },
                State::Csi => match b {
                    // Parameters and intermediates: skip the whole run at once.
                    0x20..=0x3f if self.seq_len < MAX_CSI_LEN => {
                        let room = MAX_CSI_LEN - self.seq_len;
                        let run = input
                            .get(i..)
                            .unwrap_or_default()
                            .iter()
                            .take(room)
                            .take_while(|b| (0x20..=0x3f).contains(*b))
                            .count();
                        self.seq_len += run;
                        i += run;
                        continue;
                    }
                    0x20..=0x3f if self.seq_len < MAX_CSI_LEN => self.seq_len += 1,
                    0x40..=0x7e => self.state = State::Ground,
                    ESC => self.enter(State::Escape),
                    CAN | SUB => self.state = State::Ground,
                    _ => {
                        self.state = State::Ground;
                        continue;
                    }
                },
                State::String => match b {
                    BEL | CAN | SUB => self.state = State::Ground,
                    ESC => self.state = State::StringEscape,
                    _ if self.seq_len < MAX_STRING_LEN => self.seq_len += 1,
                    _ => {
                        self.state = State::Ground;
                        continue;
                    }
                },
                State::StringEscape => match b {
                    b'\\' => self.state = State::Ground,
                    _ => {
                        // ESC followed by something else ends the string and starts a new escape.
                        self.enter(State::Escape);
                        continue;
                    }
                },
            }
            i += 1;
        }
    }

    /// Strips `input` whole into a new vector, line ends as `\n`. A convenience for tests and tools;
    /// the stripper's state carries over to the next call.
    pub fn strip(&mut self, input: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        self.strip_into(input, &mut out);
        out
    }

    /// Strips `input`, appending its text to `out` and a `\n` for each line end (CR or LF): what
    /// [`AnsiStripper::feed`] emits, in one buffer. The state carries over to the next call.
    pub fn strip_into(&mut self, input: &[u8], out: &mut Vec<u8>) {
        // Stripping never makes output longer than its input: the text is written into room
        // made for all of it (and a block to spare), then the room left over is cut off.
        let start = out.len();
        out.resize(start + input.len() + SHORT_RUN, 0);
        let room = out.get_mut(start..).unwrap_or_default();
        let mut w = 0;
        let base = input.as_ptr() as usize;
        self.feed(input, |piece| match piece {
            Piece::Text(text) => {
                // Runs between colour sequences are mostly a word: copied as one block of
                // SHORT_RUN bytes (the room past the run is overwritten next), not through a
                // call to `memcpy`, which costs more than the copy for a few bytes.
                let at = (text.as_ptr() as usize).wrapping_sub(base);
                let block = |from: &[u8], at: usize| -> Option<[u8; SHORT_RUN]> {
                    from.get(at..at.checked_add(SHORT_RUN)?)?.try_into().ok()
                };
                let short = text.len() <= SHORT_RUN;
                match (short.then(|| block(input, at)).flatten(), room.get_mut(w..)) {
                    (Some(src), Some(dst)) if dst.len() >= SHORT_RUN => {
                        if let Some(dst) = dst.first_chunk_mut::<SHORT_RUN>() {
                            *dst = src;
                        }
                    }
                    (_, Some(dst)) => {
                        if let Some(dst) = dst.get_mut(..text.len()) {
                            dst.copy_from_slice(text);
                        }
                    }
                    (_, None) => {}
                }
                w += text.len();
            }
            Piece::LineEnd => {
                if let Some(d) = room.get_mut(w) {
                    *d = b'\n';
                }
                w += 1;
            }
        });
        out.truncate(start + w);
    }

    fn enter(&mut self, state: State) {
        self.state = state;
        self.seq_len = 0;
    }
}
