//! Free loopback ports and per-test temporary directories.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::sync::{Mutex, PoisonError};

use crate::error::{Error, Result};

/// TCP ports already handed out in this test process, so parallel tests never get the same one.
static GIVEN_TCP: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
/// The same for UDP ports (a separate space: a TCP and a UDP peer may share a number).
static GIVEN_UDP: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// A TCP port on 127.0.0.1 that was free a moment ago: bind port 0, read the port, close.
/// Never returns the same port twice in one process.
pub fn free_port() -> Result<u16> {
    fresh("tcp", &GIVEN_TCP, || {
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).and_then(|l| l.local_addr())
    })
}

/// A UDP port on 127.0.0.1 that was free a moment ago (for ipmi_sim and snmpd). Never returns the
/// same port twice in one process.
pub fn free_udp_port() -> Result<u16> {
    fresh("udp", &GIVEN_UDP, || {
        UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).and_then(|s| s.local_addr())
    })
}

/// Bind port 0 with `bind` until the kernel names a port not in `given`, and record it.
fn fresh(
    proto: &str,
    given: &Mutex<BTreeSet<u16>>,
    bind: impl Fn() -> std::io::Result<std::net::SocketAddr>,
) -> Result<u16> {
    for _ in 0..100 {
        let port = bind()
            .map_err(|e| Error::io(format!("bind 127.0.0.1:0/{proto} to find a free port"), e))?
            .port();
        if given
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(port)
        {
            return Ok(port);
        }
    }
    Err(Error::Check(format!(
        "no fresh free {proto} port after 100 tries on 127.0.0.1"
    )))
}

/// Whether some socket listens on TCP `port` of a loopback address (127.0.0.1, or 127.0.0.2 and
/// so on for peers standing for other hosts) or of any address, read from `/proc/net/tcp`
/// without connecting (a probe connection would count as a client to a peer that serves one
/// connection at a time).
pub fn tcp_listening(port: u16) -> bool {
    const LISTEN: &str = "0A";
    let Ok(table) = std::fs::read_to_string("/proc/net/tcp") else {
        return false;
    };
    let suffix = format!(":{port:04X}");
    table.lines().skip(1).any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        matches!(fields.as_slice(), [_, local, _, state, ..]
        if *state == LISTEN
            && local.strip_suffix(&suffix).is_some_and(|addr| {
                // Little-endian hex: 127.a.b.c is `CCBBAA7F`.
                addr == "00000000" || (addr.len() == 8 && addr.ends_with("7F"))
            }))
    })
}

/// A fresh temporary directory named after `label` (removed when dropped).
/// Paths stay short (under `/tmp`) because unix socket paths are limited to 108 bytes.
pub fn temp_dir(label: &str) -> Result<tempfile::TempDir> {
    let clean: String = label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(24)
        .collect();
    tempfile::Builder::new()
        .prefix(&format!("mo-{clean}-"))
        .tempdir_in("/tmp")
        .map_err(|e| Error::io(format!("create a temp dir for {label}"), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_and_bindable() -> Result<()> {
        let a = free_port()?;
        let b = free_port()?;
        assert_ne!(a, b);
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, a)).map_err(|e| Error::io("rebind", e))?;
        drop(l);
        Ok(())
    }

    #[test]
    fn udp_ports_are_distinct_and_bindable() -> Result<()> {
        let ports: BTreeSet<u16> = (0..50).map(|_| free_udp_port()).collect::<Result<_>>()?;
        assert_eq!(ports.len(), 50);
        for &p in ports.iter().take(3) {
            drop(UdpSocket::bind((Ipv4Addr::LOCALHOST, p)).map_err(|e| Error::io("rebind", e))?);
        }
        Ok(())
    }

    #[test]
    fn listening_ports_are_seen_without_connecting() -> Result<()> {
        let port = free_port()?;
        assert!(!tcp_listening(port));
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).map_err(|e| Error::io("bind", e))?;
        assert!(tcp_listening(port));
        drop(l);
        assert!(!tcp_listening(port));
        Ok(())
    }

    #[test]
    fn temp_dir_is_short_and_removed() -> Result<()> {
        let dir = temp_dir("some label/with spaces")?;
        let path = dir.path().to_path_buf();
        assert!(
            path.display()
                .to_string()
                .starts_with("/tmp/mo-some-label-with-spaces-"),
            "{}",
            path.display()
        );
        assert!(path.is_dir());
        drop(dir);
        assert!(!path.exists());
        Ok(())
    }
}
