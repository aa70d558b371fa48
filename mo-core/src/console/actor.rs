//! The actor task behind a [`super::Console`]: one select loop over the link, the requests of
//! its handles and its timers. What it decides is delegated: sharing to [`Sharing`] (sans-I/O),
//! the link's life to [`Connection`], the timeline's consumers to [`Hub`].

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, SystemTime};

use bytes::{Buf, Bytes, BytesMut};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::connection::{Connection, connect_opt, read_opt, status_changed, write_opt};
use super::consumer::Consumers;
use super::hub::Hub;
use super::login::{LoginAction, LoginRun};
use super::loopguard::{LoopGuard, Verdict};
use super::quiet::QuietLook;
use super::secret::SecretGuard;
use super::sharing::{Granted, Notice, Sharing};
use super::{
    Attached, ConsoleConfig, Lines, LinkState, LogHealth, LogPolicy, Mode, Request, ViewerId,
    ViewerRole,
};
use crate::breakseq::BreakStep;
use crate::error::{Error, Result};
use crate::link::{Connector, ControlOp, Link, ModemState};
use crate::record::RecordKind;

mod signals;

/// Input bytes waiting for the link before the actor stops taking requests.
const PENDING_CAP: usize = 64 * 1024;
/// The read size of a quiet link, and the least a read asks for. Reads go into the worker
/// thread's arena (`arena.rs`): a console holds no read buffer of its own.
const READ_MIN: usize = 256;
/// The user name auto-login input and notices are recorded under.
const LOGIN_USER: &str = "auto-login";
/// The read size of a flooding link (the read size doubles after each read that filled it).
const READ_MAX: usize = 64 * 1024;
/// A link that has said nothing for this long (up to twice this) goes back to [`READ_MIN`]
/// reads, so that its next few bytes do not ask the read arena for the room of a burst.
const READ_QUIET: Duration = Duration::from_secs(2);
/// Output a console reads before it lets the worker thread run other tasks: its scanner (woken
/// by the first chunk) then scans the chunks while they are fresh, instead of finding its feed
/// full after tokio's whole cooperative budget of reads (128 reads, up to 8 MiB), and the chunks
/// in flight between reader and scanner stay few. Measured (`mo-bench flood-unix`, `flood-pty`):
/// 64 KiB cost the unix flood about 5 % more CPU in task switches, 256 KiB let the pty flood's
/// chunks in flight hold 64 MiB of read arenas (128 KiB: 36 MiB).
const BURST_MAX: usize = 128 * 1024;

enum Wake {
    Request(Option<Box<Request>>),
    Read(std::io::Result<Bytes>),
    Wrote(std::io::Result<usize>),
    Connected(Result<Link>),
    /// The link's status changed (`false`: the link stopped reporting it).
    Status(bool),
    Timer,
}

/// How much the next read asks for: it doubles after each read that took all it asked (a fast
/// device), follows one that took all the link had (a burst that ended, a prompt), and goes
/// back to [`READ_MIN`] once the link has said nothing for [`READ_QUIET`] (to twice that).
#[derive(Debug)]
struct ReadSize {
    size: usize,
    /// Whether the link has been quiet (armed while `size` is above [`READ_MIN`]).
    quiet: QuietLook,
}

impl Default for ReadSize {
    fn default() -> Self {
        ReadSize {
            size: READ_MIN,
            quiet: QuietLook::new(READ_QUIET),
        }
    }
}

impl ReadSize {
    /// A read gave `n` bytes into a buffer with `room` bytes; `now` is read only when the quiet
    /// look is armed (once per quiet period, not per read).
    fn after_read(&mut self, n: usize, room: usize, now: impl FnOnce() -> Instant) {
        if n >= self.size {
            self.size = (self.size * 2).min(READ_MAX);
        } else if n < room {
            self.size = n.next_power_of_two().clamp(READ_MIN, self.size);
        }
        if self.size > READ_MIN {
            self.quiet.activity(now);
        }
    }

    /// The actor's timer fired at `now`.
    fn on_timer(&mut self, now: Instant) {
        if self.quiet.quiet(now) {
            self.size = READ_MIN;
        }
    }
}

