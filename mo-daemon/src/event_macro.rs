//! Event rules' `macro` actions (`[actions.NAME] kind = "macro", name = "MACRO"`): the named
//! stored macro plays on the event's device as the rule's `user`, whose `macro.run` right on the
//! device is checked and audited at run time. Its arguments are the event's: the named capture
//! groups of the pattern that matched (for pattern events), and `event`, `message`, `severity`
//! and `source` — each passed only when the macro declares that parameter. Progress (the player's
//! notes) and the result go into the device's record log, and the result into the event's
//! context.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock, Weak};

use mo_core::automation::macros::{OnFailure, PlayOptions};
use mo_core::event::{Event, EventSource};
use mo_core::glob::glob_match;
use mo_core::policy::Permission;
use mo_core::record::RecordKind;
use mo_core::scan::PatternConfig;
use mo_store::Store;
use regex::Regex;

use crate::Ctx;

/// What macro actions need besides the event: the rules' identities, the patterns (to find an
/// event's captures again) and, once the daemon is up, its context.
pub struct MacroActions {
    ctx: OnceLock<Weak<Ctx>>,
    /// Rule name to the user its macros play as.
    users: BTreeMap<String, String>,
    /// Each pattern's regex with its device globs (empty: every device), in order.
    patterns: Vec<(Regex, Vec<String>)>,
    store: Store,
}

impl MacroActions {
    /// Macro actions for rules with these identities and these patterns (their regexes were
    /// checked when the pattern book was built; one that fails here is left out).
    pub fn new(
        users: BTreeMap<String, String>,
        patterns: &[PatternConfig],
        store: Store,
    ) -> MacroActions {
        let patterns = patterns
            .iter()
            .filter_map(|p| Some((Regex::new(&p.regex).ok()?, p.devices.clone())))
            .collect();
        MacroActions {
            ctx: OnceLock::new(),
            users,
            patterns,
            store,
        }
    }

    /// The daemon's context, once it exists (macros need the registry, policy and macro
    /// store); actions before that are refused with a log line.
    pub fn set_ctx(&self, ctx: &Arc<Ctx>) {
        let _ = self.ctx.set(Arc::downgrade(ctx));
    }

    /// The arguments for `event`: its named captures, then the event's own fields.
    fn args(&self, event: &Event) -> Vec<(String, String)> {
        let mut args = Vec::new();
        if event.source == EventSource::Pattern
            && let Some(line) = event.context.last()
            && let Some(caps) = self
                .patterns
                .iter()
                .filter(|(_, globs)| {
                    globs.is_empty() || globs.iter().any(|g| glob_match(g, &event.device))
                })
                .find_map(|(re, _)| re.captures(line).map(|c| (re, c)))
        {
            let (re, caps) = caps;
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

    /// Play macro `name` for `event` as rule `rule` asked, in the background.
    pub fn spawn(self: &Arc<Self>, name: String, rule: String, event: Event) {
        let this = self.clone();
        tokio::spawn(async move { this.run(&name, &rule, &event).await });
    }

    async fn run(&self, name: &str, rule: &str, event: &Event) {
        let title = format!("event #{} rule {rule}: macro {name}", event.id);
        let Some(ctx) = self.ctx.get().and_then(Weak::upgrade) else {
            tracing::error!("{title}: not played: the daemon is not ready");
            return;
        };
        let Some(user) = self.users.get(rule) else {
            // Refused at load time; kept as a guard.
            self.result(&title, event, None, "not played: the rule names no `user`")
                .await;
            return;
        };
        let console = ctx
            .registry
            .get(&event.device)
            .and_then(|entry| entry.console);
        let Some(console) = console else {
            self.result(
                &title,
                event,
                None,
                &format!("not played: {} is not running", event.device),
            )
            .await;
            return;
        };
        if let Err(why) = ctx
            .access
            .check(user, &title, Permission::MacroRun, &event.device)
        {
            let line = format!("not played as {user}: {why}");
            self.result(&title, event, Some(&console), &line).await;
            return;
        }
        let macro_ = match crate::automation::load(&ctx, name) {
            Ok(m) => m,
            Err(why) => {
                let line = format!("not played: {why}");
                self.result(&title, event, Some(&console), &line).await;
                return;
            }
        };
        let args: Vec<(String, String)> = self
            .args(event)
            .into_iter()
            .filter(|(k, _)| macro_.params().iter().any(|p| p.name == *k))
            .collect();
        let _ = console
            .record(
                RecordKind::Note,
                user,
                format!("{title}: playing as {user}"),
            )
            .await;
        self.note_event(event.id, &format!("{title}: playing as {user}"))
            .await;
        let opts = PlayOptions {
            name: name.to_owned(),
            notes: true,
            parallel: 1,
            on_failure: OnFailure::Continue,
            origin: title.clone(),
        };
        let reports = crate::automation::play(
            user,
            std::slice::from_ref(&console),
            &macro_,
            &args,
            &opts,
            None,
        )
        .await;
        for r in reports {
            self.result(&title, event, Some(&console), &r.result_line())
                .await;
        }
    }

    /// Tell the result: the device's record log (a note, or a notice when nothing ran), the
    /// event's context and the daemon's log.
    async fn result(
        &self,
        title: &str,
        event: &Event,
        console: Option<&mo_core::console::Console>,
        line: &str,
    ) {
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
