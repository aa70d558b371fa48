//! systemd's service notifications (sd_notify, `Type=notify` in packaging/mod.service): one
//! datagram per state change to the socket `$NOTIFY_SOCKET` names — `READY=1` once every front
//! door listens, `RELOADING=1` … `READY=1` around a SIGHUP reload, `STOPPING=1` on the way out.
//! Without `$NOTIFY_SOCKET` (not started by systemd) nothing is sent. A failed send is logged at
//! debug level and otherwise ignored: the daemon runs the same without a service manager.
//!
//! The protocol is one `sendto` on an unbound datagram socket, so this is std only rather than a
//! dependency: a path, or `@NAME` for a socket in the abstract namespace.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::net::UnixDatagram;

/// The environment variable systemd sets to the socket it listens on.
pub const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";

/// Tell the service manager `state` (`READY=1`, `STATUS=…`, newline-separated assignments), if
/// one listens.
pub fn notify(state: &str) {
    let Some(socket) = std::env::var_os(NOTIFY_SOCKET) else {
        return;
    };
    if let Err(e) = notify_to(&socket, state) {
        tracing::debug!(
            "cannot notify the service manager at {}: {e}",
            socket.to_string_lossy()
        );
    }
}

/// Send `state` to the notification socket `socket` (a path, or `@NAME` for an abstract one).
pub fn notify_to(socket: &OsStr, state: &str) -> std::io::Result<()> {
    let sock = UnixDatagram::unbound()?;
    let bytes = socket.as_bytes();
    let sent = match bytes.strip_prefix(b"@") {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt as _;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            sock.send_to_addr(state.as_bytes(), &addr)?
        }
        None if bytes.starts_with(b"/") => sock.send_to(state.as_bytes(), socket)?,
        None => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not an absolute path or @NAME",
            ));
        }
    };
    if sent != state.len() {
        return Err(std::io::Error::other("short write"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_socket_receives_the_state() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("notify");
        let listener = UnixDatagram::bind(&path)?;
        notify_to(path.as_os_str(), "READY=1\nSTATUS=listening")?;
        let mut buf = [0u8; 64];
        let n = listener.recv(&mut buf)?;
        assert_eq!(buf.get(..n), Some(&b"READY=1\nSTATUS=listening"[..]));
        Ok(())
    }

    #[test]
    fn an_abstract_socket_receives_the_state() -> std::io::Result<()> {
        use std::os::linux::net::SocketAddrExt as _;
        let name = format!("mo-notify-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
        let listener = UnixDatagram::bind_addr(&addr)?;
        notify_to(OsStr::new(&format!("@{name}")), "STOPPING=1")?;
        let mut buf = [0u8; 64];
        let n = listener.recv(&mut buf)?;
        assert_eq!(buf.get(..n), Some(&b"STOPPING=1"[..]));
        Ok(())
    }

    #[test]
    fn a_relative_socket_is_refused() {
        assert!(notify_to(OsStr::new("notify"), "READY=1").is_err());
    }
}
