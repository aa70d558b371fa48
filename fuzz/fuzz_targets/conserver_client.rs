//! Fuzz what a conserver `console` client sends to mo's conserver door
//! (`mo_core::door::conserver`): IAC unquoting, line mode, commands and the escape machine of an
//! attached client. Never a panic; the same results however the bytes are split; quoting then
//! unquoting gives the bytes back; a line is never longer than the limit.
//!
//! Input: the first byte picks where to split the rest and whether the viewer may write.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mo_core::door::conserver::{Key, Keys, LineReader, MAX_LINE, Request, Unquote, quote};

fn lines(chunks: &[&[u8]]) -> (Vec<String>, bool) {
    let mut unquote = Unquote::default();
    let mut reader = LineReader::default();
    let mut out = Vec::new();
    for chunk in chunks {
        reader.push(&unquote.feed(chunk));
        loop {
            match reader.next_line() {
                Ok(Some(line)) => {
                    assert!(line.len() <= MAX_LINE * 3, "line of {} bytes", line.len());
                    let _ = Request::parse(&line);
                    out.push(line);
                }
                Ok(None) => break,
                Err(e) => {
                    assert!(e.reason.contains("line too long"), "{e}");
                    return (out, true);
                }
            }
        }
    }
    (out, false)
}

fn keys(chunks: &[&[u8]], may_write: bool) -> Vec<Key> {
    let mut unquote = Unquote::default();
    let mut keys = Keys::new(0x05, b'c');
    keys.set_may_write(may_write);
    let mut out = Vec::new();
    for chunk in chunks {
        out.extend(keys.feed(&unquote.feed(chunk)));
    }
    // Consecutive device bytes may come in one piece or several: join them to compare.
    let mut joined: Vec<Key> = Vec::new();
    for key in out {
        match (joined.last_mut(), key) {
            (Some(Key::Data(a)), Key::Data(b)) => a.extend(b),
            (Some(Key::Reply(a)), Key::Reply(b)) => a.extend(b),
            (_, key) => joined.push(key),
        }
    }
    joined
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let at = usize::from(first).min(rest.len());
    let (a, b) = rest.split_at(at);

    let whole = lines(&[rest]);
    let split = lines(&[a, b]);
    if !whole.1 && !split.1 {
        assert_eq!(whole, split);
    }

    let may_write = first & 1 == 1;
    assert_eq!(keys(&[rest], may_write), keys(&[a, b], may_write));

    assert_eq!(Unquote::default().feed(&quote(rest)), rest);
});
