//! The pty half of `mo-bench flood-pty` (the run itself is [`crate::flood_unix::run`]): the
//! producer each console runs on its pty, and the bare reader's own ptys.
//!
//! Both readers get the same producer (`mo-bench flood-pty-producer`, one process per console)
//! on the slave side of a fresh pty. mo's exec driver leaves a new pty in the kernel's cooked
//! mode, as a login would see it, and programs set the mode they need; so the producer itself
//! puts its terminal in raw mode (`cfmakeraw`, what `stty raw -echo` does) before it writes, in
//! both readers alike. A raw pty passes the bytes unchanged (no `\n` → `\r\n`, no echo), so
//! every log must hold exactly the flood, as over Unix sockets.
//!
//! The bare reader opens each pty as the driver does ([`crate::pty::open`]), starts the producer
//! with the slave as its standard input, output and error, closes its own copy of the slave, and
//! reads the non-blocking master through tokio until the kernel answers `EIO` (no slave holder
//! left, the output drained).

use std::path::PathBuf;

use crate::flood_unix::{Pace, flood_text};
use crate::pty::{Master, set_raw};
use anyhow::Context as _;

/// Options of the producer `mo-bench flood-pty` runs on each pty (not for use by hand).
#[derive(Debug, clap::Args)]
pub struct ProducerOpts {
    /// Numbered lines to write.
    #[arg(long)]
    lines: u64,
    /// Seeds the chunk sizes with `--rate`, so consoles differ.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// After the flood, wait until the terminal hangs up instead of exiting (a console would
    /// start the program again when it exits).
    #[arg(long)]
    hold: bool,
    #[command(flatten)]
    pace: Pace,
}

/// The producer: its terminal (standard input) in raw mode, then the flood on standard output,
/// then exit — or, with `--hold`, wait for the hangup.
pub async fn produce(o: ProducerOpts) -> anyhow::Result<()> {
    let stdin = std::io::stdin();
    set_raw(&stdin).context("standard input is not a terminal")?;
    let text = flood_text(o.lines);
    // Standard output is the pty's slave, blocking: tokio writes it from its blocking pool.
    let mut out = tokio::fs::File::from_std(std::fs::File::from(
        std::os::fd::AsFd::as_fd(&std::io::stdout()).try_clone_to_owned()?,
    ));
    o.pace.send(&mut out, &text, o.seed).await?;
    tokio::io::AsyncWriteExt::flush(&mut out).await?;
    if o.hold {
        // Nothing is typed: this returns when the console hangs up (or SIGHUP ends us first).
        tokio::task::spawn_blocking(move || {
            let mut sink = Vec::new();
            let _ = std::io::Read::read_to_end(&mut stdin.lock(), &mut sink);
        })
        .await?;
    }
    Ok(())
}

/// How to start the producers of one run.
pub struct PtyFlood {
    exe: PathBuf,
    lines: u64,
    pace: Pace,
}

impl PtyFlood {
    /// Producers of `lines` lines each, paced by `pace`: this program's hidden subcommand.
    pub fn new(lines: u64, pace: Pace) -> anyhow::Result<PtyFlood> {
        Ok(PtyFlood {
            exe: std::env::current_exe()?,
            lines,
            pace,
        })
    }

    fn args(&self, console: usize, hold: bool) -> Vec<String> {
        let mut args = vec![
            "flood-pty-producer".to_owned(),
            "--lines".to_owned(),
            self.lines.to_string(),
            "--seed".to_owned(),
            console.to_string(),
        ];
        args.extend(self.pace.args());
        if hold {
            args.push("--hold".to_owned());
        }
        args
    }

    /// The `exec://` address of console `console` in mo's run: the producer, holding its
    /// terminal open after the flood.
    pub fn address(&self, console: usize) -> String {
        let spec = self
            .args(console, true)
            .into_iter()
            .fold(mo_drivers::ExecSpec::new(&self.exe), |spec, a| spec.arg(a));
        spec.to_address()
    }

    /// Open a pty for console `console` of the bare reader and start its producer on it (the
    /// producer exits after the flood).
    pub fn spawn_bare(&self, console: usize) -> anyhow::Result<BarePty> {
        let (master, slave) = crate::pty::open()?;
        let mut command = tokio::process::Command::new(&self.exe);
        command.args(self.args(console, false));
        let child = crate::pty::spawn_on(command, slave).context("cannot start a producer")?;
        // This process's copies of the slave are gone: the master reads EIO once the producer
        // has exited and its output is read.
        Ok(BarePty { master, child })
    }
}

/// A pty of the bare reader: its master and the producer on its slave.
pub struct BarePty {
    master: Master,
    child: tokio::process::Child,
}

impl BarePty {
    /// Read what the producer wrote; `Ok(0)` at the end.
    pub async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.master.read(buf).await
    }

    /// Wait for the producer to exit (it has, once [`BarePty::read`] returned 0).
    pub async fn finish(mut self) -> anyhow::Result<()> {
        let status = self.child.wait().await?;
        if !status.success() {
            anyhow::bail!("a producer failed: {status}");
        }
        Ok(())
    }
}
