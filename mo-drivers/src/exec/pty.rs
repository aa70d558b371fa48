//! A pseudo-terminal pair and asynchronous I/O on its master side.
//!
//! The program runs on the slave side; mo reads and writes the master. When every holder of the
//! slave is gone, Linux answers reads on the master with `EIO`: that is the end of the stream, and
//! [`MasterReader`] turns it into an ordinary end of file (`Ok(0)`).

use std::io;
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use rustix::pty::OpenptFlags;
use rustix::termios::Winsize;
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::oneshot;

/// A freshly opened pty: the master (non-blocking, registered with tokio) and the slave.
pub(crate) struct PtyPair {
    /// The master side, non-blocking.
    pub(crate) master: OwnedFd,
    /// The slave side, to become the program's standard input, output and error.
    pub(crate) slave: OwnedFd,
}

/// A terminal size of `cols` × `rows`.
pub(crate) fn winsize(cols: u16, rows: u16) -> Winsize {
    Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
}

impl PtyPair {
    /// Open a new pty of `cols` × `rows`. The slave keeps the kernel's default (cooked) terminal
    /// settings, as a login on a real terminal would see them; programs change them as they need.
    pub(crate) fn open(cols: u16, rows: u16) -> io::Result<Self> {
        let master =
            rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)?;
        rustix::pty::grantpt(&master)?;
        rustix::pty::unlockpt(&master)?;
        let name = rustix::pty::ptsname(&master, Vec::new())?;
        let slave = rustix::fs::open(
            name.as_c_str(),
            OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        rustix::termios::tcsetwinsize(&master, winsize(cols, rows))?;
        rustix::io::ioctl_fionbio(&master, true)?;
        Ok(Self { master, slave })
    }
}

/// The master side shared by the reader, the writer and the control of one exec link. When the
/// last of them is dropped, the master closes and the supervisor is told to end the process tree.
pub(crate) struct Master {
    fd: AsyncFd<OwnedFd>,
    /// Set by the supervisor once the program and its tree are gone: writes fail from then on
    /// (Linux would accept them into a terminal nobody reads).
    ended: Arc<AtomicBool>,
    /// Dropped with the master: wakes the supervisor task.
    _closed: oneshot::Sender<()>,
}

impl Master {
    /// Register `fd` (non-blocking) with tokio; `closed` is dropped together with the master;
    /// `ended` is set when the program's tree is gone.
    pub(crate) fn new(
        fd: OwnedFd,
        closed: oneshot::Sender<()>,
        ended: Arc<AtomicBool>,
    ) -> io::Result<Self> {
        Ok(Self {
            fd: register(fd)?,
            ended,
            _closed: closed,
        })
    }

    /// Set the terminal size; the kernel sends SIGWINCH to the foreground process group.
    pub(crate) fn set_size(&self, cols: u16, rows: u16) -> io::Result<()> {
        rustix::termios::tcsetwinsize(self.fd.get_ref(), winsize(cols, rows))?;
        Ok(())
    }
}

/// Register `fd` with tokio's reactor.
#[allow(unsafe_code)]
fn register(fd: OwnedFd) -> io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: `register` needs a descriptor that stays open and unchanged while the `AsyncFd`
    // lives. An `OwnedFd` is an open descriptor that only its owner closes (on drop), and the
    // `AsyncFd` owns it from here on, so `as_raw_fd` returns the same open descriptor throughout.
    Ok(unsafe { AsyncFd::register(fd) }?)
}

/// Reads what the program writes to its terminal. `EIO` (no slave holder left) is end of file.
pub(crate) struct MasterReader(pub(crate) Arc<Master>);

impl AsyncRead for MasterReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            let mut guard = ready!(self.0.fd.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            let ended = &self.0.ended;
            match guard.try_io(|fd| match rustix::io::read(fd.get_ref(), &mut *unfilled) {
                Ok(n) => Ok(n),
                // Every holder of the slave side has closed it: the program is gone, and so is
                // any point in writing.
                Err(Errno::IO) => {
                    ended.store(true, Ordering::Release);
                    Ok(0)
                }
                Err(e) => Err(io::Error::from(e)),
            }) {
                Ok(Ok(n)) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

/// Writes to the program's terminal (what a user would type).
pub(crate) struct MasterWriter(pub(crate) Arc<Master>);

impl AsyncWrite for MasterWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let ended = || {
            io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the program has ended (its terminal is closed)",
            )
        };
        loop {
            if self.0.ended.load(Ordering::Acquire) {
                return Poll::Ready(Err(ended()));
            }
            let mut guard = ready!(self.0.fd.poll_write_ready(cx))?;
            match guard.try_io(|fd| match rustix::io::write(fd.get_ref(), data) {
                Ok(n) => Ok(n),
                Err(Errno::IO) => Err(ended()),
                Err(e) => Err(io::Error::from(e)),
            }) {
                Ok(result) => return Poll::Ready(result),
                Err(_would_block) => continue,
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // A terminal has no half-close; the link ends when all its parts are dropped.
        Poll::Ready(Ok(()))
    }
}
