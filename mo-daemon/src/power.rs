//! Power control by device name, shared by the SSH shell, the escape-sequence power menu, the API
//! and event actions: the wiring of [`mo_core::power::PowerService`] (one timeline: `power`
//! records and events for every action; the `--power-poll` poller) to the registry's devices, the
//! store's device groups and the policy's view of who sees what.
//!
//! A device's power controllers (its `--power` addresses, bound together for dual supplies) come
//! from the registry ([`target`]); the shell's `power` words are read by
//! [`mo_core::door::power::PowerArgs`].

use std::sync::{Arc, Weak};
use std::time::Duration;

use mo_core::glob::glob_match;
use mo_core::power::{
    PlanOutcome, PowerAction, PowerController, PowerPlan, PowerResult, PowerService, PowerState,
    PowerTarget, Unavailable, read_states,
};
use mo_core::selector::Selector;

use crate::Ctx;
use crate::registry::{Entry, Registry};

/// How many devices are switched at once by one command (unless it says otherwise).
const PARALLELISM: usize = mo_core::power::service::PARALLELISM;
/// How long reading one device's state may take.
const DEVICE_TIMEOUT: Duration = mo_core::power::service::DEVICE_TIMEOUT;

/// The registry entries named by `patterns` (names, globs, or `@GROUP` for a device group), in
/// the order given, without duplicates, among the devices `user` may see. Errors name a pattern
/// that matched nothing.
pub fn select(ctx: &Ctx, user: &str, patterns: &[&str]) -> Result<Vec<Entry>, String> {
    let all = ctx.visible(user);
    let names: Vec<&str> = all.iter().map(|e| e.device.name.as_str()).collect();
    let picked = mo_core::selector::select(patterns, &names, |group| {
        let group = ctx
            .store
            .device_group(group)
            .map_err(|e| mo_core::Error::NotFound {
                what: e.to_string(),
            })?;
        Ok(move |device: &str| group.contains(device))
    })
    .map_err(|e| e.to_string())?;
    Ok(picked
        .iter()
        .filter_map(|name| all.iter().find(|e| e.device.name == *name).cloned())
        .collect())
}

/// A device name pattern of a power command: a glob or `@GROUP`.
pub enum Matcher {
    /// A name or glob (`web*`).
    Glob(String),
    /// A device group of the store.
    Group(mo_core::policy::DeviceGroup),
}

impl Matcher {
    /// Read `pattern`; `@NAME` looks the device group up in the store.
    pub fn new(ctx: &Ctx, pattern: &str) -> Result<Matcher, String> {
        match Selector::parse(pattern) {
            Selector::Group(group) => ctx
                .store
                .device_group(group)
                .map(Matcher::Group)
                .map_err(|e| format!("{e}")),
            Selector::Name(name) => Ok(Matcher::Glob(name.to_owned())),
        }
    }

    /// Whether `device` is matched.
    pub fn matches(&self, device: &str) -> bool {
        match self {
            Matcher::Glob(g) => glob_match(g, device),
            Matcher::Group(g) => g.contains(device),
        }
    }
}

/// The device's bound power controllers, or why there are none.
pub fn controller(entry: &Entry) -> Result<Arc<dyn PowerController>, String> {
    if let Some(error) = &entry.power_error {
        return Err(format!(
            "{}: power control is broken: {error}",
            entry.device.name
        ));
    }
    match &entry.power {
        Some(binding) => Ok(binding.clone()),
        None => Err(format!(
            "{}: no power controller (set one with `mo device set {} --power URL`)",
            entry.device.name, entry.device.name
        )),
    }
}

/// The device as the power service sees it: name, controller (or why none), console.
pub fn target(entry: &Entry) -> PowerTarget {
    PowerTarget {
        device: entry.device.name.clone(),
        controller: controller(entry).map_err(Unavailable::new),
        console: entry.console.clone(),
    }
}

/// The status of each device, one line each: `web01: on` or `web01: error: …`.
pub async fn status(entries: &[Entry]) -> Vec<(String, Result<PowerState, String>)> {
    status_within(entries, DEVICE_TIMEOUT).await
}

/// [`status`] with a time limit per device.
pub async fn status_within(
    entries: &[Entry],
    limit: Duration,
) -> Vec<(String, Result<PowerState, String>)> {
    let targets: Vec<PowerTarget> = entries.iter().map(target).collect();
    read_states(&targets, limit)
        .await
        .into_iter()
        .map(|(name, state)| (name, state.map_err(|e| e.to_string())))
        .collect()
}

