//! Browser sessions for the web console (docs/web.md).
//!
//! `POST /api/v1/login` checks a user's password exactly like an HTTP Basic or SSH login (argon2
//! through [`crate::throttle`]: throttled per source address, at most one check per CPU, audited
//! as `login`), then opens a session held in memory and answers with the cookie
//! `mo_session=<opaque>; HttpOnly; SameSite=Strict; Path=/` (`Secure` when the listener speaks
//! HTTPS) and the session's CSRF token. Every API route and WebSocket upgrade takes the cookie
//! instead of `Authorization` ([`session_caller`], called by the [`Caller`] extractor when no
//! other credentials came); a state-changing request (anything but GET, HEAD and OPTIONS) that
//! the cookie authenticates must carry `X-CSRF-Token` with the session's token (compared in
//! constant time), or it is refused with 403 `csrf`.
//!
//! A session ends on `POST /api/v1/logout`, after `mod --web-idle-timeout` without use (a
//! request, or an open console or event stream: [`SessionUse`]), after
//! `mod --web-session-lifetime` in any case, and when its user is removed. Its open WebSockets end with it: the session rides along
//! in the live re-check's [`crate::live::Holder`], and logout wakes the re-check at once.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::extract::{ConnectInfo, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use mo_api::{LoginRequest, MAX_LOGIN_PASSWORD, MAX_LOGIN_USER, Me, WebSessionInfo};
use mo_core::policy::Permission;
use mo_store::Outcome;
use subtle::ConstantTimeEq as _;

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, Code};
use super::rest::{JsonBody, rfc3339};
use crate::throttle::{Admission, CheckError};

/// The session cookie's name.
pub const COOKIE: &str = "mo_session";
/// The header a state-changing request authenticated by the cookie must carry.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Default of `mod --web-idle-timeout`.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// Default of `mod --web-session-lifetime`.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);
/// Sessions held at most; a login beyond ends the one used least recently.
const MAX_SESSIONS: usize = 10_000;

/// How long sessions live and how their cookie is marked.
#[derive(Debug, Clone, Copy)]
pub struct WebOptions {
    /// A session unused this long ends (`--web-idle-timeout`).
    pub idle_timeout: Duration,
    /// A session ends this long after its login in any case (`--web-session-lifetime`).
    pub lifetime: Duration,
    /// The listener speaks HTTPS: the cookie is marked `Secure`.
    pub secure: bool,
}

impl Default for WebOptions {
    fn default() -> Self {
        WebOptions {
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            lifetime: DEFAULT_LIFETIME,
            secure: false,
        }
    }
}

/// One browser session.
pub struct WebSession {
    user: String,
    /// A short public id for the audit log and `who` (not the cookie).
    id: String,
    csrf: String,
    deadline: Instant,
    expires_at: SystemTime,
    last_used: Mutex<Instant>,
    ended: Mutex<Option<String>>,
}

