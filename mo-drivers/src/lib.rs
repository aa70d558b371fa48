//! mo-drivers: device addresses to byte links.
//!
//! Start here: [`connector_for`] turns an address into a [`Connector`], and mo-core's
//! [`open_local`](mo_core::open_local) holds that device's console open in this process. The
//! built-in simulated machine (`sim://`, [`sim`]) boots to a login prompt:
//!
//! ```
//! use std::time::Duration;
//! use mo_core::{ExpectPattern, LocalOptions, open_local};
//! use mo_drivers::{DriverOptions, connector_for};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> mo_core::Result<()> {
//! // `boot=none`: straight to the prompt. A real device: "serial:///dev/ttyS0?baud=115200".
//! let device = connector_for("sim://web01?boot=none", &DriverOptions::default())?;
//! let console = open_local("web01", device, LocalOptions::default()).await?;
//! let prompt = console.expect(&[ExpectPattern::literal("login: ")?], Duration::from_secs(10)).await?;
//! assert_eq!(prompt.matched, "login: ");
//! console.send_line("admin").await?;
//! console.expect(&[ExpectPattern::literal("Password: ")?], Duration::from_secs(10)).await?;
//! console.send_line("any").await?; // Any password, unless the address sets one.
//! console.expect(&[ExpectPattern::literal("web01:~$ ")?], Duration::from_secs(10)).await?;
//! console.close().await?;
//! # Ok(())
//! # }
//! ```
//!
//! A device's access path is a URL (DESIGN.md §9). [`connector_for`] reads one and returns the
//! driver's [`Connector`], which opens [`mo_core::link::Link`]s to the device again and again as
//! the console actor needs them. Each driver module documents its address form:
//!
//! | scheme   | device | module | feature |
//! |----------|--------|--------|---------|
//! | `exec`   | a program on a pseudo-terminal, in its own session | [`exec`] | |
//! | `serial` | a local serial port (tokio-serial) | [`serial`] | |
//! | `unix`   | a Unix-domain stream socket | [`unix`] | |
//! | `telnet` | a telnet server (console-server port), `telnet://host:port` | [`telnet`] | |
//! | `rfc2217` | a serial port behind an RFC 2217 telnet server, `rfc2217://host:port?baud=…` | [`rfc2217`] | |
//! | `tcp`    | a raw TCP port, `tcp://host:port` | [`tcp`] | |
//! | `ssh`    | an SSH server (SSH-only gear, console-server SSH ports), `ssh://user@host[:port]` | [`ssh`] | `ssh` |
//! | `ipmi`   | a BMC's Serial over LAN (RMCP+), `ipmi://user@bmc[:port]?cipher=3` | [`ipmi`] | `ipmi` |
//! | `sim`    | a built-in simulated device | [`sim`] | |
//! | `cs`     | a port of a console server by profile, `cs://user@cs1/5?profile=opengear` | [`profile`] | |
//! | `agent`  | a port held by `mo-agent` on a console server, `agent://cs1/ttyS3` | [`agent`] | |
//!
//! # Cargo features
//!
//! All on by default. A program that only opens serial, telnet, exec, unix, tcp or sim consoles
//! can depend on `mo-drivers = { version = "0.1", default-features = false }` and builds none of
//! russh, reqwest, async-snmp, zstd or the IPMI ciphers:
//!
//! | feature | what it adds | brings in |
//! |---------|--------------|-----------|
//! | `ssh` | `ssh://` consoles, `known_hosts`, the agent enrollment fingerprint | russh, hmac, sha1 |
//! | `ipmi` | `ipmi://` Serial over LAN and IPMI chassis power | hmac, sha1, sha2, aes |
//! | `redfish` | `redfish://` power controllers | reqwest |
//! | `snmp` | `snmp://` PDU outlets, `snmp_trap` event actions | async-snmp |
//! | `webhook` | `webhook` event actions | reqwest, hmac, sha2 |
//! | `discover` | network discovery ([`discover`]) | `ipmi`, `snmp`, reqwest |
//!
//! A scheme whose feature is off stays known: [`connector_for`] and [`power_controller_for`]
//! answer [`mo_core::Error::BadAddress`] naming the feature.
//!
//! Parsing an address does no I/O; errors name the address and what is wrong with it. Every
//! driver is checked by one conformance suite (`tests/conformance.rs`) against a real peer.
//!
//! The crate root has what a program needs: [`connector_for`] and [`power_controller_for`] with
//! their [`DriverOptions`] and [`Credentials`], the connector and controller types, and mo-core's
//! [`Connector`] and [`Link`]. The protocol codecs (IPMI RMCP+, telnet, known_hosts, Redfish JSON)
//! stay public only for the fuzz targets and the integration tests and are hidden from the docs.
//!
//! ```
//! use mo_drivers::{DriverOptions, connector_for, schemes};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> mo_core::Result<()> {
//! let device = connector_for("exec:///bin/echo?arg=hello", &DriverOptions::default())?;
//! let mut link = device.connect().await?;
//! let mut output = Vec::new();
//! tokio::io::AsyncReadExt::read_to_end(&mut link.reader, &mut output).await
//!     .map_err(|e| mo_core::Error::io("reading", e))?;
//! assert_eq!(output, b"hello\r\n");
//!
//! let err = connector_for("telnot://cs1:7001", &DriverOptions::default()).unwrap_err();
//! assert!(err.to_string().contains("unknown scheme `telnot`"));
//! assert!(schemes().contains(&"serial"));
//! # Ok(())
//! # }
//! ```

