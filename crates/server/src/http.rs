//! The HTTP surface: health and metrics endpoints, and each service under
//! its path prefix (DESIGN §2).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::Router;
use seashell_audit::{Record, Sink, UserIdentity};
use tower_http::trace::TraceLayer;

pub mod body_deadline;
pub mod client_address;
mod json;
mod rest_json;
pub mod sso;

pub use rest_json::REGION_HEADER;

use crate::authz::RequestInfo;
use crate::caller::Caller;
use crate::error::ApiError;
use crate::metrics::{AuthFailureLabels, OperationLabels, RequestLabels};
use crate::metrics_access::Verdict;
use crate::protocol::query::{self, QueryRequest};
use crate::services::{iam, sts, Handled};
use crate::state::AppState;
use crate::{auth, signin};

/// Builds the router.
pub fn router(state: Arc<AppState>) -> Router {
    let limit = state.config.max_body_bytes;
    let https = state.config.serves_https();
    let body_deadline = state.config.limits.body_deadline();
    let proxies = state.trusted_proxies.clone();
    let router = Router::new()
        .route("/signin", get(signin::signin_form).post(signin::signin))
        .route("/signin/password", post(signin::change_password))
        .route("/signout", post(signin::signout))
        .route("/whoami", get(signin::whoami))
        .merge(crate::console::routes())
        .merge(crate::portal::routes())
        .merge(crate::external_idp::routes())
        .merge(sso::routes())
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/cloudtrail", any(json::cloudtrail_endpoint))
        .route("/cloudtrail/", any(json::cloudtrail_endpoint))
        .route("/organizations", any(json::organizations_endpoint))
        .route("/organizations/", any(json::organizations_endpoint))
        .route("/identitystore", any(json::identitystore_endpoint))
        .route("/identitystore/", any(json::identitystore_endpoint))
        .route("/sso-admin", any(json::sso_admin_endpoint))
        .route("/sso-admin/", any(json::sso_admin_endpoint))
        .route("/sts", any(sts_endpoint))
        .route("/sts/", any(sts_endpoint))
        .route("/iam", any(iam_endpoint))
        .route("/iam/", any(iam_endpoint))
        .route(
            "/cloudshell/model/service-2.json",
            get(crate::services::cloudshell::model::service_model),
        )
        .route(
            "/cloudshell/openapi.json",
            get(crate::services::cloudshell::openapi::document),
        )
        .route(
            "/cloudshell/{operation}",
            any(rest_json::cloudshell_endpoint),
        )
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn(move |req, next| {
            refuse_oversized(limit, req, next)
        }))
        // Uploads stream through to the agent: no body limit but the home's
        // size.
        .route(
            "/v1/files/{environment_id}",
            axum::routing::put(crate::services::cloudshell::files::upload)
                .get(crate::services::cloudshell::files::download),
        )
        .merge(crate::gateway::routes());
    // Outside everything that reads a body, uploads included.
    let router = match body_deadline {
        Some(deadline) => router.layer(axum::middleware::from_fn(move |req, next| {
            body_deadline::enforce(deadline, req, next)
        })),
        None => router,
    };
    router
        .layer(axum::middleware::from_fn(move |req, next| {
            client_address::resolve(proxies.clone(), req, next)
        }))
        .layer(axum::middleware::map_response(move |response| {
            strict_transport(https, response)
        }))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .with_state(state)
}

/// Browsers that reached the server over HTTPS keep to HTTPS for a year
/// (HSTS), so a later `http://` link cannot be used to strip it.
async fn strict_transport(https: bool, mut response: Response) -> Response {
    if https {
        response.headers_mut().insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    response
}

/// The span of every request: method and path, never the query, which
/// carries pre-signed signatures, security tokens, data-channel tokens and
/// sign-in codes.
fn request_span<B>(req: &http::Request<B>) -> tracing::Span {
    tracing::debug_span!(
        "request",
        method = %req.method(),
        path = %req.uri().path(),
        version = ?req.version(),
    )
}

/// Bodies declared larger than this are read and thrown away before the
/// refusal; larger still, the connection is simply closed.
const DRAIN_MAX: u64 = 16 << 20;

/// Refuses a request whose declared body exceeds `limit` with 413, after
/// reading the body it declared (up to [`DRAIN_MAX`]): a server that
/// answers and closes with unread bytes waiting makes the kernel reset the
/// connection, and the client may lose the answer with it.
async fn refuse_oversized(
    limit: usize,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(len) if len > limit as u64 => {
            if len <= DRAIN_MAX {
                use futures_util::StreamExt as _;
                let mut body = req.into_body().into_data_stream();
                while let Some(Ok(_)) = body.next().await {}
            }
            (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("The request body is larger than {limit} bytes.\n"),
            )
                .into_response()
        }
        _ => next.run(req).await,
    }
}

