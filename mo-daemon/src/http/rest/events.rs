//! Events: list, acknowledge and raise (the live stream is a WebSocket, `super::super::ws`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use mo_api::{
    EventId, EventsQuery, MAX_RAISE_CONTEXT_LINES, MAX_RAISE_MESSAGE_CHARS, RaiseEvent, RaiseSource,
};
use mo_core::event::{Candidate, EventSource};
use mo_core::policy::Permission;
use mo_store::EventFilter;

use super::super::AppState;
use super::super::auth::Caller;
use super::super::error::ApiError;
use super::{JsonBody, PathArgs, QueryArgs, api_event, blocking, within};

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

/// Whether `text` holds a control character (events are one line each).
fn has_control(text: &str) -> bool {
    text.chars()
        .any(|c| matches!(c, '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}'))
}

/// Raise an event from outside (needs `events.raise` on its device): it goes through the same
/// rules as the events mo raises itself (dedup, rate limits, maintenance windows, actions).
/// Answered once the event manager has it; the event is stored a moment later.
#[utoipa::path(post, path = "/api/v1/events", operation_id = "raiseEvent", tag = "events",
    request_body = RaiseEvent,
    responses(
        (status = 202, description = "Accepted: the event manager has it.", body = RaiseEvent),
        (status = 503, description = "The event manager is behind (code unavailable).", body = mo_api::ErrorBody),
    ))]
pub async fn raise_event(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<RaiseEvent>,
) -> Result<(StatusCode, Json<RaiseEvent>), ApiError> {
    mo_store::validate_device_name(&body.device)?;
    let chars = body.message.chars().count();
    if !(1..=MAX_RAISE_MESSAGE_CHARS).contains(&chars) {
        return Err(ApiError::bad_request(format!(
            "bad `message`: 1 to {MAX_RAISE_MESSAGE_CHARS} characters (got {chars})"
        )));
    }
    if has_control(&body.message) {
        return Err(ApiError::bad_request(
            "bad `message`: one line without control characters",
        ));
    }
    if body.context.len() > MAX_RAISE_CONTEXT_LINES {
        return Err(ApiError::bad_request(format!(
            "bad `context`: at most {MAX_RAISE_CONTEXT_LINES} lines (got {})",
            body.context.len()
        )));
    }
    caller
        .check(&state, Permission::EventsRaise, &body.device)
        .await?;
    let severity = body
        .severity
        .name()
        .parse()
        .map_err(|e: mo_core::Error| ApiError::bad_request(e.to_string()))?;
    let source = match body.source {
        RaiseSource::External => EventSource::External,
        _ => EventSource::Manual,
    };
    let mut candidate = Candidate::new(body.device.clone(), source, severity, body.message.clone());
    // Context lines are kept as one line each, cut at the message's length.
    candidate.context = body
        .context
        .iter()
        .map(|l| {
            l.chars()
                .take(MAX_RAISE_MESSAGE_CHARS)
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect()
        })
        .collect();
    if !state.ctx.events.raise(candidate) {
        return Err(ApiError::new(
            super::super::error::Code::Unavailable,
            "the event manager is behind: the event was not taken; try again",
        ));
    }
    Ok((StatusCode::ACCEPTED, Json(body)))
}
