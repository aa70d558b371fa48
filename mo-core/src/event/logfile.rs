//! System log files (`[[logfile]]` in the events file): files on the machine running the daemon
//! (`/var/log/syslog`, application logs), scanned with the same patterns as the consoles, their
//! matches raised as events (source `pattern`) under a configured device name (`mo` by default).
//!
//! ```toml
//! [[logfile]]
//! path = "/var/log/app/*.log"   # a path; the file name may be a glob
//! device = "app-logs"           # default "mo"
//! start = "end"                 # or "beginning"; a saved offset wins over both
//! interval = "1s"               # how often the files are polled (default 500ms)
//! ```
//!
//! A [`LogFollower`] polls: it reads what was appended to each file it follows, and follows files
//! by inode, not by name, so a rotated file (renamed to `app.log.1`, a new `app.log` created) is
//! read to its end and the new one from its start, with nothing lost and nothing read twice; a
//! file cut shorter than what was read (`copytruncate`) is read again from its start. Files no
//! path names any more are read for a short grace period (a writer may still append before it
//! reopens), then let go. Only complete lines are scanned.
//!
//! Where it got to (device and inode number and offset of every file followed) is saved to a
//! state file after every read that advanced, so a restarted daemon resumes where it stopped:
//! a file it knew goes on from its offset, a file that appeared meanwhile (rotation while the
//! daemon was down) is read from its start.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::Candidate;
use crate::error::{Error, Result};
use crate::scan::{Match, PatternSet, ScanConfig, Scanner};

/// The device name a log file's events are raised under by default.
pub const DEFAULT_LOGFILE_DEVICE: &str = "mo";
/// How often log files are polled by default.
pub const DEFAULT_LOGFILE_INTERVAL: Duration = Duration::from_millis(500);
/// The most bytes read from one file in one poll (the next poll goes on at once).
const READ_CHUNK: usize = 1 << 20;
/// How long a file no path names any more is still read.
const GRACE: Duration = Duration::from_secs(5);

/// A `[[logfile]]` entry as written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogfileConfig {
    /// An absolute path; its file name (the last component) may be a glob ([`crate::glob`]).
    pub path: String,
    /// The device name events are raised under (default [`DEFAULT_LOGFILE_DEVICE`]).
    #[serde(default)]
    pub device: Option<String>,
    /// Where to start in a file when no offset was saved: `end` (default) or `beginning`.
    #[serde(default)]
    pub start: Option<String>,
    /// How often to poll, as a human duration (default [`DEFAULT_LOGFILE_INTERVAL`]).
    #[serde(default)]
    pub interval: Option<String>,
}

/// A checked `[[logfile]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logfile {
    /// The path as configured.
    pub path: String,
    /// The directory the files are in.
    dir: PathBuf,
    /// The file name, or a glob of file names.
    name: String,
    /// The device events are raised under.
    pub device: String,
    /// Start at the beginning of files when no offset was saved.
    pub from_start: bool,
    /// How often to poll.
    pub interval: Duration,
}

