//! [`ConsoleHandle::send_command`] and [`ConsoleHandle::find_prompt`]: a command's output at a
//! prompt, the I/O side of [`crate::automation::command`].

use std::time::Duration;

use tokio::time::Instant;

use super::{ConsoleHandle, ExpectState, Output};
use crate::automation::ExpectPattern;
use crate::automation::command::{
    CommandOutput, DEFAULT_PAGER, PAGER_ANSWER, prompt_from_output, prompt_pattern,
};
use crate::error::{Error, Result};

/// Output must pause this long before [`ConsoleHandle::find_prompt`] takes its last line as
/// the prompt.
const PROMPT_QUIET: Duration = Duration::from_millis(300);

/// How [`ConsoleHandle::send_command`] runs a command.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CommandOptions {
    /// What ends the output (default: the prompt learnt with [`ConsoleHandle::find_prompt`]
    /// the first time, then kept).
    pub prompt: Option<ExpectPattern>,
    /// The longest wait for the prompt (and for learning it), in all (default 30 s).
    pub timeout: Duration,
    /// Pager prompts answered with a space and taken out of the output (default
    /// [`DEFAULT_PAGER`]).
    pub pagers: Vec<ExpectPattern>,
}

impl Default for CommandOptions {
    fn default() -> Self {
        CommandOptions {
            prompt: None,
            timeout: Duration::from_secs(30),
            pagers: ExpectPattern::regex(DEFAULT_PAGER).into_iter().collect(),
        }
    }
}

impl CommandOptions {
    /// The defaults: a learnt prompt, 30 s, the common pagers.
    pub fn new() -> CommandOptions {
        CommandOptions::default()
    }

    /// End the output at `prompt` instead of a learnt prompt.
    pub fn prompt(mut self, prompt: ExpectPattern) -> Self {
        self.prompt = Some(prompt);
        self
    }

    /// Wait at most `timeout` for the prompt.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Answer these pager prompts instead of the common ones (none: answer no pager).
    pub fn pagers(mut self, pagers: Vec<ExpectPattern>) -> Self {
        self.pagers = pagers;
        self
    }
}

impl ConsoleHandle {
    /// Type `command` and Enter and return its output: the text after the command's echo up to
    /// the next prompt, without either, as Netmiko's `send_command` does. Pager prompts met on the
    /// way (`--More--`, see [`CommandOptions::pagers`]) are answered with a space and taken out
    /// with their erase sequences. Output already waiting is dropped first.
    ///
    /// Without [`CommandOptions::prompt`], the prompt is learnt the first time
    /// ([`ConsoleHandle::find_prompt`]) and kept: call `find_prompt` again after a command
    /// that changes it. Fails with [`Error::Timeout`] when no prompt came within
    /// [`CommandOptions::timeout`] (the error shows the last output).
    pub async fn send_command(&self, command: &str, options: &CommandOptions) -> Result<String> {
        let deadline = Instant::now() + options.timeout;
        let prompt = match &options.prompt {
            Some(prompt) => prompt.clone(),
            None => {
                let known = self.prompt.lock().ok().and_then(|p| p.clone());
                let prompt = match known {
                    Some(prompt) => prompt,
                    None => self.find_prompt(options.timeout).await?,
                };
                prompt_pattern(&prompt)?
            }
        };
        let mut patterns = vec![prompt];
        patterns.extend(options.pagers.iter().cloned());
        let mut state = self.expect.lock().await;
        self.drop_waiting(&mut state).await;
        self.send_line(command).await?;
        let mut output = CommandOutput::new();
        loop {
            let m = self
                .expect_locked(&mut state, &patterns, deadline, options.timeout)
                .await?;
            if m.index == 0 {
                output.push(&m.before);
                return Ok(output.finish(command));
            }
            output.page(&m.before, &m.matched);
            self.write(PAGER_ANSWER).await?;
        }
    }

    /// Learn the console's prompt: type an empty line, wait until the output pauses, and take its
    /// last line with text (without the spaces around it). [`ConsoleHandle::send_command`] uses
    /// it from then on. Fails with [`Error::Timeout`] when nothing with text came within
    /// `timeout`.
    pub async fn find_prompt(&self, timeout: Duration) -> Result<String> {
        let deadline = Instant::now() + timeout;
        let mut state = self.expect.lock().await;
        self.drop_waiting(&mut state).await;
        let line_end = self.line_end.clone();
        self.write(&line_end).await?;
        loop {
            let quiet = (Instant::now() + PROMPT_QUIET).min(deadline);
            match tokio::time::timeout_at(quiet, self.read()).await {
                Ok(Output::Data(bytes)) => state.text.feed(&bytes),
                Ok(Output::Missed(bytes)) => state.missed += bytes,
                Ok(Output::Notice(_)) => {}
                Ok(Output::Closed(_)) => {
                    return Err(Error::ConsoleGone {
                        device: self.device().to_string(),
                    });
                }
                Err(_) => {
                    if let Some(prompt) = prompt_from_output(state.text.buffer()) {
                        let prompt = prompt.to_string();
                        state.text.clear();
                        if let Ok(mut known) = self.prompt.lock() {
                            *known = Some(prompt.clone());
                        }
                        return Ok(prompt);
                    }
                    if Instant::now() >= deadline {
                        return Err(Error::Timeout {
                            what: format!("{}: waiting for a prompt", self.device()),
                            after: timeout,
                        });
                    }
                }
            }
        }
    }

    /// Read what is already waiting and forget it with the unconsumed expect text.
    async fn drop_waiting(&self, state: &mut ExpectState) {
        while let Ok(item) = tokio::time::timeout(Duration::ZERO, self.read()).await {
            match item {
                Output::Missed(bytes) => state.missed += bytes,
                Output::Closed(_) => break,
                Output::Data(_) | Output::Notice(_) => {}
            }
        }
        state.text.clear();
    }
}
