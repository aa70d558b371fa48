//! A device bound to one or more power controllers (DESIGN.md §5).
//!
//! A server with dual power supplies hangs on two PDU outlets (or an outlet and a BMC); both must
//! switch together or the machine never goes dark: off = all off, on = all on, cycle = all off,
//! wait, all on. [`PowerBinding`] is itself a [`PowerController`], so front ends and
//! [`super::GroupOperation`] treat a bound device like any single controller.
//!
//! ```
//! # use std::sync::Arc;
//! # use mo_core::power::{PowerBinding, PowerController};
//! # fn demo(psu_a: Arc<dyn PowerController>, psu_b: Arc<dyn PowerController>) -> mo_core::Result<()> {
//! let server = PowerBinding::new("db1", vec![psu_a, psu_b])?
//!     .with_cycle_delay(std::time::Duration::from_secs(5));
//! assert_eq!(server.device(), "db1");
//! # Ok(()) }
//! ```

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::task::JoinSet;

use super::{PowerAction, PowerCapabilities, PowerController, PowerState};
use crate::error::{Error, Result};

/// How long a cycle of several controllers waits between "all off" and "all on" by default.
pub const DEFAULT_CYCLE_DELAY: Duration = Duration::from_secs(3);

/// One device and every power controller that feeds it.
#[derive(Debug, Clone)]
pub struct PowerBinding {
    device: String,
    address: String,
    controllers: Vec<Arc<dyn PowerController>>,
    cycle_delay: Duration,
}

impl PowerBinding {
    /// Bind `device` to `controllers` (at least one). Errors name the device.
    pub fn new(
        device: impl Into<String>,
        controllers: Vec<Arc<dyn PowerController>>,
    ) -> Result<Self> {
        let device = device.into();
        if controllers.is_empty() {
            return Err(Error::BadSpec {
                what: "power binding",
                input: device,
                reason: "a device needs at least one power controller".to_owned(),
            });
        }
        let targets: Vec<&str> = controllers.iter().map(|c| c.address()).collect();
        let address = format!("{device} ({})", targets.join(" + "));
        Ok(Self {
            device,
            address,
            controllers,
            cycle_delay: DEFAULT_CYCLE_DELAY,
        })
    }

    /// Set the wait between "all off" and "all on" of a cycle over several controllers.
    pub fn with_cycle_delay(mut self, delay: Duration) -> Self {
        self.cycle_delay = delay;
        self
    }

    /// The device's name.
    pub fn device(&self) -> &str {
        &self.device
    }

    /// The controllers, in the order given.
    pub fn controllers(&self) -> &[Arc<dyn PowerController>] {
        &self.controllers
    }

    /// The wait between "all off" and "all on" of a cycle.
    pub fn cycle_delay(&self) -> Duration {
        self.cycle_delay
    }

    /// The state of every controller, in order, each with its own result.
    pub async fn status_each(&self) -> Vec<(String, Result<PowerState>)> {
        let mut tasks = JoinSet::new();
        for (index, controller) in self.controllers.iter().enumerate() {
            let controller = Arc::clone(controller);
            tasks.spawn(async move { (index, controller.status().await) });
        }
        let mut results: Vec<Option<Result<PowerState>>> =
            (0..self.controllers.len()).map(|_| None).collect();
        while let Some(joined) = tasks.join_next().await {
            if let Ok((index, result)) = joined
                && let Some(slot) = results.get_mut(index)
            {
                *slot = Some(result);
            }
        }
        self.controllers
            .iter()
            .zip(results)
            .map(|(c, r)| {
                let r = r.unwrap_or_else(|| {
                    Err(Error::Protocol {
                        peer: c.address().to_owned(),
                        reason: "the status task stopped unexpectedly".to_owned(),
                    })
                });
                (c.address().to_owned(), r)
            })
            .collect()
    }

    /// Run `action` on every controller at once; one error naming the device and each failed
    /// controller when any fails.
    async fn all(&self, action: PowerAction) -> Result<()> {
        if let [only] = self.controllers.as_slice() {
            return only.perform(action).await;
        }
        let mut tasks = JoinSet::new();
        for controller in &self.controllers {
            let controller = Arc::clone(controller);
            tasks.spawn(async move {
                let result = controller.perform(action).await;
                (controller.address().to_owned(), result)
            });
        }
        let mut failures = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((_, Ok(()))) => {}
                Ok((address, Err(e))) => failures.push(format!("{address}: {e}")),
                Err(e) => failures.push(format!("a power task stopped: {e}")),
            }
        }
        if failures.is_empty() {
            return Ok(());
        }
        failures.sort();
        Err(Error::Protocol {
            peer: format!("device {}", self.device),
            reason: format!(
                "{action} failed on {} of {} power controllers: {}",
                failures.len(),
                self.controllers.len(),
                failures.join("; ")
            ),
        })
    }
}