impl Logfile {
    /// Check an entry; errors name the field and what is wrong.
    pub fn from_config(config: &LogfileConfig) -> Result<Logfile> {
        let bad = |reason: String| Error::BadSpec {
            what: "logfile",
            input: config.path.clone(),
            reason,
        };
        let path = Path::new(&config.path);
        if !path.is_absolute() {
            return Err(bad("`path` must be absolute".into()));
        }
        let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str()))
        else {
            return Err(bad("`path` names no file".into()));
        };
        if crate::glob::has_wildcards(&dir.to_string_lossy()) {
            return Err(bad(
                "only the file name may be a glob, not the directories".into()
            ));
        }
        let device = config
            .device
            .clone()
            .unwrap_or_else(|| DEFAULT_LOGFILE_DEVICE.to_owned());
        let valid = !device.is_empty()
            && device.len() <= 64
            && !device.starts_with(['.', '-'])
            && device
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !valid {
            return Err(bad(format!(
                "`device` `{device}`: 1 to 64 letters, digits, `.`, `_` or `-`, not starting \
                 with `.` or `-`"
            )));
        }
        let from_start = match config.start.as_deref().unwrap_or("end") {
            "end" => false,
            "beginning" => true,
            other => {
                return Err(bad(format!("`start` `{other}`: expected end or beginning")));
            }
        };
        let interval = match &config.interval {
            None => DEFAULT_LOGFILE_INTERVAL,
            Some(text) => humantime::parse_duration(text.trim())
                .map_err(|e| bad(format!("`interval` `{text}`: {e}")))?,
        };
        if interval.is_zero() || interval > Duration::from_secs(3600) {
            return Err(bad("`interval` must be more than 0 and at most 1h".into()));
        }
        Ok(Logfile {
            path: config.path.clone(),
            dir: dir.to_path_buf(),
            name: name.to_owned(),
            device,
            from_start,
            interval,
        })
    }

    /// The files the entry names now, sorted.
    fn paths(&self) -> Vec<PathBuf> {
        if !crate::glob::has_wildcards(&self.name) {
            return vec![self.dir.join(&self.name)];
        }
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut out: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .filter(|e| {
                e.file_name()
                    .to_str()
                    .is_some_and(|n| crate::glob::glob_match(&self.name, n))
            })
            .map(|e| e.path())
            .collect();
        out.sort();
        out
    }

    /// Rotated copies of a plain (not glob) file name in its directory: `NAME.1`, `NAME-DATE`,
    /// not compressed ones; by (device, inode).
    fn siblings(&self) -> Vec<((u64, u64), PathBuf)> {
        if crate::glob::has_wildcards(&self.name) {
            return Vec::new();
        }
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let compressed = [".gz", ".xz", ".bz2", ".zst", ".lz4", ".Z", ".zip"];
        entries
            .filter_map(|e| e.ok())
            .filter(|e| {
                e.file_name().to_str().is_some_and(|n| {
                    n.strip_prefix(self.name.as_str())
                        .is_some_and(|rest| rest.starts_with(['.', '-', '_']))
                        && !compressed.iter().any(|c| n.ends_with(c))
                })
            })
            .filter_map(|e| {
                let meta = e.metadata().ok().filter(|m| m.is_file())?;
                Some(((meta.dev(), meta.ino()), e.path()))
            })
            .collect()
    }

    /// The state file's name for this entry: the path made safe, and a hash of it.
    pub fn state_name(&self) -> String {
        let safe: String = self
            .path
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .take(80)
            .collect();
        // FNV-1a, stable across runs and builds.
        let hash = self.path.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        format!("{safe}-{hash:016x}.offsets")
    }
}

/// One file being followed.
struct Followed {
    file: File,
    path: PathBuf,
    pos: u64,
    scanner: Option<Scanner>,
    /// When a path last named it.
    named: Instant,
}

/// Follows the files of one [`Logfile`] entry (see the module documentation).
pub struct LogFollower {
    logfile: Logfile,
    patterns: Option<PatternSet>,
    state: Option<PathBuf>,
    /// Offsets saved by an earlier run, by (device, inode); `None` when there was no state.
    saved: Option<HashMap<(u64, u64), u64>>,
    files: HashMap<(u64, u64), Followed>,
    /// Files followed and let go (or there before the first poll), still in the directory.
    done: HashSet<(u64, u64)>,
    first: bool,
    dirty: bool,
    missing_reported: bool,
}

impl std::fmt::Debug for LogFollower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogFollower")
            .field("path", &self.logfile.path)
            .field("files", &self.files.len())
            .finish_non_exhaustive()
    }
}

impl LogFollower {
    /// A follower scanning with `patterns` (none: files are followed but nothing matches),
    /// keeping its offsets in the file `state` (none: always start as configured).
    pub fn new(logfile: Logfile, patterns: Option<PatternSet>, state: Option<PathBuf>) -> Self {
        let saved = state.as_deref().and_then(read_state);
        LogFollower {
            logfile,
            patterns,
            state,
            saved,
            files: HashMap::new(),
            done: HashSet::new(),
            first: true,
            dirty: false,
            missing_reported: false,
        }
    }

    /// The entry followed.
    pub fn logfile(&self) -> &Logfile {
        &self.logfile
    }

