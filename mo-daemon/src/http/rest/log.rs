//! The record log: show, search, verify.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use mo_api::{DevicePath, LogQuery, SearchHit, SearchQuery, VerifyQuery, VerifyReport};
use mo_core::log::{SearchOptions, ShowOptions};

use super::super::AppState;
use super::super::auth::Caller;
use super::super::error::ApiError;
use super::{PathArgs, QueryArgs, empty_range, hides_input, log_dir, run_log, time_range, within};

/// The rendered record log (text/plain, a timestamp per line).
#[utoipa::path(get, path = "/api/v1/devices/{name}/log", operation_id = "logShow", tag = "log",
    params(DevicePath, LogQuery),
    responses(
        (status = 200, description = "OK.", body = String, content_type = "text/plain"),
        (status = 503, description = "The console, its link or its record log is not available now (code unavailable).", body = mo_api::ErrorBody),
    ))]
pub async fn log_show(
    State(state): State<AppState>,
    caller: Caller,
    PathArgs(name): PathArgs<String>,
    QueryArgs(q): QueryArgs<LogQuery>,
) -> Result<Response, ApiError> {
    within("tail", q.tail, 0, mo_api::MAX_TAIL)?;
    let (since, until) = time_range(q.since.as_deref(), q.until.as_deref())?;
    let dir = log_dir(&state, &caller, &name).await?;
    let opts = ShowOptions {
        since,
        until,
        hide_input: hides_input(&state, &caller, &name),
        tail: q.tail.map(|t| usize::try_from(t).unwrap_or(usize::MAX)),
        ..ShowOptions::default()
    };
    let text = if empty_range(since, until) || !dir.is_dir() {
        Vec::new()
    } else {
        run_log(move || {
            let mut out = Vec::new();
            mo_core::log::show(&dir, &opts, &mut out)?;
            Ok(out)
        })
        .await?
    };
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

/// Search the log: matching lines as `[{"time","line","user"?}]`.
#[utoipa::path(get, path = "/api/v1/devices/{name}/log/search", operation_id = "logSearch",
    tag = "log", params(DevicePath, SearchQuery),
    responses(
        (status = 200, description = "OK.", body = Vec<SearchHit>),
        (status = 503, description = "The console, its link or its record log is not available now (code unavailable).", body = mo_api::ErrorBody),
    ))]
pub async fn log_search(
    State(state): State<AppState>,
    caller: Caller,
    PathArgs(name): PathArgs<String>,
    QueryArgs(q): QueryArgs<SearchQuery>,
) -> Result<Json<Vec<SearchHit>>, ApiError> {
    let pattern = q
        .q
        .filter(|p| !p.is_empty())
        .ok_or_else(|| ApiError::bad_request("missing `q` parameter (the regular expression)"))?;
    mo_core::log::compile_pattern(&pattern, false)?;
    within("limit", q.limit, 1, mo_api::MAX_SEARCH_LIMIT)?;
    let (since, until) = time_range(q.since.as_deref(), q.until.as_deref())?;
    let dir = log_dir(&state, &caller, &name).await?;
    let limit = usize::try_from(q.limit.unwrap_or(1000)).unwrap_or(usize::MAX);
    let opts = SearchOptions {
        pattern,
        since,
        until,
        hide_input: hides_input(&state, &caller, &name),
        ..SearchOptions::default()
    };
    let text = if empty_range(since, until) || !dir.is_dir() {
        Vec::new()
    } else {
        run_log(move || {
            let mut out = Vec::new();
            mo_core::log::search(&dir, &opts, &mut out)?;
            Ok(out)
        })
        .await?
    };
    let text = String::from_utf8_lossy(&text);
    let mut hits = Vec::new();
    let mut last_time = String::new();
    for line in text.lines().filter(|l| *l != "--" && !l.is_empty()) {
        if hits.len() == limit {
            break;
        }
        if let Some(hit) = search_hit(line, &mut last_time) {
            hits.push(hit);
        }
    }
    Ok(Json(hits))
}

