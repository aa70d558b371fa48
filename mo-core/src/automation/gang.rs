//! Gang sessions (one input to many consoles) and listen (many consoles' output merged).
//!
//! A [`Gang`] holds a session with the write lock on each of its consoles. A console whose lock
//! someone else holds is not joined as a silent spy: [`Gang::open`] reports it as
//! [`Refusal::Busy`] ("busy: held by bob"). Input goes to every member not paused; output comes
//! back as one stream of [`GangEvent`]s tagged with the device name, while each console keeps its
//! own record log as always. [`Gang::command`] sends a line, collects each device's answer until it
//! is quiet, and says which devices answered differently from the majority ([`CommandReport`]),
//! optionally pausing them.
//!
//! [`Listen`] is the read-only counterpart: spy sessions on many consoles, merged.
//!
//! Each member's session is read by a small task that never waits on the gang's reader: if the
//! merged stream is not read fast enough, that member's output is dropped and reported as
//! [`GangEventKind::Missed`], like a slow viewer's.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use regex::Regex;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::console::{Console, Mode, Output, Session, ViewerEvent, ViewerRole, view};
use crate::error::{Error, Result};
use crate::record::RecordKind;
use crate::scan::{AnsiStripper, Piece};

/// What a gang or listen stream delivers: something from one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GangEvent {
    /// The device it came from.
    pub device: Arc<str>,
    /// What it is.
    pub kind: GangEventKind,
}

/// The kinds of [`GangEvent`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GangEventKind {
    /// Device output.
    Output(Bytes),
    /// A notice or note of the console (attach, force, link state, macro steps).
    Notice(String),
    /// Output lost because the session or the merged stream fell behind.
    Missed {
        /// Output bytes lost.
        bytes: u64,
    },
    /// The console stopped.
    Closed,
}

/// Why a console did not join a gang.
#[derive(Debug)]
#[non_exhaustive]
pub enum Refusal {
    /// Someone else holds the console's write lock.
    Busy {
        /// The device.
        device: String,
        /// Who holds the lock.
        held_by: String,
    },
    /// Attaching failed.
    Failed {
        /// The device.
        device: String,
        /// Why.
        error: Error,
    },
}

impl Refusal {
    /// The device refused.
    pub fn device(&self) -> &str {
        match self {
            Refusal::Busy { device, .. } | Refusal::Failed { device, .. } => device,
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Busy { device, held_by } => write!(f, "{device}: busy: held by {held_by}"),
            Refusal::Failed { device, error } => write!(f, "{device}: {error}"),
        }
    }
}

enum MemberCmd {
    Write {
        bytes: Bytes,
        reply: oneshot::Sender<Result<()>>,
    },
    Note {
        text: String,
        reply: oneshot::Sender<Result<u64>>,
    },
}

struct Member {
    name: Arc<str>,
    cmds: mpsc::Sender<MemberCmd>,
    paused: bool,
    task: JoinHandle<()>,
}

impl Drop for Member {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one member's session into the merged stream, and carries out its commands.
async fn member_task(
    mut session: Session,
    name: Arc<str>,
    mut cmds: mpsc::Receiver<MemberCmd>,
    events: mpsc::Sender<GangEvent>,
) {
    let mut dropped: u64 = 0;
    loop {
        let kind = tokio::select! {
            // What each member sees is what any viewer sees (console::view).
            event = session.recv() => match event {
                // A note of the member's own user comes back as written, not as "note written
                // (record N)": a macro player's progress is read from its notes this way.
                ViewerEvent::Chunk(c)
                    if c.kind == RecordKind::Note && *c.user == *session.user() =>
                {
                    GangEventKind::Notice(String::from_utf8_lossy(&c.bytes).into_owned())
                }
                event => match view(event, session.user(), &name) {
                    Some(Output::Data(bytes)) => GangEventKind::Output(bytes),
                    Some(Output::Notice(text)) => GangEventKind::Notice(text),
                    Some(Output::Missed(bytes)) => GangEventKind::Missed { bytes },
                    Some(Output::Closed(_)) => GangEventKind::Closed,
                    _ => continue,
                },
            },
            cmd = cmds.recv() => {
                match cmd {
                    None => break,
                    Some(MemberCmd::Write { bytes, reply }) => {
                        let _ = reply.send(session.write(&bytes).await);
                    }
                    Some(MemberCmd::Note { text, reply }) => {
                        let _ = reply.send(session.note(&text).await);
                    }
                }
                continue;
            }
        };
        let closed = kind == GangEventKind::Closed;
        if dropped > 0 {
            let missed = GangEvent {
                device: name.clone(),
                kind: GangEventKind::Missed { bytes: dropped },
            };
            if events.try_send(missed).is_ok() {
                dropped = 0;
            }
        }
        let size = match &kind {
            GangEventKind::Output(b) => b.len() as u64,
            _ => 0,
        };
        let event = GangEvent {
            device: name.clone(),
            kind,
        };
        match events.try_send(event) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => dropped += size,
            Err(mpsc::error::TrySendError::Closed(_)) => break,
        }
        if closed {
            break;
        }
    }
}

