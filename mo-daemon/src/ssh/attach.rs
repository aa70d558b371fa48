//! A viewer on one console through SSH: keystrokes through the escape parser into the console,
//! the console's timeline out to the terminal.

use std::sync::Arc;

use bytes::Bytes;
use mo_core::console::{Mode, ViewerEvent, admit, terminal_notice, view};
use mo_core::escape::{Command, EscapeParser, Input, POWER_MENU, help_text};
use mo_core::policy::Permission;
use mo_core::power::PowerAction;
use mo_store::Outcome;

use super::shell::format_who;
use super::term::{Term, TermInput};
use crate::Ctx;
use crate::registry::Entry;
use crate::viewer::AnySession;

enum Wake<'a> {
    Input(TermInput),
    /// Users, tokens or grants changed (crate::live).
    Access(std::sync::Arc<crate::live::Snapshot>),
    Output(Option<tokio::sync::mpsc::Permit<'a, Bytes>>, ViewerEvent),
}

/// A notice line as viewers see it: `[mo: text]` on a line of its own.
pub fn notice(text: &str) -> Bytes {
    terminal_notice(text)
}

/// Attach `user` to `device` and bridge until the viewer leaves. Returns the exit status.
pub async fn run(
    ctx: &Arc<Ctx>,
    user: &str,
    origin: &str,
    device: &str,
    mode: Mode,
    replay: Option<usize>,
    term: &mut Term,
) -> u32 {
    let Some(entry) = ctx
        .registry
        .get(device)
        .filter(|_| ctx.access.allows(user, Permission::List, device))
    else {
        term.line(&format!("unknown device `{device}`")).await;
        return 1;
    };
    // Attach falls back to spying for users who may only spy (conserver does the same);
    // force and join are refused outright.
    let checked = ctx.check(user, origin, mode.action(), device).await;
    let mode = match admit(
        mode,
        checked,
        |why| why.clone(),
        || ctx.access.allows(user, Permission::Spy, device),
    ) {
        Ok(admitted) => {
            if let Some(why) = &admitted.notice {
                term.write(notice(why)).await;
            }
            admitted.mode
        }
        Err(why) => {
            term.line(&why).await;
            return 1;
        }
    };
    let mut session = match crate::viewer::open(ctx, &entry, user, origin, mode, replay).await {
        Ok(s) => s,
        Err(why) => {
            term.line(&why).await;
            return 1;
        }
    };
    let mut entry = entry;
    let door = Door { ctx, user, origin };
    loop {
        term.write(notice(&format!(
            "{device}: {}; {}? for help",
            session.message(),
            entry.escape
        )))
        .await;
        let replay = session.take_replay();
        if !replay.is_empty() {
            term.write(replay).await;
        }
        if let Some((cols, rows)) = term.size {
            let _ = session.window_size(cols, rows).await;
        }
        door.ctx.access.record(
            user,
            origin,
            "attach",
            Some(device),
            Outcome::Ok,
            format!("as {}", session.role()),
        );
        let (status, closed) = bridge(&door, &entry, &mut session, term).await;
        door.ctx
            .access
            .record(user, origin, "detach", Some(device), Outcome::Ok, "");
        // In a site, a console that stopped under the viewer (its owner died or gave it up)
        // is reattached wherever it runs next.
        if !closed || !crate::viewer::may_reattach(ctx) {
            return status;
        }
        let mode = if session.role().can_write() {
            Mode::Attach
        } else {
            Mode::Spy
        };
        drop(session);
        term.write(notice(&format!(
            "waiting up to {}s for {device} to run again in the site",
            crate::viewer::REATTACH_WAIT.as_secs()
        )))
        .await;
        match crate::viewer::reattach(ctx, device, user, origin, mode).await {
            Some((e, s)) => {
                term.write(notice(&format!("reattached to {device}"))).await;
                (entry, session) = (e, s);
            }
            None => {
                term.write(notice(&format!("{device} did not come back: disconnected")))
                    .await;
                return status;
            }
        }
    }
}

/// Who is on the other side of a session, for policy checks.
struct Door<'a> {
    ctx: &'a Arc<Ctx>,
    user: &'a str,
    origin: &'a str,
}

impl Door<'_> {
    async fn check(&self, action: Permission, device: &str) -> Result<(), String> {
        self.ctx.check(self.user, self.origin, action, device).await
    }
}

