//! Migration from ConMan: `conman.conf` → [`SiteConfig`].
//!
//! `CONSOLE name="…" dev="…"` lines become devices: a device path (`/dev/ttyS0`) with `seropts`
//! → `serial://`, `host:port` → `telnet://`, `ipmi:host` → `ipmi://USER@host` (user from
//! `ipmiopts` `U:`), `unix:path` → `unix://`, `/path/to/program args` → `exec://` (argv).
//! `GLOBAL seropts`/`ipmiopts` are the defaults for the consoles after them. `SERVER` settings,
//! log files and log options, IPMI passwords and keys are listed in
//! [`SiteConfig::unsupported`] with their line.

use std::collections::BTreeMap;

use super::ConfigError;
use super::model::SiteConfig;
use super::urls;
use crate::device::{Device, DeviceSettings};
use crate::names::validate_device_name;

/// One directive: its keyword and `key=value` pairs, with the line it starts on.
struct Directive {
    keyword: String,
    pairs: Vec<(String, String)>,
    line: usize,
}

/// Split the text into directives: `#` comments, quotes (single or double, not spanning lines),
/// backslash-newline continuation, case-insensitive keywords.
fn directives(text: &str, file: &str) -> Result<Vec<Directive>, ConfigError> {
    let mut out = Vec::new();
    let mut logical = String::new();
    let mut start = 0;
    for (index, raw) in text.split('\n').enumerate() {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        if logical.is_empty() {
            start = index + 1;
        }
        if let Some(body) = raw.strip_suffix('\\') {
            logical.push_str(body);
            logical.push(' ');
            continue;
        }
        logical.push_str(raw);
        let line = std::mem::take(&mut logical);
        let tokens = tokens(&line).map_err(|reason| ConfigError::at(file, start, reason))?;
        let mut it = tokens.into_iter();
        let Some(Token::Word(keyword)) = it.next() else {
            continue;
        };
        let mut pairs = Vec::new();
        loop {
            let key = match it.next() {
                None => break,
                Some(Token::Word(k)) => k,
                Some(Token::Eq) => {
                    return Err(ConfigError::at(file, start, "`=` without a key before it"));
                }
            };
            if !matches!(it.next(), Some(Token::Eq)) {
                return Err(ConfigError::Syntax {
                    file: file.to_string(),
                    line: start,
                    column: None,
                    key: Some(key.clone()),
                    reason: format!("expected `{key}=VALUE`"),
                });
            }
            let Some(Token::Word(value)) = it.next() else {
                return Err(ConfigError::Syntax {
                    file: file.to_string(),
                    line: start,
                    column: None,
                    key: Some(key.clone()),
                    reason: format!("`{key}=` without a value"),
                });
            };
            pairs.push((key.to_ascii_lowercase(), value));
        }
        out.push(Directive {
            keyword: keyword.to_ascii_lowercase(),
            pairs,
            line: start,
        });
    }
    Ok(out)
}

enum Token {
    Word(String),
    Eq,
}

fn tokens(line: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            '#' => break,
            c if c.is_whitespace() => {
                chars.next();
            }
            '=' => {
                chars.next();
                out.push(Token::Eq);
            }
            '"' | '\'' => {
                chars.next();
                let mut s = String::new();
                loop {
                    match chars.next() {
                        None => return Err(format!("unterminated {c}quoted{c} string")),
                        Some(q) if q == c => break,
                        Some(ch) => s.push(ch),
                    }
                }
                out.push(Token::Word(s));
            }
            _ => {
                let mut s = String::new();
                while let Some(&ch) = chars.peek() {
                    if ch.is_whitespace() || ch == '=' || ch == '#' || ch == '"' || ch == '\'' {
                        break;
                    }
                    s.push(ch);
                    chars.next();
                }
                out.push(Token::Word(s));
            }
        }
    }
    Ok(out)
}

