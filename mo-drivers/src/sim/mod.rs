//! `sim`: a built-in simulated machine behind a serial console, for demos, tests and benchmarks.
//!
//! Each [`SimConnector::connect`] powers the machine on. It prints a firmware self test, a GRUB menu
//! with its countdown, a kernel log with `[    0.000000]` timestamps and systemd's `[  OK  ]` lines,
//! then `NAME login: ` where NAME is the device name. Any user name is taken (unless `login` says
//! otherwise); the `Password: ` is not echoed and must match `password` if given. Input is echoed
//! like a tty's (CR as `\r\n`, Backspace/DEL, Ctrl-U, Ctrl-C, Ctrl-D, arrow keys ignored).
//!
//! The shell (prompt `NAME:~$ `) knows:
//!
//! | command | what it does |
//! |---------|--------------|
//! | `echo [-n] ARGS` | prints ARGS (without their quotes, as a shell would) |
//! | `sh -c COMMANDS`, `true`, `false` | as in sh |
//! | `hostname`, `date`, `uptime`, `whoami`, `uname [-asnrvmo]`, `seq [FIRST] LAST` | what you expect |
//! | `stty [size]` | the line settings, or the window size last set with [`ControlOp::WindowSize`](mo_core::link::ControlOp::WindowSize) |
//! | `flood RATE [SECONDS]` | numbered 64-byte lines at RATE bytes/s (`500`, `100k`, `10M`, `1G`, or `max` for as fast as they are read), for SECONDS or until Ctrl-C |
//! | `cat` | copies lines back until Ctrl-D |
//! | `panic` | prints a kernel panic with its call trace, then hangs: only BREAK or a new connection helps |
//! | `reboot` | shuts down and boots again |
//! | `exit`, `logout`, Ctrl-D | back to `login:` |
//! | `help` | the list |
//!
//! Lines may be `;`-lists with quotes, `$VAR`, `${VAR}`, `$?`, `$@`, `$1`…, assignments (`A=1`,
//! or `A=1 cmd` for one command) and function definitions `NAME() { …; }` — what labgrid's
//! `ShellDriver` needs to run commands (see `sh.rs`); no pipes, redirections or `$(…)`.
//!
//! [`ControlOp::Break`](mo_core::link::ControlOp::Break) at any time drops the machine into its boot monitor (prompt `ok `), which
//! knows `boot`, `reset`, `go` (resume what BREAK interrupted), `printenv` and `help`.
//!
//! # Address
//!
//! `sim://NAME?boot=fast&baud=9600&seed=7&login=admin&password=secret`, all parameters optional:
//!
//! | parameter | meaning | default |
//! |-----------|---------|---------|
//! | `boot` | `normal` (about 2.5 s), `fast` (a few ms, for tests) or `none` (straight to `login:`) | `normal` |
//! | `baud` | paces all output like a serial line at this speed (10 bits a byte), 50 to 4000000 | no pacing |
//! | `seed` | varies the machine's MAC address, serial number, clock and load | from the name |
//! | `login` | the only user name accepted | any |
//! | `password` | the only password accepted | any |
//! | `pager` | lines per page: a command's longer output stops at `--More--` (Space: next page, Enter: next line, `q`: the rest is dropped), as network gear does | no pager |
//!
//! # Cost
//!
//! A sim has no task and no timer of its own: the link's reader drives it, and output is generated
//! only as it is read, so a sim nobody reads holds at most about 2 KiB of waiting output. An idle
//! sim at its prompt takes well under 1 KiB, so tens of thousands fit in one process. `flood max`
//! writes straight into the reader's buffer.
//!
//! # Example
//!
//! ```
//! use mo_core::link::Connector;
//! use mo_drivers::sim::{SimConnector, SimOptions};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let url = url::Url::parse("sim://web01?boot=none&password=secret")?;
//! let sim = SimConnector::new("web01", SimOptions::from_query(&url)?);
//! let mut link = sim.connect().await?;
//!
//! // Read until `want` has been seen.
//! let mut seen = Vec::new();
//! let mut until = async |reader: &mut mo_core::link::LinkReader, want: &str| {
//!     let mut buf = [0u8; 4096];
//!     while !String::from_utf8_lossy(&seen).contains(want) {
//!         let n = reader.read(&mut buf).await?;
//!         seen.extend_from_slice(&buf[..n]);
//!     }
//!     seen.clear();
//!     std::io::Result::Ok(())
//! };
//! until(&mut link.reader, "web01 login: ").await?;
//! link.writer.write_all(b"root\r").await?;
//! until(&mut link.reader, "Password: ").await?;
//! link.writer.write_all(b"secret\r").await?;
//! until(&mut link.reader, "web01:~$ ").await?;
//! link.writer.write_all(b"echo hello\r").await?;
//! until(&mut link.reader, "\r\nhello\r\n").await?;
//! # Ok(())
//! # }
//! ```

