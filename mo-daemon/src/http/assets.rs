//! The web console's static files, embedded in the `mod` binary at compile time from `web/dist`
//! (the committed bundle; building mo needs no npm): `GET /` is `index.html`, `GET
//! /assets/FILE` the files of `web/dist/assets`. Every answer carries the console's
//! Content-Security-Policy (no inline script, connections only to this daemon) and an ETag;
//! nothing is cached without asking again (`no-cache`), so a new `mod` serves its own bundle.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

use super::error::ApiError;
use super::rest::PathArgs;

/// The bundle, `web/dist` (build.rs makes cargo rebuild when it changes).
#[derive(RustEmbed)]
#[folder = "../web/dist"]
struct Bundle;

/// The Content-Security-Policy of every page and file of the web console.
/// `'wasm-unsafe-eval'`: asciinema-player compiles its terminal emulator from WebAssembly bundled
/// in app.js (no other script source is allowed).
pub const CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
                       connect-src 'self' ws: wss:; img-src 'self' data:; \
                       style-src 'self' 'unsafe-inline'";

/// Answer with the embedded file `path` (relative to `web/dist`), or 404.
fn serve(path: &str, request: &HeaderMap) -> Result<Response, ApiError> {
    let file = Bundle::get(path)
        .ok_or_else(|| ApiError::not_found(format!("no such file of the web console: /{path}")))?;
    let etag = format!(
        "\"{}\"",
        file.metadata
            .sha256_hash()
            .iter()
            .take(16)
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        file.data.into_owned().into_response()
    };
    let headers = response.headers_mut();
    let content_type = match file.metadata.mimetype() {
        t @ ("text/html" | "text/css" | "text/javascript" | "application/javascript") => {
            format!("{t}; charset=utf-8")
        }
        t => t.to_string(),
    };
    if let Ok(v) = HeaderValue::from_str(&content_type) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, v);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    Ok(response)
}

/// The web console's page (embedded in `mod`).
#[utoipa::path(get, path = "/", operation_id = "webIndex", tag = "web", security(()),
    responses((status = 200, description = "OK.", body = String, content_type = "text/html")))]
pub async fn index(request: HeaderMap) -> Result<Response, ApiError> {
    serve("index.html", &request)
}

/// A file of the web console's bundle (script, style sheet, font).
#[utoipa::path(get, path = "/assets/{file}", operation_id = "webAsset", tag = "web",
    security(()),
    params(("file" = String, Path, description = "A file of the bundle.", min_length = 1, max_length = 255)),
    responses(
        (status = 200, description = "OK.", body = String, content_type = "*/*"),
        (status = 400, description = "A path that is not readable text (code bad_request).", body = mo_api::ErrorBody),
        (status = 404, description = "No such file (code not_found).", body = mo_api::ErrorBody),
    ))]
pub async fn asset(
    PathArgs(file): PathArgs<String>,
    request: HeaderMap,
) -> Result<Response, ApiError> {
    if file.is_empty() || file.contains('/') || file.starts_with('.') {
        return Err(ApiError::not_found(format!(
            "no such file of the web console: /assets/{file}"
        )));
    }
    serve(&format!("assets/{file}"), &request)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn the_bundle_is_embedded_with_its_types() {
        let r = serve("index.html", &HeaderMap::new()).unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            r.headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
        assert_eq!(r.headers()[header::CACHE_CONTROL], "no-cache");
        assert_eq!(r.headers()[header::CONTENT_SECURITY_POLICY], CSP);
        let js = serve("assets/app.js", &HeaderMap::new()).unwrap();
        let t = js.headers()[header::CONTENT_TYPE].to_str().unwrap();
        assert!(t.contains("javascript"), "{t}");
        assert!(serve("assets/nothing.js", &HeaderMap::new()).is_err());
    }

    #[test]
    fn a_known_etag_gets_304() {
        let r = serve("index.html", &HeaderMap::new()).unwrap();
        let etag = r.headers()[header::ETAG].clone();
        let mut h = HeaderMap::new();
        h.insert(header::IF_NONE_MATCH, etag);
        let again = serve("index.html", &h).unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    }
}
