//! The HTTP + WebSocket front door (`mod --http ADDR`): the REST API of `/api/v1`, console
//! attach and the event stream over WebSocket, the OpenAPI document and Prometheus metrics.
//!
//! The contract is docs/api.md. Every request is authenticated ([`auth`]: a bearer API token, or
//! HTTP Basic with a user's password) and goes through the same policy check and audit log as
//! the SSH front door ([`crate::Ctx::check`]); a token's scope narrows what it may do further.
//! Errors are JSON `{"error":{"code","message"}}` with the stable codes of [`error::Code`].

mod asciicast;
mod assets;
mod auth;
mod error;
mod metrics;
mod notes;
mod openapi;
mod rest;
mod server;
mod through;
pub mod tls;
mod web;
mod ws;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use axum::routing::{get, post};
use mo_store::DataDir;
use tokio::net::TcpListener;

pub use metrics::Metrics;
pub use notes::write_note;
pub use server::Options;
pub use web::{SessionUse, WebOptions, WebSessions};

use crate::Ctx;

/// What every handler needs.
#[derive(Clone)]
pub struct AppState {
    /// The daemon's shared context (store, registry, policy, events).
    pub ctx: Arc<Ctx>,
    /// The data directory (record logs are read from it).
    pub data: DataDir,
    /// Counters for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// The web console's browser sessions ([`web`]).
    pub web: Arc<WebSessions>,
}

/// One route the API serves: its method and path (axum syntax, `{name}` for parameters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// `GET`, `POST`, `PUT`, `PATCH` or `DELETE`.
    pub method: &'static str,
    /// The path, e.g. `/api/v1/devices/{name}`.
    pub path: &'static str,
}

const fn r(method: &'static str, path: &'static str) -> Route {
    Route { method, path }
}

/// Every route the router serves; the OpenAPI document is built from this list and a test
/// checks that the router answers each of them.
pub const ROUTES: &[Route] = &[
    r("GET", "/api/v1/health"),
    r("GET", "/api/v1/ready"),
    r("GET", "/api/v1/cluster"),
    r("GET", "/api/v1/devices"),
    r("POST", "/api/v1/devices"),
    r("GET", "/api/v1/devices/{name}"),
    r("PUT", "/api/v1/devices/{name}"),
    r("DELETE", "/api/v1/devices/{name}"),
    r("GET", "/api/v1/devices/{name}/who"),
    r("GET", "/api/v1/devices/{name}/secrets"),
    r("PUT", "/api/v1/devices/{name}/secrets/{kind}"),
    r("DELETE", "/api/v1/devices/{name}/secrets/{kind}"),
    r("GET", "/api/v1/sessions"),
    r("GET", "/api/v1/hosts/{name}/{what}"),
    r("GET", "/api/v1/devices/{name}/power"),
    r("POST", "/api/v1/devices/{name}/power"),
    r("POST", "/api/v1/devices/{name}/signals"),
    r("GET", "/api/v1/devices/{name}/log"),
    r("GET", "/api/v1/devices/{name}/log/search"),
    r("POST", "/api/v1/devices/{name}/log/verify"),
    r("GET", "/api/v1/devices/{name}/log/asciicast"),
    r("POST", "/api/v1/devices/{name}/notes"),
    r("GET", "/api/v1/devices/{name}/attach"),
    r("GET", "/api/v1/events"),
    r("POST", "/api/v1/events"),
    r("POST", "/api/v1/events/{id}/ack"),
    r("GET", "/api/v1/events/stream"),
    r("GET", "/api/v1/maintenance"),
    r("POST", "/api/v1/maintenance"),
    r("DELETE", "/api/v1/maintenance/{name}"),
    r("GET", "/api/v1/users"),
    r("POST", "/api/v1/users"),
    r("DELETE", "/api/v1/users/{name}"),
    r("PUT", "/api/v1/users/{name}/password"),
    r("GET", "/api/v1/users/{name}/keys"),
    r("POST", "/api/v1/users/{name}/keys"),
    r("DELETE", "/api/v1/users/{name}/keys"),
    r("GET", "/api/v1/roles"),
    r("GET", "/api/v1/roles/{name}"),
    r("PUT", "/api/v1/roles/{name}"),
    r("DELETE", "/api/v1/roles/{name}"),
    r("GET", "/api/v1/groups"),
    r("POST", "/api/v1/groups"),
    r("GET", "/api/v1/groups/{name}"),
    r("PATCH", "/api/v1/groups/{name}"),
    r("DELETE", "/api/v1/groups/{name}"),
    r("GET", "/api/v1/usergroups"),
    r("POST", "/api/v1/usergroups"),
    r("GET", "/api/v1/usergroups/{name}"),
    r("PATCH", "/api/v1/usergroups/{name}"),
    r("DELETE", "/api/v1/usergroups/{name}"),
    r("GET", "/api/v1/grants"),
    r("POST", "/api/v1/grants"),
    r("DELETE", "/api/v1/grants"),
    r("GET", "/api/v1/tokens"),
    r("POST", "/api/v1/tokens"),
    r("DELETE", "/api/v1/tokens/{id}"),
    r("POST", "/api/v1/gang"),
    r("POST", "/api/v1/discover"),
    r("GET", "/api/v1/macros"),
    r("POST", "/api/v1/macros/{name}/play"),
    r("GET", "/api/v1/openapi.json"),
    r("POST", "/api/v1/login"),
    r("POST", "/api/v1/logout"),
    r("GET", "/api/v1/me"),
    r("GET", "/"),
    r("GET", "/assets/{file}"),
    r("GET", "/metrics"),
];