    /// Read what was appended since the last poll; the matches of its complete lines, and
    /// whether a file has more to read right away.
    pub fn poll(&mut self) -> (Vec<Match>, bool) {
        let now = Instant::now();
        let paths = self.logfile.paths();
        if paths.is_empty() && !self.missing_reported {
            tracing::warn!(path = %self.logfile.path, "log file: no such file (yet)");
            self.missing_reported = true;
        }
        for path in paths {
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            if !meta.is_file() {
                continue;
            }
            self.missing_reported = false;
            let key = (meta.dev(), meta.ino());
            if let Some(f) = self.files.get_mut(&key) {
                f.named = now;
                f.path = path;
                continue;
            }
            let pos = match &self.saved {
                Some(saved) => saved.get(&key).copied().unwrap_or(0),
                None if self.first && !self.logfile.from_start => meta.len(),
                None => 0,
            };
            self.track(key, path, pos, now);
        }
        // A file created and rotated away between two polls: a rotated name (`NAME.1`,
        // `NAME-20261205`) with an inode never followed is read whole, once.
        let mut present = HashSet::new();
        for (key, path) in self.logfile.siblings() {
            present.insert(key);
            if self.first {
                // Rotated while the daemon was down: go on where it stopped.
                match self.saved.as_ref().and_then(|s| s.get(&key)).copied() {
                    Some(pos) if !self.files.contains_key(&key) => self.track(key, path, pos, now),
                    _ => {
                        self.done.insert(key);
                    }
                }
            } else if !self.files.contains_key(&key) && !self.done.contains(&key) {
                self.track(key, path, 0, now);
            }
        }
        self.done.retain(|k| present.contains(k));
        self.first = false;
        self.saved = None;
        let mut matches = Vec::new();
        let mut more = false;
        for f in self.files.values_mut() {
            let (found, again) = read_more(f, now);
            matches.extend(found);
            self.dirty |= again.advanced;
            more |= again.more;
        }
        let done = &mut self.done;
        let before = self.files.len();
        self.files.retain(|key, f| {
            let keep = now.saturating_duration_since(f.named) < GRACE;
            if !keep {
                done.insert(*key);
            }
            keep
        });
        self.dirty |= self.files.len() != before;
        (matches, more)
    }

    /// Follow the file `key` at `path` from `pos`.
    fn track(&mut self, key: (u64, u64), path: PathBuf, pos: u64, now: Instant) {
        let Ok(file) = File::open(&path) else {
            return;
        };
        let scanner = self
            .patterns
            .clone()
            .map(|set| Scanner::with_set(self.logfile.device.clone(), set, ScanConfig::default()));
        self.dirty = true;
        self.files.insert(
            key,
            Followed {
                file,
                path,
                pos,
                scanner,
                named: now,
            },
        );
    }

    /// Scan with `patterns` from now on (none: nothing matches). Each file is followed on from
    /// where it is; the part of a line already read is scanned with the new patterns once the
    /// line is complete.
    pub fn set_patterns(&mut self, patterns: Option<PatternSet>) {
        let now = Instant::now();
        for f in self.files.values_mut() {
            let partial = f
                .scanner
                .as_ref()
                .map(|s| s.partial_line().to_vec())
                .unwrap_or_default();
            f.scanner = patterns.clone().map(|set| {
                let mut s =
                    Scanner::with_set(self.logfile.device.clone(), set, ScanConfig::default());
                let _ = s.feed(&partial, now);
                s
            });
        }
        self.patterns = patterns;
    }

    /// Write the offsets to the state file if they changed since the last save.
    pub fn save(&mut self) {
        if !self.dirty {
            return;
        }
        let Some(state) = &self.state else {
            self.dirty = false;
            return;
        };
        let mut text = String::new();
        let mut keys: Vec<_> = self.files.keys().copied().collect();
        keys.sort_unstable();
        for key in keys {
            if let Some(f) = self.files.get(&key) {
                text.push_str(&format!("{} {} {}\n", key.0, key.1, f.pos));
            }
        }
        let tmp = state.with_extension("tmp");
        let written = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, state));
        match written {
            Ok(()) => self.dirty = false,
            Err(e) => tracing::warn!(state = %state.display(), "log file offsets not saved: {e}"),
        }
    }
}

/// What one read did.
struct ReadOutcome {
    advanced: bool,
    more: bool,
}