/// Bridge until the viewer leaves or the console closes: the exit status, and whether the
/// console closed (rather than the viewer leaving).
async fn bridge(
    door: &Door<'_>,
    entry: &Entry,
    session: &mut AnySession,
    term: &mut Term,
) -> (u32, bool) {
    let mut parser = EscapeParser::new(entry.escape);
    let out = term.out().clone();
    let me = session.user().to_string();
    let mut live = door.ctx.live.watch(crate::live::Holder::user(door.user));
    loop {
        let wake = tokio::select! {
            input = term.input() => Wake::Input(input),
            snapshot = live.next() => Wake::Access(snapshot),
            (permit, ev) = async {
                // Pull from the hub only when the terminal has room: a slow client falls behind
                // and is told what it missed, the console never waits for it.
                let permit = out.reserve().await.ok();
                (permit, session.recv().await)
            } => Wake::Output(permit, ev),
        };
        match wake {
            Wake::Access(snapshot) => {
                let name = &entry.device.name;
                match snapshot.viewer(live.holder(), name, session.role()) {
                    crate::live::Verdict::Keep => {}
                    crate::live::Verdict::Demote(why) => {
                        let _ = session.set_mode(Mode::Spy).await;
                        door.ctx.access.record(
                            door.user,
                            door.origin,
                            "session.demoted",
                            Some(name),
                            Outcome::Denied,
                            why.clone(),
                        );
                        term.write(notice(&why)).await;
                    }
                    crate::live::Verdict::End(why) => {
                        door.ctx.access.record(
                            door.user,
                            door.origin,
                            "session.revoked",
                            Some(name),
                            Outcome::Denied,
                            why.clone(),
                        );
                        term.write(notice(&format!("disconnected: {why}"))).await;
                        return (1, false);
                    }
                }
            }
            Wake::Input(TermInput::Closed) => return (0, false),
            Wake::Input(TermInput::Resize { cols, rows }) => {
                let _ = session.window_size(cols, rows).await;
            }
            Wake::Input(TermInput::Data(data)) => {
                for item in parser.feed(&data) {
                    match item {
                        Input::Data(bytes) => {
                            if let Err(e) = session.write(&bytes).await {
                                term.write(notice(&e.to_string())).await;
                            }
                        }
                        Input::Echo(bytes) => term.write(bytes).await,
                        Input::Error(msg) => term.write(notice(&msg)).await,
                        Input::Command(Command::Disconnect) => {
                            term.write(notice(&format!("left {}", entry.device.name)))
                                .await;
                            return (0, false);
                        }
                        Input::Command(Command::PowerMenu) => {
                            let open = power_menu(door, entry, term).await;
                            if !open {
                                parser.reset();
                            }
                        }
                        Input::Command(Command::PowerStatus) => {
                            power_status(door, entry, term).await;
                        }
                        Input::Command(Command::Power(action)) => {
                            power_action(door, entry, term, action).await;
                        }
                        Input::Command(cmd) => command(door, entry, session, term, cmd).await,
                        _ => {}
                    }
                }
            }
            Wake::Output(permit, event) => {
                let end = matches!(event, ViewerEvent::Closed);
                let seen = view(event, &me, &entry.device.name);
                if end {
                    // The end is shown even to a terminal with no room.
                    if let Some(seen) = seen {
                        term.write(seen.terminal()).await;
                    }
                    return (1, true);
                }
                if let (Some(p), Some(seen)) = (permit, seen) {
                    p.send(seen.terminal());
                }
            }
        }
    }
}

async fn command(
    door: &Door<'_>,
    entry: &Entry,
    session: &mut AnySession,
    term: &Term,
    cmd: Command,
) {
    let name = &entry.device.name;
    let mode = Mode::of_command(&cmd);
    let needs = match &cmd {
        _ if mode.is_some() => mode.map(Mode::action),
        Command::Break(_) | Command::Signal { .. } => Some(Permission::Break),
        Command::Note(_) => Some(Permission::LogNote),
        Command::Reconnect => Some(Permission::Force),
        _ => None,
    };
    if let Some(action) = needs
        && let Err(why) = door.check(action, name).await
    {
        term.write(notice(&why)).await;
        return;
    }
    let reply = match cmd {
        _ if let Some(mode) = mode => match session.set_mode(mode).await {
            Ok(msg) => msg,
            Err(e) => e.to_string(),
        },
        Command::Who => match session.who().await {
            Ok(who) => {
                term.write(term.crlf(&format!("\n{}", format_who(name, &who))))
                    .await;
                return;
            }
            Err(e) => e.to_string(),
        },
        Command::Replay(n) => match session.replay(n as usize).await {
            Ok(bytes) => {
                term.write(notice(&format!("replay of the last {n} lines of {name}")))
                    .await;
                term.write(bytes).await;
                term.write(notice("end of replay")).await;
                return;
            }
            Err(e) => e.to_string(),
        },
        Command::Break(n) => match session.send_break(n).await {
            Ok(text) => text,
            Err(e) => e.to_string(),
        },
        Command::Signal { line, to } => match session.set_signal(line, to).await {
            Ok(text) => text,
            Err(e) => e.to_string(),
        },
        Command::ListBreaks => {
            let mut text = format!("break sequences of {name}:");
            let sequences = entry.device.break_sequences().unwrap_or_default();
            for (n, seq) in sequences.iter() {
                text.push_str(&format!("\n  {}l{n}  {}", entry.escape, seq.text()));
            }
            term.write(term.crlf(&format!("\n{text}"))).await;
            return;
        }
        // The note comes back through the timeline as `note written (record SEQ)`.
        Command::Note(text) => match session.note(&text).await {
            Ok(_) => return,
            Err(e) => e.to_string(),
        },
        Command::Reconnect => match session.reconnect().await {
            Ok(()) => format!("reconnecting {name}"),
            Err(e) => e.to_string(),
        },
        Command::Info => format!(
            "{name}: {}{}; link {}; you are {} as {}",
            entry
                .device
                .settings
                .description
                .as_deref()
                .unwrap_or("console"),
            // The address is a device setting: only those who may change the device see it.
            if door.ctx.access.allows(door.user, Permission::Admin, name) {
                format!(" via {}", entry.device.url)
            } else {
                String::new()
            },
            session.link_state().await,
            session.role(),
            session.user()
        ),
        Command::Help => {
            term.write(Bytes::from(format!("\r\n{}", help_text(&entry.escape))))
                .await;
            return;
        }
        Command::Disconnect => return,
        _ => "this escape command is not available here".to_string(),
    };
    term.write(notice(&reply)).await;
}

