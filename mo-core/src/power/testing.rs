//! An in-memory [`PowerController`] that records what it was asked, for the orchestration tests.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use super::{PowerAction, PowerCapabilities, PowerController, PowerState};
use crate::error::{Error, Result};

/// A shared log of `name:action` lines with the (tokio) time they happened.
pub type Log = Arc<Mutex<Vec<(tokio::time::Instant, String)>>>;

/// A controller that records its calls and keeps a state.
#[derive(Debug)]
pub struct Recorder {
    address: String,
    name: String,
    log: Log,
    caps: PowerCapabilities,
    state: Mutex<PowerState>,
    fail: Mutex<Option<String>>,
    delay: Mutex<Duration>,
}

#[allow(clippy::unwrap_used)]
impl Recorder {
    pub fn log() -> Log {
        Arc::new(Mutex::new(Vec::new()))
    }

    pub fn new(name: &str, log: &Log, caps: PowerCapabilities) -> Arc<Recorder> {
        Arc::new(Recorder {
            address: format!("test://{name}"),
            name: name.to_owned(),
            log: Arc::clone(log),
            caps,
            state: Mutex::new(PowerState::Off),
            fail: Mutex::new(None),
            delay: Mutex::new(Duration::ZERO),
        })
    }

    pub fn events(log: &Log) -> Vec<String> {
        log.lock().unwrap().iter().map(|(_, e)| e.clone()).collect()
    }

    pub fn set_state(&self, state: PowerState) {
        *self.state.lock().unwrap() = state;
    }

    pub fn fail_with(&self, reason: &str) {
        *self.fail.lock().unwrap() = Some(reason.to_owned());
    }

    pub fn take(&self, delay: Duration) {
        *self.delay.lock().unwrap() = delay;
    }
}

#[async_trait]
#[allow(clippy::unwrap_used)]
impl PowerController for Recorder {
    fn address(&self) -> &str {
        &self.address
    }

    fn capabilities(&self) -> PowerCapabilities {
        self.caps
    }

    async fn status(&self) -> Result<PowerState> {
        Ok(*self.state.lock().unwrap())
    }

    async fn perform(&self, action: PowerAction) -> Result<()> {
        let now = tokio::time::Instant::now();
        self.log
            .lock()
            .unwrap()
            .push((now, format!("{}:{action}", self.name)));
        let delay = *self.delay.lock().unwrap();
        tokio::time::sleep(delay).await;
        if let Some(reason) = self.fail.lock().unwrap().clone() {
            return Err(Error::Protocol {
                peer: self.address.clone(),
                reason,
            });
        }
        if let Some(state) = action.target_state() {
            self.set_state(state);
        }
        Ok(())
    }
}
