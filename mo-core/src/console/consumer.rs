//! The consumers of a console's timeline, and the bounded kind in particular.
//!
//! Everything a console produces — output, input, notices, notes, events — is one timeline of
//! [`Chunk`]s. The actor hands each chunk to its consumers, in this order (see `hub.rs`):
//!
//! 1. **The record log** ([`RecordSink`], given in [`Consumers::log`]): sees every chunk, is the
//!    only consumer that may slow the link, and never skips. When it cannot write, the console
//!    goes on degraded and the log later records a gap saying what it lost.
//! 2. **Bounded consumers** ([`BoundedConsumer`], given in [`Consumers::bounded`]): the scanner
//!    today, replicators later. Each holds at most a fixed number of chunks (and, if given, bytes:
//!    [`bounded_consumer_bytes`]) and never makes the console wait: when its reader falls behind, chunks are skipped and **counted**, and the next
//!    chunk that gets through says how many bytes were skipped before it
//!    ([`Delivery::skipped_before`]), so the reader can say so (an event, a metric) and
//!    resynchronise (a scanner drops its partial line).
//! 3. **Viewers** ([`super::Session`], and [`super::Console::subscribe`]): each reads the shared
//!    ring at its own cursor; one that falls behind is told how much it missed and continues from
//!    the oldest chunk still held. The ring also keeps the recent output that is replayed to a
//!    viewer when it connects.
//!
//! ```
//! use std::sync::Arc;
//! use mo_core::console::{Console, ConsoleConfig, Consumers, Follow, bounded_consumer};
//! use mo_core::link::EchoConnector;
//!
//! # let rt = tokio::runtime::Runtime::new().unwrap();
//! # rt.block_on(async {
//! let (consumer, mut feed) = bounded_consumer(64, Follow::Output);
//! let console = Console::spawn_with(
//!     ConsoleConfig::new("web01"),
//!     Arc::new(EchoConnector),
//!     Consumers::new().bounded(consumer),
//! );
//! # drop(console);
//! # drop(feed.skipped_total());
//! # });
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

use crate::record::{Chunk, RecordKind, RecordSink};

/// Chunks a bounded consumer holds by default before it skips.
pub const DEFAULT_CONSUMER_CAPACITY: usize = 256;

/// What a held chunk costs a byte-bounded consumer besides its payload (its bookkeeping), so that
/// a flood of tiny chunks is bounded too.
pub const CHUNK_OVERHEAD: usize = 64;

/// Which chunks of the timeline a bounded consumer follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Follow {
    /// The device's output only (a scanner). Skips are counted in output bytes.
    Output,
    /// Every chunk of the timeline (a replicator). Skips are counted in payload bytes.
    Timeline,
}

impl Follow {
    fn wants(self, kind: RecordKind) -> bool {
        match self {
            Follow::Output => kind == RecordKind::Output,
            Follow::Timeline => true,
        }
    }
}

/// One chunk handed to a bounded consumer.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The chunk, as the record log and the viewers got it.
    pub chunk: Chunk,
    /// Bytes skipped just before this chunk because the consumer was behind (0 normally).
    pub skipped_before: u64,
}

/// The console's end of a bounded consumer (give it to [`Consumers::bounded`]).
#[derive(Debug)]
pub struct BoundedConsumer {
    tx: mpsc::Sender<Delivery>,
    follow: Follow,
    pending_skip: u64,
    skipped: Arc<AtomicU64>,
    /// Bytes held (payload plus [`CHUNK_OVERHEAD`] per chunk), shared with the feed.
    held: Arc<AtomicUsize>,
    max_bytes: usize,
}

/// The reader's end of a bounded consumer.
#[derive(Debug)]
pub struct ConsumerFeed {
    rx: mpsc::Receiver<Delivery>,
    skipped: Arc<AtomicU64>,
    held: Arc<AtomicUsize>,
}

/// A bounded consumer following `follow`, holding at most `capacity` chunks (at least 1).
pub fn bounded_consumer(capacity: usize, follow: Follow) -> (BoundedConsumer, ConsumerFeed) {
    consumer(capacity, usize::MAX, follow)
}

