//! The file-change monitor in the daemon: `[[watch]]` entries of the events file become
//! [`mo_core::filewatch::FileWatcher`]s polling in the background, and every change (size,
//! contents, mtime, permissions, owner, disappearance, reappearance) is offered to the event
//! manager as an event with source `file`.
//!
//! ```toml
//! [[watch]]
//! name = "system"            # a label for diagnostics (default: watch-N)
//! profile = "cert"           # the CERT list of system files (/etc/passwd, /etc/shadow, …)
//! paths = ["/srv/app/app.conf"]   # absolute paths, added to the profile's
//! interval = "30s"           # how often to look (default 60s; at least 100ms)
//! severity = "warning"       # of the events (default warning)
//! device = "mo"              # the device the events are filed under (default `mo`: this server)
//! ```

use std::path::PathBuf;
use std::time::Duration;

use mo_core::event::{Candidate, EventSource};
use mo_core::filewatch::{ChangeKind, FileChange, FileWatcher, cert_profile};
use mo_core::scan::Severity;
use serde::Deserialize;
use tokio::sync::mpsc;

/// The device file events are filed under when a `[[watch]]` entry names none.
pub const DEFAULT_DEVICE: &str = "mo";
/// How often files are looked at when a `[[watch]]` entry gives no interval.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
/// The shortest interval accepted (each poll hashes every watched file).
const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// A `[[watch]]` entry as written in the events file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchConfig {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    paths: Vec<String>,
    #[serde(default)]
    profile: Option<String>,
    #[serde(default)]
    interval: Option<String>,
    #[serde(default)]
    severity: Option<String>,
    #[serde(default)]
    device: Option<String>,
}

/// A checked `[[watch]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watch {
    /// Its label.
    pub name: String,
    /// The files, profile first, without duplicates.
    pub paths: Vec<PathBuf>,
    /// How often they are looked at.
    pub interval: Duration,
    /// Severity of the events.
    pub severity: Severity,
    /// The device the events are filed under.
    pub device: String,
}

impl Watch {
    /// Check entry number `index` (from 0) of the file `origin`; errors name the entry and the
    /// field.
    pub fn from_config(index: usize, cfg: &WatchConfig, origin: &str) -> anyhow::Result<Watch> {
        let name = cfg
            .name
            .clone()
            .unwrap_or_else(|| format!("watch-{}", index + 1));
        let what = format!("{origin}: [[watch]] `{name}`");
        let mut paths: Vec<PathBuf> = match cfg.profile.as_deref() {
            None => Vec::new(),
            Some("cert") => cert_profile(),
            Some(other) => {
                anyhow::bail!("{what}: unknown profile `{other}` (the only profile is `cert`)")
            }
        };
        for p in &cfg.paths {
            let path = PathBuf::from(p);
            if !path.is_absolute() {
                anyhow::bail!("{what}: path `{p}` is not absolute");
            }
            if !paths.contains(&path) {
                paths.push(path);
            }
        }
        if paths.is_empty() {
            anyhow::bail!("{what}: give `paths` or `profile = \"cert\"`");
        }
        let interval = match cfg.interval.as_deref() {
            None => DEFAULT_INTERVAL,
            Some(text) => humantime::parse_duration(text.trim())
                .map_err(|e| anyhow::anyhow!("{what}: bad interval `{text}`: {e}"))?,
        };
        if interval < MIN_INTERVAL {
            anyhow::bail!(
                "{what}: interval {} is too short (at least {})",
                humantime::format_duration(interval),
                humantime::format_duration(MIN_INTERVAL)
            );
        }
        let severity = match cfg.severity.as_deref() {
            None => Severity::Warning,
            Some(s) => s
                .parse()
                .map_err(|e| anyhow::anyhow!("{what}: severity: {e}"))?,
        };
        let device = cfg
            .device
            .clone()
            .unwrap_or_else(|| DEFAULT_DEVICE.to_owned());
        if device.trim().is_empty() {
            anyhow::bail!("{what}: device is empty");
        }
        Ok(Watch {
            name,
            paths,
            interval,
            severity,
            device,
        })
    }
}

/// The event message for a change.
pub fn message(change: &FileChange) -> String {
    let path = change.path.display();
    match change.what {
        ChangeKind::Disappeared => format!("file {path} disappeared ({})", change.new),
        ChangeKind::Appeared => format!("file {path} appeared"),
        what => format!(
            "file {path}: {} changed: {} -> {}",
            what.name(),
            change.old,
            change.new
        ),
    }
}

/// A running `[[watch]]` entry (see [`spawn`]); dropping it stops the polling.
#[derive(Debug)]
#[must_use = "dropping it stops the watch"]
pub struct WatchTask(tokio::task::AbortHandle);

