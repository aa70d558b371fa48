//! `mo device …`: the device commands and their settings.

use clap::{Args, Subcommand};

use super::values::{
    parse_break, parse_days, parse_days_change, parse_mib, parse_node, parse_node_change,
    parse_policy, parse_size, parse_size_change,
};

/// `mo device …`
#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
    /// Add a device.
    ///
    /// The URL says how to reach the console: serial:///dev/ttyS0?baud=115200,
    /// telnet://cs1:7001, rfc2217://cs1:7001, tcp://cs1:4001, ssh://admin@10.0.0.5,
    /// exec:///usr/bin/cmd?arg=..., unix:///run/x.sock, sim://name. The daemon checks the
    /// driver-specific parts when it connects.
    #[command(after_help = "Examples:\n  \
        mo device add web01 serial:///dev/ttyS0?baud=115200\n  \
        mo device add lab sim://lab --on-demand --replay-lines 100\n  \
        mo device add sun1 telnet://cs1:7001 --escape '^]q' --break '2=\\r~^b' --no-join")]
    Add {
        /// Device name: letters, digits, `.`, `_`, `-`; 1–64 characters; not starting with `.` or `-`.
        name: String,
        /// Access URL.
        url: String,
        /// Settings.
        #[command(flatten)]
        settings: AddSettings,
    },
    /// Change a device's URL or settings; options not given stay as they are.
    #[command(after_help = "Examples:\n  \
        mo device set web01 --url serial:///dev/ttyS1?baud=9600\n  \
        mo device set web01 --always-connected --join\n  \
        mo device set web01 --break '3=#.' --clear-break 2 --description ''\n  \
        mo device set web01 --log-policy strict --retain-days 90 --retain-gib 20\n  \
        mo device set web01 --retain-days none --retain-gib none")]
    Set {
        /// The device to change.
        name: String,
        /// Settings to change.
        #[command(flatten)]
        settings: SetSettings,
    },
    /// List devices as a table, or as JSON.
    List {
        /// Print a JSON array of devices instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show every setting of one device.
    Show {
        /// The device.
        name: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Raise, drop or toggle DTR and RTS of a console whose link has modem lines (serial,
    /// rfc2217, agent ports) through the daemon (needs --server); needs `break` and the write
    /// lock free or yours. The device's answer (DSR, CTS, …) shows in `mo device show`.
    Signal(crate::signal::SignalArgs),
    /// Remove a device. Its record log stays on disk.
    #[command(alias = "remove")]
    Rm {
        /// The device.
        name: String,
    },
}

/// Settings for `mo device add`.
#[derive(Debug, Args)]
pub struct AddSettings {
    /// Connect only while someone is attached, instead of always.
    #[arg(long)]
    pub on_demand: bool,
    /// Lines of recent output replayed to a viewer on connect.
    #[arg(long, value_name = "N", default_value_t = mo_store::DEFAULT_REPLAY_LINES)]
    pub replay_lines: u32,
    /// Allow only one writer at a time (no `join`).
    #[arg(long)]
    pub no_join: bool,
    /// Escape sequence in conserver notation: `^Ec` is Ctrl-E then c (the default).
    #[arg(long, value_name = "SEQ")]
    pub escape: Option<String>,
    /// Break sequence N (1–9) in conserver notation, e.g. `1=\z` (BREAK), `2=\r~^b`, `3=#.`.
    /// Repeat for several; they override the defaults of the same number.
    #[arg(long = "break", value_name = "N=SEQ", value_parser = parse_break)]
    pub breaks: Vec<(u8, String)>,
    /// Free text shown in listings.
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,
    /// Auto-login on every (re)connect: a profile (`linux`, `cli`) or a script file of
    /// expect/send/secret lines (`@FILE`). The password is the device secret `password`.
    #[arg(long, value_name = "PROFILE|@FILE", requires = "login_user")]
    pub login: Option<String>,
    /// The user name auto-login types.
    #[arg(long, value_name = "USER")]
    pub login_user: Option<String>,
    /// Accept an SSH device's host key the first time it is seen (a changed key is still refused).
    #[arg(long)]
    pub trust_host_key: bool,
    /// A power controller feeding the device (`snmp://pdu1/apc/3`, `ipmi://admin@bmc1`,
    /// `redfish://admin@bmc1/Systems/1`); repeat for dual supplies.
    #[arg(long, value_name = "URL")]
    pub power: Vec<String>,
    /// While the record log cannot write (full disk, I/O error): `degrade` (the default) lets
    /// input through and records the gap; `strict` refuses input until the log records again.
    #[arg(long, value_name = "POLICY", value_parser = parse_policy)]
    pub log_policy: Option<mo_store::LogPolicy>,
    /// Keep the record log's closed segments for N days (default: the daemon's --retain-days).
    #[arg(long, value_name = "N", value_parser = parse_days)]
    pub retain_days: Option<u32>,
    /// Keep at most this many GiB of the record log, oldest closed segments first (fractions
    /// allowed: 0.5 = 512 MiB; default: the daemon's --retain-gib).
    #[arg(long, value_name = "GIB", value_parser = parse_size)]
    pub retain_gib: Option<mo_store::RetainSize>,
    /// The same limit in MiB (instead of --retain-gib).
    #[arg(long, value_name = "MIB", value_parser = parse_mib, conflicts_with = "retain_gib")]
    pub retain_mib: Option<mo_store::RetainSize>,
    /// Record input typed at password prompts as typed (default: `<redacted N bytes>`).
    #[arg(long)]
    pub log_secrets: bool,
    /// Serve the console on its own TCP port: `ADDR:PORT[/raw|/telnet|/telnet+login|/rfc2217]`
    /// (raw by default), `,spy` after the mode for read-only connections; repeat for several.
    /// Ports without a login bind loopback only unless --listen-allow names the networks that
    /// may connect (docs/listen-ports.md).
    #[arg(long, value_name = "ADDR:PORT[/MODE][,spy]")]
    pub listen: Vec<String>,
    /// A network (CIDR, e.g. 10.1.0.0/16) that may connect to the device's --listen ports;
    /// repeat for several. Connections from elsewhere are refused and audited.
    #[arg(long, value_name = "CIDR")]
    pub listen_allow: Vec<String>,
    /// In a site (`mod --cluster … --share-devices`): the node that must hold this console (a
    /// local serial port, an agent's link). Without it the site places the console on a live
    /// node and moves it when that node dies (docs/cluster.md).
    #[arg(long, value_name = "NODE", value_parser = parse_node)]
    pub node: Option<String>,
}

/// Settings for `mo device set`.
#[derive(Debug, Clone, Args)]
pub struct SetSettings {
    /// New access URL.
    #[arg(long)]
    pub url: Option<String>,
    /// Connect only while someone is attached.
    #[arg(long, conflicts_with = "always_connected")]
    pub on_demand: bool,
    /// Keep the console connected always (the default mode).
    #[arg(long)]
    pub always_connected: bool,
    /// Lines of recent output replayed to a viewer on connect.
    #[arg(long, value_name = "N")]
    pub replay_lines: Option<u32>,
    /// Allow several writers at once (`join`).
    #[arg(long, conflicts_with = "no_join")]
    pub join: bool,
    /// Allow only one writer at a time.
    #[arg(long)]
    pub no_join: bool,
    /// Escape sequence in conserver notation (`^Ec`).
    #[arg(long, value_name = "SEQ", conflicts_with = "default_escape")]
    pub escape: Option<String>,
    /// Go back to the default escape sequence.
    #[arg(long)]
    pub default_escape: bool,
    /// Set break sequence N (1–9) in conserver notation; repeat for several.
    #[arg(long = "break", value_name = "N=SEQ", value_parser = parse_break)]
    pub breaks: Vec<(u8, String)>,
    /// Drop the device's own break sequence N (the default of that number applies again).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=9))]
    pub clear_break: Vec<u8>,
    /// Free text shown in listings; an empty text removes it.
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,
    /// Auto-login: a profile (`linux`, `cli`) or `@FILE` with a script.
    #[arg(long, value_name = "PROFILE|@FILE", conflicts_with = "no_login")]
    pub login: Option<String>,
    /// The user name auto-login types.
    #[arg(long, value_name = "USER")]
    pub login_user: Option<String>,
    /// Turn auto-login off.
    #[arg(long)]
    pub no_login: bool,
    /// Accept an unknown SSH host key the first time (`--no-trust-host-key` to stop).
    #[arg(long, conflicts_with = "no_trust_host_key")]
    pub trust_host_key: bool,
    /// Refuse unknown SSH host keys (the default).
    #[arg(long)]
    pub no_trust_host_key: bool,
    /// Replace the power controllers with these (repeat for several).
    #[arg(long, value_name = "URL", conflicts_with = "no_power")]
    pub power: Vec<String>,
    /// Remove every power controller.
    #[arg(long)]
    pub no_power: bool,
    /// While the record log cannot write: `degrade` (input goes through, the gap is recorded)
    /// or `strict` (input is refused until the log records again).
    #[arg(long, value_name = "POLICY", value_parser = parse_policy)]
    pub log_policy: Option<mo_store::LogPolicy>,
    /// Keep the record log's closed segments for N days; `none` goes back to the daemon's
    /// --retain-days.
    #[arg(long, value_name = "N|none", value_parser = parse_days_change)]
    pub retain_days: Option<Change<u32>>,
    /// Keep at most this many GiB of the record log (fractions allowed); `none` goes back to
    /// the daemon's --retain-gib.
    #[arg(long, value_name = "GIB|none", value_parser = parse_size_change)]
    pub retain_gib: Option<Change<mo_store::RetainSize>>,
    /// The same limit in MiB (instead of --retain-gib).
    #[arg(long, value_name = "MIB", value_parser = parse_mib, conflicts_with = "retain_gib")]
    pub retain_mib: Option<mo_store::RetainSize>,
    /// Record input typed at password prompts as typed.
    #[arg(long, conflicts_with = "no_log_secrets")]
    pub log_secrets: bool,
    /// Record input typed at password prompts as `<redacted N bytes>` (the default).
    #[arg(long)]
    pub no_log_secrets: bool,
    /// Replace the console's TCP ports with these: `ADDR:PORT[/raw|/telnet|/telnet+login|/rfc2217]`
    /// (raw by default), `,spy` after the mode for read-only connections; repeat for several
    /// (docs/listen-ports.md).
    #[arg(
        long,
        value_name = "ADDR:PORT[/MODE][,spy]",
        conflicts_with = "no_listen"
    )]
    pub listen: Vec<String>,
    /// Remove every TCP port of the console (and its --listen-allow networks).
    #[arg(long)]
    pub no_listen: bool,
    /// Replace the networks (CIDR) that may connect to the console's ports; repeat for several.
    #[arg(long, value_name = "CIDR", conflicts_with = "no_listen")]
    pub listen_allow: Vec<String>,
    /// Pin the console to this node of the site (`mod --cluster`); `none` lets the site place
    /// it on any live node again (docs/cluster.md).
    #[arg(long, value_name = "NODE|none", value_parser = parse_node_change)]
    pub node: Option<Change<String>>,
}

/// A `mo device set` value that can also be cleared (`none`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change<T> {
    /// Set to this.
    Set(T),
    /// Clear (`none`): the default applies again.
    Clear,
}

impl<T> Change<T> {
    /// The new value: `Some` to set, `None` to clear.
    pub fn value(self) -> Option<T> {
        match self {
            Change::Set(v) => Some(v),
            Change::Clear => None,
        }
    }
}
