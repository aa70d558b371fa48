//! The listings of the conserver door, in conserver's column layouts: `examine` (`console -x`),
//! `info` (`-i`), `group` (`-w`, `Ctrl-E c g`), `hosts` (`-u`, `Ctrl-E c u`) and the `Ctrl-E c w`
//! who of one console. Only consoles the user may list appear; a device's address only to those
//! who may change the device (as in the SSH door's `info`).

use std::time::SystemTime;

use mo_core::console::{ViewerId, ViewerInfo, ViewerRole};
use mo_core::door::conserver::idle_time;
use mo_core::policy::Permission;

use crate::Ctx;
use crate::registry::Entry;

/// The consoles a listing covers: every visible one, or the one `name` picks.
fn selected(ctx: &Ctx, user: &str, name: Option<&str>) -> Result<Vec<Entry>, String> {
    match name {
        None => Ok(ctx.visible(user)),
        Some(name) => super::find(ctx, user, name).map(|e| vec![e]),
    }
}

/// `user@HOST` for a viewer: conserver's client id, from the viewer's origin (`ssh 1.2.3.4:5`,
/// `conserver 1.2.3.4:5`, `web 1.2.3.4`, …): its address without the port, else the origin.
pub fn client_id(v: &ViewerInfo) -> String {
    let last = v.origin.split_whitespace().last().unwrap_or("");
    let host = match last.parse::<std::net::SocketAddr>() {
        Ok(addr) => addr.ip().to_string(),
        Err(_) if !last.is_empty() => last.to_string(),
        Err(_) => "mo".to_string(),
    };
    format!("{}@{host}", v.user)
}

fn age(since: SystemTime) -> u64 {
    SystemTime::now()
        .duration_since(since)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn role_word(role: ViewerRole) -> &'static str {
    match role {
        ViewerRole::Spy => "spy",
        _ => "attach",
    }
}

fn since_text(since: SystemTime) -> String {
    humantime::format_rfc3339_seconds(since).to_string()
}

/// Everyone on `entry`'s console, wherever it runs (nobody when it runs nowhere reachable).
async fn viewers(ctx: &Ctx, entry: &Entry) -> Vec<ViewerInfo> {
    match crate::viewer::who(ctx, entry).await {
        Some(Ok(who)) => who,
        _ => Vec::new(),
    }
}

/// The who of one console, conserver's `Ctrl-E c w` lines (`*` marks `me`).
pub async fn who(ctx: &Ctx, entry: &Entry, me: Option<ViewerId>) -> String {
    viewers(ctx, entry)
        .await
        .iter()
        .map(|v| {
            format!(
                " {:<32.32} {} {:<7.7} {:>6} {}\r\n",
                client_id(v),
                if Some(v.id) == me { '*' } else { ' ' },
                role_word(v.role),
                idle_time(age(v.since)),
                since_text(v.since)
            )
        })
        .collect()
}

/// `group [NAME]`: everyone on the consoles (or on NAME), with the console's name.
pub async fn group(ctx: &Ctx, user: &str, me: Option<ViewerId>, name: Option<&str>) -> String {
    let entries = match selected(ctx, user, name) {
        Ok(entries) => entries,
        Err(why) => return why,
    };
    let mut out = String::new();
    for entry in entries {
        for v in viewers(ctx, &entry).await {
            out.push_str(&format!(
                " {:<32.32} {} {:<7.7} {:>6} {}\r\n",
                client_id(&v),
                if Some(v.id) == me { '*' } else { ' ' },
                role_word(v.role),
                idle_time(age(v.since)),
                entry.device.name
            ));
        }
    }
    out
}

/// The state word conserver shows for mo's link state word: `up`, `init` (connecting) or
/// `down`.
pub fn conserver_word(state: &str) -> &'static str {
    match state {
        "up" => "up",
        "connecting" => "init",
        _ => "down",
    }
}