pub(super) struct Actor {
    cfg: Arc<ConsoleConfig>,
    name: Arc<str>,
    /// The link and its retries.
    link: Connection,
    /// Who is connected and who may write.
    sharing: Sharing,
    /// The timeline's consumers: the record log, bounded consumers, the viewers' ring.
    hub: Hub,
    rx: mpsc::Receiver<Box<Request>>,
    self_tx: mpsc::WeakSender<Box<Request>>,
    state: watch::Sender<LinkState>,
    /// The modem lines as last announced on the current link.
    modem: watch::Sender<Option<ModemState>>,
    read_size: ReadSize,
    /// Output read since the actor last let other tasks run on purpose.
    burst: usize,
    pending: BytesMut,
    idle_at: Option<Instant>,
    window: Option<(u16, u16)>,
    /// DTR and RTS as last set through mo, and when the modem lines changed.
    lines: watch::Sender<Lines>,
    login: Option<LoginRun>,
    /// Redacts input typed at password prompts (`None`: the device logs secrets).
    secrets: Option<SecretGuard>,
    /// Who typed the input the guard holds.
    secret_user: Arc<str>,
    /// Watches the output for mo's own notices coming back (a console loop).
    loop_guard: LoopGuard,
}

fn system_time(at: Instant) -> SystemTime {
    SystemTime::now() + at.saturating_duration_since(Instant::now())
}

async fn sleep_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// What the actor publishes for its handles to watch.
pub(super) struct Outlets {
    pub(super) state: watch::Sender<LinkState>,
    pub(super) modem: watch::Sender<Option<ModemState>>,
    pub(super) lines: watch::Sender<Lines>,
    pub(super) log_health: watch::Sender<LogHealth>,
    /// Output bytes so far ([`super::Console::output_offset`]).
    pub(super) output: Arc<AtomicU64>,
}

impl Actor {
    pub(super) fn new(
        cfg: Arc<ConsoleConfig>,
        connector: Arc<dyn Connector>,
        consumers: Consumers,
        rx: mpsc::Receiver<Box<Request>>,
        self_tx: mpsc::WeakSender<Box<Request>>,
        outlets: Outlets,
    ) -> Self {
        let Outlets {
            state,
            modem,
            lines,
            log_health,
            output,
        } = outlets;
        let cfg_log_secrets = cfg.log_secrets;
        Actor {
            name: Arc::from(cfg.name.as_str()),
            link: Connection::new(connector, &cfg),
            sharing: Sharing::new(Arc::from(cfg.name.as_str()), cfg.allow_join),
            hub: Hub::new(&cfg, consumers, log_health, output),
            cfg,
            rx,
            self_tx,
            state,
            modem,
            read_size: ReadSize::default(),
            burst: 0,
            pending: BytesMut::new(),
            idle_at: None,
            window: None,
            lines,
            login: None,
            secrets: (!cfg_log_secrets).then(SecretGuard::new),
            secret_user: Arc::from(""),
            loop_guard: LoopGuard::default(),
        }
    }

