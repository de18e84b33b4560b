//! CloudTrail (`/cloudtrail/`, JSON 1.1, `CloudTrail_20131101`):
//! `LookupEvents` over the account's audit history.

use seashell_audit::lookup::{LookupEventsRequest, LookupQuery};
use serde_json::json;

use crate::authz::{self, RequestInfo};
use crate::caller::Caller;
use crate::error::ApiError;
use crate::services::Handled;
use crate::state::AppState;

/// The `X-Amz-Target` prefix of CloudTrail operations.
pub const TARGET_PREFIX: &str = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.";
/// The CloudTrail event source.
pub const EVENT_SOURCE: &str = "cloudtrail.amazonaws.com";

/// Handles one CloudTrail operation.
pub async fn handle(
    state: &AppState,
    caller: &Caller,
    info: &RequestInfo,
    operation: &str,
    body: &[u8],
) -> Result<Handled, ApiError> {
    match operation {
        "LookupEvents" => lookup_events(state, caller, info, body).await,
        other => Err(ApiError::new(
            http::StatusCode::BAD_REQUEST,
            "UnknownOperationException",
            format!("Unknown operation {other}"),
        )),
    }
}

async fn lookup_events(
    state: &AppState,
    caller: &Caller,
    info: &RequestInfo,
    body: &[u8],
) -> Result<Handled, ApiError> {
    let request: LookupEventsRequest = if body.is_empty() {
        LookupEventsRequest::default()
    } else {
        serde_json::from_slice(body).map_err(|e| {
            ApiError::new(
                http::StatusCode::BAD_REQUEST,
                "SerializationException",
                format!("The request body is not a valid LookupEvents request: {e}"),
            )
        })?
    };
    let trail = format!(
        "arn:aws:cloudtrail:{}:{}:trail/*",
        info.region, caller.account_id
    );
    authz::authorize(
        &state.store,
        caller,
        info,
        "cloudtrail:LookupEvents",
        &trail,
        &[],
    )
    .await?;
    let query = LookupQuery::from_request(&request)
        .map_err(|e| ApiError::new(http::StatusCode::BAD_REQUEST, e.code(), e.to_string()))?;
    // Records written a moment ago may still be on their way to the index.
    state.indexer.flush().await;
    let page = state
        .store
        .lookup_events(&caller.account_id, &query)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let body = serde_json::to_string(&page).map_err(|e| ApiError::internal(&e))?;
    let mut parameters = serde_json::Map::new();
    if let Some(a) = request.lookup_attributes.first() {
        parameters.insert(
            "lookupAttributes".into(),
            json!([{"attributeKey": a.key, "attributeValue": a.value}]),
        );
    }
    if let Some(t) = request.start_time {
        parameters.insert("startTime".into(), json!(t));
    }
    if let Some(t) = request.end_time {
        parameters.insert("endTime".into(), json!(t));
    }
    Ok(Handled {
        body,
        read_only: true,
        request_parameters: Some(serde_json::Value::Object(parameters)),
        response_elements: None,
    })
}
