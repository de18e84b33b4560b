//! The REST-JSON protocol path (CloudShell): `POST /cloudshell/<op>`, a
//! JSON body, errors `{"code","message"}` with `x-amzn-ErrorType`.
//!
//! Callers authenticate with SigV4 (service `cloudshell`, the region from
//! the credential scope) or, from the console, with the session cookie and
//! the CSRF token (the region from `X-Seashell-Region`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use seashell_audit::Record;

use super::{audit, auth_failed, record_metrics, request_info, with_request, Incoming};
use crate::auth;
use crate::caller::{Caller, CallerSession, RoleSession};
use crate::error::ApiError;
use crate::services::cloudshell::{self, Operation, Origin, EVENT_SOURCE};
use crate::signin;
use crate::state::AppState;
use crate::store::console::ConsolePrincipal;

/// The header the console names its region in.
pub const REGION_HEADER: &str = "x-seashell-region";

/// `POST /cloudshell/{operation}`.
pub(super) async fn cloudshell_endpoint(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(operation): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let request_id = uuid::Uuid::new_v4().to_string();
    let incoming = Incoming {
        method,
        uri,
        headers,
        body,
        peer,
    };
    let op = Operation::from_path(&operation);
    let name = op.map_or("unknown", Operation::name).to_string();
    let span = tracing::info_span!("request", service = "cloudshell", operation = %name, request_id = %request_id);
    let _enter = span.enter();
    let finish = |state: &AppState, result: Result<String, ApiError>| {
        record_metrics(state, "cloudshell", &name, started, result.as_ref().err());
        reply(&request_id, result)
    };
    if incoming.method != Method::POST {
        return finish(
            &state,
            Err(ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "ValidationException",
                "CloudShell operations are called with POST.",
            )),
        );
    }

    let signed = incoming.headers.contains_key(header::AUTHORIZATION)
        || incoming
            .uri
            .query()
            .is_some_and(|q| q.contains("X-Amz-Signature"));
    let authenticated = if signed {
        auth::authenticate(
            &state,
            &incoming.method,
            &incoming.uri,
            &incoming.headers,
            &incoming.body,
            "cloudshell",
        )
        .await
        .map(|(caller, region)| (caller, region, None))
    } else {
        console_caller(&state, &incoming.headers).await
    };
    let (caller, region, console_session) = match authenticated {
        Ok(ok) => ok,
        Err(failure) => {
            let err = auth_failed(
                &state,
                "cloudshell",
                EVENT_SOURCE,
                &name,
                &incoming,
                &request_id,
                failure,
            )
            .await;
            return finish(&state, Err(err));
        }
    };
    let Some(op) = op else {
        return finish(
            &state,
            Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "UnknownOperationException",
                format!("CloudShell has no operation {operation:?}."),
            )),
        );
    };
    let info = request_info(&state, &incoming, &region);
    let origin = Origin {
        console_session: console_session.as_deref(),
    };
    let result = cloudshell::handle(&state, &caller, &info, op, &incoming.body, origin)
        .await
        .map_err(rest_json_error);

    let mut record = Record::api_call(EVENT_SOURCE, name.clone(), region, caller.audit_identity());
    record = with_request(record, &incoming, &request_id)
        .session_credential_from_console(console_session.is_some());
    record = match &result {
        Ok(handled) => {
            let mut r = record.read_only(handled.read_only);
            if let Some(p) = &handled.request_parameters {
                r = r.request_parameters(p.clone());
            }
            if let Some(e) = &handled.response_elements {
                r = r.response_elements(e.clone());
            }
            r
        }
        Err(err) => {
            let mut r = record
                .read_only(op.read_only())
                .error(err.code.clone(), err.message.clone());
            if let Some(id) = environment_id_of(&incoming.body) {
                r = r.request_parameters(serde_json::json!({"EnvironmentId": id}));
            }
            r
        }
    };
    if !audit(&state, record.build()).await {
        return finish(
            &state,
            Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailableException",
                "The audit trail cannot be written; the request was not carried out.",
            )),
        );
    }
    finish(&state, result.map(|h| h.body))
}

/// The `EnvironmentId` a request named, for the records of failed calls.
fn environment_id_of(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v.get("EnvironmentId")?.as_str().map(str::to_string)
}

