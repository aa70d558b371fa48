//! `new Log(path)`: a record log directory (what `logDir` writes, or a device directory of the
//! daemon's data dir) read without the CLI, over [`mo_core::log`]'s reader, search and verify.
//! Every method reads on a blocking thread and resolves to arrays.

use std::path::PathBuf;
use std::time::SystemTime;

use mo_core::log::{
    ReadOptions, Record, SearchOptions, format_timestamp, parse_time_spec, read, search_lines,
    tail, verify,
};
use napi::Result;
use napi::bindgen_prelude::{Buffer, Either};
use napi_derive::napi;

use crate::error::{bad_request, coded, to_napi};

/// One record of a log.
#[napi(object)]
pub struct LogRecord {
    /// Its sequence number (1, 2, … across the device's segments).
    pub seq: f64,
    /// When, in milliseconds since the Unix epoch (fractional).
    pub time_ms: f64,
    /// When, as RFC 3339 text in UTC with milliseconds.
    pub time: String,
    /// `output`, `input`, `notice`, `event`, `power`, `mark`, `note`, `control` or `gap`.
    pub kind: String,
    /// Who: the typing user for input and notes, empty for device output.
    pub user: String,
    /// The bytes.
    pub data: Buffer,
    /// The bytes as text (UTF-8, bad bytes replaced).
    pub text: String,
}

impl From<Record> for LogRecord {
    fn from(r: Record) -> Self {
        LogRecord {
            seq: r.seq as f64,
            time_ms: r.time_ns as f64 / 1e6,
            time: format_timestamp(r.time_ns),
            kind: r.kind.name().to_string(),
            user: r.user,
            text: String::from_utf8_lossy(&r.bytes).into_owned(),
            data: r.bytes.into(),
        }
    }
}

/// Which records: a time range and a first sequence number.
#[napi(object)]
#[derive(Debug, Default)]
pub struct LogRange {
    /// Records at or after this time: text as `mo log --since` takes it (`10m`, an RFC 3339
    /// time, …) or milliseconds since the epoch (`Date.now()`, `date.getTime()`).
    pub since: Option<Either<String, f64>>,
    /// Records before this time (as `since`).
    pub until: Option<Either<String, f64>>,
    /// Records from this sequence number on.
    pub from_seq: Option<f64>,
}

/// Options of `search()`.
#[napi(object)]
#[derive(Debug, Default)]
pub struct LogSearchOptions {
    /// Match letters regardless of case.
    pub ignore_case: Option<bool>,
    /// Lines of context around each matching line.
    pub context: Option<u32>,
    /// Lines at or after this time (as in `LogRange`).
    pub since: Option<Either<String, f64>>,
    /// Lines before this time (as in `LogRange`).
    pub until: Option<Either<String, f64>>,
}

/// What `verify()` found.
#[napi(object)]
#[derive(Debug)]
pub struct LogVerifyReport {
    /// No problem found (a torn final record of a live log is not one).
    pub ok: bool,
    /// Segment files read.
    pub segments: f64,
    /// Records checked.
    pub records: f64,
    /// Bytes of record data.
    pub bytes: f64,
    /// The first sequence number, if any record.
    pub first_seq: Option<f64>,
    /// The last sequence number, if any record.
    pub last_seq: Option<f64>,
    /// How many problems.
    pub problems: f64,
    /// The first problem, as text.
    pub problem: Option<String>,
    /// A torn final record of the live segment (being written, not an error).
    pub torn_tail: Option<String>,
    /// Remarks (compressed segments, …).
    pub notes: Vec<String>,
}

/// A time argument in ns since the epoch.
fn time_ns(what: &str, arg: Option<&Either<String, f64>>) -> Result<Option<u64>> {
    match arg {
        None => Ok(None),
        Some(Either::A(text)) => {
            let now = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
            parse_time_spec(text, now).map(Some).map_err(to_napi)
        }
        Some(Either::B(ms)) if ms.is_finite() && *ms >= 0.0 => Ok(Some((ms * 1e6) as u64)),
        Some(Either::B(ms)) => Err(bad_request(format!(
            "{what}: {ms} is not a time after 1970 in milliseconds"
        ))),
    }
}

/// Run `f` on a blocking thread.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> mo_core::Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| coded("error", e))?
        .map_err(to_napi)
}

/// A record log directory: `new Log(path)`.
#[napi]
pub struct Log {
    dir: PathBuf,
}

#[napi]
impl Log {
    /// Open the log in directory `path` (throws `NotFound` when there is none).
    #[napi(constructor)]
    pub fn new(path: String) -> Result<Log> {
        let dir = PathBuf::from(path);
        if !dir.is_dir() {
            return Err(coded(
                "not_found",
                format!("{}: no such log directory", dir.display()),
            ));
        }
        Ok(Log { dir })
    }

    /// The directory.
    #[napi(getter)]
    pub fn path(&self) -> String {
        self.dir.display().to_string()
    }

    /// The records in order within `range` (all of them without it).
    #[napi]
    pub async fn records(&self, range: Option<LogRange>) -> Result<Vec<LogRecord>> {
        let range = range.unwrap_or_default();
        let opts = ReadOptions {
            from_seq: range.from_seq.map(|s| s.max(0.0) as u64),
            since: time_ns("since", range.since.as_ref())?,
            until: time_ns("until", range.until.as_ref())?,
        };
        let dir = self.dir.clone();
        let records = blocking(move || read(&dir, &opts)?.collect::<mo_core::Result<Vec<_>>>());
        Ok(records.await?.into_iter().map(Into::into).collect())
    }

    /// The last `n` records.
    #[napi]
    pub async fn tail(&self, n: u32) -> Result<Vec<LogRecord>> {
        let dir = self.dir.clone();
        let records = blocking(move || tail(&dir, n as usize)).await?;
        Ok(records.into_iter().map(Into::into).collect())
    }

    /// The rendered lines (`2026-12-05T10:00:00.123Z text`) whose text matches the regular
    /// expression `pattern` (Rust syntax), as `mo log search` prints them.
    #[napi]
    pub async fn search(
        &self,
        pattern: String,
        options: Option<LogSearchOptions>,
    ) -> Result<Vec<String>> {
        let options = options.unwrap_or_default();
        let context = options.context.unwrap_or(0) as usize;
        let opts = SearchOptions {
            pattern,
            ignore_case: options.ignore_case.unwrap_or(false),
            before: context,
            after: context,
            since: time_ns("since", options.since.as_ref())?,
            until: time_ns("until", options.until.as_ref())?,
            hide_input: false,
        };
        let dir = self.dir.clone();
        blocking(move || search_lines(&dir, &opts)).await
    }

    /// Check every record and the hash chain across the segments.
    #[napi]
    pub async fn verify(&self) -> Result<LogVerifyReport> {
        let dir = self.dir.clone();
        let report = blocking(move || verify(&dir)).await?;
        Ok(LogVerifyReport {
            ok: report.is_ok(),
            segments: report.segments as f64,
            records: report.records as f64,
            bytes: report.bytes as f64,
            first_seq: report.first_seq.map(|s| s as f64),
            last_seq: report.last_seq.map(|s| s as f64),
            problems: report.problems as f64,
            problem: report.problem.map(|p| p.to_string()),
            torn_tail: report.torn_tail.map(|p| p.to_string()),
            notes: report.notes,
        })
    }
}