mod flood;
mod link;
mod machine;
mod monitor;
mod more;
mod script;
mod sh;
mod shell;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use mo_core::link::{Capabilities, Connector, Link};
use mo_core::{Error, Result};
use url::Url;

pub use flood::{FLOOD_LINE_LEN, flood_line};

/// How long the simulated boot takes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum BootSpeed {
    /// About 2.5 seconds, like a quick real machine.
    #[default]
    Normal,
    /// The same text in a few milliseconds (for tests).
    Fast,
    /// No boot text: straight to the login prompt.
    None,
}

/// Settings of a simulated machine (the query parameters of a `sim://` address).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SimOptions {
    /// How long booting takes.
    pub boot: BootSpeed,
    /// Pace output like a serial line at this baud rate (10 bits a byte); `None` for no pacing.
    pub baud: Option<u32>,
    /// Varies MAC address, serial number and the like; `None` derives it from the name.
    pub seed: Option<u64>,
    /// The only user name accepted at `login:`; `None` accepts any.
    pub login: Option<String>,
    /// The only password accepted; `None` accepts any.
    pub password: Option<String>,
    /// Lines per page: a command's longer output stops at `--More--`; `None`: no pager.
    pub pager: Option<u16>,
}

impl fmt::Debug for SimOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimOptions")
            .field("boot", &self.boot)
            .field("baud", &self.baud)
            .field("seed", &self.seed)
            .field("login", &self.login)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("pager", &self.pager)
            .finish()
    }
}

const PARAMETERS: &str = "boot, baud, seed, login, password, pager";

impl SimOptions {
    /// Read the options from the query of a `sim://NAME?...` address. Unknown, repeated or
    /// malformed parameters are [`Error::BadAddress`] errors naming the parameter.
    pub fn from_query(url: &Url) -> Result<SimOptions> {
        let bad = |reason: String| Error::BadAddress {
            address: redacted(url),
            reason,
        };
        let mut opts = SimOptions::default();
        let mut seen: Vec<String> = Vec::new();
        for (key, value) in url.query_pairs() {
            if seen.iter().any(|k| *k == key) {
                return Err(bad(format!("parameter `{key}` is given twice")));
            }
            seen.push(key.to_string());
            match key.as_ref() {
                "boot" => {
                    opts.boot = match value.as_ref() {
                        "normal" => BootSpeed::Normal,
                        "fast" => BootSpeed::Fast,
                        "none" => BootSpeed::None,
                        other => {
                            return Err(bad(format!(
                                "parameter `boot` must be normal, fast or none, not `{other}`"
                            )));
                        }
                    }
                }
                "baud" => match value.parse::<u32>() {
                    Ok(baud) if (50..=4_000_000).contains(&baud) => opts.baud = Some(baud),
                    _ => {
                        return Err(bad(format!(
                            "parameter `baud` must be a whole number from 50 to 4000000, not \
                             `{value}`"
                        )));
                    }
                },
                "seed" => match value.parse::<u64>() {
                    Ok(seed) => opts.seed = Some(seed),
                    Err(_) => {
                        return Err(bad(format!(
                            "parameter `seed` must be a whole number from 0 to {}, not `{value}`",
                            u64::MAX
                        )));
                    }
                },
                "login" => {
                    if value.is_empty()
                        || value.chars().any(|c| c.is_whitespace() || c.is_control())
                    {
                        return Err(bad(format!(
                            "parameter `login` must be a user name without spaces, not `{value}`"
                        )));
                    }
                    opts.login = Some(value.into_owned());
                }
                "password" => opts.password = Some(value.into_owned()),
                "pager" => match value.parse::<u16>() {
                    Ok(lines) if (1..=1000).contains(&lines) => opts.pager = Some(lines),
                    _ => {
                        return Err(bad(format!(
                            "parameter `pager` must be a number of lines from 1 to 1000, not \
                             `{value}`"
                        )));
                    }
                },
                other => {
                    return Err(bad(format!(
                        "unknown parameter `{other}` (known: {PARAMETERS})"
                    )));
                }
            }
        }
        Ok(opts)
    }

