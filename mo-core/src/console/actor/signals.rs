//! DTR and RTS: set by a viewer holding write access, or by a user outside the console (the
//! REST API, the SSH shell) while the write lock is free or held by that user.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;

use super::Actor;
use crate::console::ViewerId;
use crate::error::{Error, Result};
use crate::link::Signal;
use crate::record::RecordKind;

impl Actor {
    /// Raise, drop or (`to` is `None`) toggle DTR or RTS for viewer `id`, who must be able to
    /// write; recorded in the log with the user.
    pub(super) fn set_signal(
        &mut self,
        id: ViewerId,
        line: Signal,
        to: Option<bool>,
    ) -> Result<String> {
        self.check_modem_lines(line)?;
        let user = self.sharing.writer(id, "setting a modem line")?;
        self.apply_signal(user, line, to)
    }

    /// [`Actor::set_signal`] for `user` without a viewer: allowed while the write lock is free,
    /// or when one of `user`'s own viewers holds it (or writes joined to it).
    pub(super) fn set_signal_as(
        &mut self,
        user: Arc<str>,
        line: Signal,
        to: Option<bool>,
    ) -> Result<String> {
        self.check_modem_lines(line)?;
        self.sharing.may_write_as(&user, "setting a modem line")?;
        self.apply_signal(user, line, to)
    }

    fn check_modem_lines(&self, line: Signal) -> Result<()> {
        if self.link.connector().capabilities().modem_lines {
            Ok(())
        } else {
            Err(Error::Unsupported {
                operation: line.op(true).name(),
                what: self.link.address(),
            })
        }
    }

    fn apply_signal(&mut self, user: Arc<str>, line: Signal, to: Option<bool>) -> Result<String> {
        let Some(control) = self.link.control.clone() else {
            return Err(self.down_error());
        };
        if let Some(e) = self.hub.strict_refuses() {
            return Err(e);
        }
        let on = to.unwrap_or(!self.lines.borrow().level(line));
        self.lines
            .send_modify(|l| l.set(line, on, SystemTime::now()));
        let text = format!(
            "{} {} by {user}",
            line.name(),
            if on { "raised" } else { "dropped" }
        );
        let _ = self
            .hub
            .emit(RecordKind::Control, user, Bytes::from(text.clone()));
        let name = self.name.clone();
        tokio::spawn(async move {
            if let Err(e) = control.control(line.op(on)).await {
                tracing::warn!(device = %name, error = %e, "setting {} failed", line.name());
            }
        });
        Ok(text)
    }
}
