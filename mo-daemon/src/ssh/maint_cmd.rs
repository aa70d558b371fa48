//! `maintenance start|stop|list` in the SSH shell (see [`crate::maintenance`]). Starting or
//! stopping a window needs `events.ack` on every device it covers (decided and audited).

use std::sync::Arc;

use mo_core::door::shell::split_args;
use mo_core::policy::Permission;

use super::term::Term;
use crate::Ctx;
use crate::power::Matcher;

const USAGE: &str =
    "usage: maintenance start NAME|GLOB|@GROUP [--for 1h] [--reason TEXT] [--name NAME]
       maintenance stop NAME
       maintenance list";

/// The default length of a window.
const DEFAULT_FOR: &str = "1h";

/// Run one `maintenance …` line; the exit status.
pub async fn run(ctx: &Arc<Ctx>, user: &str, origin: &str, line: &str, term: &mut Term) -> u32 {
    let words = match split_args(line) {
        Ok(words) => words,
        Err(e) => {
            term.line(&e.reason).await;
            return 2;
        }
    };
    let args: Vec<&str> = words.iter().skip(1).map(String::as_str).collect();
    match args.split_first() {
        Some((&"list", [])) => match crate::maintenance::list_lines(ctx) {
            Ok(lines) if lines.is_empty() => {
                term.line("no maintenance windows").await;
                0
            }
            Ok(lines) => {
                for l in lines {
                    term.line(&l).await;
                }
                0
            }
            Err(e) => {
                term.line(&format!("cannot read maintenance windows: {e}"))
                    .await;
                1
            }
        },
        Some((&"start", rest)) => start(ctx, user, origin, rest, term).await,
        Some((&"stop", [name])) => stop(ctx, user, origin, name, term).await,
        _ => {
            term.line(USAGE).await;
            2
        }
    }
}

/// Check `events.ack` on every device `target` covers; the line to show when refused.
async fn may_change(ctx: &Ctx, user: &str, origin: &str, target: &str) -> Result<(), String> {
    let matcher = Matcher::new(ctx, target)?;
    let covered: Vec<String> = ctx
        .visible(user)
        .into_iter()
        .map(|e| e.device.name)
        .filter(|name| matcher.matches(name))
        .collect();
    if covered.is_empty() {
        return Err(format!("`{target}` matches no device you can see"));
    }
    for device in covered {
        ctx.check(user, origin, Permission::EventsAck, &device)
            .await?;
    }
    Ok(())
}

async fn start(ctx: &Ctx, user: &str, origin: &str, rest: &[&str], term: &mut Term) -> u32 {
    let mut target = None;
    let (mut duration, mut reason, mut name) = (DEFAULT_FOR.to_owned(), String::new(), None);
    let mut it = rest.iter();
    while let Some(arg) = it.next() {
        let mut value = |flag: &str| {
            it.next()
                .map(|v| (*v).to_owned())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        let got = match *arg {
            "--for" => value("--for").map(|v| duration = v),
            "--reason" => value("--reason").map(|v| reason = v),
            "--name" => value("--name").map(|v| name = Some(v)),
            flag if flag.starts_with("--") => Err(format!("unknown option `{flag}`")),
            word if target.is_none() => {
                target = Some(word.to_owned());
                Ok(())
            }
            word => Err(format!("one target only (got `{word}` too)")),
        };
        if let Err(why) = got {
            term.line(&format!("{why}\n{USAGE}")).await;
            return 2;
        }
    }
    let Some(target) = target else {
        term.line(USAGE).await;
        return 2;
    };
    let entry =
        match crate::maintenance::new_entry(&target, name.as_deref(), &duration, &reason, user) {
            Ok(entry) => entry,
            Err(why) => {
                term.line(&why).await;
                return 2;
            }
        };
    if let Err(why) = may_change(ctx, user, origin, &target).await {
        term.line(&why).await;
        return 1;
    }
    match ctx.store.start_maintenance(&entry) {
        Ok(()) => {
            term.line(&format!(
                "maintenance {} on {} until {}",
                entry.name,
                entry.target,
                crate::maintenance::show_time(entry.end_ns)
            ))
            .await;
            0
        }
        Err(e) => {
            term.line(&format!("cannot start maintenance: {e}")).await;
            1
        }
    }
}

async fn stop(ctx: &Ctx, user: &str, origin: &str, name: &str, term: &mut Term) -> u32 {
    let entry = ctx
        .store
        .list_maintenance()
        .ok()
        .and_then(|all| all.into_iter().find(|e| e.name == name));
    let Some(entry) = entry else {
        term.line(&format!(
            "no maintenance window `{name}` started at run time (`maintenance list`)"
        ))
        .await;
        return 1;
    };
    if let Err(why) = may_change(ctx, user, origin, &entry.target).await {
        term.line(&why).await;
        return 1;
    }
    match ctx.store.stop_maintenance(name) {
        Ok(_) => {
            term.line(&format!("maintenance {name} stopped")).await;
            0
        }
        Err(e) => {
            term.line(&format!("cannot stop maintenance {name}: {e}"))
                .await;
            1
        }
    }
}
