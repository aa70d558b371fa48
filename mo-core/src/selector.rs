//! Device selectors: the words every command takes to name devices — a name, a glob
//! ([`crate::glob`]: `web-*`, `rack[12]-?`) or `@GROUP` (a device group) — and the one expansion
//! of them, used by the CLI, the SSH shell and the API alike (docs/cli.md, "Naming devices").
//!
//! Devices come out in the order of the selectors, each once; within one selector in the order
//! of the device list. A selector that names no device is an error, so a typo is not a silent
//! no-op.
//!
//! ```
//! use mo_core::selector::select;
//!
//! let devices = ["web-1", "web-2", "db-1"];
//! let in_group = |group: &str| {
//!     let group = group.to_string();
//!     Ok(move |device: &str| group == "db" && device.starts_with("db"))
//! };
//! let picked = select(&["@db", "web-*", "db-1"], &devices, in_group)?;
//! assert_eq!(picked, ["db-1", "web-1", "web-2"]);
//! assert!(select(&["ghost"], &devices, in_group).is_err());
//! # Ok::<(), mo_core::Error>(())
//! ```

use crate::error::{Error, Result};
use crate::glob::glob_match;

/// One device selector, as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selector<'a> {
    /// `@GROUP`: the members of a device group.
    Group(&'a str),
    /// A device name or a glob of names.
    Name(&'a str),
}

impl<'a> Selector<'a> {
    /// Read one selector: `@NAME` is a group, anything else a name or glob.
    pub fn parse(text: &'a str) -> Selector<'a> {
        match text.strip_prefix('@') {
            Some(group) => Selector::Group(group),
            None => Selector::Name(text),
        }
    }

    /// Whether the selector may stand for more than one device (a group or a glob).
    pub fn is_many(self) -> bool {
        match self {
            Selector::Group(_) => true,
            Selector::Name(name) => crate::glob::has_wildcards(name),
        }
    }
}

/// Whether any of `selectors` may stand for more than one device (then the device list has to
/// be read to expand them).
pub fn any_many<S: AsRef<str>>(selectors: &[S]) -> bool {
    selectors
        .iter()
        .any(|s| Selector::parse(s.as_ref()).is_many())
}

/// The `devices` named by `selectors` (see the [module documentation](self)). `group(NAME)`
/// gives the membership test of the device group NAME, or its error (an unknown group).
///
/// Errors: [`Error::NotFound`] naming the first selector that matched nothing, or the error of
/// `group`.
pub fn select<'d, S, G, M>(
    selectors: &[S],
    devices: &[&'d str],
    mut group: G,
) -> Result<Vec<&'d str>>
where
    S: AsRef<str>,
    G: FnMut(&str) -> Result<M>,
    M: Fn(&str) -> bool,
{
    let mut out: Vec<&'d str> = Vec::new();
    for text in selectors {
        let text = text.as_ref();
        let matched: Vec<&'d str> = match Selector::parse(text) {
            Selector::Group(name) => {
                let contains = group(name)?;
                devices.iter().copied().filter(|d| contains(d)).collect()
            }
            Selector::Name(pattern) => devices
                .iter()
                .copied()
                .filter(|d| glob_match(pattern, d))
                .collect(),
        };
        if matched.is_empty() {
            return Err(Error::NotFound {
                what: match Selector::parse(text) {
                    Selector::Group(name) => {
                        format!("device group `{name}` has no device you can see")
                    }
                    Selector::Name(_) if Selector::parse(text).is_many() => {
                        format!("no device matches `{text}`")
                    }
                    Selector::Name(_) => format!("unknown device `{text}`"),
                },
            });
        }
        for device in matched {
            if !out.contains(&device) {
                out.push(device);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const DEVICES: [&str; 5] = ["web-1", "web-2", "db-1", "rack[1]", "web-10"];

    fn groups(name: &str) -> Result<impl Fn(&str) -> bool + use<>> {
        let members: &'static [&'static str] = match name {
            "web" => &["web-2", "web-1"],
            "empty" => &[],
            "ghosts" => &["nowhere"],
            _ => {
                return Err(Error::NotFound {
                    what: format!("unknown device group `{name}`"),
                });
            }
        };
        Ok(move |d: &str| members.contains(&d))
    }

    fn pick(selectors: &[&str]) -> Result<Vec<&'static str>> {
        select(selectors, &DEVICES, groups)
    }

    #[test]
    fn names_globs_and_groups_in_order_each_once() {
        assert_eq!(pick(&["db-1"]).unwrap(), ["db-1"]);
        assert_eq!(pick(&["web-?"]).unwrap(), ["web-1", "web-2"]);
        assert_eq!(pick(&["web-*"]).unwrap(), ["web-1", "web-2", "web-10"]);
        assert_eq!(
            pick(&["db-1", "@web", "web-*"]).unwrap(),
            ["db-1", "web-1", "web-2", "web-10"]
        );
        assert_eq!(pick(&["rack\\[1\\]"]).unwrap(), ["rack[1]"]);
        // Not a valid glob (unclosed `[`): only the name spelled like it.
        assert!(pick(&["rack[1"]).is_err());
    }

    #[test]
    fn a_selector_naming_nothing_is_an_error_that_names_it() {
        let e = pick(&["web-1", "ghost"]).unwrap_err().to_string();
        assert_eq!(e, "unknown device `ghost`");
        let e = pick(&["x*"]).unwrap_err().to_string();
        assert_eq!(e, "no device matches `x*`");
        let e = pick(&["@empty"]).unwrap_err().to_string();
        assert_eq!(e, "device group `empty` has no device you can see");
        let e = pick(&["@ghosts"]).unwrap_err().to_string();
        assert!(e.contains("`ghosts`"), "{e}");
        let e = pick(&["@nope"]).unwrap_err().to_string();
        assert_eq!(e, "unknown device group `nope`");
    }

    #[test]
    fn which_selectors_stand_for_many() {
        assert!(any_many(&["web-1", "@web"]));
        assert!(any_many(&["web-*"]));
        assert!(!any_many(&["web-1", "db-1"]));
        assert_eq!(Selector::parse("@x"), Selector::Group("x"));
        assert_eq!(Selector::parse("x"), Selector::Name("x"));
    }
}
