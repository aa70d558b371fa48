//! The link's life: connecting (with a timeout), being up, going down, and when to try again —
//! exponential backoff with jitter, reset by a link that stayed up long enough. The actor decides
//! what to tell viewers; this module keeps the link's parts and the retry arithmetic.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rand::Rng;
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;
use tokio::time::Instant;

use super::ConsoleConfig;
use super::arena::poll_read_chunk;
use crate::error::{Error, Result};
use crate::link::{Connector, Link, LinkControl, LinkReader, LinkStatus, LinkWriter};

type ConnectFuture = Pin<Box<dyn Future<Output = Result<Link>> + Send>>;

/// Backoff settings, from the console's configuration.
#[derive(Debug, Clone, Copy)]
struct Backoff {
    initial: Duration,
    max: Duration,
    stable_after: Duration,
}

/// One console's link and its retry state. The I/O parts are fields so the actor's select loop
/// can borrow them apart.
pub(super) struct Connection {
    connector: Arc<dyn Connector>,
    connect_timeout: Duration,
    backoff: Backoff,
    pub(super) reader: Option<LinkReader>,
    pub(super) writer: Option<LinkWriter>,
    pub(super) control: Option<Arc<dyn LinkControl>>,
    pub(super) connecting: Option<ConnectFuture>,
    /// The current link's status reports, if it makes any.
    pub(super) status: Option<watch::Receiver<LinkStatus>>,
    /// Attempts since the last stable link (1 for the first).
    attempt: u32,
    up_since: Option<Instant>,
    /// When the next attempt is due, while down.
    pub(super) retry_at: Option<Instant>,
}

impl Connection {
    pub(super) fn new(connector: Arc<dyn Connector>, cfg: &ConsoleConfig) -> Self {
        Connection {
            connector,
            connect_timeout: cfg.connect_timeout,
            backoff: Backoff {
                initial: cfg.backoff_initial,
                max: cfg.backoff_max,
                stable_after: cfg.stable_after,
            },
            reader: None,
            writer: None,
            control: None,
            connecting: None,
            status: None,
            attempt: 0,
            up_since: None,
            retry_at: None,
        }
    }

    /// The device's address, for notices.
    pub(super) fn address(&self) -> String {
        self.connector.address()
    }

    /// What the driver can do (break, window size, …).
    pub(super) fn connector(&self) -> &Arc<dyn Connector> {
        &self.connector
    }

    /// Whether the link is up.
    pub(super) fn is_up(&self) -> bool {
        self.reader.is_some()
    }

    /// Whether input can be written now.
    pub(super) fn writable(&self) -> bool {
        self.writer.is_some()
    }

    /// Start an attempt unless one is under way or the link is up; its number when started.
    pub(super) fn start(&mut self) -> Option<u32> {
        if self.connecting.is_some() || self.reader.is_some() {
            return None;
        }
        self.retry_at = None;
        self.attempt += 1;
        let connector = self.connector.clone();
        let timeout = self.connect_timeout;
        let address = connector.address();
        self.connecting = Some(Box::pin(async move {
            match tokio::time::timeout(timeout, connector.connect()).await {
                Ok(r) => r,
                Err(_) => Err(Error::Connect {
                    address,
                    reason: format!("no answer within {}s", timeout.as_secs()),
                }),
            }
        }));
        Some(self.attempt)
    }

    /// The attempt succeeded: keep the link's parts. Returns its control.
    pub(super) fn up(&mut self, link: Link) -> Arc<dyn LinkControl> {
        self.connecting = None;
        self.reader = Some(link.reader);
        self.writer = Some(link.writer);
        self.control = Some(link.control.clone());
        self.up_since = Some(Instant::now());
        self.status = link.control.status();
        link.control
    }

    /// Drop the link (or the attempt under way).
    pub(super) fn close(&mut self) {
        self.status = None;
        self.reader = None;
        self.writer = None;
        self.control = None;
        self.connecting = None;
        self.up_since = None;
    }