/// Read a `conman.conf`. Grammar errors (unknown directives or keys, missing `name`/`dev`,
/// bad quotes) name the file and line; what parses but cannot be carried over is listed.
pub fn parse_conman(text: &str, file: &str) -> Result<SiteConfig, ConfigError> {
    let mut site = SiteConfig::default();
    let mut seropts = "9600,8n1".to_string();
    let mut ipmiopts = String::new();
    let mut lines: BTreeMap<String, usize> = BTreeMap::new();
    for d in directives(text, file)? {
        let line = d.line;
        let bad_key = |k: &str| ConfigError::Syntax {
            file: file.to_string(),
            line,
            column: None,
            key: Some(k.to_string()),
            reason: format!("unknown {} keyword `{k}`", d.keyword.to_ascii_uppercase()),
        };
        match d.keyword.as_str() {
            "server" => {
                for (k, v) in &d.pairs {
                    let what = match k.as_str() {
                        "logdir" | "logfile" | "syslog" => format!(
                            "SERVER {k}=\"{v}\": mo keeps its own logs (record logs under logs/<device>/)"
                        ),
                        "timestamp" => format!(
                            "SERVER timestamp={v}: mo timestamps every record; no marks are written"
                        ),
                        "port" | "loopback" | "keepalive" | "tcpwrappers" => {
                            format!("SERVER {k}={v}: mo's listeners are set on mod's command line")
                        }
                        "resetcmd" => format!(
                            "SERVER resetcmd=\"{v}\": use a power controller or macro in mo"
                        ),
                        "coredump" | "coredumpdir" | "execpath" | "nofile" | "pidfile" => {
                            format!("SERVER {k}={v} is not carried over")
                        }
                        _ => return Err(bad_key(k)),
                    };
                    site.note(file, line, what);
                }
            }
            "global" => {
                for (k, v) in &d.pairs {
                    match k.as_str() {
                        "seropts" => seropts = v.clone(),
                        "ipmiopts" => ipmiopts = v.clone(),
                        "log" => site.note(file, line, format!("GLOBAL log=\"{v}\": mo records every console in its own record log; the path is not used")),
                        "logopts" | "testopts" => site.note(file, line, format!("GLOBAL {k}=\"{v}\" is not carried over")),
                        _ => return Err(bad_key(k)),
                    }
                }
            }
            "console" => {
                let mut fields: BTreeMap<&str, &str> = BTreeMap::new();
                for (k, v) in &d.pairs {
                    match k.as_str() {
                        "name" | "dev" | "log" | "logopts" | "seropts" | "ipmiopts"
                        | "testopts" => {
                            let key: &'static str = match k.as_str() {
                                "name" => "name",
                                "dev" => "dev",
                                "log" => "log",
                                "logopts" => "logopts",
                                "seropts" => "seropts",
                                "ipmiopts" => "ipmiopts",
                                _ => "testopts",
                            };
                            fields.insert(key, v);
                        }
                        _ => return Err(bad_key(k)),
                    }
                }
                let missing = |k: &str| ConfigError::Syntax {
                    file: file.to_string(),
                    line,
                    column: None,
                    key: Some(k.to_string()),
                    reason: format!("CONSOLE without `{k}=`"),
                };
                let name = fields
                    .get("name")
                    .ok_or_else(|| missing("name"))?
                    .to_string();
                let dev = fields.get("dev").ok_or_else(|| missing("dev"))?.to_string();
                if let Some(first) = lines.insert(name.clone(), line) {
                    return Err(ConfigError::at(
                        file,
                        line,
                        format!("console `{name}` is defined twice (first on line {first})"),
                    ));
                }
                if let Some(log) = fields.get("log") {
                    let what = if log.is_empty() {
                        format!(
                            "console `{name}`: logging was off (log=\"\"); mo always keeps a record log"
                        )
                    } else {
                        format!(
                            "console `{name}`: log=\"{log}\": mo records in its own record log; the path is not used"
                        )
                    };
                    site.note(file, line, what);
                }
                for k in ["logopts", "testopts"] {
                    if let Some(v) = fields.get(k) {
                        site.note(
                            file,
                            line,
                            format!("console `{name}`: {k}=\"{v}\" is not carried over"),
                        );
                    }
                }
                let ser = fields.get("seropts").map_or(seropts.as_str(), |v| v);
                let ipmi = fields.get("ipmiopts").map_or(ipmiopts.as_str(), |v| v);
                if let Err(e) = validate_device_name(&name) {
                    site.note(file, line, format!("console `{name}` not imported: {e}"));
                    continue;
                }
                match console_url(&name, &dev, ser, ipmi, &mut site, file, line) {
                    Ok(url) => {
                        let device = Device {
                            name: name.clone(),
                            url,
                            settings: DeviceSettings::default(),
                        };
                        match device.validate() {
                            Ok(()) => site.devices.push(device),
                            Err(e) => {
                                site.note(file, line, format!("console `{name}` not imported: {e}"))
                            }
                        }
                    }
                    Err(reason) => site.note(
                        file,
                        line,
                        format!("console `{name}` not imported: {reason}"),
                    ),
                }
            }
            other => {
                return Err(ConfigError::at(
                    file,
                    line,
                    format!("unknown directive `{other}` (expected SERVER, GLOBAL or CONSOLE)"),
                ));
            }
        }
    }
    Ok(site)
}

