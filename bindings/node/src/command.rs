//! `sendCommand`, `findPrompt` and `setTranscript` of `Console`: Netmiko's and pexpect's calls,
//! one line each over the facade's
//! [`ConsoleHandle::send_command`](mo_core::facade::ConsoleHandle::send_command).

use std::sync::Arc;

use mo_core::facade::{CommandOptions, Transcript};
use napi::Result;
use napi::bindgen_prelude::{Buffer, Either, Function};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;

use crate::console::{Console, RegexSource, duration_ms, pattern};
use crate::error::to_napi;

/// Options of `sendCommand()`.
#[napi(object)]
#[derive(Debug, Default)]
pub struct SendCommandOptions {
    /// What ends the output: a RegExp, or a string (a regular expression, Rust syntax). Default:
    /// the prompt learnt from the console the first time (`findPrompt()`).
    #[napi(ts_type = "RegExp | string")]
    pub prompt: Option<Either<String, RegexSource>>,
    /// The longest wait for the prompt, in all (default 30000).
    pub timeout_ms: Option<f64>,
}

/// A JavaScript callback as a transcript: called with each chunk (read, and sent if asked).
struct JsTranscript {
    callback: ThreadsafeFunction<Buffer, (), Buffer, napi::Status, false, true>,
    with_sent: bool,
}

impl Transcript for JsTranscript {
    fn received(&self, bytes: &[u8]) {
        self.callback.call(
            Buffer::from(bytes.to_vec()),
            ThreadsafeFunctionCallMode::NonBlocking,
        );
    }

    fn sent(&self, bytes: &[u8]) {
        if self.with_sent {
            self.received(bytes);
        }
    }
}

#[napi]
impl Console {
    /// Type `command` and Enter; resolves to the output between its echo and the next prompt
    /// (`--More--` pagers are answered with a space and taken out). Without `prompt`, the prompt
    /// is learnt from the console the first time. Rejects with `TimeoutError` (showing the last
    /// output) when no prompt came within `timeoutMs`.
    #[napi]
    pub async fn send_command(
        &self,
        command: String,
        options: Option<SendCommandOptions>,
    ) -> Result<String> {
        let options = options.unwrap_or_default();
        let mut opts = CommandOptions::new().timeout(duration_ms(
            options.timeout_ms.unwrap_or(30_000.0),
            "sendCommand timeoutMs",
        )?);
        if let Some(prompt) = &options.prompt {
            opts = opts.prompt(pattern(prompt, false)?);
        }
        self.inner
            .send_command(&command, &opts)
            .await
            .map_err(to_napi)
    }

    /// Type an empty line and learn the prompt (the last line of the answer, trimmed);
    /// `sendCommand` uses it from then on. Default `timeoutMs` 10000.
    #[napi]
    pub async fn find_prompt(&self, timeout_ms: Option<f64>) -> Result<String> {
        let timeout = duration_ms(timeout_ms.unwrap_or(10_000.0), "findPrompt timeoutMs")?;
        self.inner.find_prompt(timeout).await.map_err(to_napi)
    }

    /// Call `callback` with every chunk read from now on (and every chunk sent, with `sent`);
    /// `null` stops it. `open(url, { logfile: stream })` uses this to write to a stream. The
    /// callback does not keep Node running.
    #[napi(ts_args_type = "callback: ((data: Buffer) => void) | null, sent?: boolean")]
    pub fn set_transcript(
        &self,
        callback: Option<Function<Buffer, ()>>,
        sent: Option<bool>,
    ) -> Result<()> {
        let transcript: Option<Arc<dyn Transcript>> = match callback {
            Some(callback) => {
                let callback = callback
                    .build_threadsafe_function::<Buffer>()
                    .callee_handled::<false>()
                    .weak::<true>()
                    .build()?;
                Some(Arc::new(JsTranscript {
                    callback,
                    with_sent: sent.unwrap_or(false),
                }))
            }
            None => None,
        };
        self.inner.set_transcript(transcript);
        Ok(())
    }
}

#[napi]
impl Console {
    /// Hand the terminal to the console until the escape (`escape` then `.`; default `^Ec`, so
    /// `^Ec.`), as pexpect's `interact()`: raw mode, keys in, output out, the terminal restored.
    /// Do not read `process.stdin` meanwhile.
    #[napi]
    pub async fn interact(&self, escape: Option<String>) -> Result<()> {
        let escape = mo_core::escape::EscapeConfig::parse(escape.as_deref().unwrap_or("^Ec"))
            .map_err(to_napi)?;
        mo_drivers::terminal::interact(&self.inner, escape)
            .await
            .map_err(to_napi)
    }
}
