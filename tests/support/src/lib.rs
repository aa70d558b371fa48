//! Test support for mo: starts the real peers mo's tests and benchmarks talk to — a socat pty
//! pair as a serial line, ser2net (telnet, raw TCP, RFC 2217) and ipmi_sim (IPMI SOL and chassis
//! power) in front of such a line, OpenSSH sshd and inetutils telnetd as devices, snmpd as an APC
//! PDU, sushy-emulator as a Redfish BMC, nats-server with JetStream, the `mod` daemon, the `mo`
//! CLI, the OpenSSH client (password via `SSH_ASKPASS`, or an ed25519 key) and tmux as the
//! terminal — on loopback, in per-test temp dirs with free ports that are never handed out twice
//! in one process.
//!
//! These are the only starters of those peers in the workspace: mo-drivers' integration tests,
//! the end-to-end tests and mo-bench all use them. A peer that is not installed fails with
//! [`Error::MissingBinary`] naming what to install; it never skips a test.
//!
//! Every process a test starts is held by a guard that kills exactly its PID when dropped. Every
//! wait has a time limit, and its error carries what was seen (pane text, peer log, output).
//!
//! The end-to-end helpers need the workspace binaries built first
//! (`cargo build -p mo-daemon -p mo-cli`; `./scripts/test.sh` does it).
//!
//! ```no_run
//! use std::time::Duration;
//! use mo_testsupport::{Login, SocatPty, run_test};
//!
//! run_test("serial-example", |w| {
//!     let mut line = SocatPty::start(w.dir())?;
//!     w.add_device("ser1", &format!("serial://{}?baud=115200", line.device_path().display()), &[])?;
//!     let alice = w.add_user("alice", "alice-pw")?;
//!     w.start_daemon(&[])?;
//!     let pane = w.terminal("alice", &alice, Login::Attach("ser1"), &[])?;
//!     line.write_peer(b"hello from the machine\r\n")?;
//!     pane.wait_for("hello from the machine", Duration::from_secs(10))?;
//!     Ok(())
//! });
//! ```

mod agent;
mod binaries;
mod cli;
mod daemon;
mod devices;
mod error;
mod files;
mod hold;
pub mod http;
mod ipmi_sim;
mod lan;
mod nats;
mod ports;
mod process;
mod pyserial;
mod ser2net;
mod snmpd;
mod snmptrapd;
mod socat;
mod ssh;
mod sshd;
mod sushy;
mod telnetd;
mod tmux;
mod wait;
mod world;

/// How long an end-to-end step may take before it counts as failed (debug builds on a busy
/// two-core machine are slow; a healthy step takes well under a second).
pub const WAIT: std::time::Duration = std::time::Duration::from_secs(20);

pub use agent::{add_agent, agent_cmd};
pub use binaries::{BUILD_HINT, bin_dir, bin_path, workspace_root};
pub use cli::Cli;
pub use daemon::Daemon;
pub use devices::{
    ECHO_CONSOLE, FLOOD_FOREVER, descendant_pids, dir_size, has_rfc3339_timestamp, utc_now_rfc3339,
};
pub use error::{Error, Result};
pub use files::append_line;
pub use hold::HoldProxy;
pub use ipmi_sim::{IPMI_PASSWORD, IPMI_SIM, IPMI_USER, IpmiSim, Sol};
pub use lan::{LabelledPorts, lan_host, sushy_on, write_credentials};
pub use nats::{CLUSTER_SIZE, NATS_SERVER, Nats, NatsCluster};
pub use nix::sys::signal::Signal;
pub use ports::{free_port, free_udp_port, tcp_listening, temp_dir};
pub use process::{
    CmdOutput, Collector, Peer, child_pids, cmdline, describe, find, kill_exact, read_lossy,
    run_with_timeout,
};
pub use pyserial::{PYSERIAL_RFC2217_SERVER, PyserialRfc2217};
pub use ser2net::{SER2NET, Ser2net};
pub use snmpd::{SNMPD, Snmpd, peer_configs};
pub use snmptrapd::{SNMPTRAPD, Snmptrapd, TrapUser};
pub use socat::{PeerEnd, SOCAT, SocatPty};
pub use ssh::{Login, SshClient, SshKey, Tty, shell_quote};
pub use sshd::{SSHD, SSHD_PASSWORD, SSHD_USER, Sshd, SshdConfig, ensure_user, keygen};
pub use sushy::{NODE1, NODE2, Sushy, venv_bin};
pub use telnetd::{FAKE_CONSOLE, TELNET_PROMPT, TELNETD, Telnetd};
pub use tmux::{Tmux, after_last};
pub use wait::{wait_log_count, wait_until};
pub use world::{World, run_test};
