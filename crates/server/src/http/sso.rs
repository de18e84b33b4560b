//! The REST-JSON paths of IAM Identity Center sign-in: SSO-OIDC under
//! `/sso-oidc/` and the SSO portal API under `/sso/` (DESIGN §2). Neither
//! is signed; each request is measured and audited with the identity-store
//! user it concerns.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use seashell_audit::{IdentityType, Record, UserIdentity};
use serde_json::Value;

use super::{audit, record_metrics};
use crate::error::ApiError;
use crate::services::{sso_oidc, sso_portal};
use crate::state::AppState;
use crate::store::sso::{SsoToken, SsoUser};
use tracing::Instrument;

/// CloudTrail's event source for SSO-OIDC.
pub const OIDC_EVENT_SOURCE: &str = "sso-oauth.amazonaws.com";
/// CloudTrail's event source for the portal API and the portal.
pub const PORTAL_EVENT_SOURCE: &str = "sso.amazonaws.com";

/// The routes of both services.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/sso-oidc/client/register", post(register_client))
        .route(
            "/sso-oidc/device_authorization",
            post(start_device_authorization),
        )
        .route("/sso-oidc/token", post(create_token))
        .route("/sso/federation/credentials", get(get_role_credentials))
        .route("/sso/assignment/accounts", get(list_accounts))
        .route("/sso/assignment/roles", get(list_account_roles))
        .route("/sso/logout", post(logout))
}

/// The audit identity of an identity-store user.
pub async fn identity_of(state: &AppState, user: &SsoUser) -> UserIdentity {
    match state
        .store
        .sso_instance(Some(&user.identity_store_id))
        .await
    {
        Ok(Some(instance)) => UserIdentity::identity_center_user(
            &instance.management_account,
            &user.identity_store_id,
            &user.user_id,
            &user.user_name,
        ),
        _ => UserIdentity::new(IdentityType::IdentityCenterUser),
    }
}

/// The request's circumstances, for the audit record.
struct Call<'a> {
    service: &'static str,
    event_source: &'static str,
    operation: &'static str,
    read_only: bool,
    peer: SocketAddr,
    headers: &'a HeaderMap,
    started: Instant,
    request_id: String,
}

impl Call<'_> {
    fn record(
        &self,
        state: &AppState,
        identity: UserIdentity,
    ) -> seashell_audit::record::RecordBuilder {
        let user_agent = self
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        Record::api_call(
            self.event_source,
            self.operation,
            state.default_region(),
            identity,
        )
        .source_ip(self.peer.ip().to_string())
        .user_agent(user_agent)
        .request_id(&self.request_id)
        .read_only(self.read_only)
    }

    /// Audits and answers. A record that cannot be written turns the answer
    /// into a 503, as for every other service.
    async fn finish(
        self,
        state: &AppState,
        outcome: Result<(Value, Option<SsoUser>, Value, Option<Value>), Failure>,
    ) -> Response {
        let (user, parameters) = match &outcome {
            Ok((_, user, parameters, _)) => (user.clone(), Some(parameters.clone())),
            Err(_) => (None, None),
        };
        let identity = match &user {
            Some(user) => identity_of(state, user).await,
            None => UserIdentity::new(IdentityType::Unknown),
        };
        let mut record = self.record(state, identity);
        if let Some(parameters) = parameters {
            record = record.request_parameters(parameters);
        }
        match &outcome {
            Ok((_, _, _, Some(elements))) => record = record.response_elements(elements.clone()),
            Ok(_) => {}
            Err(failure) => record = record.error(failure.code(), failure.message()),
        }
        let durable = audit(state, record.build()).await;
        let code = outcome.as_ref().err().map(|f| ApiError {
            status: f.status(),
            code: f.code().to_string(),
            message: String::new(),
        });
        record_metrics(
            state,
            self.service,
            self.operation,
            self.started,
            code.as_ref(),
        );
        let rid = HeaderValue::from_str(&self.request_id)
            .unwrap_or_else(|_| HeaderValue::from_static(""));
        let json = HeaderValue::from_static("application/json");
        let request_id_header = header::HeaderName::from_static("x-amzn-requestid");
        if !durable {
            let failure = Failure::Api(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailableException",
                "The audit trail cannot be written; the request was not carried out.",
            ));
            return failure.into_response(rid);
        }
        match outcome {
            Ok((body, ..)) => (
                StatusCode::OK,
                [
                    (header::CONTENT_TYPE, json),
                    (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
                    (request_id_header, rid),
                ],
                body.to_string(),
            )
                .into_response(),
            Err(failure) => failure.into_response(rid),
        }
    }
}

/// A failure in either service's error shape.
enum Failure {
    Oidc(sso_oidc::OidcError),
    Api(ApiError),
}

impl Failure {
    fn status(&self) -> StatusCode {
        match self {
            Failure::Oidc(e) => e.status,
            Failure::Api(e) => e.status,
        }
    }

    fn code(&self) -> &str {
        match self {
            Failure::Oidc(e) => e.exception,
            Failure::Api(e) => &e.code,
        }
    }

    fn message(&self) -> String {
        match self {
            Failure::Oidc(e) => e.description.clone(),
            Failure::Api(e) => e.message.clone(),
        }
    }

    fn into_response(self, request_id: HeaderValue) -> Response {
        let body = match &self {
            Failure::Oidc(e) => e.body(),
            Failure::Api(e) => serde_json::json!({"message": e.message}),
        };
        let kind = HeaderValue::from_str(self.code())
            .unwrap_or_else(|_| HeaderValue::from_static("InternalServerException"));
        (
            self.status(),
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                ),
                (
                    header::HeaderName::from_static("x-amzn-requestid"),
                    request_id,
                ),
                (header::HeaderName::from_static("x-amzn-errortype"), kind),
            ],
            body.to_string(),
        )
            .into_response()
    }
}

