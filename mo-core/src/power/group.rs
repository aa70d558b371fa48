//! Group power operations: one action over many devices, in stages, with delays and a
//! parallelism limit (DESIGN.md §5).
//!
//! A plan is a list of stages run one after the other (shut storage down last: put it in the last
//! stage of an `off`; bring it up first: the first stage of an `on`). Inside a stage at most
//! `parallelism` devices are switched at once, started in the order given, optionally `stagger`
//! apart (inrush current). Between stages the operation waits `stage_delay`. Progress is reported
//! as [`GroupEvent`]s while it runs and the [`GroupReport`] holds one [`DeviceResult`] per device:
//! a partial failure is reported device by device, never hidden.
//!
//! ```
//! # use std::{sync::Arc, time::Duration};
//! # use mo_core::power::{GroupOperation, PowerAction, PowerController};
//! # async fn demo(web: Arc<dyn PowerController>, db: Arc<dyn PowerController>) {
//! let report = GroupOperation::new(PowerAction::Off)
//!     .stage([("web1", web)])
//!     .stage([("db1", db)])
//!     .with_stage_delay(Duration::from_secs(30))
//!     .with_parallelism(8)
//!     .run(|event| println!("{event}"))
//!     .await;
//! println!("{}", report.summary());
//! # }
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use super::{PowerAction, PowerController};
use crate::error::Error;

/// One device of a plan: its name and its (possibly bound) controller.
type Member = (String, Arc<dyn PowerController>);

/// What happened to one device.
#[derive(Debug)]
pub enum DeviceOutcome {
    /// The action completed.
    Done,
    /// The action failed (or timed out).
    Failed(Error),
    /// The action was not attempted, and why.
    Skipped(String),
}

impl DeviceOutcome {
    /// Whether the action completed.
    pub fn is_done(&self) -> bool {
        matches!(self, DeviceOutcome::Done)
    }
}

/// The result for one device of a group operation.
#[derive(Debug)]
pub struct DeviceResult {
    /// The device's name.
    pub device: String,
    /// Its controller's address.
    pub address: String,
    /// The stage it belonged to (0-based).
    pub stage: usize,
    /// When its action started, counted from the start of the operation (`None`: skipped).
    pub started_after: Option<Duration>,
    /// How long the action took.
    pub elapsed: Duration,
    /// What happened.
    pub outcome: DeviceOutcome,
}

/// Progress of a running group operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupEvent {
    /// A stage begins.
    StageStarted {
        /// The stage (0-based).
        stage: usize,
        /// Its devices, in order.
        devices: Vec<String>,
    },
    /// The operation waits before the next stage.
    Waiting {
        /// The stage about to start.
        before_stage: usize,
        /// How long.
        delay: Duration,
    },
    /// A device's action was started.
    DeviceStarted {
        /// The stage.
        stage: usize,
        /// The device.
        device: String,
    },
    /// A device's action finished: `Ok` or the error text.
    DeviceFinished {
        /// The stage.
        stage: usize,
        /// The device.
        device: String,
        /// `Ok(())`, or what went wrong.
        outcome: Result<(), String>,
        /// How long it took.
        elapsed: Duration,
    },
    /// A device was skipped (an earlier stage failed and the plan stops on failure).
    DeviceSkipped {
        /// The stage.
        stage: usize,
        /// The device.
        device: String,
        /// Why.
        reason: String,
    },
}

impl fmt::Display for GroupEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GroupEvent::StageStarted { stage, devices } => {
                write!(f, "stage {}: {}", stage + 1, devices.join(", "))
            }
            GroupEvent::Waiting {
                before_stage,
                delay,
            } => write!(f, "waiting {delay:?} before stage {}", before_stage + 1),
            GroupEvent::DeviceStarted { device, .. } => write!(f, "{device}: started"),
            GroupEvent::DeviceFinished {
                device,
                outcome,
                elapsed,
                ..
            } => match outcome {
                Ok(()) => write!(f, "{device}: done in {elapsed:?}"),
                Err(e) => write!(f, "{device}: FAILED after {elapsed:?}: {e}"),
            },
            GroupEvent::DeviceSkipped { device, reason, .. } => {
                write!(f, "{device}: skipped: {reason}")
            }
        }
    }
}

/// The outcome of a whole group operation.
#[derive(Debug)]
pub struct GroupReport {
    /// The action that was run.
    pub action: PowerAction,
    /// One result per device, in plan order.
    pub results: Vec<DeviceResult>,
    /// How long the whole operation took.
    pub elapsed: Duration,
}

