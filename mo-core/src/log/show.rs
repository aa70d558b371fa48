//! `mo log show`: a device's log rendered as text, once or following new records.

use std::collections::VecDeque;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::log::follow::{FollowOptions, FollowStart, Follower};
use crate::log::format::Record;
use crate::log::reader::{self, ReadOptions};
use crate::log::render::Renderer;
use crate::record::RecordKind;

/// Records shown by [`show_follow`] before following when no start is given, like `tail -f`.
pub const DEFAULT_FOLLOW_TAIL: usize = 10;

/// Which records [`show`] renders. The default is all of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShowOptions {
    /// Only records at or after this time (ns since the Unix epoch; see
    /// [`crate::log::parse_time_spec`]).
    pub since: Option<u64>,
    /// Only records before this time (ns since the Unix epoch).
    pub until: Option<u64>,
    /// Start at this sequence number.
    pub from_seq: Option<u64>,
    /// Only the last this many of the selected records.
    pub tail: Option<usize>,
    /// Only these kinds (all when empty).
    pub kinds: Vec<RecordKind>,
    /// Show typed input as `<input hidden>` (a reader without `log.read_input`).
    pub hide_input: bool,
}

impl ShowOptions {
    fn wants(&self, r: &Record) -> bool {
        (self.kinds.is_empty() || self.kinds.contains(&r.kind))
            && self.since.is_none_or(|s| r.time_ns >= s)
            && self.until.is_none_or(|u| r.time_ns < u)
            && self.from_seq.is_none_or(|f| r.seq >= f)
    }
}

fn write_err(e: std::io::Error) -> Error {
    Error::io("write rendered log", e)
}

/// Render the records of the device directory `dir` selected by `opts` to `out`; returns how many
/// records were rendered.
pub fn show(dir: &Path, opts: &ShowOptions, out: &mut dyn Write) -> Result<u64> {
    let mut renderer = Renderer::new().hiding_input(opts.hide_input);
    let mut count = 0;
    let plain = opts.since.is_none()
        && opts.until.is_none()
        && opts.from_seq.is_none()
        && opts.kinds.is_empty();
    match opts.tail {
        Some(n) if plain => {
            for r in reader::tail(dir, n)? {
                renderer.render(&r, out).map_err(write_err)?;
                count += 1;
            }
        }
        tail => {
            let read_opts = ReadOptions {
                from_seq: opts.from_seq,
                since: opts.since,
                until: opts.until,
            };
            let mut last: VecDeque<Record> = VecDeque::new();
            for r in reader::read(dir, &read_opts)? {
                let r = r?;
                if !opts.wants(&r) {
                    continue;
                }
                match tail {
                    Some(0) => {}
                    Some(n) => {
                        if last.len() == n {
                            last.pop_front();
                        }
                        last.push_back(r);
                    }
                    None => {
                        renderer.render(&r, out).map_err(write_err)?;
                        count += 1;
                    }
                }
            }
            for r in &last {
                renderer.render(r, out).map_err(write_err)?;
                count += 1;
            }
        }
    }
    renderer.flush_partial(out).map_err(write_err)?;
    out.flush().map_err(write_err)?;
    Ok(count)
}

/// Render like [`show`], then keep rendering records as they are appended. Without `since`,
/// `from_seq` or `tail` it starts with the last [`DEFAULT_FOLLOW_TAIL`] records. Runs until an
/// error, or until a record at or after `until` arrives; returns how many records were rendered.
/// Looks for new records every `poll_interval`; partial lines are written out whenever the log
/// goes quiet.
pub async fn show_follow(
    dir: &Path,
    opts: &ShowOptions,
    poll_interval: Duration,
    out: &mut (dyn Write + Send),
) -> Result<u64> {
    let start = match (opts.tail, opts.from_seq, opts.since) {
        (Some(n), _, _) => FollowStart::Tail(n),
        (None, Some(seq), _) => FollowStart::Seq(seq),
        (None, None, Some(t)) => FollowStart::Since(t),
        (None, None, None) => FollowStart::Tail(DEFAULT_FOLLOW_TAIL),
    };
    let mut follower = Follower::new(
        dir,
        FollowOptions {
            start,
            poll_interval,
        },
    )?;
    let mut renderer = Renderer::new().hiding_input(opts.hide_input);
    let mut count = 0;
    loop {
        let Some(r) = follower.try_next()? else {
            renderer.flush_partial(out).map_err(write_err)?;
            out.flush().map_err(write_err)?;
            tokio::time::sleep(poll_interval).await;
            continue;
        };
        if opts.until.is_some_and(|u| r.time_ns >= u) {
            renderer.flush_partial(out).map_err(write_err)?;
            out.flush().map_err(write_err)?;
            return Ok(count);
        }
        let wanted = (opts.kinds.is_empty() || opts.kinds.contains(&r.kind))
            && opts.since.is_none_or(|s| r.time_ns >= s);
        if wanted {
            renderer.render(&r, out).map_err(write_err)?;
            count += 1;
        }
    }
}
