//! The command line: every command, option and help text (`mo --help` is user documentation).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Examples shown at the end of `mo --help`.
const MAIN_EXAMPLES: &str = "\
Examples:
  mo device add web01 serial:///dev/ttyS0?baud=115200 --description 'front web server'
  mo device add lab sim://lab --on-demand
  mo device list
  echo 's3cret' | mo user add alice --password-stdin --ssh-key ~/.ssh/id_ed25519.pub
  mo log show web01 --since 1h
  mo log verify web01
  mo --server http://127.0.0.1:8022 --token mo_... console web01
  mo --server http://127.0.0.1:8022 power cycle web01

The data directory holds the store (mo.db), the record logs (logs/<device>/) and the SSH host key.
The daemon `mod` picks up device changes within a second, without a restart.";

/// mo: console management — local administration of a data directory.
///
/// Adds, changes and removes devices and users in the store that the daemon `mod` serves, and
/// reads and verifies the record logs it writes. Works while the daemon runs.
#[derive(Debug, Parser)]
#[command(name = "mo", version, after_help = MAIN_EXAMPLES)]
pub struct Cli {
    /// The data directory (store, record logs, host key). Default: the one `mod` uses —
    /// $XDG_DATA_HOME/mo (else ~/.local/share/mo), or the service's /var/lib/mo when that has a
    /// store and yours has none.
    #[arg(
        long = "data-dir",
        id = "data_dir",
        global = true,
        env = "MO_DATA_DIR",
        value_name = "DIR"
    )]
    pub data_dir_given: Option<PathBuf>,

    /// The data directory in use: `--data-dir`, or the default resolved when `mo` starts.
    #[arg(skip)]
    pub data_dir: PathBuf,

    /// A daemon's HTTP API (`http://HOST:PORT`, or `https://HOST:PORT` when `mod` serves TLS;
    /// see --ca and --pin), served by `mod --http`. `console`, `who`,
    /// `power`, `devices`, `device list` and `log show` then talk to it instead of the data
    /// directory; `cluster status` needs it.
    #[arg(long, global = true, env = "MO_SERVER", value_name = "URL")]
    pub server: Option<String>,

    /// The API token for --server (made with `mo token add`).
    #[arg(
        long,
        global = true,
        env = "MO_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,

    /// Trust an `https://` --server whose certificate this PEM CA bundle issued (a self-signed
    /// certificate may be given as its own CA) instead of the public web roots.
    #[arg(
        long,
        global = true,
        env = "MO_CA",
        value_name = "FILE",
        conflicts_with = "pin"
    )]
    pub ca: Option<PathBuf>,

    /// Trust exactly the `https://` --server certificate with this SHA-256 fingerprint (64 hex
    /// digits, colons allowed; `mod --tls-self-signed` prints it at start).
    #[arg(long, global = true, env = "MO_PIN", value_name = "SHA256")]
    pub pin: Option<String>,

    /// Use the server and token of this profile (stored by `mo login URL --profile NAME` in
    /// ~/.config/mo/config.toml) where --server and --token are not given.
    #[arg(long, env = "MO_PROFILE", value_name = "NAME")]
    pub profile: Option<String>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Add, change, list, show and remove devices (consoles).
    #[command(subcommand)]
    Device(DeviceCommand),
    /// Add and remove users, set passwords, manage SSH keys.
    #[command(subcommand)]
    User(UserCommand),
    /// Read, follow and verify a device's record log.
    #[command(subcommand)]
    Log(LogCommand),
    /// Device groups: explicit members and name patterns, for grants.
    #[command(subcommand)]
    Group(crate::access::GroupCommand),
    /// User groups, for grants.
    #[command(subcommand, name = "usergroup")]
    UserGroup(crate::access::UserGroupCommand),
    /// Roles: named sets of actions (viewer, operator and admin are built in).
    #[command(subcommand)]
    Role(crate::access::RoleCommand),
    /// Grants: a role on a device group, for a user or a user group (`@ops`).
    #[command(subcommand)]
    Grant(crate::access::GrantCommand),
    /// API tokens: made, listed, revoked (the secret is shown once).
    #[command(subcommand)]
    Token(crate::access::TokenCommand),
    /// Device secrets (passwords, keys), stored encrypted with DIR/secret.key.
    #[command(subcommand)]
    Secret(crate::access::SecretCommand),
    /// Read the audit log: logins, attaches, power actions, changes, denials.
    Audit(crate::audit::AuditArgs),
    /// List and follow events: pattern matches, link changes (`--follow` keeps printing).
    Events(crate::events::EventsArgs),
    /// Export the site as TOML; import TOML, device spreadsheets, conserver.cf, conman.conf.
    #[command(subcommand)]
    Config(crate::config::ConfigCommand),
    /// Macros the daemon plays: list, show, check, add and remove (DIR/macros/NAME.macro).
    #[command(subcommand)]
    Macro(crate::macros::MacroCommand),
    /// Maintenance windows at run time: start (devices' events stored, marked suppressed, no
    /// actions; viewers see a banner), stop, list. The running daemon applies them within a
    /// second.
    #[command(subcommand)]
    Maintenance(crate::maintenance::MaintenanceCommand),
    /// Agents (mo-agent on console servers): add (enrollment token), list, show, ports, rm.
    #[command(subcommand)]
    Agent(crate::agent::AgentCommand),
    /// Back up the data directory while the daemon runs: a consistent snapshot of the store
    /// (and with --with-logs the record logs) in a tar archive with a manifest of checksums.
    Backup(crate::backup::BackupArgs),
    /// Restore a backup into a new, empty data directory (--data-dir NEW), checking every file
    /// against the manifest; a daemon can then be started on it.
    Restore(crate::backup::RestoreArgs),
    /// The site the daemon at --server is in (`mod --cluster`): nodes, their consoles, when each
    /// was last heard (needs --server).
    #[command(subcommand)]
    Cluster(crate::cluster::ClusterCommand),
    /// Find BMCs, Redfish services, PDUs, console servers and SSH gear on the addresses given
    /// and show the devices mo would add (the `mo config import` plan); --apply adds them.
    ///
    /// Probes only the addresses given, at most --parallel at a time, each answer bounded by
    /// --timeout: IPMI presence ping and authentication capabilities (UDP 623), the Redfish
    /// service root (HTTPS, then HTTP), SNMP sysDescr/sysObjectID and PDU outlets, SSH and
    /// telnet banners (telnet COM-PORT-OPTION, RFC 2217, marks serial servers). Never changes
    /// anything without --apply or --write.
    Discover(crate::discover::DiscoverArgs),
    /// Wizards: add the BMCs of a range (named after their systems), the ports of a console
    /// server (named after their labels) or bind a PDU's outlets to the devices named like them;
    /// prints the plan, --apply adds it.
    #[command(subcommand)]
    Wizard(crate::wizard::WizardCommand),
    /// Attach to a console through a daemon's API (needs --server): an interactive terminal.
    ///
    /// The terminal is put in raw mode; everything typed goes to the device except the escape
    /// sequence Ctrl-E c followed by a command: `.` disconnect, `w` who, `l1`..`l9` break
    /// sequence N (`l1` is a plain BREAK), `a` attach, `s` spy, `f` force, `j` join,
    /// `n` TEXT Enter note, `?` help.
    #[command(after_help = "Examples:\n  \
        mo --server http://127.0.0.1:8022 console web01\n  \
        MO_SERVER=http://cs1:8022 MO_TOKEN=mo_... mo console web01 --spy --replay 50")]
    Console(crate::remote::ConsoleArgs),
    /// Who is on a console, or on every console (needs --server).
    #[command(after_help = "Examples:\n  mo --server http://127.0.0.1:8022 who\n  mo who web01")]
    Who {
        /// The device (all devices if left out).
        name: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Switch devices' power, or show its state: through the daemon with --server, else locally
    /// on the data directory (names, globs or @GROUP).
    ///
    /// `verify NAME` (data directory of a running daemon only) proves the power wiring: it
    /// switches the device's outlet(s) off and on and checks that the console falls quiet while
    /// off and prints again when on; a console that keeps printing is reported as a mismatch
    /// (exit status 1). It asks for confirmation unless --yes.
    #[command(
        after_help = "Examples:\n  mo --server http://127.0.0.1:8022 power status web01\n  \
        mo power cycle web01 web02\n  mo power off 'rack3-*' --yes\n  mo power verify web03 --yes"
    )]
    Power {
        /// on, off, cycle, reset, soft-off, status or verify.
        action: String,
        /// The devices: names, globs (`web-*`) or `@GROUP`.
        #[arg(required_unless_present = "all")]
        names: Vec<String>,
        /// Every device (with --server: every device you may see).
        #[arg(long)]
        all: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Switch without asking: `verify`, and `off`/`soft-off` of more than one device (a
        /// glob or @GROUP matching several, or --all) ask on the terminal otherwise, and refuse
        /// without one.
        #[arg(long)]
        yes: bool,
        /// `verify`: how long each step may take, in seconds (console output before, silence
        /// while off, output again after on).
        #[arg(long, value_name = "SECONDS", default_value_t = 60)]
        wait: u64,
    },
    /// Send one command line to many consoles through the daemon at --server (needs `gang` and
    /// each write lock), as the SSH shell's `gang`: each device's answer, then the devices that
    /// answered differently from the majority (exit status 1 if any, or if a device failed).
    #[command(
        after_help = "Example:\n  mo --server http://127.0.0.1:8022 gang 'web-*' @db --command 'uname -r'"
    )]
    Gang(crate::automation_cli::GangArgs),
    /// Follow many consoles' output read-only through the daemon at --server (needs `spy` on
    /// each), as the SSH shell's `listen`: every line is printed tagged with its device
    /// (`web01: login:`); Ctrl-C leaves. Standard input is not read: nothing reaches a console.
    #[command(after_help = "Examples:\n  \
        mo --server http://127.0.0.1:8022 listen 'web-*' @db\n  \
        mo listen sim-01 sim-02 | grep -i panic")]
    Listen(crate::listen::ListenArgs),
    /// Log in to a daemon's API: asks for the user and password, makes an API token with them
    /// and stores it with the server's address as a profile in ~/.config/mo/config.toml (mode
    /// 0600); `mo --profile NAME` (or MO_PROFILE) then uses it.
    #[command(
        after_help = "Examples:\n  mo login https://cs1:8443 --pin AB:CD:...\n  \
        mo login http://127.0.0.1:8022 --profile lab --user alice --expires 30d\n  \
        mo --profile lab devices"
    )]
    Login(crate::profile::LoginArgs),
    /// Revoke the profile's token on its daemon and forget the profile.
    Logout(crate::profile::LogoutArgs),
    /// List devices: with --server the daemon's (those you may see), else as `mo device list`.
    Devices {
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
}

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
}