impl GroupReport {
    /// Whether every device's action completed.
    pub fn all_done(&self) -> bool {
        self.results.iter().all(|r| r.outcome.is_done())
    }

    /// The devices whose action failed or was skipped.
    pub fn not_done(&self) -> impl Iterator<Item = &DeviceResult> {
        self.results.iter().filter(|r| !r.outcome.is_done())
    }

    /// One line: `off: 3 done, 1 failed (db1: …), 0 skipped`.
    pub fn summary(&self) -> String {
        let done = self.results.iter().filter(|r| r.outcome.is_done()).count();
        let mut failed = Vec::new();
        let mut skipped = 0;
        for r in &self.results {
            match &r.outcome {
                DeviceOutcome::Failed(e) => failed.push(format!("{}: {e}", r.device)),
                DeviceOutcome::Skipped(_) => skipped += 1,
                DeviceOutcome::Done => {}
            }
        }
        let mut text = format!("{}: {done} done, {} failed", self.action, failed.len());
        if !failed.is_empty() {
            text.push_str(&format!(" ({})", failed.join("; ")));
        }
        text.push_str(&format!(", {skipped} skipped"));
        text
    }
}

/// A planned group operation (see the module documentation).
#[derive(Debug, Clone)]
pub struct GroupOperation {
    action: PowerAction,
    stages: Vec<Vec<Member>>,
    stage_delay: Duration,
    stagger: Duration,
    parallelism: usize,
    device_timeout: Option<Duration>,
    stop_on_failure: bool,
}

impl GroupOperation {
    /// An empty plan for `action`: parallelism 1, no delays, no timeout of its own, carries on
    /// after failures.
    pub fn new(action: PowerAction) -> Self {
        Self {
            action,
            stages: Vec::new(),
            stage_delay: Duration::ZERO,
            stagger: Duration::ZERO,
            parallelism: 1,
            device_timeout: None,
            stop_on_failure: false,
        }
    }

    /// Append a stage of devices.
    pub fn stage<N: Into<String>>(
        mut self,
        devices: impl IntoIterator<Item = (N, Arc<dyn PowerController>)>,
    ) -> Self {
        self.stages
            .push(devices.into_iter().map(|(n, c)| (n.into(), c)).collect());
        self
    }

    /// Append one stage per device: strictly one after the other, `stage_delay` apart.
    pub fn sequence<N: Into<String>>(
        mut self,
        devices: impl IntoIterator<Item = (N, Arc<dyn PowerController>)>,
    ) -> Self {
        for (n, c) in devices {
            self.stages.push(vec![(n.into(), c)]);
        }
        self
    }

    /// Wait this long between stages.
    pub fn with_stage_delay(mut self, delay: Duration) -> Self {
        self.stage_delay = delay;
        self
    }

    /// Wait this long between starting consecutive devices of a stage.
    pub fn with_stagger(mut self, delay: Duration) -> Self {
        self.stagger = delay;
        self
    }

    /// Switch at most `n` devices at once (at least 1).
    pub fn with_parallelism(mut self, n: usize) -> Self {
        self.parallelism = n.max(1);
        self
    }

    /// Give up on a device after this long ([`Error::Timeout`]).
    pub fn with_device_timeout(mut self, limit: Duration) -> Self {
        self.device_timeout = Some(limit);
        self
    }

    /// Skip the later stages once a device of a stage has failed.
    pub fn with_stop_on_failure(mut self, yes: bool) -> Self {
        self.stop_on_failure = yes;
        self
    }

    /// The action.
    pub fn action(&self) -> PowerAction {
        self.action
    }

    /// The device names, stage by stage.
    pub fn plan(&self) -> Vec<Vec<&str>> {
        self.stages
            .iter()
            .map(|s| s.iter().map(|(n, _)| n.as_str()).collect())
            .collect()
    }