impl std::fmt::Debug for WebSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The CSRF token stays out of debug output.
        f.debug_struct("WebSession")
            .field("user", &self.user)
            .field("id", &self.id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl WebSession {
    /// The session's user.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// Why the session is over (logged out, expired), if it is. Open WebSockets the session
    /// authenticated end when this turns `Some` ([`crate::live::Snapshot::revoked`]).
    pub fn ended(&self) -> Option<String> {
        if let Ok(ended) = self.ended.lock()
            && let Some(why) = ended.as_ref()
        {
            return Some(why.clone());
        }
        (Instant::now() >= self.deadline).then(|| {
            format!(
                "the web session of {} reached its lifetime (mod --web-session-lifetime)",
                self.user
            )
        })
    }

    fn end(&self, why: &str) {
        if let Ok(mut ended) = self.ended.lock()
            && ended.is_none()
        {
            *ended = Some(why.to_string());
        }
    }

    /// Whether `token` is the session's CSRF token (constant time).
    fn csrf_matches(&self, token: &[u8]) -> bool {
        bool::from(self.csrf.as_bytes().ct_eq(token))
    }
}

/// One use of a browser session: a request being answered, an open WebSocket. While a use
/// lives the session is in use and cannot go idle; when it ends, that is the session's last use
/// (so closing a console that was open for an hour does not leave an idle session behind).
#[derive(Debug, Clone)]
pub struct SessionUse(Arc<WebSession>);

impl std::ops::Deref for SessionUse {
    type Target = WebSession;

    fn deref(&self) -> &WebSession {
        &self.0
    }
}

impl Drop for SessionUse {
    fn drop(&mut self) {
        if let Ok(mut last) = self.0.last_used.lock() {
            *last = Instant::now();
        }
    }
}

/// The session table (in memory: a daemon restart logs every browser out).
pub struct WebSessions {
    options: WebOptions,
    table: Mutex<HashMap<String, Arc<WebSession>>>,
}

impl std::fmt::Debug for WebSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSessions")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::fill(&mut buf[..]);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

impl WebSessions {
    /// An empty table.
    pub fn new(options: WebOptions) -> Self {
        WebSessions {
            options,
            table: Mutex::new(HashMap::new()),
        }
    }

    /// Open a session for `user`; returns the cookie value and the session.
    fn open(&self, user: &str) -> Result<(String, Arc<WebSession>), ApiError> {
        let now = Instant::now();
        let session = Arc::new(WebSession {
            user: user.to_string(),
            id: random_token(6),
            csrf: random_token(32),
            deadline: now + self.options.lifetime,
            expires_at: SystemTime::now() + self.options.lifetime,
            last_used: Mutex::new(now),
            ended: Mutex::new(None),
        });
        let cookie = random_token(32);
        let mut table = self
            .table
            .lock()
            .map_err(|_| ApiError::internal("the web session table is poisoned"))?;
        table.retain(|_, s| !self.stale(s, now));
        if table.len() >= MAX_SESSIONS
            && let Some(oldest) = table
                .iter()
                .min_by_key(|(_, s)| s.last_used.lock().map(|t| *t).unwrap_or(now))
                .map(|(k, _)| k.clone())
            && let Some(s) = table.remove(&oldest)
        {
            s.end("too many web sessions: the one used least recently was ended");
        }
        table.insert(cookie.clone(), session.clone());
        Ok((cookie, session))
    }

    /// Whether `s` is over (ended, past its lifetime, or idle too long while nothing holds it);
    /// marks it ended when it is.
    fn stale(&self, s: &Arc<WebSession>, now: Instant) -> bool {
        if s.ended().is_some() {
            s.end("the web session expired");
            return true;
        }
        let last = s.last_used.lock().map(|t| *t).unwrap_or(now);
        // The table holds one reference; more are open WebSockets (or requests in flight),
        // which keep the session in use.
        let in_use = Arc::strong_count(s) > 1;
        if !in_use && now.saturating_duration_since(last) >= self.options.idle_timeout {
            s.end(&format!(
                "the web session of {} was idle for {} (mod --web-idle-timeout)",
                s.user,
                humantime::format_duration(self.options.idle_timeout)
            ));
            return true;
        }
        false
    }

    /// The live session a cookie names, marked as used now; why not otherwise.
    fn find(&self, cookie: &str) -> Result<Arc<WebSession>, String> {
        let now = Instant::now();
        let mut table = self
            .table
            .lock()
            .map_err(|_| "the web session table is poisoned".to_string())?;
        let Some(session) = table.get(cookie).cloned() else {
            return Err("the web session is unknown or has ended".into());
        };
        // `session` is one more reference: compare against two.
        let last = session.last_used.lock().map(|t| *t).unwrap_or(now);
        let idle = Arc::strong_count(&session) <= 2
            && now.saturating_duration_since(last) >= self.options.idle_timeout;
        if idle {
            session.end(&format!(
                "the web session of {} was idle for {} (mod --web-idle-timeout)",
                session.user,
                humantime::format_duration(self.options.idle_timeout)
            ));
        }
        if let Some(why) = session.ended() {
            table.remove(cookie);
            return Err(why);
        }
        if let Ok(mut last) = session.last_used.lock() {
            *last = now;
        }
        Ok(session)
    }

    /// End the session a cookie names (logout); returns it.
    fn close(&self, cookie: &str, why: &str) -> Option<Arc<WebSession>> {
        let session = self.table.lock().ok()?.remove(cookie)?;
        session.end(why);
        Some(session)
    }

    /// End every session of `user` (the user was removed); returns how many.
    fn close_user(&self, user: &str, why: &str) -> usize {
        let Ok(mut table) = self.table.lock() else {
            return 0;
        };
        let before = table.len();
        table.retain(|_, s| {
            if s.user == user {
                s.end(why);
                false
            } else {
                true
            }
        });
        before - table.len()
    }
}

/// The value of cookie `name` among the request's `Cookie` headers.
pub fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().trim_matches('"'))
}