/// A console request: the session cookie and, since every CloudShell
/// operation is a POST, the CSRF token. The caller is the signed-in user
/// with the session's temporary credentials.
async fn console_caller(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<(Caller, String, Option<String>), auth::AuthFailure> {
    let failure = |status: StatusCode, code: &str, message: &str| auth::AuthFailure {
        error: ApiError::new(status, code, message),
        access_key_id: None,
        user: None,
    };
    let Some((hash, session)) = signin::session_of(state, headers).await else {
        return Err(failure(
            StatusCode::FORBIDDEN,
            "MissingAuthenticationToken",
            "Sign in to the console, or sign the request with SigV4.",
        ));
    };
    if !signin::csrf_ok(&session, headers) {
        return Err(auth::AuthFailure {
            user: session.iam_user().cloned(),
            ..failure(
                StatusCode::FORBIDDEN,
                "InvalidCsrfToken",
                "The request lacks the console's CSRF token.",
            )
        });
    }
    let region = headers
        .get(REGION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| state.default_region().to_string());
    if !state.config.has_region(&region) {
        return Err(auth::AuthFailure {
            user: session.iam_user().cloned(),
            ..failure(
                StatusCode::BAD_REQUEST,
                "ValidationException",
                &format!(
                    "The region {region} is not served here; the regions are {}.",
                    state.config.regions.join(", ")
                ),
            )
        });
    }
    let creds = state
        .store
        .session_credentials(&hash)
        .await
        .map_err(|e| auth::AuthFailure {
            error: ApiError::internal(&e),
            access_key_id: None,
            user: None,
        })?;
    let Some((access_key_id, _, _, _)) = creds else {
        return Err(failure(
            StatusCode::FORBIDDEN,
            "ExpiredToken",
            "The console session has expired; sign in again.",
        ));
    };
    let caller_session = Some(CallerSession {
        issued_at: chrono::DateTime::from_timestamp_millis(session.expires_at - signin::SESSION_MS)
            .unwrap_or_default(),
        mfa_authenticated: session.mfa_used,
    });
    let arn = session.arn();
    let caller = match session.principal {
        ConsolePrincipal::User(user) => Caller {
            arn,
            account_id: user.account_id.clone(),
            principal_id: user.user_id.clone(),
            user_name: user.name.clone(),
            user_id: user.user_id.clone(),
            access_key_id,
            session: caller_session,
            role: None,
        },
        ConsolePrincipal::Role {
            role,
            session_name,
            sso_user_id,
        } => Caller {
            arn,
            account_id: role.account_id.clone(),
            principal_id: format!("{}:{session_name}", role.role_id),
            user_name: String::new(),
            user_id: String::new(),
            access_key_id,
            session: caller_session,
            role: Some(RoleSession {
                role_arn: role.arn(),
                role_id: role.role_id,
                role_name: role.name,
                session_name,
                sso_user_id: Some(sso_user_id),
            }),
        },
    };
    Ok((caller, region, Some(hash)))
}

/// Renames the shared error codes to the REST-JSON services' names.
fn rest_json_error(mut err: ApiError) -> ApiError {
    let renamed = match err.code.as_str() {
        "AccessDenied" => Some("AccessDeniedException"),
        "ValidationError" => Some("ValidationException"),
        "InternalFailure" => Some("InternalServerException"),
        _ => None,
    };
    if let Some(code) = renamed {
        err.code = code.to_string();
    }
    err
}

fn reply(request_id: &str, result: Result<String, ApiError>) -> Response {
    let rid = HeaderValue::from_str(request_id).unwrap_or_else(|_| HeaderValue::from_static(""));
    let json = HeaderValue::from_static("application/json");
    match result {
        Ok(body) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, json),
                (header::HeaderName::from_static("x-amzn-requestid"), rid),
            ],
            body,
        )
            .into_response(),
        Err(err) => {
            let err = rest_json_error(err);
            let body = serde_json::json!({"code": err.code, "message": err.message}).to_string();
            let kind = HeaderValue::from_str(&err.code)
                .unwrap_or_else(|_| HeaderValue::from_static("InternalServerException"));
            (
                err.status,
                [
                    (header::CONTENT_TYPE, json),
                    (header::HeaderName::from_static("x-amzn-requestid"), rid),
                    (header::HeaderName::from_static("x-amzn-errortype"), kind),
                ],
                body,
            )
                .into_response()
        }
    }
}