/// Liveness: the process answers.
async fn healthz() -> &'static str {
    "ok\n"
}

/// Readiness: the database answers.
async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n").into_response()
        }
    }
}

/// Prometheus metrics, for the addresses and the token of `[metrics]`.
async fn metrics(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    match state.metrics_access.check(peer.ip(), authorization) {
        Verdict::Allow => {}
        verdict => {
            tracing::info!(%peer, ?verdict, "metrics refused");
            return (
                StatusCode::FORBIDDEN,
                "The metrics are readable from the addresses of metrics.allowed_addresses \
                 or with the bearer token of metrics.token_file, never from an environment.\n",
            )
                .into_response();
        }
    }
    let lag = state.audit.lag();
    state
        .metrics
        .audit_pending
        .set(i64::try_from(lag.pending_records).unwrap_or(i64::MAX));
    state.metrics.audit_oldest_pending_seconds.set(
        lag.oldest_pending_age
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0),
    );
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        )],
        state.metrics.encode(),
    )
        .into_response()
}

/// A Query-protocol service.
#[derive(Debug, Clone, Copy)]
struct QueryService {
    /// SigV4 service name and metrics label.
    name: &'static str,
    event_source: &'static str,
    version: &'static str,
    xmlns: &'static str,
}

const STS: QueryService = QueryService {
    name: "sts",
    event_source: sts::EVENT_SOURCE,
    version: sts::VERSION,
    xmlns: sts::XMLNS,
};

const IAM: QueryService = QueryService {
    name: "iam",
    event_source: iam::EVENT_SOURCE,
    version: iam::VERSION,
    xmlns: iam::XMLNS,
};

/// The parts of a request a service needs.
struct Incoming {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
    peer: SocketAddr,
}

async fn sts_endpoint(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let incoming = Incoming {
        method,
        uri,
        headers,
        body,
        peer,
    };
    serve_query(
        &state,
        STS,
        incoming,
        async |caller, info, req, request_id| {
            sts::handle(&state, caller, info, req, request_id).await
        },
    )
    .await
}

async fn iam_endpoint(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let incoming = Incoming {
        method,
        uri,
        headers,
        body,
        peer,
    };
    serve_query(
        &state,
        IAM,
        incoming,
        async |caller, info, req, request_id| {
            iam::handle(&state, caller, info, req, request_id).await
        },
    )
    .await
}

/// Counts, records and returns the error of a request that failed
/// authentication. The record names who the request claimed to be, so
/// failed attempts against a key or user can be found in the trail.
async fn auth_failed(
    state: &AppState,
    service: &str,
    event_source: &str,
    action: &str,
    incoming: &Incoming,
    request_id: &str,
    failure: auth::AuthFailure,
) -> ApiError {
    let err = failure.error;
    state
        .metrics
        .auth_failures
        .get_or_create(&AuthFailureLabels {
            service: service.to_string(),
            code: err.code.clone(),
        })
        .inc();
    let identity = match (&failure.user, &failure.access_key_id) {
        (Some(user), Some(key)) => {
            UserIdentity::iam_user(&user.account_id, &user.name, &user.user_id)
                .with_access_key_id(key.clone())
        }
        (None, Some(key)) => {
            UserIdentity::new(seashell_audit::IdentityType::Unknown).with_access_key_id(key.clone())
        }
        _ => UserIdentity::new(seashell_audit::IdentityType::Unknown),
    };
    let record = Record::api_call(event_source, action, state.default_region(), identity);
    let record = with_request(record, incoming, request_id)
        .read_only(is_read_only(action))
        .error(err.code.clone(), err.message.clone());
    audit(state, record.build()).await;
    err
}

/// The circumstances of an authenticated request, for condition keys.
fn request_info(state: &AppState, incoming: &Incoming, region: &str) -> RequestInfo {
    RequestInfo::new(incoming.peer.ip(), state.config.tls_cert.is_some(), region)
}

