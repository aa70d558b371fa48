//! Power control by device, on one timeline with the console (issue 4 item 8): every action is
//! written into the device's record log as a `power` record the moment it starts and when it
//! ends, and its outcome is raised as a `power` event. [`PowerService::poll`] reads the state of
//! every bound device now and then and reports a change nobody made through mo (someone pressed
//! the button, the PDU tripped) the same way.
//!
//! The service is what the daemon, and any program embedding mo-core, shares between its front
//! doors and its event actions: one per process, passed around in an `Arc`. It knows no store and
//! no registry; callers hand it [`PowerTarget`]s (a device's name, its bound controller, its
//! console).
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use mo_core::power::{PowerAction, PowerPlan, PowerService, PowerTarget, Unavailable};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let power = Arc::new(PowerService::new());
//! let raised = Arc::new(Mutex::new(Vec::new()));
//! let seen = raised.clone();
//! power.raise_events_with(move |c| seen.lock().unwrap().push(c.message));
//! // A device without a controller fails, and says why.
//! let target = PowerTarget {
//!     device: "web01".into(),
//!     controller: Err(Unavailable::new("web01: no power controller")),
//!     console: None,
//! };
//! let outcome = power
//!     .perform(&PowerPlan::single(vec![target]), PowerAction::Cycle, "alice", |_| {})
//!     .await;
//! assert!(!outcome.all_ok());
//! assert_eq!(outcome.results[0].line, "web01: failed: web01: no power controller");
//! assert_eq!(raised.lock().unwrap().len(), 1);
//! # });
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;

use super::{
    DeviceOutcome, GroupEvent, GroupOperation, PowerAction, PowerCapabilities, PowerController,
    PowerState,
};
use crate::console::Console;
use crate::event::{Candidate, EventSource};
use crate::record::RecordKind;
use crate::scan::Severity;

/// How many devices one operation switches at once unless it says otherwise.
pub const PARALLELISM: usize = 16;
/// How long one device's action may take (Redfish BMCs poll until the state changes).
pub const DEVICE_TIMEOUT: Duration = Duration::from_secs(120);

/// Why a device cannot be switched: it has no power controller, or its binding is broken. The
/// reason is shown as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Unavailable {
    /// What is missing or broken, and where (`web01: no power controller (…)`).
    pub reason: String,
}

impl Unavailable {
    /// An unavailable controller, for `reason`.
    pub fn new(reason: impl Into<String>) -> Unavailable {
        Unavailable {
            reason: reason.into(),
        }
    }
}

/// A device to switch or read: its name, its bound power controller (or why it has none) and its
/// console, whose record log gets the power records.
#[derive(Clone)]
pub struct PowerTarget {
    /// The device.
    pub device: String,
    /// Its controllers (bound together for dual supplies), or why there are none.
    pub controller: Result<Arc<dyn PowerController>, Unavailable>,
    /// Its running console, if any.
    pub console: Option<Console>,
}

impl fmt::Debug for PowerTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PowerTarget")
            .field("device", &self.device)
            .field(
                "controller",
                &self.controller.as_ref().map(|c| c.address().to_owned()),
            )
            .field("console", &self.console.is_some())
            .finish()
    }
}

/// Why a device's state could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StatusError {
    /// The device has no usable controller.
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
    /// The controller answered with an error.
    #[error(transparent)]
    Failed(#[from] crate::Error),
    /// The controller did not answer in time.
    #[error("no answer within {}s", after.as_secs())]
    NoAnswer {
        /// The time limit.
        after: Duration,
    },
}