pub mod action;
pub mod address;
pub mod agent;
pub mod credentials;
#[cfg(feature = "discover")]
pub mod discover;
pub mod exec;
pub mod host;
#[cfg(feature = "ipmi")]
pub mod ipmi;
pub mod power;
pub mod profile;
pub mod reach;
pub mod rfc2217;
pub mod serial;
pub mod sim;
#[cfg(feature = "ssh")]
pub mod ssh;
pub mod tcp;
pub mod telnet;
pub mod terminal;
pub mod unix;

use std::sync::Arc;

use mo_core::Result;

pub use address::DriverOptions;
pub use credentials::{Credentials, Secret};
pub use exec::{ExecConnector, ExecSpec};
#[cfg(feature = "ipmi")]
pub use ipmi::{IpmiConnector, IpmiPower};
/// The link types every driver produces (from mo-core), so a program needs one import.
pub use mo_core::link::{Connector, Link};
#[cfg(feature = "redfish")]
pub use power::RedfishController;
#[cfg(feature = "snmp")]
pub use power::SnmpOutlets;
pub use power::{ExecPowerController, power_controller_for, power_schemes};
pub use rfc2217::Rfc2217Connector;
pub use serial::{LineSettings, SerialConnector};
pub use sim::SimConnector;
#[cfg(feature = "ssh")]
pub use ssh::SshConnector;
pub use tcp::TcpConnector;
pub use telnet::TelnetConnector;
pub use unix::UnixConnector;

/// The URL schemes this crate has drivers for, in the order they are listed in messages.
const SCHEMES: &[&str] = &[
    "exec", "serial", "unix", "telnet", "rfc2217", "tcp", "ssh", "ipmi", "sim", "cs", "agent",
];

/// The URL schemes this crate has drivers for.
///
/// ```
/// assert_eq!(
///     mo_drivers::schemes(),
///     ["exec", "serial", "unix", "telnet", "rfc2217", "tcp", "ssh", "ipmi", "sim", "cs", "agent"]
/// );
/// ```
pub fn schemes() -> &'static [&'static str] {
    SCHEMES
}

