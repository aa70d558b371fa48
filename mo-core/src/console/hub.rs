//! The hub: where each piece of a console's timeline goes, once, in order — the record log
//! first (it never skips; see `recorder.rs`), then the bounded consumers (they never wait; see
//! [`super::consumer`]), then the viewers' ring and the replay buffer. The producer never waits on
//! anyone but the log.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;

use super::consumer::{BoundedConsumer, Consumers};
use super::quiet::QuietLook;
use super::recorder::Recorder;
use super::{ConsoleConfig, LogHealth};
use crate::error::{Error, Result};
use crate::log::format::{MAX_PAYLOAD_LEN, MAX_USER_LEN};
use crate::record::{Chunk, RecordKind, now_ns};
use crate::tail::TailBuffer;

/// How long a console's output must be quiet before its replay buffer is given up to the record
/// log (one to two times this: the look is made once per period).
pub(super) const TAIL_QUIET: std::time::Duration = std::time::Duration::from_secs(2);

/// How many bytes of a released tail are read back per line a replay asks for, at first (more
/// if the lines are longer).
const REPLAY_LINE_GUESS: usize = 1024;

/// What a viewer gets when it joins the ring: its cursor, the replayed lines and the output offset
/// they end at.
pub(super) struct Joined {
    pub(super) rx: broadcast::Receiver<Arc<Chunk>>,
    pub(super) replay: Bytes,
    pub(super) offset: u64,
}

pub(super) struct Hub {
    name: Arc<str>,
    recorder: Recorder,
    bounded: Vec<BoundedConsumer>,
    /// The viewers' ring (made when the first viewer or subscriber joins).
    ring: Option<broadcast::Sender<Arc<Chunk>>>,
    ring_capacity: usize,
    /// Recent output, replayed to viewers when they connect.
    tail: TailBuffer,
    /// Output bytes the tail gave up to the record log (0: the tail holds its output itself):
    /// the last `released` bytes of output are in the log's live segment, and the tail holds
    /// none. Output the log takes adds to them (up to the tail's cap); they are read back into
    /// the tail before an append that starts a new segment, or when the log fails to take output.
    released: usize,
    /// A full tail tries to give its bytes up to the log once the output offset reaches this
    /// (once per tail's worth of output, so a log that cannot give them back is not read for
    /// each chunk).
    release_at: u64,
    /// Whether output has been quiet long enough for the tail to give its bytes up to the log.
    quiet: QuietLook,
    /// The sequence number of the next chunk.
    seq: u64,
    /// Output bytes so far (the offset of the next output chunk).
    offset: u64,
    /// `offset`, for the console's handles ([`super::Console::output_offset`]).
    published: Arc<AtomicU64>,
    /// Output and notices are kept from the viewers (a console loop, see `loopguard.rs`).
    muted: bool,
}

impl Hub {
    pub(super) fn new(
        cfg: &ConsoleConfig,
        consumers: Consumers,
        health: watch::Sender<LogHealth>,
        published: Arc<AtomicU64>,
    ) -> Hub {
        let name: Arc<str> = Arc::from(cfg.name.as_str());
        let Consumers { log, bounded } = consumers;
        let recorder = Recorder::new(name.clone(), log, cfg.log_policy, health);
        Hub {
            seq: recorder.next_seq().unwrap_or(1),
            name,
            recorder,
            bounded,
            ring: None,
            ring_capacity: cfg.hub_capacity.max(2),
            tail: TailBuffer::new(cfg.tail_bytes),
            released: 0,
            release_at: 0,
            quiet: QuietLook::new(TAIL_QUIET),
            offset: 0,
            published,
            muted: false,
        }
    }

    /// Keep output and notices from the viewers (`true`) or deliver them again; the log and the
    /// bounded consumers get everything either way.
    pub(super) fn set_muted(&mut self, muted: bool) {
        self.muted = muted;
    }

    /// The sequence number the next chunk gets.
    pub(super) fn seq(&self) -> u64 {
        self.seq
    }

    /// Put one piece of the timeline to every consumer. Payloads larger than a record can hold
    /// are split into several records, never refused. Fails (after showing the chunk to viewers
    /// all the same) when the log could not write it.
    pub(super) fn emit(&mut self, kind: RecordKind, user: Arc<str>, bytes: Bytes) -> Result<u64> {
        self.emit_at(kind, user, bytes, None)
    }

    /// [`Hub::emit`] with the time the bytes were first read (`None`: now), for output a link
    /// carried from elsewhere ([`crate::link::LinkControl::origin_times`]).
    pub(super) fn emit_at(
        &mut self,
        kind: RecordKind,
        user: Arc<str>,
        mut bytes: Bytes,
        time_ns: Option<u64>,
    ) -> Result<u64> {
        let user = clamp_user(user);
        if bytes.len() <= MAX_PAYLOAD_LEN {
            return self.emit_one(kind, user, bytes, time_ns);
        }
        let mut result = Ok(0);
        while !bytes.is_empty() {
            let piece = bytes.split_to(bytes.len().min(MAX_PAYLOAD_LEN));
            let r = self.emit_one(kind, user.clone(), piece, time_ns);
            if result.is_ok() {
                result = r;
            }
        }
        result
    }

