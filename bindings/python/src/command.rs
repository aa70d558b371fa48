//! `send_command` and `find_prompt` of both console classes: Netmiko's calls, one line each over
//! the facade's [`ConsoleHandle::send_command`](mo_core::facade::ConsoleHandle::send_command).

use mo_core::automation::ExpectPattern;
use mo_core::facade::CommandOptions;
use pyo3::prelude::*;

use crate::{Console, SyncConsole, block, seconds, to_py};

/// The options of `send_command(command, prompt, timeout)`.
fn options(prompt: Option<&str>, timeout: f64) -> PyResult<CommandOptions> {
    let mut options = CommandOptions::new().timeout(seconds("send_command timeout", timeout)?);
    if let Some(prompt) = prompt {
        options = options.prompt(ExpectPattern::regex(prompt).map_err(to_py)?);
    }
    Ok(options)
}

#[pymethods]
impl Console {
    /// Type `command` and Enter; the output between its echo and the next prompt. `prompt` is a
    /// regular expression (default: the prompt learnt from the console the first time);
    /// `--More--` pagers are answered and taken out. At most `timeout` seconds.
    #[pyo3(signature = (command, prompt = None, timeout = 30.0))]
    fn send_command<'py>(
        &self,
        py: Python<'py>,
        command: String,
        prompt: Option<&str>,
        timeout: f64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let options = options(prompt, timeout)?;
        aw!(self, py, |c| c
            .handle
            .send_command(&command, &options)
            .await
            .map_err(to_py))
    }

    /// Type an empty line and learn the prompt (the last line of the answer); `send_command`
    /// uses it from then on.
    #[pyo3(signature = (timeout = 10.0))]
    fn find_prompt<'py>(&self, py: Python<'py>, timeout: f64) -> PyResult<Bound<'py, PyAny>> {
        let timeout = seconds("find_prompt timeout", timeout)?;
        aw!(self, py, |c| c
            .handle
            .find_prompt(timeout)
            .await
            .map_err(to_py))
    }
}

#[pymethods]
impl SyncConsole {
    /// Type `command` and Enter; the output between its echo and the next prompt. `prompt` is a
    /// regular expression (default: the prompt learnt from the console the first time);
    /// `--More--` pagers are answered and taken out. At most `timeout` seconds.
    #[pyo3(signature = (command, prompt = None, timeout = 30.0))]
    fn send_command(
        &self,
        py: Python<'_>,
        command: &str,
        prompt: Option<&str>,
        timeout: f64,
    ) -> PyResult<String> {
        let options = options(prompt, timeout)?;
        block(py, self.core.handle.send_command(command, &options)).map_err(to_py)
    }

    /// Type an empty line and learn the prompt (the last line of the answer); `send_command`
    /// uses it from then on.
    #[pyo3(signature = (timeout = 10.0))]
    fn find_prompt(&self, py: Python<'_>, timeout: f64) -> PyResult<String> {
        let timeout = seconds("find_prompt timeout", timeout)?;
        block(py, self.core.handle.find_prompt(timeout)).map_err(to_py)
    }
}

/// The escape of `interact(escape=...)`: conserver notation, `^Ec` by default.
fn escape(text: &str) -> PyResult<mo_core::escape::EscapeConfig> {
    mo_core::escape::EscapeConfig::parse(text).map_err(to_py)
}

#[pymethods]
impl Console {
    /// Hand the terminal to the console until the escape (`escape` then `.`: `^Ec.` by
    /// default), as pexpect's `interact()`: raw mode, keys in, output out, the terminal restored.
    #[pyo3(signature = (escape = "^Ec"))]
    fn interact<'py>(&self, py: Python<'py>, escape: &str) -> PyResult<Bound<'py, PyAny>> {
        let escape = self::escape(escape)?;
        aw!(self, py, |c| mo_drivers::terminal::interact(
            &c.handle, escape
        )
        .await
        .map_err(to_py))
    }
}

#[pymethods]
impl SyncConsole {
    /// Hand the terminal to the console until the escape (`escape` then `.`: `^Ec.` by
    /// default), as pexpect's `interact()`: raw mode, keys in, output out, the terminal restored.
    #[pyo3(signature = (escape = "^Ec"))]
    fn interact(&self, py: Python<'_>, escape: &str) -> PyResult<()> {
        let escape = self::escape(escape)?;
        block(
            py,
            mo_drivers::terminal::interact(&self.core.handle, escape),
        )
        .map_err(to_py)
    }
}

#[pymethods]
impl Console {
    /// Send a transcript of every byte read from now on (and sent, with `sent`) to `logfile`,
    /// a path or a file object, as `open(logfile=...)` does (for consoles from
    /// `Client.attach` too); `None` stops it.
    #[pyo3(signature = (logfile, sent = false))]
    fn set_logfile(&self, logfile: Option<&Bound<'_, PyAny>>, sent: bool) -> PyResult<()> {
        let transcript = crate::transcript::transcript(logfile, sent)?;
        self.core.handle.set_transcript(transcript);
        Ok(())
    }
}

#[pymethods]
impl SyncConsole {
    /// Send a transcript of every byte read from now on (and sent, with `sent`) to `logfile`,
    /// a path or a file object, as `open(logfile=...)` does (for consoles from
    /// `Client.attach` too); `None` stops it.
    #[pyo3(signature = (logfile, sent = false))]
    fn set_logfile(&self, logfile: Option<&Bound<'_, PyAny>>, sent: bool) -> PyResult<()> {
        let transcript = crate::transcript::transcript(logfile, sent)?;
        self.core.handle.set_transcript(transcript);
        Ok(())
    }
}
