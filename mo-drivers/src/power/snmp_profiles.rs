//! PDU profiles: which OIDs switch and read an outlet, and what their values mean.
//!
//! An outlet's OID is the profile's column OID, then the profile's index prefix (for PDUs whose
//! tables are indexed by unit/cord too), then the outlet number. An outlet written with dots
//! (`1.2.7`: tower 1, infeed 2, outlet 7) is used as the whole index instead.
//!
//! | profile | MIB | control / status |
//! |---------|-----|------------------|
//! | `apc` (`apc-rpdu`) | PowerNet-MIB rPDU | `rPDUOutletControlOutletCommand` 1 on 2 off 3 reboot / `rPDUOutletStatusOutletState` 1 on 2 off |
//! | `apc-rpdu2` | PowerNet-MIB rPDU2 | `rPDU2OutletSwitchedControlCommand` 1 on 2 off 3 reboot / `…StatusState` 1 off 2 on |
//! | `raritan` | PDU2-MIB | `switchingOperation` 0 off 1 on 2 cycle / `measurementsOutletSensorState` 7 on 8 off |
//! | `sentry3` | Sentry3-MIB | `outletControlAction` 1 on 2 off 3 reboot / `outletStatus` 1,3,5,9 on; 0,2,4,8 off |
//! | `sentry4` | Sentry4-MIB | `st4OutletControlAction` 1 on 2 off 3 reboot / `st4OutletState` 1 on 2 off |
//! | `eaton` | EATON-EPDU-MIB | `outletControlOnCmd`/`OffCmd`/`RebootCmd` set to 0 / `outletControlStatus` 1,3 on; 0,2 off |
//! | `cyberpower` | CPS-MIB ePDU | `ePDUOutletControlOutletCommand` 1 on 2 off 3 reboot / `ePDUOutletStatusOutletState` 1 on 2 off |
//! | `generic` | from the address | `control-oid`, `status-oid`, `on`, `off`, `reboot`, `status-on`, `status-off` |

use async_snmp::Oid;

/// One SET that performs a command: the column OID and the INTEGER written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutletCommand {
    /// The column (the outlet index is appended).
    pub column: Vec<u32>,
    /// The value written.
    pub value: i32,
}

/// How to drive the outlets of one kind of PDU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PduProfile {
    /// The profile's name as addresses spell it.
    pub name: String,
    /// Switch an outlet on.
    pub on: OutletCommand,
    /// Switch an outlet off.
    pub off: OutletCommand,
    /// Reboot (off, PDU-timed delay, on), where the PDU has it.
    pub reboot: Option<OutletCommand>,
    /// The status column.
    pub status_column: Vec<u32>,
    /// Status values that mean on.
    pub status_on: Vec<i32>,
    /// Status values that mean off.
    pub status_off: Vec<i32>,
    /// Index arcs put before a plain outlet number (`[1]` for PDU 1, `[1, 1]` for unit 1 cord 1).
    pub index_prefix: Vec<u32>,
    /// Arcs put after the outlet index in the status OID only (Raritan's sensor type).
    pub status_suffix: Vec<u32>,
}

/// The names of the built-in profiles, plus `generic` and `auto`.
pub const PROFILE_NAMES: &[&str] = &[
    "apc",
    "apc-rpdu",
    "apc-rpdu2",
    "raritan",
    "sentry3",
    "sentry4",
    "eaton",
    "cyberpower",
    "generic",
    "auto",
];

fn arcs(text: &str) -> Vec<u32> {
    text.split('.').filter_map(|a| a.parse().ok()).collect()
}

fn cmd(column: &str, value: i32) -> OutletCommand {
    OutletCommand {
        column: arcs(column),
        value,
    }
}

