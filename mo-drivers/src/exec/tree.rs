//! The process tree of an exec link, and ending it.
//!
//! The program is started as the leader of a new session and process group whose id is its pid.
//! Its descendants stay in that session unless they leave it on purpose (`setsid`), though a shell
//! with job control moves each job into a process group of its own. So the tree is: every process
//! whose process group *or* session is the leader's pid. Members are found by listing `/proc`
//! and asking each process's group and session (`getpgid`, `getsid`), then reading a member's
//! `/proc/PID/stat` to leave out zombies; the group is also signalled directly, which needs no
//! scan.
//!
//! A pid that is still in use as a process group or session id cannot be reused by Linux, so
//! signalling by these ids never reaches an unrelated process while any member is alive.

use rustix::process::{Pid, Signal};

/// What `/proc/PID/stat` says about one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProcStat {
    /// The process id.
    pub(crate) pid: i32,
    /// The state letter (`R`, `S`, `Z`, …).
    pub(crate) state: char,
    /// The process group id.
    pub(crate) pgrp: i32,
    /// The session id.
    pub(crate) session: i32,
}

impl ProcStat {
    /// Parse the text of `/proc/PID/stat`: `pid (comm) state ppid pgrp session …`. The command
    /// name may hold spaces and parentheses, so fields are read after the *last* `)`. Returns
    /// `None` for anything malformed; never panics.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let open = text.find(" (")?;
        let pid = text.get(..open)?.trim().parse().ok()?;
        let close = text.rfind(')')?;
        let mut fields = text.get(close + 1..)?.split_whitespace();
        let state_field = fields.next()?;
        let mut state_chars = state_field.chars();
        let state = state_chars.next()?;
        if state_chars.next().is_some() {
            return None;
        }
        let _ppid = fields.next()?;
        let pgrp = fields.next()?.parse().ok()?;
        let session = fields.next()?.parse().ok()?;
        Some(Self {
            pid,
            state,
            pgrp,
            session,
        })
    }

    /// Whether the process has finished (a zombie waiting to be reaped, or dead).
    pub(crate) fn is_dead(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// The live (not zombie) processes in the group or session led by `leader`, never the calling
/// process itself.
pub(crate) fn members(leader: i32) -> Vec<i32> {
    if leader <= 1 {
        return Vec::new();
    }
    let own = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        if u32::try_from(pid).is_ok_and(|p| p == own) {
            continue;
        }
        if !maybe_member(pid, leader) {
            continue;
        }
        // The process may end between listing and reading: skip it then.
        let Ok(text) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if let Some(stat) = ProcStat::parse(&text)
            && (stat.pgrp == leader || stat.session == leader)
            && !stat.is_dead()
        {
            found.push(stat.pid);
        }
    }
    found
}

/// Whether process `pid` may be in the tree of `leader`, asked with two system calls
/// (`getpgid`, `getsid`) instead of reading its `stat`: with hundreds of programs ending at once,
/// each scanning hundreds of processes, the kernel's formatting of every `stat` was most of a
/// scan's cost. A process that has gone says no; one the calls may not ask about says yes, and
/// its `stat` decides.
fn maybe_member(pid: i32, leader: i32) -> bool {
    use nix::errno::Errno;
    use nix::unistd::{Pid as NixPid, getpgid, getsid};
    if pid <= 0 {
        return false;
    }
    let pid = NixPid::from_raw(pid);
    // Kernel threads answer 0 for both: never the leader.
    let is_leader = |id: nix::Result<NixPid>| match id {
        Ok(id) => Some(id.as_raw() == leader),
        Err(Errno::ESRCH) => Some(false),
        Err(_) => None,
    };
    match is_leader(getpgid(Some(pid))) {
        Some(true) | None => true,
        Some(false) => is_leader(getsid(Some(pid))) != Some(false),
    }
}

/// Send `signal` to the leader's process group and to every other member of its tree.
/// Processes that are already gone are ignored.
pub(crate) fn signal(leader: i32, signal: Signal) {
    signal_all(leader, &[signal]);
}

/// Send each of `signals`, in order, to the leader's process group and to every other member of
/// its tree, found by one scan of `/proc` ([`members`]; with hundreds of programs ending at once,
/// a scan per signal cost more than their output). Returns the members found.
pub(crate) fn signal_all(leader: i32, signals: &[Signal]) -> Vec<i32> {
    // Never signal init or "every process" by accident.
    if leader <= 1 {
        return Vec::new();
    }
    let Some(group) = Pid::from_raw(leader) else {
        return Vec::new();
    };
    let found = members(leader);
    for &signal in signals {
        let _ = rustix::process::kill_process_group(group, signal);
        for &pid in &found {
            if pid > 1
                && let Some(pid) = Pid::from_raw(pid)
            {
                let _ = rustix::process::kill_process(pid, signal);
            }
        }
    }
    found
}

