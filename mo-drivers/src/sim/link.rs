//! The simulated machine's [`Link`]: a reader, a writer and a control over one [`Machine`] behind a
//! small mutex (never held across an await).
//!
//! No task runs for a sim. The reader drives the machine: each `poll_read` asks it for output and,
//! when the next line is due later, sleeps on a timer it keeps only while something is due. Input
//! and BREAK wake the reader; reading wakes a writer that waited for room.

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::SystemTime;

use async_trait::async_trait;
use mo_core::link::{ControlOp, Link, LinkControl};
use mo_core::{Error, Result};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use super::Device;
use super::machine::{Machine, OUT_HIGH, Produced};

/// What the three parts of a sim link share.
#[derive(Debug)]
pub(super) struct Shared {
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    machine: Machine,
    /// The reader, waiting for output.
    reader: Option<Waker>,
    /// The writer, waiting for room.
    writer: Option<Waker>,
    /// Whether the reader still exists (if not, output is thrown away).
    reader_alive: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the machine in an unsafe state.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Bytes of output waiting in the machine.
    #[cfg(test)]
    pub(super) fn pending(&self) -> usize {
        self.lock().machine.pending()
    }
}

/// Power on a machine for `dev` and open a link to it.
pub(super) fn open(dev: Arc<Device>) -> (Link, Arc<Shared>) {
    let machine = Machine::new(dev, Instant::now(), SystemTime::now());
    let shared = Arc::new(Shared {
        inner: Mutex::new(Inner {
            machine,
            reader: None,
            writer: None,
            reader_alive: true,
        }),
    });
    let link = Link {
        reader: Box::pin(SimReader {
            shared: Arc::clone(&shared),
            sleep: None,
        }),
        writer: Box::pin(SimWriter {
            shared: Arc::clone(&shared),
        }),
        control: Arc::new(SimControl {
            shared: Arc::clone(&shared),
        }),
    };
    (link, shared)
}

/// Store `cx`'s waker in `slot` unless the same one is there already.
fn register(slot: &mut Option<Waker>, cx: &Context<'_>) {
    match slot {
        Some(waker) if waker.will_wake(cx.waker()) => {}
        _ => *slot = Some(cx.waker().clone()),
    }
}

/// The reading half.
struct SimReader {
    shared: Arc<Shared>,
    /// Present only while the machine waits for a moment (boot delays, flood rate, baud rate).
    sleep: Option<Pin<Box<Sleep>>>,
}

impl AsyncRead for SimReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            let (produced, writer) = {
                let mut inner = this.shared.lock();
                let produced = inner
                    .machine
                    .produce(Instant::now(), buf.initialize_unfilled());
                let mut writer = None;
                match produced {
                    Produced::Bytes(_) => {
                        if inner.machine.pending() < OUT_HIGH {
                            writer = inner.writer.take();
                        }
                    }
                    Produced::WaitUntil(_) | Produced::Idle => register(&mut inner.reader, cx),
                }
                (produced, writer)
            };
            if let Some(writer) = writer {
                writer.wake();
            }
            match produced {
                Produced::Bytes(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Produced::Idle => {
                    // An idle machine holds no timer.
                    this.sleep = None;
                    return Poll::Pending;
                }
                Produced::WaitUntil(at) => {
                    let sleep = match &mut this.sleep {
                        Some(sleep) => {
                            sleep.as_mut().reset(at);
                            sleep
                        }
                        None => {
                            if tokio::runtime::Handle::try_current().is_err() {
                                return Poll::Ready(Err(io::Error::other(
                                    "the sim device must be read inside a Tokio runtime",
                                )));
                            }
                            this.sleep.insert(Box::pin(tokio::time::sleep_until(at)))
                        }
                    };
                    if sleep.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                }
            }
        }
    }
}

impl Drop for SimReader {
    fn drop(&mut self) {
        let writer = {
            let mut inner = self.shared.lock();
            inner.reader_alive = false;
            inner.machine.discard_output();
            inner.writer.take()
        };
        if let Some(writer) = writer {
            writer.wake();
        }
    }
}

/// The writing half: what is typed at the machine's console.
struct SimWriter {
    shared: Arc<Shared>,
}

impl AsyncWrite for SimWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let reader = {
            let mut inner = self.shared.lock();
            let now = Instant::now();
            let mut taken = inner.machine.input(now, data);
            if !inner.reader_alive {
                // Nobody reads: the machine still takes everything, its output goes nowhere.
                inner.machine.discard_output();
                while taken < data.len() {
                    taken += inner.machine.input(now, &data[taken..]);
                    inner.machine.discard_output();
                }
            }
            if taken == 0 {
                // The output buffer is full: wait until the reader makes room.
                register(&mut inner.writer, cx);
                return Poll::Pending;
            }
            (taken, inner.reader.take())
        };
        let (taken, reader) = reader;
        if let Some(reader) = reader {
            reader.wake();
        }
        Poll::Ready(Ok(taken))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// BREAK and window size.
struct SimControl {
    shared: Arc<Shared>,
}

#[async_trait]
impl LinkControl for SimControl {
    async fn control(&self, op: ControlOp) -> Result<()> {
        match op {
            ControlOp::Break { .. } => {
                let reader = {
                    let mut inner = self.shared.lock();
                    inner.machine.brk();
                    inner.reader.take()
                };
                if let Some(reader) = reader {
                    reader.wake();
                }
                Ok(())
            }
            ControlOp::WindowSize { cols, rows } => {
                self.shared.lock().machine.window = (cols, rows);
                Ok(())
            }
            other => Err(Error::Unsupported {
                operation: other.name(),
                what: format!("sim device {}", self.shared.lock().machine.dev.name),
            }),
        }
    }
}