/// Build a profile from the shared "one command column" shape.
#[allow(clippy::too_many_arguments)]
fn simple(
    name: &str,
    control: &str,
    values: (i32, i32, Option<i32>),
    status: &str,
    status_on: &[i32],
    status_off: &[i32],
    prefix: &[u32],
) -> PduProfile {
    PduProfile {
        name: name.to_owned(),
        on: cmd(control, values.0),
        off: cmd(control, values.1),
        reboot: values.2.map(|v| cmd(control, v)),
        status_column: arcs(status),
        status_on: status_on.to_vec(),
        status_off: status_off.to_vec(),
        index_prefix: prefix.to_vec(),
        status_suffix: Vec::new(),
    }
}

/// A parameter of the `generic` SNMP profile that is missing or malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct ProfileParamError {
    /// The parameter's name (`control-oid`, `on`, …).
    pub parameter: String,
    /// What is wrong, naming the parameter and its value.
    pub reason: String,
}

impl PduProfile {
    /// The built-in profile called `name`, if there is one (`generic` and `auto` are not).
    pub fn builtin(name: &str) -> Option<PduProfile> {
        Some(match name {
            "apc" | "apc-rpdu" => simple(
                "apc",
                "1.3.6.1.4.1.318.1.1.12.3.3.1.1.4",
                (1, 2, Some(3)),
                "1.3.6.1.4.1.318.1.1.12.3.5.1.1.4",
                &[1],
                &[2],
                &[],
            ),
            "apc-rpdu2" => simple(
                "apc-rpdu2",
                "1.3.6.1.4.1.318.1.1.26.9.2.4.1.5",
                (1, 2, Some(3)),
                "1.3.6.1.4.1.318.1.1.26.9.2.3.1.5",
                &[2],
                &[1],
                &[],
            ),
            "raritan" => PduProfile {
                // measurementsOutletSensorState of the outlet's onOff sensor (type 14).
                status_suffix: vec![14],
                ..simple(
                    "raritan",
                    "1.3.6.1.4.1.13742.6.4.1.2.1.2",
                    (1, 0, Some(2)),
                    "1.3.6.1.4.1.13742.6.5.4.3.1.3",
                    &[7],
                    &[8],
                    &[1],
                )
            },
            "sentry3" => simple(
                "sentry3",
                "1.3.6.1.4.1.1718.3.2.3.1.11",
                (1, 2, Some(3)),
                "1.3.6.1.4.1.1718.3.2.3.1.5",
                &[1, 3, 5, 9],
                &[0, 2, 4, 8],
                &[1, 1],
            ),
            "sentry4" => simple(
                "sentry4",
                "1.3.6.1.4.1.1718.4.1.8.5.1.2",
                (1, 2, Some(3)),
                "1.3.6.1.4.1.1718.4.1.8.3.1.1",
                &[1],
                &[2],
                &[1, 1],
            ),
            "eaton" => PduProfile {
                name: "eaton".to_owned(),
                on: cmd("1.3.6.1.4.1.534.6.6.7.6.6.1.4", 0),
                off: cmd("1.3.6.1.4.1.534.6.6.7.6.6.1.3", 0),
                reboot: Some(cmd("1.3.6.1.4.1.534.6.6.7.6.6.1.5", 0)),
                status_column: arcs("1.3.6.1.4.1.534.6.6.7.6.6.1.2"),
                status_on: vec![1, 3],
                status_off: vec![0, 2],
                index_prefix: vec![0],
                status_suffix: Vec::new(),
            },
            "cyberpower" => simple(
                "cyberpower",
                "1.3.6.1.4.1.3808.1.1.3.3.3.1.1.4",
                (1, 2, Some(3)),
                "1.3.6.1.4.1.3808.1.1.3.3.5.1.1.4",
                &[1],
                &[2],
                &[],
            ),
            _ => return None,
        })
    }

