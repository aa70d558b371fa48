//! Device spreadsheets: CSV with a header row, one device per line.
//!
//! ```text
//! name,url,description,on_demand,replay_lines,allow_join,escape,break2
//! web01,serial:///dev/ttyS0?baud=115200,front web server,no,20,yes,,
//! sun1,telnet://cs1:7001,"Sun V240, rack 3",yes,100,no,^]q,\r~^b
//! ```
//!
//! `name` and `url` are required; every other column is optional and an empty cell means the
//! default. `power` lists power-controller addresses separated by `;`. `log_policy` is `degrade`
//! or `strict`; `retain_days` a whole number of days; `retain_gib` a number of GiB (`100`, `0.5`)
//! or a size with a unit (`512MiB`). Booleans are `yes`/`no`, `true`/`false`, `on`/`off` or `1`/`0`. Lines starting with
//! `#` are comments.

use std::collections::HashMap;

use super::ConfigError;
use super::model::SiteConfig;
use crate::device::{Device, DeviceSettings};
use crate::error::Error;

/// The columns a device spreadsheet may have (besides `break1` … `break9`).
pub const CSV_COLUMNS: &[&str] = &[
    "name",
    "url",
    "description",
    "on_demand",
    "replay_lines",
    "allow_join",
    "escape",
    "login",
    "login_user",
    "trust_host_key",
    "power",
    "log_policy",
    "retain_days",
    "retain_gib",
];

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Col {
    Name,
    Url,
    Description,
    OnDemand,
    ReplayLines,
    AllowJoin,
    Escape,
    Login,
    LoginUser,
    TrustHostKey,
    Power,
    LogPolicy,
    RetainDays,
    RetainGib,
    Break(u8),
}

fn column_of(header: &str) -> Option<Col> {
    let h = header.trim().to_ascii_lowercase().replace(['-', ' '], "_");
    Some(match h.as_str() {
        "name" => Col::Name,
        "url" => Col::Url,
        "description" => Col::Description,
        "on_demand" => Col::OnDemand,
        "replay_lines" => Col::ReplayLines,
        "allow_join" => Col::AllowJoin,
        "escape" => Col::Escape,
        "login" => Col::Login,
        "login_user" => Col::LoginUser,
        "trust_host_key" => Col::TrustHostKey,
        "power" => Col::Power,
        "log_policy" => Col::LogPolicy,
        "retain_days" => Col::RetainDays,
        "retain_gib" => Col::RetainGib,
        other => {
            let n: u8 = other.strip_prefix("break")?.parse().ok()?;
            if !(1..=9).contains(&n) {
                return None;
            }
            Col::Break(n)
        }
    })
}

fn parse_bool(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "yes" | "y" | "true" | "on" | "1" => Some(true),
        "no" | "n" | "false" | "off" | "0" => Some(false),
        _ => None,
    }
}

