//! Event rules' `macro` actions (`[actions.NAME] kind = "macro", name = "MACRO"`): the named
//! stored macro plays on the event's device — or, with `targets = ["@GROUP", "web*", …]`, on
//! every device those match when it runs — as the rule's `user`, whose `macro.run` right on each
//! device is checked and audited at run time (devices refused are noted and left out). Its arguments are the event's: the named capture
//! groups of the pattern that matched (for pattern events), and `event`, `message`, `severity`
//! and `source` — each passed only when the macro declares that parameter. Progress (the player's
//! notes) and the result go into the device's record log, and the result into the event's
//! context.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock, PoisonError, RwLock, Weak};

use mo_core::automation::macros::{OnFailure, PlayOptions};
use mo_core::console::Console;
use mo_core::event::{Event, EventSource};
use mo_core::glob::glob_match;
use mo_core::policy::Permission;
use mo_core::record::RecordKind;
use mo_core::scan::PatternConfig;
use mo_drivers::action::MacroAction;
use mo_store::Store;
use regex::Regex;

use crate::Ctx;

/// How many devices of a group a macro action plays on at once.
const MAX_PARALLEL: usize = 8;

/// What macro actions need besides the event: the rules' identities, the patterns (to find an
/// event's captures again) and, once the daemon is up, its context.
pub struct MacroActions {
    ctx: OnceLock<Weak<Ctx>>,
    /// The rules' identities and the patterns in force (replaced by a reload).
    known: RwLock<Arc<Known>>,
    store: Store,
}

/// What the events file in force says that macro actions need.
struct Known {
    /// Rule name to the user its macros play as.
    users: BTreeMap<String, String>,
    /// Each pattern's name and regex with its device globs (empty: every device), in order.
    patterns: Vec<(String, Regex, Vec<String>)>,
}

impl Known {
    /// The identities and patterns (a regex that fails here is left out: they were checked
    /// when the pattern book was built).
    fn new(users: BTreeMap<String, String>, patterns: &[PatternConfig]) -> Known {
        let patterns = patterns
            .iter()
            .filter_map(|p| {
                Some((
                    p.name.clone(),
                    Regex::new(&p.regex).ok()?,
                    p.devices.clone(),
                ))
            })
            .collect();
        Known { users, patterns }
    }

    /// The pattern that raised `event` (a pattern event's last context line is the matched
    /// line): its name, regex and captures.
    fn matching<'a>(
        &'a self,
        event: &'a Event,
    ) -> Option<(&'a str, &'a Regex, regex::Captures<'a>)> {
        if event.source != EventSource::Pattern {
            return None;
        }
        let line = event.context.last()?;
        self.patterns
            .iter()
            .filter(|(_, _, globs)| {
                globs.is_empty() || globs.iter().any(|g| glob_match(g, &event.device))
            })
            .find_map(|(name, re, _)| re.captures(line).map(|c| (name.as_str(), re, c)))
    }
}

impl MacroActions {
    /// Macro actions for rules with these identities and these patterns (their regexes were
    /// checked when the pattern book was built; one that fails here is left out).
    pub fn new(
        users: BTreeMap<String, String>,
        patterns: &[PatternConfig],
        store: Store,
    ) -> MacroActions {
        MacroActions {
            ctx: OnceLock::new(),
            known: RwLock::new(Arc::new(Known::new(users, patterns))),
            store,
        }
    }

    /// Put a reloaded events file's identities and patterns in force (macros playing go on
    /// with what they started with).
    pub fn reload(&self, users: BTreeMap<String, String>, patterns: &[PatternConfig]) {
        *self.known.write().unwrap_or_else(PoisonError::into_inner) =
            Arc::new(Known::new(users, patterns));
    }