    pub(super) async fn run(mut self) {
        if !self.cfg.on_demand {
            self.start_connect();
        }
        loop {
            // A link that is always ready (a simulated device, a fast pipe) must not keep this
            // worker thread from every other console and front door: take part in tokio's
            // cooperative budget like its own I/O resources do.
            tokio::task::coop::consume_budget().await;
            if self.burst >= BURST_MAX {
                self.burst = 0;
                tokio::task::yield_now().await;
            }
            let timer = [
                self.link.retry_at,
                self.idle_at,
                self.login.as_ref().and_then(LoginRun::deadline),
                self.hub.deadline(),
                self.read_size.quiet.at,
            ]
            .into_iter()
            .flatten()
            .min();
            let wake = tokio::select! {
                biased;
                // A finished connection attempt first: a request that arrives together with it
                // (a viewer typing) then finds the link up.
                c = connect_opt(&mut self.link.connecting) => Wake::Connected(c),
                req = self.rx.recv(), if self.pending.len() < PENDING_CAP => Wake::Request(req),
                r = write_opt(&mut self.link.writer, &self.pending), if !self.pending.is_empty() => Wake::Wrote(r),
                s = status_changed(&mut self.link.status) => Wake::Status(s),
                r = read_opt(&mut self.link.reader, self.read_size.size) => Wake::Read(r),
                () = sleep_opt(timer) => Wake::Timer,
            };
            match wake {
                Wake::Request(None) => break,
                Wake::Request(Some(req)) => match *req {
                    Request::Shutdown => break,
                    req => self.handle(req),
                },
                Wake::Read(Ok(data)) if data.is_empty() => {
                    self.link_down("the device closed the connection".into());
                }
                Wake::Read(Ok(data)) => {
                    self.on_output(data);
                    // A device that always has bytes ready never lets the timer branch win:
                    // the sync deadline is checked here too (a clock read when nothing is due).
                    self.hub.sync_log();
                }
                Wake::Read(Err(e)) => self.link_down(format!("read failed: {e}")),
                Wake::Wrote(Ok(n)) => self.pending.advance(n),
                Wake::Wrote(Err(e)) => self.link_down(format!("write failed: {e}")),
                Wake::Connected(Ok(link)) => self.link_up(link),
                Wake::Connected(Err(e)) => {
                    self.link.connecting = None;
                    self.schedule_retry(format!("connect failed: {e}"));
                }
                Wake::Status(true) => self.on_status(),
                // The driver dropped its end: the byte stream tells whether the link is down.
                Wake::Status(false) => self.link.status = None,
                Wake::Timer => self.on_timer(),
            }
        }
        self.close_link();
        self.hub.notice("", "console stopped".into());
        self.set_state(LinkState::Stopped);
        self.hub.close();
    }

    /// Record viewer input, through the secret guard: input typed at a password prompt is held
    /// and recorded redacted once its line ends (see [`SecretGuard`]). Held input counts as
    /// recorded (`Ok`).
    fn emit_input(&mut self, user: Arc<str>, bytes: Bytes) -> Result<u64> {
        let Some(guard) = self.secrets.as_mut() else {
            return self.hub.emit(RecordKind::Input, user, bytes);
        };
        if guard.holding() && self.secret_user != user {
            // Someone else types while a secret is held: close that one first.
            self.flush_secret();
        }
        let Some(guard) = self.secrets.as_mut() else {
            return self.hub.emit(RecordKind::Input, user, bytes);
        };
        match guard.input(&bytes) {
            Some(record) => self.hub.emit(RecordKind::Input, user, record),
            None => {
                self.secret_user = user;
                Ok(self.hub.seq())
            }
        }
    }

    /// Record what the secret guard still holds, redacted.
    fn flush_secret(&mut self) {
        if let Some(held) = self.secrets.as_mut().and_then(SecretGuard::flush) {
            let user = self.secret_user.clone();
            let _ = self.hub.emit(RecordKind::Input, user, held);
        }
    }

    fn on_output(&mut self, data: Bytes) {
        // What the read was given: a read that did not fill it took all the link had.
        let room = self.read_size.size;
        let n = data.len();
        // Counted whether or not the read took all it asked: a pty gives at most 4 KiB a read
        // however much waits.
        self.burst += n;
        if let Some(held) = self.secrets.as_mut().and_then(|g| g.output(&data)) {
            let user = self.secret_user.clone();
            let _ = self.hub.emit(RecordKind::Input, user, held);
        }
        // Adapt the read size: a full read means a fast device; one that took all the link had
        // sizes the next to it (a burst that ended, an idle prompt), so that the next read does
        // not ask the thread's read arena for much more room than it will use (`arena.rs`).
        self.read_size.after_read(n, room, Instant::now);
        let actions = self
            .login
            .as_mut()
            .map(|run| run.output(&data, Instant::now()));
        self.guard_loop(&data);
        self.emit_output(data);
        if let Some(actions) = actions {
            self.login_actions(actions);
        }
    }