/// A bounded consumer following `follow` that holds at most `max_bytes` (payload plus
/// [`CHUNK_OVERHEAD`] per chunk; at least one chunk always fits): a burst of output is held
/// whole whatever size its chunks are, and memory stays bounded however small they are.
pub fn bounded_consumer_bytes(max_bytes: usize, follow: Follow) -> (BoundedConsumer, ConsumerFeed) {
    consumer(max_bytes / CHUNK_OVERHEAD + 1, max_bytes, follow)
}

fn consumer(chunks: usize, max_bytes: usize, follow: Follow) -> (BoundedConsumer, ConsumerFeed) {
    let (tx, rx) = mpsc::channel(chunks.max(1));
    let skipped = Arc::new(AtomicU64::new(0));
    let held = Arc::new(AtomicUsize::new(0));
    (
        BoundedConsumer {
            tx,
            follow,
            pending_skip: 0,
            skipped: skipped.clone(),
            held: held.clone(),
            max_bytes,
        },
        ConsumerFeed { rx, skipped, held },
    )
}

fn cost(chunk: &Chunk) -> usize {
    chunk.bytes.len().saturating_add(CHUNK_OVERHEAD)
}

impl BoundedConsumer {
    /// Offer `chunk` (ignored unless the consumer follows its kind); never waits. A full
    /// consumer skips it and counts its bytes.
    pub fn offer(&mut self, chunk: &Chunk) {
        if !self.follow.wants(chunk.kind) || self.tx.is_closed() {
            return;
        }
        let cost = cost(chunk);
        let held = self.held.load(Ordering::Acquire);
        if held > 0 && held.saturating_add(cost) > self.max_bytes {
            self.skip(chunk);
            return;
        }
        let item = Delivery {
            chunk: chunk.clone(),
            skipped_before: self.pending_skip,
        };
        // Counted before it is sent, so the feed never takes away more than was added.
        self.held.fetch_add(cost, Ordering::AcqRel);
        match self.tx.try_send(item) {
            Ok(()) => self.pending_skip = 0,
            Err(TrySendError::Full(item)) => {
                self.held.fetch_sub(cost, Ordering::AcqRel);
                self.skip(&item.chunk);
            }
            Err(TrySendError::Closed(_)) => {
                self.held.fetch_sub(cost, Ordering::AcqRel);
            }
        }
    }

    fn skip(&mut self, chunk: &Chunk) {
        let n = chunk.bytes.len() as u64;
        self.pending_skip += n;
        self.skipped.fetch_add(n, Ordering::Relaxed);
    }

    /// Whether the reader has gone (the console forgets such consumers).
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

impl ConsumerFeed {
    /// The next chunk; `None` once the console has stopped and everything was taken.
    pub async fn recv(&mut self) -> Option<Delivery> {
        let item = self.rx.recv().await?;
        self.held.fetch_sub(cost(&item.chunk), Ordering::AcqRel);
        Some(item)
    }

    /// Bytes held for this reader right now (payload plus [`CHUNK_OVERHEAD`] per chunk).
    pub fn held_bytes(&self) -> usize {
        self.held.load(Ordering::Acquire)
    }

    /// Bytes skipped so far because this consumer was behind.
    pub fn skipped_total(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }

    /// A shared counter of [`ConsumerFeed::skipped_total`] (for metrics read elsewhere).
    pub fn skipped_counter(&self) -> Arc<AtomicU64> {
        self.skipped.clone()
    }
}

/// The consumers a console starts with besides its viewers: the record log and any bounded
/// consumers ([`super::Console::spawn_with`]).
#[derive(Default)]
pub struct Consumers {
    pub(super) log: Option<Box<dyn RecordSink>>,
    pub(super) bounded: Vec<BoundedConsumer>,
}

impl std::fmt::Debug for Consumers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumers")
            .field("log", &self.log.is_some())
            .field("bounded", &self.bounded.len())
            .finish()
    }
}

impl Consumers {
    /// No record log and no bounded consumer.
    pub fn new() -> Self {
        Consumers::default()
    }

    /// Keep the record log in `sink`: it gets every chunk first and never skips.
    pub fn log(mut self, sink: Box<dyn RecordSink>) -> Self {
        self.log = Some(sink);
        self
    }

