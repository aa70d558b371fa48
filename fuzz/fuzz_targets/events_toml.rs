//! Fuzz the daemon's event and schedule files (`mod --events FILE`, `mod --schedule FILE`) as far
//! as their parts live in the libraries: the `[rules]` table (mo_core::event::RulesConfig and
//! `Rules::from_config`), `[actions.NAME]` tables (mo_drivers::action::ActionConfig and
//! `EventAction::from_config`; for webhooks only their templated body, headers and signing
//! (`WebhookPayload::new`): building one builds an HTTP client),
//! `[[pattern]]`s (severity names and `PatternSet`), `[[logfile]]` entries (`Logfile::from_config`),
//! `[[journal]]` entries (`Journal::from_config`),
//! and `[[schedule]]` entries (cron
//! expressions through `automation::Job`). The events file's layout is the daemon's (mo-daemon
//! events.rs `FileConfig`); the schedule file is mo-store's `config::ScheduleFile`, which must
//! write back to TOML that reads to itself, with one job name per entry. Never a panic; rules and actions that read write
//! back to TOML that reads to the same configuration; a job's next run is after now.
//!
//! Input: one byte choosing the file (even: events, odd: schedule), then the TOML text.

#![no_main]

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use mo_core::automation::{Job, Macro};
use mo_core::event::{Journal, JournalConfig, Logfile, LogfileConfig, Rules, RulesConfig};
use mo_core::scan::{Pattern, PatternSet, Severity};
use mo_drivers::action::{ActionConfig, EventAction, WebhookPayload};
use mo_store::config::ScheduleFile;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PatternConfig {
    name: String,
    regex: String,
    #[serde(default)]
    severity: Option<String>,
    #[serde(default)]
    message: String,
    #[serde(default)]
    devices: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsFile {
    #[serde(default, rename = "pattern")]
    patterns: Vec<PatternConfig>,
    #[serde(default)]
    rules: RulesConfig,
    #[serde(default)]
    actions: BTreeMap<String, ActionConfig>,
    #[serde(default, rename = "watch")]
    _watches: Vec<toml::Value>,
    #[serde(default, rename = "logfile")]
    logfiles: Vec<LogfileConfig>,
    #[serde(default, rename = "journal")]
    journals: Vec<JournalConfig>,
}

fn events(text: &str) {
    let Ok(file) = toml::from_str::<EventsFile>(text) else {
        return;
    };
    let mut patterns = Vec::new();
    for p in file.patterns {
        let Ok(severity) = p
            .severity
            .as_deref()
            .unwrap_or("warning")
            .parse::<Severity>()
        else {
            continue;
        };
        for glob in &p.devices {
            let _ = mo_core::glob::glob_match(glob, "web01");
        }
        patterns.push(Pattern::new(p.name, p.regex, severity, p.message));
    }
    let _ = PatternSet::new(&patterns);

    let written = toml::to_string(&file.rules).unwrap_or_default();
    let back = toml::from_str::<RulesConfig>(&written);
    assert_eq!(back.as_ref().ok(), Some(&file.rules), "{written:?}");
    if let Ok(rules) = Rules::from_config(&file.rules) {
        let _ = rules.action_names();
    }

    for config in &file.logfiles {
        let written = toml::to_string(config).unwrap_or_default();
        let back = toml::from_str::<LogfileConfig>(&written);
        assert_eq!(back.as_ref().ok(), Some(config), "{written:?}");
        if let Ok(logfile) = Logfile::from_config(config) {
            assert!(!logfile.state_name().contains('/'));
        }
    }
    for config in &file.journals {
        let written = toml::to_string(config).unwrap_or_default();
        let back = toml::from_str::<JournalConfig>(&written);
        assert_eq!(back.as_ref().ok(), Some(config), "{written:?}");
        if let Ok(journal) = Journal::from_config(config) {
            // Names never become journalctl options.
            assert!(
                journal
                    .args()
                    .iter()
                    .skip(7)
                    .step_by(2)
                    .all(|a| !a.starts_with('-'))
            );
        }
    }

    for (name, config) in &file.actions {
        let written = toml::to_string(config).unwrap_or_default();
        let back = toml::from_str::<ActionConfig>(&written);
        assert_eq!(back.as_ref().ok(), Some(config), "{written:?}");
        if let ActionConfig::Webhook {
            body,
            content_type,
            headers,
            secret,
            signature_header,
            ..
        } = config
        {
            // The payload's templates and headers, without the HTTP client.
            let _ = WebhookPayload::new(
                body.as_deref(),
                content_type.as_deref(),
                headers,
                secret.as_deref(),
                signature_header.as_deref(),
            );
        } else {
            let _ = EventAction::from_config(name, config);
        }
    }
}

fn schedule(text: &str) {
    // The file as mo-store reads it (`mod --schedule`): errors name the file and a line.
    let file = match ScheduleFile::parse(text, "s.toml") {
        Ok(file) => file,
        Err(e) => {
            assert!(e.to_string().starts_with("s.toml"), "{e}");
            return;
        }
    };
    let written = file.to_toml().unwrap_or_default();
    let back = ScheduleFile::parse(&written, "again");
    assert_eq!(back.as_ref().ok(), Some(&file), "{written:?}");
    let names = file.job_names();
    assert_eq!(names.len(), file.entries.len());
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "job names repeat: {names:?}");
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000);
    for (e, name) in file.entries.into_iter().zip(names) {
        let Ok(m) = Macro::parse("send x") else {
            return;
        };
        if let Ok(job) = Job::new(&name, &e.cron, m, e.targets)
            && let Some(next) = job.next_after(now)
        {
            assert!(next > now, "{:?}: next run {next:?}", e.cron);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    if which % 2 == 0 {
        events(&text);
    } else {
        schedule(&text);
    }
});