    /// A notice, then `records` into the log only, numbered on from the log's next sequence
    /// number but with their own times, kinds, users and bytes (see
    /// [`super::Console::append_recovered`]): the notice's and the last record's numbers.
    pub(super) fn append_recovered(
        &mut self,
        notice: String,
        records: Vec<crate::log::Record>,
    ) -> Result<(u64, u64)> {
        let first = self.emit(RecordKind::Notice, Arc::from(""), Bytes::from(notice))?;
        // The records hold output the tail never saw: the log's last output is not the tail's.
        self.reclaim_tail();
        let mut last = first;
        for record in records {
            let mut chunk = record.into_chunk(self.offset);
            chunk.seq = self.seq;
            chunk.user = clamp_user(chunk.user);
            last = self.record(&mut chunk)?;
        }
        Ok((first, last))
    }

    /// A notice into the timeline (a notice the log cannot take is still shown; the gap record
    /// counts it).
    pub(super) fn notice(&mut self, user: &str, text: String) {
        tracing::debug!(device = %self.name, "{text}");
        let _ = self.emit(RecordKind::Notice, Arc::from(user), Bytes::from(text));
    }

    fn emit_one(
        &mut self,
        kind: RecordKind,
        user: Arc<str>,
        bytes: Bytes,
        time_ns: Option<u64>,
    ) -> Result<u64> {
        let mut chunk = Chunk {
            seq: self.seq,
            time_ns: time_ns.unwrap_or_else(now_ns),
            kind,
            user,
            offset: self.offset,
            bytes,
        };
        let output = kind == RecordKind::Output;
        if output {
            self.offset += chunk.bytes.len() as u64;
            if self.recorder.is_some() {
                self.quiet.activity(Instant::now);
            }
        }
        let result = self.record(&mut chunk);
        if output {
            // Written, if not necessarily made durable: the log's next number is past it.
            let in_log = self
                .recorder
                .next_seq()
                .is_some_and(|next| next > chunk.seq);
            self.keep(&chunk.bytes, in_log);
            self.published.store(self.offset, Ordering::Relaxed);
        }
        self.deliver(chunk);
        result
    }

    /// The replay buffer takes an output chunk (`in_log`: the log has it after the released
    /// bytes). A full tail gives its bytes up to the log: a flooding console then keeps no copy
    /// of its last output in memory, only a count of the log's last bytes that are its tail.
    fn keep(&mut self, bytes: &[u8], in_log: bool) {
        if self.released > 0 {
            if in_log {
                self.released = (self.released + bytes.len()).min(self.tail.cap());
                return;
            }
            self.reclaim_tail();
        }
        self.tail.push(bytes);
        if self.tail.cap() > 0
            && self.tail.len() == self.tail.cap()
            && self.offset >= self.release_at
        {
            self.release_at = self.offset + self.tail.cap() as u64;
            self.release_tail();
        }
    }

    /// Hand `chunk` to the log: first the gap record of a degraded period that is due for a
    /// retry, then the chunk, which gets the log's next sequence number.
    fn record(&mut self, chunk: &mut Chunk) -> Result<u64> {
        if !self.recorder.is_some() {
            self.seq = chunk.seq + 1;
            return Ok(chunk.seq);
        }
        if self.recorder.retry_due() {
            self.recover();
        }
        // The released bytes must stay in the segment the log reads them back from.
        if self.released > 0 && self.recorder.starts_segment(chunk) {
            self.reclaim_tail();
        }
        let appended = self.recorder.append(chunk);
        self.seq = self.recorder.next_seq().unwrap_or(self.seq);
        appended.map_err(|failed| {
            if let Some(text) = failed.notice {
                self.viewer_notice(text);
            }
            failed.error
        })
    }

    /// Write the gap record of a degraded period; on success show it and say so.
    fn recover(&mut self) {
        // Before the log takes the gap record (a released tail is read back before any append).
        self.reclaim_tail();
        let gap = self.recorder.try_recover(self.offset);
        self.seq = self.recorder.next_seq().unwrap_or(self.seq);
        if let Some(gap) = gap {
            self.deliver(gap);
            // The notice goes into the log like any other now.
            self.notice("", "log: recording again".into());
        }
    }

    /// The consumers after the log: bounded ones, then the viewers.
    fn deliver(&mut self, chunk: Chunk) {
        if !self.bounded.is_empty() {
            self.bounded.retain(|c| !c.is_closed());
            for consumer in &mut self.bounded {
                consumer.offer(&chunk);
            }
        }
        if self.muted && matches!(chunk.kind, RecordKind::Output | RecordKind::Notice) {
            return;
        }
        if let Some(ring) = &self.ring {
            let _ = ring.send(Arc::new(chunk));
        }
    }

    /// A notice for the viewers only (the log cannot take it).
    pub(super) fn viewer_notice(&self, text: String) {
        if let Some(ring) = &self.ring {
            let _ = ring.send(Arc::new(Chunk {
                seq: self.seq,
                time_ns: now_ns(),
                kind: RecordKind::Notice,
                user: Arc::from(""),
                offset: self.offset,
                bytes: Bytes::from(text),
            }));
        }
    }

