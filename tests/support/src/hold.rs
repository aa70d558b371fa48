//! A TCP relay on loopback that can hold back what the server sends: a client behind it keeps
//! its connection (and may still send) but hears nothing until [`HoldProxy::release`], then
//! everything in order. Used to make one cluster node hear a change of the site late.

use std::io::{Read as _, Write as _};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::error::{Error, Result};

/// The relay: `127.0.0.1:port()` leads to the upstream port.
pub struct HoldProxy {
    port: u16,
    held: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl HoldProxy {
    /// Relay a free loopback port to `127.0.0.1:upstream`, every connection, until dropped.
    pub fn start(upstream: u16) -> Result<HoldProxy> {
        let listener =
            TcpListener::bind("127.0.0.1:0").map_err(|e| Error::io("bind the relay", e))?;
        let port = listener
            .local_addr()
            .map_err(|e| Error::io("the relay's address", e))?
            .port();
        listener
            .set_nonblocking(true)
            .map_err(|e| Error::io("the relay's listener", e))?;
        let held = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (h, s) = (held.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let _ = client.set_nonblocking(false);
                        if let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) {
                            relay(client, server, h.clone(), s.clone());
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Ok(HoldProxy { port, held, stop })
    }

    /// The relay's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// From now on keep what the server sends.
    pub fn hold(&self) {
        self.held.store(true, Ordering::SeqCst);
    }

    /// Pass on what was kept, and everything after.
    pub fn release(&self) {
        self.held.store(false, Ordering::SeqCst);
    }
}

impl Drop for HoldProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.held.store(false, Ordering::SeqCst);
    }
}

/// Copy both ways: client to server at once, server to client unless held.
fn relay(client: TcpStream, server: TcpStream, held: Arc<AtomicBool>, stop: Arc<AtomicBool>) {
    let (Ok(mut c_read), Ok(mut s_write)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let stop_up = stop.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 16384];
        while !stop_up.load(Ordering::SeqCst) {
            match c_read.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if s_write.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = s_write.shutdown(Shutdown::Both);
    });
    let (mut s_read, mut c_write) = (server, client);
    std::thread::spawn(move || {
        let _ = s_read.set_read_timeout(Some(Duration::from_millis(20)));
        let mut kept = Vec::new();
        let mut buf = [0u8; 16384];
        while !stop.load(Ordering::SeqCst) {
            match s_read.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => kept.extend_from_slice(&buf[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => break,
            }
            if !held.load(Ordering::SeqCst) && !kept.is_empty() {
                if c_write.write_all(&kept).is_err() {
                    break;
                }
                kept.clear();
            }
        }
        let _ = c_write.shutdown(Shutdown::Both);
    });
}
