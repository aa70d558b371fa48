//! Power control by device name, shared by the SSH shell, the escape-sequence power menu and event
//! actions.
//!
//! A device's power controllers (its `--power` addresses, bound together for dual supplies) come
//! from the registry. One timeline (issue 4 item 8): every action is written into the device's
//! record log as a `power` record the moment it starts and when it ends, and its outcome is raised
//! as a `power` event. With `mod --power-poll SECS` a poller reads the state of every bound device
//! and reports a change nobody made through mo (someone pressed the button, the PDU tripped) the
//! same way.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use mo_core::console::Console;
use mo_core::event::{Candidate, EventSource, glob_match};
use mo_core::power::{
    DeviceOutcome, GroupEvent, GroupOperation, PowerAction, PowerCapabilities, PowerController,
    PowerState,
};
use mo_core::record::RecordKind;
use mo_core::scan::Severity;

use crate::Ctx;
use crate::events::Events;
use crate::registry::{Entry, Registry};

/// How many devices are switched at once by one command (unless it says otherwise).
const PARALLELISM: usize = 16;
/// How long one device may take (Redfish BMCs poll until the state changes).
const DEVICE_TIMEOUT: Duration = Duration::from_secs(120);

/// Where power events go (set once at start by [`set_events`]).
static EVENTS: OnceLock<Arc<Events>> = OnceLock::new();
/// Per device, how many times a mo power action started or ended: the poller tells changes mo
/// made from changes it did not by whether this moved between two readings.
static ACTIVITY: OnceLock<Mutex<HashMap<String, u64>>> = OnceLock::new();

/// Send power events (action outcomes, observed changes) to `events`.
pub fn set_events(events: Arc<Events>) {
    let _ = EVENTS.set(events);
}

fn raise(device: &str, severity: Severity, message: String) {
    if let Some(events) = EVENTS.get() {
        events.offer(Candidate::new(
            device,
            EventSource::Power,
            severity,
            message,
        ));
    }
}

fn activity() -> &'static Mutex<HashMap<String, u64>> {
    ACTIVITY.get_or_init(|| Mutex::new(HashMap::new()))
}

fn bump_activity(device: &str) {
    if let Ok(mut map) = activity().lock() {
        *map.entry(device.to_owned()).or_default() += 1;
    }
}

fn activity_of(device: &str) -> u64 {
    activity()
        .lock()
        .map(|m| m.get(device).copied().unwrap_or(0))
        .unwrap_or(0)
}