    /// [`Consumers::log`] when `sink` is `Some`.
    pub fn maybe_log(mut self, sink: Option<Box<dyn RecordSink>>) -> Self {
        self.log = sink;
        self
    }

    /// Add a bounded consumer (see [`bounded_consumer`]).
    pub fn bounded(mut self, consumer: BoundedConsumer) -> Self {
        self.bounded.push(consumer);
        self
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn chunk(kind: RecordKind, n: usize) -> Chunk {
        Chunk {
            seq: 1,
            time_ns: 0,
            kind,
            user: "".into(),
            offset: 0,
            bytes: vec![b'x'; n].into(),
        }
    }

    fn out(n: usize) -> Chunk {
        chunk(RecordKind::Output, n)
    }

    #[tokio::test]
    async fn a_full_consumer_skips_counts_and_says_so_on_the_next_chunk() {
        let (mut tap, mut rx) = bounded_consumer(2, Follow::Output);
        tap.offer(&out(1));
        tap.offer(&out(2));
        tap.offer(&out(30)); // full: skipped
        tap.offer(&out(40)); // full: skipped
        assert_eq!(rx.skipped_total(), 70);
        assert_eq!(rx.recv().await.map(|i| i.skipped_before), Some(0));
        assert_eq!(rx.recv().await.map(|i| i.chunk.bytes.len()), Some(2));
        tap.offer(&out(5));
        let next = rx.recv().await;
        assert_eq!(next.as_ref().map(|i| i.skipped_before), Some(70));
        assert_eq!(next.map(|i| i.chunk.bytes.len()), Some(5));
        tap.offer(&out(6));
        assert_eq!(rx.recv().await.map(|i| i.skipped_before), Some(0));
    }

    #[tokio::test]
    async fn a_byte_bounded_consumer_holds_a_burst_of_tiny_chunks_and_skips_past_its_bytes() {
        let (mut tap, mut rx) = bounded_consumer_bytes(100 * (CHUNK_OVERHEAD + 2), Follow::Output);
        for _ in 0..100 {
            tap.offer(&out(2));
        }
        assert_eq!(rx.skipped_total(), 0, "a hundred tiny chunks fit");
        assert_eq!(rx.held_bytes(), 100 * (CHUNK_OVERHEAD + 2));
        tap.offer(&out(2));
        assert_eq!(rx.skipped_total(), 2, "the next one does not");
        for _ in 0..100 {
            assert_eq!(rx.recv().await.map(|i| i.skipped_before), Some(0));
        }
        assert_eq!(rx.held_bytes(), 0);
        // One chunk larger than the whole budget still goes through when nothing is held.
        tap.offer(&out(100_000));
        let next = rx.recv().await;
        assert_eq!(next.as_ref().map(|i| i.skipped_before), Some(2));
        assert_eq!(next.map(|i| i.chunk.bytes.len()), Some(100_000));
    }

    #[tokio::test]
    async fn an_output_consumer_ignores_the_rest_of_the_timeline() {
        let (mut tap, mut rx) = bounded_consumer(1, Follow::Output);
        tap.offer(&chunk(RecordKind::Notice, 3));
        tap.offer(&chunk(RecordKind::Input, 4));
        tap.offer(&out(5));
        assert_eq!(rx.skipped_total(), 0);
        assert_eq!(rx.recv().await.map(|i| i.chunk.bytes.len()), Some(5));
    }

    #[tokio::test]
    async fn a_timeline_consumer_gets_every_kind() {
        let (mut tap, mut rx) = bounded_consumer(4, Follow::Timeline);
        tap.offer(&chunk(RecordKind::Notice, 3));
        tap.offer(&chunk(RecordKind::Input, 4));
        tap.offer(&out(5));
        for kind in [RecordKind::Notice, RecordKind::Input, RecordKind::Output] {
            assert_eq!(rx.recv().await.map(|i| i.chunk.kind), Some(kind));
        }
    }

    #[tokio::test]
    async fn a_dropped_feed_costs_nothing() {
        let (mut tap, rx) = bounded_consumer(1, Follow::Output);
        drop(rx);
        tap.offer(&out(10));
        tap.offer(&out(10));
        assert_eq!(tap.pending_skip, 0);
        assert!(tap.is_closed());
    }
}
