//! The `exec` driver beyond the conformance suite: sessions, window size, the end of the process
//! tree, end of file when the program exits, and the address parameters.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod peers;

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use mo_core::Error;
use mo_core::link::{Connector, ControlOp, Link};
use mo_drivers::exec::KILL_GRACE;
use mo_drivers::{DriverOptions, ExecConnector, ExecSpec, connector_for};
use peers::{STEP, read_line_after, read_ready_pid, read_until, read_until_down};
use tokio::io::AsyncReadExt;
use tokio::time::{Instant, timeout};

fn shell(script: &str) -> ExecConnector {
    ExecConnector::new(ExecSpec::new("/bin/sh").arg("-c").arg(script))
}

async fn connect(connector: &dyn Connector) -> Result<Link> {
    Ok(timeout(STEP, connector.connect()).await??)
}

/// What /proc says about a process: `None` when it is gone.
fn proc_state(pid: i32) -> Option<(char, i32, i32, i32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = text.get(text.rfind(')')? + 1..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let pgrp = fields.get(2)?.parse().ok()?;
    let session = fields.get(3)?.parse().ok()?;
    let tty = fields.get(4)?.parse().ok()?;
    Some((state, pgrp, session, tty))
}

/// Whether the process has ended: gone, or a zombie not ours to reap (orphans are reparented).
fn ended(pid: i32) -> bool {
    proc_state(pid).is_none_or(|(state, ..)| state == 'Z' || state == 'X')
}

async fn wait_ended(pids: &[i32], within: Duration) -> Result<()> {
    let deadline = Instant::now() + within;
    loop {
        let alive: Vec<i32> = pids.iter().copied().filter(|p| !ended(*p)).collect();
        if alive.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("still running: {alive:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Read a line `TAG n n n…` and return the numbers.
async fn read_numbers(link: &mut Link, tag: &str) -> Result<Vec<i32>> {
    let line = read_line_after(&mut link.reader, &format!("{tag} ")).await?;
    Ok(line
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()?)
}

#[tokio::test]
async fn program_leads_its_own_session_on_the_pty() -> Result<()> {
    let exec = shell("echo READY $$; sleep 1000");
    let mut link = connect(&exec).await?;
    let pid = read_ready_pid(&mut link.reader).await?;
    let (_, pgrp, session, tty) = proc_state(pid).context("the program is not running")?;
    ensure!(pgrp == pid, "not a process group leader: pgrp {pgrp}");
    ensure!(session == pid, "not a session leader: session {session}");
    ensure!(tty != 0, "no controlling terminal");
    // Read our own session from /proc: in a PID namespace whose session leader lies outside it
    // (CI containers) the kernel reports session 0, which rustix's getsid refuses to represent.
    let std_pid = i32::try_from(std::process::id())?;
    let (_, _, own_session, _) = proc_state(std_pid).context("cannot read our own /proc stat")?;
    ensure!(
        session != own_session,
        "shares the test's session {own_session}"
    );
    Ok(())
}

/// A daemon started with SIGHUP ignored (`nohup`, some init systems) does not hand that on: the
/// program gets default dispositions, so the hangup of its terminal (the daemon SIGKILLed, the
/// pty master closed) ends it instead of leaving an orphan writing into a dead pty.
#[tokio::test]
#[allow(unsafe_code)]
async fn signals_the_daemon_ignores_are_not_ignored_by_the_program() -> Result<()> {
    // SAFETY: setting a signal disposition of this test process; no handler runs.
    unsafe {
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
        libc::signal(libc::SIGTERM, libc::SIG_IGN);
    }
    let exec = shell(
        "echo STATE $$ $(printf %d 0x$(sed -n 's/^SigIgn:[[:space:]]*//p' /proc/$$/status)); \
         while :; do echo tick; sleep 0.05; done",
    );
    let mut link = connect(&exec).await?;
    let state = read_line_after(&mut link.reader, "STATE ").await?;
    // SAFETY: as above.
    unsafe {
        libc::signal(libc::SIGHUP, libc::SIG_DFL);
        libc::signal(libc::SIGTERM, libc::SIG_DFL);
    }
    let (pid, mask) = state
        .split_once(' ')
        .and_then(|(pid, mask)| Some((pid.parse::<i32>().ok()?, mask.trim().parse::<u64>().ok()?)))
        .with_context(|| format!("PID and SigIgn of the program: {state:?}"))?;
    ensure!(
        mask & (1 << (libc::SIGHUP - 1)) == 0 && mask & (1 << (libc::SIGTERM - 1)) == 0,
        "the program inherited ignored signals: SigIgn {mask:#x}"
    );
    let (_, _, _, tty) = proc_state(pid).context("the program is not running")?;
    ensure!(
        tty != 0,
        "no controlling terminal: no hangup would reach it"
    );
    drop(link);
    wait_ended(&[pid], Duration::from_secs(10)).await
}

#[tokio::test]
async fn window_size_reaches_the_program() -> Result<()> {
    let exec = shell(
        "trap 'echo SIZE $(stty size)' WINCH; echo SIZE $(stty size); while :; do sleep 0.05; done",
    );
    let mut link = connect(&exec).await?;
    ensure!(
        read_numbers(&mut link, "SIZE").await? == [24, 80],
        "default is not 80x24"
    );
    link.control
        .control(ControlOp::WindowSize {
            cols: 132,
            rows: 43,
        })
        .await?;
    ensure!(
        read_numbers(&mut link, "SIZE").await? == [43, 132],
        "size did not arrive"
    );
    link.control
        .control(ControlOp::WindowSize { cols: 90, rows: 30 })
        .await?;
    ensure!(read_numbers(&mut link, "SIZE").await? == [30, 90]);
    Ok(())
}

#[tokio::test]
async fn break_is_unsupported_on_a_pty() -> Result<()> {
    let exec = shell("sleep 1000");
    let link = connect(&exec).await?;
    let op = ControlOp::Break {
        duration: Duration::from_millis(10),
    };
    match link.control.control(op).await {
        Err(Error::Unsupported { operation, what }) => {
            ensure!(operation == "break");
            ensure!(what.contains("exec:///bin/sh"), "{what}");
        }
        other => bail!("expected Unsupported, got {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn dropping_the_link_ends_the_whole_tree() -> Result<()> {
    // Plain background jobs share the program's process group; `set -m` puts the last one in a
    // group of its own (still in the session); one job ignores SIGHUP and needs SIGKILL (the
    // script waits until that job has set its trap).
    let dir = tempfile::tempdir()?;
    let ready = dir.path().join("ignoring");
    let exec = shell(&format!(
        "sleep 1000 & a=$!; (trap '' HUP; : > {ready}; exec sleep 1000) & b=$!; \
         while [ ! -e {ready} ]; do sleep 0.01; done; set -m; sleep 1000 & c=$!; \
         echo PIDS $$ $a $b $c; wait",
        ready = ready.display()
    ));
    let mut link = connect(&exec).await?;
    let pids = read_numbers(&mut link, "PIDS").await?;
    ensure!(pids.len() == 4, "{pids:?}");
    let leader = pids[0];
    let (_, c_group, c_session, _) = proc_state(pids[3]).context("job c")?;
    ensure!(
        c_group != leader && c_session == leader,
        "set -m did not take effect"
    );
    ensure!(pids.iter().all(|p| !ended(*p)), "not all started: {pids:?}");
    let dropped = Instant::now();
    drop(link);
    wait_ended(&pids, KILL_GRACE + Duration::from_secs(3)).await?;
    // The job that ignores SIGHUP lasted until SIGKILL, a grace period after the SIGHUP.
    ensure!(
        dropped.elapsed() >= KILL_GRACE - Duration::from_millis(100),
        "ended after {:?}, before the grace period",
        dropped.elapsed()
    );
    // The program itself was our child: reaped, no zombie left.
    let deadline = Instant::now() + STEP;
    while proc_state(leader).is_some() {
        ensure!(Instant::now() < deadline, "the program was not reaped");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

#[tokio::test]
async fn program_exit_is_end_of_file_even_with_children_left() -> Result<()> {
    let exec = shell("sleep 1000 & echo READY $!; sleep 0.2; echo bye");
    let mut link = connect(&exec).await?;
    let child = read_ready_pid(&mut link.reader).await?;
    read_until(&mut link.reader, b"bye").await?;
    let started = Instant::now();
    timeout(STEP, read_until_down(&mut link.reader)).await??;
    ensure!(started.elapsed() < KILL_GRACE + Duration::from_secs(3));
    wait_ended(&[child], Duration::from_secs(3)).await?;
    // Reading again stays at end of file; writing fails instead of hanging.
    let mut buf = [0u8; 8];
    ensure!(timeout(STEP, link.reader.read(&mut buf)).await?? == 0);
    let write = tokio::io::AsyncWriteExt::write_all(&mut link.writer, b"x\n");
    ensure!(
        timeout(STEP, write).await?.is_err(),
        "write to an ended program succeeded"
    );
    Ok(())
}

#[tokio::test]
async fn output_is_complete_before_end_of_file() -> Result<()> {
    let exec = connector_for(
        "exec:///bin/sh?arg=-c&arg=i=0;while+[+$i+-lt+2000+];do+echo+line+$i;i=$((i%2B1));done",
        &DriverOptions::default(),
    )?;
    let mut link = connect(exec.as_ref()).await?;
    let mut all = Vec::new();
    timeout(STEP, link.reader.read_to_end(&mut all)).await??;
    let text = String::from_utf8(all)?;
    let lines: Vec<&str> = text.lines().collect();
    ensure!(lines.len() == 2000, "{} lines", lines.len());
    ensure!(lines[1999] == "line 1999", "{:?}", lines[1999]);
    ensure!(text.ends_with("line 1999\r\n"), "output was cut");
    Ok(())
}

#[tokio::test]
async fn environment_term_and_cwd_come_from_the_address() -> Result<()> {
    let dir = tempfile::tempdir()?;
    std::fs::create_dir(dir.path().join("work"))?;
    let opts = DriverOptions::new().with_base_dir(dir.path());
    let address = "exec:///bin/sh?arg=-c&arg=echo+T=$TERM+X=$X+D=$(pwd)&env=X=a+b&cwd=work";
    let mut link = connect(connector_for(address, &opts)?.as_ref()).await?;
    let mut all = Vec::new();
    timeout(STEP, link.reader.read_to_end(&mut all)).await??;
    let expected = format!(
        "T=xterm-256color X=a b D={}\r\n",
        dir.path().join("work").display()
    );
    ensure!(String::from_utf8_lossy(&all) == expected, "{all:?}");

    let vt = connector_for("exec:///bin/sh?arg=-c&arg=echo+$TERM&term=vt220", &opts)?;
    let mut link = connect(vt.as_ref()).await?;
    let mut all = Vec::new();
    timeout(STEP, link.reader.read_to_end(&mut all)).await??;
    ensure!(all == b"vt220\r\n", "{all:?}");
    Ok(())
}

#[tokio::test]
async fn each_connect_starts_the_program_afresh() -> Result<()> {
    let exec = shell("echo READY $$; sleep 1000");
    let mut first = connect(&exec).await?;
    let mut second = connect(&exec).await?;
    let a = read_ready_pid(&mut first.reader).await?;
    let b = read_ready_pid(&mut second.reader).await?;
    ensure!(a != b);
    drop(first);
    wait_ended(&[a], KILL_GRACE + Duration::from_secs(3)).await?;
    ensure!(!ended(b), "dropping one link ended the other's program");
    Ok(())
}

#[tokio::test]
async fn missing_program_is_a_connect_error() -> Result<()> {
    let exec = connector_for(
        "exec:///nonexistent/mo-prog?arg=x",
        &DriverOptions::default(),
    )?;
    match exec.connect().await {
        Err(Error::Connect { address, reason }) => {
            ensure!(address == "exec:///nonexistent/mo-prog?arg=x");
            ensure!(reason.contains("/nonexistent/mo-prog"), "{reason}");
        }
        other => bail!("expected a Connect error, got {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn bare_names_are_found_in_path() -> Result<()> {
    let exec = connector_for("exec:echo?arg=found", &DriverOptions::default())?;
    let mut link = connect(exec.as_ref()).await?;
    let mut all = Vec::new();
    timeout(STEP, link.reader.read_to_end(&mut all)).await??;
    ensure!(all == b"found\r\n", "{all:?}");
    Ok(())
}