/// Settings for `mo device set`.
#[derive(Debug, Args)]
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

/// `mo user …`
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user with a password, SSH public keys, or both.
    ///
    /// Without --password-stdin and without --ssh-key the user could not log in, so that is
    /// refused.
    #[command(after_help = "Examples:\n  \
        echo 's3cret' | mo user add alice --password-stdin\n  \
        mo user add bob --ssh-key ~/.ssh/id_ed25519.pub\n  \
        mo user add carol --password-stdin --ssh-key carol.pub --ssh-key carol-laptop.pub < pw.txt")]
    Add {
        /// User name: `[a-z_][a-z0-9_.-]*`, at most 32 characters (no `:`).
        name: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        /// A file of OpenSSH public keys (one per line, like `id_ed25519.pub`); repeatable.
        #[arg(long, value_name = "FILE")]
        ssh_key: Vec<PathBuf>,
    },
    /// Set a user's password, read from the first line of standard input.
    #[command(after_help = "Example:\n  echo 'n3w' | mo user passwd alice --password-stdin")]
    Passwd {
        /// The user.
        name: String,
        /// Read the new password from the first line of standard input (required).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Manage a user's SSH public keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// List users with their credentials.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove a user and their SSH keys.
    #[command(alias = "remove")]
    Rm {
        /// The user.
        name: String,
    },
}

