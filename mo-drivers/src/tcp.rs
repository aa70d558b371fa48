//! The `tcp` driver: a raw TCP connection is the device (a console server's raw port).
//!
//! # Address
//!
//! ```text
//! tcp://cs1:4001            host name and port (the port is required)
//! tcp://10.0.0.7:7003
//! tcp://[::1]:7003          IPv6 literal in brackets
//! ```
//!
//! The address takes no user, path or parameters. Each connect opens a new TCP connection with
//! `TCP_NODELAY` on (keystrokes go out at once); the bytes are passed through untouched — no
//! telnet processing (use `telnet://` for that).
//!
//! Capabilities: none (a raw stream has no out-of-band channel), so every
//! [`ControlOp`](mo_core::link::ControlOp) answers [`Error::Unsupported`].
//!
//! ```
//! use mo_drivers::{DriverOptions, connector_for};
//!
//! let port = connector_for("tcp://cs1:4001", &DriverOptions::default()).unwrap();
//! assert_eq!(port.address(), "tcp://cs1:4001");
//! assert_eq!(port.capabilities(), mo_core::link::Capabilities::NONE);
//! assert!(connector_for("tcp://cs1", &DriverOptions::default()).is_err());
//! ```

use std::time::Duration;

use async_trait::async_trait;
use mo_core::link::{Capabilities, Connector, Link};
use mo_core::{Error, Result};
use tokio::net::TcpStream;
use url::{Host, Url};

use crate::address::{self, DriverOptions, Query};

/// How long a TCP connect may take before it counts as failed.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A host and port read from a network address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl HostPort {
    /// `SCHEME://host:port`, with an IPv6 host in brackets.
    pub fn address(&self, scheme: &str) -> String {
        let HostPort { host, port } = self;
        if host.contains(':') {
            format!("{scheme}://[{host}]:{port}")
        } else {
            format!("{scheme}://{host}:{port}")
        }
    }

    /// Read `SCHEME://host[:port]` from `url`: no user, password, path, query or fragment.
    /// `default_port` applies when the address has none; without one a port is required.
    pub fn from_url(url: &Url, address: &str, default_port: Option<u16>) -> Result<Self> {
        let scheme = url.scheme();
        address::expect_no_fragment(url, address)?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(address::bad(
                address,
                format!("`{scheme}` addresses take no user name or password"),
            ));
        }
        if !matches!(url.path(), "" | "/") {
            return Err(address::bad(
                address,
                format!(
                    "unexpected path `{}`; write {scheme}://HOST:PORT",
                    url.path()
                ),
            ));
        }
        Query::parse(url, address, &[])?;
        let host = match url.host() {
            Some(Host::Domain(name)) if !name.is_empty() => name.to_owned(),
            Some(Host::Ipv4(ip)) => ip.to_string(),
            Some(Host::Ipv6(ip)) => ip.to_string(),
            _ => {
                return Err(address::bad(
                    address,
                    format!("no host; write {scheme}://HOST:PORT"),
                ));
            }
        };
        let port = match url.port().or(default_port) {
            Some(0) => return Err(address::bad(address, "port 0 is not a port to connect to")),
            Some(port) => port,
            None => {
                return Err(address::bad(
                    address,
                    format!("no port; write {scheme}://HOST:PORT"),
                ));
            }
        };
        Ok(Self { host, port })
    }

    /// Open a TCP connection with `TCP_NODELAY` on, within [`CONNECT_TIMEOUT`]. Errors are
    /// [`Error::Connect`] naming `address`.
    pub async fn connect(&self, address: &str) -> Result<TcpStream> {
        let failed = |reason: String| Error::Connect {
            address: address.to_owned(),
            reason,
        };
        let target = (self.host.as_str(), self.port);
        let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target)).await {
            Err(_) => {
                return Err(failed(format!(
                    "no answer from {}:{} within {} s",
                    self.host,
                    self.port,
                    CONNECT_TIMEOUT.as_secs()
                )));
            }
            Ok(Err(e)) => return Err(failed(format!("{}:{}: {e}", self.host, self.port))),
            Ok(Ok(stream)) => stream,
        };
        stream
            .set_nodelay(true)
            .map_err(|e| failed(format!("setting TCP_NODELAY: {e}")))?;
        Ok(stream)
    }
}

/// Opens raw `tcp` links.
#[derive(Debug, Clone)]
pub struct TcpConnector {
    target: HostPort,
    address: String,
}

impl TcpConnector {
    /// A connector for `host:port`.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        let target = HostPort {
            host: host.into(),
            port,
        };
        Self {
            address: target.address("tcp"),
            target,
        }
    }

    /// A connector for a `tcp:` address (see the [module docs](self)).
    pub fn from_url(url: &Url, address: &str, _opts: &DriverOptions) -> Result<Self> {
        let target = HostPort::from_url(url, address, None)?;
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

#[async_trait]
impl Connector for TcpConnector {
    async fn connect(&self) -> Result<Link> {
        let stream = self.target.connect(&self.address).await?;
        let (reader, writer) = stream.into_split();
        Ok(Link::plain(
            reader,
            writer,
            format!("{} (a raw TCP port)", self.address),
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

    fn read(address: &str) -> Result<TcpConnector> {
        TcpConnector::from_url(&address::parse(address)?, address, &DriverOptions::new())
    }

    #[test]
    fn reads_addresses() {
        let c = read("tcp://cs1:4001").unwrap();
        assert_eq!(
            c.target(),
            &HostPort {
                host: "cs1".into(),
                port: 4001
            }
        );
        let c = read("tcp://[::1]:7003/").unwrap();
        assert_eq!(c.target().host, "::1");
        assert_eq!(TcpConnector::new("::1", 7).address(), "tcp://[::1]:7");
        for (address, needle) in [
            ("tcp://cs1", "no port"),
            ("tcp://cs1:0", "port 0"),
            ("tcp://u@cs1:1", "no user name"),
            ("tcp://cs1:1/x", "unexpected path `/x`"),
            ("tcp://cs1:1?a=1", "unknown parameter `a`"),
            ("tcp://cs1:1#f", "fragment"),
            ("tcp://:1", "empty host"),
            ("tcp:", "no host"),
        ] {
            let err = read(address).unwrap_err();
            let text = err.to_string();
            assert!(
                text.contains(needle) && text.contains(address),
                "{address}: {text}"
            );
        }
    }

    #[tokio::test]
    async fn refused_connect_names_the_address() {
        // Bind then drop a listener so the port is (very likely) closed.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let c = TcpConnector::new("127.0.0.1", port);
        let err = c.connect().await.unwrap_err();
        assert!(
            matches!(&err, Error::Connect { address, .. } if address == &c.address()),
            "{err}"
        );
    }
}
