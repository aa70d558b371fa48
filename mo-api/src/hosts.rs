//! Host info: `GET /api/v1/hosts/{name}/{what}` — a host's CPUs, memory, file systems or
//! processes as one table, for the daemon's own host (`mod`) or a connected agent's.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The name that means the daemon's own host.
pub const DAEMON_HOST: &str = "mod";

/// What to show of a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum HostInfoKind {
    /// Every CPU's usage (%) and frequency (MHz); the first row, `all`, is all of them together
    /// with the load averages.
    Cpu,
    /// Memory and swap, in bytes.
    Mem,
    /// Mounted file systems: sizes in bytes and the share used.
    Fs,
    /// Processes, the busiest (CPU, then memory) first; RSS in bytes.
    Proc,
}

crate::api_names!(HostInfoKind, "host info", "cpu, mem, fs or proc", {
    HostInfoKind::Cpu => "cpu",
    HostInfoKind::Mem => "mem",
    HostInfoKind::Fs => "fs",
    HostInfoKind::Proc => "proc",
});

/// The path parameters of `GET /api/v1/hosts/{name}/{what}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct HostPath {
    /// `mod` (the daemon's host) or an agent's name.
    #[param(
        min_length = 1,
        max_length = 64,
        pattern = "^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$"
    )]
    pub name: String,
    /// `cpu`, `mem`, `fs` or `proc`.
    #[param(inline)]
    pub what: HostInfoKind,
}

/// A host's info as a table: the same columns for every host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HostInfo {
    /// The host asked for: `mod` or the agent's name.
    pub host: String,
    /// What the table shows.
    pub what: HostInfoKind,
    /// The column names (`cpu`: CPU, USAGE%, MHZ, BRAND; `mem`: WHAT, TOTAL, USED, FREE,
    /// AVAILABLE; `fs`: MOUNT, FS, DEVICE, TOTAL, USED, AVAILABLE, USE%; `proc`: PID, PPID,
    /// NAME, STATUS, CPU%, RSS).
    pub columns: Vec<String>,
    /// The rows, each with one cell per column (numbers as decimal text).
    pub rows: Vec<Vec<String>>,
}