/// Read the state of each target (all at once, each within `limit`), in the order given.
pub async fn read_states(
    targets: &[PowerTarget],
    limit: Duration,
) -> Vec<(String, Result<PowerState, StatusError>)> {
    let mut tasks = tokio::task::JoinSet::new();
    for (index, target) in targets.iter().enumerate() {
        let name = target.device.clone();
        let controller = target.controller.clone();
        tasks.spawn(async move {
            let state = match controller {
                Ok(c) => match tokio::time::timeout(limit, c.status()).await {
                    Ok(r) => r.map_err(StatusError::Failed),
                    Err(_) => Err(StatusError::NoAnswer { after: limit }),
                },
                Err(e) => Err(StatusError::Unavailable(e)),
            };
            (index, name, state)
        });
    }
    let mut out = Vec::new();
    while let Some(done) = tasks.join_next().await {
        if let Ok(item) = done {
            out.push(item);
        }
    }
    out.sort_by_key(|(i, ..)| *i);
    out.into_iter().map(|(_, n, s)| (n, s)).collect()
}

/// A group operation: stages of devices run one after the other.
#[derive(Debug, Clone)]
pub struct PowerPlan {
    /// The devices, stage by stage.
    pub stages: Vec<Vec<PowerTarget>>,
    /// The wait between stages.
    pub stage_delay: Duration,
    /// How many devices of a stage are switched at once.
    pub parallelism: usize,
    /// The wait between starting two devices of a stage.
    pub stagger: Duration,
    /// Skip later stages once a device failed.
    pub stop_on_failure: bool,
}

impl PowerPlan {
    /// One stage holding every target, [`PARALLELISM`] at once.
    pub fn single(targets: Vec<PowerTarget>) -> PowerPlan {
        PowerPlan {
            stages: vec![targets],
            stage_delay: Duration::ZERO,
            parallelism: PARALLELISM,
            stagger: Duration::ZERO,
            stop_on_failure: false,
        }
    }
}

/// How one device's power action ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PowerResult {
    /// The device.
    pub device: String,
    /// Whether the action was done.
    pub ok: bool,
    /// One line for the admin: `web01: cycle done (4.2s)` or `web01: failed: …`.
    pub line: String,
}

/// The outcome of a plan: one result per device and the summary line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanOutcome {
    /// One result per device (devices without a controller first, then in plan order).
    pub results: Vec<PowerResult>,
    /// `cycle: 3 done, 1 failed (…), 0 skipped`.
    pub summary: String,
}

impl PlanOutcome {
    /// Whether every device's action was done.
    pub fn all_ok(&self) -> bool {
        self.results.iter().all(|r| r.ok)
    }
}

type RaiseFn = Box<dyn Fn(Candidate) + Send + Sync>;

/// What the service and the controllers it wraps share.
struct Shared {
    /// Per device, how many times a mo power action started or ended: the poller tells changes
    /// mo made from changes it did not by whether this moved between two readings.
    activity: Mutex<HashMap<String, u64>>,
    /// Where power events go (set once, when the event manager is running).
    raise: OnceLock<RaiseFn>,
}

impl Shared {
    fn raise(&self, device: &str, severity: Severity, message: String) {
        if let Some(raise) = self.raise.get() {
            raise(Candidate::new(
                device,
                EventSource::Power,
                severity,
                message,
            ));
        }
    }

    fn bump_activity(&self, device: &str) {
        if let Ok(mut map) = self.activity.lock() {
            *map.entry(device.to_owned()).or_default() += 1;
        }
    }

    fn activity_of(&self, device: &str) -> u64 {
        self.activity
            .lock()
            .map(|m| m.get(device).copied().unwrap_or(0))
            .unwrap_or(0)
    }
}

/// Power actions on one timeline with the consoles, and the poller of unexpected changes. See
/// the [module documentation](self).
pub struct PowerService {
    shared: Arc<Shared>,
    device_timeout: Duration,
}

impl fmt::Debug for PowerService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PowerService")
            .field("raises_events", &self.shared.raise.get().is_some())
            .field("device_timeout", &self.device_timeout)
            .finish_non_exhaustive()
    }
}

impl Default for PowerService {
    fn default() -> Self {
        PowerService::new()
    }
}