    /// Output into the timeline: each piece with the time it was first read when the link
    /// carries such times (an agent's spool), else now.
    fn emit_output(&mut self, mut data: Bytes) {
        let times = self
            .link
            .control
            .as_ref()
            .and_then(|c| c.origin_times(data.len()));
        for (len, time_ns) in times.unwrap_or_default() {
            if data.is_empty() {
                return;
            }
            let piece = data.split_to(len.min(data.len()));
            if !piece.is_empty() {
                let _ = self
                    .hub
                    .emit_at(RecordKind::Output, Arc::from(""), piece, Some(time_ns));
            }
        }
        if !data.is_empty() {
            let _ = self.hub.emit(RecordKind::Output, Arc::from(""), data);
        }
    }

    /// Feed output to the loop guard; stop or resume delivery to the viewers as it says.
    fn guard_loop(&mut self, data: &[u8]) {
        match self.loop_guard.feed(data, Instant::now()) {
            Verdict::Same => {}
            Verdict::Tripped(text) => {
                tracing::warn!(device = %self.name, "{text}");
                // The viewers see this one notice, then nothing until the loop ends.
                self.hub.notice("", text);
                self.hub.set_muted(true);
            }
            Verdict::Resumed => {
                // Into the log only: shown to the viewers it would start the loop again.
                self.hub.notice(
                    "",
                    "console loop ended: output reaches the viewers again".into(),
                );
                self.hub.set_muted(false);
            }
        }
    }

    // ----- auto-login -----

    fn start_login(&mut self) {
        let Some(script) = self.cfg.login.clone() else {
            return;
        };
        let mut run = LoginRun::new(script);
        let actions = run.advance(Instant::now());
        self.login = Some(run);
        self.hub.notice(LOGIN_USER, "auto-login: started".into());
        self.login_actions(actions);
    }

    fn login_actions(&mut self, actions: Vec<LoginAction>) {
        let user: Arc<str> = Arc::from(LOGIN_USER);
        for action in actions {
            match action {
                LoginAction::Send(bytes) => {
                    self.pending.extend_from_slice(&bytes);
                    let _ = self
                        .hub
                        .emit(RecordKind::Input, user.clone(), Bytes::from(bytes));
                }
                LoginAction::Wake => {
                    self.pending.extend_from_slice(b"\r");
                    let _ =
                        self.hub
                            .emit(RecordKind::Input, user.clone(), Bytes::from_static(b"\r"));
                }
                LoginAction::SendSecret(secret) => {
                    self.pending.extend_from_slice(secret.expose().as_bytes());
                    let text = format!(
                        "auto-login: sent a secret ({} bytes, redacted)",
                        secret.expose().len()
                    );
                    self.hub.notice(LOGIN_USER, text);
                }
                LoginAction::Done => {
                    self.login = None;
                    self.hub.notice(LOGIN_USER, "auto-login: done".into());
                }
                LoginAction::Failed(reason) => {
                    self.login = None;
                    self.hub
                        .notice(LOGIN_USER, format!("auto-login failed: {reason}"));
                }
            }
        }
    }

    // ----- link life -----

    fn set_state(&mut self, s: LinkState) {
        self.state.send_replace(s);
    }

    fn start_connect(&mut self) {
        if let Some(attempt) = self.link.start() {
            self.set_state(LinkState::Connecting { attempt });
        }
    }

    fn link_up(&mut self, link: Link) {
        let control = self.link.up(link);
        self.set_state(LinkState::Up {
            since: SystemTime::now(),
        });
        let text = format!("link up: {}", self.link.address());
        self.hub.notice("", text);
        // A port opens with DTR and RTS raised: what mo set on the last link is gone.
        self.lines.send_modify(|l| {
            *l = Lines {
                modem_changed: l.modem_changed,
                ..Lines::default()
            }
        });
        self.on_status();
        if let Some((cols, rows)) = self.window {
            tokio::spawn(async move {
                let _ = control.control(ControlOp::WindowSize { cols, rows }).await;
            });
        }
        if self.cfg.on_demand && self.sharing.is_empty() {
            self.idle_at = Some(Instant::now() + self.cfg.idle_timeout);
        }
        self.start_login();
    }

