//! Ptys the benchmarks open themselves: the bare pty reader of `flood-pty`, the terminal `rtt`
//! runs the OpenSSH client on.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::process::Stdio;

use nix::errno::Errno;
use nix::fcntl::{F_GETFL, F_SETFL, OFlag, fcntl};
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::stat::Mode;
use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};
use tokio::io::unix::AsyncFd;

/// Open a pty as mo's exec driver does (`posix_openpt`, `grantpt`, `unlockpt`, the slave opened
/// by name, close-on-exec throughout, the slave in the kernel's default cooked mode): the master,
/// non-blocking and registered with tokio, and the slave.
pub fn open() -> anyhow::Result<(Master, OwnedFd)> {
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)?;
    grantpt(&master)?;
    unlockpt(&master)?;
    let name = ptsname_r(&master)?;
    let slave = nix::fcntl::open(
        name.as_str(),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let master = OwnedFd::from(master);
    let flags = OFlag::from_bits_retain(fcntl(&master, F_GETFL)?);
    fcntl(&master, F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok((Master(register(master)?), slave))
}

/// Start `command` with `slave` as its standard input, output and error, killed if the child
/// handle is dropped first. This process's copies of `slave` are closed on return.
pub fn spawn_on(
    mut command: tokio::process::Command,
    slave: OwnedFd,
) -> io::Result<tokio::process::Child> {
    command
        .stdin(Stdio::from(slave.try_clone()?))
        .stdout(Stdio::from(slave.try_clone()?))
        .stderr(Stdio::from(slave))
        .kill_on_drop(true)
        .spawn()
}

/// Put the terminal `fd` in raw mode, as `stty raw -echo` (`cfmakeraw`): bytes pass unchanged,
/// nothing is echoed or held for a line.
pub fn set_raw(fd: impl AsFd) -> nix::Result<()> {
    let mut mode = tcgetattr(&fd)?;
    cfmakeraw(&mut mode);
    tcsetattr(&fd, SetArg::TCSANOW, &mode)
}

/// Register `fd` with tokio's reactor.
#[allow(unsafe_code)]
fn register(fd: OwnedFd) -> io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: `register` needs a descriptor that stays open and unchanged while the `AsyncFd`
    // lives. An `OwnedFd` is closed only by its owner, and the `AsyncFd` owns it from here on.
    Ok(unsafe { AsyncFd::register(fd) }?)
}

/// The master side of a pty.
pub struct Master(AsyncFd<OwnedFd>);

impl Master {
    /// Read what the program on the slave side wrote; `Ok(0)` at the end (`EIO`: no holder of
    /// the slave is left, and what they wrote has been read).
    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut ready = self.0.readable().await?;
            match ready.try_io(|fd| match nix::unistd::read(fd.get_ref(), &mut *buf) {
                Ok(n) => Ok(n),
                Err(Errno::EIO) => Ok(0),
                Err(e) => Err(io::Error::from(e)),
            }) {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }

    /// Write all of `bytes` (what a user types).
    pub async fn write_all(&self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            let mut ready = self.0.writable().await?;
            if let Ok(n) = ready.try_io(|fd| Ok(nix::unistd::write(fd.get_ref(), bytes)?)) {
                bytes = bytes.get(n?..).unwrap_or_default();
            }
        }
        Ok(())
    }
}
