//! mo-core's automation layer (expect, gang, listen, macros, scheduler) on real consoles of `sim`
//! devices.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, Result, bail};
use mo_core::automation::classify::{Location, classify};
use mo_core::automation::expect::{ExpectPattern, Expecter};
use mo_core::automation::gang::{CollectOptions, Gang, GangEventKind, Listen, Normalise, Refusal};
use mo_core::automation::macros::{
    Macro, OnFailure, Outcome, PlayOptions, Recorder, dry_run, play_many,
};
use mo_core::automation::schedule::{Job, Scheduler};
use mo_core::console::{Console, ConsoleConfig, Mode, ViewerEvent};
use mo_core::log::{LogOptions, LogWriter};
use mo_core::record::RecordKind;
use mo_drivers::{DriverOptions, connector_for};

const T: Duration = Duration::from_secs(20);

fn sim(name: &str, query: &str) -> Console {
    let url = format!("sim://{name}?boot=fast{query}");
    let connector = connector_for(&url, &DriverOptions::default()).unwrap();
    Console::spawn(ConsoleConfig::new(name), connector, None)
}

fn sim_logged(name: &str, dir: &Path) -> Console {
    let url = format!("sim://{name}?boot=fast");
    let connector = connector_for(&url, &DriverOptions::default()).unwrap();
    let (log, _) = LogWriter::open(&dir.join(name), LogOptions::default()).unwrap();
    Console::spawn(ConsoleConfig::new(name), connector, Some(Box::new(log)))
}

fn shell_prompt(device: &str) -> ExpectPattern {
    ExpectPattern::literal(&format!("{device}:~$ ")).unwrap()
}

/// Log in on a sim's console as `user` and wait for the shell prompt.
async fn login(e: &mut Expecter) -> Result<()> {
    let device = e.device().to_string();
    e.expect(&[ExpectPattern::regex("login: $")?], T).await?;
    e.send_line("root").await?;
    e.expect(&[ExpectPattern::literal("Password: ")?], T)
        .await?;
    e.send_line("pw").await?;
    e.expect(&[shell_prompt(&device)], T).await?;
    Ok(())
}