    /// A `generic` profile from the address's parameters: `control-oid`, `status-oid` (dotted
    /// OIDs of the columns), `on`, `off`, optional `reboot`, `status-on`, `status-off`
    /// (comma-separated integers). `get` reads a parameter.
    pub fn generic(
        get: impl Fn(&str) -> Option<String>,
    ) -> std::result::Result<PduProfile, ProfileParamError> {
        let missing = |key: &str| ProfileParamError {
            parameter: key.to_owned(),
            reason: format!("the generic profile needs `{key}`"),
        };
        let malformed = |key: &str, reason: String| ProfileParamError {
            parameter: key.to_owned(),
            reason,
        };
        let oid = |key: &str| -> std::result::Result<Vec<u32>, ProfileParamError> {
            let text = get(key).ok_or_else(|| missing(key))?;
            parse_oid(&text)
                .ok_or_else(|| malformed(key, format!("`{key}={text}` is not a dotted OID")))
        };
        let int = |key: &str| -> std::result::Result<Option<i32>, ProfileParamError> {
            get(key)
                .map(|t| {
                    t.trim()
                        .parse::<i32>()
                        .map_err(|_| malformed(key, format!("`{key}={t}` is not an integer")))
                })
                .transpose()
        };
        let ints = |key: &str| -> std::result::Result<Vec<i32>, ProfileParamError> {
            let text = get(key).ok_or_else(|| missing(key))?;
            text.split(',')
                .map(|t| {
                    t.trim().parse::<i32>().map_err(|_| {
                        malformed(key, format!("`{key}={text}` is not a list of integers"))
                    })
                })
                .collect()
        };
        let control = oid("control-oid")?;
        let on = int("on")?.ok_or_else(|| missing("on"))?;
        let off = int("off")?.ok_or_else(|| missing("off"))?;
        Ok(PduProfile {
            name: "generic".to_owned(),
            on: OutletCommand {
                column: control.clone(),
                value: on,
            },
            off: OutletCommand {
                column: control.clone(),
                value: off,
            },
            reboot: int("reboot")?.map(|value| OutletCommand {
                column: control,
                value,
            }),
            status_column: oid("status-oid")?,
            status_on: ints("status-on")?,
            status_off: ints("status-off")?,
            index_prefix: Vec::new(),
            status_suffix: Vec::new(),
        })
    }

    /// The full index of `outlet` (`7`, or a dotted index such as `1.2.7`).
    pub fn index(&self, outlet: &str) -> Option<Vec<u32>> {
        let parts = parse_oid(outlet)?;
        if parts.len() == 1 {
            let mut index = self.index_prefix.clone();
            index.extend(parts);
            Some(index)
        } else {
            Some(parts)
        }
    }

    /// The OID of `column` for the outlet whose index is `index`.
    pub fn oid(column: &[u32], index: &[u32]) -> Oid {
        Oid::new(column.iter().chain(index).copied())
    }

    /// The status OID of the outlet whose index is `index`.
    pub fn status_oid(&self, index: &[u32]) -> Oid {
        Oid::new(
            self.status_column
                .iter()
                .chain(index)
                .chain(&self.status_suffix)
                .copied(),
        )
    }

    /// What a status value means.
    pub fn state_of(&self, value: i32) -> mo_core::power::PowerState {
        use mo_core::power::PowerState;
        if self.status_on.contains(&value) {
            PowerState::On
        } else if self.status_off.contains(&value) {
            PowerState::Off
        } else {
            PowerState::Unknown
        }
    }
}

/// A dotted OID (`1.3.6.1…`, a leading dot allowed), or `None`.
pub fn parse_oid(text: &str) -> Option<Vec<u32>> {
    let text = text.trim().strip_prefix('.').unwrap_or(text.trim());
    if text.is_empty() {
        return None;
    }
    text.split('.').map(|a| a.parse::<u32>().ok()).collect()
}