/// A rendered line `TIMESTAMP text` as a hit: input lines (`<alice> ls`) and notes (`[note bob]
/// …`) name their user. A line without a timestamp of its own (the continuation of a record)
/// takes the previous line's (`last_time`); one before any timestamped line is left out, so
/// `time` is always an RFC 3339 time.
fn search_hit(line: &str, last_time: &mut String) -> Option<SearchHit> {
    let is_time = |t: &str| {
        time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).is_ok()
    };
    let (time, text) = match line.split_once(' ') {
        Some((t, rest)) if is_time(t) => (t, rest),
        None if is_time(line) => (line, ""),
        _ if !last_time.is_empty() => (last_time.as_str(), line),
        _ => return None,
    };
    let time = time.to_string();
    let mut hit = SearchHit::new(time.clone(), text);
    *last_time = time;
    let user = text
        .strip_prefix('<')
        .and_then(|r| r.split_once('>'))
        .map(|(u, _)| u)
        .or_else(|| {
            text.strip_prefix("[note ")
                .and_then(|r| r.split_once(']'))
                .map(|(u, _)| u)
        });
    if let Some(user) = user.filter(|u| !u.is_empty() && !u.contains(' ')) {
        hit.user = Some(user.to_string());
    }
    Some(hit)
}

/// Verify the log's checksums and hash chain; with `replicas=true`, also compare it with every
/// node's copy (`mod --cluster … --share-devices`).
#[utoipa::path(post, path = "/api/v1/devices/{name}/log/verify", operation_id = "logVerify",
    tag = "log", params(DevicePath, VerifyQuery),
    responses(
        (status = 200, description = "OK.", body = VerifyReport),
        (status = 409, description = "`replicas=true` on a daemon that does not replicate logs (not in a site, or without --share-devices), or that cannot reach NATS now (code conflict).", body = mo_api::ErrorBody),
        (status = 503, description = "The console, its link or its record log is not available now (code unavailable).", body = mo_api::ErrorBody),
    ))]
pub async fn log_verify(
    State(state): State<AppState>,
    caller: Caller,
    PathArgs(name): PathArgs<String>,
    QueryArgs(q): QueryArgs<VerifyQuery>,
) -> Result<Json<VerifyReport>, ApiError> {
    let dir = log_dir(&state, &caller, &name).await?;
    if q.replicas == Some(true) {
        let Some(cluster) = &state.ctx.cluster else {
            return Err(ApiError::new(
                crate::http::error::Code::Conflict,
                "this daemon is not in a cluster: there are no replicas to compare \
                 (mod --cluster … --share-devices)",
            ));
        };
        let (problems, mut warnings, logs) = cluster
            .verify_replicas(&name)
            .await
            .map_err(|e| ApiError::new(crate::http::error::Code::Conflict, format!("{e:#}")))?;
        let here = logs.first();
        let nodes: Vec<String> = logs
            .iter()
            .filter(|l| l.present)
            .map(|l| {
                let role = match (l.owner, l.replica) {
                    (true, _) => " (owner)",
                    (false, true) => " (replica)",
                    (false, false) => " (old copy)",
                };
                format!("{}{role}: {} records", l.node, l.records)
            })
            .collect();
        warnings.insert(0, format!("copies compared: {}", nodes.join(", ")));
        return Ok(Json(VerifyReport {
            ok: problems.is_empty(),
            records: here.map_or(0, |l| l.records),
            segments: here.map_or(0, |l| l.ends.len() as u64),
            problems,
            warnings,
        }));
    }
    if !dir.is_dir() {
        return Ok(Json(VerifyReport {
            ok: true,
            warnings: vec!["no record log yet: the console has not started".into()],
            ..VerifyReport::default()
        }));
    }
    let report = run_log(move || Ok(mo_core::log::verify(&dir)?)).await?;
    let mut problems: Vec<String> = report.problem.iter().map(|p| p.to_string()).collect();
    if report.problems > 1 {
        problems.push(format!("({} problems in all)", report.problems));
    }
    let mut warnings: Vec<String> = report
        .torn_tail
        .iter()
        .map(|t| format!("torn final record: {t}"))
        .collect();
    warnings.extend(report.notes.iter().cloned());
    Ok(Json(VerifyReport {
        ok: report.is_ok(),
        records: report.records,
        segments: report.segments,
        problems,
        warnings,
    }))
}