/// Combine the states of several supplies: on when any supply is on (the device has power), off
/// when all are off, unknown otherwise.
pub fn combine_states(states: impl IntoIterator<Item = PowerState>) -> PowerState {
    let mut all_off = true;
    let mut any = false;
    for state in states {
        any = true;
        match state {
            PowerState::On => return PowerState::On,
            PowerState::Off => {}
            PowerState::Unknown => all_off = false,
        }
    }
    if any && all_off {
        PowerState::Off
    } else {
        PowerState::Unknown
    }
}

#[async_trait]
impl PowerController for PowerBinding {
    fn address(&self) -> &str {
        &self.address
    }

    fn capabilities(&self) -> PowerCapabilities {
        let mut caps = PowerCapabilities::ALL;
        for c in &self.controllers {
            let each = c.capabilities();
            caps.status &= each.status;
            caps.on_off &= each.on_off;
            caps.reset &= each.reset;
            caps.soft_off &= each.soft_off;
        }
        // A cycle is always possible as off, wait, on.
        caps.cycle = caps.on_off;
        caps
    }

    async fn status(&self) -> Result<PowerState> {
        let mut states = Vec::new();
        for (address, result) in self.status_each().await {
            match result {
                Ok(state) => states.push(state),
                Err(e) if self.controllers.len() == 1 => return Err(e),
                Err(e) => {
                    return Err(Error::Protocol {
                        peer: format!("device {}", self.device),
                        reason: format!("status of {address} failed: {e}"),
                    });
                }
            }
        }
        Ok(combine_states(states))
    }

    async fn perform(&self, action: PowerAction) -> Result<()> {
        let caps = self.capabilities();
        if !caps.supports(action) {
            return Err(Error::Unsupported {
                operation: action.name(),
                what: format!("device {}", self.device),
            });
        }
        match action {
            PowerAction::Cycle => {
                if let [only] = self.controllers.as_slice()
                    && only.capabilities().cycle
                {
                    return only.perform(PowerAction::Cycle).await;
                }
                self.all(PowerAction::Off).await?;
                tokio::time::sleep(self.cycle_delay).await;
                self.all(PowerAction::On).await
            }
            other => self.all(other).await,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::power::testing::Recorder;

    #[test]
    fn states_combine() {
        use PowerState::*;
        assert_eq!(combine_states([On, Off]), On);
        assert_eq!(combine_states([Off, Off]), Off);
        assert_eq!(combine_states([Off, Unknown]), Unknown);
        assert_eq!(combine_states([]), Unknown);
    }

    #[test]
    fn empty_binding_is_refused() {
        let err = PowerBinding::new("db1", vec![]).unwrap_err().to_string();
        assert!(err.contains("db1") && err.contains("at least one"), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn dual_supplies_cycle_all_off_then_all_on() {
        let log = Recorder::log();
        let a = Recorder::new("a", &log, PowerCapabilities::ALL);
        let b = Recorder::new("b", &log, PowerCapabilities::ALL);
        let binding = PowerBinding::new("db1", vec![a.clone(), b.clone()])
            .unwrap()
            .with_cycle_delay(Duration::from_secs(5));
        let start = tokio::time::Instant::now();
        binding.perform(PowerAction::Cycle).await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_secs(5));
        let events = Recorder::events(&log);
        // Both offs come before both ons; nobody was asked to cycle natively.
        assert_eq!(events.len(), 4, "{events:?}");
        assert!(
            events[..2].iter().all(|e| e.ends_with(":off")),
            "{events:?}"
        );
        assert!(events[2..].iter().all(|e| e.ends_with(":on")), "{events:?}");
        assert_eq!(binding.status().await.unwrap(), PowerState::On);
        b.set_state(PowerState::Off);
        assert_eq!(binding.status().await.unwrap(), PowerState::On);
        binding.perform(PowerAction::Off).await.unwrap();
        assert_eq!(binding.status().await.unwrap(), PowerState::Off);
    }

    #[tokio::test]
    async fn single_controller_cycles_natively_and_failures_name_device() {
        let log = Recorder::log();
        let a = Recorder::new("a", &log, PowerCapabilities::ALL);
        let one = PowerBinding::new("web1", vec![a.clone()]).unwrap();
        one.perform(PowerAction::Cycle).await.unwrap();
        assert_eq!(Recorder::events(&log), vec!["a:cycle".to_owned()]);

        let b = Recorder::new("b", &log, PowerCapabilities::ALL);
        b.fail_with("outlet jammed");
        let two = PowerBinding::new("db2", vec![a, b]).unwrap();
        let err = two.perform(PowerAction::Off).await.unwrap_err().to_string();
        assert!(err.contains("device db2"), "{err}");
        assert!(
            err.contains("1 of 2") && err.contains("test://b") && err.contains("outlet jammed"),
            "{err}"
        );

        let c = Recorder::new("c", &log, PowerCapabilities::ALL.with_reset(false));
        let three = PowerBinding::new("db3", vec![c]).unwrap();
        let err = three
            .perform(PowerAction::Reset)
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(err, "reset is not supported by device db3");
    }
}
