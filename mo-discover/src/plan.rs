//! From findings to a site configuration: the devices, power bindings and secrets `mo discover`
//! proposes, merged with what the store already has so that re-running changes nothing.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::path::Path;

use mo_core::secret::Secret;
use mo_drivers::discover::{Found, HostReport, parse_targets};
use mo_store::config::SiteConfig;
use mo_store::{Device, DeviceSettings, SecretKind, Store};
use serde::Deserialize;

use crate::{Error, Result};

/// The `--credentials` file: entries tried in order, the first whose `match` covers an address
/// is used for it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialsFile {
    /// The entries.
    #[serde(default)]
    pub credentials: Vec<CredentialEntry>,
}

/// Credentials for the addresses an entry matches.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialEntry {
    /// An address, `ADDRESS/BITS`, `FIRST-LAST`, or a glob (`10.0.1.*`).
    #[serde(rename = "match")]
    pub pattern: String,
    /// The login for BMCs (IPMI, Redfish) and SSH.
    #[serde(default)]
    pub user: Option<String>,
    /// Its password (stored as the device secret `password`).
    #[serde(default)]
    pub password: Option<String>,
    /// IPMI K_g (the device secret `bmc_key`).
    #[serde(default)]
    pub bmc_key: Option<String>,
    /// SNMP v2c communities to try, in order (the one that answers becomes `snmp_auth`).
    #[serde(default)]
    pub communities: Vec<String>,
    /// An SNMPv3 user to try after the communities (SHA authentication, AES privacy).
    #[serde(default)]
    pub snmp_user: Option<String>,
    /// Its authentication passphrase (the device secret `snmp_auth`).
    #[serde(default)]
    pub snmp_auth: Option<String>,
    /// Its privacy passphrase, for authPriv (the device secret `snmp_privacy`).
    #[serde(default)]
    pub snmp_privacy: Option<String>,
    /// The addresses `pattern` names (unless it is a glob), filled in when read.
    #[serde(skip)]
    pub addresses: HashSet<IpAddr>,
}

impl CredentialEntry {
    fn matches(&self, addr: IpAddr) -> bool {
        if self.pattern.contains(['*', '?']) {
            mo_core::glob::glob_match(&self.pattern, &addr.to_string())
        } else {
            self.addresses.contains(&addr)
        }
    }
}

impl CredentialsFile {
    /// Read a credentials file (TOML, `[[credentials]]` entries).
    pub fn read(path: &Path) -> Result<Self> {
        let bad = |what: String| {
            Error::Credentials(format!("credentials file {}: {what}", path.display()))
        };
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::Credentials(format!(
                "cannot read credentials file {}: {e}",
                path.display()
            ))
        })?;
        let mut file: CredentialsFile = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
        for (i, entry) in file.credentials.iter_mut().enumerate() {
            if entry.pattern.trim().is_empty() {
                return Err(bad(format!("entry {} has an empty `match`", i + 1)));
            }
            if !entry.pattern.contains(['*', '?']) {
                entry.addresses = parse_targets(std::slice::from_ref(&entry.pattern))
                    .map_err(|e| bad(format!("entry {}: {e}", i + 1)))?
                    .into_iter()
                    .collect();
            }
        }
        Ok(file)
    }

    /// The entry for `addr`, if one matches.
    pub fn for_address(&self, addr: IpAddr) -> Option<&CredentialEntry> {
        self.credentials.iter().find(|e| e.matches(addr))
    }
}

/// What discovery proposes: devices, their secrets in clear (sealed only to apply or write),
/// and what it found but cannot add by itself.
#[derive(Debug, Default)]
pub struct Proposal {
    /// The devices, merged with the stored ones of the same address or name.
    pub devices: Vec<Device>,
    /// Secrets to store: device, kind, value.
    pub secrets: Vec<(String, SecretKind, Secret)>,
    /// Findings that add nothing, with what to do about them.
    pub notes: Vec<String>,
}

/// `ADDRESS` as a URL host (IPv6 in brackets).
pub fn host_of(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => format!("[{a}]"),
    }
}

fn dashed(addr: IpAddr) -> String {
    addr.to_string().replace(['.', ':'], "-")
}

/// `:PORT` unless `port` is the default.
pub fn port_suffix(port: u16, default: u16) -> String {
    if port == default {
        String::new()
    } else {
        format!(":{port}")
    }
}