impl Drop for WatchTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Start polling `watch` in the background; each change is offered through `tx` as a candidate
/// event. Stops when `tx`'s receiver is gone or the answered task is dropped.
pub fn spawn(watch: Watch, tx: mpsc::Sender<Candidate>) -> WatchTask {
    let task = tokio::spawn(async move {
        let paths = watch.paths.clone();
        // The baseline hashes every file: not on an async worker thread.
        let watcher = match tokio::task::spawn_blocking(move || FileWatcher::new(paths)).await {
            Ok(w) => w,
            Err(e) => {
                tracing::error!(watch = %watch.name, "cannot start the file watcher: {e}");
                return;
            }
        };
        let present = watcher.files().filter(|(_, ok)| *ok).count();
        tracing::info!(
            watch = %watch.name,
            "watching {} file(s) ({present} present) every {}",
            watch.paths.len(),
            humantime::format_duration(watch.interval)
        );
        let (changes_tx, mut changes) = mpsc::channel::<FileChange>(256);
        // Ends with this task, however it ends.
        let _poller =
            WatchTask(tokio::spawn(watcher.run(watch.interval, changes_tx)).abort_handle());
        while let Some(change) = changes.recv().await {
            let mut candidate = Candidate::new(
                watch.device.clone(),
                EventSource::File,
                watch.severity,
                message(&change),
            );
            candidate.time_ns = i64::try_from(change.time_ns).unwrap_or(i64::MAX);
            if tx.send(candidate).await.is_err() {
                return;
            }
        }
    });
    WatchTask(task.abort_handle())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> WatchConfig {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn entries_are_checked_with_clear_errors() {
        let w = Watch::from_config(0, &cfg("paths = ['/tmp/a', '/tmp/a']"), "ev.toml").unwrap();
        assert_eq!(w.name, "watch-1");
        assert_eq!(w.paths, [PathBuf::from("/tmp/a")]);
        assert_eq!(
            (w.interval, w.severity, w.device.as_str()),
            (DEFAULT_INTERVAL, Severity::Warning, DEFAULT_DEVICE)
        );
        let w = Watch::from_config(
            1,
            &cfg("name = 'sys'\nprofile = 'cert'\npaths = ['/etc/passwd', '/x']\ninterval = '2s'\nseverity = 'error'\ndevice = 'db1'"),
            "ev.toml",
        )
        .unwrap();
        assert_eq!(w.paths.len(), cert_profile().len() + 1);
        assert_eq!(w.interval, Duration::from_secs(2));
        assert_eq!((w.severity, w.device.as_str()), (Severity::Error, "db1"));

        let err = |text: &str| {
            Watch::from_config(2, &cfg(text), "ev.toml")
                .unwrap_err()
                .to_string()
        };
        assert!(err("").contains("ev.toml: [[watch]] `watch-3`: give `paths`"));
        assert!(err("paths = ['rel/x']").contains("not absolute"));
        assert!(err("profile = 'sans'").contains("unknown profile `sans`"));
        assert!(err("paths = ['/x']\ninterval = 'soon'").contains("bad interval `soon`"));
        assert!(err("paths = ['/x']\ninterval = '1ms'").contains("too short"));
        assert!(err("paths = ['/x']\nseverity = 'dire'").contains("severity"));
        assert!(toml::from_str::<WatchConfig>("pathz = ['/x']").is_err());
    }

    #[test]
    fn messages_say_what_changed() {
        let change = |what, old: &str, new: &str| FileChange {
            time_ns: 0,
            path: "/etc/hosts".into(),
            what,
            old: old.into(),
            new: new.into(),
        };
        assert_eq!(
            message(&change(ChangeKind::Size, "10", "12")),
            "file /etc/hosts: size changed: 10 -> 12"
        );
        assert_eq!(
            message(&change(ChangeKind::Disappeared, "present", "missing")),
            "file /etc/hosts disappeared (missing)"
        );
        assert_eq!(
            message(&change(ChangeKind::Appeared, "missing", "present")),
            "file /etc/hosts appeared"
        );
    }

    #[tokio::test]
    async fn changes_become_file_events() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f");
        std::fs::write(&path, "one").unwrap();
        let (tx, mut rx) = mpsc::channel(16);
        let watch = Watch {
            name: "t".into(),
            paths: vec![path.clone()],
            interval: MIN_INTERVAL,
            severity: Severity::Notice,
            device: "box".into(),
        };
        let _running = spawn(watch, tx);
        // The baseline may not be taken yet: keep changing until a size change shows.
        let mut n = 0;
        let candidate = loop {
            n += 1;
            std::fs::write(&path, "x".repeat(n)).unwrap();
            match tokio::time::timeout(Duration::from_millis(500), rx.recv()).await {
                Ok(Some(c)) if c.message.contains("size changed") => break c,
                Ok(Some(_)) | Err(_) => assert!(n < 100, "no size change seen"),
                Ok(None) => panic!("the watcher stopped"),
            }
        };
        assert_eq!(candidate.source, EventSource::File);
        assert_eq!(
            (candidate.device.as_str(), candidate.severity),
            ("box", Severity::Notice)
        );
        assert!(candidate.time_ns > 0);
    }
}