/// A group operation: stages of devices run one after the other.
pub struct Plan {
    /// The devices, stage by stage.
    pub stages: Vec<Vec<Entry>>,
    /// The wait between stages.
    pub stage_delay: Duration,
    /// How many devices of a stage are switched at once.
    pub parallelism: usize,
    /// The wait between starting two devices of a stage.
    pub stagger: Duration,
    /// Skip later stages once a device failed.
    pub stop_on_failure: bool,
}

impl Plan {
    /// One stage holding every device, [`PARALLELISM`] at once.
    pub fn single(entries: &[Entry]) -> Plan {
        Plan {
            stages: vec![entries.to_vec()],
            stage_delay: Duration::ZERO,
            parallelism: PARALLELISM,
            stagger: Duration::ZERO,
            stop_on_failure: false,
        }
    }
}

impl Plan {
    /// The plan for the power service.
    fn to_power_plan(&self) -> PowerPlan {
        PowerPlan {
            stages: self
                .stages
                .iter()
                .map(|stage| stage.iter().map(target).collect())
                .collect(),
            stage_delay: self.stage_delay,
            parallelism: self.parallelism,
            stagger: self.stagger,
            stop_on_failure: self.stop_on_failure,
        }
    }
}

/// Perform `action` on every device (in parallel, at most [`PARALLELISM`] at once) through
/// `power`, calling `progress` with one line per step. Returns one result per device.
pub async fn perform(
    power: &PowerService,
    entries: &[Entry],
    action: PowerAction,
    user: &str,
    progress: impl FnMut(String) + Send,
) -> Vec<PowerResult> {
    perform_plan(power, &Plan::single(entries), action, user, progress)
        .await
        .results
}

/// Run `plan` with `action` as `user` through `power`, calling `progress` with one line per
/// step (stage starts, waits, each device's start and end).
pub async fn perform_plan(
    power: &PowerService,
    plan: &Plan,
    action: PowerAction,
    user: &str,
    progress: impl FnMut(String) + Send,
) -> PlanOutcome {
    let outcome = power
        .perform(&plan.to_power_plan(), action, user, progress)
        .await;
    for result in &outcome.results {
        crate::opsmetrics::power(action.name(), result.ok);
    }
    outcome
}

/// Start the poller of `mod --power-poll`: every `every`, the state of each device of the
/// registry with a power controller; changes no mo action made are logged and raised. Ends once
/// the registry is gone.
pub fn start_poller(
    power: Arc<PowerService>,
    registry: Weak<Registry>,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        power
            .poll(every, || {
                let registry = registry.upgrade()?;
                Some(
                    registry
                        .list()
                        .iter()
                        .filter(|e| e.power.is_some())
                        .map(target)
                        .collect(),
                )
            })
            .await;
    })
}

pub use mo_core::door::power::{POWER_USAGE as USAGE, PowerArgs};

/// Read the words of a shell `power` line after the action; the error is the message to show.
pub fn parse_args(words: &[&str]) -> Result<PowerArgs, String> {
    PowerArgs::parse(words).map_err(|e| e.message(USAGE))
}

/// The plan for `entries` (selected from the targets of `args`): stages by `--order`.
pub fn plan(ctx: &Ctx, args: &PowerArgs, entries: &[Entry]) -> Result<Plan, String> {
    let matchers = args
        .order
        .iter()
        .map(|p| Ok((p.as_str(), Matcher::new(ctx, p)?)))
        .collect::<Result<Vec<_>, String>>()?;
    let mut stages: Vec<Vec<Entry>> = vec![Vec::new(); matchers.len() + 1];
    for entry in entries {
        let at = args.stage_of(&entry.device.name, |pattern, name| {
            matchers
                .iter()
                .any(|(p, m)| *p == pattern && m.matches(name))
        });
        if let Some(stage) = stages.get_mut(at) {
            stage.push(entry.clone());
        }
    }
    stages.retain(|s| !s.is_empty());
    Ok(Plan {
        stages,
        stage_delay: args.delay.unwrap_or(Duration::ZERO),
        parallelism: args.parallel.unwrap_or(PARALLELISM),
        stagger: args.stagger.unwrap_or(Duration::ZERO),
        stop_on_failure: args.stop_on_failure,
    })
}
