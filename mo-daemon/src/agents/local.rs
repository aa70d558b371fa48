//! Local users of an agent's port (`mo-agent tty` on the console server, docs/agent.md "Local
//! access"): their keystrokes reach the port through the agent alone, and the agent reports them
//! here so that they are logged as their input; they are listed in `who` of every device on the
//! port, and a local user's `^Ec w` is answered from here.

use std::collections::HashMap;
use std::sync::Arc;

use mo_core::console::{Console, Mode, ViewerEvent};
use tokio::task::JoinHandle;

use crate::Ctx;

/// The name a local user of `agent` goes by: `local:USER@AGENT`. An agent speaks only for its
/// own console server: whatever it claims is put under `local:…@AGENT` (it can never pass for a
/// daemon user or another agent's).
pub(super) fn local_name(agent: &str, claimed: &str) -> String {
    let suffix = format!("@{agent}");
    let user = claimed
        .strip_prefix("local:")
        .and_then(|u| u.strip_suffix(suffix.as_str()))
        .unwrap_or(claimed);
    let user: String = user
        .chars()
        .filter(|c| !c.is_control() && !c.is_whitespace())
        .take(64)
        .collect();
    let user = if user.is_empty() { "?" } else { &user };
    format!("local:{user}{suffix}")
}

/// The consoles of the devices whose address is `agent://AGENT/PORT`, with their names.
pub(super) fn consoles_on(ctx: &Ctx, agent: &str, port: &str) -> Vec<(String, Console)> {
    let mut found: Vec<(String, Console)> = ctx
        .registry
        .list()
        .into_iter()
        .filter(|e| {
            mo_drivers::agent::agent_port(&e.device.url)
                .is_some_and(|(a, p)| a == agent && p == port)
        })
        .filter_map(|e| e.console.map(|c| (e.device.name, c)))
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

/// Log what local `user` typed on the port, on every device of the port.
pub(super) async fn input(ctx: &Ctx, agent: &str, port: &str, user: &str, bytes: Vec<u8>) {
    let bytes = bytes::Bytes::from(bytes);
    let user = local_name(agent, user);
    for (_, console) in consoles_on(ctx, agent, port) {
        let _ = console.log_input(&user, bytes.clone()).await;
    }
}

/// The `who` lines of every device of the port (`^Ec w` on a local terminal).
pub(super) async fn who(ctx: &Ctx, agent: &str, port: &str) -> String {
    let consoles = consoles_on(ctx, agent, port);
    if consoles.is_empty() {
        return format!("no device uses agent://{agent}/{port}");
    }
    let mut text = Vec::new();
    for (name, console) in consoles {
        match console.who().await {
            Ok(who) => text.push(crate::ssh::format_who(&name, &who)),
            Err(e) => text.push(format!("{name}: {e}")),
        }
    }
    text.join("\n")
}

/// The local users present on one port: one viewer per `mo-agent tty` on each device of the
/// port, held for as long as the agent lists the user. They are spies to the console (their
/// keystrokes do not pass through it, so they never take the write lock from a remote user).
#[derive(Default)]
pub(super) struct Locals {
    /// Per user, one task per terminal, each holding its sessions.
    present: HashMap<String, Vec<JoinHandle<()>>>,
}

impl Locals {
    /// The agent's new list of local users on the port (a user once per terminal).
    pub(super) fn set(&mut self, ctx: &Arc<Ctx>, agent: &str, port: &str, users: Vec<String>) {
        let mut wanted: HashMap<String, usize> = HashMap::new();
        for user in users {
            let user = local_name(agent, &user);
            *wanted.entry(user).or_default() += 1;
        }
        self.present.retain(|user, tasks| {
            let keep = wanted.get(user).copied().unwrap_or(0);
            while tasks.len() > keep {
                if let Some(task) = tasks.pop() {
                    task.abort();
                }
            }
            !tasks.is_empty()
        });
        for (user, count) in wanted {
            let tasks = self.present.entry(user.clone()).or_default();
            while tasks.len() < count {
                tasks.push(tokio::spawn(present(
                    ctx.clone(),
                    agent.to_owned(),
                    port.to_owned(),
                    user.clone(),
                )));
            }
        }
    }
}

impl Drop for Locals {
    fn drop(&mut self) {
        for task in self.present.values().flatten() {
            task.abort();
        }
    }
}

/// Be `user` on every device of the port until aborted (the sessions detach when dropped).
async fn present(ctx: Arc<Ctx>, agent: String, port: String, user: String) {
    let origin = format!("local terminal on agent {agent}");
    let mut sessions = Vec::new();
    for (name, console) in consoles_on(&ctx, &agent, &port) {
        match console
            .attach_from(&user, &origin, Mode::Spy, Some(0))
            .await
        {
            Ok(session) => sessions.push(session),
            Err(e) => tracing::warn!(agent, port, device = name, "local user {user}: {e}"),
        }
    }
    // Read each session's timeline (nobody sees it: the agent shows the port itself) until its
    // console stops.
    let readers = sessions
        .into_iter()
        .map(|mut s| async move { while !matches!(s.recv().await, ViewerEvent::Closed) {} });
    futures_util::future::join_all(readers).await;
    std::future::pending::<()>().await;
}

#[cfg(test)]
mod tests {
    use super::local_name;

    #[test]
    fn local_names_stay_under_the_agent() {
        assert_eq!(local_name("cs1", "local:root@cs1"), "local:root@cs1");
        assert_eq!(local_name("cs1", "root"), "local:root@cs1");
        assert_eq!(local_name("cs1", "admin"), "local:admin@cs1");
        assert_eq!(local_name("cs1", "local:x@cs2"), "local:local:x@cs2@cs1");
        assert_eq!(local_name("cs1", "a b\n"), "local:ab@cs1");
        assert_eq!(local_name("cs1", ""), "local:?@cs1");
    }
}