/// `KIND-ADDRESS[-PORT]`, the name discovery gives what it finds.
pub fn name_for(kind: &str, addr: IpAddr, port: u16, default: u16) -> String {
    if port == default {
        format!("{kind}-{}", dashed(addr))
    } else {
        format!("{kind}-{}-{port}", dashed(addr))
    }
}

/// A console found on a host, before merging.
pub struct Console {
    /// The name proposed.
    pub name: String,
    /// Its address.
    pub url: String,
    /// The description of a new device.
    pub description: String,
    /// Its power bindings.
    pub power: Vec<String>,
    /// Its secrets.
    pub secrets: Vec<(SecretKind, Secret)>,
    /// An SSH console (the host key is trusted at the first connect).
    pub ssh: bool,
}

/// A PDU found: host, port, profile, outlet names, the login that answered.
pub type FoundPdu = (String, u16, String, Vec<String>, SnmpLogin);

/// The SNMP login a PDU answered: a v2c community (`user` none, `auth` the community) or a v3
/// user with its passphrases.
#[derive(Debug, Clone)]
pub struct SnmpLogin {
    /// The v3 user.
    pub user: Option<String>,
    /// The community, or the v3 authentication passphrase.
    pub auth: String,
    /// The v3 privacy passphrase.
    pub privacy: Option<String>,
}

impl SnmpLogin {
    /// The login that answered: the `community`-th of `cred`'s communities (default `public`),
    /// or its v3 user when `v3_user` is set.
    pub fn of(cred: &CredentialEntry, community: usize, v3_user: &Option<String>) -> Self {
        match v3_user {
            Some(user) => SnmpLogin {
                user: Some(user.clone()),
                auth: cred.snmp_auth.clone().unwrap_or_default(),
                privacy: cred.snmp_privacy.clone(),
            },
            None => SnmpLogin {
                user: None,
                auth: cred
                    .communities
                    .get(community)
                    .cloned()
                    .unwrap_or_else(|| "public".to_string()),
                privacy: None,
            },
        }
    }
}

impl CredentialEntry {
    /// The SNMPv3 user of this entry, when it names one with a passphrase.
    pub fn snmp_v3(&self) -> Option<mo_drivers::discover::SnmpUser> {
        Some(mo_drivers::discover::SnmpUser {
            user: self.snmp_user.clone()?,
            auth: Secret::new(self.snmp_auth.clone()?),
            privacy: self.snmp_privacy.clone().map(Secret::new),
        })
    }
}

