//! A bounded, lossy copy of a console's output for consumers that must never slow it down — the
//! scanner first of all.
//!
//! The record log is the one consumer that sees every byte and may slow the link. Everything else
//! that wants the whole output stream (not a viewer's "latest first" view) takes an [`OutputTap`]:
//! the console offers it every output chunk; when the consumer falls behind and the tap is full,
//! chunks are skipped and **counted**, and the next chunk that gets through says how many bytes
//! were skipped before it ([`TapItem::skipped_before`]), so the consumer can say so (an event, a
//! metric) and resynchronise (a scanner drops its partial line).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

use crate::record::Chunk;

/// Chunks a tap holds by default before it skips.
pub const DEFAULT_TAP_CAPACITY: usize = 256;

/// One output chunk from a tap.
#[derive(Debug, Clone)]
pub struct TapItem {
    /// The output chunk, as the record log and the viewers got it.
    pub chunk: Chunk,
    /// Output bytes skipped just before this chunk because the consumer was behind (0 normally).
    pub skipped_before: u64,
}

/// The console's end of a tap (give it to [`super::Console::spawn_tapped`]).
#[derive(Debug)]
pub struct OutputTap {
    tx: mpsc::Sender<TapItem>,
    pending_skip: u64,
    skipped: Arc<AtomicU64>,
}

/// The consumer's end of a tap.
#[derive(Debug)]
pub struct TapReceiver {
    rx: mpsc::Receiver<TapItem>,
    skipped: Arc<AtomicU64>,
}

/// A tap holding at most `capacity` chunks (at least 1).
pub fn output_tap(capacity: usize) -> (OutputTap, TapReceiver) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let skipped = Arc::new(AtomicU64::new(0));
    (
        OutputTap {
            tx,
            pending_skip: 0,
            skipped: skipped.clone(),
        },
        TapReceiver { rx, skipped },
    )
}

impl OutputTap {
    /// Offer `chunk`; never waits. A full tap skips it and counts its bytes.
    pub fn offer(&mut self, chunk: &Chunk) {
        if self.tx.is_closed() {
            return;
        }
        let item = TapItem {
            chunk: chunk.clone(),
            skipped_before: self.pending_skip,
        };
        match self.tx.try_send(item) {
            Ok(()) => self.pending_skip = 0,
            Err(TrySendError::Full(item)) => {
                let n = item.chunk.bytes.len() as u64;
                self.pending_skip += n;
                self.skipped.fetch_add(n, Ordering::Relaxed);
            }
            Err(TrySendError::Closed(_)) => {}
        }
    }
}

impl TapReceiver {
    /// The next chunk; `None` once the console has stopped and everything was taken.
    pub async fn recv(&mut self) -> Option<TapItem> {
        self.rx.recv().await
    }

    /// Output bytes skipped so far because this consumer was behind.
    pub fn skipped_total(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }

    /// A shared counter of [`TapReceiver::skipped_total`] (for metrics read elsewhere).
    pub fn skipped_counter(&self) -> Arc<AtomicU64> {
        self.skipped.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::RecordKind;

    fn chunk(n: usize) -> Chunk {
        Chunk {
            seq: 1,
            time_ns: 0,
            kind: RecordKind::Output,
            user: "".into(),
            offset: 0,
            bytes: vec![b'x'; n].into(),
        }
    }

    #[tokio::test]
    async fn a_full_tap_skips_counts_and_says_so_on_the_next_chunk() {
        let (mut tap, mut rx) = output_tap(2);
        tap.offer(&chunk(1));
        tap.offer(&chunk(2));
        tap.offer(&chunk(30)); // full: skipped
        tap.offer(&chunk(40)); // full: skipped
        assert_eq!(rx.skipped_total(), 70);
        assert_eq!(rx.recv().await.map(|i| i.skipped_before), Some(0));
        assert_eq!(rx.recv().await.map(|i| i.chunk.bytes.len()), Some(2));
        tap.offer(&chunk(5));
        let next = rx.recv().await;
        assert_eq!(next.as_ref().map(|i| i.skipped_before), Some(70));
        assert_eq!(next.map(|i| i.chunk.bytes.len()), Some(5));
        tap.offer(&chunk(6));
        assert_eq!(rx.recv().await.map(|i| i.skipped_before), Some(0));
    }

    #[tokio::test]
    async fn a_dropped_receiver_costs_nothing() {
        let (mut tap, rx) = output_tap(1);
        drop(rx);
        tap.offer(&chunk(10));
        tap.offer(&chunk(10));
        assert_eq!(tap.pending_skip, 0);
    }
}
