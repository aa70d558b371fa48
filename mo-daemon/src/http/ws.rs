//! WebSocket endpoints: console attach (binary frames carry console bytes both ways, text frames
//! carry JSON control messages and notices) and the live event stream.
//!
//! A client that stops reading never stalls the console: frames go through a small queue to a
//! writer task, the bridge pulls from the console only when the queue has room (so a slow client
//! falls behind in the console's hub and is told what it missed, like an SSH viewer), and a
//! socket whose sends stay blocked for [`SEND_STALL`] is dropped.

use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use mo_api::{AttachQuery, LinkStateName, ServerFrame, StreamQuery};
use mo_core::console::{LinkState, Mode, Output, ViewerEvent, ViewerRole, admit, view};
use mo_core::door::ws::Control;
use mo_core::link::Signal;
use mo_core::policy::Permission;
use mo_store::Outcome;
use serde::Serialize;
use tokio::sync::mpsc;

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, Code};
use super::rest::{PathArgs, QueryArgs, api_event, api_role, api_viewer, visible_entry};
use crate::live::Verdict;
use crate::viewer::AnySession;

/// Frames queued for one client before the bridge stops pulling from the console.
const OUT_QUEUE: usize = 64;
/// Longest WebSocket message (and frame) a client may send: keystrokes and control messages are
/// small; anything larger closes the socket with code 1009 and says why (docs/api.md).
pub const WS_MAX_MESSAGE: usize = 1024 * 1024;
/// A client whose socket accepts nothing for this long is dropped.
pub const SEND_STALL: Duration = Duration::from_secs(30);
/// How often the event stream looks for new events.
const EVENT_POLL: Duration = Duration::from_millis(250);