/// Whether the leader's process group, or any of `known` (members found by an earlier scan),
/// still has a process, zombies included — without a scan. A pid of `known` reused since would
/// only make this say yes for longer.
pub(crate) fn any_alive(leader: i32, known: &[i32]) -> bool {
    let exists = |pid: i32, group: bool| {
        Pid::from_raw(pid).is_some_and(|pid| {
            let probe = if group {
                rustix::process::test_kill_process_group(pid)
            } else {
                rustix::process::test_kill_process(pid)
            };
            // EPERM: it exists, only not ours to signal.
            !matches!(probe, Err(rustix::io::Errno::SRCH))
        })
    };
    leader > 1 && (exists(leader, true) || known.iter().any(|&pid| pid > 1 && exists(pid, false)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn parses_stat_lines() {
        let line = "1234 (sleep) S 1200 1201 1202 34816 1201 4194304 95 0 0 0 0 0 0 0 20 0 1 0";
        assert_eq!(
            ProcStat::parse(line),
            Some(ProcStat {
                pid: 1234,
                state: 'S',
                pgrp: 1201,
                session: 1202
            })
        );
        let odd = "77 (a) b (c)) Z 1 2 3 0";
        assert_eq!(
            ProcStat::parse(odd),
            Some(ProcStat {
                pid: 77,
                state: 'Z',
                pgrp: 2,
                session: 3
            })
        );
        assert!(ProcStat::parse(odd).unwrap().is_dead());
        for bad in [
            "",
            "(",
            "1 (x)",
            "1 (x) S",
            "1 (x) SS 1 2 3",
            "x (y) S 1 2 3",
            "1 (x) S 1 y 3",
        ] {
            assert_eq!(ProcStat::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn own_stat_is_readable() {
        let text = std::fs::read_to_string("/proc/self/stat").unwrap();
        let stat = ProcStat::parse(&text).unwrap();
        assert_eq!(u32::try_from(stat.pid).unwrap(), std::process::id());
        assert!(!stat.is_dead());
    }

    #[test]
    fn random_input_never_panics() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed_0001);
        let alphabet: Vec<char> = "0123456789 ()SZRx-\u{e9}\n".chars().collect();
        for _ in 0..20_000 {
            let len = rng.random_range(0..40);
            let text: String = (0..len)
                .map(|_| alphabet[rng.random_range(0..alphabet.len())])
                .collect();
            let _ = ProcStat::parse(&text);
        }
    }

    #[test]
    fn membership_is_asked_by_group_and_session() {
        let own = rustix::process::getpid().as_raw_pid();
        let group = nix::unistd::getpgrp().as_raw();
        let session = nix::unistd::getsid(None).unwrap().as_raw();
        assert!(maybe_member(own, group));
        assert!(maybe_member(own, session));
        // No process has an id this large, so no group or session either.
        assert!(!maybe_member(own, i32::MAX));
        assert!(!maybe_member(i32::MAX, group));
    }

    #[test]
    fn members_are_found_and_zombies_left_out() {
        // `setsid` (util-linux) makes the child lead a session of its own, as the exec driver
        // does; `exec` keeps its pid.
        let mut child = std::process::Command::new("setsid")
            .args(["sh", "-c", "sleep 30 & exec sleep 30"])
            .spawn()
            .expect("setsid (util-linux) is needed");
        let leader = i32::try_from(child.id()).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut found = members(leader);
        while found.len() < 2 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
            found = members(leader);
        }
        assert!(found.contains(&leader) && found.len() == 2, "{found:?}");
        assert!(!found.contains(&rustix::process::getpid().as_raw_pid()));
        signal(leader, Signal::KILL);
        // The leader is our child: until reaped it is a zombie, and no member.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !members(leader).is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "{:?}",
                members(leader)
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        child.wait().unwrap();
    }

    #[test]
    fn never_signals_init_or_everything() {
        // Leaders 0, 1 and negatives are refused before any kill(2).
        signal(0, Signal::CONT);
        signal(1, Signal::CONT);
        signal(-1, Signal::CONT);
        assert!(members(-5).is_empty());
    }
}
