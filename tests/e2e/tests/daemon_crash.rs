//! `kill -9` of the daemon while a device floods, then a restart: the record log still verifies,
//! and it holds the output of every run.

use std::thread;
use std::time::{Duration, Instant};

use mo_testsupport::{FLOOD_FOREVER, WAIT, World, dir_size, ensure, run_test};

/// Wait until the data dir has grown by `by` bytes since `from`.
fn wait_growth(w: &World, from: u64, by: u64) -> mo_testsupport::Result<u64> {
    let deadline = Instant::now() + WAIT;
    loop {
        let size = dir_size(w.data_dir());
        if size >= from + by {
            return Ok(size);
        }
        ensure!(
            Instant::now() < deadline,
            "the data dir grew from {from} to only {size} bytes in {WAIT:?} (flooding device not logged?)"
        );
        thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn log_verifies_after_kill_9_during_a_flood() {
    run_test("daemon-crash", |w| {
        let script = w.write_script("flood.sh", FLOOD_FOREVER)?;
        w.add_device("flood1", &format!("exec://{}", script.display()), &[])?;
        w.add_user("alice", "alice-pw")?;
        w.start_daemon(&[])?;

        let mut size = dir_size(w.data_dir());
        for round in 1..=3 {
            // Let it flood (and log) for a while, then crash it mid-write.
            size = wait_growth(w, size, 1_000_000)?;
            thread::sleep(Duration::from_millis(100 * round));
            w.daemon()?.kill9()?;
            w.start_daemon(&[])?;
            let verify = w.mo(&["log", "verify", "flood1"], None)?;
            ensure!(
                verify.success(),
                "round {round}: `mo log verify flood1` failed after kill -9 and restart:\n{}",
                verify.combined()
            );
        }
        // The restarted daemon logs again, and the log still verifies while it floods.
        size = wait_growth(w, size, 300_000)?;
        let verify = w.mo(&["log", "verify", "flood1"], None)?;
        ensure!(
            verify.success(),
            "`mo log verify flood1` failed while flooding after the last restart:\n{}",
            verify.combined()
        );
        w.daemon()?.stop()?;
        let verify = w.mo(&["log", "verify", "flood1"], None)?;
        ensure!(
            verify.success(),
            "`mo log verify flood1` failed after a clean stop:\n{}",
            verify.combined()
        );
        // Every run of the device (its counter restarts at 1) is in the log: four runs.
        let show = w.mo_ok(&["log", "show", "flood1"], None)?;
        let starts = show.stdout.matches("flood line 1 padding").count();
        ensure!(
            starts >= 4,
            "expected the first flood line of each of the 4 runs in the log, found {starts} ({} bytes of log, data dir {size} bytes)",
            show.stdout.len()
        );
        Ok(())
    });
}