/// The router with every route of [`ROUTES`].
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/health", get(rest::health))
        .route("/api/v1/ready", get(rest::ready))
        .route("/api/v1/cluster", get(rest::cluster))
        .route(
            "/api/v1/devices",
            get(rest::list_devices).post(rest::add_device),
        )
        .route(
            "/api/v1/devices/{name}",
            get(rest::get_device)
                .put(rest::replace_device)
                .delete(rest::remove_device),
        )
        .route("/api/v1/devices/{name}/who", get(rest::who))
        .route("/api/v1/devices/{name}/secrets", get(rest::secrets))
        .route(
            "/api/v1/devices/{name}/secrets/{kind}",
            axum::routing::put(rest::set_secret).delete(rest::remove_secret),
        )
        .route("/api/v1/sessions", get(rest::sessions))
        .route("/api/v1/hosts/{name}/{what}", get(rest::host_info))
        .route(
            "/api/v1/devices/{name}/power",
            get(rest::power_status).post(rest::power_action),
        )
        .route("/api/v1/devices/{name}/signals", post(rest::set_signals))
        .route("/api/v1/devices/{name}/log", get(rest::log_show))
        .route("/api/v1/devices/{name}/log/search", get(rest::log_search))
        .route("/api/v1/devices/{name}/log/verify", post(rest::log_verify))
        .route(
            "/api/v1/devices/{name}/log/asciicast",
            get(asciicast::log_asciicast),
        )
        .route("/api/v1/devices/{name}/notes", post(notes::add_note))
        .route("/api/v1/devices/{name}/attach", get(ws::attach))
        .route("/api/v1/events", get(rest::events).post(rest::raise_event))
        .route("/api/v1/events/{id}/ack", post(rest::ack_event))
        .route("/api/v1/events/stream", get(ws::event_stream))
        .route(
            "/api/v1/maintenance",
            get(rest::list_maintenance).post(rest::start_maintenance),
        )
        .route(
            "/api/v1/maintenance/{name}",
            axum::routing::delete(rest::stop_maintenance),
        )
        .route("/api/v1/users", get(rest::users).post(rest::add_user))
        .route(
            "/api/v1/users/{name}",
            axum::routing::delete(rest::remove_user),
        )
        .route(
            "/api/v1/users/{name}/password",
            axum::routing::put(rest::set_password),
        )
        .route(
            "/api/v1/users/{name}/keys",
            get(rest::ssh_keys)
                .post(rest::add_ssh_key)
                .delete(rest::remove_ssh_key),
        )
        .route("/api/v1/roles", get(rest::roles))
        .route(
            "/api/v1/roles/{name}",
            get(rest::show_role)
                .put(rest::set_role)
                .delete(rest::remove_role),
        )
        .route("/api/v1/groups", get(rest::groups).post(rest::add_group))
        .route(
            "/api/v1/groups/{name}",
            get(rest::show_group)
                .patch(rest::change_group)
                .delete(rest::remove_group),
        )
        .route(
            "/api/v1/usergroups",
            get(rest::user_groups).post(rest::add_user_group),
        )
        .route(
            "/api/v1/usergroups/{name}",
            get(rest::show_user_group)
                .patch(rest::change_user_group)
                .delete(rest::remove_user_group),
        )
        .route(
            "/api/v1/grants",
            get(rest::grants)
                .post(rest::add_grant)
                .delete(rest::remove_grant),
        )
        .route("/api/v1/tokens", get(rest::tokens).post(rest::add_token))
        .route(
            "/api/v1/tokens/{id}",
            axum::routing::delete(rest::revoke_token),
        )
        .route("/api/v1/gang", post(rest::gang))
        .route("/api/v1/discover", post(rest::discover))
        .route("/api/v1/macros", get(rest::macros))
        .route("/api/v1/macros/{name}/play", post(rest::macro_play))
        .route("/api/v1/openapi.json", get(openapi::serve))
        .route("/api/v1/login", post(web::login))
        .route("/api/v1/logout", post(web::logout))
        .route("/api/v1/me", get(web::me))
        .route("/", get(assets::index))
        .route("/assets/{file}", get(assets::asset))
        .route("/metrics", get(metrics::serve))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            through::write_through,
        ))
        .fallback(error::no_route)
        .method_not_allowed_fallback(error::bad_method)
        .with_state(state)
}

/// Start listening on `addr`; returns the bound address and the server task. Accepted sockets
/// get TCP_NODELAY (keystrokes are tiny). With `tls`, the listener speaks HTTPS (and WSS): the
/// handshake happens before axum sees the connection ([`tls::Tls::listener`]).
pub async fn serve(
    state: AppState,
    addr: SocketAddr,
    tls: Option<Arc<tls::Tls>>,
    options: Options,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    use axum::serve::ListenerExt as _;
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen for HTTP on {addr}"))?;
    let bound = listener.local_addr()?;
    // The connection loop (header timeout, connection caps, connect info): [`server`].
    let app = router(state);
    let task = match tls {
        Some(tls) => {
            // The TLS listener sets TCP_NODELAY and yields connections after their handshake.
            let listener = tls.listener(listener)?;
            tokio::spawn(server::run(listener, app, options))
        }
        None => {
            let listener = listener.tap_io(|tcp| {
                if let Err(e) = tcp.set_nodelay(true) {
                    tracing::debug!("cannot set TCP_NODELAY on an HTTP connection: {e}");
                }
            });
            tokio::spawn(server::run(listener, app, options))
        }
    };
    Ok((bound, task))
}
