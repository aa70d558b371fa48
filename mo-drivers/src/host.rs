//! Host info (the seed's kopd): one uniform table of a host's CPUs, memory, file systems or
//! processes, read with the `sysinfo` crate. The daemon answers for its own host and `mo-agent`
//! for the host it runs on (over its control channel), so `mo host show NAME cpu` gives the same
//! columns everywhere.
//!
//! Numbers are plain: byte counts in bytes, percentages with one decimal, frequencies in MHz, so
//! that a program reading the JSON form needs no unit parser.
//!
//! ```
//! use mo_drivers::host::{HostWhat, collect};
//!
//! let what: HostWhat = "mem".parse()?;
//! let table = collect(what);
//! assert_eq!(table.columns, ["WHAT", "TOTAL", "USED", "FREE", "AVAILABLE"]);
//! assert_eq!(table.rows[0][0], "mem");
//! # Ok::<(), mo_drivers::host::UnknownWhat>(())
//! ```

use std::fmt;
use std::str::FromStr;

use sysinfo::{Disks, ProcessRefreshKind, ProcessesToUpdate, System};

/// What to show of a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HostWhat {
    /// Every CPU's usage and frequency, and all of them together.
    Cpu,
    /// Memory and swap.
    Mem,
    /// Mounted file systems.
    Fs,
    /// Processes, the busiest first.
    Proc,
}

impl HostWhat {
    /// Every kind, in the order the docs list them.
    pub const ALL: [HostWhat; 4] = [HostWhat::Cpu, HostWhat::Mem, HostWhat::Fs, HostWhat::Proc];

    /// The kind's name: `cpu`, `mem`, `fs`, `proc`.
    pub fn name(self) -> &'static str {
        match self {
            HostWhat::Cpu => "cpu",
            HostWhat::Mem => "mem",
            HostWhat::Fs => "fs",
            HostWhat::Proc => "proc",
        }
    }
}

impl fmt::Display for HostWhat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not `cpu`, `mem`, `fs` or `proc`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown host info `{0}`: expected cpu, mem, fs or proc")]
pub struct UnknownWhat(pub String);

impl FromStr for HostWhat {
    type Err = UnknownWhat;

    fn from_str(s: &str) -> Result<Self, UnknownWhat> {
        HostWhat::ALL
            .into_iter()
            .find(|w| w.name() == s)
            .ok_or_else(|| UnknownWhat(s.chars().take(64).collect()))
    }
}

/// A table of host info: column names and rows of cells (each row as long as `columns`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HostTable {
    /// The column names (`PID`, `NAME`, …).
    pub columns: Vec<String>,
    /// The rows, each with one cell per column.
    pub rows: Vec<Vec<String>>,
}

/// Read `what` of this host. Blocking: `cpu` and `proc` measure CPU usage over
/// [`sysinfo::MINIMUM_CPU_UPDATE_INTERVAL`] (about 200 ms); call it from a blocking task.
pub fn collect(what: HostWhat) -> HostTable {
    match what {
        HostWhat::Cpu => cpu(),
        HostWhat::Mem => mem(),
        HostWhat::Fs => fs(),
        HostWhat::Proc => proc(),
    }
}

fn columns(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

fn percent(p: f64) -> String {
    format!("{p:.1}")
}

fn cpu() -> HostTable {
    let mut sys = System::new();
    sys.refresh_cpu_all();
    std::thread::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL);
    sys.refresh_cpu_all();
    let load = System::load_average();
    let mut rows = vec![vec![
        "all".to_owned(),
        percent(f64::from(sys.global_cpu_usage())),
        String::new(),
        format!("load {:.2} {:.2} {:.2}", load.one, load.five, load.fifteen),
    ]];
    for cpu in sys.cpus() {
        rows.push(vec![
            cpu.name().to_owned(),
            percent(f64::from(cpu.cpu_usage())),
            cpu.frequency().to_string(),
            cpu.brand().to_owned(),
        ]);
    }
    HostTable {
        columns: columns(&["CPU", "USAGE%", "MHZ", "BRAND"]),
        rows,
    }
}

