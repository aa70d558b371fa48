//! Times as people write them (`--since 2h`, `--until 2026-11-22T10:00:00Z`) and as the rendered
//! log shows them (RFC 3339, UTC, milliseconds).

use std::fmt::Write as _;

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime, PrimitiveDateTime};

use crate::error::{Error, Result};

/// Parse a `--since`/`--until` value into ns since the Unix epoch.
///
/// Accepted: `now`; a duration ago such as `90s`, `10m`, `2h`, `1d`, `1w` or `1h30m` (optionally
/// followed by `ago`); an RFC 3339 timestamp (`2026-11-22T10:00:00Z`, `…+01:00`); and, read as
/// UTC, `2026-11-22`, `2026-11-22T10:00` or `2026-11-22 10:00:00`.
pub fn parse_time_spec(s: &str, now_ns: u64) -> Result<u64> {
    let spec = s.trim();
    let bad = |reason: &str| Error::BadSpec {
        what: "time",
        input: s.to_owned(),
        reason: reason.to_owned(),
    };
    if spec.is_empty() {
        return Err(bad("empty"));
    }
    if spec.eq_ignore_ascii_case("now") {
        return Ok(now_ns);
    }
    if spec.starts_with(|c: char| c.is_ascii_digit()) && !looks_like_date(spec) {
        let ago = parse_duration_ns(spec.strip_suffix("ago").unwrap_or(spec).trim_end())
            .map_err(|r| bad(&r))?;
        return Ok(now_ns.saturating_sub(ago));
    }
    let when = parse_timestamp(spec).ok_or_else(|| {
        bad("expected an RFC 3339 time (2026-11-22T10:00:00Z), a date, `now`, or a duration ago like 10m, 2h, 1d")
    })?;
    let ns = when.unix_timestamp_nanos();
    u64::try_from(ns).map_err(|_| bad("before 1970 or after 2554"))
}

fn looks_like_date(s: &str) -> bool {
    s.len() >= 10 && s.as_bytes().get(4) == Some(&b'-')
}

/// `1h30m` → ns. Units: s, m, h, d, w.
fn parse_duration_ns(s: &str) -> std::result::Result<u64, String> {
    let mut total: u64 = 0;
    let mut digits = String::new();
    let mut any = false;
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit: u64 = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => return Err(format!("unknown unit `{c}` (use s, m, h, d or w)")),
        };
        if digits.is_empty() {
            return Err(format!("unit `{c}` without a number"));
        }
        let n: u64 = digits.parse().map_err(|_| "number too large".to_owned())?;
        digits.clear();
        total = n
            .checked_mul(unit)
            .and_then(|secs| secs.checked_mul(1_000_000_000))
            .and_then(|ns| total.checked_add(ns))
            .ok_or_else(|| "duration too long".to_owned())?;
        any = true;
    }
    if !digits.is_empty() || !any {
        return Err("a number needs a unit (s, m, h, d or w)".to_owned());
    }
    Ok(total)
}

fn parse_timestamp(s: &str) -> Option<OffsetDateTime> {
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t);
    }
    let s = s.replacen(' ', "T", 1);
    let s = s.strip_suffix('Z').unwrap_or(&s);
    if let Ok(t) = PrimitiveDateTime::parse(
        s,
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]"),
    ) {
        return Some(t.assume_utc());
    }
    if let Ok(t) = PrimitiveDateTime::parse(
        s,
        format_description!("[year]-[month]-[day]T[hour]:[minute]"),
    ) {
        return Some(t.assume_utc());
    }
    Date::parse(s, format_description!("[year]-[month]-[day]"))
        .ok()
        .map(|d| d.midnight().assume_utc())
}

/// `2026-11-22T10:00:00.123Z` for a time in ns since the Unix epoch.
pub fn format_timestamp(ns: u64) -> String {
    let mut s = String::with_capacity(24);
    push_timestamp(&mut s, ns);
    s
}

/// Append [`format_timestamp`]'s text to `out`.
pub fn push_timestamp(out: &mut String, ns: u64) {
    match OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns)) {
        Ok(t) => {
            let _ = write!(
                out,
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second(),
                t.millisecond()
            );
        }
        Err(_) => {
            let _ = write!(out, "@{ns}ns");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const NOW: u64 = 1_795_000_000_000_000_000;
    const SEC: u64 = 1_000_000_000;

    #[test]
    fn relative_specs() {
        assert_eq!(parse_time_spec("now", NOW).unwrap(), NOW);
        assert_eq!(parse_time_spec("10m", NOW).unwrap(), NOW - 600 * SEC);
        assert_eq!(parse_time_spec("2h", NOW).unwrap(), NOW - 7200 * SEC);
        assert_eq!(parse_time_spec("1d ago", NOW).unwrap(), NOW - 86_400 * SEC);
        assert_eq!(parse_time_spec("1h30m", NOW).unwrap(), NOW - 5400 * SEC);
        assert_eq!(parse_time_spec("90s", 10).unwrap(), 0);
        for bad in [
            "",
            "10",
            "10x",
            "h",
            "1h3",
            "99999999999999999999w",
            "yesterday",
        ] {
            assert!(
                matches!(
                    parse_time_spec(bad, NOW),
                    Err(Error::BadSpec { what: "time", .. })
                ),
                "{bad:?} was accepted"
            );
        }
    }

    #[test]
    fn absolute_specs() {
        let t = 1_795_341_600 * SEC; // 2026-11-22T10:00:00Z
        assert_eq!(parse_time_spec("2026-11-22T10:00:00Z", NOW).unwrap(), t);
        assert_eq!(
            parse_time_spec("2026-11-22T11:00:00+01:00", NOW).unwrap(),
            t
        );
        assert_eq!(
            parse_time_spec("2026-11-22T10:00:00.250Z", NOW).unwrap(),
            t + 250_000_000
        );
        assert_eq!(parse_time_spec("2026-11-22 10:00:00", NOW).unwrap(), t);
        assert_eq!(parse_time_spec("2026-11-22T10:00", NOW).unwrap(), t);
        assert_eq!(
            parse_time_spec("2026-11-22", NOW).unwrap(),
            t - 10 * 3600 * SEC
        );
        assert!(parse_time_spec("1969-12-31T23:59:59Z", NOW).is_err());
        assert!(parse_time_spec("2026-13-01", NOW).is_err());
    }

    #[test]
    fn timestamps_format_with_milliseconds() {
        let t = 1_795_341_600 * SEC + 123_456_789;
        assert_eq!(format_timestamp(t), "2026-11-22T10:00:00.123Z");
        assert_eq!(format_timestamp(0), "1970-01-01T00:00:00.000Z");
        assert!(format_timestamp(u64::MAX).starts_with("2554-"));
    }
}
