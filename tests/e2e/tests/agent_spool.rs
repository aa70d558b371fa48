//! The agent's store and forward across restarts (issue 15): a real `mo-agent` holding a socat
//! pty pair spools to disk what the port prints while the daemon is down, keeps it across its own
//! restart (even a SIGKILL), and a real `mod` keeps its resume points across its restarts: every
//! line lands in the device's log once, in order, with the time the agent read it, whichever
//! side restarts.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mo_testsupport::{
    Error, Peer, Result, SocatPty, WAIT, World, add_agent, agent_cmd, ensure, run_test, wait_until,
};

/// Enroll agent `name` with a new key; returns the key's path.
fn enrolled(w: &World, name: &str) -> Result<PathBuf> {
    let token = add_agent(w, name)?;
    let key = w.dir().join(format!("{name}.key"));
    let mut cmd = agent_cmd(w, name, &key)?;
    cmd.arg("--enroll").arg(&token);
    let out = mo_testsupport::run_with_timeout(cmd, None, WAIT)?;
    ensure!(out.success(), "enrollment failed:\n{}", out.combined());
    Ok(key)
}

/// Start `mo-agent` for `name` with `ports` and wait until it has opened port p0; its log is
/// `DIR/agent-NAME-RUN.log`.
fn start_agent(w: &World, name: &str, key: &Path, ports: &[String], run: u32) -> Result<Peer> {
    let mut cmd = agent_cmd(w, name, key)?;
    for p in ports {
        cmd.arg("--port").arg(p);
    }
    let log = w.dir().join(format!("agent-{name}-{run}.log"));
    let peer = Peer::spawn("mo-agent", cmd, Some(&log))?;
    wait_until(&format!("mo-agent run {run} opening port p0"), WAIT, || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        Ok(if text.contains("port p0 open") {
            Ok(())
        } else {
            Err(text)
        })
    })?;
    Ok(peer)
}

fn log_of(w: &World, device: &str, extra: &[&str]) -> Result<String> {
    let mut args = vec!["log", "show", device];
    args.extend_from_slice(extra);
    Ok(w.mo(&args, None)?.stdout)
}

fn wait_log(w: &World, device: &str, needle: &str) -> Result<String> {
    wait_until(&format!("`{needle}` in the log of {device}"), WAIT, || {
        let text = log_of(w, device, &[])?;
        Ok(if text.contains(needle) {
            Ok(text)
        } else {
            Err(text)
        })
    })
}

/// What the agent's spool of `port` holds on disk (all segments, as text).
fn spool_text(key: &Path, port: &str) -> Result<String> {
    let mut dir = key.as_os_str().to_owned();
    dir.push(".spool");
    let dir = PathBuf::from(dir).join(format!("port-{port}"));
    let mut names: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(d) => d
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "seg"))
            .collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    let mut text = String::new();
    for name in names {
        let bytes = std::fs::read(&name).map_err(|e| Error::io(name.display().to_string(), e))?;
        text.push_str(&String::from_utf8_lossy(&bytes));
    }
    Ok(text)
}

/// Wait until the agent has `needle` in its on-disk spool of `port`.
fn wait_spooled(key: &Path, port: &str, needle: &str) -> Result<()> {
    wait_until(
        &format!("`{needle}` in the agent's spool of {port}"),
        WAIT,
        || {
            let text = spool_text(key, port)?;
            Ok(if text.contains(needle) {
                Ok(())
            } else {
                Err(format!("{} bytes spooled", text.len()))
            })
        },
    )
}

/// Write numbered lines `TAG-NN` to the port.
fn print_lines(line: &mut SocatPty, tag: &str, count: u32) -> Result<Vec<String>> {
    let mut labels = Vec::new();
    for i in 1..=count {
        let label = format!("line {tag}-{i:02} end");
        line.write_peer(format!("{label}\r\n").as_bytes())?;
        labels.push(label);
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(labels)
}

/// Every label is in `text` exactly once, in the order given.
fn once_in_order(text: &str, labels: &[String]) -> Result<()> {
    let mut last = None;
    for label in labels {
        let count = text.matches(label.as_str()).count();
        ensure!(count == 1, "`{label}` is {count} times in the log:\n{text}");
        let at = text.find(label.as_str());
        ensure!(at > last, "`{label}` is out of order in the log:\n{text}");
        last = at;
    }
    Ok(())
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

#[test]
fn spooled_output_survives_agent_and_daemon_restarts_once_in_order_with_its_time() {
    run_test("agent-spool-restarts", |w| {
        w.start_daemon(&[])?;
        let key = enrolled(w, "cs1")?;
        let mut line = SocatPty::start(w.dir())?;
        let ports = [format!("p0=serial://{}", line.device_path().display())];
        let mut agent = start_agent(w, "cs1", &key, &ports, 1)?;
        wait_until("port p0 of agent cs1", WAIT, || {
            let out = w.mo(&["agent", "ports", "cs1"], None)?;
            Ok(if out.stdout.contains("agent://cs1/p0") {
                Ok(())
            } else {
                Err(out.combined())
            })
        })?;
        w.add_device("web0", "agent://cs1/p0", &[])?;
        wait_log(w, "web0", "link up")?;
        let mut all = print_lines(&mut line, "A", 5)?;
        wait_log(w, "web0", all.last().map_or("", String::as_str))?;

        // The daemon goes down; the agent spools to disk, is killed, comes back, spools more.
        w.daemon()?.stop()?;
        let b = print_lines(&mut line, "B", 20)?;
        wait_spooled(&key, "p0", "line B-20 end")?;
        agent.kill()?;
        let mut agent = start_agent(w, "cs1", &key, &ports, 2)?;
        let c = print_lines(&mut line, "C", 10)?;
        wait_spooled(&key, "p0", "line C-10 end")?;
        // The next millisecond: every line was read before it (`--until` is exclusive).
        let restart = mo_core::log::format_timestamp((now_ns() / 1_000_000 + 1) * 1_000_000);
        w.start_daemon(&[])?;
        let text = wait_log(w, "web0", "line C-10 end")?;
        all.extend(b.iter().cloned());
        all.extend(c.iter().cloned());
        once_in_order(&text, &all)?;
        ensure!(
            text.contains("spooled record(s)"),
            "no notice of the replay:\n{text}"
        );
        // They keep the time the agent read them: before the daemon was back.
        let before = log_of(w, "web0", &["--until", &restart])?;
        for label in b.iter().chain(&c) {
            ensure!(
                before.contains(label.as_str()),
                "`{label}` is not logged before the daemon's restart ({restart}); log until \
                 then:\n{before}\nwhole log:\n{text}"
            );
        }

        // The agent restarts while the daemon is up: what it still has on disk is not
        // written twice.
        agent.terminate(Duration::from_secs(10))?;
        let _agent = start_agent(w, "cs1", &key, &ports, 3)?;
        let d = print_lines(&mut line, "D", 3)?;
        let text = wait_log(w, "web0", "line D-03 end")?;
        all.extend(d);
        once_in_order(&text, &all)?;

        // Both restart: the daemon's resume point comes from its store.
        w.daemon()?.stop()?;
        drop(_agent);
        let _agent = start_agent(w, "cs1", &key, &ports, 4)?;
        w.start_daemon(&[])?;
        let e = print_lines(&mut line, "E", 3)?;
        let text = wait_log(w, "web0", "line E-03 end")?;
        all.extend(e);
        once_in_order(&text, &all)?;
        Ok(())
    });
}
