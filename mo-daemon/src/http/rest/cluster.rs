//! `GET /api/v1/cluster`.

use axum::Json;
use axum::extract::State;
use mo_api::ClusterStatus;
use mo_core::policy::Permission;

use super::super::AppState;
use super::super::auth::Caller;

/// The nodes of the site (`mod --cluster`) as this daemon heard them: each with its version, its
/// consoles and their link state, when it was last heard and whether it is `up`, `lost` (not
/// heard for `lost_after` of its heartbeat intervals) or `left`. Consoles are those the caller
/// may list. A daemon that is not in a cluster answers `enabled: false`.
#[utoipa::path(get, path = "/api/v1/cluster", operation_id = "cluster", tag = "cluster",
    responses((status = 200, description = "OK.", body = ClusterStatus)))]
pub async fn cluster(State(state): State<AppState>, caller: Caller) -> Json<ClusterStatus> {
    let Some(cluster) = &state.ctx.cluster else {
        return Json(ClusterStatus::disabled());
    };
    let may_list = caller.scope_permits(Permission::List);
    let policy = state.ctx.access.policy();
    let visible = |name: &str| may_list && policy.allows(&caller.user, Permission::List, name);
    Json(cluster.status(&visible))
}