/// Read what was appended to `f` (at most [`READ_CHUNK`]), starting over if it was truncated.
fn read_more(f: &mut Followed, now: Instant) -> (Vec<Match>, ReadOutcome) {
    let mut matches = Vec::new();
    let mut outcome = ReadOutcome {
        advanced: false,
        more: false,
    };
    let Ok(meta) = f.file.metadata() else {
        return (matches, outcome);
    };
    let len = meta.len();
    if len < f.pos {
        tracing::info!(path = %f.path.display(), "log file truncated: reading it from its start");
        // What was before the cut is not the start of what follows.
        if let Some(s) = f.scanner.as_mut() {
            let _ = s.flush();
        }
        f.pos = 0;
        outcome.advanced = true;
    }
    if len == f.pos {
        return (matches, outcome);
    }
    let want = usize::try_from(len - f.pos)
        .unwrap_or(usize::MAX)
        .min(READ_CHUNK);
    let mut buf = vec![0u8; want];
    let got = f
        .file
        .seek(SeekFrom::Start(f.pos))
        .and_then(|_| read_up_to(&mut f.file, &mut buf));
    match got {
        Ok(n) if n > 0 => {
            if let Some(s) = f.scanner.as_mut() {
                matches.extend(s.feed(&buf[..n], now));
            }
            f.pos += n as u64;
            outcome.advanced = true;
            outcome.more = f.pos < len;
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(path = %f.path.display(), "cannot read log file: {e}"),
    }
    (matches, outcome)
}

/// Read until `buf` is full or the end of the file.
fn read_up_to(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The offsets a state file holds (`None` if there is none or it cannot be read).
fn read_state(path: &Path) -> Option<HashMap<(u64, u64), u64>> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut out = HashMap::new();
    for line in text.lines() {
        let mut parts = line.split_whitespace().map(str::parse::<u64>);
        if let (Some(Ok(dev)), Some(Ok(ino)), Some(Ok(pos))) =
            (parts.next(), parts.next(), parts.next())
        {
            out.insert((dev, ino), pos);
        }
    }
    Some(out)
}

/// A `[[logfile]]` entry followed on a thread of its own (see [`spawn_logfile`]). Dropping it
/// stops the thread at its next poll; [`LogfileTask::stop`] also waits for it.
#[derive(Debug)]
#[must_use = "dropping it stops following the files"]
pub struct LogfileTask {
    control: std::sync::mpsc::Sender<Option<PatternSet>>,
    thread: std::thread::JoinHandle<()>,
}

impl LogfileTask {
    /// Scan with `patterns` from now on (none: nothing matches); the files are followed on from
    /// where they are, and a line being read is finished with the new patterns.
    pub fn set_patterns(&self, patterns: Option<PatternSet>) {
        let _ = self.control.send(patterns);
    }

    /// Stop following and wait until the thread ended, its offsets saved: no match is offered
    /// after this returns. Blocks for at most one read of the files.
    pub fn stop(self) {
        drop(self.control);
        if self.thread.join().is_err() {
            tracing::error!("a log file thread panicked");
        }
    }
}

/// Follow `logfile` on a thread of its own until `tx` closes or the task is stopped: every
/// match becomes a candidate event under the entry's device name; offsets are saved in
/// `state_dir` (if any).
pub fn spawn_logfile(
    logfile: Logfile,
    patterns: Option<PatternSet>,
    state_dir: Option<&Path>,
    tx: mpsc::Sender<Candidate>,
) -> std::io::Result<LogfileTask> {
    use std::sync::mpsc::RecvTimeoutError;
    let state = state_dir.map(|d| d.join(logfile.state_name()));
    let device = logfile.device.clone();
    let interval = logfile.interval;
    let mut follower = LogFollower::new(logfile, patterns, state);
    let (control, orders) = std::sync::mpsc::channel::<Option<PatternSet>>();
    let thread = std::thread::Builder::new()
        .name("mo-logfile".into())
        .spawn(move || {
            while !tx.is_closed() {
                let (matches, more) = follower.poll();
                for m in &matches {
                    let candidate = Candidate::from_match(&device, m, super::watch::now_i64());
                    if tx.blocking_send(candidate).is_err() {
                        return;
                    }
                }
                follower.save();
                let wait = if more { Duration::ZERO } else { interval };
                match orders.recv_timeout(wait) {
                    Ok(patterns) => follower.set_patterns(patterns),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            }
        })?;
    Ok(LogfileTask { control, thread })
}

#[cfg(test)]
#[path = "logfile_tests.rs"]
mod tests;