    /// Announce the link's modem lines when they are first known and whenever they change.
    fn on_status(&mut self) {
        let Some(rx) = self.link.status.as_mut() else {
            return;
        };
        let now = rx.borrow_and_update().modem;
        let previous = *self.modem.borrow();
        match now {
            Some(now) => {
                if let Some(text) = now.notice(previous) {
                    self.modem.send_replace(Some(now));
                    self.lines
                        .send_modify(|l| l.modem_changed = Some(SystemTime::now()));
                    self.hub.notice("", text);
                }
            }
            None => {
                self.modem.send_if_modified(|m| m.take().is_some());
            }
        }
    }

    fn close_link(&mut self) {
        self.close_link_with(Connection::close);
    }

    /// Drop the link with `close` (a plain close, or [`Connection::went_down`]); what the
    /// secret guard held is recorded first, and the modem lines are no longer known.
    fn close_link_with(&mut self, close: fn(&mut Connection)) {
        if let Some(held) = self.secrets.as_mut().and_then(SecretGuard::reset) {
            let user = self.secret_user.clone();
            let _ = self.hub.emit(RecordKind::Input, user, held);
        }
        self.modem.send_if_modified(|m| m.take().is_some());
        self.login = None;
        close(&mut self.link);
    }

    fn schedule_retry(&mut self, reason: String) {
        if self.cfg.on_demand && self.sharing.is_empty() {
            self.link.reset();
            self.set_state(LinkState::Idle);
            return;
        }
        let (delay, at) = self.link.plan_retry();
        self.set_state(LinkState::Down {
            reason: reason.clone(),
            retry_at: system_time(at),
        });
        self.hub.notice(
            "",
            format!(
                "link down: {reason}; retrying in {:.1}s",
                delay.as_secs_f64()
            ),
        );
    }

    fn link_down(&mut self, reason: String) {
        self.close_link_with(Connection::went_down);
        if !self.pending.is_empty() {
            let lost = self.pending.len();
            self.pending.clear();
            self.hub.notice(
                "",
                format!("{lost} input bytes were not delivered: link down"),
            );
        }
        self.schedule_retry(reason);
    }

    fn on_timer(&mut self) {
        let now = Instant::now();
        self.hub.on_timer();
        if let Some(run) = self
            .login
            .as_mut()
            .filter(|r| r.deadline().is_some_and(|t| t <= now))
        {
            let actions = run.timed_out(now);
            self.login_actions(actions);
        }
        if self.link.retry_due(now) {
            self.start_connect();
        }
        self.read_size.on_timer(now);
        if self.idle_at.is_some_and(|t| t <= now) {
            self.idle_at = None;
            if self.cfg.on_demand && self.sharing.is_empty() {
                self.close_link();
                self.link.reset();
                self.hub
                    .notice("", "on-demand console idle: link closed".into());
                self.set_state(LinkState::Idle);
            }
        }
    }

    // ----- requests -----

    fn handle(&mut self, req: Request) {
        match req {
            Request::Attach {
                user,
                origin,
                mode,
                replay,
                reply,
            } => {
                let _ = reply.send(self.attach(user, origin, mode, replay));
            }
            Request::Detach { id } => self.detach(id),
            Request::SetMode { id, mode, reply } => {
                let _ = reply.send(self.apply_mode(id, mode));
            }
            Request::Write { id, bytes, reply } => {
                let _ = reply.send(self.write(id, bytes));
            }
            Request::Inject { user, bytes } => {
                if self.link.writable() {
                    if let Some(e) = self.hub.strict_refuses() {
                        self.hub.viewer_notice(format!("{user}: {e}"));
                        return;
                    }
                    let logged = self.emit_input(user.clone(), bytes.clone());
                    if logged.is_ok() || self.cfg.log_policy == LogPolicy::Degrade {
                        self.pending.extend_from_slice(&bytes);
                    }
                }
            }
            Request::TypedElsewhere { user, bytes } => {
                let _ = self.emit_input(user, bytes);
            }
            Request::Break { id, number, reply } => {
                let _ = reply.send(self.send_break(id, number));
            }
            Request::Signal {
                id,
                line,
                to,
                reply,
            } => {
                let _ = reply.send(self.set_signal(id, line, to));
            }
            Request::SignalAs {
                user,
                line,
                to,
                reply,
            } => {
                let _ = reply.send(self.set_signal_as(user, line, to));
            }
            Request::Control { id, op, reply } => {
                let _ = reply.send(self.control(id, op));
            }
            Request::Record {
                kind,
                user,
                bytes,
                reply,
            } => {
                let _ = reply.send(self.hub.emit(kind, user, bytes));
            }
            Request::Recovered {
                notice,
                records,
                reply,
            } => {
                let _ = reply.send(self.hub.append_recovered(notice, records));
            }
            Request::Who { reply } => {
                let _ = reply.send(self.sharing.who());
            }
            Request::Replay { lines, reply } => {
                let _ = reply.send(self.hub.last_lines(lines));
            }
            Request::Reconnect { user } => {
                self.hub
                    .notice(&user, format!("{user} asked for a reconnect"));
                self.close_link();
                self.link.reset();
                self.start_connect();
            }
            Request::Subscribe { reply } => {
                let _ = reply.send(self.hub.subscribe());
            }
            Request::ApplyRetention { reply } => {
                let _ = reply.send(self.hub.apply_retention());
            }
            Request::Shutdown => {}
        }
    }