/// `mo user key …`
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Add the public keys in FILE (one per line; `-` reads standard input).
    #[command(after_help = "Example:\n  mo user key add alice ~/.ssh/id_ed25519.pub")]
    Add {
        /// The user.
        name: String,
        /// A file of OpenSSH public keys, or `-` for standard input.
        file: PathBuf,
    },
    /// List a user's keys with their SHA-256 fingerprints.
    List {
        /// The user.
        name: String,
        /// Print a JSON array of keys (type, fingerprint, comment).
        #[arg(long)]
        json: bool,
    },
    /// Remove a key, given by fingerprint (`SHA256:…`, as `mo user key list` shows it).
    #[command(alias = "remove")]
    Rm {
        /// The user.
        name: String,
        /// The key's fingerprint.
        fingerprint: String,
    },
}

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

/// `--log-policy`.
fn parse_policy(text: &str) -> Result<mo_store::LogPolicy, String> {
    mo_store::parse_log_policy(text).map_err(|_| "expected `degrade` or `strict`".to_string())
}

/// `--retain-days N`.
fn parse_days(text: &str) -> Result<u32, String> {
    mo_store::parse_retain_days(text).map_err(|_| {
        format!(
            "expected a whole number of days from 1 to {}",
            mo_store::MAX_RETAIN_DAYS
        )
    })
}