/// How long the power menu waits for a state reading.
const MENU_STATUS_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

/// `^Ec P`: check that the viewer may see the power state and that the device has power control,
/// then show the state and the menu keys. False when the menu cannot open (the caller closes it).
async fn power_menu(door: &Door<'_>, entry: &Entry, term: &Term) -> bool {
    let name = &entry.device.name;
    if let Err(why) = door.check(Permission::PowerStatus, name).await {
        term.write(notice(&why)).await;
        return false;
    }
    if let Err(why) = crate::power::controller(entry) {
        term.write(notice(&why)).await;
        return false;
    }
    show_power_state(entry, term, Some(POWER_MENU));
    true
}

/// `^Ec P s`: show the device's power state.
async fn power_status(door: &Door<'_>, entry: &Entry, term: &Term) {
    if let Err(why) = door
        .check(Permission::PowerStatus, &entry.device.name)
        .await
    {
        term.write(notice(&why)).await;
        return;
    }
    show_power_state(entry, term, None);
}

/// Read the state in the background (a slow BMC never stalls the console) and show it, followed
/// by `then` when given.
fn show_power_state(entry: &Entry, term: &Term, then: Option<&'static str>) {
    let out = term.out().clone();
    let entry = entry.clone();
    tokio::spawn(async move {
        let name = entry.device.name.clone();
        let line =
            match crate::power::status_within(std::slice::from_ref(&entry), MENU_STATUS_LIMIT)
                .await
                .pop()
            {
                Some((_, Ok(state))) => {
                    let via = entry.power.as_ref().map(|p| {
                        p.controllers()
                            .iter()
                            .map(|c| c.address())
                            .collect::<Vec<_>>()
                            .join(" + ")
                    });
                    format!(
                        "{name}: power is {state}{}",
                        via.map(|v| format!(" ({v})")).unwrap_or_default()
                    )
                }
                Some((_, Err(e))) => format!("{name}: power state unknown: {e}"),
                None => format!("{name}: power state unknown"),
            };
        let _ = out.send(notice(&line)).await;
        if let Some(menu) = then {
            let _ = out.send(notice(menu)).await;
        }
    });
}

/// `^Ec P 1` (or a confirmed `0`, `c`, `r`, `d`): switch the device's power as this viewer. The
/// policy decides (and a denial lands in the log); the action runs in the background, writes
/// its start and end into the record log — which every viewer sees as notices — raises a
/// `power` event and is audited.
async fn power_action(door: &Door<'_>, entry: &Entry, term: &Term, action: PowerAction) {
    let name = entry.device.name.clone();
    if let Err(why) = door.check(Permission::PowerControl, &name).await {
        term.write(notice(&why)).await;
        return;
    }
    let ctx = Arc::clone(door.ctx);
    let user = door.user.to_owned();
    let origin = door.origin.to_owned();
    let entry = entry.clone();
    let out = term.out().clone();
    tokio::spawn(async move {
        let results = crate::power::perform(
            &ctx.power,
            std::slice::from_ref(&entry),
            action,
            &user,
            |_| {},
        )
        .await;
        for r in results {
            let outcome = if r.ok { Outcome::Ok } else { Outcome::Failed };
            ctx.access.record(
                &user,
                &origin,
                &format!("power.{action}"),
                Some(&r.device),
                outcome,
                r.line.clone(),
            );
            // Without a console the log records were not shown: say it here.
            if entry.console.is_none() {
                let _ = out.send(notice(&r.line)).await;
            }
        }
    });
}