fn upgrade(
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<WebSocketUpgrade, ApiError> {
    ws.map(|ws| {
        ws.max_message_size(WS_MAX_MESSAGE)
            .max_frame_size(WS_MAX_MESSAGE)
    })
    .map_err(|e| {
        ApiError::new(
            Code::UpgradeRequired,
            format!(
                "this endpoint speaks WebSocket only (send the WebSocket upgrade): {}",
                e.body_text()
            ),
        )
    })
}

/// A text frame of one of the API's JSON objects ([`ServerFrame`], an event).
fn text<T: Serialize>(v: &T) -> Message {
    let json = serde_json::to_string(v).unwrap_or_else(|e| {
        format!(r#"{{"type":"error","code":"internal","message":"cannot write a frame: {e}"}}"#)
    });
    Message::Text(Utf8Bytes::from(json))
}

fn error_frame(e: &ApiError) -> Message {
    text(&ServerFrame::Error {
        code: e.code,
        message: e.message.clone(),
    })
}

fn notice(s: impl Into<String>) -> Message {
    text(&ServerFrame::notice(s))
}

/// A notice that the viewer's role is now `role`.
fn role_notice(s: impl Into<String>, role: ViewerRole) -> Message {
    text(&ServerFrame::Notice {
        text: s.into(),
        role: Some(api_role(role)),
    })
}

/// The mode of a query or a `mode` message (`attach` when not given).
fn parse_mode(mode: Option<&str>) -> Result<Mode, ApiError> {
    mode.map_or(Ok(Mode::Attach), |m| m.parse().map_err(ApiError::from))
}

/// `GET /api/v1/devices/{name}/attach?mode=&replay=`: a viewer over WebSocket. Unknown devices
/// and denials are answered before the upgrade, as plain HTTP errors.
pub async fn attach(
    State(state): State<AppState>,
    caller: Caller,
    PathArgs(name): PathArgs<String>,
    QueryArgs(q): QueryArgs<AttachQuery>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    // The parameters first: a bad one is a 400 even without the upgrade.
    mo_store::validate_device_name(&name)?;
    let mode = parse_mode(q.mode.map(|m| m.name()))?;
    if q.replay.is_some_and(|n| n > 100_000) {
        return Err(ApiError::bad_request(
            "bad `replay`: give 0 to 100000 lines",
        ));
    }
    let ws = upgrade(ws)?;
    let entry = visible_entry(&state, &caller, &name)?;
    // Attach falls back to spying for users who may only spy, like the SSH door.
    let checked = caller.check(&state, mode.action(), &name).await;
    let admitted = admit(
        mode,
        checked,
        |e| e.message.clone(),
        || {
            caller.scope_permits(Permission::Spy)
                && state
                    .ctx
                    .access
                    .allows(&caller.user, Permission::Spy, &name)
        },
    )?;
    let (mode, fallback) = (admitted.mode, admitted.notice);
    let replay = q.replay.map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    // A console another node of the site holds is attached through it (crate::viewer).
    let session = match &entry.console {
        Some(console) => AnySession::Local(
            console
                .attach_from(
                    &caller.user,
                    &crate::viewer::local_origin(&state.ctx, &caller.origin),
                    mode,
                    replay,
                )
                .await?,
        ),
        None => crate::viewer::open(
            &state.ctx,
            &entry,
            &caller.user,
            &caller.origin,
            mode,
            replay,
        )
        .await
        .map_err(|why| ApiError::new(Code::Unavailable, why))?,
    };
    Ok(ws
        .on_upgrade(move |socket| async move {
            run_attach(state, caller, name, session, fallback, socket).await;
        })
        .into_response())
}

/// Send frames from `rx` to the socket; gives up on a socket that stays blocked.
async fn writer(
    mut sink: futures_util::stream::SplitSink<WebSocket, Message>,
    mut rx: mpsc::Receiver<Message>,
) {
    while let Some(msg) = rx.recv().await {
        let closing = matches!(msg, Message::Close(_));
        match tokio::time::timeout(SEND_STALL, sink.send(msg)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::debug!("WebSocket send failed: {e}");
                return;
            }
            Err(_) => {
                tracing::info!(
                    "dropping a WebSocket client that read nothing for {}s",
                    SEND_STALL.as_secs()
                );
                return;
            }
        }
        if closing {
            return;
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), sink.close()).await;
}

/// Queue a control frame; false when the client is gone or stalled.
async fn send(out: &mpsc::Sender<Message>, msg: Message) -> bool {
    matches!(
        tokio::time::timeout(SEND_STALL, out.send(msg)).await,
        Ok(Ok(()))
    )
}

/// What the viewer sees ([`mo_core::console::view`]) in the attach protocol's frames: output as
/// binary, the rest as `notice`, `missed` and `closed` text frames (the last followed by a Close
/// frame).
/// The most output bytes [`gather`] puts into one binary message.
const GATHER_MAX: usize = 64 * 1024;

/// `first` plus the output already waiting in the session (without waiting for more), at most
/// [`GATHER_MAX`] bytes in all; and what comes next and must follow the bytes in its own message:
/// a notice, a missed marker, the end, or output that would not fit.
fn gather(
    session: &mut AnySession,
    me: &str,
    device: &str,
    first: Bytes,
) -> (Bytes, Option<Output>) {
    if first.len() >= GATHER_MAX {
        return (first, None);
    }
    let mut data: Option<bytes::BytesMut> = None;
    let mut next = None;
    while data.as_ref().map_or(first.len(), |d| d.len()) < GATHER_MAX {
        let Some(ev) = session.try_recv() else { break };
        match view(ev, me, device) {
            None => {}
            Some(Output::Data(more)) => {
                // No message grows past GATHER_MAX (what one link read may be): the 64 queued
                // messages then hold no more for a stalled client than ungathered ones did.
                let have = data.as_ref().map_or(first.len(), |d| d.len());
                if have + more.len() > GATHER_MAX {
                    next = Some(Output::Data(more));
                    break;
                }
                data.get_or_insert_with(|| bytes::BytesMut::from(&first[..]))
                    .extend_from_slice(&more);
            }
            Some(other) => {
                next = Some(other);
                break;
            }
        }
    }
    (data.map_or(first, bytes::BytesMut::freeze), next)
}

fn frames(seen: Output) -> Vec<Message> {
    match seen {
        Output::Data(bytes) => vec![Message::Binary(bytes)],
        Output::Notice(text) => vec![notice(text)],
        Output::Missed(bytes) => vec![self::text(&ServerFrame::Missed { bytes })],
        Output::Closed(reason) => closed(&reason).into(),
        _ => Vec::new(),
    }
}

fn state_frame(s: &LinkState) -> Option<Message> {
    let state = match s {
        LinkState::Up { .. } => LinkStateName::Up,
        LinkState::Down { .. } => LinkStateName::Down,
        LinkState::Connecting { .. } => LinkStateName::Connecting,
        LinkState::Idle => LinkStateName::Idle,
        _ => return None,
    };
    Some(text(&ServerFrame::State { state }))
}

fn closed(reason: &str) -> [Message; 2] {
    [
        text(&ServerFrame::Closed {
            reason: reason.to_string(),
        }),
        Message::Close(Some(CloseFrame {
            code: close_code::NORMAL,
            reason: Utf8Bytes::from(reason.to_string()),
        })),
    ]
}

async fn run_attach(
    state: AppState,
    caller: Caller,
    device: String,
    mut session: AnySession,
    fallback: Option<String>,
    socket: WebSocket,
) {
    let (sink, mut stream) = socket.split();
    let (out, rx) = mpsc::channel::<Message>(OUT_QUEUE);
    let mut writer = tokio::spawn(writer(sink, rx));
    let access = &state.ctx.access;
    access.record(
        &caller.user,
        &caller.origin,
        "attach",
        Some(&device),
        Outcome::Ok,
        format!("as {} (WebSocket)", session.role()),
    );
    let hello = ServerFrame::Hello {
        device: device.clone(),
        user: caller.user.clone(),
        role: api_role(session.role()),
        message: session.message().to_string(),
    };
    let mut ok = send(&out, text(&hello)).await;
    if let Some(why) = fallback {
        ok = ok && send(&out, notice(why)).await;
    }
    let replay = session.take_replay();
    if !replay.is_empty() {
        ok = ok && send(&out, Message::Binary(replay)).await;
    }
    // A remote console's link changes arrive as notices only: its watch never changes.
    let (_fixed, fixed_rx) = tokio::sync::watch::channel(LinkState::Idle);
    let local_link = session.watch_state();
    let mut link = local_link.clone().unwrap_or(fixed_rx);
    let first = link.borrow_and_update().clone();
    let first = match local_link {
        Some(_) => state_frame(&first),
        // The owner says the state it has now.
        None => {
            let state = match session.link_state().await.as_str() {
                "up" => Some(LinkStateName::Up),
                "down" | "stopped" => Some(LinkStateName::Down),
                "connecting" => Some(LinkStateName::Connecting),
                "idle" => Some(LinkStateName::Idle),
                _ => None,
            };
            state.map(|state| text(&ServerFrame::State { state }))
        }
    };
    if let Some(frame) = first {
        ok = ok && send(&out, frame).await;
    }
    let me = caller.user.clone();
    let mut reason = String::from("client left");
    // Access changes reach open viewers: demoted to spy or disconnected (crate::live).
    let mut live = state.ctx.live.watch(caller.holder());
    while ok {
        tokio::select! {
            snapshot = live.next() => {
                match snapshot.viewer(live.holder(), &device, session.role()) {
                    Verdict::Keep => {}
                    Verdict::Demote(why) => {
                        let _ = session.set_mode(Mode::Spy).await;
                        access.record(&caller.user, &caller.origin, "session.demoted",
                            Some(&device), Outcome::Denied, why.clone());
                        ok = send(&out, role_notice(why, session.role())).await;
                    }
                    Verdict::End(why) => {
                        access.record(&caller.user, &caller.origin, "session.revoked",
                            Some(&device), Outcome::Denied, why.clone());
                        for frame in closed(&why) {
                            let _ = send(&out, frame).await;
                        }
                        reason = why;
                        ok = false;
                    }
                }
            },
            incoming = stream.next() => match incoming {
                Some(Ok(Message::Binary(data))) => {
                    if let Err(e) = keystrokes(&session, &device, &data).await {
                        ok = send(&out, error_frame(&e)).await;
                    }
                }
                Some(Ok(Message::Text(t))) => {
                    for frame in control(&state, &caller, &device, &mut session, t.as_str()).await {
                        ok = ok && send(&out, frame).await;
                    }
                }
                Some(Err(e)) => {
                    reason = bad_message(&out, &e).await;
                    break;
                }
                Some(Ok(Message::Close(_))) | None => break,
                Some(Ok(_)) => {}
            },
            (permit, ev) = async {
                let permit = out.reserve().await.ok();
                (permit, session.recv().await)
            } => {
                let Some(permit) = permit else { break };
                let end = matches!(ev, ViewerEvent::Closed);
                let mut seen = view(ev, &me, &device);
                let mut after = None;
                if let Some(Output::Data(first)) = seen {
                    // Output that is already waiting goes out in the same binary message: a
                    // flooding device then costs a browser one message per burst, not one per
                    // read of the link.
                    let (data, next) = gather(&mut session, &me, &device, first);
                    seen = Some(Output::Data(data));
                    after = next;
                }
                if end {
                    drop(permit);
                    if let Some(Output::Closed(why)) = &seen {
                        reason = why.clone();
                    }
                    for frame in seen.map(frames).unwrap_or_default() {
                        let _ = send(&out, frame).await;
                    }
                    ok = false;
                } else if let Some(frame) = seen.map(frames).and_then(|f| f.into_iter().next()) {
                    permit.send(frame);
                }
                if let Some(next) = after {
                    if let Output::Closed(why) = &next {
                        reason = why.clone();
                        ok = false;
                    }
                    for frame in frames(next) {
                        ok = send(&out, frame).await && ok;
                    }
                }
            },
            changed = link.changed() => {
                if changed.is_err() {
                    continue;
                }
                let now = link.borrow_and_update().clone();
                if let Some(frame) = state_frame(&now) {
                    ok = send(&out, frame).await;
                }
            },
            _ = &mut writer => {
                reason = "client stopped reading".into();
                break;
            }
        }
    }
    drop(session);
    drop(out);
    access.record(
        &caller.user,
        &caller.origin,
        "detach",
        Some(&device),
        Outcome::Ok,
        reason,
    );
}

/// Tell a client why its message broke the connection (too large, not WebSocket), then close.
async fn bad_message(out: &mpsc::Sender<Message>, e: &axum::Error) -> String {
    let text_of = e.to_string();
    let (code, reason) = if text_of.contains("too long") || text_of.contains("too big") {
        (
            close_code::SIZE,
            format!(
                "message larger than {WS_MAX_MESSAGE} bytes, the limit for one WebSocket message"
            ),
        )
    } else {
        (
            close_code::PROTOCOL,
            format!("bad WebSocket data: {text_of}"),
        )
    };
    let _ = send(out, error_frame(&ApiError::bad_request(reason.clone()))).await;
    let _ = send(
        out,
        Message::Close(Some(CloseFrame {
            code,
            reason: Utf8Bytes::from(reason.clone()),
        })),
    )
    .await;
    reason
}

async fn keystrokes(session: &AnySession, device: &str, data: &Bytes) -> Result<(), ApiError> {
    if !session.role().can_write() {
        return Err(ApiError::forbidden(format!(
            "you are spying on {device}: keystrokes need read-write (send {{\"type\":\"mode\",\"mode\":\"attach\"}} or force)"
        )));
    }
    session.write(data).await.map_err(ApiError::from)
}

/// Answer one control message with the frames to send back.
async fn control(
    state: &AppState,
    caller: &Caller,
    device: &str,
    session: &mut AnySession,
    raw: &str,
) -> Vec<Message> {
    let msg = match Control::parse(raw) {
        Ok(m) => m,
        Err(e) => return vec![error_frame(&ApiError::bad_request(e.reason))],
    };
    let result: Result<Vec<Message>, ApiError> = async {
        match msg {
            Control::Break { number } => {
                caller.check(state, Permission::Break, device).await?;
                // 0 is the plain BREAK: break sequence 1 (`\z`) unless the device redefined it.
                Ok(vec![notice(session.send_break(number).await?)])
            }
            Control::Signal { dtr, rts } => {
                let lines = [(Signal::Dtr, dtr), (Signal::Rts, rts)];
                if lines.iter().all(|(_, set)| set.is_none()) {
                    return Err(ApiError::bad_request(
                        "a signal message needs `dtr` or `rts` (true, false, \"on\", \"off\" or \"toggle\")",
                    ));
                }
                caller.check(state, Permission::Break, device).await?;
                // Each change comes back through the timeline (`DTR dropped by alice`).
                for (line, set) in lines {
                    if let Some(set) = set {
                        session.set_signal(line, set.to()).await?;
                    }
                }
                Ok(Vec::new())
            }
            Control::Resize { cols, rows } => {
                session.window_size(cols, rows).await?;
                Ok(Vec::new())
            }
            Control::Who => {
                let who = session.who().await?;
                let viewers = who.iter().map(api_viewer).collect();
                Ok(vec![text(&ServerFrame::Who { viewers })])
            }
            Control::Mode { mode } => {
                let mode = parse_mode(Some(&mode))?;
                caller.check(state, mode.action(), device).await?;
                let message = session.set_mode(mode).await?;
                Ok(vec![role_notice(message, session.role())])
            }
            Control::Note { text: note } => {
                caller.check(state, Permission::LogNote, device).await?;
                if note.trim().is_empty() {
                    return Err(ApiError::bad_request("the note is empty"));
                }
                // The note comes back through the timeline as `note written (record SEQ)`.
                session.note(&note).await?;
                Ok(Vec::new())
            }
            Control::Replay { lines } => {
                let lines = lines.min(100_000);
                let bytes = session.replay(lines).await?;
                Ok(vec![
                    notice(format!("replay of the last {lines} lines of {device}")),
                    Message::Binary(bytes),
                    notice("end of replay"),
                ])
            }
        }
    }
    .await;
    result.unwrap_or_else(|e| vec![error_frame(&e)])
}

/// `GET /api/v1/events/stream`: one JSON event per text frame as they are stored (events of
/// devices the caller may see; `?device=` for one).
pub async fn event_stream(
    State(state): State<AppState>,
    caller: Caller,
    QueryArgs(q): QueryArgs<StreamQuery>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    if let Some(device) = &q.device {
        mo_store::validate_device_name(device)?;
    }
    let ws = upgrade(ws)?;
    if let Some(device) = &q.device
        && !caller.sees(&state, device)
    {
        return Err(ApiError::unknown_device(device));
    }
    let next = super::rest::blocking(&state, |s| s.next_event_id()).await?;
    Ok(ws
        .on_upgrade(move |socket| async move {
            stream_events(state, caller, q.device, next.saturating_sub(1), socket).await;
        })
        .into_response())
}

async fn stream_events(
    state: AppState,
    caller: Caller,
    device: Option<String>,
    mut after: u64,
    socket: WebSocket,
) {
    let (mut sink, mut stream) = socket.split();
    let mut tick = tokio::time::interval(EVENT_POLL);
    let mut live = state.ctx.live.watch(caller.holder());
    loop {
        tokio::select! {
            why = live.revoked() => {
                state.ctx.access.record(&caller.user, &caller.origin, "session.revoked",
                    device.as_deref(), Outcome::Denied, format!("event stream closed: {why}"));
                for frame in closed(&why) {
                    let sent = tokio::time::timeout(SEND_STALL, sink.send(frame)).await;
                    if !matches!(sent, Ok(Ok(()))) {
                        break;
                    }
                }
                return;
            },
            incoming = stream.next() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
            _ = tick.tick() => {
                let from = after;
                let found = super::rest::blocking(&state, move |s| s.events_after(from, 500)).await;
                let events = match found {
                    Ok(events) => events,
                    Err(e) => {
                        let _ = sink.send(error_frame(&e)).await;
                        return;
                    }
                };
                for e in events {
                    after = after.max(e.id);
                    if device.as_deref().is_some_and(|d| d != e.device)
                        || !caller.sees(&state, &e.device)
                    {
                        continue;
                    }
                    let sent = tokio::time::timeout(SEND_STALL, sink.send(text(&api_event(&e)))).await;
                    if !matches!(sent, Ok(Ok(()))) {
                        return;
                    }
                }
            }
        }
    }
}
