//! IPMI chassis power control: Get Chassis Status and Chassis Control, as a
//! [`PowerController`]. Each operation opens its own RMCP+ session and closes it again, so a
//! controller holds no state between calls and a restarted BMC needs nothing special.
//!
//! ```
//! use mo_core::power::PowerController;
//! use mo_drivers::ipmi::IpmiPower;
//! use mo_drivers::DriverOptions;
//! let power = IpmiPower::from_address("ipmi://admin@bmc1", &DriverOptions::default()).unwrap();
//! assert_eq!(power.address(), "ipmi://admin@bmc1");
//! assert!(power.capabilities().soft_off);
//! ```

use async_trait::async_trait;
use mo_core::power::{PowerAction, PowerCapabilities, PowerController, PowerState};
use mo_core::{Error, Result};

use super::IpmiConfig;
use super::session::{NETFN_CHASSIS, RmcpSession};
use crate::address::DriverOptions;

const CMD_GET_CHASSIS_STATUS: u8 = 0x01;
const CMD_CHASSIS_CONTROL: u8 = 0x02;

/// The Chassis Control code of `action` (IPMI 2.0 §28.3).
pub fn control_code(action: PowerAction) -> u8 {
    match action {
        PowerAction::Off => 0x00,
        PowerAction::On => 0x01,
        PowerAction::Cycle => 0x02,
        PowerAction::Reset => 0x03,
        PowerAction::SoftOff => 0x05,
    }
}

/// The power state in a Get Chassis Status response (bit 0 of the first byte).
pub fn state_of(data: &[u8]) -> Option<PowerState> {
    data.first().map(|b| {
        if b & 0x01 != 0 {
            PowerState::On
        } else {
            PowerState::Off
        }
    })
}

/// A BMC's chassis as a power target.
#[derive(Debug, Clone)]
pub struct IpmiPower {
    config: IpmiConfig,
}

impl IpmiPower {
    /// A controller for the BMC of `config`.
    pub fn new(config: IpmiConfig) -> Self {
        IpmiPower { config }
    }

    /// A controller for `ipmi://USER@BMC[:PORT][?cipher=…&privilege=…&timeout=…]`, password
    /// from `opts.credentials`.
    pub fn from_address(address: &str, opts: &DriverOptions) -> Result<Self> {
        Ok(Self::new(IpmiConfig::from_address(address, opts)?))
    }

    /// The configuration in use.
    pub fn config(&self) -> &IpmiConfig {
        &self.config
    }

    /// Run one chassis command in a fresh session; a non-zero completion code is an error.
    async fn command(&self, cmd: u8, data: &[u8], what: &str) -> Result<Vec<u8>> {
        let mut session = RmcpSession::open(&self.config).await?;
        let result = session.request(NETFN_CHASSIS, cmd, data).await;
        session.close().await;
        let reply = result?;
        match reply.completion {
            0 => Ok(reply.data),
            0xD4 => Err(Error::Auth {
                target: self.config.display.clone(),
                reason: format!(
                    "{what}: insufficient privilege (completion code 0xd4) at level {}",
                    self.config.privilege.name()
                ),
            }),
            code => Err(Error::Protocol {
                peer: self.config.display.clone(),
                reason: format!("{what} failed with completion code {code:#04x}"),
            }),
        }
    }
}

#[async_trait]
impl PowerController for IpmiPower {
    fn address(&self) -> &str {
        &self.config.display
    }

    fn capabilities(&self) -> PowerCapabilities {
        PowerCapabilities::ALL
    }

    async fn status(&self) -> Result<PowerState> {
        let data = self
            .command(CMD_GET_CHASSIS_STATUS, &[], "Get Chassis Status")
            .await?;
        state_of(&data).ok_or_else(|| Error::Protocol {
            peer: self.config.display.clone(),
            reason: "Get Chassis Status returned no data".to_owned(),
        })
    }

    async fn perform(&self, action: PowerAction) -> Result<()> {
        let what = format!("Chassis Control {action}");
        self.command(CMD_CHASSIS_CONTROL, &[control_code(action)], &what)
            .await
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_states() {
        assert_eq!(control_code(PowerAction::SoftOff), 5);
        assert_eq!(control_code(PowerAction::Cycle), 2);
        assert_eq!(state_of(&[0x61, 0, 0]), Some(PowerState::On));
        assert_eq!(state_of(&[0x60]), Some(PowerState::Off));
        assert_eq!(state_of(&[]), None);
    }
}
