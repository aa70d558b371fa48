//! `POST /api/v1/discover`: `mo discover` run by the daemon, from its host. The probes and the
//! plan are mo-drivers' and mo-discover's, shared with `mo discover`, so both answer alike.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use mo_api::{DiscoverReport, DiscoverRequest, DiscoveredHost, MAX_DISCOVER_ADDRESSES};
use mo_core::policy::Permission;
use mo_core::secret::Secret;
use mo_drivers::discover::{self, ProbeOptions};
use mo_store::Outcome;
use mo_store::config::{self, PlanOptions};

use super::super::AppState;
use super::super::auth::Caller;
use super::super::error::ApiError;
use super::JsonBody;

use mo_discover::{CredentialEntry, CredentialsFile};

/// The longest timeout per answer a request may ask for.
const MAX_TIMEOUT: Duration = Duration::from_secs(60);

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(message)
}

/// The request's credentials as a credentials file's entries, checked as `mo discover` checks
/// the file.
fn credentials(body: &DiscoverRequest) -> Result<CredentialsFile, ApiError> {
    let mut file = CredentialsFile::default();
    for (i, c) in body.credentials.iter().enumerate() {
        let mut entry = CredentialEntry {
            pattern: c.pattern.clone(),
            user: c.user.clone(),
            password: c.password.clone(),
            bmc_key: c.bmc_key.clone(),
            communities: c.communities.clone(),
            snmp_user: c.snmp_user.clone(),
            snmp_auth: c.snmp_auth.clone(),
            snmp_privacy: c.snmp_privacy.clone(),
            addresses: Default::default(),
        };
        if entry.pattern.trim().is_empty() {
            return Err(bad(format!("credentials entry {}: empty `match`", i + 1)));
        }
        if !entry.pattern.contains(['*', '?']) {
            entry.addresses = discover::parse_targets(std::slice::from_ref(&entry.pattern))
                .map_err(|e| bad(format!("credentials entry {}: {e}", i + 1)))?
                .into_iter()
                .collect();
        }
        file.credentials.push(entry);
    }
    Ok(file)
}

/// Probe the addresses given from the daemon's host and return the plan `mo discover` prints;
/// with `apply`, add it in one transaction (needs `admin` on the built-in group `all`: the
/// probes reach the daemon's networks).
#[utoipa::path(post, path = "/api/v1/discover", operation_id = "discover", tag = "devices",
    request_body = DiscoverRequest,
    responses(
        (status = 200, description = "What answered, the addresses that did not, and the plan (applied when asked).", body = DiscoverReport),
        (status = 400, description = "Bad request (code bad_request): a target that is not an address, CIDR range or FIRST-LAST, more than 4096 addresses, a bad port list, timeout or parallel.", body = mo_api::ErrorBody),
        (status = 403, description = "Denied (code forbidden): only `admin` on the built-in group `all` may discover.", body = mo_api::ErrorBody),
    ))]
pub async fn discover(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<DiscoverRequest>,
) -> Result<Json<DiscoverReport>, ApiError> {
    caller.check_global(&state, Permission::Admin).await?;
    if body.targets.is_empty() {
        return Err(bad("targets: give at least one address or range"));
    }
    let addresses = discover::parse_targets(&body.targets).map_err(|e| bad(e.to_string()))?;
    if addresses.len() > MAX_DISCOVER_ADDRESSES {
        return Err(bad(format!(
            "targets: {} addresses; at most {MAX_DISCOVER_ADDRESSES} per request (split the range)",
            addresses.len()
        )));
    }
    let ports = discover::parse_ports(body.ports.as_deref().unwrap_or(discover::DEFAULT_PORTS))
        .map_err(|e| bad(format!("ports: {e}")))?;
    let timeout = match &body.timeout {
        None => discover::DEFAULT_TIMEOUT,
        Some(t) => mo_core::automation::macros::parse_duration(t)
            .ok()
            .filter(|d| !d.is_zero() && *d <= MAX_TIMEOUT)
            .ok_or_else(|| bad(format!("timeout: `{t}` is not a duration from 1ms to 60s")))?,
    };
    let parallel = match body.parallel {
        None => discover::DEFAULT_PARALLEL,
        Some(n @ 1..=1024) => n as usize,
        Some(n) => return Err(bad(format!("parallel: {n} is not from 1 to 1024"))),
    };
    let credentials = credentials(&body)?;
    let options_for = |addr| {
        let cred = credentials.for_address(addr);
        ProbeOptions {
            ports: ports.clone(),
            timeout,
            communities: cred
                .map(|c| {
                    c.communities
                        .iter()
                        .map(|s| Secret::new(s.clone()))
                        .collect()
                })
                .unwrap_or_default(),
            http_login: cred.and_then(|c| {
                Some((
                    c.user.clone()?,
                    Secret::new(c.password.clone().unwrap_or_default()),
                ))
            }),
            snmp_users: cred.and_then(|c| c.snmp_v3()).into_iter().collect(),
        }
    };
    let reports = discover::discover(&addresses, parallel, options_for).await;
    let answered: std::collections::HashSet<_> = reports.iter().map(|r| r.address).collect();
    let silent: Vec<String> = addresses
        .iter()
        .filter(|a| !answered.contains(a))
        .map(|a| a.to_string())
        .collect();
    let hosts: Vec<DiscoveredHost> = reports
        .iter()
        .map(|r| DiscoveredHost {
            address: r.address.to_string(),
            found: r
                .found
                .iter()
                .filter_map(|f| serde_json::to_value(f).ok())
                .collect(),
        })
        .collect();

    let apply = body.apply;
    let store = state.ctx.store.clone();
    let data = state.data.clone();
    let planned = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let proposal = mo_discover::propose(&reports, &credentials, &store)?;
        let key = if proposal.secrets.is_empty() {
            None
        } else {
            Some(data.secret_key()?)
        };
        let site = mo_discover::site_of(&proposal, &store, key.as_ref())?;
        let mut plan = config::plan(&site, &store, &PlanOptions { prune: false })?;
        plan.not_in_file.clear();
        let text = plan.to_string();
        let applied = apply && !plan.is_empty();
        if applied {
            config::apply_with_key(&plan, &store, key.as_ref())?;
        }
        Ok((text, proposal.notes, applied, plan.adds.len()))
    })
    .await
    .map_err(|e| ApiError::internal(format!("discovery task failed: {e}")))?;
    let (text, notes, applied, added) = match planned {
        Ok(p) => p,
        Err(e) => {
            if apply {
                state.ctx.access.record(
                    &caller.user,
                    &caller.origin,
                    "discover.apply",
                    None,
                    Outcome::Failed,
                    format!("{}: {e:#}", body.targets.join(" ")),
                );
            }
            return Err(ApiError::internal(format!("{e:#}")));
        }
    };
    if applied {
        state.ctx.access.record(
            &caller.user,
            &caller.origin,
            "discover.apply",
            None,
            Outcome::Ok,
            format!("{}: {added} added", body.targets.join(" ")),
        );
        // Start the new consoles now rather than at the next poll of the store.
        let _ = state.ctx.registry.sync_from_store(None).await;
    }
    Ok(Json(DiscoverReport {
        hosts,
        silent,
        plan: text.lines().map(str::to_string).collect(),
        notes,
        applied,
    }))
}
