//! The `telnet` driver: a telnet server is the device (a console server's telnet port, a
//! device's own telnet service).
//!
//! # Address
//!
//! ```text
//! telnet://cs1:7001         host name and port
//! telnet://cs1              port 23
//! telnet://[::1]:2323       IPv6 literal in brackets
//! ```
//!
//! The address takes no user, path or parameters (log-in belongs to auto-login, not the URL).
//!
//! # Behaviour
//!
//! Each connect opens a TCP connection (`TCP_NODELAY` on) and runs the sans-I/O
//! [`codec::TelnetCodec`] over it: the link's reader yields only data bytes (commands, option
//! negotiation and subnegotiations are taken out, `IAC IAC` and `CR NUL` undone); what is written
//! is escaped (`IAC` doubled, a lone `CR` sent as `CR NUL` unless binary mode was agreed). The
//! client asks `DO SGA` on connect and answers the server's requests as the codec documents.
//!
//! Two small tasks carry the bytes, so negotiation answers can be sent while reading: one reads
//! the socket, decodes, hands data to the link's reader through a bounded in-memory pipe and queues
//! replies; the other owns the socket's writing half and sends, in order of arrival, queued
//! replies and control frames (bounded queue) and the encoded bytes written to the link. No lock
//! is held across an `.await`; the codec sits behind a mutex taken only to encode or decode one
//! piece. Dropping the link's reader stops the reading task; dropping its writer lets the writing
//! task send what is left and close the connection.
//!
//! Capabilities: BREAK (sent as `IAC BRK`; telnet has no break duration, so the duration asked
//! for is not used) and window size (NAWS, RFC 1073: offered with `WILL NAWS` and sent once the
//! server agrees, and again on every change).
//!
//! ```
//! use mo_drivers::{DriverOptions, connector_for};
//!
//! let port = connector_for("telnet://cs1:7001", &DriverOptions::default()).unwrap();
//! assert_eq!(port.address(), "telnet://cs1:7001");
//! assert!(port.capabilities().send_break && port.capabilities().window_size);
//! assert!(connector_for("telnet://cs1:7001/x", &DriverOptions::default()).is_err());
//! ```

// The sans-I/O codec: public for the fuzz targets and the integration tests (its constants);
// users need only the re-exported `TelnetCodec`.
#[doc(hidden)]
pub mod codec;

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use async_trait::async_trait;
use mo_core::link::{
    Capabilities, Connector, ControlOp, Link, LinkControl, LinkReader, LinkWriter,
};
use mo_core::{Error, Result};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, DuplexStream, ReadBuf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use url::Url;

pub use codec::TelnetCodec;

use crate::address::{self, DriverOptions};
use crate::tcp::HostPort;

/// The telnet port used when an address gives none.
pub const DEFAULT_PORT: u16 = 23;

/// Bytes buffered between the socket tasks and the link's reader and writer.
const PIPE_BYTES: usize = 64 * 1024;
/// Reply and control frames queued for the writing task before the reading task waits.
const QUEUED_FRAMES: usize = 64;
/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 16 * 1024;

/// The codec shared by a link's two tasks and its control.
pub(crate) type SharedCodec = Arc<Mutex<TelnetCodec>>;

/// Called by the reading task after each piece received is decoded, with the codec (still
/// locked): how a protocol layered on telnet (RFC 2217) sees the server's subnegotiations.
pub(crate) type Observer = Box<dyn FnMut(&mut TelnetCodec) + Send>;

/// Run `f` on the codec. The lock is held only for this synchronous call; a poisoned lock
/// (a panic elsewhere) still holds a consistent codec, since the codec never panics mid-update.
pub(crate) fn with_codec<T>(codec: &SharedCodec, f: impl FnOnce(&mut TelnetCodec) -> T) -> T {
    let mut guard = codec.lock().unwrap_or_else(PoisonError::into_inner);
    f(&mut guard)
}

/// Opens `telnet` links.
#[derive(Debug, Clone)]
pub struct TelnetConnector {
    target: HostPort,
    address: String,
}