    /// Run the plan, calling `progress` for every event as it happens.
    pub async fn run(&self, mut progress: impl FnMut(&GroupEvent) + Send) -> GroupReport {
        let start = Instant::now();
        let mut results = Vec::new();
        let mut failed_before = false;
        for (stage, members) in self.stages.iter().enumerate() {
            if failed_before && self.stop_on_failure {
                for (device, controller) in members {
                    let reason = "an earlier stage failed".to_owned();
                    progress(&GroupEvent::DeviceSkipped {
                        stage,
                        device: device.clone(),
                        reason: reason.clone(),
                    });
                    results.push(DeviceResult {
                        device: device.clone(),
                        address: controller.address().to_owned(),
                        stage,
                        started_after: None,
                        elapsed: Duration::ZERO,
                        outcome: DeviceOutcome::Skipped(reason),
                    });
                }
                continue;
            }
            if stage > 0 && !self.stage_delay.is_zero() {
                progress(&GroupEvent::Waiting {
                    before_stage: stage,
                    delay: self.stage_delay,
                });
                tokio::time::sleep(self.stage_delay).await;
            }
            progress(&GroupEvent::StageStarted {
                stage,
                devices: members.iter().map(|(n, _)| n.clone()).collect(),
            });
            let stage_results = self.run_stage(stage, members, start, &mut progress).await;
            failed_before |= stage_results.iter().any(|r| !r.outcome.is_done());
            results.extend(stage_results);
        }
        GroupReport {
            action: self.action,
            results,
            elapsed: start.elapsed(),
        }
    }

