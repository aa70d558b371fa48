//! Power controllers: addresses to [`PowerController`]s (DESIGN.md §5, §9).
//!
//! [`power_controller_for`] reads a power address and returns its controller; nothing is sent
//! until the first operation. Secrets come from [`DriverOptions::credentials`], never from the
//! address.
//!
//! | address | controller | module |
//! |---------|------------|--------|
//! | `redfish://USER@BMC[:PORT]/Systems/ID[?tls=0&fingerprint=SHA256&ca=PEM&wait=60s]` | Redfish `ComputerSystem.Reset` + `PowerState` polling | [`redfish`] |
//! | `snmp://[USER@]PDU[:PORT]/PROFILE/OUTLET[,OUTLET…][?…]` | PDU outlets over SNMP v2c / v3 authPriv | [`snmp`] |
//! | `exec:///PROGRAM?arg=…&arg={action}&device=NAME` | a program run per action, no shell | [`exec`] |
//!
//! ```
//! use mo_drivers::{Credentials, DriverOptions, power::power_controller_for};
//! let opts = DriverOptions::new().with_credentials(Credentials::new().with_snmp_auth("private"));
//! let outlet = power_controller_for("snmp://pdu1/apc/3", &opts).unwrap();
//! assert_eq!(outlet.address(), "snmp://pdu1/apc/3");
//! let err = power_controller_for("snmp://pdu1/acme/3", &opts).unwrap_err();
//! assert!(err.to_string().contains("unknown PDU profile `acme`"));
//! ```

pub mod exec;
#[cfg(feature = "redfish")]
pub mod redfish;
#[cfg(feature = "snmp")]
pub mod snmp;
#[cfg(feature = "snmp")]
pub mod snmp_profiles;

use std::sync::Arc;

use mo_core::Result;
use mo_core::power::PowerController;

use crate::address::{self, DriverOptions};

pub use exec::ExecPowerController;
#[cfg(feature = "redfish")]
pub use redfish::RedfishController;
#[cfg(feature = "snmp")]
pub use snmp::{SnmpOutlets, SnmpPdu};
#[cfg(feature = "snmp")]
pub use snmp_profiles::PduProfile;

/// The power address schemes this module understands, in the order messages list them.
const POWER_SCHEMES: &[&str] = &["ipmi", "redfish", "snmp", "exec"];

/// The power address schemes known here.
pub fn power_schemes() -> &'static [&'static str] {
    POWER_SCHEMES
}

/// The controller for the power target at `url`. Only reads the address (and checks that the
/// secrets it needs are present); errors are [`mo_core::Error::BadAddress`] naming the address.
pub fn power_controller_for(url: &str, opts: &DriverOptions) -> Result<Arc<dyn PowerController>> {
    let parsed = address::parse_schemed(url, POWER_SCHEMES, "snmp://pdu1/apc/3")?;
    Ok(match parsed.scheme() {
        #[cfg(feature = "redfish")]
        "redfish" => Arc::new(RedfishController::from_url(&parsed, url, opts)?),
        #[cfg(feature = "snmp")]
        "snmp" => Arc::new(SnmpOutlets::from_url(&parsed, url, opts)?),
        "exec" => Arc::new(ExecPowerController::from_url(&parsed, url, opts)?),
        #[cfg(feature = "ipmi")]
        "ipmi" => Arc::new(crate::ipmi::IpmiPower::new(
            crate::ipmi::IpmiConfig::from_url(&parsed, url, opts)?,
        )),
        #[cfg(not(feature = "redfish"))]
        "redfish" => return Err(crate::not_built(url, "redfish")),
        #[cfg(not(feature = "snmp"))]
        "snmp" => return Err(crate::not_built(url, "snmp")),
        #[cfg(not(feature = "ipmi"))]
        "ipmi" => return Err(crate::not_built(url, "ipmi")),
        other => {
            return Err(address::bad(
                url,
                format!(
                    "unknown power scheme `{other}` (known: {})",
                    POWER_SCHEMES.join(", ")
                ),
            ));
        }
    })
}

/// A duration parameter (`500ms`, `10s`, `2m`, or plain seconds).
pub(crate) fn parse_duration(text: &str) -> std::result::Result<std::time::Duration, String> {
    let expected = || "a duration such as 500ms, 10s or 2m".to_owned();
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().map_err(|_| expected())?;
    let seconds = match unit.trim() {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" | "min" => value * 60.0,
        _ => return Err(expected()),
    };
    if !(0.0..=86_400.0).contains(&seconds) {
        return Err(expected());
    }
    Ok(std::time::Duration::from_secs_f64(seconds))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("500ms").unwrap().as_millis(), 500);
        assert_eq!(parse_duration("2m").unwrap().as_secs(), 120);
        assert_eq!(parse_duration("3").unwrap().as_secs(), 3);
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn unknown_scheme_names_the_address() {
        let err = power_controller_for("ipmx://bmc", &DriverOptions::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "bad address `ipmx://bmc`: unknown power scheme `ipmx` (known: ipmi, redfish, snmp, exec)"
        );
    }

    /// Power addresses come from config files: no input may panic the parsers.
    #[test]
    fn random_power_addresses_never_panic() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed_0004);
        let prefixes = [
            "snmp://pdu/",
            "snmp://u@pdu:1/apc/",
            "snmp://pdu/generic/1?",
            "redfish://u@bmc/",
            "redfish://bmc/Systems/",
            "exec:///bin/",
            "exec:///bin/true?arg=",
            "",
        ];
        let alphabet: Vec<char> = "abz019/:?&=#%,.@[]-_{}\u{e9}".chars().collect();
        let opts = DriverOptions::new().with_credentials(
            crate::Credentials::new()
                .with_password("pw")
                .with_snmp_auth("authpass1")
                .with_snmp_privacy("privpass1"),
        );
        let mut accepted = 0;
        for _ in 0..5_000 {
            let mut text = prefixes[rng.random_range(0..prefixes.len())].to_owned();
            for _ in 0..rng.random_range(0..24) {
                text.push(alphabet[rng.random_range(0..alphabet.len())]);
            }
            if power_controller_for(&text, &opts).is_ok() {
                accepted += 1;
            }
        }
        assert!(accepted > 0 && accepted < 5_000, "{accepted}");
    }
}