    /// Put sharing's notices into the timeline, in order.
    fn announce(&mut self, notices: Vec<Notice>) {
        for (user, text) in notices {
            self.hub.notice(&user, text);
        }
    }

    fn attach(
        &mut self,
        user: Arc<str>,
        origin: Arc<str>,
        mode: Mode,
        replay: Option<usize>,
    ) -> Result<Attached> {
        self.sharing.check(mode)?;
        // The viewer's cursor starts before its own notice, so it sees it.
        let joined = self.hub.join(replay.unwrap_or(self.cfg.replay_lines));
        let (id, granted) = self
            .sharing
            .connect(user, origin, mode, SystemTime::now())?;
        self.idle_at = None;
        let Granted {
            role,
            message,
            notices,
        } = granted;
        self.announce(notices);
        if self.cfg.on_demand {
            self.start_connect();
        }
        Ok(Attached {
            id,
            role,
            message,
            replay: joined.replay,
            rx: joined.rx,
            offset: joined.offset,
        })
    }

    /// Give viewer `id` the role `mode` asks for; notices go to everyone, the message to the viewer.
    fn apply_mode(&mut self, id: ViewerId, mode: Mode) -> Result<(ViewerRole, String)> {
        let granted = self.sharing.apply_mode(id, mode)?;
        self.announce(granted.notices);
        Ok((granted.role, granted.message))
    }

    fn detach(&mut self, id: ViewerId) {
        let Some((user, text)) = self.sharing.disconnect(id) else {
            return;
        };
        self.hub.notice(&user, text);
        if self.cfg.on_demand && self.sharing.is_empty() {
            if self.link.is_up() {
                self.idle_at = Some(Instant::now() + self.cfg.idle_timeout);
            } else {
                self.link.close();
                self.link.reset();
                self.set_state(LinkState::Idle);
            }
        }
    }

    fn down_error(&self) -> Error {
        let reason = match &*self.state.borrow() {
            LinkState::Down { reason, .. } => reason.clone(),
            LinkState::Connecting { attempt } => format!("connecting (attempt {attempt})"),
            LinkState::Idle => "idle".into(),
            other => other.word().into(),
        };
        Error::ConsoleDown {
            device: self.name.to_string(),
            reason,
        }
    }

    fn write(&mut self, id: ViewerId, bytes: Bytes) -> Result<()> {
        let user = self.sharing.writer(id, "typing")?;
        if !self.link.writable() {
            return Err(self.down_error());
        }
        if let Some(e) = self.hub.strict_refuses() {
            return Err(e);
        }
        let logged = self.emit_input(user, bytes.clone());
        if let Err(e) = logged
            && self.cfg.log_policy == LogPolicy::Strict
        {
            return Err(e);
        }
        self.pending.extend_from_slice(&bytes);
        Ok(())
    }

