//! A `console` client on one console: after `call NAME` on the group port the connection
//! carries the console's output (IAC-quoted) and the client's keystrokes, read by conserver's
//! escape machine ([`Keys`]); the commands after `Ctrl-E c` are answered as conserver answers
//! them, on mo's console API and policy.
//!
//! The call admits the client as a spy and answers `[spy]`: the stock client then asks for what
//! its user wanted (`Ctrl-E c a` for `console NAME`, `Ctrl-E c f` for `-f`, nothing for `-s`),
//! so a spy never holds the write lock, not even for a moment.

use std::sync::Arc;

use mo_core::console::{Mode, ViewerEvent, ViewerRole, view};
use mo_core::door::conserver::{Key, Keys, PROTOCOL_VERSION, Unquote, fmt_ctl, quote};
use mo_core::policy::Permission;
use mo_store::Outcome;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use super::listing;
use crate::Ctx;
use crate::registry::Entry;
use crate::viewer::{AnySession, Reattach};

/// Who is on the other side.
pub struct Door<'a> {
    /// The daemon.
    pub ctx: &'a Arc<Ctx>,
    /// The logged-in user.
    pub user: &'a str,
    /// `conserver ADDR:PORT`.
    pub origin: &'a str,
    /// The group port (for `info`).
    pub group_port: u16,
}

impl Door<'_> {
    async fn check(&self, action: Permission, device: &str) -> Result<(), String> {
        self.ctx.check(self.user, self.origin, action, device).await
    }
}

/// conserver's default number of lines for `Ctrl-E c r` and `Ctrl-E c p`.
const DEFAULT_REPLAY: u16 = 20;

/// The most lines `P` and `R` may set (conserver's limit).
const MAX_REPLAY: u16 = 10000;

/// The signal to the client (sent after an unquoted IAC) to ask its user for another console.
const OB_GOTO: u8 = b'G';

/// The signal to the client (after an unquoted IAC) to stop itself (`Ctrl-E c z`).
const OB_SUSP: u8 = b'Z';

/// The viewer's state besides the session.
struct Viewer<'a> {
    door: &'a Door<'a>,
    entry: &'a Entry,
    session: AnySession,
    wr: OwnedWriteHalf,
    keys: Keys,
    /// conserver's `fcon`: the client finished its start-up queries (`Ctrl-E c ;`).
    connected: bool,
    replay: u16,
    playback: u16,
}

enum Flow {
    Go,
    Leave,
}

/// Admit the client to `entry` as a spy, answer the call and bridge until it leaves.
pub async fn run(
    door: &Door<'_>,
    entry: &Entry,
    mut rd: OwnedReadHalf,
    mut wr: OwnedWriteHalf,
    mut unquote: Unquote,
    first: Vec<u8>,
) -> std::io::Result<()> {
    let name = entry.device.name.as_str();
    if let Err(why) = door.check(Permission::Spy, name).await {
        wr.write_all(format!("{name}: permission denied ({why})\r\n").as_bytes())
            .await?;
        return Ok(());
    }
    let session =
        match crate::viewer::open(door.ctx, entry, door.user, door.origin, Mode::Spy, None).await {
            Ok(session) => session,
            Err(why) => {
                wr.write_all(format!("{why}\r\n").as_bytes()).await?;
                return Ok(());
            }
        };
    wr.write_all(b"[spy]\r\n").await?;
    door.ctx.access.record(
        door.user,
        door.origin,
        "attach",
        Some(name),
        Outcome::Ok,
        "as spy (conserver client)",
    );
    let mut viewer = Viewer {
        door,
        entry,
        session,
        wr,
        keys: Keys::new(0x05, b'c'),
        connected: false,
        replay: DEFAULT_REPLAY,
        playback: DEFAULT_REPLAY,
    };
    let result = viewer.bridge(&mut rd, &mut unquote, first).await;
    door.ctx.access.record(
        door.user,
        door.origin,
        "detach",
        Some(name),
        Outcome::Ok,
        "",
    );
    result
}