fn spawn_member(session: Session, events: &mpsc::Sender<GangEvent>) -> Member {
    let name: Arc<str> = Arc::from(session.console().name());
    let (tx, rx) = mpsc::channel(16);
    let task = tokio::spawn(member_task(session, name.clone(), rx, events.clone()));
    Member {
        name,
        cmds: tx,
        paused: false,
        task,
    }
}

/// Capacity of the merged stream for `n` members.
fn stream_capacity(n: usize) -> usize {
    (n * 64).clamp(1024, 1 << 16)
}

/// One input to many consoles (see the [module documentation](self)).
pub struct Gang {
    user: String,
    members: Vec<Member>,
    events: mpsc::Receiver<GangEvent>,
}

impl std::fmt::Debug for Gang {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gang")
            .field("user", &self.user)
            .field("devices", &self.devices())
            .finish_non_exhaustive()
    }
}

/// How [`Gang::command`] collects and compares the answers.
#[derive(Debug, Clone)]
pub struct CollectOptions {
    /// A device's answer is complete when it has sent nothing for this long.
    pub quiet: Duration,
    /// Stop collecting after this long in any case.
    pub max_wait: Duration,
    /// How answers are normalised before they are compared.
    pub normalise: Normalise,
    /// Pause the devices whose answer differs from the majority.
    pub pause_divergent: bool,
}

impl Default for CollectOptions {
    fn default() -> Self {
        CollectOptions {
            quiet: Duration::from_millis(300),
            max_wait: Duration::from_secs(10),
            normalise: Normalise::default(),
            pause_divergent: false,
        }
    }
}

/// What [`normalise`] hides before outputs are compared. ANSI sequences are always stripped,
/// line ends unified, and lines trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalise {
    /// The device's own name becomes `{device}` (prompts carry it). On by default.
    pub mask_device_name: bool,
    /// Times and dates (`12:34:56`, `2024-05-01`) become `<time>` / `<date>`.
    pub mask_timestamps: bool,
    /// Hex numbers (`0x1f`, runs of 8 or more hex digits) become `<hex>`.
    pub mask_hex: bool,
    /// Every run of digits becomes `#`.
    pub mask_digits: bool,
}

impl Default for Normalise {
    fn default() -> Self {
        Normalise {
            mask_device_name: true,
            mask_timestamps: false,
            mask_hex: false,
            mask_digits: false,
        }
    }
}

/// `raw` device output as compared by [`Gang::command`]: ANSI-stripped, lines trimmed, blank lines
/// dropped, masked as `opts` says.
pub fn normalise(raw: &[u8], device: &str, opts: &Normalise) -> String {
    let mut stripped = Vec::with_capacity(raw.len());
    AnsiStripper::new().feed(raw, |piece| match piece {
        Piece::Text(t) => stripped.extend_from_slice(t),
        Piece::LineEnd => stripped.push(b'\n'),
    });
    let text = String::from_utf8_lossy(&stripped);
    let mut out: String = text
        .split('\n')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    if opts.mask_device_name && !device.is_empty() {
        out = out.replace(device, "{device}");
    }
    let masks: [(bool, &str, &str); 4] = [
        (
            opts.mask_timestamps,
            r"\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}/\d{2,4}",
            "<date>",
        ),
        (
            opts.mask_timestamps,
            r"\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?",
            "<time>",
        ),
        (
            opts.mask_hex,
            r"\b0[xX][0-9a-fA-F]+\b|\b[0-9a-fA-F]{8,}\b",
            "<hex>",
        ),
        (opts.mask_digits, r"\d+", "#"),
    ];
    for (on, re, with) in masks {
        if on && let Ok(re) = Regex::new(re) {
            out = re.replace_all(&out, with).into_owned();
        }
    }
    out
}

