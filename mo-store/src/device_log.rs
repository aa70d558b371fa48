//! A device's record-log settings: what happens to input while the log cannot write
//! ([`LogPolicy`]), and how much of the log to keep ([`RetainSize`], days).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

pub use mo_core::console::LogPolicy;
use mo_core::log::Retention;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};

/// MiB in a GiB.
const MIB_PER_GIB: u64 = 1024;
/// Bytes in a MiB.
const MIB: u64 = 1024 * 1024;
/// The largest accepted size limit, in MiB (1 EiB: far above any disk, far below overflow).
const MAX_MIB: u64 = 1 << 40;
/// The largest accepted age limit, in days (about 270 years).
pub const MAX_RETAIN_DAYS: u32 = 100_000;

/// A size limit for a device's record log, stored in whole MiB and written as a number of GiB:
/// `100` (GiB) or a fraction such as `0.5` (512 MiB). Fractions are rounded to the nearest MiB;
/// the smallest limit is 1 MiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RetainSize {
    mib: u64,
}

impl RetainSize {
    /// A limit of `mib` MiB; `None` for 0 or an absurdly large value.
    pub fn from_mib(mib: u64) -> Option<RetainSize> {
        (1..=MAX_MIB).contains(&mib).then_some(RetainSize { mib })
    }

    /// A limit of `gib` GiB.
    pub fn from_gib(gib: u32) -> Option<RetainSize> {
        RetainSize::from_mib(u64::from(gib) * MIB_PER_GIB)
    }

    /// The limit in MiB.
    pub fn mib(self) -> u64 {
        self.mib
    }

    /// The limit in bytes.
    pub fn bytes(self) -> u64 {
        self.mib * MIB
    }

    /// The limit in GiB (exact: a whole number of MiB is a binary fraction of a GiB).
    pub fn gib(self) -> f64 {
        self.mib as f64 / MIB_PER_GIB as f64
    }

    fn from_gib_f64(gib: f64) -> std::result::Result<RetainSize, String> {
        if !gib.is_finite() || gib <= 0.0 {
            return Err("must be a positive number of GiB".into());
        }
        let mib = (gib * MIB_PER_GIB as f64).round();
        if mib < 1.0 {
            return Err("the smallest limit is 1 MiB (0.0009765625 GiB)".into());
        }
        if mib > MAX_MIB as f64 {
            return Err(format!("at most {} GiB", MAX_MIB / MIB_PER_GIB));
        }
        // In range 1..=2^40 after the checks above, so the conversion is exact.
        Ok(RetainSize { mib: mib as u64 })
    }
}

impl fmt::Display for RetainSize {
    /// `100 GiB`, or `3 MiB` below a whole GiB.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.mib.is_multiple_of(MIB_PER_GIB) {
            write!(f, "{} GiB", self.mib / MIB_PER_GIB)
        } else {
            write!(f, "{} MiB", self.mib)
        }
    }
}

impl FromStr for RetainSize {
    type Err = Error;

    /// A number of GiB: `100`, `0.5`; or with a unit: `512MiB`, `2GiB`, `512 MiB`.
    fn from_str(s: &str) -> Result<Self> {
        let bad = |reason: String| Error::BadValue {
            what: "log size limit".into(),
            value: s.to_string(),
            reason,
        };
        let t = s.trim();
        let (number, mib_unit) = if let Some(n) = t.strip_suffix("MiB") {
            (n.trim(), true)
        } else if let Some(n) = t.strip_suffix("GiB") {
            (n.trim(), false)
        } else {
            (t, false)
        };
        let value: f64 = number.parse().map_err(|_| {
            bad("expected a number of GiB such as `100` or `0.5`, or `512MiB`".into())
        })?;
        let gib = if mib_unit {
            value / MIB_PER_GIB as f64
        } else {
            value
        };
        RetainSize::from_gib_f64(gib).map_err(bad)
    }
}

impl Serialize for RetainSize {
    /// A whole number of GiB as an integer, else as a (binary, exact) fraction.
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        if self.mib.is_multiple_of(MIB_PER_GIB) {
            s.serialize_u64(self.mib / MIB_PER_GIB)
        } else {
            s.serialize_f64(self.gib())
        }
    }
}

impl<'de> Deserialize<'de> for RetainSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let gib = f64::deserialize(d)?;
        RetainSize::from_gib_f64(gib).map_err(serde::de::Error::custom)
    }
}

