//! The AWS JSON 1.1 protocol path (CloudTrail): the operation named by
//! `X-Amz-Target`, a JSON body, JSON errors with `__type`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use seashell_audit::Record;

use super::{audit, auth_failed, record_metrics, request_info, with_request, Incoming};
use crate::auth;
use crate::error::ApiError;
use crate::services::cloudtrail;
use crate::state::AppState;

const JSON_11: &str = "application/x-amz-json-1.1";

/// `POST /cloudtrail/`.
pub(super) async fn cloudtrail_endpoint(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
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
    let operation = incoming
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.strip_prefix(cloudtrail::TARGET_PREFIX))
        .unwrap_or("unknown")
        .to_string();
    let span = tracing::info_span!("request", service = "cloudtrail", operation = %operation, request_id = %request_id);
    let _enter = span.enter();
    let finish = |state: &AppState, result: Result<String, ApiError>| {
        record_metrics(
            state,
            "cloudtrail",
            &operation,
            started,
            result.as_ref().err(),
        );
        reply(&request_id, result)
    };

    let authenticated = auth::authenticate(
        &state,
        &incoming.method,
        &incoming.uri,
        &incoming.headers,
        &incoming.body,
        "cloudtrail",
    )
    .await;
    let (caller, region) = match authenticated {
        Ok(ok) => ok,
        Err(failure) => {
            let err = auth_failed(
                &state,
                "cloudtrail",
                cloudtrail::EVENT_SOURCE,
                &operation,
                &incoming,
                &request_id,
                failure,
            )
            .await;
            return finish(&state, Err(err));
        }
    };
    let info = request_info(&state, &incoming, &region);
    let result = cloudtrail::handle(&state, &caller, &info, &operation, &incoming.body).await;
    let mut record = Record::api_call(
        cloudtrail::EVENT_SOURCE,
        operation.clone(),
        region,
        caller.audit_identity(),
    );
    record = with_request(record, &incoming, &request_id);
    record = match &result {
        Ok(handled) => {
            let mut r = record.read_only(handled.read_only);
            if let Some(p) = &handled.request_parameters {
                r = r.request_parameters(p.clone());
            }
            r
        }
        Err(err) => record
            .read_only(true)
            .error(err.code.clone(), err.message.clone()),
    };
    if !audit(&state, record.build()).await {
        return finish(
            &state,
            Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                "The audit trail cannot be written; the request was not carried out.",
            )),
        );
    }
    finish(&state, result.map(|h| h.body))
}

fn reply(request_id: &str, result: Result<String, ApiError>) -> Response {
    let rid = HeaderValue::from_str(request_id).unwrap_or_else(|_| HeaderValue::from_static(""));
    let json = HeaderValue::from_static(JSON_11);
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
            let body = serde_json::json!({"__type": err.code, "message": err.message}).to_string();
            let kind = HeaderValue::from_str(&err.code)
                .unwrap_or_else(|_| HeaderValue::from_static("InternalFailure"));
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