/// Wait until each console shows its login prompt.
async fn wait_login(consoles: &[Console]) -> Result<()> {
    for c in consoles {
        let s = c.attach("setup", Mode::Spy, None).await?;
        let mut e = Expecter::with_replay(s);
        e.expect(&[ExpectPattern::regex("login: $")?], T)
            .await
            .with_context(|| c.name().to_string())?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expect_login_then_run_a_command() -> Result<()> {
    let c = sim("ex1", "");
    let s = c.attach("alice", Mode::Attach, None).await?;
    let mut e = Expecter::with_replay(s);
    let m = e
        .expect(
            &[
                ExpectPattern::literal("never")?,
                ExpectPattern::regex(r"(\S+) login: $")?,
            ],
            T,
        )
        .await?;
    assert_eq!(m.index, 1);
    assert_eq!(m.matched, "ex1 login: ");
    assert_eq!(m.captures, vec![Some("ex1".to_string())]);
    assert_eq!(m.missed, 0);
    // ANSI-stripped, one `\n` per line end: the boot text came before the prompt.
    assert!(m.before.contains("GRUB"), "{:?}", m.before);
    assert!(!m.before.contains('\r') && !m.before.contains('\x1b'));
    assert_eq!(classify(e.recent()), Location::Login);

    e.send_line("root").await?;
    e.expect(&[ExpectPattern::literal("Password: ")?], T)
        .await?;
    assert_eq!(classify(e.recent()), Location::Password);
    e.send_line("pw").await?;
    e.expect(&[shell_prompt("ex1")], T).await?;
    assert_eq!(classify(e.recent()), Location::Shell);

    e.send_line("echo hi").await?;
    let m = e.expect(&[shell_prompt("ex1")], T).await?;
    assert_eq!(m.before, "echo hi\nhi\n");

    // BREAK drops the sim into its boot monitor; the classifier knows it.
    e.session().send_break(1).await?;
    e.expect(&[ExpectPattern::regex("\nok $")?], T).await?;
    assert_eq!(classify(e.recent()), Location::BootMonitor);
    e.send_line("go").await?;
    // Wake: Enter until the shell prompt shows again.
    let m = e
        .wake(&[shell_prompt("ex1")], 3, Duration::from_secs(2))
        .await?;
    assert_eq!(m.matched, "ex1:~$ ");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_that_never_shows_the_prompt_times_out() -> Result<()> {
    let c = sim("hang1", "");
    let mut e = Expecter::with_replay(c.attach("alice", Mode::Attach, None).await?);
    login(&mut e).await?;
    e.send_line("panic").await?;
    e.expect(&[ExpectPattern::literal("Kernel panic")?], T)
        .await?;
    let started = tokio::time::Instant::now();
    let err = e
        .wake(&[shell_prompt("hang1")], 3, Duration::from_millis(300))
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(err, mo_core::Error::Timeout { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("hang1") && text.contains("hang1:~$ "),
        "{text}"
    );
    assert!(elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(5));
    assert_eq!(classify(e.recent()), Location::Crashed);
    // The console and the session are still usable after the timeout.
    e.session().send_break(1).await?;
    e.expect(&[ExpectPattern::regex("ok $")?], T).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gang_of_50_flags_the_divergent_device() -> Result<()> {
    let consoles: Vec<Console> = (0..50).map(|i| sim(&format!("g{i:02}"), "")).collect();
    wait_login(&consoles).await?;
    let (listen, refused) = Listen::open("watcher", &consoles[..3]).await;
    assert!(refused.is_empty());
    let (mut gang, refused) = Gang::open("ops", &consoles).await;
    assert!(refused.is_empty(), "{refused:?}");
    assert_eq!(gang.devices().len(), 50);
    let opts = CollectOptions {
        quiet: Duration::from_millis(300),
        ..CollectOptions::default()
    };
    gang.command("root", &opts).await;
    // The banner's "Last login" date differs per machine: masked, every answer is the same.
    let masked = CollectOptions {
        normalise: Normalise {
            mask_timestamps: true,
            mask_digits: true,
            ..Normalise::default()
        },
        ..opts.clone()
    };
    let r = gang.command("pw", &masked).await;
    assert!(r.divergent.is_empty(), "{:?}", r.normalised);
    assert_eq!(r.majority.len(), 50);

    // One device gets another command first: it is in `cat`, copying lines back.
    gang.send_to("g07", b"cat\r").await?;
    let r = gang.command("echo hi", &opts).await;
    assert!(r.failed.is_empty(), "{:?}", r.failed);
    assert_eq!(r.divergent, vec!["g07"]);
    assert_eq!(r.majority.len(), 49);
    for (device, raw) in &r.outputs {
        let text = String::from_utf8_lossy(raw);
        if device == "g07" {
            assert!(!text.contains("g07:~$"), "{text:?}");
        } else {
            assert!(text.contains("\r\nhi\r\n"), "{device}: {text:?}");
            assert!(
                text.ends_with(&format!("{device}:~$ ")),
                "{device}: {text:?}"
            );
        }
    }
    // Each console's own log tail holds its own output and no other's.
    for c in &consoles[..5] {
        let tail = String::from_utf8_lossy(&c.replay(3).await?).into_owned();
        let own = format!("{}:~$", c.name());
        assert!(tail.contains(&own), "{tail:?}");
        for other in &consoles[..5] {
            if other.name() != c.name() {
                assert!(!tail.contains(&format!("{}:~$", other.name())));
            }
        }
    }

    // Pausing the divergent device: input goes to the others only.
    let pause = CollectOptions {
        pause_divergent: true,
        ..opts.clone()
    };
    let r = gang.command("echo again", &pause).await;
    assert_eq!(r.divergent, vec!["g07"]);
    assert_eq!(gang.paused(), vec!["g07"]);
    let r = gang.command("uptime", &opts).await;
    assert_eq!(r.outputs.len(), 49);
    assert!(!r.outputs.contains_key("g07"));

    // The listener saw the three first devices' output, tagged.
    let mut listen = listen;
    let mut seen: std::collections::BTreeMap<String, String> = Default::default();
    while seen.len() < 3 || seen.values().any(|t| !t.contains("\r\nhi\r\n")) {
        let ev = tokio::time::timeout(T, listen.next())
            .await?
            .context("listen ended")?;
        if let GangEventKind::Output(b) = &ev.kind {
            seen.entry(ev.device.to_string())
                .or_default()
                .push_str(&String::from_utf8_lossy(b));
        }
    }
    assert_eq!(seen.keys().collect::<Vec<_>>(), vec!["g00", "g01", "g02"]);
    // Each device's stream holds its own prompt only.
    for (device, text) in &seen {
        assert!(text.contains(&format!("{device}:~$ ")));
        assert!(!text.contains("g07"));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_console_is_reported_not_spied() -> Result<()> {
    let held = sim("busy1", "");
    let free = sim("free1", "");
    let _bob = held.attach("bob", Mode::Attach, None).await?;
    let (gang, refused) = Gang::open("ops", &[held.clone(), free.clone()]).await;
    assert_eq!(gang.devices(), vec!["free1"]);
    assert_eq!(refused.len(), 1);
    assert!(matches!(&refused[0], Refusal::Busy { held_by, .. } if held_by == "bob"));
    assert_eq!(refused[0].to_string(), "busy1: busy: held by bob");
    // The refused console kept no session of ours.
    let who = held.who().await?;
    assert!(who.iter().all(|v| &*v.user != "ops"), "{who:?}");

    let m = Macro::parse("expect /login: $/\n")?;
    let reports = play_many("ops", &[held], &m, &[], &PlayOptions::default()).await;
    assert_eq!(
        reports[0].outcome,
        Outcome::Busy {
            held_by: "bob".into()
        }
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_macro_replays_on_20_devices() -> Result<()> {
    let c = sim("rec1", "");
    let mut spy = c.attach("recorder", Mode::Spy, Some(0)).await?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let recording = tokio::spawn(async move {
        let stop = async {
            let _ = stop_rx.await;
        };
        Recorder::new("rec1")
            .only_user("alice")
            .record(&mut spy, stop)
            .await
    });
    let mut e = Expecter::with_replay(c.attach("alice", Mode::Attach, None).await?);
    login(&mut e).await?;
    e.send_line("echo hi").await?;
    e.expect(&[shell_prompt("rec1")], T).await?;
    e.send_line("hostname").await?;
    e.expect(&[shell_prompt("rec1")], T).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop_tx.send(()).ok();
    let m = recording.await??;
    let text = m.to_text();
    assert!(text.contains("param password\n"), "{text}");
    assert!(text.contains("sendline echo hi\n"), "{text}");
    assert!(text.contains("expect /${device}:\\~\\$ $/"), "{text}");
    assert!(!text.contains("sendline pw"), "{text}");

    let consoles: Vec<Console> = (0..20).map(|i| sim(&format!("r{i:02}"), "")).collect();
    let mut watcher = consoles[3].attach("watcher", Mode::Spy, Some(0)).await?;
    let opts = PlayOptions {
        name: "hello".into(),
        parallel: 8,
        ..PlayOptions::default()
    };
    let plan = m.bind_for(Some("r00"), &[("password", "pw")])?;
    let dry = dry_run("hello", &plan);
    assert!(dry.contains("sendline \"***\""), "{dry}");
    let reports = play_many("ops", &consoles, &m, &[("password", "pw")], &opts).await;
    for r in &reports {
        assert!(r.ok(), "{r}");
        assert_eq!(r.steps_done, plan.steps.len());
    }
    // The playback was visible to a viewer, step by step, and did what it should.
    let mut notes = Vec::new();
    let mut output = String::new();
    while !notes.iter().any(|n: &String| n.ends_with("done")) {
        match tokio::time::timeout(T, watcher.recv()).await? {
            ViewerEvent::Chunk(ch) if ch.kind == RecordKind::Note => {
                notes.push(String::from_utf8_lossy(&ch.bytes).into_owned());
            }
            ViewerEvent::Chunk(ch) if ch.is_output() => {
                output.push_str(&String::from_utf8_lossy(&ch.bytes));
            }
            ViewerEvent::Closed => bail!("closed"),
            _ => {}
        }
    }
    assert!(notes[0].starts_with("macro hello: started"), "{notes:?}");
    assert!(
        notes.iter().any(|n| n.contains("sendline \"echo hi\"")),
        "{notes:?}"
    );
    assert!(
        output.contains("\r\nr03\r\n"),
        "hostname printed: {output:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_expect_stops_that_device_only() -> Result<()> {
    let text = "\
# log in as root
expect /login: $/
sendline root
expect /Password: $/
sendline pw
expect /${device}:~\\$ $/ timeout=2s
sendline echo done
";
    let m = Macro::parse(text)?;
    // f03 only lets `admin` in: its shell prompt never comes.
    let consoles: Vec<Console> = (0..6)
        .map(|i| {
            let q = if i == 3 { "&login=admin" } else { "" };
            sim(&format!("f{i:02}"), q)
        })
        .collect();
    let opts = PlayOptions {
        parallel: 3,
        ..PlayOptions::default()
    };
    let reports = play_many("ops", &consoles, &m, &[], &opts).await;
    for r in &reports {
        if r.device == "f03" {
            let Outcome::Failed { line, error, .. } = &r.outcome else {
                panic!("{r}")
            };
            assert_eq!(*line, 6);
            assert!(error.contains("f03"), "{error}");
            assert_eq!(r.steps_done, 4);
            assert!(r.to_string().starts_with("f03: failed at line 6"), "{r}");
        } else {
            assert!(r.ok(), "{r}");
        }
    }

    // Stop on the first failure: with one at a time and the failing device first, nobody else
    // starts.
    let order = vec![
        consoles[3].clone(),
        consoles[0].clone(),
        consoles[1].clone(),
    ];
    for c in &order[1..] {
        // Back to the login prompt for a fresh run.
        c.reconnect("test").await?;
    }
    let stop = PlayOptions {
        parallel: 1,
        on_failure: OnFailure::StopAll,
        ..PlayOptions::default()
    };
    let reports = play_many("ops", &order, &m, &[], &stop).await;
    assert!(matches!(
        reports[0].outcome,
        Outcome::Failed { line: 6, .. }
    ));
    assert_eq!(reports[1].outcome, Outcome::Cancelled);
    assert_eq!(reports[2].outcome, Outcome::Cancelled);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_macro_files_are_refused_with_line_numbers() {
    let e = Macro::parse_named("fw.macro", "expect /ok/\nsendline ${who}\nwait soon\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("fw.macro"), "{e}");
    assert!(
        e.contains("line 2: `${who}` is not a declared parameter"),
        "{e}"
    );
    assert!(e.contains("line 3:"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_macro_runs_and_missed_runs_are_reported() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let consoles = vec![sim_logged("s01", dir.path()), sim_logged("s02", dir.path())];
    wait_login(&consoles).await?;
    let m = Macro::parse("expect /login: $/\n")?;
    let job = Job::new("probe", "* * * * * *", m, vec!["s01".into(), "s02".into()])?;
    let mut scheduler = Scheduler::new();
    let now = SystemTime::now();
    // Down for the last 10 s: ten runs of an every-second job were missed.
    scheduler.add(job, Some(now - Duration::from_millis(10_500)));
    let missed = scheduler.missed(now);
    assert!((10..=11).contains(&missed.len()), "{}", missed.len());
    assert!(missed.iter().all(|r| r.job == "probe" && r.due <= now));

    let runs = Arc::new(AtomicUsize::new(0));
    let ok = Arc::new(AtomicUsize::new(0));
    let (runs2, ok2, consoles2) = (runs.clone(), ok.clone(), consoles.clone());
    let callback = move |job: Job, due: SystemTime| {
        let (runs, ok, consoles) = (runs2.clone(), ok2.clone(), consoles2.clone());
        async move {
            assert!(SystemTime::now() >= due);
            let targets: Vec<Console> = consoles
                .into_iter()
                .filter(|c| job.devices.iter().any(|d| d == c.name()))
                .collect();
            let opts = PlayOptions {
                name: job.name.clone(),
                ..PlayOptions::default()
            };
            let reports = play_many("scheduler", &targets, &job.macro_, &[], &opts).await;
            runs.fetch_add(1, Ordering::SeqCst);
            ok.fetch_add(reports.iter().filter(|r| r.ok()).count(), Ordering::SeqCst);
        }
    };
    let started = SystemTime::now();
    scheduler
        .run(callback, tokio::time::sleep(Duration::from_millis(2600)))
        .await;
    let n = runs.load(Ordering::SeqCst);
    assert!((2..=3).contains(&n), "{n} runs");
    assert_eq!(ok.load(Ordering::SeqCst), 2 * n);
    assert!(scheduler.last_run("probe").unwrap() > started);

    // The results are in each device's record log.
    for c in &consoles {
        c.shutdown().await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for name in ["s01", "s02"] {
        let records = mo_core::log::tail(&dir.path().join(name), 200)?;
        let done = records
            .iter()
            .filter(|r| r.kind == RecordKind::Note && r.bytes == b"macro probe: done")
            .count();
        assert_eq!(done, n, "{name}");
    }
    Ok(())
}