impl PowerService {
    /// A service raising no events (until [`PowerService::raise_events_with`]), each device's
    /// action limited to [`DEVICE_TIMEOUT`].
    pub fn new() -> PowerService {
        PowerService {
            shared: Arc::new(Shared {
                activity: Mutex::new(HashMap::new()),
                raise: OnceLock::new(),
            }),
            device_timeout: DEVICE_TIMEOUT,
        }
    }

    /// Limit each device's action to `limit` instead of [`DEVICE_TIMEOUT`].
    pub fn with_device_timeout(mut self, limit: Duration) -> PowerService {
        self.device_timeout = limit;
        self
    }

    /// Send power events (action outcomes, observed changes) to `raise` from now on — for
    /// example an event manager's `offer`. Set once: the event manager usually runs power
    /// actions through this service, so the two are joined after both exist. `false` (and
    /// nothing changes) when it was set before.
    pub fn raise_events_with(&self, raise: impl Fn(Candidate) + Send + Sync + 'static) -> bool {
        self.shared.raise.set(Box::new(raise)).is_ok()
    }

    /// Run `plan` with `action` as `user`, calling `progress` with one line per step (stage
    /// starts, waits, each device's start and end). Each device's action is written into its
    /// log when it starts and ends and its outcome raised as an event; a device without a
    /// controller fails at once (logged and raised too).
    pub async fn perform(
        &self,
        plan: &PowerPlan,
        action: PowerAction,
        user: &str,
        mut progress: impl FnMut(String) + Send,
    ) -> PlanOutcome {
        let mut results = Vec::new();
        let mut operation = GroupOperation::new(action)
            .with_stage_delay(plan.stage_delay)
            .with_parallelism(plan.parallelism)
            .with_stagger(plan.stagger)
            .with_stop_on_failure(plan.stop_on_failure);
        let mut consoles: HashMap<String, Option<Console>> = HashMap::new();
        for stage in &plan.stages {
            let mut members: Vec<(String, Arc<dyn PowerController>)> = Vec::new();
            for target in stage {
                let name = target.device.clone();
                consoles.insert(name.clone(), target.console.clone());
                match &target.controller {
                    Ok(inner) => {
                        let logged = Logged {
                            shared: self.shared.clone(),
                            device: name.clone(),
                            user: user.to_owned(),
                            inner: inner.clone(),
                            console: target.console.clone(),
                            timeout: self.device_timeout,
                        };
                        members.push((name, Arc::new(logged)));
                    }
                    Err(e) => {
                        let text = format!("power {action} by {user}: failed: {e}");
                        record(target.console.as_ref(), user, text.clone()).await;
                        self.shared.raise(&name, Severity::Warning, text);
                        results.push(PowerResult {
                            device: name.clone(),
                            ok: false,
                            line: format!("{name}: failed: {e}"),
                        });
                    }
                }
            }
            if !members.is_empty() {
                operation = operation.stage(members);
            }
        }
        let report = operation
            .run(|event: &GroupEvent| progress(event.to_string()))
            .await;
        for result in &report.results {
            let outcome = match &result.outcome {
                DeviceOutcome::Done => "done".to_string(),
                DeviceOutcome::Failed(e) => format!("failed: {e}"),
                DeviceOutcome::Skipped(why) => {
                    let console = consoles.get(&result.device).and_then(Option::as_ref);
                    let text = format!("power {action} by {user}: skipped: {why}");
                    record(console, user, text).await;
                    format!("skipped: {why}")
                }
            };
            results.push(PowerResult {
                device: result.device.clone(),
                ok: result.outcome.is_done(),
                line: format!(
                    "{}: {action} {outcome} ({:.1}s)",
                    result.device,
                    result.elapsed.as_secs_f64()
                ),
            });
        }
        let failed_early = results
            .iter()
            .filter(|r| !r.ok)
            .count()
            .saturating_sub(report.not_done().count());
        let mut summary = report.summary();
        if failed_early > 0 {
            summary.push_str(&format!(", {failed_early} without power control"));
        }
        PlanOutcome { results, summary }
    }

