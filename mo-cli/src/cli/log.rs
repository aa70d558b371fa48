//! `mo log …`: reading, following, searching, verifying and exporting record logs.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::values::{parse_fraction_days, parse_mib, parse_size};

/// `mo log …`
#[derive(Debug, Subcommand)]
pub enum LogCommand {
    /// Print a device's record log as text, one timestamp per line.
    ///
    /// Output lines show the device's text (ANSI sequences removed); input appears as
    /// `<user> typed text`; notices, notes and events in brackets. TIME is `now`, a duration ago
    /// (`90s`, `10m`, `2h`, `1d`, `1w`, `1h30m`), an RFC 3339 time (`2026-11-22T10:00:00Z`), or a
    /// UTC date or date and time (`2026-11-22`, `2026-11-22 10:00`).
    #[command(after_help = "Examples:\n  \
        mo log show web01\n  \
        mo log show web01 --since 2h --until 1h\n  \
        mo log show web01 --since 2026-11-22T10:00:00Z --kind input --kind notice\n  \
        mo log show web01 --follow")]
    Show {
        /// The device (its log stays readable after `mo device rm`).
        name: String,
        /// Which records.
        #[command(flatten)]
        filter: LogFilter,
        /// Keep printing records as they are written (Ctrl-C stops). Without --since or --seq
        /// it starts with the last 10 records.
        #[arg(short, long, conflicts_with = "around")]
        follow: bool,
        /// Only the last N records (with --server: the last N lines).
        #[arg(long, value_name = "N", conflicts_with = "around")]
        tail: Option<usize>,
        /// Show the log around the record with this sequence number (a note from
        /// `mo log notes`): --context lines before and after it.
        #[arg(long, value_name = "SEQ")]
        around: Option<u64>,
        /// Lines shown before and after the record with --around.
        #[arg(long, value_name = "N", default_value_t = 20, requires = "around")]
        context: usize,
    },
    /// Print the last records of a device's log, optionally following new ones.
    #[command(
        after_help = "Examples:\n  mo log tail web01\n  mo log tail web01 --tail 50 --follow"
    )]
    Tail {
        /// The device.
        name: String,
        /// How many records (one output record may hold several lines); `--records` is the
        /// old spelling.
        #[arg(short = 'n', long = "tail", alias = "records", value_name = "N",
            default_value_t = crate::log::DEFAULT_TAIL)]
        lines: usize,
        /// Keep printing records as they are written (Ctrl-C stops).
        #[arg(short, long)]
        follow: bool,
        /// Which records.
        #[command(flatten)]
        filter: LogFilter,
    },
    /// Check a device's log for damage or tampering (checksums, hash chain, sequence numbers).
    ///
    /// Prints a report. Exit status 0: intact (a torn final record left by a crash is only a
    /// warning); 1: problems found, or the log could not be read.
    #[command(after_help = "Example:\n  mo log verify web01 || echo 'web01 log damaged'")]
    Verify {
        /// The device.
        name: String,
        /// Print the report as JSON (ok, records, segments, problems, warnings).
        #[arg(long)]
        json: bool,
        /// Compare the copies of the log on every node of the site the daemon at --server is in
        /// (`mod --cluster … --share-devices`); names each divergence (node, device, record).
        #[arg(long)]
        replicas: bool,
    },
    /// Show how much each record log holds and what retention would remove now.
    ///
    /// Per device: segment files, bytes on disk, the oldest and newest record, the retention in
    /// force (the device's own --retain-days/--retain-gib, else the defaults given here, which
    /// should be the daemon's), and the closed segments that retention would delete now. Nothing
    /// is deleted. Without DEVICE, every log in the data directory (also of removed devices).
    #[command(after_help = "Examples:\n  \
        mo log usage\n  \
        mo log usage web01 db01 --json\n  \
        mo log usage --retain-days 90 --retain-gib 50   # as with mod --retain-days 90 --retain-gib 50")]
    Usage {
        /// The devices (default: every log in the data directory).
        names: Vec<String>,
        /// Assume the daemon's default age limit is N days (fractions allowed).
        #[arg(long, value_name = "N", value_parser = parse_fraction_days)]
        retain_days: Option<std::time::Duration>,
        /// Assume the daemon's default size limit is this many GiB (fractions allowed).
        #[arg(long, value_name = "GIB", value_parser = parse_size)]
        retain_gib: Option<mo_store::RetainSize>,
        /// The same size limit in MiB.
        #[arg(long, value_name = "MIB", value_parser = parse_mib, conflicts_with = "retain_gib")]
        retain_mib: Option<mo_store::RetainSize>,
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Search a device's log for a regular expression, with context lines like grep.
    ///
    /// The pattern (Rust regex syntax) is matched against each rendered line's text after its
    /// timestamp — what `mo log show` prints: device output with ANSI sequences removed and lines
    /// joined across records and segments, `<user> typed text`, `[note user] text`. `^` and `$`
    /// match at the line's ends. Groups of lines that are not adjacent are separated by `--`.
    /// Exit status 0: something matched; 1: nothing matched, or an error (with a message).
    #[command(after_help = "Examples:\n  \
        mo log search web01 'Kernel panic' -C 3\n  \
        mo log search web01 '^login:' --since 1d -i\n  \
        mo log search web01 '^<alice> ' --since 2026-11-22 --until 2026-11-23")]
    Search {
        /// The device.
        name: String,
        /// The regular expression.
        regex: String,
        /// Lines of context before each match.
        #[arg(short = 'B', long, value_name = "N")]
        before: Option<usize>,
        /// Lines of context after each match.
        #[arg(short = 'A', long, value_name = "N")]
        after: Option<usize>,
        /// Lines of context before and after (-B and -A override it).
        #[arg(short = 'C', long, value_name = "N")]
        context: Option<usize>,
        /// Match letters regardless of case.
        #[arg(short = 'i', long)]
        ignore_case: bool,
        /// Only records at or after TIME.
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// Only records before TIME.
        #[arg(long, value_name = "TIME")]
        until: Option<String>,
        /// Print a JSON array of lines (time, line, user) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Export a device's log as an asciicast v2 recording (`asciinema play FILE`).
    ///
    /// Output becomes "o" events, keystrokes "i" events; before the "i" events of each new typist
    /// comes a marker `[t, "m", "input USER"]`. Notes, marks and notices become markers too.
    #[command(after_help = "Examples:\n  \
        mo log export web01 --asciicast -o web01.cast\n  \
        mo log export web01 --asciicast --since 1h | asciinema play -")]
    Export {
        /// The device.
        name: String,
        /// Write asciicast v2 (the only format, required).
        #[arg(long, required = true)]
        asciicast: bool,
        /// Only records at or after TIME.
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// Only records before TIME.
        #[arg(long, value_name = "TIME")]
        until: Option<String>,
        /// Terminal width in the header.
        #[arg(long, value_name = "COLS", default_value_t = 80)]
        width: u16,
        /// Terminal height in the header.
        #[arg(long, value_name = "ROWS", default_value_t = 24)]
        height: u16,
        /// Write to FILE instead of standard output.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Write a note into a device's log (signed by --user, default $USER).
    ///
    /// Only one process may write a log: this is refused while the daemon runs the console —
    /// write the note from a session with the escape `note` instead.
    #[command(after_help = "Example:\n  mo log note web01 'replaced the PSU, rebooting'")]
    Note {
        /// The device.
        name: String,
        /// The note.
        text: String,
        /// Who wrote it.
        #[arg(long, value_name = "USER", env = "USER", default_value = "admin")]
        user: String,
    },
    /// List the notes and marks in a device's log with their sequence numbers.
    #[command(after_help = "Examples:\n  mo log notes web01\n  mo log show web01 --around 1234")]
    Notes {
        /// The device.
        name: String,
        /// Only notes at or after TIME.
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// Only notes before TIME.
        #[arg(long, value_name = "TIME")]
        until: Option<String>,
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// Record selection shared by `mo log show` and `mo log tail`.
#[derive(Debug, Args)]
pub struct LogFilter {
    /// Only records at or after TIME.
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only records before TIME.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Only records from sequence number SEQ on.
    #[arg(long, value_name = "SEQ")]
    pub seq: Option<u64>,
    /// Only records of this kind: output, input, notice, event, power, mark, note, control.
    /// Repeatable.
    #[arg(long, value_name = "KIND")]
    pub kind: Vec<String>,
}