/// The connector for the device at `url`. Nothing is opened yet: this only reads the address,
/// and fails with [`mo_core::Error::BadAddress`] naming the address and what is wrong.
pub fn connector_for(url: &str, opts: &DriverOptions) -> Result<Arc<dyn Connector>> {
    let parsed = address::parse_schemed(url, SCHEMES, "serial:///dev/ttyS0")?;
    Ok(match parsed.scheme() {
        "exec" => Arc::new(ExecConnector::from_url(&parsed, url, opts)?),
        "serial" => Arc::new(SerialConnector::from_url(&parsed, url, opts)?),
        "unix" => Arc::new(UnixConnector::from_url(&parsed, url, opts)?),
        "telnet" => Arc::new(TelnetConnector::from_url(&parsed, url, opts)?),
        "rfc2217" => Arc::new(Rfc2217Connector::from_url(&parsed, url, opts)?),
        "tcp" => Arc::new(TcpConnector::from_url(&parsed, url, opts)?),
        #[cfg(feature = "ssh")]
        "ssh" => Arc::new(SshConnector::from_url(&parsed, url, opts)?),
        #[cfg(feature = "ipmi")]
        "ipmi" => Arc::new(IpmiConnector::from_url(&parsed, url, opts)?),
        "sim" => Arc::new(sim_connector(&parsed, url)?),
        "cs" => return connector_for(&profile::resolve_url(&parsed, url)?, opts),
        "agent" => Arc::new(agent::AgentConnector::from_url(&parsed, url, opts)?),
        #[cfg(not(feature = "ssh"))]
        "ssh" => return Err(not_built(url, "ssh")),
        #[cfg(not(feature = "ipmi"))]
        "ipmi" => return Err(not_built(url, "ipmi")),
        other => {
            return Err(address::bad(
                url,
                format!("unknown scheme `{other}` (known: {})", SCHEMES.join(", ")),
            ));
        }
    })
}

/// The error for an address whose driver this build of mo-drivers leaves out (its Cargo feature
/// `feature` is off).
#[cfg(not(all(
    feature = "ssh",
    feature = "ipmi",
    feature = "redfish",
    feature = "snmp"
)))]
pub(crate) fn not_built(address: &str, feature: &str) -> mo_core::Error {
    address::bad(
        address,
        format!(
            "this program was built without the `{feature}` driver \
             (mo-drivers' Cargo feature `{feature}` is off)"
        ),
    )
}