    /// Poll the power state of the devices `targets` gives every `every`; a change between two
    /// readings with no mo action in between is written into the device's record log and
    /// raised as an event. Devices whose state cannot be read, or reads `unknown`, are skipped
    /// that round. Runs until `targets` answers `None` (the embedder is shutting down).
    pub async fn poll(
        &self,
        every: Duration,
        mut targets: impl FnMut() -> Option<Vec<PowerTarget>> + Send,
    ) {
        // Per device: the last state read and the activity counter before that reading.
        let mut known: HashMap<String, (PowerState, u64)> = HashMap::new();
        let limit = every.max(Duration::from_secs(5));
        while let Some(all) = targets() {
            let bound: Vec<PowerTarget> =
                all.into_iter().filter(|t| t.controller.is_ok()).collect();
            let before: Vec<u64> = bound
                .iter()
                .map(|t| self.shared.activity_of(&t.device))
                .collect();
            let states = read_states(&bound, limit).await;
            for ((target, (name, state)), counter) in bound.iter().zip(states).zip(before) {
                let Ok(state) = state else { continue };
                if state == PowerState::Unknown {
                    continue;
                }
                let quiet = counter == self.shared.activity_of(&name);
                let previous = known.insert(name.clone(), (state, counter));
                if let Some((was, was_counter)) = previous
                    && was != state
                    && quiet
                    && was_counter == counter
                {
                    let text = format!("power {state} (was {was}) without a mo action");
                    record(target.console.as_ref(), "", format!("observed: {text}")).await;
                    self.shared.raise(&name, Severity::Warning, text);
                }
            }
            known.retain(|name, _| bound.iter().any(|t| &t.device == name));
            tokio::time::sleep(every).await;
        }
    }
}

async fn record(console: Option<&Console>, user: &str, text: String) {
    if let Some(console) = console {
        // A log that cannot take the record says so to its viewers; the action goes on.
        let _ = console.record(RecordKind::Power, user, text).await;
    }
}

/// A device's controller that writes the timeline: a `power` record when the action starts and
/// when it ends (with who did it), a `power` event with the outcome, and the activity counter the
/// poller reads. The time limit is applied here, so a timed-out action is logged too.
struct Logged {
    shared: Arc<Shared>,
    device: String,
    user: String,
    inner: Arc<dyn PowerController>,
    console: Option<Console>,
    timeout: Duration,
}

impl fmt::Debug for Logged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Logged")
            .field("device", &self.device)
            .field("user", &self.user)
            .field("address", &self.inner.address())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl PowerController for Logged {
    fn address(&self) -> &str {
        self.inner.address()
    }

    fn capabilities(&self) -> PowerCapabilities {
        self.inner.capabilities()
    }

    async fn status(&self) -> crate::Result<PowerState> {
        self.inner.status().await
    }

    async fn perform(&self, action: PowerAction) -> crate::Result<()> {
        let user = &self.user;
        self.shared.bump_activity(&self.device);
        let text = format!(
            "power {action} by {user} via {}: started",
            self.inner.address()
        );
        record(self.console.as_ref(), user, text).await;
        let began = tokio::time::Instant::now();
        let result = match tokio::time::timeout(self.timeout, self.inner.perform(action)).await {
            Ok(result) => result,
            Err(_) => Err(crate::Error::Timeout {
                what: format!("{action} of {} via {}", self.device, self.inner.address()),
                after: self.timeout,
            }),
        };
        self.shared.bump_activity(&self.device);
        let took = began.elapsed().as_secs_f64();
        let (outcome, severity) = match &result {
            Ok(()) => (format!("done ({took:.1}s)"), Severity::Info),
            Err(e) => (format!("failed: {e}"), Severity::Warning),
        };
        let text = format!("power {action} by {user}: {outcome}");
        record(self.console.as_ref(), user, text.clone()).await;
        self.shared.raise(&self.device, severity, text);
        result
    }
}

#[cfg(test)]
#[path = "service_tests.rs"]
mod tests;