/// The devices whose normalised output is the most common one, and the others (both sorted).
/// On a tie the group holding the first device by name is the majority.
pub fn majority(outputs: &BTreeMap<String, String>) -> (Vec<String>, Vec<String>) {
    let mut groups: Vec<(&str, Vec<String>)> = Vec::new();
    for (device, text) in outputs {
        match groups.iter_mut().find(|(t, _)| *t == text.as_str()) {
            Some((_, devices)) => devices.push(device.clone()),
            None => groups.push((text.as_str(), vec![device.clone()])),
        }
    }
    let mut best: Option<usize> = None;
    for (i, (_, devices)) in groups.iter().enumerate() {
        let better = match best.and_then(|b| groups.get(b)) {
            None => true,
            Some((_, current)) => devices.len() > current.len(),
        };
        if better {
            best = Some(i);
        }
    }
    let mut winners = Vec::new();
    let mut others = Vec::new();
    for (i, (_, devices)) in groups.into_iter().enumerate() {
        if Some(i) == best {
            winners = devices;
        } else {
            others.extend(devices);
        }
    }
    others.sort();
    (winners, others)
}

/// What [`Gang::command`] found.
#[derive(Debug, Clone, Default)]
pub struct CommandReport {
    /// Each device's raw output after the command, as it came.
    pub outputs: BTreeMap<String, Vec<u8>>,
    /// Each device's normalised output.
    pub normalised: BTreeMap<String, String>,
    /// The devices that answered like the majority.
    pub majority: Vec<String>,
    /// The devices that answered differently (paused if asked).
    pub divergent: Vec<String>,
    /// Devices the input could not be sent to, and why.
    pub failed: Vec<(String, String)>,
    /// Output bytes lost per device while collecting (only devices that lost some).
    pub missed: BTreeMap<String, u64>,
}

impl Gang {
    /// Attach `user` to each console with [`Mode::Attach`]. Consoles whose lock is held by someone
    /// else, or that cannot be attached, are left out and listed as refusals.
    pub async fn open(user: &str, consoles: &[Console]) -> (Gang, Vec<Refusal>) {
        Gang::open_from(user, "gang", consoles).await
    }

    /// [`Gang::open`] naming where the user comes from (shown by `who`).
    pub async fn open_from(user: &str, origin: &str, consoles: &[Console]) -> (Gang, Vec<Refusal>) {
        let (tx, rx) = mpsc::channel(stream_capacity(consoles.len()));
        let mut attaching = tokio::task::JoinSet::new();
        for (i, console) in consoles.iter().enumerate() {
            let console = console.clone();
            let user = user.to_string();
            let origin = origin.to_string();
            attaching.spawn(async move {
                let r = attach_writer(&console, &user, &origin).await;
                (i, r)
            });
        }
        let mut results: Vec<(usize, std::result::Result<Session, Refusal>)> = Vec::new();
        while let Some(joined) = attaching.join_next().await {
            if let Ok(r) = joined {
                results.push(r);
            }
        }
        results.sort_by_key(|(i, _)| *i);
        let mut members = Vec::new();
        let mut refused = Vec::new();
        for (_, r) in results {
            match r {
                Ok(session) => members.push(spawn_member(session, &tx)),
                Err(refusal) => refused.push(refusal),
            }
        }
        let gang = Gang {
            user: user.to_string(),
            members,
            events: rx,
        };
        (gang, refused)
    }

    /// The user typing.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The member devices, in the order given.
    pub fn devices(&self) -> Vec<&str> {
        self.members.iter().map(|m| &*m.name).collect()
    }

    /// The members input currently goes to.
    pub fn active(&self) -> Vec<&str> {
        self.members
            .iter()
            .filter(|m| !m.paused)
            .map(|m| &*m.name)
            .collect()
    }

    /// The paused members.
    pub fn paused(&self) -> Vec<&str> {
        self.members
            .iter()
            .filter(|m| m.paused)
            .map(|m| &*m.name)
            .collect()
    }

    /// Stop (`true`) or resume (`false`) sending input to `device`. False if it is no member.
    pub fn set_paused(&mut self, device: &str, paused: bool) -> bool {
        match self.members.iter_mut().find(|m| &*m.name == device) {
            Some(m) => {
                m.paused = paused;
                true
            }
            None => false,
        }
    }

    /// Type `bytes` into every active member at once. Returns the members it failed for.
    pub async fn send(&self, bytes: &[u8]) -> Vec<(String, Error)> {
        let targets: Vec<&Member> = self.members.iter().filter(|m| !m.paused).collect();
        self.send_to_members(&targets, Bytes::copy_from_slice(bytes))
            .await
    }