/// `sim://NAME?OPTIONS`: the name is the host part; options are the simulator's.
fn sim_connector(url: &url::Url, address: &str) -> Result<SimConnector> {
    address::expect_no_fragment(url, address)?;
    if !url.username().is_empty() || url.password().is_some() || url.port().is_some() {
        return Err(address::bad(
            address,
            "`sim` addresses take no user name, password or port; write sim://NAME",
        ));
    }
    if !matches!(url.path(), "" | "/") {
        return Err(address::bad(
            address,
            format!("unexpected path `{}`; write sim://NAME", url.path()),
        ));
    }
    let host = url.host_str().unwrap_or_default();
    let name = percent_encoding::percent_decode_str(host)
        .decode_utf8()
        .map_err(|_| address::bad(address, "the device name is not valid UTF-8"))?;
    if name.is_empty() {
        return Err(address::bad(address, "no device name; write sim://NAME"));
    }
    let options = sim::SimOptions::from_query(url)?;
    Ok(SimConnector::new(&name, options))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn picks_the_driver_by_scheme() {
        let opts = DriverOptions::default();
        let exec = connector_for("exec:///bin/cat", &opts).unwrap();
        assert!(exec.capabilities().window_size);
        let serial = connector_for("serial:///dev/ttyS0?baud=115200", &opts).unwrap();
        assert!(serial.capabilities().send_break);
        let unix = connector_for("unix:///run/x.sock", &opts).unwrap();
        assert_eq!(unix.address(), "unix:///run/x.sock");
        let sim = connector_for("sim://sim-01", &opts).unwrap();
        assert!(sim.address().contains("sim-01"), "{}", sim.address());
        let telnet = connector_for("telnet://cs1:7001", &opts).unwrap();
        assert!(telnet.capabilities().send_break && telnet.capabilities().window_size);
        let rfc2217 = connector_for("rfc2217://cs1:7001?baud=19200", &opts).unwrap();
        let caps = rfc2217.capabilities();
        assert!(caps.send_break && caps.line_settings && !caps.window_size);
        assert_eq!(rfc2217.address(), "rfc2217://cs1:7001?baud=19200");
        let tcp = connector_for("tcp://cs1:7003", &opts).unwrap();
        assert_eq!(tcp.capabilities(), mo_core::link::Capabilities::NONE);
        #[cfg(feature = "ssh")]
        {
            let ssh = connector_for("ssh://admin:port5@cs1", &opts).unwrap();
            assert!(ssh.capabilities().window_size && !ssh.capabilities().send_break);
        }
    }

    /// A driver left out of the build is still a known scheme: its addresses fail with an error
    /// that names the Cargo feature, not "unknown scheme".
    #[cfg(not(all(feature = "ssh", feature = "ipmi")))]
    #[test]
    fn a_driver_left_out_names_its_feature() {
        let opts = DriverOptions::default();
        for (address, feature) in [("ssh://admin@cs1", "ssh"), ("ipmi://admin@bmc1", "ipmi")] {
            let Err(err) = connector_for(address, &opts) else {
                continue; // This driver is built in.
            };
            let text = err.to_string();
            assert!(
                text.contains(&format!("Cargo feature `{feature}` is off")),
                "{address}: {text}"
            );
        }
    }

    #[test]
    fn errors_name_the_address_and_the_problem() {
        let opts = DriverOptions::default();
        for (address, needle) in [
            (
                "telnot://cs1:7001",
                "unknown scheme `telnot` (known: exec, serial, unix, telnet, rfc2217, tcp, ssh, ipmi, sim, cs, agent)",
            ),
            ("/dev/ttyS0", "no scheme"),
            ("", "no scheme"),
            ("exec://[::1", "not a URL"),
            ("sim://", "no device name"),
            ("sim://a/b", "unexpected path `/b`"),
            ("sim://u@a", "no user name"),
            ("sim://a#x", "fragment"),
        ] {
            let err = connector_for(address, &opts).unwrap_err();
            let text = err.to_string();
            assert!(
                matches!(err, mo_core::Error::BadAddress { .. }),
                "{address}: {text}"
            );
            assert!(text.contains(needle), "{address}: {text}");
            assert!(text.contains(&format!("`{address}`")), "{address}: {text}");
        }
    }

    /// Addresses come from config files and users: no input may panic the parser.
    #[test]
    fn random_addresses_never_panic() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed_0002);
        let prefixes = [
            "exec:",
            "exec://",
            "exec:///",
            "serial:///",
            "serial:",
            "unix:",
            "unix:///",
            "sim://",
            "sim:",
            "tcp://",
            "telnet://",
            "rfc2217://",
            "rfc2217://h:1?baud=",
            "tcp://h:",
            "ssh://",
            "ssh://u:",
            "",
            "EXEC:///",
        ];
        let alphabet: Vec<char> = "abz019/:?&=#%+@[]. -_~\u{0}\u{e9}\u{1F600}"
            .chars()
            .collect();
        let opts = DriverOptions::new().with_base_dir("/tmp");
        let mut accepted = 0;
        for _ in 0..20_000 {
            let mut text = prefixes[rng.random_range(0..prefixes.len())].to_owned();
            for _ in 0..rng.random_range(0..30) {
                text.push(alphabet[rng.random_range(0..alphabet.len())]);
            }
            if connector_for(&text, &opts).is_ok() {
                accepted += 1;
            }
        }
        // Both outcomes occur, so the test exercises parsing past the scheme.
        assert!(accepted > 0);
        assert!(accepted < 20_000);
    }
}