fn safe_method(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The caller a session cookie names, for the [`Caller`] extractor when the request carries
/// no other credentials: `Ok(None)` without the cookie; 401 when the session is unknown or
/// over; 403 `csrf` when a state-changing request lacks the session's `X-CSRF-Token`.
pub async fn session_caller(
    parts: &Parts,
    state: &AppState,
    peer: &str,
) -> Result<Option<Caller>, ApiError> {
    let Some(cookie) = cookie_value(&parts.headers, COOKIE) else {
        return Ok(None);
    };
    let session = state.web.find(cookie).map_err(|why| {
        ApiError::new(
            Code::Unauthorized,
            format!("{why}: log in again (POST /api/v1/login)"),
        )
    })?;
    let session = SessionUse(session);
    // A removed user's sessions end (read from the store, like a token on every request).
    let store = state.ctx.store.clone();
    let user = session.user.clone();
    let found = tokio::task::spawn_blocking(move || store.user(&user))
        .await
        .map_err(|e| ApiError::internal(format!("user check failed: {e}")))?;
    match found {
        Ok(_) => {}
        Err(mo_store::Error::UnknownUser(_)) => {
            let why = format!("user {} was removed", session.user);
            state.web.close_user(&session.user, &why);
            return Err(ApiError::new(
                Code::Unauthorized,
                format!("the web session ended: {why}"),
            ));
        }
        Err(e) => return Err(ApiError::from(e)),
    }
    if !safe_method(&parts.method) {
        let sent = parts
            .headers
            .get(CSRF_HEADER)
            .map(HeaderValue::as_bytes)
            .unwrap_or_default();
        if !session.csrf_matches(sent) {
            return Err(ApiError::new(
                Code::Csrf,
                format!(
                    "{} {} authenticated by the session cookie needs the header X-CSRF-Token \
                     with the session's token (the `csrf` of POST /api/v1/login or GET \
                     /api/v1/me)",
                    parts.method,
                    parts.uri.path()
                ),
            ));
        }
    }
    Ok(Some(Caller {
        origin: format!("http {peer} web {}", session.id),
        user: session.user.clone(),
        scope: None,
        token_id: None,
        web: Some(session),
    }))
}

/// The `Set-Cookie` value that sets (`Some(value)`) or clears (`None`) the session cookie.
fn set_cookie(value: Option<&str>, secure: bool) -> Result<HeaderValue, ApiError> {
    let mut c = match value {
        Some(v) => format!("{COOKIE}={v}; HttpOnly; SameSite=Strict; Path=/"),
        None => format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
    };
    if secure {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).map_err(|e| ApiError::internal(format!("bad cookie header: {e}")))
}

fn session_info(state: &AppState, session: &WebSession) -> WebSessionInfo {
    WebSessionInfo {
        user: session.user.clone(),
        csrf: session.csrf.clone(),
        expires_at: rfc3339(session.expires_at),
        idle_timeout_s: state.web.options.idle_timeout.as_secs(),
    }
}

/// Web console login: check a user's password like every other door (throttled per source
/// address, audited) and open a browser session; sets the HttpOnly cookie `mo_session`
/// (docs/web.md).
#[utoipa::path(post, path = "/api/v1/login", operation_id = "login", tag = "web",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in; the answer sets the cookie `mo_session` (HttpOnly, SameSite=Strict, Path=/, Secure under HTTPS).", body = WebSessionInfo),
        (status = 400, description = "Bad request (code bad_request).", body = mo_api::ErrorBody),
        (status = 401, description = "Wrong user or password (code unauthorized).", body = mo_api::ErrorBody),
        (status = 429, description = "Too many failed logins from this address (code too_many_requests; Retry-After says when to try again).", body = mo_api::ErrorBody),
        (status = 503, description = "Too many password checks are waiting (code unavailable).", body = mo_api::ErrorBody),
    ))]