    fn send_break(&mut self, id: ViewerId, number: u8) -> Result<String> {
        let user = self.sharing.writer(id, "sending a break")?;
        let seq = self
            .cfg
            .break_sequences
            .get(number)
            .cloned()
            .ok_or_else(|| Error::BadSpec {
                what: "break sequence number",
                input: number.to_string(),
                reason: format!("{} has no break sequence {number}", self.name),
            })?;
        let Some(control) = self.link.control.clone() else {
            return Err(self.down_error());
        };
        if seq.needs_break() && !self.link.connector().capabilities().send_break {
            return Err(Error::Unsupported {
                operation: "break",
                what: self.link.address(),
            });
        }
        let text = format!("break {number} (`{}`) sent by {user}", seq.text());
        if let Some(e) = self.hub.strict_refuses() {
            return Err(e);
        }
        let _ = self
            .hub
            .emit(RecordKind::Control, user.clone(), Bytes::from(text.clone()));
        let tx = self.self_tx.clone();
        let name = self.name.clone();
        tokio::spawn(async move {
            for step in seq.steps() {
                match step {
                    BreakStep::Break(duration) => {
                        if let Err(e) = control
                            .control(ControlOp::Break {
                                duration: *duration,
                            })
                            .await
                        {
                            tracing::warn!(device = %name, error = %e, "break failed");
                            return;
                        }
                    }
                    BreakStep::Delay(d) => tokio::time::sleep(*d).await,
                    BreakStep::Send(bytes) => {
                        let Some(tx) = tx.upgrade() else { return };
                        let req = Box::new(super::Request::Inject {
                            user: user.clone(),
                            bytes: Bytes::from(bytes.clone()),
                        });
                        if tx.send(req).await.is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Ok(text)
    }

    fn control(&mut self, id: ViewerId, op: ControlOp) -> Result<()> {
        match op {
            ControlOp::WindowSize { cols, rows } => {
                // Only writers size the device's terminal; a spy's window changes nothing.
                if !self.sharing.can_write(id) {
                    return Ok(());
                }
                if self.window == Some((cols, rows)) {
                    return Ok(());
                }
                self.window = Some((cols, rows));
                if let Some(control) = self.link.control.clone() {
                    tokio::spawn(async move {
                        let _ = control.control(op).await;
                    });
                }
                Ok(())
            }
            other => Err(Error::Unsupported {
                operation: other.name(),
                what: "a viewer request".into(),
            }),
        }
    }
}

#[cfg(test)]
mod read_size_tests {
    use super::*;

    #[test]
    fn a_quiet_link_goes_back_to_small_reads() {
        let t0 = Instant::now();
        let mut r = ReadSize::default();
        // A burst: full reads double the size.
        for _ in 0..4 {
            let n = r.size;
            r.after_read(n, n, || t0);
        }
        assert_eq!(r.size, READ_MIN * 16);
        // The burst ends with a prompt: the size follows it.
        r.after_read(1800, READ_MIN * 16, || t0);
        assert_eq!(r.size, 2048);
        assert_eq!(r.quiet.at, Some(t0 + READ_QUIET));
        // A read before the look keeps the size for one more period.
        let reads = std::cell::Cell::new(0);
        let clock = || {
            reads.set(reads.get() + 1);
            t0
        };
        r.after_read(1000, 2048, clock);
        assert_eq!(reads.get(), 0, "the clock is read once per quiet period");
        r.on_timer(t0 + READ_QUIET);
        assert_eq!(r.size, 1024);
        assert_eq!(r.quiet.at, Some(t0 + READ_QUIET * 2));
        // Timer wakes for other reasons before the look change nothing.
        r.on_timer(t0 + READ_QUIET + Duration::from_millis(500));
        assert_eq!(r.size, 1024);
        // Nothing read since the last look: small reads again, and no look armed.
        r.on_timer(t0 + READ_QUIET * 2);
        assert_eq!(r.size, READ_MIN);
        assert_eq!(r.quiet.at, None);
        // Small reads never arm the look.
        r.after_read(10, READ_MIN, clock);
        assert_eq!(reads.get(), 0);
        assert_eq!((r.size, r.quiet.at), (READ_MIN, None));
        // A flood grows to the cap and stays there.
        for _ in 0..20 {
            let n = r.size;
            r.after_read(n, n, || t0);
        }
        assert_eq!(r.size, READ_MAX);
    }
}
