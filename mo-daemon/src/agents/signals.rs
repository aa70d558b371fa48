//! What an agent port tells about its device besides output: which devices sit on a port, notices
//! into their logs, water marks (a flooding or silent port) and modem-line changes, each raised
//! as an event with the source `agent`.

use mo_core::link::ModemState;
use mo_core::record::RecordKind;
use mo_drivers::agent::{MARK_WINDOW, water_marks_over};

use crate::Ctx;

/// The registry's entries of the devices on `agent://AGENT/PORT` (from its per-port index).
fn on_port(ctx: &Ctx, agent: &str, port: &str) -> Vec<crate::registry::Entry> {
    ctx.registry.on_agent_port(agent, port)
}

/// Write a notice into the record log of every device on `agent://AGENT/PORT`.
pub(super) async fn notice(ctx: &Ctx, agent: &str, port: &str, text: &str) {
    for entry in on_port(ctx, agent, port) {
        if let Some(console) = &entry.console {
            let _ = console
                .record(RecordKind::Notice, "agent", text.as_bytes().to_vec())
                .await;
        }
    }
}

/// A port's water marks as seen by the daemon: output in the last [`MARK_WINDOW`], the time of
/// the last output, and which devices are flooding or silent now (their event raised, not yet
/// cleared).
pub(super) struct Marks {
    recent: std::collections::VecDeque<(tokio::time::Instant, usize)>,
    last_output: tokio::time::Instant,
    flooding: std::collections::BTreeSet<String>,
    silent: std::collections::BTreeSet<String>,
}

impl Marks {
    pub(super) fn new() -> Self {
        Marks {
            recent: std::collections::VecDeque::new(),
            last_output: tokio::time::Instant::now(),
            flooding: Default::default(),
            silent: Default::default(),
        }
    }

    /// `n` bytes of output now: a silent port prints again (its event clears).
    pub(super) fn output(&mut self, ctx: &Ctx, n: usize) {
        let now = tokio::time::Instant::now();
        self.recent.push_back((now, n));
        let quiet = now - self.last_output;
        self.last_output = now;
        for device in std::mem::take(&mut self.silent) {
            offer(
                ctx,
                &device,
                mo_core::scan::Severity::Notice,
                format!(
                    "{device} prints again after {}s of silence (low mark cleared)",
                    quiet.as_secs()
                ),
            );
        }
    }

    /// Once a second: raise or clear the high mark (rate over the window) and raise the low
    /// mark (silence) for each device on the port, by its address's settings over the marks the
    /// agent set for the port.
    pub(super) fn check(&mut self, ctx: &Ctx, agent: &str, port: &str) {
        let now = tokio::time::Instant::now();
        while self
            .recent
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > MARK_WINDOW)
        {
            self.recent.pop_front();
        }
        let bytes: usize = self.recent.iter().map(|(_, n)| n).sum();
        let rate = bytes as u64 / MARK_WINDOW.as_secs().max(1);
        let quiet = now - self.last_output;
        for entry in on_port(ctx, agent, port) {
            let defaults = ctx.registry.agents().port_marks(agent, port);
            let Ok(marks) = water_marks_over(&entry.device.url, defaults) else {
                continue;
            };
            let device = &entry.device.name;
            match marks.high {
                Some(high) if rate > high && !self.flooding.contains(device) => {
                    self.flooding.insert(device.clone());
                    offer(
                        ctx,
                        device,
                        mo_core::scan::Severity::Warning,
                        format!(
                            "output flood on {device}: {rate} B/s over {}s (high mark {high} B/s)",
                            MARK_WINDOW.as_secs()
                        ),
                    );
                }
                Some(high) if rate <= high && self.flooding.remove(device) => {
                    offer(
                        ctx,
                        device,
                        mo_core::scan::Severity::Notice,
                        format!("output flood on {device} over: {rate} B/s (high mark cleared)"),
                    );
                }
                _ => {}
            }
            if let Some(low) = marks.low
                && quiet >= low
                && !self.silent.contains(device)
            {
                self.silent.insert(device.clone());
                offer(
                    ctx,
                    device,
                    mo_core::scan::Severity::Warning,
                    format!(
                        "{device} silent for {}s (low mark {}s)",
                        quiet.as_secs(),
                        low.as_secs()
                    ),
                );
            }
        }
    }
}

pub(super) fn offer(ctx: &Ctx, device: &str, severity: mo_core::scan::Severity, message: String) {
    ctx.events.offer(mo_core::event::Candidate::new(
        device,
        mo_core::event::EventSource::Agent,
        severity,
        message,
    ));
}

/// Raise rule-ready events for modem-line changes of `agent`'s `port` on every device on it:
/// DCD (carrier) lost is a warning (`carrier lost on web01 — unplugged or powered off?`), the
/// other changes are notices. The first report after connecting raises nothing.
pub(super) fn modem_events(
    ctx: &Ctx,
    agent: &str,
    port: &str,
    before: Option<ModemState>,
    now: ModemState,
) {
    use mo_core::event::{Candidate, EventSource};
    use mo_core::scan::Severity;
    let Some(before) = before else {
        return;
    };
    if before == now {
        return;
    }
    let mut changes: Vec<(Severity, String)> = Vec::new();
    if before.dcd && !now.dcd {
        changes.push((
            Severity::Warning,
            "carrier lost on {} — unplugged or powered off?".into(),
        ));
    } else if !before.dcd && now.dcd {
        changes.push((Severity::Notice, "carrier back on {}".into()));
    }
    for (name, was, is) in [("DSR", before.dsr, now.dsr), ("CTS", before.cts, now.cts)] {
        if was != is {
            let level = if is { "up" } else { "down" };
            changes.push((Severity::Notice, format!("{name} {level} on {{}}")));
        }
    }
    for entry in on_port(ctx, agent, port) {
        for (severity, text) in &changes {
            let message = text.replace("{}", &entry.device.name);
            ctx.events.offer(Candidate::new(
                entry.device.name.clone(),
                EventSource::Agent,
                *severity,
                message,
            ));
        }
    }
}
