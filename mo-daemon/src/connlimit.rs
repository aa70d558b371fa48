//! Connection caps for the front doors, and the socket wrapper that carries a connection's
//! permit for as long as the connection lives (also through an HTTP upgrade to WebSocket).
//!
//! Each door has its own [`ConnLimits`]: at most `total` connections at once, and at most
//! `per_address` from one source address. A [`Limited`] stream can also be cut from outside
//! ([`Kill`]): reads and writes fail from then on, which ends the protocol task driving it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The caps of one door.
pub struct ConnLimits {
    door: &'static str,
    total: Arc<Semaphore>,
    max_total: usize,
    per_address: usize,
    by_address: Mutex<HashMap<IpAddr, usize>>,
}

/// A connection's place under the caps; given back when dropped.
pub struct ConnPermit {
    _total: OwnedSemaphorePermit,
    addr: IpAddr,
    limits: Arc<ConnLimits>,
}

impl Drop for ConnPermit {
    fn drop(&mut self) {
        if let Ok(mut map) = self.limits.by_address.lock()
            && let Some(n) = map.get_mut(&self.addr)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.addr);
            }
        }
    }
}

impl ConnLimits {
    /// Caps for `door` (`SSH`, `HTTP`, for messages).
    pub fn new(door: &'static str, total: usize, per_address: usize) -> Arc<Self> {
        let total = total.max(1);
        Arc::new(ConnLimits {
            door,
            total: Arc::new(Semaphore::new(total)),
            max_total: total,
            per_address: per_address.max(1),
            by_address: Mutex::new(HashMap::new()),
        })
    }

    /// A permit for a new connection from `addr`, or why there is none.
    pub fn admit(self: &Arc<Self>, addr: IpAddr) -> Result<ConnPermit, String> {
        let total = self.total.clone().try_acquire_owned().map_err(|_| {
            format!(
                "{} connection from {addr} refused: {} connections open (mod --max-connections)",
                self.door, self.max_total
            )
        })?;
        let mut map = self
            .by_address
            .lock()
            .map_err(|_| format!("{} connection table is unusable", self.door))?;
        let n = map.entry(addr).or_insert(0);
        if *n >= self.per_address {
            return Err(format!(
                "{} connection from {addr} refused: {} connections open from that address \
                 (mod --max-connections-per-address)",
                self.door, self.per_address
            ));
        }
        *n += 1;
        Ok(ConnPermit {
            _total: total,
            addr,
            limits: self.clone(),
        })
    }
}

/// A switch that cuts a [`Limited`] stream.
#[derive(Default)]
pub struct Kill {
    killed: AtomicBool,
    read: AtomicWaker,
    write: AtomicWaker,
}

impl Kill {
    /// A switch, not thrown.
    pub fn new() -> Arc<Self> {
        Arc::new(Kill::default())
    }

    /// Cut the stream: pending and later reads and writes fail.
    pub fn kill(&self) {
        self.killed.store(true, Ordering::SeqCst);
        self.read.wake();
        self.write.wake();
    }

    fn check(&self, waker: &AtomicWaker, cx: &Context<'_>) -> std::io::Result<()> {
        waker.register(cx.waker());
        if self.killed.load(Ordering::SeqCst) {
            Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                "connection closed by the daemon",
            ))
        } else {
            Ok(())
        }
    }
}

/// A stream holding its connection permit, with a kill switch.
pub struct Limited<S> {
    inner: S,
    kill: Arc<Kill>,
    _permit: ConnPermit,
}

impl<S> Limited<S> {
    /// Wrap `inner`.
    pub fn new(inner: S, permit: ConnPermit, kill: Arc<Kill>) -> Self {
        Limited {
            inner,
            kill,
            _permit: permit,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Limited<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if let Err(e) = self.kill.check(&self.kill.read, cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Limited<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if let Err(e) = self.kill.check(&self.kill.write, cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn caps_total_and_per_address() {
        let limits = ConnLimits::new("TEST", 3, 2);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let p1 = limits.admit(a).unwrap();
        let _p2 = limits.admit(a).unwrap();
        assert!(
            limits
                .admit(a)
                .err()
                .is_some_and(|e| e.contains("from that address"))
        );
        let _p3 = limits.admit(b).unwrap();
        assert!(
            limits
                .admit(b)
                .err()
                .is_some_and(|e| e.contains("3 connections open"))
        );
        drop(p1);
        assert!(limits.admit(a).is_ok());
    }
}