    /// The options as a query string (`?boot=fast&password=***`, or empty for the defaults); the
    /// password is shown as `***`.
    pub fn to_query(&self) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        match self.boot {
            BootSpeed::Normal => {}
            BootSpeed::Fast => {
                query.append_pair("boot", "fast");
            }
            BootSpeed::None => {
                query.append_pair("boot", "none");
            }
        }
        if let Some(baud) = self.baud {
            query.append_pair("baud", &baud.to_string());
        }
        if let Some(seed) = self.seed {
            query.append_pair("seed", &seed.to_string());
        }
        if let Some(login) = &self.login {
            query.append_pair("login", login);
        }
        if self.password.is_some() {
            query.append_pair("password", "***");
        }
        if let Some(lines) = self.pager {
            query.append_pair("pager", &lines.to_string());
        }
        let query = query.finish();
        if query.is_empty() {
            query
        } else {
            format!("?{query}")
        }
    }
}

/// `url` with its password parameter and user-info password replaced by `***`.
fn redacted(url: &Url) -> String {
    let mut clean = url.clone();
    if clean.password().is_some() {
        // Fails only for URLs that cannot have a password, which this one has.
        let _ = clean.set_password(Some("***"));
    }
    if url.query().is_some() {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(key, value)| {
                let value = if key == "password" {
                    "***".to_string()
                } else {
                    value.into_owned()
                };
                (key.into_owned(), value)
            })
            .collect();
        clean.query_pairs_mut().clear().extend_pairs(pairs);
    }
    clean.to_string()
}

/// What every link of one sim device shares: its name and settings.
#[derive(Debug)]
pub(crate) struct Device {
    name: Box<str>,
    opts: SimOptions,
    seed: u64,
}

impl Device {
    fn new(name: &str, opts: SimOptions) -> Self {
        // FNV-1a of the name, so that devices differ without a seed.
        let seed = opts.seed.unwrap_or_else(|| {
            name.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
                (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
            })
        });
        Device {
            name: name.into(),
            opts,
            seed,
        }
    }

    /// The `n`th pseudo-random number of this device (splitmix64).
    fn derived(&self, n: u64) -> u64 {
        let mut z = self
            .seed
            .wrapping_add(n.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A locally administered-looking MAC address (QEMU's prefix).
    fn mac(&self) -> [u8; 6] {
        let [a, b, c, ..] = self.derived(1).to_le_bytes();
        [0x52, 0x54, 0x00, a, b, c]
    }

    /// How fast this machine's kernel clock runs, in thousandths (950–1049).
    fn speed_permille(&self) -> u32 {
        950 + (self.derived(5) % 100) as u32
    }
}

/// Opens links to a simulated machine; every connection powers it on afresh.
#[derive(Debug, Clone)]
pub struct SimConnector {
    device: Arc<Device>,
}

impl SimConnector {
    /// A simulated machine called `name` (its host name in the output).
    pub fn new(name: &str, opts: SimOptions) -> Self {
        SimConnector {
            device: Arc::new(Device::new(name, opts)),
        }
    }

    /// The machine's name.
    pub fn name(&self) -> &str {
        &self.device.name
    }

    /// The machine's settings.
    pub fn options(&self) -> &SimOptions {
        &self.device.opts
    }
}

#[async_trait]
impl Connector for SimConnector {
    async fn connect(&self) -> Result<Link> {
        let (link, _) = link::open(Arc::clone(&self.device));
        Ok(link)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE.with_break(true).with_window_size(true)
    }

    fn address(&self) -> String {
        format!("sim://{}{}", self.device.name, self.device.opts.to_query())
    }
}
