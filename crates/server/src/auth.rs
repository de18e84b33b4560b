//! Who is calling: SigV4 verification of programmatic requests against the
//! access keys in the store.

use std::time::SystemTime;

use http::{HeaderMap, Method, StatusCode, Uri};
use seashell_sigv4::{Payload, Request, ServiceConfig, SigningKey};

use crate::caller::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::console::CredentialOwner;
use crate::store::User;
use subtle::ConstantTimeEq;

/// What is known about a request that failed authentication, for its audit
/// record.
#[derive(Debug)]
pub struct AuthFailure {
    /// The error for the caller.
    pub error: ApiError,
    /// The access key the request claimed, if it named one.
    pub access_key_id: Option<String>,
    /// The owner of that key, if the key exists.
    pub user: Option<User>,
}

impl AuthFailure {
    fn new(error: ApiError) -> AuthFailure {
        AuthFailure {
            error,
            access_key_id: None,
            user: None,
        }
    }
}

const INVALID_TOKEN: &str = "The security token included in the request is invalid.";

fn sigv4_error(e: &seashell_sigv4::Error) -> ApiError {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::FORBIDDEN);
    ApiError::new(status, e.code(), e.to_string())
}

/// Verifies a SigV4-signed request to `service`; returns the caller and the
/// region of the credential scope.
pub async fn authenticate(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    service: &str,
) -> Result<(Caller, String), AuthFailure> {
    let mut header_list: Vec<(&str, &[u8])> = headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_bytes()))
        .collect();
    // HTTP/2 carries the host as `:authority`, which hyper keeps in the URI;
    // clients signed it as `host`.
    let authority = uri.authority().map(|a| a.as_str().to_string());
    if !headers.contains_key(http::header::HOST) {
        if let Some(a) = &authority {
            header_list.push(("host", a.as_bytes()));
        }
    }
    let request = Request {
        method: method.as_str(),
        path: uri.path(),
        query: uri.query().unwrap_or_default(),
        headers: &header_list,
        payload: Payload::Bytes(body),
    };
    let config = ServiceConfig::new(service, state.config.regions.iter().cloned());
    let now = SystemTime::now();

    let parsed = seashell_sigv4::parse(&request).map_err(|e| AuthFailure::new(sigv4_error(&e)))?;
    let failure = |error: ApiError, user: Option<User>| AuthFailure {
        error,
        access_key_id: Some(parsed.access_key_id.clone()),
        user,
    };
    // Stale or misdirected requests are refused before any database read.
    parsed
        .check(&config, now)
        .map_err(|e| failure(sigv4_error(&e), None))?;
    if parsed.access_key_id.starts_with("ASIA") {
        return temporary(state, &request, &config, now, &parsed, failure).await;
    }
    let key = state
        .store
        .access_key(&parsed.access_key_id)
        .await
        .map_err(|e| failure(ApiError::internal(&e), None))?;
    let Some(key) = key.filter(|k| k.active) else {
        return Err(failure(
            ApiError::new(StatusCode::FORBIDDEN, "InvalidClientTokenId", INVALID_TOKEN),
            None,
        ));
    };
    // A long-term key never comes with a session token.
    if parsed.session_token.is_some() {
        return Err(failure(
            ApiError::new(StatusCode::FORBIDDEN, "InvalidClientTokenId", INVALID_TOKEN),
            Some(key.user),
        ));
    }
    let signing_key = SigningKey::derive(&key.secret, &parsed.scope);
    let verified = parsed
        .verify(&request, &config, now, &signing_key)
        .map_err(|e| failure(sigv4_error(&e), Some(key.user.clone())))?;
    let user = key.user;
    let caller = Caller {
        arn: user.arn(),
        account_id: user.account_id.clone(),
        principal_id: user.user_id.clone(),
        user_name: user.name.clone(),
        user_id: user.user_id.clone(),
        access_key_id: key.access_key_id,
        session: None,
        role: None,
    };
    Ok((caller, verified.region().to_string()))
}

/// Verifies a request signed with temporary credentials (`ASIA…`): the
/// session token must be the one issued with them, and they must be neither
/// revoked (sign-out) nor expired.
async fn temporary(
    state: &AppState,
    request: &Request<'_>,
    config: &ServiceConfig,
    now: SystemTime,
    parsed: &seashell_sigv4::ParsedAuth,
    failure: impl Fn(ApiError, Option<User>) -> AuthFailure,
) -> Result<(Caller, String), AuthFailure> {
    let invalid = || ApiError::new(StatusCode::FORBIDDEN, "InvalidClientTokenId", INVALID_TOKEN);
    let credential = state
        .store
        .temporary_credential(&parsed.access_key_id)
        .await
        .map_err(|e| failure(ApiError::internal(&e), None))?;
    let Some(credential) = credential else {
        return Err(failure(invalid(), None));
    };
    let token_matches = parsed.session_token.as_deref().is_some_and(|token| {
        bool::from(token.as_bytes().ct_eq(credential.session_token.as_bytes()))
    });
    let user_of = |c: &crate::store::console::TemporaryCredential| match &c.owner {
        CredentialOwner::User(u) => Some(u.clone()),
        CredentialOwner::Role { .. } => None,
    };
    if !token_matches || credential.revoked {
        return Err(failure(invalid(), user_of(&credential)));
    }
    if credential.expires_at <= crate::store::now_ms() {
        return Err(failure(
            ApiError::new(
                StatusCode::FORBIDDEN,
                "ExpiredToken",
                "The security token included in the request is expired",
            ),
            user_of(&credential),
        ));
    }
    let signing_key = SigningKey::derive(&credential.secret, &parsed.scope);
    let verified = parsed
        .verify(request, config, now, &signing_key)
        .map_err(|e| failure(sigv4_error(&e), user_of(&credential)))?;
    let issued_at =
        chrono::DateTime::from_timestamp_millis(credential.created_at).unwrap_or_default();
    let session = Some(crate::caller::CallerSession {
        issued_at,
        mfa_authenticated: credential.mfa_authenticated,
    });
    let caller = match credential.owner {
        CredentialOwner::User(user) => Caller {
            arn: user.arn(),
            account_id: user.account_id.clone(),
            principal_id: user.user_id.clone(),
            user_name: user.name.clone(),
            user_id: user.user_id.clone(),
            access_key_id: credential.access_key_id,
            session,
            role: None,
        },
        CredentialOwner::Role {
            role,
            session_name,
            sso_user_id,
        } => Caller {
            arn: format!(
                "arn:aws:sts::{}:assumed-role/{}/{session_name}",
                role.account_id, role.name
            ),
            account_id: role.account_id.clone(),
            principal_id: format!("{}:{session_name}", role.role_id),
            user_name: String::new(),
            user_id: String::new(),
            access_key_id: credential.access_key_id,
            session,
            role: Some(crate::caller::RoleSession {
                role_arn: format!(
                    "arn:aws:iam::{}:role{}{}",
                    role.account_id, role.path, role.name
                ),
                role_id: role.role_id,
                role_name: role.name,
                session_name,
                sso_user_id,
            }),
        },
    };
    Ok((caller, verified.region().to_string()))
}