pub async fn login(
    State(state): State<AppState>,
    extensions: axum::http::Extensions,
    JsonBody(body): JsonBody<LoginRequest>,
) -> Result<Response, ApiError> {
    if !(1..=MAX_LOGIN_USER).contains(&body.user.chars().count()) {
        return Err(ApiError::bad_request(format!(
            "bad `user`: give 1 to {MAX_LOGIN_USER} characters"
        )));
    }
    if !(1..=MAX_LOGIN_PASSWORD).contains(&body.password.chars().count()) {
        return Err(ApiError::bad_request(format!(
            "bad `password`: give 1 to {MAX_LOGIN_PASSWORD} characters"
        )));
    }
    let addr = extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    let peer = addr.map_or_else(|| "?".into(), |a| a.to_string());
    let origin = format!("http {peer} web login");
    let throttle = state.ctx.throttle.clone();
    if let Some(addr) = addr
        && let Admission::LockedOut(left) = throttle.admit(addr.ip())
    {
        throttle.refused_locked();
        let secs = left.as_secs().max(1);
        let error = ApiError::new(
            Code::TooManyRequests,
            format!(
                "too many failed logins from {}: try again in {secs}s",
                addr.ip()
            ),
        );
        return Err(match HeaderValue::from_str(&secs.to_string()) {
            Ok(v) => error.with_header(header::RETRY_AFTER, v),
            Err(_) => error,
        });
    }
    let ok = match throttle.verify_password(&body.user, &body.password).await {
        Ok(ok) => ok,
        Err(CheckError::Busy) => {
            return Err(ApiError::new(
                Code::Unavailable,
                CheckError::Busy.to_string(),
            ));
        }
        Err(e) => return Err(ApiError::internal(e.to_string())),
    };
    let user = body.user;
    if !ok {
        let why = format!("web console login of `{user}` refused: wrong password or unknown user");
        match addr {
            Some(addr) => {
                throttle.failed(addr.ip(), &user, &origin, &why);
            }
            None => {
                state
                    .ctx
                    .access
                    .record(&user, &origin, "login", None, Outcome::Denied, why.clone())
            }
        }
        return Err(ApiError::new(Code::Unauthorized, why));
    }
    if let Some(addr) = addr {
        throttle.succeeded(addr.ip());
    }
    let (cookie, session) = state.web.open(&user)?;
    state.ctx.access.record(
        &user,
        &format!("http {peer} web {}", session.id),
        "login",
        None,
        Outcome::Ok,
        "password (web console)",
    );
    tracing::info!(%user, %peer, "web console login");
    let mut response = axum::Json(session_info(&state, &session)).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(Some(&cookie), state.web.options.secure)?,
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// End the caller's web console session (its open WebSockets close) and clear the cookie; with
/// the cookie, the header X-CSRF-Token is needed. A caller with a token or password has no
/// session: nothing ends.
#[utoipa::path(post, path = "/api/v1/logout", operation_id = "logout", tag = "web",
    responses(
        (status = 204, description = "Logged out; the answer clears the cookie (Max-Age=0)."),
        (status = 403, description = "A request with the session cookie but without its X-CSRF-Token header (code csrf).", body = mo_api::ErrorBody),
    ))]
pub async fn logout(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if caller.web.is_some()
        && let Some(cookie) = cookie_value(&headers, COOKIE)
        && let Some(session) = state.web.close(cookie, "logged out")
    {
        state.ctx.access.record(
            &caller.user,
            &caller.origin,
            "logout",
            None,
            Outcome::Ok,
            "web console",
        );
        tracing::info!(user = %session.user, "web console logout");
        // Wake the live re-check now: the session's WebSockets close without waiting.
        state.ctx.live.nudge();
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(None, state.web.options.secure)?,
    );
    Ok(response)
}

/// The actions `caller` may take over every device (a grant on the built-in group `all`).
fn global_actions(state: &AppState, caller: &Caller) -> Vec<&'static str> {
    Permission::ALL
        .into_iter()
        .filter(|a| caller.is_global(state, *a))
        .map(Permission::name)
        .collect()
}

/// The caller, its web console session (csrf and expiry; null for a token or password) and the
/// actions it may take: granted on the built-in group `all`, and per visible device (the
/// policy's names, as `mo role show` prints them). The web console hides what is not listed.
#[utoipa::path(get, path = "/api/v1/me", operation_id = "me", tag = "web",
    responses((status = 200, description = "OK.", body = Me)))]
