//! `logfile=`: a transcript of a console's bytes, to a path or to a Python file object (as
//! pexpect's `logfile`), over the facade's [`Transcript`].

use std::path::PathBuf;
use std::sync::Arc;

use mo_core::facade::{FileTranscript, Transcript};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::{raise, to_py};

/// A Python file object: `write(bytes)` for a binary file, `write(str)` (decoded as UTF-8,
/// bad bytes replaced) for a text one, each followed by `flush()` when it has one.
struct PyTranscript {
    file: Py<PyAny>,
    text: bool,
    with_sent: bool,
}

impl PyTranscript {
    fn put(&self, bytes: &[u8]) {
        crate::runtime::with_python(|py| {
            let file = self.file.bind(py);
            let written = if self.text {
                file.call_method1("write", (String::from_utf8_lossy(bytes),))
            } else {
                file.call_method1("write", (PyBytes::new(py, bytes),))
            };
            let flushed = written.and_then(|_| {
                if file.hasattr("flush")? {
                    file.call_method0("flush")?;
                }
                Ok(())
            });
            if let Err(e) = flushed {
                e.write_unraisable(py, Some(file));
            }
        });
    }
}

impl Transcript for PyTranscript {
    fn received(&self, bytes: &[u8]) {
        self.put(bytes);
    }

    fn sent(&self, bytes: &[u8]) {
        if self.with_sent {
            self.put(bytes);
        }
    }
}

/// The transcript of `logfile=`: `None`, a path (`str` or `os.PathLike`, appended to) or a file
/// object with `write`. With `logfile_sent`, what is sent goes in too.
pub(crate) fn transcript(
    logfile: Option<&Bound<'_, PyAny>>,
    logfile_sent: bool,
) -> PyResult<Option<Arc<dyn Transcript>>> {
    let Some(logfile) = logfile.filter(|l| !l.is_none()) else {
        return Ok(None);
    };
    if let Ok(path) = logfile.extract::<PathBuf>() {
        let file = FileTranscript::append(&path, logfile_sent).map_err(to_py)?;
        return Ok(Some(Arc::new(file)));
    }
    if !logfile.hasattr("write")? {
        return Err(raise(
            "InvalidArgument",
            format!(
                "logfile: a path or a file object with write(), not {}",
                logfile.repr()?
            ),
        ));
    }
    let py = logfile.py();
    let text_io = py.import("io")?.getattr("TextIOBase")?;
    Ok(Some(Arc::new(PyTranscript {
        file: logfile.clone().unbind(),
        text: logfile.is_instance(&text_io)?,
        with_sent: logfile_sent,
    })))
}