impl TelnetConnector {
    /// A connector for the telnet server at `host:port`.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        let target = HostPort {
            host: host.into(),
            port,
        };
        Self {
            address: target.address("telnet"),
            target,
        }
    }

    /// A connector for a `telnet:` address (see the [module docs](self)).
    pub fn from_url(url: &Url, address: &str, _opts: &DriverOptions) -> Result<Self> {
        let target = HostPort::from_url(url, address, Some(DEFAULT_PORT))?;
        Ok(Self {
            target,
            address: address::display(url),
        })
    }

    /// Where this connector connects.
    pub fn target(&self) -> &HostPort {
        &self.target
    }
}

/// An open telnet connection with its two tasks running: the link's byte halves, the queue
/// of frames sent ahead of data (replies, BREAK, subnegotiations) and the shared codec.
pub(crate) struct Session {
    /// Decoded data from the server.
    pub reader: LinkReader,
    /// Data to the server (encoded by the writing task).
    pub writer: LinkWriter,
    /// Raw frames to the server, sent as they are.
    pub frames: mpsc::Sender<Vec<u8>>,
    /// The codec both tasks use.
    pub codec: SharedCodec,
}

/// Connect to `target`, send `codec`'s greeting and start the reading and writing tasks.
/// `observer` runs after each decoded piece (see [`Observer`]). Errors name `address`.
pub(crate) async fn open(
    target: &HostPort,
    address: &str,
    codec: TelnetCodec,
    observer: Option<Observer>,
) -> Result<Session> {
    let stream = target.connect(address).await?;
    // Servers send `IAC DM` as urgent data after BREAK or interrupt (the Synch, RFC 854);
    // keep it in the stream, where the codec skips it, instead of losing the urgent byte.
    rustix::net::sockopt::set_socket_oobinline(&stream, true).map_err(|e| Error::Connect {
        address: address.to_owned(),
        reason: format!("setting SO_OOBINLINE: {e}"),
    })?;
    let (socket_rx, mut socket_tx) = stream.into_split();
    let codec: SharedCodec = Arc::new(Mutex::new(codec));

    let mut hello = Vec::new();
    with_codec(&codec, |c| c.start(&mut hello));
    socket_tx
        .write_all(&hello)
        .await
        .map_err(|e| Error::Connect {
            address: address.to_owned(),
            reason: format!("sending the telnet greeting: {e}"),
        })?;

    let (frames_tx, frames_rx) = mpsc::channel(QUEUED_FRAMES);
    // Duplex pipes, used one way each: dropping either end is seen as the end by the other.
    let (link_writer, data_rx) = tokio::io::duplex(PIPE_BYTES);
    let (link_reader, data_tx) = tokio::io::duplex(PIPE_BYTES);

    tokio::spawn(write_task(
        socket_tx,
        data_rx,
        frames_rx,
        Arc::clone(&codec),
        address.to_owned(),
    ));
    let reading = tokio::spawn(read_task(
        socket_rx,
        data_tx,
        frames_tx.clone(),
        Arc::clone(&codec),
        observer,
        address.to_owned(),
    ));

    Ok(Session {
        reader: Box::pin(TelnetReader {
            inner: link_reader,
            task: reading,
        }),
        writer: Box::pin(link_writer),
        frames: frames_tx,
        codec,
    })
}

#[async_trait]
impl Connector for TelnetConnector {
    async fn connect(&self) -> Result<Link> {
        let session = open(&self.target, &self.address, TelnetCodec::new(), None).await?;
        Ok(Link {
            reader: session.reader,
            writer: session.writer,
            control: Arc::new(TelnetControl {
                frames: session.frames,
                codec: session.codec,
                address: self.address.clone(),
            }),
        })
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE.with_break(true).with_window_size(true)
    }

    fn address(&self) -> String {
        self.address.clone()
    }
}

