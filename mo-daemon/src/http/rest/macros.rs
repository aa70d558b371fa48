//! Stored macros: list and play.

use axum::Json;
use axum::extract::State;
use mo_api::{MacroPath, MacroPlan, MacroResult, MacroResults, PlayReport, PlayRequest};
use mo_core::policy::Permission;
use mo_store::Outcome;

use super::super::AppState;
use super::super::auth::Caller;
use super::super::error::{ApiError, Code};
use super::gang::consoles_for;
use super::{JsonBody, PathArgs};

/// The names of the stored macros (needs `macro.run` on some device, within the token's
/// scope).
#[utoipa::path(get, path = "/api/v1/macros", operation_id = "macros", tag = "automation",
    responses(
        (status = 200, description = "OK.", body = Vec<String>,
            links(("macroPlay" = (operation_id = "macroPlay", parameters(("name" = "$response.body#/0")))))),
        (status = 403, description = "Denied (code forbidden): the caller may run macros on no device, or on not every target.", body = mo_api::ErrorBody),
    ))]
pub async fn macros(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<String>>, ApiError> {
    check_macro_access(&state, &caller)?;
    Ok(Json(crate::automation::list_names(&state.ctx)))
}

/// Macros are seen (listed, shown, played) only by callers who may run macros on some device;
/// a refusal is audited.
fn check_macro_access(state: &AppState, caller: &Caller) -> Result<(), ApiError> {
    crate::automation::check_access(&state.ctx, &caller.user, &caller.origin)
        .map_err(ApiError::forbidden)?;
    if !caller.scope_permits(Permission::MacroRun) {
        return Err(ApiError::forbidden(format!(
            "denied: the API token's scope ({}) does not include macro.run",
            caller.scope.map(|s| s.to_string()).unwrap_or_default()
        )));
    }
    Ok(())
}

/// Play a stored macro on devices (macro.run on each), or show its plan with dry_run.
#[utoipa::path(post, path = "/api/v1/macros/{name}/play", operation_id = "macroPlay",
    tag = "automation", params(MacroPath), request_body = PlayRequest,
    responses(
        (status = 200, description = "OK.", body = PlayReport),
        (status = 403, description = "Denied (code forbidden): the caller may run macros on no device, or on not every target.", body = mo_api::ErrorBody),
        (status = 503, description = "The console, its link or its record log is not available now (code unavailable).", body = mo_api::ErrorBody),
        (status = 504, description = "A device or power controller did not answer in time (code timeout).", body = mo_api::ErrorBody),
    ))]
pub async fn macro_play(
    State(state): State<AppState>,
    caller: Caller,
    PathArgs(name): PathArgs<String>,
    JsonBody(body): JsonBody<PlayRequest>,
) -> Result<Json<PlayReport>, ApiError> {
    use mo_core::automation::macros::{OnFailure, PlayOptions, dry_run};
    check_macro_access(&state, &caller)?;
    let macro_ = crate::automation::load(&state.ctx, &name).map_err(|e| {
        if e.starts_with("no macro") {
            ApiError::new(Code::NotFound, e)
        } else {
            ApiError::bad_request(e)
        }
    })?;
    let parallel = body.parallel.unwrap_or(16);
    if !(1..=1000).contains(&parallel) {
        return Err(ApiError::bad_request(format!(
            "bad parallel {parallel}: give 1 to 1000"
        )));
    }
    let consoles = consoles_for(&state, &caller, &body.targets, Permission::MacroRun).await?;
    let pairs: Vec<(&str, &str)> = body
        .args
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let plan = macro_
        .bind(&pairs)
        .map_err(|e| ApiError::bad_request(format!("{name}: {e}")))?;
    if body.dry_run {
        return Ok(Json(PlayReport::Plan(MacroPlan {
            devices: consoles.iter().map(|c| c.name().to_string()).collect(),
            plan: dry_run(&name, &plan),
            name,
        })));
    }
    let opts = PlayOptions {
        name: name.clone(),
        notes: true,
        parallel,
        on_failure: if body.keep_going {
            OnFailure::Continue
        } else {
            OnFailure::StopAll
        },
        origin: format!("macro {name} ({})", caller.origin),
    };
    let args: Vec<(String, String)> = body.args.into_iter().collect();
    let reports =
        crate::automation::play(&caller.user, &consoles, &macro_, &args, &opts, None).await;
    for r in &reports {
        state.ctx.access.record(
            &caller.user,
            &caller.origin,
            "macro.run",
            Some(&r.device),
            if r.ok() { Outcome::Ok } else { Outcome::Failed },
            crate::automation::result_line(r),
        );
    }
    Ok(Json(PlayReport::Played(MacroResults {
        ok: reports.iter().all(|r| r.ok()),
        results: reports
            .iter()
            .map(|r| MacroResult {
                device: r.device.clone(),
                ok: r.ok(),
                result: crate::automation::result_line(r),
            })
            .collect(),
        name,
    })))
}