    /// Type `text` and CR into every active member.
    pub async fn send_line(&self, text: &str) -> Vec<(String, Error)> {
        self.send(format!("{text}\r").as_bytes()).await
    }

    /// Type `bytes` into one member only (paused or not).
    pub async fn send_to(&self, device: &str, bytes: &[u8]) -> Result<()> {
        let Some(m) = self.members.iter().find(|m| &*m.name == device) else {
            return Err(Error::Denied {
                reason: format!("{device} is not in this gang"),
            });
        };
        let failed = self
            .send_to_members(&[m], Bytes::copy_from_slice(bytes))
            .await;
        match failed.into_iter().next() {
            Some((_, e)) => Err(e),
            None => Ok(()),
        }
    }

    /// Write a note into every member's log (visible to their viewers).
    pub async fn note(&self, text: &str) -> Vec<(String, Error)> {
        let mut waiting = Vec::new();
        for m in &self.members {
            let (reply, rx) = oneshot::channel();
            let cmd = MemberCmd::Note {
                text: text.to_string(),
                reply,
            };
            if m.cmds.send(cmd).await.is_ok() {
                waiting.push((m.name.clone(), rx));
            }
        }
        let mut failed = Vec::new();
        for (name, rx) in waiting {
            match rx.await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => failed.push((name.to_string(), e)),
                Err(_) => failed.push((name.to_string(), gone(&name))),
            }
        }
        failed
    }

    async fn send_to_members(&self, targets: &[&Member], bytes: Bytes) -> Vec<(String, Error)> {
        let mut waiting = Vec::with_capacity(targets.len());
        let mut failed = Vec::new();
        for m in targets {
            let (reply, rx) = oneshot::channel();
            let cmd = MemberCmd::Write {
                bytes: bytes.clone(),
                reply,
            };
            match m.cmds.send(cmd).await {
                Ok(()) => waiting.push((m.name.clone(), rx)),
                Err(_) => failed.push((m.name.to_string(), gone(&m.name))),
            }
        }
        for (name, rx) in waiting {
            match rx.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failed.push((name.to_string(), e)),
                Err(_) => failed.push((name.to_string(), gone(&name))),
            }
        }
        failed
    }

    /// The next event from any member (`None` once every member has stopped).
    pub async fn next(&mut self) -> Option<GangEvent> {
        self.events.recv().await
    }

    /// Like [`Gang::next`], but `None` at once if nothing is waiting.
    pub fn try_next(&mut self) -> Option<GangEvent> {
        self.events.try_recv().ok()
    }

    /// Forget events waiting in the stream.
    pub fn drain(&mut self) {
        while self.events.try_recv().is_ok() {}
    }

    /// Collect output from the active members until each has been quiet for `opts.quiet` (or
    /// `opts.max_wait` has passed). Returns the output per device and the bytes missed.
    pub async fn collect(
        &mut self,
        opts: &CollectOptions,
    ) -> (BTreeMap<String, Vec<u8>>, BTreeMap<String, u64>) {
        let start = Instant::now();
        let hard = start + opts.max_wait;
        let mut outputs: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        let mut last: BTreeMap<String, Instant> = BTreeMap::new();
        for name in self.active() {
            outputs.insert(name.to_string(), Vec::new());
            last.insert(name.to_string(), start);
        }
        let mut missed: BTreeMap<String, u64> = BTreeMap::new();
        loop {
            let settled = last.values().max().copied().unwrap_or(start) + opts.quiet;
            let deadline = settled.min(hard);
            let event = match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(event)) => event,
                Ok(None) | Err(_) => break,
            };
            let device = event.device.to_string();
            let Some(out) = outputs.get_mut(&device) else {
                continue;
            };
            match event.kind {
                GangEventKind::Output(bytes) => {
                    out.extend_from_slice(&bytes);
                    last.insert(device, Instant::now());
                }
                GangEventKind::Missed { bytes } => *missed.entry(device).or_default() += bytes,
                GangEventKind::Closed => {
                    last.remove(&device);
                }
                _ => {}
            }
        }
        (outputs, missed)
    }

    /// Send `line` (and CR) to the active members, collect every answer ([`Gang::collect`]), and
    /// compare them: the report lists the majority and the divergent devices, which are paused
    /// if `opts.pause_divergent`.
    pub async fn command(&mut self, line: &str, opts: &CollectOptions) -> CommandReport {
        self.drain();
        let failed = self.send_line(line).await;
        let (mut outputs, missed) = self.collect(opts).await;
        let mut report = CommandReport {
            failed: failed
                .into_iter()
                .map(|(device, e)| (device, e.to_string()))
                .collect(),
            missed,
            ..CommandReport::default()
        };
        for (device, _) in &report.failed {
            outputs.remove(device);
        }
        report.normalised = outputs
            .iter()
            .map(|(device, raw)| (device.clone(), normalise(raw, device, &opts.normalise)))
            .collect();
        let (majority, divergent) = majority(&report.normalised);
        if opts.pause_divergent {
            for device in &divergent {
                self.set_paused(device, true);
            }
        }
        report.majority = majority;
        report.divergent = divergent;
        report.outputs = outputs;
        report
    }
}