/// Read the socket, decode, pass data to the link's reader and replies to the writing task.
/// Ends (closing the link's reader) when the server closes, the socket fails, or the link's
/// reader is dropped.
async fn read_task(
    mut socket: OwnedReadHalf,
    mut data: DuplexStream,
    frames: mpsc::Sender<Vec<u8>>,
    codec: SharedCodec,
    mut observer: Option<Observer>,
    address: String,
) {
    let mut buf = vec![0u8; READ_CHUNK];
    let (mut decoded, mut reply) = (Vec::new(), Vec::new());
    loop {
        let n = match socket.read(&mut buf).await {
            Ok(0) => {
                tracing::debug!(%address, "telnet server closed the connection");
                break;
            }
            Ok(n) => n,
            Err(e) => {
                tracing::debug!(%address, error = %e, "telnet read failed");
                break;
            }
        };
        decoded.clear();
        reply.clear();
        let input = buf.get(..n).unwrap_or_default();
        with_codec(&codec, |c| {
            c.feed(input, &mut decoded, &mut reply);
            if let Some(observe) = observer.as_mut() {
                observe(c);
            }
        });
        // A closed queue means the writing half is gone; reading still works.
        if !reply.is_empty() && frames.send(std::mem::take(&mut reply)).await.is_err() {
            tracing::debug!(%address, "telnet reply dropped: the writing side is closed");
        }
        if !decoded.is_empty() && data.write_all(&decoded).await.is_err() {
            break;
        }
    }
    let _ = data.shutdown().await;
}

/// Own the socket's writing half: send queued frames (replies, BREAK, NAWS) and the encoded
/// bytes written to the link. Ends when the link's writer is dropped (after sending what it
/// wrote) or the socket fails.
async fn write_task(
    mut socket: OwnedWriteHalf,
    mut data: DuplexStream,
    mut frames: mpsc::Receiver<Vec<u8>>,
    codec: SharedCodec,
    address: String,
) {
    let mut buf = vec![0u8; READ_CHUNK];
    let mut encoded = Vec::new();
    let mut frames_open = true;
    loop {
        let result = tokio::select! {
            biased;
            frame = frames.recv(), if frames_open => match frame {
                Some(frame) => socket.write_all(&frame).await,
                None => {
                    frames_open = false;
                    Ok(())
                }
            },
            read = data.read(&mut buf) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    encoded.clear();
                    let raw = buf.get(..n).unwrap_or_default();
                    with_codec(&codec, |c| c.encode_data(raw, &mut encoded));
                    socket.write_all(&encoded).await
                }
            },
        };
        if let Err(e) = result {
            tracing::debug!(%address, error = %e, "telnet write failed");
            break;
        }
    }
    let _ = socket.shutdown().await;
}

/// The link's reader: decoded data; stops the reading task when dropped.
struct TelnetReader {
    inner: DuplexStream,
    task: JoinHandle<()>,
}

impl AsyncRead for TelnetReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl Drop for TelnetReader {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// BREAK and window size for a telnet link.
struct TelnetControl {
    frames: mpsc::Sender<Vec<u8>>,
    codec: SharedCodec,
    address: String,
}

#[async_trait]
impl LinkControl for TelnetControl {
    async fn control(&self, op: ControlOp) -> Result<()> {
        let mut frame = Vec::new();
        match op {
            ControlOp::Break { .. } => with_codec(&self.codec, |c| c.encode_break(&mut frame)),
            ControlOp::WindowSize { cols, rows } => {
                with_codec(&self.codec, |c| {
                    c.encode_window_size(cols, rows, &mut frame)
                });
            }
            other => {
                return Err(Error::Unsupported {
                    operation: other.name(),
                    what: self.address.clone(),
                });
            }
        }
        if frame.is_empty() {
            return Ok(());
        }
        self.frames.send(frame).await.map_err(|_| {
            Error::io(
                format!("{}: sending {}", self.address, op.name()),
                io::Error::new(io::ErrorKind::BrokenPipe, "the connection is closed"),
            )
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn read(address: &str) -> Result<TelnetConnector> {
        TelnetConnector::from_url(&address::parse(address)?, address, &DriverOptions::new())
    }

    #[test]
    fn reads_addresses() {
        let c = read("telnet://cs1:7001").unwrap();
        assert_eq!(c.target().port, 7001);
        assert_eq!(read("telnet://cs1").unwrap().target().port, DEFAULT_PORT);
        assert_eq!(read("telnet://[::1]:2323").unwrap().target().host, "::1");
        assert_eq!(TelnetConnector::new("cs1", 7).address(), "telnet://cs1:7");
        for (address, needle) in [
            ("telnet://cs1:7001?x=1", "unknown parameter `x`"),
            ("telnet://admin@cs1", "no user name"),
            ("telnet:///path", "unexpected path `/path`"),
            ("telnet:", "no host"),
        ] {
            let text = read(address).unwrap_err().to_string();
            assert!(text.contains(needle) && text.contains(address), "{text}");
        }
    }
}