/// Read a device spreadsheet. Errors name the line, the column number and the column's header.
pub fn parse_csv(text: &str, file: &str) -> Result<SiteConfig, ConfigError> {
    let syntax = |line: usize, column: Option<usize>, key: Option<&str>, reason: String| {
        ConfigError::Syntax {
            file: file.to_string(),
            line,
            column,
            key: key.map(str::to_string),
            reason,
        }
    };
    let csv_error = |e: ::csv::Error| {
        let line = e
            .position()
            .map_or(1, |p| usize::try_from(p.line()).unwrap_or(usize::MAX));
        let reason = match e.kind() {
            ::csv::ErrorKind::UnequalLengths {
                expected_len, len, ..
            } => {
                format!("{len} fields, but the header row has {expected_len}")
            }
            ::csv::ErrorKind::Utf8 { .. } => "not valid UTF-8".to_string(),
            _ => e.to_string(),
        };
        syntax(line, None, None, reason)
    };
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(true)
        .comment(Some(b'#'))
        .trim(::csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = reader.headers().map_err(csv_error)?.clone();
    let header_line = reader.position().line().saturating_sub(1).max(1);
    let header_line = usize::try_from(header_line).unwrap_or(1);
    let mut columns = Vec::new();
    let mut seen: HashMap<Col, usize> = HashMap::new();
    for (i, h) in headers.iter().enumerate() {
        let col = column_of(h).ok_or_else(|| {
            syntax(
                header_line,
                Some(i + 1),
                Some(h),
                format!(
                    "unknown column `{h}` (known: {}, break1 … break9)",
                    CSV_COLUMNS.join(", ")
                ),
            )
        })?;
        if seen.insert(col, i).is_some() {
            return Err(syntax(
                header_line,
                Some(i + 1),
                Some(h),
                format!("column `{h}` appears twice"),
            ));
        }
        columns.push(col);
    }
    for (col, name) in [(Col::Name, "name"), (Col::Url, "url")] {
        if !seen.contains_key(&col) {
            return Err(syntax(
                header_line,
                None,
                None,
                format!("the header row has no `{name}` column"),
            ));
        }
    }
    let mut site = SiteConfig::default();
    let mut lines: HashMap<String, usize> = HashMap::new();
    for record in reader.records() {
        let record = record.map_err(csv_error)?;
        let line = record
            .position()
            .map_or(0, |p| usize::try_from(p.line()).unwrap_or(usize::MAX));
        let cell_error =
            |i: usize, reason: String| syntax(line, Some(i + 1), headers.get(i), reason);
        let mut device = Device {
            name: String::new(),
            url: String::new(),
            settings: DeviceSettings::default(),
        };
        let mut index_of: HashMap<Col, usize> = HashMap::new();
        for (i, (col, value)) in columns.iter().zip(record.iter()).enumerate() {
            index_of.insert(*col, i);
            let s = &mut device.settings;
            let bool_cell = |v: &str| {
                parse_bool(v).ok_or_else(|| cell_error(i, format!("expected yes or no, got `{v}`")))
            };
            match col {
                Col::Name => device.name = value.to_string(),
                Col::Url => device.url = value.to_string(),
                _ if value.is_empty() => {}
                Col::Description => s.description = Some(value.to_string()),
                Col::OnDemand => s.on_demand = bool_cell(value)?,
                Col::AllowJoin => s.allow_join = bool_cell(value)?,
                Col::ReplayLines => {
                    s.replay_lines = value.parse().map_err(|_| {
                        cell_error(i, format!("expected a number of lines, got `{value}`"))
                    })?;
                }
                Col::Escape => s.escape = Some(value.to_string()),
                Col::Login => s.login = Some(value.to_string()),
                Col::LoginUser => s.login_user = Some(value.to_string()),
                Col::TrustHostKey => s.trust_host_key = bool_cell(value)?,
                Col::Power => {
                    s.power = value
                        .split([';', ' '])
                        .filter(|p| !p.is_empty())
                        .map(str::to_string)
                        .collect();
                }
                Col::LogPolicy => {
                    s.log_policy =
                        Some(crate::device_log::parse_log_policy(value).map_err(|_| {
                            cell_error(i, format!("expected degrade or strict, got `{value}`"))
                        })?);
                }
                Col::RetainDays => {
                    s.retain_days = Some(
                        crate::device_log::parse_retain_days(value)
                            .map_err(|e| cell_error(i, e.to_string()))?,
                    );
                }
                Col::RetainGib => {
                    s.retain_gib = Some(
                        value
                            .parse()
                            .map_err(|e: Error| cell_error(i, e.to_string()))?,
                    );
                }
                Col::Break(n) => {
                    s.break_sequences.insert(*n, value.to_string());
                }
            }
        }
        let at = |col: Col| index_of.get(&col).copied().unwrap_or(0);
        device.validate().map_err(|e| {
            let col = match &e {
                Error::BadUrl { .. } => Col::Url,
                Error::BadSetting { setting, .. } => match setting.as_str() {
                    "escape" => Col::Escape,
                    "description" => Col::Description,
                    "replay lines" => Col::ReplayLines,
                    "login" => Col::Login,
                    "login user" => Col::LoginUser,
                    "power" => Col::Power,
                    "retain days" => Col::RetainDays,
                    other => other
                        .strip_prefix("break sequence ")
                        .and_then(|n| n.parse().ok())
                        .map_or(Col::Name, Col::Break),
                },
                _ => Col::Name,
            };
            cell_error(at(col), e.to_string())
        })?;
        if let Some(first) = lines.insert(device.name.clone(), line) {
            return Err(cell_error(
                at(Col::Name),
                format!(
                    "device `{}` is listed twice (first on line {first})",
                    device.name
                ),
            ));
        }
        site.devices.push(device);
    }
    Ok(site)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use rand::{Rng, SeedableRng};

    use super::*;

    const SHEET: &str = "\
# rack 3
name,url,description,on_demand,replay_lines,allow_join,escape,break2
web01,serial:///dev/ttyS0?baud=115200,front web server,no,20,yes,,
sun1,telnet://cs1:7001,\"Sun V240, rack 3\",yes,100,no,^]q,\\r~^b
";

    #[test]
    fn reads_a_sheet() {
        let site = parse_csv(SHEET, "d.csv").unwrap();
        assert_eq!(site.devices.len(), 2);
        let sun = site.device("sun1").unwrap();
        assert_eq!(
            sun.settings.description.as_deref(),
            Some("Sun V240, rack 3")
        );
        assert!(sun.settings.on_demand && !sun.settings.allow_join);
        assert_eq!(sun.settings.replay_lines, 100);
        assert_eq!(sun.settings.escape.as_deref(), Some("^]q"));
        assert_eq!(sun.settings.break_sequences.get(&2).unwrap(), "\\r~^b");
        assert_eq!(
            site.device("web01")
                .unwrap()
                .settings
                .description
                .as_deref(),
            Some("front web server")
        );
    }

    #[test]
    fn reads_log_settings() {
        let sheet = "name,url,log_policy,retain_days,retain_gib\n\
                     a,sim://a,strict,30,0.5\n\
                     b,sim://b,,,\n";
        let site = parse_csv(sheet, "d.csv").unwrap();
        let a = &site.device("a").unwrap().settings;
        assert_eq!(a.log_policy, Some(crate::LogPolicy::Strict));
        assert_eq!(a.retain_days, Some(30));
        assert_eq!(a.retain_gib.map(crate::RetainSize::mib), Some(512));
        let b = &site.device("b").unwrap().settings;
        assert_eq!(
            (b.log_policy, b.retain_days, b.retain_gib),
            (None, None, None)
        );
        let e = parse_csv(&sheet.replace("strict", "lax"), "d.csv")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2") && e.contains("log_policy"), "{e}");
        let e = parse_csv(&sheet.replace(",30,", ",0,"), "d.csv")
            .unwrap_err()
            .to_string();
        assert!(e.contains("retain_days") && e.contains("from 1"), "{e}");
        let e = parse_csv(&sheet.replace("0.5", "lots"), "d.csv")
            .unwrap_err()
            .to_string();
        assert!(e.contains("retain_gib") && e.contains("GiB"), "{e}");
    }

    #[test]
    fn errors_name_line_and_column() {
        let bad = SHEET.replace("yes,100", "maybe,100");
        let e = parse_csv(&bad, "d.csv").unwrap_err().to_string();
        assert_eq!(
            e,
            "d.csv line 4, column 4 (on_demand): expected yes or no, got `maybe`"
        );
        let bad = SHEET.replace("telnet://cs1:7001", "cs1 7001");
        let e = parse_csv(&bad, "d.csv").unwrap_err().to_string();
        assert!(e.starts_with("d.csv line 4, column 2 (url)"), "{e}");
        let bad = SHEET.replace("escape,", "escpae,");
        let e = parse_csv(&bad, "d.csv").unwrap_err().to_string();
        assert!(
            e.starts_with("d.csv line 2, column 7 (escpae): unknown column"),
            "{e}"
        );
        let bad = SHEET.replace(",^]q,", ",^]q,x,");
        let e = parse_csv(&bad, "d.csv").unwrap_err().to_string();
        assert!(e.contains("line 4") && e.contains("9 fields"), "{e}");
        let bad = SHEET.replace("sun1", "web01");
        let e = parse_csv(&bad, "d.csv").unwrap_err().to_string();
        assert!(
            e.contains("line 4, column 1 (name)") && e.contains("first on line 3"),
            "{e}"
        );
        let bad = SHEET.replace(",\\r~^b", ",\\q");
        let e = parse_csv(&bad, "d.csv").unwrap_err().to_string();
        assert!(e.contains("column 8 (break2)"), "{e}");
        assert!(
            parse_csv("name\nx\n", "d.csv")
                .unwrap_err()
                .to_string()
                .contains("no `url` column")
        );
    }

    #[test]
    fn random_input_never_panics() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0xc5f);
        let alphabet = b",\"\n\r#abcnameurl:/0123456789yes\xff\\^";
        for _ in 0..3000 {
            let mut b = SHEET.as_bytes().to_vec();
            for _ in 0..rng.random_range(1..10) {
                let i = rng.random_range(0..b.len());
                b[i] = alphabet[rng.random_range(0..alphabet.len())];
            }
            let _ = parse_csv(&String::from_utf8_lossy(&b), "f.csv");
        }
    }
}