impl Viewer<'_> {
    async fn bridge(
        &mut self,
        rd: &mut OwnedReadHalf,
        unquote: &mut Unquote,
        first: Vec<u8>,
    ) -> std::io::Result<()> {
        if let Flow::Leave = self.keystrokes(&first).await? {
            return Ok(());
        }
        let mut live = self
            .door
            .ctx
            .live
            .watch(crate::live::Holder::user(self.door.user));
        let me = self.session.user().to_string();
        let mut buf = vec![0u8; 8192];
        let mut held = Vec::new();
        loop {
            if !held.is_empty() {
                let data = std::mem::take(&mut held);
                if let Flow::Leave = self.keystrokes(&data).await? {
                    return Ok(());
                }
            }
            tokio::select! {
                read = rd.read(&mut buf) => {
                    let n = read?;
                    if n == 0 {
                        return Ok(());
                    }
                    let data = unquote.feed(buf.get(..n).unwrap_or_default());
                    if let Flow::Leave = self.keystrokes(&data).await? {
                        return Ok(());
                    }
                }
                snapshot = live.next() => {
                    if let Flow::Leave = self.access_changed(&snapshot, live.holder()).await? {
                        return Ok(());
                    }
                }
                // Nothing of the console before the client's start-up queries are answered
                // (`Ctrl-E c ;`): it reads each answer as one reply.
                event = self.session.recv(), if self.connected => {
                    let end = matches!(event, ViewerEvent::Closed);
                    if let Some(seen) = view(event, &me, &self.entry.device.name) {
                        self.wr.write_all(&quote(&seen.terminal())).await?;
                    }
                    // In a site, a console that stopped under the viewer (its owner died or
                    // gave it up) is reattached wherever it runs next.
                    if end
                        && !(crate::viewer::may_reattach(self.door.ctx)
                            && self.reattach(rd, unquote, &mut held).await?)
                    {
                        return Ok(());
                    }
                }
            }
        }
    }

    async fn access_changed(
        &mut self,
        snapshot: &crate::live::Snapshot,
        holder: &crate::live::Holder,
    ) -> std::io::Result<Flow> {
        let name = &self.entry.device.name;
        let door = self.door;
        match snapshot.viewer(holder, name, self.session.role()) {
            crate::live::Verdict::Keep => Ok(Flow::Go),
            crate::live::Verdict::Demote(why) => {
                let _ = self.session.set_mode(Mode::Spy).await;
                self.keys.set_may_write(false);
                door.ctx.access.record(
                    door.user,
                    door.origin,
                    "session.demoted",
                    Some(name),
                    Outcome::Denied,
                    why.clone(),
                );
                self.notice(&why).await?;
                Ok(Flow::Go)
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
                self.notice(&format!("disconnected: {why}")).await?;
                Ok(Flow::Leave)
            }
        }
    }

    async fn say(&mut self, text: &str) -> std::io::Result<()> {
        self.wr.write_all(&quote(text.as_bytes())).await
    }

    /// Wait (up to [`crate::viewer::REATTACH_WAIT`]) for the console to run again in the site
    /// and attach there as before (spy, or read-write); keystrokes typed meanwhile are kept in
    /// `held` (up to [`crate::viewer::HELD_MAX`] bytes; then they are not read until the wait
    /// ends). False when the client left or the console did not come back.
    async fn reattach(
        &mut self,
        rd: &mut OwnedReadHalf,
        unquote: &mut Unquote,
        held: &mut Vec<u8>,
    ) -> std::io::Result<bool> {
        let door = self.door;
        let name = self.entry.device.name.clone();
        let mode = if self.session.role().can_write() {
            Mode::Attach
        } else {
            Mode::Spy
        };
        self.notice(&format!(
            "waiting up to {}s for {name} to run again in the site",
            crate::viewer::REATTACH_WAIT.as_secs()
        ))
        .await?;
        let who = (name.as_str(), door.user, door.origin, mode);
        let keep = |held: &mut Vec<u8>, bytes: &[u8]| held.extend(unquote.feed(bytes));
        let session = match crate::viewer::reattach_reading(door.ctx, who, rd, held, keep).await? {
            Reattach::Attached(session) => *session,
            Reattach::ClientLeft => return Ok(false),
            Reattach::NotBack => {
                self.notice(&format!("{name} did not come back: disconnected"))
                    .await?;
                return Ok(false);
            }
        };
        self.session = session;
        // The old session's detach, and the new one's attach (a viewer who leaves or is not
        // reattached is detached once, when the connection ends).
        for (action, detail) in [
            ("detach", "the console stopped".to_string()),
            (
                "attach",
                format!(
                    "as {} (conserver client, reattached)",
                    self.session.role().name()
                ),
            ),
        ] {
            door.ctx.access.record(
                door.user,
                door.origin,
                action,
                Some(&name),
                Outcome::Ok,
                detail,
            );
        }
        self.notice(&format!("reattached to {name}")).await?;
        Ok(true)
    }

    async fn notice(&mut self, text: &str) -> std::io::Result<()> {
        let bytes = mo_core::console::terminal_notice(text);
        self.wr.write_all(&quote(&bytes)).await
    }

    /// Whether this viewer may write now: its role as the console knows it (another viewer's
    /// force turns it into a spy without a word to this session).
    async fn writes(&self) -> bool {
        let me = self.session.id();
        match self.session.who().await {
            Ok(who) => who
                .iter()
                .find(|v| v.id == me)
                .is_some_and(|v| v.role.can_write()),
            Err(_) => self.session.role().can_write(),
        }
    }

    /// conserver's word for the console's link state (`up`, `init`, `down`), wherever it runs.
    async fn state_word(&self) -> &'static str {
        listing::conserver_word(&self.session.link_state().await)
    }

    /// conserver's hint to a client that types without write access.
    async fn read_only_hint(&mut self) -> std::io::Result<()> {
        let (attn, esc) = self.keys.escape();
        self.say(&format!(
            "[read-only -- use {} {} ? for help]\r\n",
            fmt_ctl(attn),
            fmt_ctl(esc)
        ))
        .await
    }

    async fn keystrokes(&mut self, data: &[u8]) -> std::io::Result<Flow> {
        if data.is_empty() {
            return Ok(Flow::Go);
        }
        self.keys.set_may_write(self.session.role().can_write());
        for key in self.keys.feed(data) {
            if let Flow::Leave = self.key(key).await? {
                return Ok(Flow::Leave);
            }
        }
        Ok(Flow::Go)
    }

    async fn key(&mut self, key: Key) -> std::io::Result<Flow> {
        let name = self.entry.device.name.clone();
        match key {
            Key::Data(bytes) => {
                let line_end = bytes.iter().any(|b| *b == b'\r' || *b == b'\n');
                // The role this session was given is tried first; when it says spy, or the
                // write is refused, the console's own view decides what the client hears.
                let written = self.session.role().can_write()
                    && match self.session.write(&bytes).await {
                        Ok(()) => true,
                        Err(e) if self.writes().await => {
                            self.notice(&e.to_string()).await?;
                            true
                        }
                        Err(_) => false,
                    };
                if !written && self.writes().await {
                    if let Err(e) = self.session.write(&bytes).await {
                        self.notice(&e.to_string()).await?;
                    }
                } else if !written && line_end {
                    self.read_only_hint().await?;
                }
            }
            Key::Reply(bytes) => self.wr.write_all(&quote(&bytes)).await?,
            Key::Command(c) => return self.command(c).await,
            Key::Break(n) => {
                let reply = match self.door.check(Permission::Break, &name).await {
                    Err(why) => why,
                    // conserver's break 0 is the console's default: mo's first sequence.
                    Ok(()) => match self.session.send_break(n.max(1)).await {
                        Ok(text) => text,
                        Err(e) => e.to_string(),
                    },
                };
                self.say(&format!("{reply}]\r\n")).await?;
            }
            Key::ListBreaks => {
                let mut text = String::from("list]\r\n");
                let sequences = self.entry.device.break_sequences().unwrap_or_default();
                for (n, seq) in sequences.iter() {
                    text.push_str(&format!(" {n} - `{}'\r\n", seq.text()));
                }
                self.say(&text).await?;
            }
            Key::Note(text) => {
                if let Err(why) = self.door.check(Permission::LogNote, &name).await {
                    self.notice(&why).await?;
                } else if let Err(e) = self.session.note(&text).await {
                    self.notice(&e.to_string()).await?;
                }
            }
            Key::Playback(value) | Key::Replay(value) => {
                let replay = matches!(key, Key::Replay(_));
                let slot = if replay {
                    &mut self.replay
                } else {
                    &mut self.playback
                };
                let text = match value {
                    Some(v) if v > MAX_REPLAY => " <value too large>]\r\n".to_string(),
                    Some(v) => {
                        *slot = v;
                        "]\r\n".to_string()
                    }
                    None => format!("{}]\r\n", *slot),
                };
                self.say(&text).await?;
            }
            Key::Resume => self.resume().await?,
            Key::Quote(byte) => {
                if self.writes().await
                    && let Err(e) = self.session.write(&[byte]).await
                {
                    self.notice(&e.to_string()).await?;
                }
            }
            _ => {}
        }
        Ok(Flow::Go)
    }

    /// The holder of the write lock, as `user@host`.
    async fn holder(&self) -> Option<String> {
        let who = self.session.who().await.ok()?;
        who.iter()
            .find(|v| v.role == ViewerRole::ReadWrite)
            .map(listing::client_id)
    }

    /// conserver's suspend: signal the client, give up the write lock, send nothing of the
    /// console until the client's next byte ([`Key::Resume`]).
    async fn suspend(&mut self, signal: u8, why: &str) -> std::io::Result<Flow> {
        let door = self.door;
        self.wr
            .write_all(&[mo_core::door::conserver::IAC, signal])
            .await?;
        self.connected = false;
        self.keys.suspend();
        if self.writes().await {
            let _ = self.session.set_mode(Mode::Spy).await;
        }
        self.keys.set_may_write(false);
        door.ctx.access.record(
            door.user,
            door.origin,
            "suspend",
            Some(&self.entry.device.name),
            Outcome::Ok,
            format!("conserver client left for a while {why}"),
        );
        Ok(Flow::Go)
    }

    /// The client is back from a suspend: as conserver, it attaches if it may and the write
    /// lock is free, else it spies; then it sees the console again.
    async fn resume(&mut self) -> std::io::Result<()> {
        let name = self.entry.device.name.clone();
        let reply = if self.state_word().await != "up" {
            " -- line down]\r\n"
        } else {
            if self.door.check(Permission::Attach, &name).await.is_ok() {
                let _ = self.session.set_mode(Mode::Attach).await;
            }
            if self.writes().await {
                " -- attached]\r\n"
            } else {
                " -- spy mode]\r\n"
            }
        };
        self.keys.set_may_write(self.writes().await);
        self.connected = true;
        self.say(reply).await
    }

    async fn command(&mut self, c: u8) -> std::io::Result<Flow> {
        let name = self.entry.device.name.clone();
        let door = self.door;
        let reply: String = match c {
            b'=' if !self.connected => match self.state_word().await {
                "up" => "up]\r\n".to_string(),
                other => format!("`{name}' -- console is {other}]\r\n"),
            },
            b';' if !self.connected => {
                self.connected = true;
                "connected]\r\n".to_string()
            }
            // The client asks its user for another console and calls it on a new connection
            // (with mo's checks there); this one waits, without output, until it comes back.
            b';' => return self.suspend(OB_GOTO, "to look for another console").await,
            b'z' | 0x1a => return self.suspend(OB_SUSP, "to suspend the client").await,
            b'L' if !self.writes().await => "attach to toggle logging]\r\n".to_string(),
            b'L' => {
                door.ctx.access.record(
                    door.user,
                    door.origin,
                    "logging.toggle",
                    Some(&name),
                    Outcome::Denied,
                    "mo records every console: logging stays on",
                );
                "logging on]\r\n".to_string()
            }
            b'd' if !self.writes().await => "attach to down console]\r\n".to_string(),
            b'!' if !self.writes().await => "attach to invoke task]\r\n".to_string(),
            b'o' if !self.writes().await => "attach to reopen]\r\n".to_string(),
            b'a' | b'f' => {
                let force = c == b'f';
                let mode = if force { Mode::Force } else { Mode::Attach };
                if self.writes().await {
                    "ok]\r\n".to_string()
                } else if let Err(why) = door.check(mode.action(), &name).await {
                    format!("{why}]\r\n")
                } else {
                    let before = self.holder().await;
                    match self.session.set_mode(mode).await {
                        Err(e) => format!("{e}]\r\n"),
                        Ok(_) if self.writes().await => match before {
                            Some(who) if force => format!("bumped {who}]\r\n"),
                            _ => "attached]\r\n".to_string(),
                        },
                        Ok(_) => match self.holder().await {
                            Some(who) => format!("no, {who} is attached]\r\n"),
                            None => "read-only]\r\n".to_string(),
                        },
                    }
                }
            }
            b's' if !self.writes().await => "ok]\r\n".to_string(),
            b's' => match self.session.set_mode(Mode::Spy).await {
                Ok(_) => "spying]\r\n".to_string(),
                Err(e) => format!("{e}]\r\n"),
            },
            b'w' => format!(
                "who {name}]\r\n{}",
                listing::who(door.ctx, self.entry, Some(self.session.id())).await
            ),
            b'g' => format!(
                "group mo]\r\n{}",
                listing::group(door.ctx, door.user, Some(self.session.id()), None).await
            ),
            b'u' => format!(
                "hosts]\r\n{}",
                listing::hosts(door.ctx, door.user, Some(&name), None).await
            ),
            b'x' => format!(
                "examine]\r\n{}",
                listing::examine(door.ctx, door.user, None)
            ),
            b'i' => format!(
                "info]\r\n{}",
                listing::info(door.ctx, door.user, None, door.group_port).await
            ),
            b'm' => match self.entry.device.settings.description.as_deref() {
                Some(motd) if !motd.is_empty() => format!("-- MOTD -- {motd}]\r\n"),
                _ => "-- MOTD --]\r\n".to_string(),
            },
            b'v' => format!("version `{}']\r\n", super::version()),
            0xD6 => format!("{PROTOCOL_VERSION}]\r\n"),
            b'.' | 0x04 | 0x03 => {
                self.say("disconnect]\r\n").await?;
                return Ok(Flow::Leave);
            }
            b' ' | b'\r' | b'\n' => "ignored]\r\n".to_string(),
            b'h' | b'?' => format!("help]\r\n{}", help(self.keys.escape())),
            b'r' | b'p' | 0x12 => {
                let (title, lines) = match c {
                    b'r' => ("replay", self.replay),
                    b'p' => ("playback", self.playback),
                    _ => ("^R", 1),
                };
                self.say(&format!("{title}]\r\n")).await?;
                match self.session.replay(usize::from(lines)).await {
                    Ok(bytes) => self.wr.write_all(&quote(&bytes)).await?,
                    Err(e) => self.notice(&e.to_string()).await?,
                }
                return Ok(Flow::Go);
            }
            b'o' => match door.check(Permission::Force, &name).await {
                Err(why) => format!("{why}]\r\n"),
                Ok(()) => match self.session.reconnect().await {
                    Ok(()) => {
                        door.ctx.access.record(
                            door.user,
                            door.origin,
                            "reconnect",
                            Some(&name),
                            Outcome::Ok,
                            "conserver client: reopen the line",
                        );
                        "up]\r\n".to_string()
                    }
                    Err(e) => format!("{e}]\r\n"),
                },
            },
            b'P' => format!("set playback ({}): ", self.playback),
            b'R' => format!("set replay ({}): ", self.replay),
            _ => "unknown -- use `?']\r\n".to_string(),
        };
        self.keys.set_may_write(self.writes().await);
        self.say(&reply).await?;
        Ok(Flow::Go)
    }
}

/// The `Ctrl-E c ?` help: the commands this door answers.
fn help((attn, esc): (u8, u8)) -> String {
    let e = format!("{}{}", fmt_ctl(attn), fmt_ctl(esc));
    let lines = [
        ".    disconnect",
        ";    move to another console",
        "a    attach read/write",
        "e    change escape sequence",
        "f    force attach read/write",
        "g    group info",
        "i    information dump",
        "L    toggle logging on/off (mo: stays on)",
        "l?   break sequence list",
        "l0   send the default break sequence",
        "l1-9 send break sequence 1-9",
        "m    display the message of the day",
        "n    write a note to the log",
        "o    reopen the line",
        "p    playback the last lines",
        "P    set number of playback lines",
        "r    replay the last lines",
        "R    set number of replay lines",
        "s    switch to spy mode (read only)",
        "u    show host status",
        "v    show version info",
        "w    who is on this console",
        "x    show console baud info",
        "z    suspend the connection",
        "^R   replay the last line",
        "\\ooo send character by octal code",
    ];
    lines
        .iter()
        .map(|l| format!(" {e}{l}\r\n"))
        .collect::<String>()
}