pub async fn me(State(state): State<AppState>, caller: Caller) -> Response {
    let policy = state.ctx.access.policy();
    let mut devices = std::collections::BTreeMap::new();
    if caller.scope_permits(Permission::List) {
        for entry in state.ctx.visible(&caller.user) {
            let name = entry.device.name;
            let actions: Vec<String> = Permission::ALL
                .into_iter()
                .filter(|a| caller.scope_permits(*a) && policy.allows(&caller.user, *a, &name))
                .map(|a| a.name().to_string())
                .collect();
            devices.insert(name, actions);
        }
    }
    let session = caller.web.as_ref().map(|s| session_info(&state, s));
    let body = Me {
        user: caller.user.clone(),
        csrf: session.as_ref().map(|s| s.csrf.clone()),
        expires_at: session.as_ref().map(|s| s.expires_at.clone()),
        idle_timeout_s: session.as_ref().map(|s| s.idle_timeout_s),
        global: global_actions(&state, &caller)
            .into_iter()
            .map(str::to_string)
            .collect(),
        devices,
    };
    let mut response = axum::Json(body).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn table(idle: Duration, lifetime: Duration) -> WebSessions {
        WebSessions::new(WebOptions {
            idle_timeout: idle,
            lifetime,
            secure: false,
        })
    }

    #[test]
    fn a_session_is_found_by_its_cookie_until_logout() {
        let t = table(Duration::from_secs(60), Duration::from_secs(3600));
        let (cookie, s) = t.open("alice").unwrap();
        assert_eq!(t.find(&cookie).unwrap().user(), "alice");
        assert!(t.find("nope").is_err());
        assert!(s.ended().is_none());
        t.close(&cookie, "logged out").unwrap();
        assert_eq!(s.ended().as_deref(), Some("logged out"));
        assert!(t.find(&cookie).is_err());
    }

    #[test]
    fn idle_and_lifetime_end_sessions() {
        let t = table(Duration::ZERO, Duration::from_secs(3600));
        let (cookie, s) = t.open("alice").unwrap();
        drop(s);
        let why = t.find(&cookie).unwrap_err();
        assert!(why.contains("idle"), "{why}");
        let t = table(Duration::from_secs(60), Duration::ZERO);
        let (cookie, s) = t.open("bob").unwrap();
        assert!(s.ended().unwrap().contains("lifetime"));
        assert!(t.find(&cookie).is_err());
    }

    #[test]
    fn a_held_session_does_not_go_idle() {
        let t = table(Duration::ZERO, Duration::from_secs(3600));
        let (cookie, held) = t.open("alice").unwrap();
        // `held` stands for an open WebSocket.
        assert!(t.find(&cookie).is_ok());
        drop(held);
        assert!(t.find(&cookie).is_err());
    }

    #[test]
    fn the_end_of_a_use_is_the_last_use() {
        let idle = Duration::from_millis(300);
        let t = table(idle, Duration::from_secs(3600));
        let (held, s) = t.open("alice").unwrap();
        let (dropped, unused) = t.open("bob").unwrap();
        drop(unused);
        // An open console (a use) outlasts the idle timeout ...
        let console = SessionUse(s);
        std::thread::sleep(idle + Duration::from_millis(100));
        drop(console);
        // ... and its end counts as use; the session that nothing used went idle.
        assert!(t.find(&held).is_ok());
        assert!(t.find(&dropped).unwrap_err().contains("idle"));
    }

    #[test]
    fn csrf_is_compared_whole() {
        let t = table(Duration::from_secs(60), Duration::from_secs(60));
        let (_, s) = t.open("alice").unwrap();
        let good = s.csrf.clone();
        assert!(s.csrf_matches(good.as_bytes()));
        assert!(!s.csrf_matches(&good.as_bytes()[1..]));
        assert!(!s.csrf_matches(b""));
    }

    #[test]
    fn cookies_are_read_from_every_cookie_header() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("a=1; b=2"));
        h.append(header::COOKIE, HeaderValue::from_static("mo_session=xyz"));
        assert_eq!(cookie_value(&h, COOKIE), Some("xyz"));
        assert_eq!(cookie_value(&h, "b"), Some("2"));
        assert_eq!(cookie_value(&h, "c"), None);
    }

    #[test]
    fn the_cookie_is_marked() {
        let v = set_cookie(Some("abc"), true).unwrap();
        assert_eq!(
            v.to_str().unwrap(),
            "mo_session=abc; HttpOnly; SameSite=Strict; Path=/; Secure"
        );
        let v = set_cookie(None, false).unwrap();
        assert!(v.to_str().unwrap().contains("Max-Age=0"));
    }
}
