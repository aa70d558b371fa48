//! The API's writes of the site's directory (`mod --cluster … --share-directory`): after a
//! handler changed the store, the change is written to the site before the answer goes out,
//! and a change the site refused (another node changed the entry first) is answered `409`
//! (code `conflict`) naming the entry. When the site cannot be asked (NATS away, the node still
//! joining), the local write stands and is sent later, as without this layer.

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};

use super::AppState;
use super::error::{ApiError, Code};
use crate::cluster::Written;

/// The routes that write the site's directory (devices, their secrets, users with their keys,
/// roles, device and user groups, grants, tokens): method and route.
pub const DIRECTORY_WRITES: &[(&str, &str)] = &[
    ("POST", "/api/v1/devices"),
    ("PUT", "/api/v1/devices/{name}"),
    ("DELETE", "/api/v1/devices/{name}"),
    ("PUT", "/api/v1/devices/{name}/secrets/{kind}"),
    ("DELETE", "/api/v1/devices/{name}/secrets/{kind}"),
    ("POST", "/api/v1/users"),
    ("DELETE", "/api/v1/users/{name}"),
    ("PUT", "/api/v1/users/{name}/password"),
    ("POST", "/api/v1/users/{name}/keys"),
    ("DELETE", "/api/v1/users/{name}/keys"),
    ("PUT", "/api/v1/roles/{name}"),
    ("DELETE", "/api/v1/roles/{name}"),
    ("POST", "/api/v1/groups"),
    ("PATCH", "/api/v1/groups/{name}"),
    ("DELETE", "/api/v1/groups/{name}"),
    ("POST", "/api/v1/usergroups"),
    ("PATCH", "/api/v1/usergroups/{name}"),
    ("DELETE", "/api/v1/usergroups/{name}"),
    ("POST", "/api/v1/grants"),
    ("DELETE", "/api/v1/grants"),
    ("POST", "/api/v1/tokens"),
    ("DELETE", "/api/v1/tokens/{id}"),
];

/// Whether `method` on `route` writes the site's directory.
pub fn writes_directory(method: &Method, route: &str) -> bool {
    DIRECTORY_WRITES
        .iter()
        .any(|(m, r)| *r == route && method.as_str() == *m)
}

/// The middleware: run the handler, then, for a successful directory write on a node sharing
/// its directory and connected to NATS, write it through to the site.
pub async fn write_through(
    State(state): State<AppState>,
    route: MatchedPath,
    request: Request,
    next: Next,
) -> Response {
    let through = state
        .ctx
        .cluster
        .as_ref()
        .filter(|c| c.connected() && writes_directory(request.method(), route.as_str()))
        .and_then(|c| c.write_through());
    let Some(through) = through else {
        return next.run(request).await;
    };
    let mark = through.mark();
    let response = next.run(request).await;
    if !response.status().is_success() {
        return response;
    }
    match through.send(mark).await {
        Written::Sent => response,
        Written::Later(why) => {
            tracing::info!(
                "cluster: {} {}: answered before the site has it ({why}); it is sent later",
                route.as_str(),
                response.status()
            );
            response
        }
        Written::Refused(entries) => ApiError::new(
            Code::Conflict,
            format!("the site refused this change: {}", entries.join("; ")),
        )
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_directory_write_is_a_served_route() {
        for (method, route) in DIRECTORY_WRITES {
            assert!(
                super::super::ROUTES
                    .iter()
                    .any(|r| r.method == *method && r.path == *route),
                "{method} {route} is not served"
            );
        }
        assert!(writes_directory(&Method::PUT, "/api/v1/roles/{name}"));
        assert!(!writes_directory(&Method::GET, "/api/v1/roles/{name}"));
        assert!(!writes_directory(&Method::POST, "/api/v1/gang"));
    }
}
