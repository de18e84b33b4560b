//! The AWS JSON 1.1 protocol path (CloudTrail, Organizations, Identity
//! Store, SSO Admin): the operation named by
//! `X-Amz-Target`, a JSON body, JSON errors with `__type`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use seashell_audit::Record;

use super::{
    audit, auth_failed, is_read_only, record_metrics, request_info, with_request, Incoming,
};
use crate::auth;
use crate::authz::RequestInfo;
use crate::caller::Caller;
use crate::error::ApiError;
use crate::services::{cloudtrail, identitystore, organizations, sso_admin, Handled};
use crate::state::AppState;

const JSON_11: &str = "application/x-amz-json-1.1";

/// A JSON 1.1 service: how its requests are named, signed and recorded.
#[derive(Debug, Clone, Copy)]
pub(super) enum JsonApi {
    CloudTrail,
    Organizations,
    IdentityStore,
    SsoAdmin,
}

impl JsonApi {
    /// SigV4 service name (botocore's `signingName`) and metrics label.
    fn signing_name(self) -> &'static str {
        match self {
            JsonApi::CloudTrail => "cloudtrail",
            JsonApi::Organizations => "organizations",
            JsonApi::IdentityStore => "identitystore",
            JsonApi::SsoAdmin => "sso",
        }
    }

    fn target_prefix(self) -> &'static str {
        match self {
            JsonApi::CloudTrail => cloudtrail::TARGET_PREFIX,
            JsonApi::Organizations => organizations::TARGET_PREFIX,
            JsonApi::IdentityStore => identitystore::TARGET_PREFIX,
            JsonApi::SsoAdmin => sso_admin::TARGET_PREFIX,
        }
    }

    fn event_source(self) -> &'static str {
        match self {
            JsonApi::CloudTrail => cloudtrail::EVENT_SOURCE,
            JsonApi::Organizations => organizations::EVENT_SOURCE,
            JsonApi::IdentityStore => identitystore::EVENT_SOURCE,
            JsonApi::SsoAdmin => sso_admin::EVENT_SOURCE,
        }
    }

    /// The member of error bodies holding the message: CloudTrail's model
    /// names it `message`, the others `Message` (botocore reads either).
    fn message_key(self) -> &'static str {
        match self {
            JsonApi::CloudTrail => "message",
            _ => "Message",
        }
    }

    async fn handle(
        self,
        state: &AppState,
        caller: &Caller,
        info: &RequestInfo,
        operation: &str,
        body: &[u8],
    ) -> Result<Handled, ApiError> {
        match self {
            JsonApi::CloudTrail => cloudtrail::handle(state, caller, info, operation, body).await,
            JsonApi::Organizations => {
                organizations::handle(state, caller, info, operation, body).await
            }
            JsonApi::IdentityStore => {
                identitystore::handle(state, caller, info, operation, body).await
            }
            JsonApi::SsoAdmin => sso_admin::handle(state, caller, info, operation, body).await,
        }
    }
}

/// `POST /cloudtrail/`.
pub(super) async fn cloudtrail_endpoint(
    state: State<Arc<AppState>>,
    peer: ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    serve(JsonApi::CloudTrail, state, peer, method, uri, headers, body).await
}

/// `POST /organizations/`.
pub(super) async fn organizations_endpoint(
    state: State<Arc<AppState>>,
    peer: ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    serve(
        JsonApi::Organizations,
        state,
        peer,
        method,
        uri,
        headers,
        body,
    )
    .await
}

/// `POST /identitystore/`.
pub(super) async fn identitystore_endpoint(
    state: State<Arc<AppState>>,
    peer: ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    serve(
        JsonApi::IdentityStore,
        state,
        peer,
        method,
        uri,
        headers,
        body,
    )
    .await
}

/// `POST /sso-admin/`.
pub(super) async fn sso_admin_endpoint(
    state: State<Arc<AppState>>,
    peer: ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    serve(JsonApi::SsoAdmin, state, peer, method, uri, headers, body).await
}

/// Authenticates, dispatches, audits and measures one JSON 1.1 request.
async fn serve(
    api: JsonApi,
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let request_id = uuid::Uuid::new_v4().to_string();
    let service = api.signing_name();
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
        .and_then(|t| t.strip_prefix(api.target_prefix()))
        .unwrap_or("unknown")
        .to_string();
    let span = tracing::info_span!("request", service = service, operation = %operation, request_id = %request_id);
    let _enter = span.enter();
    let finish = |state: &AppState, result: Result<String, ApiError>| {
        record_metrics(state, service, &operation, started, result.as_ref().err());
        reply(api, &request_id, result)
    };

    let authenticated = auth::authenticate(
        &state,
        &incoming.method,
        &incoming.uri,
        &incoming.headers,
        &incoming.body,
        service,
    )
    .await;
    let (caller, region) = match authenticated {
        Ok(ok) => ok,
        Err(failure) => {
            let err = auth_failed(
                &state,
                service,
                api.event_source(),
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
    let result = api
        .handle(&state, &caller, &info, &operation, &incoming.body)
        .await
        .map_err(|mut err| {
            // The authorization path names a denial as the Query services
            // do; these models call it AccessDeniedException.
            if err.code == "AccessDenied" && !matches!(api, JsonApi::CloudTrail) {
                err.code = "AccessDeniedException".to_string();
            }
            err
        });
    let mut record = Record::api_call(
        api.event_source(),
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
            if let Some(e) = &handled.response_elements {
                r = r.response_elements(e.clone());
            }
            r
        }
        Err(err) => record
            .read_only(is_read_only(&operation))
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

fn reply(api: JsonApi, request_id: &str, result: Result<String, ApiError>) -> Response {
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
            let mut fields = serde_json::Map::new();
            fields.insert("__type".into(), err.code.clone().into());
            fields.insert(api.message_key().into(), err.message.clone().into());
            let body = serde_json::Value::Object(fields).to_string();
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
