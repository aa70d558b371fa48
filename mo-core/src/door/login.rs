//! SSH login names: `user`, or `user:DEVICE[:MODE]` to attach at once (the console-server
//! convention: `ssh alice:web01:spy@host`).

use super::BadInput;
use crate::console::Mode;

/// Who logs in and what they asked for in the user name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    /// The mo user.
    pub user: String,
    /// `user:DEVICE[:mode]`: attach to this device at once.
    pub device: Option<String>,
    /// The mode asked for with the device.
    pub mode: Mode,
}

impl Login {
    /// Split an SSH user name `user[:device[:spy|attach|force|join]]` (`rw` and `ro` too). The
    /// error is the message for the client.
    pub fn parse(name: &str) -> Result<Login, BadInput> {
        Self::parse_name(name).map_err(|reason| BadInput {
            what: "an SSH login name",
            reason,
        })
    }

    fn parse_name(name: &str) -> Result<Login, String> {
        let mut parts = name.splitn(3, ':');
        let user = parts.next().unwrap_or_default().to_string();
        let device = parts.next().map(str::to_string);
        let mode = match parts.next() {
            None => Mode::Attach,
            Some(word) => Mode::by_name(word).ok_or_else(|| {
                format!("unknown mode `{word}` in `{name}` (use spy, attach, force or join)")
            })?,
        };
        if user.is_empty() || device.as_deref() == Some("") {
            return Err(format!(
                "bad login name `{name}` (use user or user:device[:spy])"
            ));
        }
        Ok(Login { user, device, mode })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_names() {
        let l = Login::parse("alice").ok();
        assert_eq!(l.map(|l| (l.user, l.device)), Some(("alice".into(), None)));
        let l = Login::parse("alice:web01:spy").ok();
        assert_eq!(
            l.map(|l| (l.device, l.mode)),
            Some((Some("web01".into()), Mode::Spy))
        );
        let l = Login::parse("bob:db1").ok();
        assert_eq!(l.map(|l| l.mode), Some(Mode::Attach));
        assert_eq!(
            Login::parse("bob:db1:ro").ok().map(|l| l.mode),
            Some(Mode::Spy)
        );
        assert!(
            Login::parse("bob:db1:nap").is_err_and(|e| e.reason.contains("unknown mode `nap`"))
        );
        assert!(Login::parse(":db1").is_err());
        assert!(Login::parse("bob:").is_err());
        // A third `:` belongs to the mode word, which then is unknown.
        assert!(Login::parse("bob:db1:spy:x").is_err());
    }
}
