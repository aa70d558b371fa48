//! `mo.Log(path)`: a record log directory (what `log_dir=` writes, or a device directory of the
//! daemon's data dir) read without the CLI, over [`mo_core::log`]'s reader, search and verify.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::SystemTime;

use mo_core::log::{
    ReadOptions, Record, Records, SearchOptions, format_timestamp, parse_time_spec, read,
    search_lines, tail, verify,
};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use crate::{raise, to_py};

/// One record of a log.
#[pyclass(module = "mo._mo", frozen, get_all)]
#[derive(Debug, Clone)]
pub struct LogRecord {
    /// Its sequence number (1, 2, … across the device's segments).
    pub seq: u64,
    /// When, in nanoseconds since the Unix epoch.
    pub time_ns: u64,
    /// When, as RFC 3339 text in UTC with milliseconds.
    pub time: String,
    /// `output`, `input`, `notice`, `event`, `power`, `mark`, `note`, `control` or `gap`.
    pub kind: String,
    /// Who: the typing user for input and notes, empty for device output.
    pub user: String,
    /// The bytes.
    pub data: Vec<u8>,
}

impl From<Record> for LogRecord {
    fn from(r: Record) -> Self {
        LogRecord {
            seq: r.seq,
            time_ns: r.time_ns,
            time: format_timestamp(r.time_ns),
            kind: r.kind.name().to_string(),
            user: r.user,
            data: r.bytes,
        }
    }
}

#[pymethods]
impl LogRecord {
    /// The bytes as text (UTF-8, bad bytes replaced).
    #[getter]
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }

    fn __repr__(&self) -> String {
        format!(
            "LogRecord(seq={}, time={:?}, kind={:?}, user={:?}, data={} bytes)",
            self.seq,
            self.time,
            self.kind,
            self.user,
            self.data.len()
        )
    }
}

/// The records of [`Log::records`], read as they are iterated.
#[pyclass(module = "mo._mo", frozen)]
pub struct LogRecords {
    records: Mutex<Records>,
}

#[pymethods]
impl LogRecords {
    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<LogRecord>> {
        let next = py.detach(|| match self.records.lock() {
            Ok(mut records) => records.next(),
            Err(_) => None,
        });
        next.transpose().map_err(to_py).map(|r| r.map(Into::into))
    }
}

/// A time argument: RFC 3339 or relative text (as `mo log --since`: `2026-12-05T10:00:00Z`,
/// `10m`, `yesterday` …), seconds since the epoch, or a `datetime`; in ns since the epoch.
fn time_ns(what: &str, arg: Option<&Bound<'_, PyAny>>) -> PyResult<Option<u64>> {
    let Some(arg) = arg.filter(|a| !a.is_none()) else {
        return Ok(None);
    };
    let seconds: f64 = if arg.is_instance_of::<PyString>() {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        return parse_time_spec(&arg.extract::<String>()?, now)
            .map(Some)
            .map_err(to_py);
    } else if arg.hasattr("timestamp")? {
        arg.call_method0("timestamp")?.extract()?
    } else if let Ok(seconds) = arg.extract::<f64>() {
        seconds
    } else {
        return Err(raise(
            "InvalidArgument",
            format!(
                "{what}: a time as text, seconds since the epoch or a datetime, not {}",
                arg.repr()?
            ),
        ));
    };
    if !(seconds.is_finite() && seconds >= 0.0) {
        return Err(raise(
            "InvalidArgument",
            format!("{what}: {seconds} is not a time after 1970"),
        ));
    }
    Ok(Some((seconds * 1e9) as u64))
}

/// A record log directory: `Log(path)`.
#[pyclass(module = "mo._mo", frozen)]
pub struct Log {
    dir: PathBuf,
}

#[pymethods]
impl Log {
    #[new]
    fn new(path: PathBuf) -> PyResult<Log> {
        if !path.is_dir() {
            return Err(raise(
                "NotFound",
                format!("{}: no such log directory", path.display()),
            ));
        }
        Ok(Log { dir: path })
    }

    /// The directory.
    #[getter]
    fn path(&self) -> String {
        self.dir.display().to_string()
    }

    /// The records in order, at or after `since` and before `until` (text such as `10m` or
    /// an RFC 3339 time, seconds since the epoch, or a `datetime`), from sequence number
    /// `from_seq` on: an iterator reading as it goes.
    #[pyo3(signature = (since = None, until = None, from_seq = None))]
    fn records(
        &self,
        since: Option<&Bound<'_, PyAny>>,
        until: Option<&Bound<'_, PyAny>>,
        from_seq: Option<u64>,
    ) -> PyResult<LogRecords> {
        let opts = ReadOptions {
            from_seq,
            since: time_ns("since", since)?,
            until: time_ns("until", until)?,
        };
        let records = read(&self.dir, &opts).map_err(to_py)?;
        Ok(LogRecords {
            records: Mutex::new(records),
        })
    }

    /// The last `n` records.
    fn tail(&self, py: Python<'_>, n: usize) -> PyResult<Vec<LogRecord>> {
        let records = py.detach(|| tail(&self.dir, n)).map_err(to_py)?;
        Ok(records.into_iter().map(Into::into).collect())
    }

    /// The rendered lines (`2026-12-05T10:00:00.123Z text`) whose text matches the regular
    /// expression `pattern`, as `mo log search` prints them, with `context` lines around each.
    #[pyo3(signature = (pattern, *, ignore_case = false, context = 0, since = None, until = None))]
    fn search(
        &self,
        py: Python<'_>,
        pattern: String,
        ignore_case: bool,
        context: usize,
        since: Option<&Bound<'_, PyAny>>,
        until: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Vec<String>> {
        let opts = SearchOptions {
            pattern,
            ignore_case,
            before: context,
            after: context,
            since: time_ns("since", since)?,
            until: time_ns("until", until)?,
            hide_input: false,
        };
        py.detach(|| search_lines(&self.dir, &opts)).map_err(to_py)
    }

    /// Check the hash chain and every record: a dict with `ok`, `segments`, `records`,
    /// `bytes`, `first_seq`, `last_seq`, `problems` (how many), `problem` (the first, as text,
    /// or None), `torn_tail` (a torn final record of a live log, not an error) and `notes`.
    fn verify<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let report = py.detach(|| verify(&self.dir)).map_err(to_py)?;
        let d = PyDict::new(py);
        d.set_item("ok", report.is_ok())?;
        d.set_item("segments", report.segments)?;
        d.set_item("records", report.records)?;
        d.set_item("bytes", report.bytes)?;
        d.set_item("first_seq", report.first_seq)?;
        d.set_item("last_seq", report.last_seq)?;
        d.set_item("problems", report.problems)?;
        d.set_item("problem", report.problem.map(|p| p.to_string()))?;
        d.set_item("torn_tail", report.torn_tail.map(|p| p.to_string()))?;
        d.set_item("notes", report.notes)?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        format!("Log({:?})", self.dir.display().to_string())
    }
}