/// The registry entries named by `patterns` (names, globs, or `@GROUP` for a device group), in
/// the order given, without duplicates, among the devices `user` may see. Errors name a pattern
/// that matched nothing.
pub fn select(ctx: &Ctx, user: &str, patterns: &[&str]) -> Result<Vec<Entry>, String> {
    let all = ctx.visible(user);
    let mut out: Vec<Entry> = Vec::new();
    for pattern in patterns {
        let matcher = Matcher::new(ctx, pattern)?;
        let before = out.len();
        for entry in &all {
            if matcher.matches(&entry.device.name)
                && !out.iter().any(|e| e.device.name == entry.device.name)
            {
                out.push(entry.clone());
            }
        }
        if out.len() == before && !out.iter().any(|e| matcher.matches(&e.device.name)) {
            return Err(match matcher {
                Matcher::Group(g) => format!("device group `{}` has no device you can see", g.name),
                Matcher::Glob(_) => format!("unknown device `{pattern}`"),
            });
        }
    }
    Ok(out)
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
        match pattern.strip_prefix('@') {
            Some(group) => ctx
                .store
                .device_group(group)
                .map(Matcher::Group)
                .map_err(|e| format!("{e}")),
            None => Ok(Matcher::Glob(pattern.to_owned())),
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

async fn record(console: Option<&Console>, user: &str, text: String) {
    if let Some(console) = console {
        let _ = console.record(RecordKind::Power, user, text).await;
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
    let mut tasks = tokio::task::JoinSet::new();
    for (index, entry) in entries.iter().enumerate() {
        let name = entry.device.name.clone();
        let controller = controller(entry);
        tasks.spawn(async move {
            let state = match controller {
                Ok(c) => match tokio::time::timeout(limit, c.status()).await {
                    Ok(r) => r.map_err(|e| e.to_string()),
                    Err(_) => Err(format!("no answer within {}s", limit.as_secs())),
                },
                Err(e) => Err(e),
            };
            (index, name, state)
        });
    }
    let mut out: Vec<(usize, String, Result<PowerState, String>)> = Vec::new();
    while let Some(done) = tasks.join_next().await {
        if let Ok(item) = done {
            out.push(item);
        }
    }
    out.sort_by_key(|(i, ..)| *i);
    out.into_iter().map(|(_, n, s)| (n, s)).collect()
}

/// How one device's power action ended.
pub struct PowerResult {
    /// The device.
    pub device: String,
    /// Whether the action was done.
    pub ok: bool,
    /// One line for the admin: `web01: cycle done (4.2s)` or `web01: failed: …`.
    pub line: String,
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

/// The outcome of a plan: one result per device and the summary line.
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

/// A device's controller that writes the timeline: a `power` record when the action starts and
/// when it ends (with who did it), a `power` event with the outcome, and the activity counter the
/// poller reads. The time limit is applied here, so a timed-out action is logged too.
#[derive(Debug)]
struct Logged {
    device: String,
    user: String,
    inner: Arc<dyn PowerController>,
    console: Option<Console>,
}

#[async_trait]
impl PowerController for Logged {
    fn address(&self) -> &str {
        self.inner.address()
    }

    fn capabilities(&self) -> PowerCapabilities {
        self.inner.capabilities()
    }

    async fn status(&self) -> mo_core::Result<PowerState> {
        self.inner.status().await
    }

    async fn perform(&self, action: PowerAction) -> mo_core::Result<()> {
        let user = &self.user;
        bump_activity(&self.device);
        let text = format!(
            "power {action} by {user} via {}: started",
            self.inner.address()
        );
        record(self.console.as_ref(), user, text).await;
        let began = tokio::time::Instant::now();
        let result = match tokio::time::timeout(DEVICE_TIMEOUT, self.inner.perform(action)).await {
            Ok(result) => result,
            Err(_) => Err(mo_core::Error::Timeout {
                what: format!("{action} of {} via {}", self.device, self.inner.address()),
                after: DEVICE_TIMEOUT,
            }),
        };
        bump_activity(&self.device);
        let took = began.elapsed().as_secs_f64();
        let (outcome, severity) = match &result {
            Ok(()) => (format!("done ({took:.1}s)"), Severity::Info),
            Err(e) => (format!("failed: {e}"), Severity::Warning),
        };
        let text = format!("power {action} by {user}: {outcome}");
        record(self.console.as_ref(), user, text.clone()).await;
        raise(&self.device, severity, text);
        result
    }
}

/// Perform `action` on every device (in parallel, at most [`PARALLELISM`] at once), calling
/// `progress` with one line per step. Returns one result per device.
pub async fn perform(
    entries: &[Entry],
    action: PowerAction,
    user: &str,
    progress: impl FnMut(String) + Send,
) -> Vec<PowerResult> {
    perform_plan(&Plan::single(entries), action, user, progress)
        .await
        .results
}

/// Run `plan` with `action` as `user`, calling `progress` with one line per step (stage starts,
/// waits, each device's start and end).
pub async fn perform_plan(
    plan: &Plan,
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
        for entry in stage {
            let name = entry.device.name.clone();
            consoles.insert(name.clone(), entry.console.clone());
            match controller(entry) {
                Ok(inner) => {
                    let logged = Logged {
                        device: name.clone(),
                        user: user.to_owned(),
                        inner,
                        console: entry.console.clone(),
                    };
                    members.push((name, Arc::new(logged)));
                }
                Err(e) => {
                    let text = format!("power {action} by {user}: failed: {e}");
                    record(entry.console.as_ref(), user, text.clone()).await;
                    raise(&name, Severity::Warning, text);
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
    let failed_early = results.iter().filter(|r| !r.ok).count() - report.not_done().count();
    let mut summary = report.summary();
    if failed_early > 0 {
        summary.push_str(&format!(", {failed_early} without power control"));
    }
    PlanOutcome { results, summary }
}

/// Poll the power state of every bound device every `every`; a change between two readings with
/// no mo action in between is written into the device's record log and raised as an event.
/// Runs until the registry is dropped by everyone else.
pub async fn poll(registry: Arc<Registry>, every: Duration) {
    // Per device: the last state read and the activity counter before that reading.
    let mut known: HashMap<String, (PowerState, u64)> = HashMap::new();
    let limit = every.max(Duration::from_secs(5));
    loop {
        let entries: Vec<Entry> = registry
            .list()
            .into_iter()
            .filter(|e| e.power.is_some())
            .collect();
        let before: Vec<u64> = entries
            .iter()
            .map(|e| activity_of(&e.device.name))
            .collect();
        let states = status_within(&entries, limit).await;
        for ((entry, (name, state)), counter) in entries.iter().zip(states).zip(before) {
            let Ok(state) = state else { continue };
            if state == PowerState::Unknown {
                continue;
            }
            let quiet = counter == activity_of(&name);
            let previous = known.insert(name.clone(), (state, counter));
            if let Some((was, was_counter)) = previous
                && was != state
                && quiet
                && was_counter == counter
            {
                let text = format!("power {state} (was {was}) without a mo action");
                record(entry.console.as_ref(), "", format!("observed: {text}")).await;
                raise(&name, Severity::Warning, text);
            }
        }
        known.retain(|name, _| entries.iter().any(|e| &e.device.name == name));
        if Arc::strong_count(&registry) == 1 {
            return;
        }
        tokio::time::sleep(every).await;
    }
}

/// The arguments of `power ACTION [OPTIONS] TARGET…` in the shell: targets (names, globs,
/// `@GROUP`) and the group-operation options.
#[derive(Debug, Default)]
pub struct PowerArgs {
    /// Names, globs or `@GROUP`s.
    pub targets: Vec<String>,
    /// `--order A,B,…`: stage 1 is the targets matching A, stage 2 those matching B, …; targets
    /// matching none come last.
    pub order: Vec<String>,
    /// `--delay DUR`: the wait between stages.
    pub delay: Option<Duration>,
    /// `--parallel N`: devices switched at once within a stage.
    pub parallel: Option<usize>,
    /// `--stagger DUR`: the wait between starting two devices of a stage.
    pub stagger: Option<Duration>,
    /// `--stop-on-failure`: skip later stages once a device failed.
    pub stop_on_failure: bool,
}

/// The usage line of the shell's `power` command.
pub const USAGE: &str = "usage: power status|on|off|cycle|reset|soft-off [--order A,B,…] \
[--delay DUR] [--parallel N] [--stagger DUR] [--stop-on-failure] NAME|GLOB|@GROUP…";

impl PowerArgs {
    /// Read the words after the action. Quotes around a word are dropped (`'stor-*,web-*'`).
    pub fn parse(words: &[&str]) -> Result<PowerArgs, String> {
        let mut args = PowerArgs::default();
        let mut rest = words.iter().map(|w| unquote(w));
        while let Some(word) = rest.next() {
            let (flag, inline) = match word.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f, Some(v.to_owned())),
                _ => (word.as_str(), None),
            };
            if !flag.starts_with("--") {
                args.targets.push(word.clone());
                continue;
            }
            if flag == "--stop-on-failure" {
                args.stop_on_failure = true;
                continue;
            }
            let value = match inline {
                Some(v) => v,
                None => rest
                    .next()
                    .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?,
            };
            match flag {
                "--order" => {
                    args.order = value
                        .split(',')
                        .map(str::trim)
                        .filter(|p| !p.is_empty())
                        .map(str::to_owned)
                        .collect();
                    if args.order.is_empty() {
                        return Err(format!(
                            "--order needs patterns like 'stor-*,web-*'\n{USAGE}"
                        ));
                    }
                }
                "--delay" => args.delay = Some(parse_duration(flag, &value)?),
                "--stagger" => args.stagger = Some(parse_duration(flag, &value)?),
                "--parallel" => match value.parse::<usize>() {
                    Ok(n) if (1..=1000).contains(&n) => args.parallel = Some(n),
                    _ => {
                        return Err(format!(
                            "--parallel needs a number from 1 to 1000, not `{value}`"
                        ));
                    }
                },
                other => return Err(format!("unknown option `{other}`\n{USAGE}")),
            }
        }
        if args.targets.is_empty() {
            return Err(format!("no devices given\n{USAGE}"));
        }
        Ok(args)
    }

    /// Whether any group-operation option was given.
    pub fn is_group(&self) -> bool {
        !self.order.is_empty()
            || self.delay.is_some()
            || self.parallel.is_some()
            || self.stagger.is_some()
            || self.stop_on_failure
    }

    /// The plan for `entries` (selected from the targets): stages by `--order`.
    pub fn plan(&self, ctx: &Ctx, entries: &[Entry]) -> Result<Plan, String> {
        let matchers = self
            .order
            .iter()
            .map(|p| Matcher::new(ctx, p))
            .collect::<Result<Vec<_>, _>>()?;
        let mut stages: Vec<Vec<Entry>> = vec![Vec::new(); matchers.len() + 1];
        for entry in entries {
            let at = matchers
                .iter()
                .position(|m| m.matches(&entry.device.name))
                .unwrap_or(matchers.len());
            if let Some(stage) = stages.get_mut(at) {
                stage.push(entry.clone());
            }
        }
        stages.retain(|s| !s.is_empty());
        Ok(Plan {
            stages,
            stage_delay: self.delay.unwrap_or(Duration::ZERO),
            parallelism: self.parallel.unwrap_or(PARALLELISM),
            stagger: self.stagger.unwrap_or(Duration::ZERO),
            stop_on_failure: self.stop_on_failure,
        })
    }
}

fn unquote(word: &str) -> String {
    let w = word.trim();
    for q in ['\'', '"'] {
        if let Some(inner) = w.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            return inner.to_owned();
        }
    }
    w.to_owned()
}

/// `500ms`, `5s`, `2m` or plain seconds, at most a day.
fn parse_duration(flag: &str, text: &str) -> Result<Duration, String> {
    let bad = || format!("{flag} needs a duration such as 500ms, 5s or 2m, not `{text}`");
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().map_err(|_| bad())?;
    let secs = match unit {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" => value * 60.0,
        _ => return Err(bad()),
    };
    if !(0.0..=86_400.0).contains(&secs) {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn group_options_parse() {
        let args = PowerArgs::parse(&[
            "--order",
            "'stor-*,web-*'",
            "--delay=5s",
            "--parallel",
            "4",
            "--stop-on-failure",
            "web-*",
            "@storage",
        ])
        .unwrap();
        assert_eq!(args.order, vec!["stor-*", "web-*"]);
        assert_eq!(args.delay, Some(Duration::from_secs(5)));
        assert_eq!(args.parallel, Some(4));
        assert!(args.stop_on_failure && args.is_group());
        assert_eq!(args.targets, vec!["web-*", "@storage"]);
        let plain = PowerArgs::parse(&["web01"]).unwrap();
        assert!(!plain.is_group());
    }

    #[test]
    fn bad_group_options_say_what_is_wrong() {
        let err = |w: &[&str]| PowerArgs::parse(w).unwrap_err();
        assert!(err(&["--delay", "soon", "x"]).contains("--delay needs a duration"));
        assert!(err(&["--parallel", "0", "x"]).contains("1 to 1000"));
        assert!(err(&["--frobnicate", "x"]).contains("unknown option `--frobnicate`"));
        assert!(err(&["--order"]).contains("--order needs a value"));
        assert!(err(&["--stop-on-failure"]).contains("no devices given"));
        assert_eq!(
            parse_duration("--delay", "500ms").unwrap(),
            Duration::from_millis(500)
        );
        assert_eq!(
            parse_duration("--delay", "2m").unwrap(),
            Duration::from_secs(120)
        );
    }
}