    fn ring(&mut self) -> &broadcast::Sender<Arc<Chunk>> {
        let cap = self.ring_capacity;
        self.ring.get_or_insert_with(|| broadcast::channel(cap).0)
    }

    /// A cursor on the ring from now on.
    pub(super) fn subscribe(&mut self) -> broadcast::Receiver<Arc<Chunk>> {
        self.ring().subscribe()
    }

    /// A viewer joins: its cursor and the last `lines` lines of output.
    pub(super) fn join(&mut self, lines: usize) -> Joined {
        Joined {
            rx: self.subscribe(),
            replay: self.last_lines(lines),
            offset: self.offset,
        }
    }

    /// The last `lines` lines of output (read back from the log if the tail gave them up: the
    /// tail stays empty, so a quiet console keeps no copy for viewers that come and go).
    pub(super) fn last_lines(&self, lines: usize) -> Bytes {
        if self.released == 0 {
            return Bytes::from(self.tail.last_lines(lines));
        }
        // Read back no more than the lines need: a few kilobytes for a prompt, not the whole
        // tail each time a caller looks at the last line.
        let mut want = self
            .released
            .min(REPLAY_LINE_GUESS.saturating_mul(lines.saturating_add(1)));
        loop {
            let back = self.read_back(want);
            let mut tail = TailBuffer::new(want);
            tail.push(&back);
            let found = tail.last_lines(lines);
            // Cut short of what was read: the lines were all in it.
            if found.len() < back.len() || want >= self.released || back.len() < want {
                return Bytes::from(found);
            }
            want = want.saturating_mul(4).min(self.released);
        }
    }

    /// The last `want` bytes of output, read back from the log (nothing if it cannot: said so).
    fn read_back(&self, want: usize) -> Vec<u8> {
        self.recorder.recent_output(want).unwrap_or_else(|| {
            tracing::warn!(
                device = %self.name,
                "the replay buffer cannot be read back from the record log: replays start afresh"
            );
            Vec::new()
        })
    }

    /// The console has been quiet for [`TAIL_QUIET`], or its tail is full: give the tail's bytes
    /// up to the record log if it gives exactly them back (a healthy log whose live segment holds
    /// them all), which frees the tail's memory — thousands of idle consoles each kept what their
    /// boot printed, and each flooding one a full tail.
    fn release_tail(&mut self) {
        // A degraded log may lack some of what the tail holds.
        if self.released > 0 || self.tail.is_empty() || self.recorder.degraded() {
            return;
        }
        let want = self.tail.len();
        if self
            .recorder
            .recent_output(want)
            .is_some_and(|back| self.tail.holds(&back))
        {
            let freed = self.tail.capacity();
            self.tail.release();
            self.released = want;
            crate::memory::released(freed);
        }
    }

    /// Put the bytes the tail gave up back into it (before an append that starts a new segment,
    /// or when the log did not take output).
    fn reclaim_tail(&mut self) {
        if self.released == 0 {
            return;
        }
        let back = self.read_back(self.released);
        self.released = 0;
        self.tail.push(&back);
    }

    /// When the hub wants to be woken: the log's retry or sync, the tail's quiet look.
    pub(super) fn deadline(&self) -> Option<Instant> {
        match (self.recorder.deadline(), self.quiet.at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The timer fired: retry a degraded log, sync one that is due, give a quiet console's tail
    /// up to the log.
    pub(super) fn on_timer(&mut self) {
        if self.recorder.retry_due() {
            self.recover();
        }
        self.sync_log();
        if self.quiet.at.is_some() && self.quiet.quiet(Instant::now()) {
            self.release_tail();
        }
    }

    /// Make what the log holds durable when its sync deadline has come.
    pub(super) fn sync_log(&mut self) {
        if let Some(text) = self.recorder.sync_if_due(self.seq, self.offset) {
            self.viewer_notice(text);
        }
    }

    /// Under the strict log policy, input is refused while the log cannot record it.
    pub(super) fn strict_refuses(&mut self) -> Option<Error> {
        if !self.recorder.strict() {
            return None;
        }
        if self.recorder.retry_due() {
            self.recover();
        }
        self.recorder.degraded().then(|| {
            self.recorder
                .unavailable("input refused (strict log policy)")
        })
    }

    /// Apply the log's retention limits now.
    pub(super) fn apply_retention(&mut self) -> Result<crate::log::Pruned> {
        self.recorder.apply_retention()
    }

    /// The console stops: make the log durable.
    pub(super) fn close(&mut self) {
        self.recorder.flush();
    }
}

/// A user name longer than a record can hold is cut (at a character boundary).
fn clamp_user(user: Arc<str>) -> Arc<str> {
    if user.len() <= MAX_USER_LEN {
        return user;
    }
    let mut end = MAX_USER_LEN;
    while !user.is_char_boundary(end) {
        end -= 1;
    }
    Arc::from(&user[..end])
}
