//! Parsers of option values shared by the commands (`--break`, `--log-policy`, retention).

use super::device::Change;

/// `--log-policy`.
pub(crate) fn parse_policy(text: &str) -> Result<mo_store::LogPolicy, String> {
    mo_store::parse_log_policy(text).map_err(|_| "expected `degrade` or `strict`".to_string())
}

/// `--retain-days N`.
pub(crate) fn parse_days(text: &str) -> Result<u32, String> {
    mo_store::parse_retain_days(text).map_err(|_| {
        format!(
            "expected a whole number of days from 1 to {}",
            mo_store::MAX_RETAIN_DAYS
        )
    })
}

/// `--retain-gib GIB` (or with a unit: `512MiB`).
pub(crate) fn parse_size(text: &str) -> Result<mo_store::RetainSize, String> {
    text.parse::<mo_store::RetainSize>().map_err(|e| match e {
        mo_store::Error::BadValue { reason, .. } => reason,
        other => other.to_string(),
    })
}

/// A number of days, fractions allowed (`90`, `0.5`), as a duration.
pub(crate) fn parse_fraction_days(text: &str) -> Result<std::time::Duration, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|d| d.is_finite() && *d > 0.0 && *d <= f64::from(mo_store::MAX_RETAIN_DAYS))
        .map(|d| std::time::Duration::from_secs_f64(d * 86_400.0))
        .ok_or_else(|| {
            format!(
                "expected a number of days above 0 and at most {} (fractions allowed)",
                mo_store::MAX_RETAIN_DAYS
            )
        })
}

/// `--retain-mib MIB`.
pub(crate) fn parse_mib(text: &str) -> Result<mo_store::RetainSize, String> {
    text.trim()
        .parse::<u64>()
        .ok()
        .and_then(mo_store::RetainSize::from_mib)
        .ok_or_else(|| "expected a whole number of MiB, at least 1".to_string())
}

pub(crate) fn clearable<T>(
    text: &str,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Change<T>, String> {
    if text.trim() == "none" {
        return Ok(Change::Clear);
    }
    parse(text)
        .map(Change::Set)
        .map_err(|e| format!("{e}, or `none`"))
}

pub(crate) fn parse_days_change(text: &str) -> Result<Change<u32>, String> {
    clearable(text, parse_days)
}

/// A node name of a site (`--node`), as `mod --node` takes it.
pub(crate) fn parse_node(text: &str) -> Result<String, String> {
    if mo_store::valid_node_name(text) {
        Ok(text.to_string())
    } else {
        Err(format!(
            "`{text}` is not a node name (a letter or digit, then letters, digits, `_` and `-`, \
             at most 64)"
        ))
    }
}

pub(crate) fn parse_node_change(text: &str) -> Result<Change<String>, String> {
    clearable(text, parse_node)
}

pub(crate) fn parse_size_change(text: &str) -> Result<Change<mo_store::RetainSize>, String> {
    clearable(text, parse_size)
}

/// Parse `N=SEQ` for `--break`.
pub(crate) fn parse_break(text: &str) -> Result<(u8, String), String> {
    let (n, seq) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not N=SEQ (for example `2=\\r~^b`)"))?;
    let n: u8 = n
        .trim()
        .parse()
        .ok()
        .filter(|n| (1..=9).contains(n))
        .ok_or_else(|| format!("break sequence number `{n}` must be 1 to 9"))?;
    mo_core::breakseq::BreakSequence::parse(seq).map_err(|e| e.to_string())?;
    Ok((n, seq.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn break_option() {
        assert_eq!(parse_break("2=\\r~^b"), Ok((2, "\\r~^b".to_string())));
        assert_eq!(parse_break("3==."), Ok((3, "=.".to_string())));
        assert!(parse_break("0=x").is_err());
        assert!(parse_break("10=x").is_err());
        assert!(parse_break("x").is_err());
        assert!(parse_break("1=\\q").is_err());
    }
}