/// The state word conserver shows for `entry`'s console, wherever it runs.
pub fn state_word(ctx: &Ctx, entry: &Entry) -> &'static str {
    conserver_word(&crate::viewer::state_word(ctx, entry))
}

/// `hosts [NAME]`: each console's state and who holds it (`<spies>`, `<none>`); `*` marks
/// `current`.
pub async fn hosts(ctx: &Ctx, user: &str, current: Option<&str>, name: Option<&str>) -> String {
    let entries = match selected(ctx, user, name) {
        Ok(entries) => entries,
        Err(why) => return why,
    };
    let mut out = String::new();
    for entry in entries {
        let who = viewers(ctx, &entry).await;
        let holder = match who.iter().find(|v| v.role == ViewerRole::ReadWrite) {
            Some(v) => client_id(v),
            None if who.is_empty() => "<none>".to_string(),
            None => "<spies>".to_string(),
        };
        let name = &entry.device.name;
        out.push_str(&format!(
            " {:<24.24} {} {:<4.4} {:.40}\r\n",
            name,
            if Some(name.as_str()) == current {
                '*'
            } else {
                ' '
            },
            state_word(ctx, &entry),
            holder
        ));
    }
    out
}

/// The device's address for those who may change it, else `mo`; and its kind (the address's
/// scheme).
fn address(ctx: &Ctx, user: &str, entry: &Entry) -> (String, String) {
    let url = &entry.device.url;
    let scheme = url.split(':').next().unwrap_or("mo").to_string();
    if ctx
        .access
        .allows(user, Permission::Admin, &entry.device.name)
    {
        (url.clone(), scheme)
    } else {
        ("mo".to_string(), scheme)
    }
}

/// `examine [NAME]`: each console's address and kind.
pub fn examine(ctx: &Ctx, user: &str, name: Option<&str>) -> String {
    let entries = match selected(ctx, user, name) {
        Ok(entries) => entries,
        Err(why) => return why,
    };
    entries
        .iter()
        .map(|entry| {
            let (addr, kind) = address(ctx, user, entry);
            format!(
                " {:<24.24} on {:<32.32} at {:>7.7} \r\n",
                entry.device.name, addr, kind
            )
        })
        .collect()
}

/// `info [NAME]`: conserver's machine-readable line per console,
/// `NAME:HOST,PID,PORT:!:ADDRESS,0,KIND,0:WRITER:OTHERS:STATE:rw:,log,act,brk,notask,0,-1:0:autoup:`
/// where WRITER is `w@USER@HOST@IDLE` and OTHERS `r@USER@HOST@IDLE@ro,…`.
pub async fn info(ctx: &Ctx, user: &str, name: Option<&str>, port: u16) -> String {
    let entries = match selected(ctx, user, name) {
        Ok(entries) => entries,
        Err(why) => return why,
    };
    let host = host_name();
    let pid = std::process::id();
    let mut out = String::new();
    for entry in entries {
        let (addr, kind) = address(ctx, user, &entry);
        let who = viewers(ctx, &entry).await;
        let writer = who
            .iter()
            .find(|v| v.role == ViewerRole::ReadWrite)
            .map(|v| format!("w@{}@{}", client_id(v), age(v.since)))
            .unwrap_or_default();
        let others: Vec<String> = who
            .iter()
            .filter(|v| v.role != ViewerRole::ReadWrite)
            .map(|v| {
                let rw = if v.role.can_write() { "rw" } else { "ro" };
                format!("r@{}@{}@{rw}", client_id(v), age(v.since))
            })
            .collect();
        out.push_str(&format!(
            "{}:{host},{pid},{port}:!:{addr},0,{kind},0:{writer}:{}:{}:rw:,log,act,brk,notask,0,-1:0:autoup:\r\n",
            entry.device.name,
            others.join(","),
            state_word(ctx, &entry),
        ));
    }
    out
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "mo".to_string())
}