/// Build the proposal for `reports` against the devices in `store`.
pub fn propose(
    reports: &[HostReport],
    credentials: &CredentialsFile,
    store: &Store,
) -> Result<Proposal> {
    let stored = store.list_devices()?;
    let mut proposal = Proposal::default();
    let mut consoles: Vec<Console> = Vec::new();
    let mut pdus: Vec<FoundPdu> = Vec::new();
    for report in reports {
        let addr = report.address;
        let host = host_of(addr);
        let cred = credentials.for_address(addr).cloned().unwrap_or_default();
        let user = cred.user.clone().unwrap_or_else(|| "admin".to_string());
        let login_secrets = |bmc: bool| {
            let mut out = Vec::new();
            if let Some(p) = &cred.password {
                out.push((SecretKind::Password, Secret::new(p.clone())));
            }
            if bmc && let Some(k) = &cred.bmc_key {
                out.push((SecretKind::BmcKey, Secret::new(k.clone())));
            }
            out
        };
        let mut host_consoles: Vec<Console> = Vec::new();
        let mut redfish_power = None;
        for found in &report.found {
            match found {
                Found::Ipmi {
                    port, ipmi20: true, ..
                } => {
                    let url = format!("ipmi://{user}@{host}{}", port_suffix(*port, 623));
                    host_consoles.insert(
                        0,
                        Console {
                            name: name_for("bmc", addr, *port, 623),
                            url: url.clone(),
                            description: "IPMI BMC, Serial-over-LAN (found by mo discover)".into(),
                            power: vec![url],
                            secrets: login_secrets(true),
                            ssh: false,
                        },
                    );
                }
                Found::Ipmi { port, .. } => proposal.notes.push(format!(
                    "{host}: IPMI on UDP {port} without IPMI 2.0: no Serial-over-LAN console"
                )),
                Found::Redfish {
                    port,
                    tls,
                    fingerprint,
                    systems,
                    ..
                } => {
                    let query = match (tls, fingerprint) {
                        (false, _) => "?tls=0".to_string(),
                        (true, Some(fp)) => format!("?fingerprint={}", fp.replace(':', "")),
                        (true, None) => String::new(),
                    };
                    let login = if cred.password.is_some() {
                        format!("{user}@")
                    } else {
                        String::new()
                    };
                    match systems.as_slice() {
                        [system] => {
                            redfish_power = Some(format!(
                                "redfish://{login}{host}:{port}/Systems/{}{query}",
                                system.id
                            ));
                        }
                        [] => proposal.notes.push(format!(
                            "{host}: Redfish on TCP {port}: no systems read; nothing to bind"
                        )),
                        many => proposal.notes.push(format!(
                            "{host}: Redfish on TCP {port} manages {} systems ({}): bind each \
                             with mo device set NAME --power redfish://{login}{host}:{port}/Systems/ID{query}",
                            many.len(),
                            many.iter().map(|s| s.id.as_str()).collect::<Vec<_>>().join(", ")
                        )),
                    }
                }
                Found::Ssh { port, .. } => host_consoles.push(Console {
                    name: name_for("ssh", addr, *port, 22),
                    url: format!("ssh://{user}@{host}{}", port_suffix(*port, 22)),
                    description: "SSH (found by mo discover)".into(),
                    power: Vec::new(),
                    secrets: login_secrets(false),
                    ssh: true,
                }),
                Found::Telnet { port, rfc2217, .. } => {
                    let console = if *rfc2217 {
                        Console {
                            name: format!("serial-{}-{port}", dashed(addr)),
                            url: format!("rfc2217://{host}:{port}"),
                            description: "serial port over RFC 2217 (found by mo discover)".into(),
                            power: Vec::new(),
                            secrets: Vec::new(),
                            ssh: false,
                        }
                    } else {
                        Console {
                            name: name_for("telnet", addr, *port, 23),
                            url: format!("telnet://{host}{}", port_suffix(*port, 23)),
                            description: "telnet (found by mo discover)".into(),
                            power: Vec::new(),
                            secrets: Vec::new(),
                            ssh: false,
                        }
                    };
                    host_consoles.push(console);
                }
                Found::Snmp {
                    port,
                    community,
                    v3_user,
                    profile: Some(profile),
                    outlets,
                    ..
                } => {
                    pdus.push((
                        host.clone(),
                        *port,
                        profile.clone(),
                        outlets.clone(),
                        SnmpLogin::of(&cred, *community, v3_user),
                    ));
                }
                Found::Snmp { port, .. } => proposal.notes.push(format!(
                    "{host}: SNMP agent on UDP {port} matches no mo PDU profile"
                )),
                Found::Other { .. } => {}
            }
        }
        if let Some(power) = redfish_power {
            // The BMC's own console gets the Redfish binding unless IPMI power is there: its
            // SSH CLI, as the IPMI console already has IPMI power.
            if host_consoles.iter().all(|c| c.power.is_empty()) {
                match host_consoles.iter_mut().find(|c| c.ssh) {
                    Some(c) => c.power.push(power),
                    None => proposal.notes.push(format!(
                        "{host}: Redfish power {power}: no console on this address to bind it to"
                    )),
                }
            }
        }
        consoles.extend(host_consoles);
    }
    merge_consoles(consoles, &stored, &mut proposal);
    bind_outlets(pdus, &stored, &mut proposal);
    Ok(proposal)
}

/// Add `consoles` to the proposal, merged with the `stored` devices: the same address keeps its
/// stored name and settings; the same name gets the new address.
pub fn merge_consoles(consoles: Vec<Console>, stored: &[Device], proposal: &mut Proposal) {
    let mut names: HashSet<String> = proposal.devices.iter().map(|d| d.name.clone()).collect();
    for c in consoles {
        let base = stored
            .iter()
            .find(|d| d.url == c.url)
            .or_else(|| stored.iter().find(|d| d.name == c.name));
        let mut device = match base {
            Some(d) => {
                let mut d = d.clone();
                d.url = c.url.clone();
                d
            }
            None => Device {
                name: c.name.clone(),
                url: c.url.clone(),
                settings: DeviceSettings {
                    description: Some(c.description.clone()),
                    trust_host_key: c.ssh,
                    ..DeviceSettings::default()
                },
            },
        };
        for p in c.power {
            if !device.settings.power.contains(&p) {
                device.settings.power.push(p);
            }
        }
        if !names.insert(device.name.clone()) {
            continue;
        }
        for (kind, value) in c.secrets {
            proposal.secrets.push((device.name.clone(), kind, value));
        }
        proposal.devices.push(device);
    }
}