fn console_url(
    name: &str,
    dev: &str,
    seropts: &str,
    ipmiopts: &str,
    site: &mut SiteConfig,
    file: &str,
    line: usize,
) -> Result<String, String> {
    let dev = expand(dev, name);
    if let Some(host) = dev.strip_prefix("ipmi:") {
        let mut user = None;
        for item in ipmiopts.split(',').filter(|s| !s.trim().is_empty()) {
            let (k, v) = item
                .split_once(':')
                .ok_or_else(|| format!("ipmiopts `{item}` is not X:VALUE"))?;
            match k.trim().to_ascii_uppercase().as_str() {
                "U" => user = Some(v.trim().to_string()),
                "P" | "K" => site.note(file, line, format!("console `{name}`: the IPMI {} is not carried over; set the device's credentials in mo", if k.trim().eq_ignore_ascii_case("p") { "password" } else { "K_g key" })),
                "C" | "L" | "W" => site.note(file, line, format!("console `{name}`: ipmiopts {k}:{v} is not carried over")),
                other => return Err(format!("ipmiopts: unknown option `{other}`")),
            }
        }
        return urls::host("ipmi", user.as_deref(), host.trim(), None);
    }
    if let Some(path) = dev.strip_prefix("unix:") {
        return urls::unix(path);
    }
    if dev.starts_with("test:") {
        return Err("test consoles have nothing to connect to".into());
    }
    if dev.starts_with("/dev/") && !dev.contains(char::is_whitespace) {
        return serial(&dev, seropts);
    }
    if dev.starts_with('/') || dev.starts_with("./") {
        let words = urls::split_words(&dev)
            .ok_or_else(|| format!("cannot split `{dev}` into a program and arguments"))?;
        let (program, args) = words.split_first().ok_or("empty dev")?;
        if !program.starts_with('/') {
            return Err(format!(
                "`{program}` is a relative program path; give it absolute"
            ));
        }
        return urls::exec(program, args);
    }
    if let Some((host, port)) = dev.rsplit_once(':') {
        let port: u32 = port
            .parse()
            .map_err(|_| format!("`{dev}`: port `{port}` is not a number"))?;
        return urls::host("telnet", None, host, Some(port));
    }
    Err(format!(
        "dev `{dev}`: a program found through execpath; give its absolute path"
    ))
}

/// `%N` → console name, `%%` → `%`.
fn expand(text: &str, name: &str) -> String {
    text.replace("%%", "\u{0}")
        .replace("%N", name)
        .replace('\u{0}', "%")
}

