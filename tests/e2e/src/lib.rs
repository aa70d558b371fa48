//! End-to-end tests of mo. The tests live in `tests/*.rs`, one file per scenario; each drives the
//! real OpenSSH client (inside tmux when a terminal is needed) against the `mod` daemon, with
//! devices on socat pty pairs and `exec://` programs, and checks the record log with `mo`.
//!
//! They run the built binaries, so build the workspace first — `./scripts/test.sh` does both:
//!
//! ```text
//! cargo build -p mo-daemon -p mo-cli
//! cargo test -p mo-e2e --test serial_console
//! ```
//!
//! The helpers (peers, daemon, terminals, failure reports) are in the `mo-testsupport` crate.
