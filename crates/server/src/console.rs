//! The web console's browser side (DESIGN §9): the single-page application
//! built from `web/` into `web/dist` by `build.rs` and embedded in the
//! binary, served with a strict Content-Security-Policy; and the per-user
//! preferences it keeps on the server.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use rust_embed::RustEmbed;

use crate::signin;
use crate::state::AppState;

/// `web/dist`, as built by `build.rs`.
#[derive(RustEmbed)]
#[folder = "../../web/dist"]
struct Dist;

/// The policy of every console page. Scripts, fonts, images and
/// connections (the API, the data-channel WebSocket, the file URLs) come
/// only from this origin; nothing may frame the console. Styles allow
/// inline ones because xterm.js sizes its rows and cells with style
/// elements it creates at run time; no script may be inline.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self'; \
     connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// Largest preferences document accepted.
const MAX_PREFERENCES_BYTES: usize = 4096;

/// The console's routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(index))
        .route("/cloudshell", get(index))
        .route("/assets/{*path}", get(asset))
        .route(
            "/console/preferences",
            get(get_preferences).put(put_preferences),
        )
}

/// Headers every console page and asset carries (the server-rendered
/// sign-in pages too).
pub(crate) fn harden(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
}

/// `GET /`: the application's page (sign-in or CloudShell, decided by the
/// script from `/whoami`).
async fn index() -> Response {
    match Dist::get("index.html") {
        Some(file) => {
            let mut response = (
                [
                    (
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("text/html; charset=utf-8"),
                    ),
                    (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
                ],
                file.data.into_owned(),
            )
                .into_response();
            harden(response.headers_mut());
            response
        }
        None => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "The console was not built into this server.\n",
        )
            .into_response(),
    }
}

/// `GET /assets/<file>`: the bundled scripts and styles. Their names carry
/// a content hash, so they may be cached for good.
async fn asset(Path(path): Path<String>) -> Response {
    let Some(file) = Dist::get(&format!("assets/{path}")) else {
        return (StatusCode::NOT_FOUND, "no such asset\n").into_response();
    };
    let mime = file.metadata.mimetype().to_string();
    let mut response = (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_str(&mime)
                    .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream")),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
        ],
        file.data.into_owned(),
    )
        .into_response();
    harden(response.headers_mut());
    response
}

/// `GET /console/preferences`: the signed-in user's preferences (`{}`
/// when none were saved).
async fn get_preferences(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let Some((_, session)) = signin::session_of(&state, &headers).await else {
        return (StatusCode::UNAUTHORIZED, "not signed in\n").into_response();
    };
    match state
        .store
        .console_preferences(&session.preferences_owner())
        .await
    {
        Ok(saved) => (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                ),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
            saved.unwrap_or_else(|| "{}".to_string()),
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot read console preferences");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "The preferences could not be read.\n",
            )
                .into_response()
        }
    }
}

/// `PUT /console/preferences`: replaces them. Needs the CSRF token; the
/// body must be a JSON object of at most 4 KiB.
async fn put_preferences(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some((_, session)) = signin::session_of(&state, &headers).await else {
        return (StatusCode::UNAUTHORIZED, "not signed in\n").into_response();
    };
    if !signin::csrf_ok(&session, &headers) {
        return (StatusCode::FORBIDDEN, "missing or wrong CSRF token\n").into_response();
    }
    if body.len() > MAX_PREFERENCES_BYTES {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("Preferences are at most {MAX_PREFERENCES_BYTES} bytes.\n"),
        )
            .into_response();
    }
    let parsed: Result<serde_json::Map<String, serde_json::Value>, _> =
        serde_json::from_slice(&body);
    let Ok(object) = parsed else {
        return (
            StatusCode::BAD_REQUEST,
            "Preferences must be a JSON object.\n",
        )
            .into_response();
    };
    let text = serde_json::Value::Object(object).to_string();
    match state
        .store
        .set_console_preferences(&session.preferences_owner(), &text)
        .await
    {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot save console preferences");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "The preferences could not be saved.\n",
            )
                .into_response()
        }
    }
}
