//! Retention through the daemon: per-device size limits and the daemon's defaults applied by
//! whole closed segments while a console floods, a changed limit applied on restart, age limits
//! applied periodically to a console that has gone quiet, and audit rows archived to a
//! verifiable file before they leave the store.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mo_testsupport::{Error, Result, WAIT, World, ensure, run_test};

const MIB: u64 = 1024 * 1024;

/// A console that prints `lines` numbered lines of about 1 KB (`line 000001 …`) once — the
/// first time it runs, remembered in `DIR/NAME.done` — and is quiet from then on.
fn flood_once(w: &World, name: &str, lines: u32) -> Result<PathBuf> {
    let done = w.dir().join(format!("{name}.done"));
    let script = format!(
        "#!/bin/sh\nif [ ! -e '{done}' ]; then\n  awk 'BEGIN {{ pad = sprintf(\"%0990d\", 0); \
         for (i = 1; i <= {lines}; i++) printf \"line %06d %s\\r\\n\", i, pad }}'\n  \
         touch '{done}'\nfi\nexec sleep 600\n",
        done = done.display()
    );
    w.write_script(&format!("{name}.sh"), &script)
}

fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Result<Option<T>>) -> Result<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f()? {
            return Ok(v);
        }
        ensure!(Instant::now() < deadline, "waited {limit:?} for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The segment files of a device's log: (first seq, bytes), oldest first.
fn segments(w: &World, device: &str) -> Result<Vec<(u64, u64)>> {
    let dir = w.data_dir().join("logs").join(device);
    let mut out = Vec::new();
    for entry in
        std::fs::read_dir(&dir).map_err(|e| Error::io(format!("list {}", dir.display()), e))?
    {
        let entry = entry.map_err(|e| Error::io("list log segments", e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(seq) = name
            .strip_suffix(".mlog")
            .and_then(|n| n.parse::<u64>().ok())
        {
            let len = entry
                .metadata()
                .map_err(|e| Error::io("stat segment", e))?
                .len();
            out.push((seq, len));
        }
    }
    out.sort_unstable();
    Ok(out)
}

fn total(segs: &[(u64, u64)]) -> u64 {
    segs.iter().map(|s| s.1).sum()
}

/// Wait until the device's log holds its last flood line.
fn wait_logged(w: &World, device: &str, lines: u32) -> Result<()> {
    let needle = format!("^line {lines:06} ");
    wait_for(
        &format!("line {lines} of {device} in the log"),
        WAIT * 3,
        || {
            Ok(w.mo(&["log", "search", device, &needle], None)?
                .success()
                .then_some(()))
        },
    )
}

fn verify_pruned(w: &World, device: &str) -> Result<()> {
    let out = w.mo(&["log", "verify", device], None)?;
    ensure!(
        out.success() && out.stdout.contains("older segments were removed"),
        "`mo log verify {device}` must pass and note the pruning:\n{}",
        out.combined()
    );
    Ok(())
}

fn usage(w: &World, device: &str, extra: &[&str]) -> Result<serde_json::Value> {
    let mut args = vec!["log", "usage", device, "--json"];
    args.extend_from_slice(extra);
    let out = w.mo_ok(&args, None)?;
    let v: serde_json::Value = serde_json::from_str(&out.stdout)
        .map_err(|e| Error::Check(format!("mo log usage --json: {e}:\n{}", out.stdout)))?;
    Ok(v[0].clone())
}

#[test]
fn a_flood_keeps_the_log_within_its_limits_and_restart_applies_a_new_one() {
    run_test("retention-size", |w| {
        const LINES: u32 = 6000; // about 6 MB per device
        let own = flood_once(w, "own", LINES)?;
        let dflt = flood_once(w, "dflt", LINES)?;
        w.add_device(
            "own",
            &format!("exec://{}", own.display()),
            &["--retain-mib", "2"],
        )?;
        w.add_device("dflt", &format!("exec://{}", dflt.display()), &[])?;
        let daemon_args = ["--segment-mib", "1", "--retain-gib", "3MiB"];
        w.start_daemon(&daemon_args)?;
        wait_logged(w, "own", LINES)?;
        wait_logged(w, "dflt", LINES)?;

        for (device, limit) in [("own", 2 * MIB), ("dflt", 3 * MIB)] {
            let segs = segments(w, device)?;
            ensure!(
                segs.first().is_some_and(|s| s.0 > 1),
                "{device}: the oldest segments should be gone: {segs:?}"
            );
            // At most the limit in closed segments plus the live one (at most 1 MiB).
            ensure!(
                total(&segs) <= limit + MIB,
                "{device}: {} bytes kept with a limit of {limit}: {segs:?}",
                total(&segs)
            );
            verify_pruned(w, device)?;
            let u = usage(w, device, &["--retain-gib", "3MiB"])?;
            ensure!(
                u["bytes"].as_u64() == Some(total(&segs))
                    && u["segments"].as_u64() == Some(segs.len() as u64),
                "{device}: mo log usage disagrees with the directory {segs:?}: {u}"
            );
        }
        // The device's own limit wins over the daemon's default.
        ensure!(
            total(&segments(w, "own")?) < total(&segments(w, "dflt")?),
            "own (2 MiB) should keep less than dflt (3 MiB default)"
        );

        // A smaller limit, set while the daemon is stopped, is applied when it starts again —
        // the console is quiet now, so no rotation would ever apply it.
        w.daemon()?.stop()?;
        let before = segments(w, "own")?;
        w.mo_ok(&["device", "set", "own", "--retain-mib", "1"], None)?;
        let plan = usage(w, "own", &[])?;
        let planned = plan["remove"]["segments"].as_u64().unwrap_or(0);
        ensure!(
            planned >= 1 && segments(w, "own")? == before,
            "mo log usage should plan removals without deleting: {plan}"
        );
        w.start_daemon(&daemon_args)?;
        let after = wait_for("the new limit applied at start", WAIT, || {
            let segs = segments(w, "own")?;
            Ok((segs.len() as u64 + planned == before.len() as u64).then_some(segs))
        })?;
        ensure!(
            total(&after) <= 2 * MIB,
            "own: {} bytes kept with a 1 MiB limit: {after:?}",
            total(&after)
        );
        verify_pruned(w, "own")?;
        ensure!(
            w.mo(
                &["log", "search", "own", &format!("^line {LINES:06} ")],
                None
            )?
            .success(),
            "the newest records must stay"
        );
        Ok(())
    });
}

#[test]
fn a_quiet_console_ages_out_and_audit_rows_are_archived_first() {
    run_test("retention-age-audit", |w| {
        const LINES: u32 = 3000;
        let script = flood_once(w, "quiet", LINES)?;
        w.add_device("quiet", &format!("exec://{}", script.display()), &[])?;
        // An audited change (by os:USER, source cli): a row for the archive.
        w.mo_ok(&["group", "add", "quietgroup", "--member", "quiet"], None)?;
        // Three and ten seconds as fractional days (N / 86400). Audit rows live longer so that
        // the row recording a prune is still in the store when the test checks its archive.
        let three_s = "0.0000347222";
        let ten_s = "0.000115741";
        w.start_daemon(&[
            "--segment-mib",
            "1",
            "--retain-days",
            three_s,
            "--retain-check",
            "1s",
            "--audit-retain-days",
            ten_s,
            "--events-retain-days",
            three_s,
        ])?;
        wait_logged(w, "quiet", LINES)?;
        // Rotation never removes the segment it just closed (its successor is brand new), so
        // only the periodic check can bring a quiet log down to its live segment.
        let segs = wait_for("the quiet log to age out to its live segment", WAIT, || {
            let segs = segments(w, "quiet")?;
            Ok((segs.len() == 1).then_some(segs))
        })?;
        ensure!(segs[0].0 > 1, "the live segment is not the first: {segs:?}");
        verify_pruned(w, "quiet")?;
        ensure!(
            w.mo(
                &["log", "search", "quiet", &format!("^line {LINES:06} ")],
                None
            )?
            .success(),
            "the live segment's records must stay"
        );

        // Audit: the row of `mo group add` is archived, then gone from the store.
        let archive_dir = w.data_dir().join("audit-archive");
        let (archive, text) = wait_for("an audit archive of group.add", WAIT * 2, || {
            let found = std::fs::read_dir(&archive_dir)
                .ok()
                .into_iter()
                .flatten()
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
                .filter_map(|p| std::fs::read_to_string(&p).ok().map(|t| (p, t)))
                .find(|(_, t)| t.contains("\"action\":\"group.add\"") && t.contains("quietgroup"));
            Ok(found)
        })?;
        let out = w.mo_ok(
            &["audit", "verify-archive", &archive.display().to_string()],
            None,
        )?;
        ensure!(
            out.stdout.contains("OK") && out.stdout.contains("records the same digest"),
            "verify-archive:\n{}",
            out.combined()
        );
        let out = w.mo_ok(
            &[
                "audit",
                "verify-archive",
                "--json",
                &archive.display().to_string(),
            ],
            None,
        )?;
        let report: serde_json::Value = serde_json::from_str(&out.stdout)
            .map_err(|e| Error::Check(format!("verify-archive --json: {e}:\n{}", out.stdout)))?;
        ensure!(
            report["recorded"] == "same"
                && report["rows"].as_u64().is_some_and(|n| n >= 1)
                && report["sha256"].as_str().is_some_and(|h| h.len() == 64),
            "verify-archive --json:\n{}",
            out.stdout
        );
        let left = w.mo_ok(&["audit", "--json", "--limit", "1000"], None)?;
        ensure!(
            !left.stdout.contains("quietgroup") && left.stdout.contains("audit.prune"),
            "the archived rows must be gone and the prune recorded:\n{}",
            left.stdout
        );
        // A changed archive fails verification.
        let copy = w.dir().join(archive.file_name().unwrap_or_default());
        write(&copy, &text.replacen("quietgroup", "othergroup", 1))?;
        let out = w.mo(
            &["audit", "verify-archive", &copy.display().to_string()],
            None,
        )?;
        ensure!(
            out.status.code() == Some(1) && out.stderr.contains("SHA-256 mismatch"),
            "a changed archive must fail:\n{}",
            out.combined()
        );
        Ok(())
    });
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| Error::io(format!("write {}", path.display()), e))
}
