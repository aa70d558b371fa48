//! Host info: `GET /api/v1/hosts/{name}/{what}` — the daemon's own host (`mod`) or a connected
//! agent's, as one table ([`mo_drivers::host`]).

use axum::Json;
use axum::extract::State;
use mo_api::{DAEMON_HOST, HostInfo, HostPath};
use mo_core::policy::Permission;
use mo_drivers::host::{self, HostWhat};

use super::super::AppState;
use super::super::auth::Caller;
use super::super::error::{ApiError, Code};
use super::PathArgs;
use crate::agents::HostError;

/// A host's CPUs, memory, file systems or processes (needs `host.show` on the group `all`):
/// `mod` is the daemon's own host, any other name a connected agent's.
#[utoipa::path(get, path = "/api/v1/hosts/{name}/{what}", operation_id = "hostInfo",
    tag = "hosts", params(HostPath),
    responses(
        (status = 200, description = "OK.", body = HostInfo),
        (status = 404, description = "No such host: neither `mod` nor an agent (code not_found).", body = mo_api::ErrorBody),
        (status = 422, description = "The agent is too old to answer host info (code unsupported).", body = mo_api::ErrorBody),
        (status = 503, description = "The agent is not connected, or answered with an error (code unavailable).", body = mo_api::ErrorBody),
        (status = 504, description = "The agent did not answer in time (code timeout).", body = mo_api::ErrorBody),
    ))]
pub async fn host_info(
    State(state): State<AppState>,
    caller: Caller,
    PathArgs(HostPath { name, what }): PathArgs<HostPath>,
) -> Result<Json<HostInfo>, ApiError> {
    caller.check_global(&state, Permission::HostShow).await?;
    // The API's names are the library's.
    let kind: HostWhat = what
        .name()
        .parse()
        .map_err(|e: host::UnknownWhat| ApiError::bad_request(e.to_string()))?;
    let table = if name == DAEMON_HOST {
        tokio::task::spawn_blocking(move || host::collect(kind))
            .await
            .map_err(|e| ApiError::internal(format!("reading this host's {kind}: {e}")))?
    } else {
        let store = state.ctx.store.clone();
        let n = name.clone();
        match tokio::task::spawn_blocking(move || store.agent(&n)).await {
            Ok(Ok(_)) => {}
            Ok(Err(mo_store::Error::UnknownName { .. })) => {
                return Err(ApiError::not_found(format!(
                    "no host `{name}`: give `{DAEMON_HOST}` (the daemon's host) or an agent's name"
                )));
            }
            Ok(Err(e)) => return Err(ApiError::from(e)),
            Err(e) => return Err(ApiError::internal(format!("store task failed: {e}"))),
        }
        state
            .ctx
            .registry
            .agents()
            .host_info(&name, kind)
            .await
            .map_err(|e| {
                let code = match e {
                    HostError::Unsupported(_) => Code::Unsupported,
                    HostError::NoAnswer(_) => Code::Timeout,
                    HostError::NotConnected(_) | HostError::Failed(..) => Code::Unavailable,
                };
                ApiError::new(code, e.to_string())
            })?
    };
    Ok(Json(HostInfo {
        host: name,
        what,
        columns: table.columns,
        rows: table.rows,
    }))
}
