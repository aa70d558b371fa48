//! Time-of-day schedules: days of the week and `hh:mm-hh:mm` ranges.

use time::{OffsetDateTime, UtcOffset, Weekday};

use super::config::ScheduleConfig;
use crate::error::{Error, Result};

/// Minutes in a day; `24:00` is allowed as the end of a range.
const DAY_MINUTES: u16 = 24 * 60;

/// A compiled schedule: active on some days of the week, during some minutes of the day.
///
/// A range `start-end` covers `start <= t < end`; when `end` is before `start` it wraps past
/// midnight (`22:00-06:00` covers late evening and early morning of each listed day). The time is
/// taken in the offset of the [`OffsetDateTime`] given, or in UTC if the schedule says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// Bit `n` set: active on the `n`th day from Monday (0) to Sunday (6).
    days: u8,
    /// Minute ranges, `(start, end)`.
    ranges: Vec<(u16, u16)>,
    utc: bool,
}

impl Schedule {
    /// Compile a schedule; `name` appears in errors.
    pub fn from_config(name: &str, config: &ScheduleConfig) -> Result<Schedule> {
        let bad = |field: &str, input: &str, reason: &str| Error::BadSpec {
            what: "schedule",
            input: name.to_owned(),
            reason: format!("field `{field}`: `{input}`: {reason}"),
        };
        let mut days = 0u8;
        for day in &config.days {
            let n = parse_day(day)
                .ok_or_else(|| bad("days", day, "expected mon, tue, wed, thu, fri, sat or sun"))?;
            days |= 1 << n;
        }
        if config.days.is_empty() {
            days = 0x7f;
        }
        let mut ranges = Vec::with_capacity(config.hours.len());
        for range in &config.hours {
            let parsed = range
                .split_once('-')
                .and_then(|(a, b)| Some((parse_hhmm(a)?, parse_hhmm(b)?)))
                .ok_or_else(|| bad("hours", range, "expected hh:mm-hh:mm (00:00 to 24:00)"))?;
            if parsed.0 == parsed.1 {
                return Err(bad("hours", range, "the range is empty"));
            }
            ranges.push(parsed);
        }
        if ranges.is_empty() {
            ranges.push((0, DAY_MINUTES));
        }
        Ok(Schedule {
            days,
            ranges,
            utc: config.utc,
        })
    }

    /// Whether the schedule is active at `now`.
    pub fn is_active(&self, now: OffsetDateTime) -> bool {
        let now = if self.utc {
            now.to_offset(UtcOffset::UTC)
        } else {
            now
        };
        let day = now.weekday().number_days_from_monday();
        if self.days & (1 << day) == 0 {
            return false;
        }
        let minute = u16::from(now.hour()) * 60 + u16::from(now.minute());
        self.ranges.iter().any(|&(start, end)| {
            if start < end {
                start <= minute && minute < end
            } else {
                minute >= start || minute < end
            }
        })
    }
}

fn parse_day(day: &str) -> Option<u8> {
    let day = day.trim().to_ascii_lowercase();
    let weekday = match day.get(..3)? {
        "mon" => Weekday::Monday,
        "tue" => Weekday::Tuesday,
        "wed" => Weekday::Wednesday,
        "thu" => Weekday::Thursday,
        "fri" => Weekday::Friday,
        "sat" => Weekday::Saturday,
        "sun" => Weekday::Sunday,
        _ => return None,
    };
    let full = weekday.to_string().to_ascii_lowercase();
    (day.len() == 3 || day == full).then(|| weekday.number_days_from_monday())
}

fn parse_hhmm(text: &str) -> Option<u16> {
    let (h, m) = text.trim().split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    let h: u16 = h.parse().ok()?;
    let m: u16 = m.parse().ok()?;
    if m >= 60 {
        return None;
    }
    let total = h.checked_mul(60)?.checked_add(m)?;
    (total <= DAY_MINUTES).then_some(total)
}