/// Authenticates, decodes, dispatches, audits and measures one Query request.
async fn serve_query(
    state: &AppState,
    service: QueryService,
    incoming: Incoming,
    handler: impl AsyncFnOnce(&Caller, &RequestInfo, &QueryRequest, &str) -> Result<Handled, ApiError>,
) -> Response {
    let started = Instant::now();
    let request_id = uuid::Uuid::new_v4().to_string();
    let query_string = incoming.uri.query().unwrap_or_default();
    // The operation name is known before authentication only for metrics and
    // the audit record; nothing is acted on until the caller is verified.
    let action = QueryRequest::decode(query_string, &incoming.body, service.version)
        .map(|r| r.action)
        .unwrap_or_else(|_| "unknown".to_string());
    let span = tracing::info_span!("request", service = service.name, operation = %action, request_id = %request_id);
    let _enter = span.enter();

    let authenticated = auth::authenticate(
        state,
        &incoming.method,
        &incoming.uri,
        &incoming.headers,
        &incoming.body,
        service.name,
    )
    .await;
    let (caller, region) = match authenticated {
        Ok(ok) => ok,
        Err(failure) => {
            let err = auth_failed(
                state,
                service.name,
                service.event_source,
                &action,
                &incoming,
                &request_id,
                failure,
            )
            .await;
            return finish(state, service, &action, started, &request_id, Err(err));
        }
    };
    tracing::debug!(caller = %caller.arn, "authenticated");

    let result = match QueryRequest::decode(query_string, &incoming.body, service.version) {
        Ok(req) => {
            let info = request_info(state, &incoming, &region);
            handler(&caller, &info, &req, &request_id).await
        }
        Err(e) => Err(ApiError::validation(e.to_string())),
    };

    let mut record = Record::api_call(
        service.event_source,
        action.clone(),
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
            .read_only(is_read_only(&action))
            .error(err.code.clone(), err.message.clone()),
    };
    // The record is durable before the reply leaves: a crash after a reply
    // never loses the record of the call it answered.
    if !audit(state, record.build()).await {
        return finish(
            state,
            service,
            &action,
            started,
            &request_id,
            Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                "The audit trail cannot be written; the request was not carried out.",
            )),
        );
    }
    finish(
        state,
        service,
        &action,
        started,
        &request_id,
        result.map(|h| h.body),
    )
}

/// Whether an operation only reads, by AWS's naming (used for the records of
/// failed calls; a successful call's handler says so itself). CloudTrail
/// counts STS's credential-issuing calls as read-only too.
fn is_read_only(action: &str) -> bool {
    [
        "Get",
        "List",
        "Describe",
        "Lookup",
        "Simulate",
        "AssumeRole",
    ]
    .iter()
    .any(|p| action.starts_with(p))
}

fn with_request(
    record: seashell_audit::record::RecordBuilder,
    incoming: &Incoming,
    request_id: &str,
) -> seashell_audit::record::RecordBuilder {
    let user_agent = incoming
        .headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    record
        .source_ip(incoming.peer.ip().to_string())
        .user_agent(user_agent)
        .request_id(request_id)
}

/// Writes an audit record; false if it could not be made durable.
pub(crate) async fn audit(state: &AppState, record: seashell_audit::RedactedRecord) -> bool {
    match state.audit.write(&record).await {
        Ok(()) => {
            state.indexer.index(record);
            true
        }
        Err(e) => {
            tracing::error!(error = %e, "audit record could not be written");
            false
        }
    }
}

/// Counts the request and its latency.
fn record_metrics(
    state: &AppState,
    service: &str,
    action: &str,
    started: Instant,
    error: Option<&ApiError>,
) {
    let outcome = error.map_or_else(|| "ok".to_string(), |e| e.code.clone());
    state
        .metrics
        .requests
        .get_or_create(&RequestLabels {
            service: service.to_string(),
            operation: action.to_string(),
            outcome,
        })
        .inc();
    state
        .metrics
        .latency
        .get_or_create(&OperationLabels {
            service: service.to_string(),
            operation: action.to_string(),
        })
        .observe(started.elapsed().as_secs_f64());
}

fn finish(
    state: &AppState,
    service: QueryService,
    action: &str,
    started: Instant,
    request_id: &str,
    result: Result<String, ApiError>,
) -> Response {
    record_metrics(state, service.name, action, started, result.as_ref().err());
    let xml = HeaderValue::from_static("text/xml");
    let rid = HeaderValue::from_str(request_id).unwrap_or_else(|_| HeaderValue::from_static(""));
    match result {
        Ok(body) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, xml),
                (header::HeaderName::from_static("x-amzn-requestid"), rid),
            ],
            body,
        )
            .into_response(),
        Err(err) => {
            let body = query::error(
                service.xmlns,
                err.fault(),
                &err.code,
                &err.message,
                request_id,
            );
            (
                err.status,
                [
                    (header::CONTENT_TYPE, xml),
                    (header::HeaderName::from_static("x-amzn-requestid"), rid),
                ],
                body,
            )
                .into_response()
        }
    }
}