/// Bind the outlets of `pdus` to the devices named like them (proposed or `stored`, case
/// ignored); outlets with no such device become a note.
pub fn bind_outlets(pdus: Vec<FoundPdu>, stored: &[Device], proposal: &mut Proposal) {
    for (host, port, profile, outlets, login) in pdus {
        let user = login
            .user
            .as_ref()
            .map(|u| format!("{u}@"))
            .unwrap_or_default();
        let mut unbound = Vec::new();
        for (i, outlet) in outlets.iter().enumerate() {
            let address = format!(
                "snmp://{user}{host}{}/{profile}/{}",
                port_suffix(port, 161),
                i + 1
            );
            let wanted = outlet.trim().to_ascii_lowercase();
            let target = proposal
                .devices
                .iter_mut()
                .find(|d| d.name.to_ascii_lowercase() == wanted);
            let device = match target {
                Some(d) => Some(d),
                None => match stored
                    .iter()
                    .find(|d| d.name.to_ascii_lowercase() == wanted)
                {
                    Some(d) => {
                        proposal.devices.push(d.clone());
                        proposal.devices.last_mut()
                    }
                    None => None,
                },
            };
            match device {
                Some(d) => {
                    if !d.settings.power.contains(&address) {
                        d.settings.power.push(address);
                    }
                    proposal.secrets.push((
                        d.name.clone(),
                        SecretKind::SnmpAuth,
                        Secret::new(login.auth.clone()),
                    ));
                    if let Some(privacy) = &login.privacy {
                        proposal.secrets.push((
                            d.name.clone(),
                            SecretKind::SnmpPrivacy,
                            Secret::new(privacy.clone()),
                        ));
                    }
                }
                None => unbound.push(format!("{} {outlet}", i + 1)),
            }
        }
        if !unbound.is_empty() {
            proposal.notes.push(format!(
                "{host}: PDU ({profile}) outlets with no device of their name: {}; bind one with \
                 mo device set NAME --power snmp://{user}{host}{}/{profile}/N",
                unbound.join(", "),
                port_suffix(port, 161)
            ));
        }
    }
}