    async fn run_stage(
        &self,
        stage: usize,
        members: &[Member],
        start: Instant,
        progress: &mut (impl FnMut(&GroupEvent) + Send),
    ) -> Vec<DeviceResult> {
        let mut slots: Vec<Option<DeviceResult>> = members.iter().map(|_| None).collect();
        let mut running = JoinSet::new();
        let mut next_start: Option<Instant> = None;
        for (index, (device, controller)) in members.iter().enumerate() {
            // Respect the parallelism limit and the stagger, reporting finishes meanwhile.
            loop {
                let ready_at = next_start.filter(|at| *at > Instant::now());
                if running.len() < self.parallelism && ready_at.is_none() {
                    break;
                }
                let sleep_until =
                    ready_at.unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400));
                tokio::select! {
                    joined = running.join_next(), if !running.is_empty() => {
                        Self::finished(joined, stage, &mut slots, progress);
                    }
                    () = tokio::time::sleep_until(sleep_until), if ready_at.is_some() => {}
                }
            }
            progress(&GroupEvent::DeviceStarted {
                stage,
                device: device.clone(),
            });
            let started_after = start.elapsed();
            let controller = Arc::clone(controller);
            let device = device.clone();
            let action = self.action;
            let limit = self.device_timeout;
            running.spawn(async move {
                let began = Instant::now();
                let work = controller.perform(action);
                let outcome = match limit {
                    None => work.await,
                    Some(limit) => match tokio::time::timeout(limit, work).await {
                        Ok(result) => result,
                        Err(_) => Err(Error::Timeout {
                            what: format!("{action} of {device} via {}", controller.address()),
                            after: limit,
                        }),
                    },
                };
                (
                    index,
                    device,
                    controller.address().to_owned(),
                    started_after,
                    began.elapsed(),
                    outcome,
                )
            });
            if !self.stagger.is_zero() {
                next_start = Some(Instant::now() + self.stagger);
            }
        }
        while let Some(joined) = running.join_next().await {
            Self::finished(Some(joined), stage, &mut slots, progress);
        }
        slots
            .into_iter()
            .zip(members)
            .map(|(slot, (device, controller))| {
                slot.unwrap_or_else(|| DeviceResult {
                    device: device.clone(),
                    address: controller.address().to_owned(),
                    stage,
                    started_after: None,
                    elapsed: Duration::ZERO,
                    outcome: DeviceOutcome::Failed(Error::Protocol {
                        peer: controller.address().to_owned(),
                        reason: format!("the power task for {device} stopped unexpectedly"),
                    }),
                })
            })
            .collect()
    }

    #[allow(clippy::type_complexity)]
    fn finished(
        joined: Option<
            Result<
                (usize, String, String, Duration, Duration, crate::Result<()>),
                tokio::task::JoinError,
            >,
        >,
        stage: usize,
        slots: &mut [Option<DeviceResult>],
        progress: &mut (impl FnMut(&GroupEvent) + Send),
    ) {
        let Some(Ok((index, device, address, started_after, elapsed, outcome))) = joined else {
            return;
        };
        progress(&GroupEvent::DeviceFinished {
            stage,
            device: device.clone(),
            outcome: outcome.as_ref().map(|_| ()).map_err(|e| e.to_string()),
            elapsed,
        });
        if let Some(slot) = slots.get_mut(index) {
            *slot = Some(DeviceResult {
                device,
                address,
                stage,
                started_after: Some(started_after),
                elapsed,
                outcome: match outcome {
                    Ok(()) => DeviceOutcome::Done,
                    Err(e) => DeviceOutcome::Failed(e),
                },
            });
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::power::PowerCapabilities;
    use crate::power::testing::Recorder;

    fn dev(
        name: &str,
        log: &crate::power::testing::Log,
    ) -> (String, Arc<dyn PowerController>, Arc<Recorder>) {
        let r = Recorder::new(name, log, PowerCapabilities::ALL);
        (name.to_owned(), r.clone() as Arc<dyn PowerController>, r)
    }

    #[tokio::test(start_paused = true)]
    async fn stages_run_in_order_with_delays_and_parallelism() {
        let log = Recorder::log();
        let (a, ca, ra) = dev("web1", &log);
        let (b, cb, rb) = dev("web2", &log);
        let (c, cc, rc) = dev("web3", &log);
        let (d, cd, _) = dev("storage", &log);
        for r in [&ra, &rb, &rc] {
            r.take(Duration::from_secs(2));
        }
        let op = GroupOperation::new(PowerAction::Off)
            .stage([(a, ca), (b, cb), (c, cc)])
            .stage([(d, cd)])
            .with_parallelism(2)
            .with_stage_delay(Duration::from_secs(10));
        assert_eq!(
            op.plan(),
            vec![vec!["web1", "web2", "web3"], vec!["storage"]]
        );
        let t0 = Instant::now();
        let mut events = Vec::new();
        let report = op.run(|e| events.push(e.clone())).await;
        assert!(report.all_done(), "{}", report.summary());
        let times: Vec<(Duration, String)> = log
            .lock()
            .unwrap()
            .iter()
            .map(|(t, e)| (*t - t0, e.clone()))
            .collect();
        let secs = |s| Duration::from_secs(s);
        // Two at once, the third when a slot frees, storage 10 s after the stage ends.
        assert_eq!(
            times,
            vec![
                (secs(0), "web1:off".to_owned()),
                (secs(0), "web2:off".to_owned()),
                (secs(2), "web3:off".to_owned()),
                (secs(14), "storage:off".to_owned()),
            ]
        );
        assert!(events.contains(&GroupEvent::Waiting {
            before_stage: 1,
            delay: secs(10)
        }));
        assert_eq!(report.results[3].started_after, Some(secs(14)));
        assert_eq!(report.summary(), "off: 4 done, 0 failed, 0 skipped");
    }

    #[tokio::test(start_paused = true)]
    async fn partial_failure_is_reported_and_can_stop_later_stages() {
        let log = Recorder::log();
        let (a, ca, _) = dev("ok1", &log);
        let (b, cb, rb) = dev("bad1", &log);
        let (c, cc, rc) = dev("slow1", &log);
        let (d, cd, _) = dev("late1", &log);
        rb.fail_with("outlet jammed");
        rc.take(Duration::from_secs(60));
        let op = GroupOperation::new(PowerAction::On)
            .stage([(a, ca), (b, cb), (c, cc)])
            .stage([(d, cd)])
            .with_parallelism(3)
            .with_stagger(Duration::from_secs(1))
            .with_device_timeout(Duration::from_secs(5))
            .with_stop_on_failure(true);
        let mut events = Vec::new();
        let report = op.run(|e| events.push(e.to_string())).await;
        assert!(!report.all_done());
        let names: Vec<&str> = report.not_done().map(|r| r.device.as_str()).collect();
        assert_eq!(names, ["bad1", "slow1", "late1"]);
        let text = report.summary();
        assert!(text.starts_with("on: 1 done, 2 failed"), "{text}");
        assert!(text.contains("bad1: test://bad1: outlet jammed"), "{text}");
        assert!(
            text.contains("slow1: on of slow1 via test://slow1: no answer within 5 s"),
            "{text}"
        );
        assert!(text.ends_with("1 skipped"), "{text}");
        // Staggered starts: 0 s, 1 s, 2 s.
        let starts: Vec<_> = report.results.iter().map(|r| r.started_after).collect();
        assert_eq!(
            starts,
            [
                Some(Duration::ZERO),
                Some(Duration::from_secs(1)),
                Some(Duration::from_secs(2)),
                None
            ]
        );
        assert!(
            events
                .iter()
                .any(|e| e == "late1: skipped: an earlier stage failed"),
            "{events:?}"
        );
        assert!(
            events.iter().any(|e| e.starts_with("bad1: FAILED")),
            "{events:?}"
        );
    }
}
