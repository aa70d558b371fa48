//! The command line: every command, option and help text (`mo --help` is user documentation).
//! The top-level commands are here; the larger command families have a module each (`device`,
//! `user`, `log`), other families live beside the code that runs them (`crate::access`, …).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

mod device;
mod log;
mod user;
mod values;

pub use device::{AddSettings, DeviceCommand, SetSettings};
pub use log::{LogCommand, LogFilter};
pub use user::{KeyCommand, UserCommand};

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
    /// see --ca and --pin), served by `mod --http`. Every command then talks to it or refuses
    /// with the reason — none touches a data directory; `console`, `who`, `listen`, `gang` and
    /// `cluster status` need it.
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
    /// Host info: a host's CPUs, memory, file systems or processes (`mod` or an agent's host).
    #[command(subcommand)]
    Host(crate::host::HostCommand),
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