fn mem() -> HostTable {
    let mut sys = System::new();
    sys.refresh_memory();
    HostTable {
        columns: columns(&["WHAT", "TOTAL", "USED", "FREE", "AVAILABLE"]),
        rows: vec![
            vec![
                "mem".to_owned(),
                sys.total_memory().to_string(),
                sys.used_memory().to_string(),
                sys.free_memory().to_string(),
                sys.available_memory().to_string(),
            ],
            vec![
                "swap".to_owned(),
                sys.total_swap().to_string(),
                sys.used_swap().to_string(),
                sys.free_swap().to_string(),
                sys.free_swap().to_string(),
            ],
        ],
    }
}

fn fs() -> HostTable {
    let disks = Disks::new_with_refreshed_list();
    let mut rows: Vec<Vec<String>> = disks
        .list()
        .iter()
        .map(|d| {
            let (total, avail) = (d.total_space(), d.available_space());
            let used = total.saturating_sub(avail);
            let pct = if total == 0 {
                0.0
            } else {
                used as f64 * 100.0 / total as f64
            };
            vec![
                d.mount_point().display().to_string(),
                d.file_system().to_string_lossy().into_owned(),
                d.name().to_string_lossy().into_owned(),
                total.to_string(),
                used.to_string(),
                avail.to_string(),
                percent(pct),
            ]
        })
        .collect();
    rows.sort();
    HostTable {
        columns: columns(&[
            "MOUNT",
            "FS",
            "DEVICE",
            "TOTAL",
            "USED",
            "AVAILABLE",
            "USE%",
        ]),
        rows,
    }
}

fn proc() -> HostTable {
    let mut sys = System::new();
    let kind = ProcessRefreshKind::nothing()
        .with_cpu()
        .with_memory()
        .without_tasks();
    sys.refresh_processes_specifics(ProcessesToUpdate::All, true, kind);
    std::thread::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL);
    sys.refresh_processes_specifics(ProcessesToUpdate::All, true, kind);
    let mut procs: Vec<_> = sys.processes().values().collect();
    // The busiest first: CPU, then memory, then the lowest PID.
    procs.sort_by(|a, b| {
        b.cpu_usage()
            .total_cmp(&a.cpu_usage())
            .then(b.memory().cmp(&a.memory()))
            .then(a.pid().cmp(&b.pid()))
    });
    let rows = procs
        .into_iter()
        .map(|p| {
            vec![
                p.pid().to_string(),
                p.parent().map(|pp| pp.to_string()).unwrap_or_default(),
                p.name().to_string_lossy().into_owned(),
                p.status().to_string(),
                percent(f64::from(p.cpu_usage())),
                p.memory().to_string(),
            ]
        })
        .collect();
    HostTable {
        columns: columns(&["PID", "PPID", "NAME", "STATUS", "CPU%", "RSS"]),
        rows,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back() {
        for what in HostWhat::ALL {
            assert_eq!(what.name().parse::<HostWhat>().unwrap(), what);
        }
        let e = "disk".parse::<HostWhat>().unwrap_err().to_string();
        assert_eq!(e, "unknown host info `disk`: expected cpu, mem, fs or proc");
    }

    #[test]
    fn every_table_is_rectangular_and_real() {
        for what in HostWhat::ALL {
            let t = collect(what);
            assert!(!t.columns.is_empty(), "{what}");
            assert!(!t.rows.is_empty(), "{what}: no rows");
            for row in &t.rows {
                assert_eq!(row.len(), t.columns.len(), "{what}: {row:?}");
            }
        }
        let mem = collect(HostWhat::Mem);
        let total: u64 = mem.rows[0][1].parse().unwrap();
        assert!(total > 0, "{mem:?}");
        // This test's own process is listed, with its parent.
        let me = std::process::id().to_string();
        let procs = collect(HostWhat::Proc);
        let row = procs
            .rows
            .iter()
            .find(|r| r[0] == me)
            .expect("this process");
        assert!(
            !row[1].is_empty() && row[5].parse::<u64>().unwrap() > 0,
            "{row:?}"
        );
        let cpus = collect(HostWhat::Cpu);
        assert_eq!(cpus.rows[0][0], "all");
        assert!(cpus.rows.len() >= 2, "{cpus:?}");
        assert!(collect(HostWhat::Fs).rows.iter().any(|r| r[0] == "/"));
    }
}
