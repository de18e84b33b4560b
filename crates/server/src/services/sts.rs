//! STS (`/sts/`, Query protocol, version 2011-06-15): GetCallerIdentity,
//! GetSessionToken and AssumeRole.

use chrono::{DateTime, SecondsFormat, Utc};
use http::StatusCode;
use serde_json::json;

use crate::authz::{self, RequestInfo};
use crate::caller::Caller;
use crate::error::ApiError;
use crate::protocol::query::{reply, QueryRequest};
use crate::services::Handled;
use crate::state::AppState;
use crate::store::now_ms;
use crate::{ids, mfa};
use seashell_policy::{evaluate, parse, PolicyKind, Request};

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
    info: &RequestInfo,
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
        "GetSessionToken" => get_session_token(state, caller, info, req, request_id).await,
        "AssumeRole" => assume_role(state, caller, info, req, request_id).await,
        other => Err(ApiError::invalid_action(other)),
    }
}

/// Temporary credentials for the calling user, with MFA when a code is given.
/// Like AWS, it needs no permission, and only long-term keys may call it.
async fn get_session_token(
    state: &AppState,
    caller: &Caller,
    info: &RequestInfo,
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
            // Codes count against the same lockout as console sign-ins, so
            // stolen keys cannot be used to guess one.
            let now_ms = now_ms();
            // Counted per client address, like console sign-ins.
            let source = crate::signin::lock_source(&info.source_ip.to_string());
            if crate::signin::locked_out(
                state,
                crate::store::console::SigninKind::Console,
                &caller.user_id,
                &source,
                now_ms,
            )
            .await
            .map_err(|e| ApiError::internal(&e))?
            {
                return Err(denied());
            }
            let now = u64::try_from(now_ms / 1000).unwrap_or_default();
            // A code is good once: a replay is refused like a wrong code.
            let fresh = match mfa::verify(&device.secret_base32, code, now) {
                Some(step) => state
                    .store
                    .consume_mfa_step(&device.serial_number, step)
                    .await
                    .map_err(|e| ApiError::internal(&e))?,
                None => false,
            };
            if !fresh {
                crate::signin::count_failure(
                    state,
                    crate::store::console::SigninKind::Console,
                    &caller.user_id,
                    &source,
                )
                .await;
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
    let creds = NewCredentials::generate(duration);
    state
        .store
        .create_temporary_credentials(
            &creds.access_key_id,
            &creds.secret,
            &creds.token,
            &caller.user_id,
            None,
            mfa_authenticated,
            creds.expires_at,
        )
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let body = reply("GetSessionToken", XMLNS, request_id, |w| creds.write(w));
    let mut parameters = serde_json::Map::new();
    parameters.insert("durationSeconds".into(), json!(duration));
    if let Some(serial) = req.param("SerialNumber") {
        parameters.insert("serialNumber".into(), json!(serial));
    }
    Ok(Handled {
        body,
        read_only: true,
        request_parameters: Some(parameters.into()),
        response_elements: Some(json!({ "credentials": creds.audit() })),
    })
}

/// Freshly issued temporary credentials.
struct NewCredentials {
    access_key_id: String,
    secret: String,
    token: String,
    /// Milliseconds since the epoch.
    expires_at: i64,
    /// ISO 8601, as STS replies say it.
    expiration: String,
}

impl NewCredentials {
    /// New random credentials that expire in `duration_s` seconds.
    fn generate(duration_s: i64) -> NewCredentials {
        let expires_at = now_ms() + duration_s * 1000;
        NewCredentials {
            access_key_id: ids::temporary_access_key_id(),
            secret: ids::secret_access_key(),
            token: ids::session_token(),
            expires_at,
            expiration: DateTime::<Utc>::from_timestamp_millis(expires_at)
                .unwrap_or_default()
                .to_rfc3339_opts(SecondsFormat::Secs, true),
        }
    }

    /// The `<Credentials>` element of a reply.
    fn write(&self, w: &mut crate::protocol::xml::XmlWriter) {
        w.open("Credentials", None)
            .element("AccessKeyId", &self.access_key_id)
            .element("SecretAccessKey", &self.secret)
            .element("SessionToken", &self.token)
            .element("Expiration", &self.expiration)
            .close("Credentials");
    }

    /// The credentials as the audit record's `responseElements` carry them:
    /// the redaction step keeps the key id and removes the secret and token.
    fn audit(&self) -> serde_json::Value {
        json!({
            "accessKeyId": self.access_key_id,
            "secretAccessKey": self.secret,
            "sessionToken": self.token,
            "expiration": self.expiration,
        })
    }
}

/// AssumeRole's limits: sessions last 15 minutes to the role's maximum
/// (1 hour by default); a role session assuming another role gets at most
/// 1 hour (role chaining).
const ROLE_SESSION_MIN_S: i64 = 900;
const ROLE_SESSION_DEFAULT_S: i64 = 3600;
const ROLE_CHAINING_MAX_S: i64 = 3600;

/// Credentials for a session of a role, when its trust policy lets the caller
/// in and the caller's own policies allow `sts:AssumeRole` on it (or the
/// trust policy names the caller itself, in the same account).
async fn assume_role(
    state: &AppState,
    caller: &Caller,
    info: &RequestInfo,
    req: &QueryRequest,
    request_id: &str,
) -> Result<Handled, ApiError> {
    let role_arn = req
        .param("RoleArn")
        .ok_or_else(|| ApiError::validation("1 validation error detected: Value null at 'roleArn' failed to satisfy constraint: Member must not be null"))?;
    let session_name = req
        .param("RoleSessionName")
        .ok_or_else(|| ApiError::validation("1 validation error detected: Value null at 'roleSessionName' failed to satisfy constraint: Member must not be null"))?;
    let name_ok = (2..=64).contains(&session_name.len())
        && session_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c));
    if !name_ok {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value '{}' at 'roleSessionName' failed to satisfy constraint: \
             Member must satisfy regular expression pattern: [\\w+=,.@-]* and have length between 2 and 64",
            session_name.chars().take(64).collect::<String>()
        )));
    }
    for unsupported in [
        "Policy",
        "PolicyArns.member.1.arn",
        "Tags.member.1.Key",
        "TransitiveTagKeys.member.1",
    ] {
        if req.param(unsupported).is_some() {
            return Err(ApiError::validation(format!(
                "{} is not supported by this server yet",
                unsupported.split('.').next().unwrap_or(unsupported)
            )));
        }
    }
    // arn:aws:iam::<account>:role<path><name>
    let denied = || {
        authz::access_denied(
            &caller.arn,
            "sts:AssumeRole",
            role_arn,
            "because no resource-based policy allows the sts:AssumeRole action",
        )
    };
    let parts: Vec<&str> = role_arn.splitn(6, ':').collect();
    let (account, resource) = match parts.as_slice() {
        ["arn", "aws", "iam", "", account, resource] => (*account, *resource),
        _ => {
            return Err(ApiError::validation(format!(
                "{role_arn} is not a role ARN"
            )))
        }
    };
    let role_name = resource
        .strip_prefix("role/")
        .and_then(|r| r.rsplit('/').next())
        .ok_or_else(|| ApiError::validation(format!("{role_arn} is not a role ARN")))?;
    let role = state
        .store
        .role_by_name(account, role_name)
        .await
        .map_err(|e| ApiError::internal(&e))?
        // A role that does not exist is denied like one that does not trust
        // the caller, so roles cannot be discovered by trying.
        .filter(|r| format!("arn:aws:iam::{}:role{}{}", r.account_id, r.path, r.name) == role_arn)
        .ok_or_else(denied)?;
    let max = if caller.role.is_some() {
        ROLE_CHAINING_MAX_S
    } else {
        role.max_session_duration
    };
    let duration = match req.param("DurationSeconds") {
        None => ROLE_SESSION_DEFAULT_S.min(max),
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|d| (ROLE_SESSION_MIN_S..=max).contains(d))
            .ok_or_else(|| {
                ApiError::validation(format!(
                    "The requested DurationSeconds exceeds the MaxSessionDuration set for this role \
                     ({max} seconds), or is under {ROLE_SESSION_MIN_S} seconds."
                ))
            })?,
    };

    let trust = parse(&role.trust_policy, PolicyKind::Trust).map_err(|e| {
        tracing::error!(role = %role_arn, error = %e, "stored trust policy no longer parses");
        denied()
    })?;
    let identity = authz::caller_policies(&state.store, caller).await?;
    let mut ctx = authz::context(caller, info);
    if let Some(external_id) = req.param("ExternalId") {
        ctx.insert("sts:ExternalId", external_id);
    }
    ctx.insert("sts:RoleSessionName", session_name);
    let scps = authz::service_control_levels(&state.store, &caller.account_id)
        .await?
        .unwrap_or_default();
    let set = authz::with_service_control(authz::identity_set(&identity), &scps)
        .trust("trust policy", &trust);
    let decision = evaluate(
        &Request::new(&caller.arn, "sts:AssumeRole", role_arn, &ctx),
        &set,
    );
    if !decision.is_allowed() {
        tracing::info!(role = %role_arn, %decision, "AssumeRole denied");
        return Err(authz::access_denied(
            &caller.arn,
            "sts:AssumeRole",
            role_arn,
            &decision.denial_phrase("sts:AssumeRole"),
        ));
    }

    let creds = NewCredentials::generate(duration);
    state
        .store
        .create_role_credentials(
            &creds.access_key_id,
            &creds.secret,
            &creds.token,
            &role.role_id,
            session_name,
            caller.mfa_authenticated(),
            creds.expires_at,
            None,
        )
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let assumed_arn = format!(
        "arn:aws:sts::{}:assumed-role/{}/{session_name}",
        role.account_id, role.name
    );
    let assumed_id = format!("{}:{session_name}", role.role_id);
    let body = reply("AssumeRole", XMLNS, request_id, |w| {
        creds.write(w);
        w.open("AssumedRoleUser", None)
            .element("AssumedRoleId", &assumed_id)
            .element("Arn", &assumed_arn)
            .close("AssumedRoleUser");
    });
    let mut parameters = serde_json::Map::new();
    parameters.insert("roleArn".into(), json!(role_arn));
    parameters.insert("roleSessionName".into(), json!(session_name));
    parameters.insert("durationSeconds".into(), json!(duration));
    if let Some(external_id) = req.param("ExternalId") {
        parameters.insert("externalId".into(), json!(external_id));
    }
    Ok(Handled {
        body,
        read_only: true,
        request_parameters: Some(parameters.into()),
        response_elements: Some(json!({
            "credentials": creds.audit(),
            "assumedRoleUser": {"assumedRoleId": assumed_id, "arn": assumed_arn},
        })),
    })
}