fn gone(device: &str) -> Error {
    Error::ConsoleGone {
        device: device.to_string(),
    }
}

/// Attach with the write lock, or say who holds it.
async fn attach_writer(
    console: &Console,
    user: &str,
    origin: &str,
) -> std::result::Result<Session, Refusal> {
    let device = console.name().to_string();
    let session = console
        .attach_from(user, origin, Mode::Attach, Some(0))
        .await
        .map_err(|error| Refusal::Failed {
            device: device.clone(),
            error,
        })?;
    if session.role() != ViewerRole::Spy {
        return Ok(session);
    }
    drop(session);
    let held_by = match console.who().await {
        Ok(who) => who
            .into_iter()
            .find(|v| v.role == ViewerRole::ReadWrite)
            .map_or_else(|| "someone".to_string(), |v| v.user.to_string()),
        Err(_) => "someone".to_string(),
    };
    Err(Refusal::Busy { device, held_by })
}

/// A read-only merged view of many consoles' output (see the [module documentation](self)).
pub struct Listen {
    members: Vec<Member>,
    events: mpsc::Receiver<GangEvent>,
}

impl std::fmt::Debug for Listen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let devices: Vec<&str> = self.members.iter().map(|m| &*m.name).collect();
        f.debug_struct("Listen")
            .field("devices", &devices)
            .finish_non_exhaustive()
    }
}

impl Listen {
    /// Spy on each console as `user`. Consoles that cannot be attached are listed as refusals.
    pub async fn open(user: &str, consoles: &[Console]) -> (Listen, Vec<Refusal>) {
        let (tx, rx) = mpsc::channel(stream_capacity(consoles.len()));
        let mut members = Vec::new();
        let mut refused = Vec::new();
        for console in consoles {
            match console
                .attach_from(user, "listen", Mode::Spy, Some(0))
                .await
            {
                Ok(session) => members.push(spawn_member(session, &tx)),
                Err(error) => refused.push(Refusal::Failed {
                    device: console.name().to_string(),
                    error,
                }),
            }
        }
        (
            Listen {
                members,
                events: rx,
            },
            refused,
        )
    }

    /// The devices listened to.
    pub fn devices(&self) -> Vec<&str> {
        self.members.iter().map(|m| &*m.name).collect()
    }

    /// The next event from any console (`None` once all have stopped).
    pub async fn next(&mut self) -> Option<GangEvent> {
        self.events.recv().await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn normalise_masks() {
        let raw = b"\x1b[1mweb01:~$\x1b[0m uptime\r\n 12:01:02 up 3 days, load 0x1f\r\n\r\n";
        let plain = normalise(raw, "web01", &Normalise::default());
        assert_eq!(plain, "{device}:~$ uptime\n12:01:02 up 3 days, load 0x1f");
        let all = Normalise {
            mask_device_name: true,
            mask_timestamps: true,
            mask_hex: true,
            mask_digits: true,
        };
        assert_eq!(
            normalise(raw, "web01", &all),
            "{device}:~$ uptime\n<time> up # days, load <hex>"
        );
    }

    #[test]
    fn majority_and_ties() {
        let mut m = BTreeMap::new();
        for (d, t) in [("a", "x"), ("b", "y"), ("c", "x"), ("d", "z")] {
            m.insert(d.to_string(), t.to_string());
        }
        let (win, other) = majority(&m);
        assert_eq!(win, vec!["a", "c"]);
        assert_eq!(other, vec!["b", "d"]);
        let mut tie = BTreeMap::new();
        tie.insert("b".to_string(), "1".to_string());
        tie.insert("a".to_string(), "2".to_string());
        let (win, other) = majority(&tie);
        assert_eq!(win, vec!["a"]);
        assert_eq!(other, vec!["b"]);
        assert_eq!(majority(&BTreeMap::new()), (vec![], vec![]));
    }
}