/// Guess the profile from a PDU's sysObjectID and sysDescr: the vendor by enterprise number or
/// by name. Returns the candidates to probe in order (APC and ServerTech have two MIB
/// generations), or an empty list when the vendor is unknown.
pub fn candidates(sys_object_id: &[u32], sys_descr: &str) -> Vec<&'static str> {
    let enterprise = match sys_object_id {
        [1, 3, 6, 1, 4, 1, e, ..] => Some(*e),
        _ => None,
    };
    let descr = sys_descr.to_ascii_lowercase();
    let by_name = |needles: &[&str]| needles.iter().any(|n| descr.contains(n));
    match enterprise {
        Some(318) => return vec!["apc-rpdu2", "apc"],
        Some(13742) => return vec!["raritan"],
        Some(1718) => return vec!["sentry4", "sentry3"],
        Some(534) => return vec!["eaton"],
        Some(3808) => return vec!["cyberpower"],
        _ => {}
    }
    if by_name(&["apc ", "american power conversion", "schneider"]) {
        vec!["apc-rpdu2", "apc"]
    } else if by_name(&["raritan", "px2", "px3"]) {
        vec!["raritan"]
    } else if by_name(&["sentry", "server technology", "servertech"]) {
        vec!["sentry4", "sentry3"]
    } else if by_name(&["eaton"]) {
        vec!["eaton"]
    } else if by_name(&["cyberpower", "cyber power"]) {
        vec!["cyberpower"]
    } else {
        Vec::new()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use mo_core::power::PowerState;

    #[test]
    fn builtin_profiles_index_outlets() {
        let apc = PduProfile::builtin("apc").unwrap();
        assert_eq!(
            PduProfile::oid(&apc.on.column, &apc.index("3").unwrap()).to_string(),
            "1.3.6.1.4.1.318.1.1.12.3.3.1.1.4.3"
        );
        assert_eq!(apc.state_of(1), PowerState::On);
        assert_eq!(apc.state_of(2), PowerState::Off);
        let sentry = PduProfile::builtin("sentry3").unwrap();
        assert_eq!(sentry.index("7").unwrap(), [1, 1, 7]);
        assert_eq!(sentry.index("2.1.7").unwrap(), [2, 1, 7]);
        assert!(sentry.index("x").is_none());
        for name in PROFILE_NAMES {
            if !matches!(*name, "generic" | "auto") {
                let p = PduProfile::builtin(name).unwrap();
                assert!(p.on.column.len() > 8 && p.status_column.len() > 8, "{name}");
            }
        }
    }

    #[test]
    fn generic_profile_from_parameters() {
        let params = [
            ("control-oid", ".1.3.6.1.4.1.99.1"),
            ("status-oid", "1.3.6.1.4.1.99.2"),
            ("on", "1"),
            ("off", "0"),
            ("status-on", "1"),
            ("status-off", "0,3"),
        ];
        let get = |k: &str| {
            params
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        };
        let p = PduProfile::generic(get).unwrap();
        assert_eq!(p.off.value, 0);
        assert_eq!(p.state_of(3), PowerState::Off);
        assert!(p.reboot.is_none());
        let err = PduProfile::generic(|k| {
            if k == "control-oid" {
                Some("1.x".into())
            } else {
                None
            }
        })
        .unwrap_err();
        assert_eq!(err.parameter, "control-oid");
        assert_eq!(err.to_string(), "`control-oid=1.x` is not a dotted OID");
    }

    #[test]
    fn vendors_are_recognised() {
        assert_eq!(
            candidates(&[1, 3, 6, 1, 4, 1, 318, 1, 3, 4, 5], ""),
            ["apc-rpdu2", "apc"]
        );
        assert_eq!(
            candidates(
                &[1, 3, 6, 1, 4, 1, 8072, 3, 2, 10],
                "APC Web/SNMP Management Card"
            ),
            ["apc-rpdu2", "apc"]
        );
        assert_eq!(candidates(&[1, 3, 6, 1, 4, 1, 534, 6], ""), ["eaton"]);
        assert!(candidates(&[1, 3, 6, 1, 4, 1, 8072], "Linux box").is_empty());
    }
}