    /// The link went down: drop it; a link that stayed up long enough resets the backoff.
    pub(super) fn went_down(&mut self) {
        let stable = self
            .up_since
            .is_some_and(|t| t.elapsed() >= self.backoff.stable_after);
        self.close();
        if stable {
            self.attempt = 0;
        }
    }

    /// Forget past failures: the next attempt is the first.
    pub(super) fn reset(&mut self) {
        self.attempt = 0;
        self.retry_at = None;
    }

    /// Plan the next attempt after a failure: returns the delay, also kept as `retry_at`.
    pub(super) fn plan_retry(&mut self) -> (Duration, Instant) {
        let delay = backoff(self.backoff, self.attempt);
        let at = Instant::now() + delay;
        self.retry_at = Some(at);
        (delay, at)
    }

    /// Whether the planned attempt is due at `now` (it is then no longer planned).
    pub(super) fn retry_due(&mut self, now: Instant) -> bool {
        if self.retry_at.is_some_and(|t| t <= now) {
            self.retry_at = None;
            return true;
        }
        false
    }
}

/// The delay before attempt `attempt + 1`: `initial` doubled per failed attempt up to `max`, with
/// full jitter in `[base/2, base]` so many consoles behind one failed console server do not all
/// retry at the same instant.
fn backoff(b: Backoff, attempt: u32) -> Duration {
    let exp = attempt.saturating_sub(1).min(16);
    let base = b.initial.saturating_mul(1u32 << exp).min(b.max);
    let half = base / 2;
    let jitter = rand::rng().random_range(0..=half.as_millis() as u64);
    half + Duration::from_millis(jitter)
}

/// Read up to `want` bytes from the link into the worker thread's read arena (see
/// [`super::arena`]); an empty chunk means the link reached its end.
pub(super) async fn read_opt(
    reader: &mut Option<LinkReader>,
    want: usize,
) -> std::io::Result<Bytes> {
    match reader {
        Some(r) => std::future::poll_fn(|cx| poll_read_chunk(r.as_mut(), cx, want)).await,
        None => std::future::pending().await,
    }
}

pub(super) async fn write_opt(
    writer: &mut Option<LinkWriter>,
    data: &[u8],
) -> std::io::Result<usize> {
    match writer {
        Some(w) => {
            let n = w.write(data).await?;
            if n == data.len() {
                w.flush().await?;
            }
            Ok(n)
        }
        None => std::future::pending().await,
    }
}

pub(super) async fn connect_opt(fut: &mut Option<ConnectFuture>) -> Result<Link> {
    match fut {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

pub(super) async fn status_changed(status: &mut Option<watch::Receiver<LinkStatus>>) -> bool {
    match status {
        Some(rx) => rx.changed().await.is_ok(),
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(initial_ms: u64, max_ms: u64) -> Backoff {
        Backoff {
            initial: Duration::from_millis(initial_ms),
            max: Duration::from_millis(max_ms),
            stable_after: Duration::from_secs(10),
        }
    }

    #[test]
    fn backoff_doubles_per_attempt_up_to_the_max_with_jitter_in_the_upper_half() {
        for (attempt, base) in [
            (1, 500),
            (2, 1000),
            (3, 2000),
            (4, 4000),
            (7, 30_000),
            (40, 30_000),
        ] {
            for _ in 0..50 {
                let d = backoff(b(500, 30_000), attempt).as_millis() as u64;
                assert!(
                    (base / 2..=base).contains(&d),
                    "attempt {attempt}: {d} ms not in [{}, {base}]",
                    base / 2
                );
            }
        }
    }

    #[test]
    fn the_first_attempt_waits_at_most_the_initial_delay() {
        assert!(backoff(b(500, 30_000), 0) <= Duration::from_millis(500));
        assert_eq!(backoff(b(0, 30_000), 5), Duration::ZERO);
    }
}
