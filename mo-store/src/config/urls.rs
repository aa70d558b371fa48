//! Building mo access URLs from the pieces that conserver and ConMan configurations give.

use url::Url;

/// A URL `scheme://` + `path` with the query `pairs` (form-encoded), or why not.
fn with_path(scheme: &str, path: &str, pairs: &[(&str, String)]) -> Result<String, String> {
    if !path.starts_with('/') {
        return Err(format!("`{path}` is not an absolute path"));
    }
    let mut url = Url::parse(&format!("{scheme}:///")).map_err(|e| format!("{scheme} URL: {e}"))?;
    url.set_path(path);
    if !pairs.is_empty() {
        let mut q = url.query_pairs_mut();
        for (k, v) in pairs {
            q.append_pair(k, v);
        }
    }
    Ok(url.to_string())
}

/// `serial:///dev/ttyS0?baud=…` with the given line settings (`None`s are left out).
pub(crate) fn serial(path: &str, params: &[(&str, Option<String>)]) -> Result<String, String> {
    let pairs: Vec<(&str, String)> = params
        .iter()
        .filter_map(|(k, v)| v.clone().map(|v| (*k, v)))
        .collect();
    with_path("serial", path, &pairs)
}

/// `exec:///program?arg=…&arg=…`.
pub(crate) fn exec(program: &str, args: &[String]) -> Result<String, String> {
    let pairs: Vec<(&str, String)> = args.iter().map(|a| ("arg", a.clone())).collect();
    with_path("exec", program, &pairs)
}

/// `exec:///bin/sh?arg=-c&arg=COMMAND`, for a command line that needs a shell.
pub(crate) fn shell(command: &str) -> Result<String, String> {
    exec("/bin/sh", &["-c".to_string(), command.to_string()])
}

/// `unix:///path`.
pub(crate) fn unix(path: &str) -> Result<String, String> {
    with_path("unix", path, &[])
}

/// `SCHEME://[user@]host:port` (IPv6 addresses get brackets), checked to parse.
pub(crate) fn host(
    scheme: &str,
    user: Option<&str>,
    host: &str,
    port: Option<u32>,
) -> Result<String, String> {
    if host.is_empty()
        || host
            .chars()
            .any(|c| c.is_whitespace() || "/?#@".contains(c))
    {
        return Err(format!("`{host}` is not a host name or address"));
    }
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    let user = user
        .filter(|u| !u.is_empty())
        .map(|u| {
            format!(
                "{}@",
                url::form_urlencoded::byte_serialize(u.as_bytes()).collect::<String>()
            )
        })
        .unwrap_or_default();
    let port = match port {
        Some(p) if p == 0 || p > 65535 => return Err(format!("port {p} is out of range")),
        Some(p) => format!(":{p}"),
        None => String::new(),
    };
    let text = format!("{scheme}://{user}{host}{port}");
    Url::parse(&text).map_err(|e| format!("`{text}`: {e}"))?;
    Ok(text)
}

/// Split a command line into words the way a simple shell would: whitespace separates, single
/// and double quotes group, backslash escapes. `None` if it uses anything needing a real shell
/// (`$`, `|`, `;`, `&`, `<`, `>`, backquotes, globs) or has an unterminated quote.
pub(crate) fn split_words(line: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        ch => word.push(ch),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => word.push(chars.next()?),
                        '$' | '`' => return None,
                        ch => word.push(ch),
                    }
                }
            }
            '\\' => {
                in_word = true;
                word.push(chars.next()?);
            }
            '$' | '`' | '|' | ';' | '&' | '<' | '>' | '*' | '?' | '[' | '(' | ')' | '~' | '\n' => {
                return None;
            }
            other => {
                in_word = true;
                word.push(other);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Some(words)
}

/// An exec URL for a command line: argv when it splits plainly and names an absolute program,
/// else through `/bin/sh -c`.
pub(crate) fn command(line: &str) -> Result<String, String> {
    match split_words(line) {
        Some(words) if words.first().is_some_and(|w| w.starts_with('/')) => {
            exec(&words[0], &words[1..])
        }
        _ => shell(line),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn builds_urls() {
        assert_eq!(
            serial(
                "/dev/ttyS0",
                &[("baud", Some("9600".into())), ("parity", None)]
            )
            .unwrap(),
            "serial:///dev/ttyS0?baud=9600"
        );
        assert_eq!(
            command("ssh -t 'cs1 x'").unwrap(),
            "exec:///bin/sh?arg=-c&arg=ssh+-t+%27cs1+x%27"
        );
        assert_eq!(
            command("/usr/bin/ipmitool -I lanplus").unwrap(),
            "exec:///usr/bin/ipmitool?arg=-I&arg=lanplus"
        );
        assert_eq!(
            host("telnet", None, "::1", Some(23)).unwrap(),
            "telnet://[::1]:23"
        );
        assert_eq!(
            host("ipmi", Some("admin"), "bmc1", None).unwrap(),
            "ipmi://admin@bmc1"
        );
        assert!(host("tcp", None, "a b", Some(1)).is_err());
        assert!(host("tcp", None, "a", Some(70000)).is_err());
        assert!(unix("rel/x").is_err());
        assert_eq!(
            split_words("a \"b c\" d\\ e"),
            Some(vec!["a".into(), "b c".into(), "d e".into()])
        );
        assert_eq!(split_words("a | b"), None);
    }
}