    /// The identities and patterns in force.
    fn known(&self) -> Arc<Known> {
        self.known
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The daemon's context, once it exists (macros need the registry, policy and macro
    /// store); actions before that are refused with a log line.
    pub fn set_ctx(&self, ctx: &Arc<Ctx>) {
        let _ = self.ctx.set(Arc::downgrade(ctx));
    }

    /// The name of the pattern that raised `event`, if a pattern did.
    pub fn pattern_name(&self, event: &Event) -> Option<String> {
        self.known()
            .matching(event)
            .map(|(name, _, _)| name.to_owned())
    }

    /// The arguments for `event`: its named captures, then the event's own fields.
    fn args(&self, event: &Event) -> Vec<(String, String)> {
        let mut args = Vec::new();
        let known = self.known();
        if let Some((_, re, caps)) = known.matching(event) {
            for name in re.capture_names().flatten() {
                if let Some(m) = caps.name(name) {
                    args.push((name.to_owned(), m.as_str().to_owned()));
                }
            }
        }
        args.push(("event".into(), event.id.to_string()));
        args.push(("message".into(), event.message.clone()));
        args.push(("severity".into(), event.severity.to_string()));
        args.push(("source".into(), event.source.to_string()));
        args
    }

    /// Play macro action `m` for `event` as rule `rule` asked, in the background.
    pub fn spawn(self: &Arc<Self>, m: MacroAction, rule: String, event: Event) {
        let this = self.clone();
        tokio::spawn(async move { this.run(&m, &rule, &event).await });
    }

    /// The consoles to play on: the event's device, or every device `targets` match now. Each
    /// device the rule's user may not play on, or that is not running, is noted and left out.
    async fn consoles(
        &self,
        ctx: &Ctx,
        m: &MacroAction,
        user: &str,
        title: &str,
        event: &Event,
    ) -> Vec<Console> {
        let mut names: Vec<String> = Vec::new();
        if m.targets.is_empty() {
            names.push(event.device.clone());
        } else {
            let all = ctx.registry.list();
            for target in &m.targets {
                let matcher = match crate::power::Matcher::new(ctx, target) {
                    Ok(matcher) => matcher,
                    Err(why) => {
                        let line = format!("not played on `{target}`: {why}");
                        self.result(title, event, None, &line).await;
                        continue;
                    }
                };
                let mut any = false;
                for e in all.iter().filter(|e| matcher.matches(&e.device.name)) {
                    any = true;
                    if !names.contains(&e.device.name) {
                        names.push(e.device.name.clone());
                    }
                }
                if !any {
                    let line = format!("not played on `{target}`: it matches no device");
                    self.result(title, event, None, &line).await;
                }
            }
        }
        let mut consoles = Vec::new();
        for name in names {
            let console = ctx.registry.get(&name).and_then(|entry| entry.console);
            let Some(console) = console else {
                let line = format!("not played: {name} is not running");
                self.result(title, event, None, &line).await;
                continue;
            };
            if let Err(why) = ctx.access.check(user, title, Permission::MacroRun, &name) {
                let line = format!("not played on {name} as {user}: {why}");
                self.result(title, event, Some(&console), &line).await;
                continue;
            }
            consoles.push(console);
        }
        consoles
    }

    async fn run(&self, m: &MacroAction, rule: &str, event: &Event) {
        let name = m.name.as_str();
        let title = format!("event #{} rule {rule}: macro {name}", event.id);
        let Some(ctx) = self.ctx.get().and_then(Weak::upgrade) else {
            tracing::error!("{title}: not played: the daemon is not ready");
            return;
        };
        let Some(owned) = self.known().users.get(rule).cloned() else {
            // Refused at load time; kept as a guard.
            self.result(&title, event, None, "not played: the rule names no `user`")
                .await;
            return;
        };
        let user = owned.as_str();
        let consoles = self.consoles(&ctx, m, user, &title, event).await;
        if consoles.is_empty() {
            return;
        }
        let macro_ = match crate::automation::load(&ctx, name) {
            Ok(m) => m,
            Err(why) => {
                let line = format!("not played: {why}");
                for console in &consoles {
                    self.result(&title, event, Some(console), &line).await;
                }
                return;
            }
        };
        let args: Vec<(String, String)> = self
            .args(event)
            .into_iter()
            .filter(|(k, _)| macro_.params().iter().any(|p| p.name == *k))
            .collect();
        let playing = format!("{title}: playing as {user}");
        for console in &consoles {
            let _ = console
                .record(RecordKind::Note, user, playing.clone())
                .await;
        }
        self.note_event(event.id, &playing).await;
        let opts = PlayOptions {
            name: name.to_owned(),
            notes: true,
            parallel: consoles.len().clamp(1, MAX_PARALLEL),
            on_failure: OnFailure::Continue,
            origin: title.clone(),
        };
        let reports = crate::automation::play(user, &consoles, &macro_, &args, &opts, None).await;
        for (console, r) in consoles.iter().zip(reports) {
            self.result(&title, event, Some(console), &r.result_line())
                .await;
        }
    }

    /// Tell the result: the device's record log (a note, or a notice when nothing ran), the
    /// event's context and the daemon's log.
    async fn result(&self, title: &str, event: &Event, console: Option<&Console>, line: &str) {
        let text = format!("{title}: {line}");
        tracing::info!("{text}");
        if let Some(console) = console {
            let _ = console.record(RecordKind::Note, "", text.clone()).await;
        }
        self.note_event(event.id, &text).await;
    }

    async fn note_event(&self, id: u64, text: &str) {
        let store = self.store.clone();
        let text = text.to_owned();
        let done = tokio::task::spawn_blocking(move || store.append_event_context(id, &text)).await;
        if let Ok(Err(e)) = done {
            tracing::warn!("cannot note the macro's progress on event {id}: {e}");
        }
    }
}
