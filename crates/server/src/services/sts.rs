//! STS (`/sts/`, Query protocol, version 2011-06-15): GetCallerIdentity and
//! GetSessionToken.

use chrono::{DateTime, SecondsFormat, Utc};
use http::StatusCode;
use serde_json::json;

use crate::caller::Caller;
use crate::error::ApiError;
use crate::protocol::query::{reply, QueryRequest};
use crate::services::Handled;
use crate::state::AppState;
use crate::store::now_ms;
use crate::{ids, mfa};

/// The XML namespace of STS replies.
pub const XMLNS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";
/// The API version.
pub const VERSION: &str = "2011-06-15";
/// The CloudTrail event source.
pub const EVENT_SOURCE: &str = "sts.amazonaws.com";

/// GetSessionToken's limits, in seconds, as AWS sets them for IAM users.
const SESSION_MIN_S: i64 = 900;
const SESSION_MAX_S: i64 = 129_600;
const SESSION_DEFAULT_S: i64 = 43_200;

/// Handles one STS operation for an authenticated caller.
pub async fn handle(
    state: &AppState,
    caller: &Caller,
    req: &QueryRequest,
    request_id: &str,
) -> Result<Handled, ApiError> {
    match req.action.as_str() {
        // Needs no permission, as in AWS: anyone may ask who they are.
        "GetCallerIdentity" => Ok(Handled {
            body: reply("GetCallerIdentity", XMLNS, request_id, |w| {
                w.element("Arn", &caller.arn)
                    .element("UserId", &caller.principal_id)
                    .element("Account", &caller.account_id);
            }),
            read_only: true,
            request_parameters: None,
            response_elements: None,
        }),
        "GetSessionToken" => get_session_token(state, caller, req, request_id).await,
        other => Err(ApiError::invalid_action(other)),
    }
}

/// Temporary credentials for the calling user, with MFA when a code is given.
/// Like AWS, it needs no permission, and only long-term keys may call it.
async fn get_session_token(
    state: &AppState,
    caller: &Caller,
    req: &QueryRequest,
    request_id: &str,
) -> Result<Handled, ApiError> {
    if caller.session.is_some() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            "Cannot call GetSessionToken with session credentials",
        ));
    }
    let duration = match req.param("DurationSeconds") {
        None => SESSION_DEFAULT_S,
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|d| (SESSION_MIN_S..=SESSION_MAX_S).contains(d))
            .ok_or_else(|| {
                ApiError::validation(format!(
                    "1 validation error detected: Value '{text}' at 'durationSeconds' failed to satisfy \
                     constraint: Member must have value between {SESSION_MIN_S} and {SESSION_MAX_S}"
                ))
            })?,
    };
    let mfa_authenticated = match (req.param("SerialNumber"), req.param("TokenCode")) {
        (None, None) => false,
        (Some(serial), Some(code)) => {
            let denied = || {
                ApiError::new(
                    StatusCode::FORBIDDEN,
                    "AccessDenied",
                    "MultiFactorAuthentication failed with invalid MFA one time pass code. ",
                )
            };
            let device = state
                .store
                .enabled_mfa_device(&caller.user_id)
                .await
                .map_err(|e| ApiError::internal(&e))?
                .filter(|d| d.serial_number == serial)
                .ok_or_else(denied)?;
            let now = u64::try_from(now_ms() / 1000).unwrap_or_default();
            let step = mfa::verify(&device.secret_base32, code, now).ok_or_else(denied)?;
            // A code is good once: a replay is refused like a wrong code.
            let fresh = state
                .store
                .consume_mfa_step(&device.serial_number, step)
                .await
                .map_err(|e| ApiError::internal(&e))?;
            if !fresh {
                return Err(denied());
            }
            true
        }
        _ => {
            return Err(ApiError::validation(
                "SerialNumber and TokenCode must be given together",
            ))
        }
    };
    let access_key_id = ids::temporary_access_key_id();
    let secret = ids::secret_access_key();
    let token = ids::session_token();
    let expires_at = now_ms() + duration * 1000;
    state
        .store
        .create_temporary_credentials(
            &access_key_id,
            &secret,
            &token,
            &caller.user_id,
            None,
            mfa_authenticated,
            expires_at,
        )
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let expiration = DateTime::<Utc>::from_timestamp_millis(expires_at)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Secs, true);
    let body = reply("GetSessionToken", XMLNS, request_id, |w| {
        w.open("Credentials", None)
            .element("AccessKeyId", &access_key_id)
            .element("SecretAccessKey", &secret)
            .element("SessionToken", &token)
            .element("Expiration", &expiration)
            .close("Credentials");
    });
    let mut parameters = serde_json::Map::new();
    parameters.insert("durationSeconds".into(), json!(duration));
    if let Some(serial) = req.param("SerialNumber") {
        parameters.insert("serialNumber".into(), json!(serial));
    }
    Ok(Handled {
        body,
        read_only: true,
        request_parameters: Some(parameters.into()),
        // The audit trail keeps the key id; the redaction step removes the
        // secret and the token.
        response_elements: Some(json!({"credentials": {
            "accessKeyId": access_key_id,
            "secretAccessKey": secret,
            "sessionToken": token,
            "expiration": expiration,
        }})),
    })
}