/// `log_policy` as `"degrade"`/`"strict"` (mo-core's type has no serde form of its own).
pub(crate) mod policy_serde {
    use super::LogPolicy;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(p: &Option<LogPolicy>, s: S) -> Result<S::Ok, S::Error> {
        match p {
            Some(p) => s.serialize_str(p.name()),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<LogPolicy>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|s| s.parse().map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// Parse a `--log-policy` value (`degrade` or `strict`).
pub fn parse_log_policy(text: &str) -> Result<LogPolicy> {
    text.parse().map_err(|_| Error::BadValue {
        what: "log policy".into(),
        value: text.to_string(),
        reason: "expected `degrade` or `strict`".into(),
    })
}

/// Parse a number of days for retention (1 to [`MAX_RETAIN_DAYS`]).
pub fn parse_retain_days(text: &str) -> Result<u32> {
    text.trim()
        .parse::<u32>()
        .ok()
        .filter(|d| (1..=MAX_RETAIN_DAYS).contains(d))
        .ok_or_else(|| Error::BadValue {
            what: "retention in days".into(),
            value: text.to_string(),
            reason: format!("expected a whole number of days from 1 to {MAX_RETAIN_DAYS}"),
        })
}

/// The retention in force for a device: its own limits where it has them, else the daemon's
/// defaults (`mod --retain-days/--retain-gib`).
pub fn effective_retention(
    retain_days: Option<u32>,
    retain_size: Option<RetainSize>,
    defaults: Retention,
) -> Retention {
    Retention {
        max_bytes: retain_size.map(RetainSize::bytes).or(defaults.max_bytes),
        max_age: retain_days
            .map(|d| Duration::from_secs(u64::from(d) * 86_400))
            .or(defaults.max_age),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sizes_parse_print_and_round_trip() {
        assert_eq!("100".parse::<RetainSize>().unwrap().mib(), 100 * 1024);
        assert_eq!("0.5".parse::<RetainSize>().unwrap().mib(), 512);
        assert_eq!("3MiB".parse::<RetainSize>().unwrap().mib(), 3);
        assert_eq!("2 GiB".parse::<RetainSize>().unwrap().to_string(), "2 GiB");
        assert_eq!("3MiB".parse::<RetainSize>().unwrap().to_string(), "3 MiB");
        for bad in ["0", "-1", "x", "", "0.0001", "nan", "inf"] {
            let e = bad.parse::<RetainSize>().unwrap_err().to_string();
            assert!(e.contains("log size limit"), "{bad}: {e}");
        }
        for mib in [1, 3, 512, 1024, 1536, 100 * 1024] {
            let size = RetainSize::from_mib(mib).unwrap();
            let json = serde_json::to_string(&size).unwrap();
            assert_eq!(serde_json::from_str::<RetainSize>(&json).unwrap(), size);
            let toml_text =
                toml::to_string(&std::collections::BTreeMap::from([("v", size)])).unwrap();
            let back: std::collections::BTreeMap<String, RetainSize> =
                toml::from_str(&toml_text).unwrap();
            assert_eq!(back["v"], size, "{toml_text}");
        }
        assert_eq!(
            serde_json::to_string(&RetainSize::from_gib(2).unwrap()).unwrap(),
            "2"
        );
        assert!(serde_json::from_str::<RetainSize>("0").is_err());
    }

    /// A store at schema version 4 (before this module's settings) with one device, then
    /// opened by this build: the device keeps its settings and gets none of the new ones.
    #[test]
    fn a_version_4_store_migrates_and_keeps_its_devices() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("mo.db");
        {
            let conn = rusqlite::Connection::open(&path).unwrap();
            for step in crate::schema::MIGRATIONS.iter().take(4) {
                conn.execute_batch(step).unwrap();
            }
            conn.pragma_update(None, "user_version", 4).unwrap();
            conn.execute(
                "INSERT INTO devices (name, url, replay_lines, created_ns, updated_ns) \
                 VALUES ('web01', 'sim://web01', 55, 1, 1)",
                [],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO audit (time_ns, action, outcome) VALUES (1, 'login', 'ok')",
                [],
            )
            .unwrap();
        }
        let store = crate::Store::open(&path).unwrap();
        assert_eq!(
            store.schema_version().unwrap(),
            crate::schema::latest_version()
        );
        let mut web = store.device("web01").unwrap();
        assert_eq!(web.settings.replay_lines, 55);
        assert_eq!(
            (
                web.settings.log_policy,
                web.settings.retain_days,
                web.settings.retain_gib
            ),
            (None, None, None)
        );
        web.settings.log_policy = Some(LogPolicy::Strict);
        web.settings.retain_days = Some(30);
        web.settings.retain_gib = RetainSize::from_mib(3);
        let generation = store.generation().unwrap();
        store.update_device(&web).unwrap();
        assert!(
            store.generation().unwrap() > generation,
            "a change restarts the console"
        );
        drop(store);
        let store = crate::Store::open(&path).unwrap();
        assert_eq!(store.device("web01").unwrap(), web);
        // A plain DELETE of audit rows is still refused after the trigger was replaced.
        let err = store
            .read("x", |c| c.execute("DELETE FROM audit", []))
            .unwrap_err()
            .to_string();
        assert!(err.contains("append-only"), "{err}");
        // Out-of-range values are refused with the setting named.
        web.settings.retain_days = Some(0);
        let err = store.update_device(&web).unwrap_err().to_string();
        assert!(err.contains("retain days"), "{err}");
    }

    #[test]
    fn device_limits_override_the_defaults() {
        let defaults = Retention {
            max_bytes: Some(7),
            max_age: Some(Duration::from_secs(60)),
        };
        assert_eq!(effective_retention(None, None, defaults), defaults);
        let own = effective_retention(Some(2), RetainSize::from_mib(1), defaults);
        assert_eq!(own.max_bytes, Some(1024 * 1024));
        assert_eq!(own.max_age, Some(Duration::from_secs(2 * 86_400)));
        assert!(parse_retain_days("0").is_err());
        assert_eq!(parse_retain_days("30").unwrap(), 30);
        assert!(
            parse_log_policy("loose")
                .unwrap_err()
                .to_string()
                .contains("degrade")
        );
    }
}
