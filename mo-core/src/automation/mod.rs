//! Automation on consoles: expect, where a device is, gang sessions and listen, macros, and the
//! scheduler.
//!
//! - [`expect`]: [`Expecter`] waits for patterns in a session's ANSI-stripped output, sends lines,
//!   and wakes a console until a prompt shows.
//! - [`command`]: the text side of `send_command` (prompt learning, pager pages, echo removal).
//! - [`classify()`]: where a device is (firmware, boot loader, login, shell, pager, …), with ready
//!   patterns for common prompts.
//! - [`gang`]: [`Gang`] types into many consoles at once and compares their answers; [`Listen`]
//!   merges many consoles' output read-only; [`TaggedLines`] turns it into lines tagged with
//!   their device.
//! - [`macros`]: a text format of steps (send, expect, wait, break, parameters), a recorder that
//!   turns a live session into a macro, and a player for one device or many in parallel.
//! - [`schedule`]: cron jobs (croner) that run macros, with next-run times and missed runs.
//!
//! ```
//! use mo_core::automation::macros::Macro;
//!
//! let m = Macro::parse("param user root\nexpect /login: $/ timeout=30s\nsendline ${user}\n")?;
//! assert_eq!(m.steps().len(), 2);
//! let plan = m.bind(&[])?;
//! assert_eq!(plan.describe()[1], "line 3: sendline \"root\"");
//! # Ok::<(), mo_core::Error>(())
//! ```

pub mod classify;
pub mod command;
pub mod expect;
pub mod gang;
pub mod macros;
pub mod schedule;
pub mod tagged;

pub use classify::{Classifier, Location, classify};
pub use expect::{ExpectBuffer, ExpectMatch, ExpectPattern, Expecter};
pub use gang::{CollectOptions, CommandReport, Gang, GangEvent, GangEventKind, Listen, Refusal};
pub use macros::{Macro, Plan, PlayOptions, Recorder, Report};
pub use schedule::{Job, MissedRun, Scheduler};
pub use tagged::TaggedLines;