/// The site to plan: the proposed devices and, for each secret whose stored value differs
/// (or cannot be read without `key`), its sealed form (empty without `key`: for display only).
pub fn site_of(
    proposal: &Proposal,
    store: &Store,
    key: Option<&mo_store::SecretKey>,
) -> Result<SiteConfig> {
    let mut site = SiteConfig {
        devices: proposal.devices.clone(),
        ..SiteConfig::default()
    };
    let mut seen = BTreeMap::new();
    for (device, kind, value) in &proposal.secrets {
        if seen.insert((device.clone(), *kind), ()).is_some() {
            continue;
        }
        let stored = match (key, store.get_device(device)?) {
            (Some(key), Some(_)) => store.secret(key, device, *kind).ok().flatten(),
            _ => None,
        };
        if stored.as_ref() == Some(value) {
            // Unchanged: name it with its stored sealed form so the plan leaves it alone.
            if let Some(sealed) = store.export_secret(device, *kind)? {
                site.secrets.push(mo_store::config::SecretEntry {
                    device: device.clone(),
                    kind: kind.name().to_string(),
                    sealed,
                });
            }
            continue;
        }
        let sealed = match key {
            Some(key) => key.seal_for_export(device, *kind, value)?,
            None => String::new(),
        };
        site.secrets.push(mo_store::config::SecretEntry {
            device: device.clone(),
            kind: kind.name().to_string(),
            sealed,
        });
    }
    Ok(site)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use mo_drivers::discover::RedfishSystem;

    fn report(addr: &str, found: Vec<Found>) -> HostReport {
        HostReport {
            address: addr.parse().unwrap(),
            found,
        }
    }

    #[test]
    fn findings_become_devices_bindings_and_secrets() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path().join("mo.db")).unwrap();
        store
            .add_device(&Device {
                name: "web03".into(),
                url: "sim://web03".into(),
                settings: DeviceSettings::default(),
            })
            .unwrap();
        let reports = vec![
            report(
                "10.0.0.2",
                vec![Found::Ipmi {
                    port: 623,
                    ping: true,
                    ipmi20: true,
                    auth_types: vec![],
                    cipher_suites: vec![3, 17],
                }],
            ),
            report(
                "10.0.0.3",
                vec![
                    Found::Redfish {
                        port: 443,
                        tls: true,
                        fingerprint: Some("AB:CD".into()),
                        vendor: String::new(),
                        product: String::new(),
                        version: "1.5.0".into(),
                        systems: vec![RedfishSystem {
                            id: "1".into(),
                            ..RedfishSystem::default()
                        }],
                        note: None,
                    },
                    Found::Ssh {
                        port: 22,
                        banner: "SSH-2.0-x".into(),
                    },
                ],
            ),
            report(
                "10.0.0.4",
                vec![Found::Snmp {
                    port: 161,
                    community: 1,
                    v3_user: None,
                    sys_descr: String::new(),
                    sys_object_id: String::new(),
                    profile: Some("apc".into()),
                    outlets: vec!["spare".into(), "WEB03".into()],
                }],
            ),
        ];
        let creds: CredentialsFile = toml::from_str(
            "[[credentials]]\nmatch = \"10.0.0.*\"\nuser = \"root\"\npassword = \"pw\"\n\
             communities = [\"a\", \"b\"]\n",
        )
        .unwrap();
        let p = propose(&reports, &creds, &store).unwrap();
        let by_name = |n: &str| p.devices.iter().find(|d| d.name == n).unwrap();
        assert_eq!(by_name("bmc-10-0-0-2").url, "ipmi://root@10.0.0.2");
        assert_eq!(
            by_name("bmc-10-0-0-2").settings.power,
            ["ipmi://root@10.0.0.2"]
        );
        let ssh = by_name("ssh-10-0-0-3");
        assert_eq!(ssh.url, "ssh://root@10.0.0.3");
        assert!(ssh.settings.trust_host_key);
        assert_eq!(
            ssh.settings.power,
            ["redfish://root@10.0.0.3:443/Systems/1?fingerprint=ABCD"]
        );
        assert_eq!(by_name("web03").settings.power, ["snmp://10.0.0.4/apc/2"]);
        assert!(
            p.secrets
                .iter()
                .any(|(d, k, v)| d == "web03" && *k == SecretKind::SnmpAuth && v.expose() == "b")
        );
        assert!(p.notes.iter().any(|n| n.contains("1 spare")));

        // Once stored, the same findings change nothing (the same address keeps its name).
        let site = site_of(&p, &store, None).unwrap();
        let mut site = site;
        site.secrets.clear();
        let plan = mo_store::config::plan(&site, &store, &Default::default()).unwrap();
        mo_store::config::apply(&plan, &store).unwrap();
        let mut renamed = store.get_device("bmc-10-0-0-2").unwrap().unwrap();
        store.remove_device("bmc-10-0-0-2").unwrap();
        renamed.name = "rack1-bmc".into();
        store.add_device(&renamed).unwrap();
        let again = propose(&reports, &creds, &store).unwrap();
        assert!(again.devices.iter().any(|d| d.name == "rack1-bmc"));
        let mut site = site_of(&again, &store, None).unwrap();
        site.secrets.clear();
        let plan = mo_store::config::plan(&site, &store, &Default::default()).unwrap();
        assert!(plan.is_empty(), "{plan}");
    }

    #[test]
    fn credentials_files_are_checked() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("c.toml");
        std::fs::write(&path, "[[credentials]]\nmatch = \"10.0.0.0/33\"\n").unwrap();
        let e = CredentialsFile::read(&path).unwrap_err().to_string();
        assert!(e.contains("entry 1") && e.contains("10.0.0.0/33"), "{e}");
        std::fs::write(
            &path,
            "[[credentials]]\nmatch = \"10.0.0.0/30\"\nuser = \"a\"\n",
        )
        .unwrap();
        let c = CredentialsFile::read(&path).unwrap();
        assert!(c.for_address("10.0.0.3".parse().unwrap()).is_some());
        assert!(c.for_address("10.0.0.4".parse().unwrap()).is_none());
        std::fs::write(&path, "[[credentials]]\nmatch = \"x\"\npasword = \"a\"\n").unwrap();
        assert!(CredentialsFile::read(&path).is_err());
    }
}