/// `--retain-gib GIB` (or with a unit: `512MiB`).
fn parse_size(text: &str) -> Result<mo_store::RetainSize, String> {
    text.parse::<mo_store::RetainSize>().map_err(|e| match e {
        mo_store::Error::BadValue { reason, .. } => reason,
        other => other.to_string(),
    })
}

/// A number of days, fractions allowed (`90`, `0.5`), as a duration.
pub fn parse_fraction_days(text: &str) -> Result<std::time::Duration, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|d| d.is_finite() && *d > 0.0 && *d <= f64::from(mo_store::MAX_RETAIN_DAYS))
        .map(|d| std::time::Duration::from_secs_f64(d * 86_400.0))
        .ok_or_else(|| {
            format!(
                "expected a number of days above 0 and at most {} (fractions allowed)",
                mo_store::MAX_RETAIN_DAYS
            )
        })
}

/// `--retain-mib MIB`.
fn parse_mib(text: &str) -> Result<mo_store::RetainSize, String> {
    text.trim()
        .parse::<u64>()
        .ok()
        .and_then(mo_store::RetainSize::from_mib)
        .ok_or_else(|| "expected a whole number of MiB, at least 1".to_string())
}

fn clearable<T>(
    text: &str,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Change<T>, String> {
    if text.trim() == "none" {
        return Ok(Change::Clear);
    }
    parse(text)
        .map(Change::Set)
        .map_err(|e| format!("{e}, or `none`"))
}

fn parse_days_change(text: &str) -> Result<Change<u32>, String> {
    clearable(text, parse_days)
}

fn parse_size_change(text: &str) -> Result<Change<mo_store::RetainSize>, String> {
    clearable(text, parse_size)
}

/// Parse `N=SEQ` for `--break`.
fn parse_break(text: &str) -> Result<(u8, String), String> {
    let (n, seq) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not N=SEQ (for example `2=\\r~^b`)"))?;
    let n: u8 = n
        .trim()
        .parse()
        .ok()
        .filter(|n| (1..=9).contains(n))
        .ok_or_else(|| format!("break sequence number `{n}` must be 1 to 9"))?;
    mo_core::breakseq::BreakSequence::parse(seq).map_err(|e| e.to_string())?;
    Ok((n, seq.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn break_option() {
        assert_eq!(parse_break("2=\\r~^b"), Ok((2, "\\r~^b".to_string())));
        assert_eq!(parse_break("3==."), Ok((3, "=.".to_string())));
        assert!(parse_break("0=x").is_err());
        assert!(parse_break("10=x").is_err());
        assert!(parse_break("x").is_err());
        assert!(parse_break("1=\\q").is_err());
    }
}