/// `serial://PATH?baud=…` from ConMan's `bps[,databits[parity[stopbits]]]`.
fn serial(path: &str, seropts: &str) -> Result<String, String> {
    let (bps, rest) = seropts.split_once(',').unwrap_or((seropts, ""));
    let bps: u32 = bps
        .trim()
        .parse()
        .map_err(|_| format!("seropts `{seropts}`: bad baud rate"))?;
    let mut chars = rest.trim().chars();
    let data = chars.next().map(|c| match c {
        '5'..='8' => Ok(c.to_string()),
        _ => Err(format!("seropts `{seropts}`: data bits must be 5 to 8")),
    });
    let parity = chars.next().map(|c| match c.to_ascii_lowercase() {
        'n' => Ok("none".to_string()),
        'e' => Ok("even".to_string()),
        'o' => Ok("odd".to_string()),
        _ => Err(format!("seropts `{seropts}`: parity must be n, e or o")),
    });
    let stop = chars.next().map(|c| match c {
        '1' | '2' => Ok(c.to_string()),
        _ => Err(format!("seropts `{seropts}`: stop bits must be 1 or 2")),
    });
    if chars.next().is_some() {
        return Err(format!("seropts `{seropts}`: trailing characters"));
    }
    let data = data.transpose()?.filter(|d| d != "8");
    let parity = parity.transpose()?.filter(|p| p != "none");
    let stop = stop.transpose()?.filter(|s| s != "1");
    urls::serial(
        path,
        &[
            ("baud", Some(bps.to_string())),
            ("data", data),
            ("parity", parity),
            ("stop", stop),
        ],
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use rand::{Rng, SeedableRng};

    use super::*;

    const CLUSTER: &str = include_str!("../../../tests/e2e/fixtures/conman/cluster.conf");

    #[test]
    fn cluster_fixture() {
        let site = parse_conman(CLUSTER, "conman.conf").unwrap();
        let url = |n: &str| site.device(n).unwrap().url.clone();
        assert_eq!(url("n1"), "serial:///dev/ttyS0?baud=115200");
        assert_eq!(
            url("n2"),
            "serial:///dev/ttyS1?baud=9600&data=7&parity=even&stop=2"
        );
        assert_eq!(url("ts-a"), "telnet://ts1.example.net:7001");
        assert_eq!(url("bmc-a"), "ipmi://root@10.2.0.11");
        assert_eq!(url("bmc-b"), "ipmi://ops@10.2.0.12");
        assert_eq!(url("vm-a"), "unix:///var/run/vm-a.sock");
        assert_eq!(
            url("ssh-a"),
            "exec:///usr/lib/conman/exec/ssh.exp?arg=root%40ssh-a.example.net"
        );
        let line_of = |needle: &str| CLUSTER.lines().position(|l| l.contains(needle)).unwrap() + 1;
        let noted = |line: usize, text: &str| {
            site.unsupported
                .iter()
                .any(|u| u.line == line && u.what.contains(text))
        };
        assert!(noted(line_of("logdir"), "own logs"));
        assert!(noted(line_of("timestamp=1h"), "timestamps every record"));
        assert!(noted(line_of("GLOBAL log="), "record log"));
        assert!(noted(line_of("ipmi:10.2.0.11"), "IPMI password"));
        assert!(noted(line_of("name=\"quiet\""), "logging was off"));
        assert!(noted(line_of("name=\"bad name\""), "not imported"));
        assert!(site.device("bad name").is_none());
    }

    #[test]
    fn errors_name_line_and_key() {
        for (text, line, needle) in [
            ("server port=7890\n\nconsole name=\"a\"\n", 3, "(dev)"),
            ("# c\nbogus x=1\n", 2, "unknown directive"),
            (
                "console name=\"a\" dev=\"/dev/ttyS0\" speed=\"9600\"\n",
                1,
                "(speed)",
            ),
            ("console name=\"a\" \\\n dev=\"/dev/x\n", 1, "unterminated"),
            (
                "console name=\"a\" dev=\"/dev/x\"\nconsole name=\"a\" dev=\"/dev/y\"\n",
                2,
                "first on line 1",
            ),
            ("server port\n", 1, "(port)"),
        ] {
            let e = parse_conman(text, "c.conf").unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("c.conf line {line}")),
                "{text:?}: {e}"
            );
            assert!(e.contains(needle), "{e}");
        }
        let site = parse_conman(
            "console name='x' dev='/dev/ttyS0' seropts='9600,9x1'\n",
            "c",
        )
        .unwrap();
        assert!(site.devices.is_empty() && site.unsupported[0].what.contains("data bits"));
    }

    #[test]
    fn random_input_never_panics() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0xc0_4a);
        let alphabet = b"=\"'#\\ \n%NDconsoleservergloballognamedevipmi:unix:/,0123456789UPx";
        for _ in 0..3000 {
            let mut b = CLUSTER.as_bytes().to_vec();
            for _ in 0..rng.random_range(1..10) {
                let i = rng.random_range(0..b.len());
                b[i] = alphabet[rng.random_range(0..alphabet.len())];
            }
            let _ = parse_conman(&String::from_utf8_lossy(&b), "f.conf");
        }
    }
}