fn call<'a>(
    service: &'static str,
    event_source: &'static str,
    operation: &'static str,
    read_only: bool,
    peer: SocketAddr,
    headers: &'a HeaderMap,
) -> Call<'a> {
    Call {
        service,
        event_source,
        operation,
        read_only,
        peer,
        headers,
        started: Instant::now(),
        request_id: uuid::Uuid::new_v4().to_string(),
    }
}

/// Refuses a request from an address over its SSO-OIDC rate (docs/security.md
/// §5.14) before anything is read or written; not audited, so a flood grows
/// neither the tables nor the journal. Measured as `SlowDownException`.
fn throttled(state: &AppState, call: &Call<'_>) -> Option<Response> {
    let wait = state.limits.sso_oidc.check(call.peer.ip()).err()?;
    let secs = crate::limits::retry_after_secs(wait);
    let failure = sso_oidc::OidcError::slow_down(secs);
    tracing::debug!(peer = %call.peer, "SSO-OIDC request throttled");
    record_metrics(
        state,
        call.service,
        call.operation,
        call.started,
        Some(&ApiError {
            status: failure.status,
            code: failure.exception.to_string(),
            message: String::new(),
        }),
    );
    let rid =
        HeaderValue::from_str(&call.request_id).unwrap_or_else(|_| HeaderValue::from_static(""));
    let mut response = Failure::Oidc(failure).into_response(rid);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    Some(response)
}

macro_rules! oidc_handler {
    ($name:ident, $operation:literal, $service_fn:path, $rate_limited:literal) => {
        async fn $name(
            State(state): State<Arc<AppState>>,
            ConnectInfo(peer): ConnectInfo<SocketAddr>,
            headers: HeaderMap,
            body: Bytes,
        ) -> Response {
            let call = call("sso-oidc", OIDC_EVENT_SOURCE, $operation, false, peer, &headers);
            let span = tracing::info_span!("request", service = "sso-oidc", operation = $operation, request_id = %call.request_id);
            async {
                if $rate_limited {
                    if let Some(refused) = throttled(&state, &call) {
                        return refused;
                    }
                }
                let outcome = $service_fn(&state, &body)
                    .await
                    .map(|r| (r.body, r.user, r.request_parameters, None))
                    .map_err(Failure::Oidc);
                call.finish(&state, outcome).await
            }
            .instrument(span)
            .await
        }
    };
}

// Registering a client and starting a device authorization are unauthenticated
// and each writes a row: rate-limited. CreateToken needs a client secret and
// has its own polling interval (SlowDownException per device code).
oidc_handler!(
    register_client,
    "RegisterClient",
    sso_oidc::register_client,
    true
);
oidc_handler!(
    start_device_authorization,
    "StartDeviceAuthorization",
    sso_oidc::start_device_authorization,
    true
);
oidc_handler!(create_token, "CreateToken", sso_oidc::create_token, false);

type Params = Query<HashMap<String, String>>;

/// Runs a portal API operation for the request's token.
async fn portal<F, Fut>(
    state: Arc<AppState>,
    peer: SocketAddr,
    headers: HeaderMap,
    operation: &'static str,
    read_only: bool,
    run: F,
) -> Response
where
    F: FnOnce(Arc<AppState>, SsoToken) -> Fut,
    Fut: std::future::Future<Output = Result<sso_portal::PortalReply, ApiError>>,
{
    let call = call(
        "sso",
        PORTAL_EVENT_SOURCE,
        operation,
        read_only,
        peer,
        &headers,
    );
    let span =
        tracing::info_span!("request", service = "sso", operation, request_id = %call.request_id);
    async {
        let token = headers
            .get(sso_portal::TOKEN_HEADER)
            .and_then(|v| v.to_str().ok());
        let outcome = match sso_portal::token_of(&state, token).await {
            Ok(token) => run(state.clone(), token).await.map(|r| {
                (
                    r.body,
                    Some(r.user),
                    r.request_parameters,
                    r.response_elements,
                )
            }),
            Err(e) => Err(e),
        }
        .map_err(Failure::Api);
        call.finish(&state, outcome).await
    }
    .instrument(span)
    .await
}

async fn list_accounts(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Params,
) -> Response {
    portal(
        state,
        peer,
        headers,
        "ListAccounts",
        true,
        |state, token| async move {
            sso_portal::list_accounts(
                &state,
                &token,
                q.get("next_token").map(String::as_str),
                q.get("max_result").map(String::as_str),
            )
            .await
        },
    )
    .await
}

async fn list_account_roles(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Params,
) -> Response {
    portal(
        state,
        peer,
        headers,
        "ListAccountRoles",
        true,
        |state, token| async move {
            sso_portal::list_account_roles(
                &state,
                &token,
                q.get("account_id").map(String::as_str),
                q.get("next_token").map(String::as_str),
                q.get("max_result").map(String::as_str),
            )
            .await
        },
    )
    .await
}

async fn get_role_credentials(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Params,
) -> Response {
    portal(
        state,
        peer,
        headers,
        "GetRoleCredentials",
        false,
        |state, token| async move {
            sso_portal::get_role_credentials(
                &state,
                &token,
                q.get("account_id").map(String::as_str),
                q.get("role_name").map(String::as_str),
            )
            .await
        },
    )
    .await
}

async fn logout(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    portal(
        state,
        peer,
        headers,
        "Logout",
        false,
        |state, token| async move { sso_portal::logout(&state, &token).await },
    )
    .await
}
