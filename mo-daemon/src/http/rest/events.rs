//! Events: list and acknowledge (the live stream is a WebSocket, `super::super::ws`).

use axum::Json;
use axum::extract::State;
use mo_api::{EventId, EventsQuery};
use mo_core::policy::Permission;
use mo_store::EventFilter;

use super::super::AppState;
use super::super::auth::Caller;
use super::super::error::ApiError;
use super::{PathArgs, QueryArgs, api_event, blocking, within};

/// Stored events (of devices the caller may see), the newest, oldest first.
#[utoipa::path(get, path = "/api/v1/events", operation_id = "listEvents", tag = "events",
    params(EventsQuery),
    responses((status = 200, description = "OK.", body = Vec<mo_api::Event>,
        links(("ackEvent" = (operation_id = "ackEvent", parameters(("id" = "$response.body#/0/id"))))))))]
pub async fn events(
    State(state): State<AppState>,
    caller: Caller,
    QueryArgs(q): QueryArgs<EventsQuery>,
) -> Result<Json<Vec<mo_api::Event>>, ApiError> {
    within("limit", q.limit, 1, mo_api::MAX_EVENTS_LIMIT)?;
    if let Some(device) = &q.device {
        mo_store::validate_device_name(device)?;
        if !caller.sees(&state, device) {
            return Err(ApiError::unknown_device(device));
        }
    }
    let filter = EventFilter {
        device: q.device.clone(),
        unacked: q.unacked.unwrap_or(false),
        limit: Some(usize::try_from(q.limit.unwrap_or(100)).unwrap_or(usize::MAX)),
        ..EventFilter::default()
    };
    let found = blocking(&state, move |s| s.query_events(&filter)).await?;
    Ok(Json(
        found
            .iter()
            .filter(|e| caller.sees(&state, &e.device))
            .map(api_event)
            .collect(),
    ))
}

/// Acknowledge an event (needs `events.ack` on its device).
#[utoipa::path(post, path = "/api/v1/events/{id}/ack", operation_id = "ackEvent", tag = "events",
    params(EventId),
    responses((status = 200, description = "OK.", body = mo_api::Event)))]
pub async fn ack_event(
    State(state): State<AppState>,
    caller: Caller,
    PathArgs(id): PathArgs<String>,
) -> Result<Json<mo_api::Event>, ApiError> {
    let id: u64 = id
        .trim_start_matches('#')
        .parse()
        .map_err(|_| ApiError::bad_request(format!("bad event id `{id}`: give a number")))?;
    let missing = || ApiError::not_found(format!("no event #{id}"));
    let event = blocking(&state, move |s| s.event(id))
        .await?
        .ok_or_else(missing)?;
    if !caller.sees(&state, &event.device) {
        return Err(missing());
    }
    caller
        .check(&state, Permission::EventsAck, &event.device)
        .await?;
    let events = state.ctx.events.clone();
    let user = caller.user.clone();
    tokio::task::spawn_blocking(move || events.ack(id, &user))
        .await
        .map_err(|e| ApiError::internal(format!("ack task failed: {e}")))??;
    let event = blocking(&state, move |s| s.event(id))
        .await?
        .ok_or_else(missing)?;
    Ok(Json(api_event(&event)))
}
