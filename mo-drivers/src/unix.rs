//! The `unix` driver: a Unix-domain stream socket is the device.
//!
//! # Address
//!
//! ```text
//! unix:///run/qemu/web01.sock       absolute path
//! unix:run/web01.sock                relative to DriverOptions::base_dir
//! ```
//!
//! The address takes no parameters. Each connect opens a new stream connection; the bytes are
//! passed through untouched. Typical peers are virtual machine serial consoles (QEMU
//! `-serial unix:PATH,server`), `socat UNIX-LISTEN:…`, or another console server's socket.
//!
//! Capabilities: none (a stream socket has no out-of-band channel), so every
//! [`ControlOp`](mo_core::link::ControlOp) answers [`Error::Unsupported`].
//!
//! ```
//! use mo_drivers::{DriverOptions, connector_for};
//!
//! let sock = connector_for("unix:///run/x.sock", &DriverOptions::default()).unwrap();
//! assert_eq!(sock.address(), "unix:///run/x.sock");
//! assert_eq!(sock.capabilities(), mo_core::link::Capabilities::NONE);
//! ```

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use mo_core::link::{Capabilities, Connector, Link};
use mo_core::{Error, Result};
use tokio::net::UnixStream;
use url::Url;

use crate::address::{self, DriverOptions, Query};

/// Opens `unix` links.
#[derive(Debug, Clone)]
pub struct UnixConnector {
    path: PathBuf,
    address: String,
}

impl UnixConnector {
    /// A connector for the socket at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        let address = format!("unix://{}", path.display());
        Self { path, address }
    }

    /// A connector for a `unix:` address (see the [module docs](self)).
    pub fn from_url(url: &Url, address: &str, opts: &DriverOptions) -> Result<Self> {
        address::expect_local(url, address)?;
        Query::parse(url, address, &[])?;
        let path = address::local_path(url, address, opts)?;
        Ok(Self {
            path,
            address: address::display(url),
        })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[async_trait]
impl Connector for UnixConnector {
    async fn connect(&self) -> Result<Link> {
        let stream = UnixStream::connect(&self.path)
            .await
            .map_err(|e| Error::Connect {
                address: self.address.clone(),
                reason: format!("cannot connect to socket {}: {e}", self.path.display()),
            })?;
        let (reader, writer) = stream.into_split();
        Ok(Link::plain(
            reader,
            writer,
            format!("{} (a socket)", self.address),
        ))
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE
    }

    fn address(&self) -> String {
        self.address.clone()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn reads_addresses() {
        let opts = DriverOptions::new().with_base_dir("/srv");
        let url = address::parse("unix:sock/a%20b").unwrap();
        let c = UnixConnector::from_url(&url, "unix:sock/a%20b", &opts).unwrap();
        assert_eq!(c.path(), Path::new("/srv/sock/a b"));
        let url = address::parse("unix:///x?mode=1").unwrap();
        let err = UnixConnector::from_url(&url, "unix:///x?mode=1", &opts).unwrap_err();
        assert!(
            err.to_string().contains("this kind of address takes none"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn missing_socket_is_a_connect_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("none.sock");
        let err = UnixConnector::new(&path).connect().await.unwrap_err();
        assert!(
            matches!(&err, Error::Connect { address, .. } if address.contains("none.sock")),
            "{err}"
        );
    }
}
